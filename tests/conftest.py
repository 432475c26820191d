"""Session fixtures: real shards rendered once and shared (small, so the suite stays fast)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub; loading code must cope
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from v2p.data.synth.writer import write_synthetic_shard  # noqa: E402


@pytest.fixture(scope="session")
def small_shard(tmp_path_factory) -> Path:
    """12 prompts x 3 generators, seed 7: the shared read-only test shard."""
    out = tmp_path_factory.mktemp("shards") / "small"
    write_synthetic_shard(out, 12, seed=7, workers=1)
    return out


TINY_CLIP = "clip:v2p-clip-tiny/random"


@pytest.fixture(scope="session")
def tiny_clip_index(small_shard, tmp_path_factory) -> Path:
    """Prompt + video index of the small shard with the seeded random tiny CLIP (fast, offline)."""
    from v2p.data.shard import open_shard
    from v2p.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("indexes") / "tiny-clip"
    build_index(open_shard(small_shard), out, BuildConfig(encoder=TINY_CLIP, videos=True, prompt_chunk=5,
                                                          video_chunk=10))
    return out


@pytest.fixture(scope="session")
def minilm_index(small_shard, tmp_path_factory) -> Path:
    """Prompt-only index with the real all-MiniLM-L6-v2 weights."""
    from v2p.data.shard import open_shard
    from v2p.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("indexes") / "minilm"
    build_index(open_shard(small_shard), out, BuildConfig(encoder="minilm"))
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(index: Path, feedback: Path, *extra: str):
    """A real `v2p serve` process on a free loopback port; yields (base url, process) once healthy
    and ends it with SIGKILL (the harshest stop: what it committed must survive)."""
    import signal
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "v2p.cli", "serve", "--index", str(index), "--port", str(port),
                             "--feedback", str(feedback), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.5)
        yield url, proc
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture()
def small_tmpfs(tmp_path):
    """A 3 MiB tmpfs: a real full disk (ENOSPC) for writers. Needs root and mount rights, which
    this project's machines and CI have (they run as root): a missing right fails, never skips."""
    import subprocess

    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if made.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk tests (run as root): {made.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
