"""Prompt-index search at VidProM scale: 1.67M x 512 vectors, every index type the selector picks.

Vectors are unit-norm draws around 20,000 random centres (so recall against the exact index
means something; uniform random vectors make every ANN look bad). For each memory budget the
selector's choice is built, then timed: single-query latency (one query per call, as
`v2p query` does) and batched throughput (1,000 queries per call), with recall@10 against
exact search on held-out queries, and the index's size on disk (= its memory footprint).
Factories the selector no longer picks (``--also``, default HNSW32,SQ8) are measured beside
them, so the rule's choice can be checked against the alternative.
Usage: python benchmarks/index_search.py [--n 1670000] [--dim 512] [--also HNSW32,SQ8] [--out bench-out]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402

from v2p.index import faiss_ops  # noqa: E402
from v2p.index.select import choose_factory, parse_size, training_size  # noqa: E402

BUDGETS = ["4G", "2G", "1.5G", "1G"]


def clustered(n: int, dim: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    out = np.empty((n, dim), np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        # noise of norm ~0.6 around centres of norm ~1: neighbours are well defined (a per-dimension
        # scale of 1 would drown the centres and make the data uniform on the sphere)
        noise = rng.standard_normal((m, dim), dtype=np.float32) * np.float32(0.6 / np.sqrt(dim))
        x = centres[rng.integers(0, len(centres), m)] + noise
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_670_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--budgets", default=",".join(BUDGETS),
                    help="memory budgets to run; the first must pick Flat (the exact ground truth)")
    ap.add_argument("--also", default="HNSW32,SQ8",
                    help="';'-separated factories to measure beside the selector's picks ('' for none)")
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20_000, args.dim), dtype=np.float32) / np.float32(np.sqrt(args.dim))
    t0 = time.perf_counter()
    base = clustered(args.n, args.dim, rng, centres)
    queries = clustered(args.queries, args.dim, rng, centres)
    print(f"generated {args.n} x {args.dim} vectors in {time.perf_counter() - t0:.0f}s")
    truth = None
    rows = []
    runs = [(budget, choose_factory(args.n, args.dim, parse_size(budget))) for budget in args.budgets.split(",")]
    runs += [("explicit", factory) for factory in args.also.split(";") if factory]
    for budget, factory in runs:
        if any(r["factory"] == factory for r in rows):
            continue
        t0 = time.perf_counter()
        train = base[np.linspace(0, args.n - 1, training_size(factory, args.n)).astype(np.int64)]
        index = faiss_ops.build_index(factory, args.dim, train,
                                      (base[s:s + 200_000] for s in range(0, args.n, 200_000)))
        build_s = time.perf_counter() - t0
        path = out / f"bench_{factory.replace(',', '_')}.faiss"
        faiss_ops.write_index(index, str(path))
        size_mb = path.stat().st_size / 2**20
        path.unlink()
        faiss_ops.search(index, queries[:10], 10)  # warm up
        t0 = time.perf_counter()
        single = 200
        for q in queries[:single]:
            faiss_ops.search(index, q[None], 10)
        latency_ms = (time.perf_counter() - t0) / single * 1000
        t0 = time.perf_counter()
        _, found = faiss_ops.search(index, queries, 10)
        batch_qps = len(queries) / (time.perf_counter() - t0)
        if truth is None:
            if factory != "Flat":
                raise SystemExit("the first budget must pick Flat: it is the exact ground truth for recall")
            truth = found
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)]))
        rows.append({"budget": budget, "factory": factory, "build_s": build_s, "size_MB": size_mb,
                     "latency_ms_1q": latency_ms, "batch_qps": batch_qps, "recall@10": recall})
        print_table(rows[-1:], f"{factory} (budget {budget})")
        del index
        gc.collect()
    print_table(rows, f"prompt index search, {args.n} x {args.dim}, {os.cpu_count()} cores")
    write_json(out / "index_search.json", {"n": args.n, "dim": args.dim, "queries": args.queries, "results": rows})


if __name__ == "__main__":
    main()
