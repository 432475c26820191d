"""Install layout: exactly one FAISS wheel, chosen by an extra (both ship the `faiss` package)."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _names(requirements: list[str]) -> set[str]:
    return {r.split(">")[0].split("=")[0].split("[")[0].split(";")[0].strip().lower() for r in requirements}


def test_faiss_wheels_come_only_from_exclusive_extras():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    base = _names(project["dependencies"])
    extras = {k: _names(v) for k, v in project["optional-dependencies"].items()}
    assert not any(n.startswith("faiss") for n in base)  # never pulled in by a plain install
    assert extras["cpu"] == {"faiss-cpu"} and extras["gpu"] == {"faiss-gpu-cu12"}
    for name, deps in extras.items():
        if name not in ("cpu", "gpu"):
            assert not any(n.startswith("faiss") for n in deps), name


def test_this_environment_has_one_faiss_and_it_imports():
    installed = {d.metadata["Name"].lower() for d in metadata.distributions()}
    faiss_wheels = sorted(n for n in installed if n.startswith("faiss"))
    assert len(faiss_wheels) == 1, faiss_wheels
    import faiss

    index = faiss.IndexFlatIP(4)
    index.add(__import__("numpy").eye(4, dtype="float32"))
    assert index.search(__import__("numpy").eye(4, dtype="float32")[:1], 1)[1][0, 0] == 0
