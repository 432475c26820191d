"""Shared helpers for benchmark scripts: machine description, table printing, JSON output."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine()}


def print_table(rows: list[dict], title: str) -> None:
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols}
    print(f"\n{title}")
    print("  ".join(c.ljust(widths[c]) for c in cols))
    print("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        print("  ".join(_fmt(r[c]).ljust(widths[c]) for c in cols))


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def write_json(path: str | Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    print(f"\nwrote {path}")


def v2p_cli(*args: str) -> str:
    """Run a v2p command as a user would; return its stdout."""
    import subprocess
    import sys

    print("$ v2p " + " ".join(args), flush=True)
    return subprocess.run([sys.executable, "-m", "v2p.cli", *args], check=True, capture_output=True, text=True).stdout


def heldout_world(out: Path) -> tuple[Path, Path]:
    """The test shard: seed 777 (never used in training or tuning). Bank: 2,000 prompts by ms + vc2;
    queries: 500 of the same prompts rendered by pika, a generator absent from the index."""
    bank, queries = out / "bank", out / "queries"
    if not (bank / "prompts.csv").exists():
        v2p_cli("synth", "--n", "2000", "--seed", "777", "--generators", "ms,vc2", "--out", str(bank), "--overwrite")
    if not (queries / "prompts.csv").exists():
        v2p_cli("synth", "--n", "2000", "--seed", "777", "--generators", "pika", "--video-sample", "500",
                "--out", str(queries), "--overwrite")
    return bank, queries


def encoder_suffix(spec: str) -> str:
    """'' for the shipped v2p-tiny (the benchmarks' default index and JSON names), else
    '-<spec>' as a file-name part: v2p-tiny+image -> '-v2p-tiny-image'."""
    return "" if spec == "v2p-tiny" else "-" + spec.replace("+", "-")


def heldout_index(out: Path, name: str, spec: str, *, with_lm: bool = False) -> Path:
    """Index of the held-out bank with ``spec``, keeping the first 1,600 prompts (so ~100 queries are not in it);
    ``with_lm`` also trains the bank language model the rerank fluency term uses. An index built
    with other weights of ``spec`` (a retrained v2p-tiny) is rebuilt, never reused."""
    from v2p.embed.factory import create_encoder

    bank, _ = heldout_world(out)
    index = out / f"index-{name}"
    manifest = index / "manifest.json"
    built = json.loads(manifest.read_text()).get("encoder_fingerprint") if manifest.exists() else None
    if not manifest.exists() or built != create_encoder(spec).fingerprint:
        v2p_cli("index", "build", str(bank), "--out", str(index), "--encoder", spec, "--videos", "--limit", "1600",
                "--overwrite")
    if with_lm and not (index / "lm" / "config.json").exists():
        v2p_cli("lm", "train", str(index))
    return index
