"""Session fixtures: real shards rendered once and shared (small, so the suite stays fast)."""

from __future__ import annotations

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
