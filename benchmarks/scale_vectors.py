"""Real-model prompt vectors at VidProM scale, cached on disk once (the encode is hours on 2 cores).

Prompts come from the synthetic grammar (seed 1000, never used by tests or training), are
de-duplicated like VidProM's unique-prompt table, and are embedded by MiniLM (the text space
of every v2p encoder) in blocks of ``BLOCK`` prompts. Each block is written as
``block-NNNN.npy`` (float16 vectors) + ``block-NNNN.json`` (its prompts) under temporary names
and renamed into place, so a killed run resumes at the first missing block and never reads a
half-written one. ``benchmarks/scale_search.py`` reads the cache; this script only fills it.

Usage: python benchmarks/scale_vectors.py [--n 1670000] [--cache bench-out/scale-cache]
       (nice -n 19 it to keep working beside it; V2P_THREADS=1 caps it to one core)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SEED = 1000
BLOCK = 20_000
DIM = 384


def cache_folder(cache: Path) -> Path:
    return cache / f"minilm-seed{SEED}"


def block_paths(folder: Path, i: int) -> tuple[Path, Path]:
    return folder / f"block-{i:04d}.npy", folder / f"block-{i:04d}.json"


def cached_blocks(folder: Path) -> int:
    """Number of complete leading blocks."""
    i = 0
    while all(p.is_file() for p in block_paths(folder, i)):
        i += 1
    return i


def load_vectors(cache: Path, n: int) -> np.ndarray:
    """The first n cached vectors, float32 [n, 384]; a clear error when the cache holds fewer."""
    folder = cache_folder(cache)
    need = -(-n // BLOCK)
    have = cached_blocks(folder)
    if have < need:
        sys.exit(f"{folder}: {have * BLOCK} vectors cached, {n} asked; run benchmarks/scale_vectors.py --n {n}")
    out = np.empty((n, DIM), np.float32)
    for i in range(need):
        block = np.load(block_paths(folder, i)[0])
        s = i * BLOCK
        out[s:s + len(block)] = block[: n - s]
    return out


def fill(cache: Path, n: int) -> None:
    from v2p.data.synth.writer import synth_prompt_range
    from v2p.embed.factory import create_encoder

    folder = cache_folder(cache)
    folder.mkdir(parents=True, exist_ok=True)
    need = -(-n // BLOCK)
    start_block = cached_blocks(folder)
    seen: set[str] = set()
    for i in range(start_block):  # the de-duplication state of the finished blocks
        seen.update(json.loads(block_paths(folder, i)[1].read_text())["prompts"])
    cursor = json.loads(block_paths(folder, start_block - 1)[1].read_text())["next_index"] if start_block else 0
    encoder = create_encoder("minilm")
    t0 = time.time()
    for i in range(start_block, need):
        prompts: list[str] = []
        while len(prompts) < BLOCK:  # draw grammar prompts until the block holds BLOCK new ones
            for p in synth_prompt_range(cursor, cursor + BLOCK, SEED):
                if p.prompt not in seen and len(prompts) < BLOCK:
                    seen.add(p.prompt)
                    prompts.append(p.prompt)
                cursor = p.index + 1
                if len(prompts) == BLOCK:
                    break
        vectors = encoder.encode_text(prompts).astype(np.float16)
        npy, meta = block_paths(folder, i)
        tmp_npy, tmp_meta = npy.with_suffix(".tmp.npy"), meta.with_suffix(".tmp.json")
        np.save(tmp_npy, vectors)
        tmp_meta.write_text(json.dumps({"next_index": cursor, "prompts": prompts}))
        os.replace(tmp_npy, npy)
        os.replace(tmp_meta, meta)
        done = i + 1 - start_block
        rate = done * BLOCK / (time.time() - t0)
        print(f"block {i + 1}/{need}: {rate:.0f} prompts/s, {(need - i - 1) * BLOCK / rate / 3600:.1f} h left",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_670_000)
    ap.add_argument("--cache", default="bench-out/scale-cache")
    args = ap.parse_args()
    fill(Path(args.cache), args.n)


if __name__ == "__main__":
    main()
