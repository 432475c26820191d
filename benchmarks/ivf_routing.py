"""Why clip queries need so many IVF lists: where their true neighbours live, and whether a
better way of choosing lists helps.

An IVF index answers a query from the lists whose centroids score highest against it. For each
query kind of ``benchmarks/scale_search.py`` (unseen text prompts, held-out clips from each video
encoder) this script finds the exact top 10 over the first ``--n`` cached MiniLM prompt vectors
and reports, with the lists of a spherical k-means (what FAISS's inner-product IVF trains):

* how many distinct lists hold a query's true top 10, and how deep in the query's own ranking of
  lists the deepest of them sits (the nprobe that query needs);
* recall@10 when the codes are exact (IVF-Flat), so only the choice of lists loses anything, at
  nprobe 8 ... 512, for three ways of ranking the lists:
  ``query`` (FAISS's), ``feedback`` (query plus the mean of a first pass's top 10 at 16 lists:
  pseudo-relevance feedback, which pulls the probe onto the text side of the modality gap), and
  ``feedback only`` (that mean alone).

Usage: python benchmarks/ivf_routing.py [--n 100000] [--lists K] [--cache bench-out/scale-cache]
(reads ``bench-out/scale-queries-200.npz``, which ``benchmarks/scale_search.py`` writes)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402
from scale_vectors import load_vectors  # noqa: E402

from v2p.index.select import ivf_lists  # noqa: E402
from v2p.index.tune import exact_neighbors  # noqa: E402

NPROBES = (8, 16, 32, 64, 128, 256, 512)
FIRST_PASS = 16


def spherical_lists(bank: np.ndarray, nlist: int) -> tuple[np.ndarray, np.ndarray]:
    """(centroids [nlist, d], list of each bank row) as FAISS's inner-product IVF makes them."""
    import faiss

    d = bank.shape[1]
    quantizer = faiss.IndexFlatIP(d)
    ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(bank[np.linspace(0, len(bank) - 1, min(len(bank), 64 * nlist)).astype(np.int64)])
    centroids = faiss.rev_swig_ptr(quantizer.get_xb(), nlist * d).reshape(nlist, d).copy()
    return centroids, quantizer.search(bank, 1)[1][:, 0]


def list_ranks(scores: np.ndarray) -> np.ndarray:
    """[q, nlist] scores -> the rank (0 = probed first) of every list for every query."""
    order = np.argsort(-scores, axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(scores.shape[1]), scores.shape), axis=1)
    return ranks


def first_pass_means(bank: np.ndarray, list_of: np.ndarray, queries: np.ndarray,
                     ranks: np.ndarray) -> np.ndarray:
    """Unit mean of each query's top 10 among its first FIRST_PASS lists (exact scores)."""
    means = np.empty_like(queries)
    for i, q in enumerate(queries):
        rows = np.flatnonzero(ranks[i, list_of] < FIRST_PASS)
        top = rows[np.argsort(-(bank[rows] @ q))[:10]]
        means[i] = bank[top].mean(axis=0)
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def recall_by_nprobe(ranks: np.ndarray, truth_lists: np.ndarray) -> dict[int, float]:
    """Share of true neighbours whose list is among the first p probed, for each p."""
    deep = np.take_along_axis(ranks, truth_lists, axis=1)
    return {p: round(float((deep < p).mean()), 3) for p in NPROBES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--cache", default="bench-out/scale-cache")
    ap.add_argument("--queries", default="bench-out/scale-queries-200.npz")
    ap.add_argument("--lists", type=int, default=None, help="IVF lists (default: what the build picks for --n)")
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    if not Path(args.queries).is_file():
        sys.exit(f"{args.queries}: no query vectors; run benchmarks/scale_search.py once first")
    bank = load_vectors(Path(args.cache), args.n)
    nlist = args.lists or ivf_lists(args.n)
    t0 = time.perf_counter()
    centroids, list_of = spherical_lists(bank, nlist)
    print(f"{args.n} x {bank.shape[1]} vectors, {nlist} lists ({time.perf_counter() - t0:.0f}s)", flush=True)
    rows = []
    for kind, q in np.load(args.queries).items():
        q = np.ascontiguousarray(q, np.float32)
        truth_lists = list_of[exact_neighbors([bank], q)]
        scores = q @ centroids.T
        ranks = list_ranks(scores)
        means = first_pass_means(bank, list_of, q, ranks)
        ways = {"query": ranks,
                "feedback": list_ranks(scores / np.linalg.norm(q, axis=1, keepdims=True) + means @ centroids.T),
                "feedback only": list_ranks(means @ centroids.T)}
        holding = round(float(np.mean([len(set(t)) for t in truth_lists])), 2)
        for way, r in ways.items():
            deepest = np.take_along_axis(r, truth_lists, axis=1).max(axis=1)
            rows.append({"queries": kind, "lists ranked by": way, "lists holding top 10": holding,
                         "deepest, median": int(np.median(deepest) + 1),
                         **{f"R@10 nprobe {p}": v for p, v in recall_by_nprobe(r, truth_lists).items()}})
        print_table(rows[-len(ways):], kind)
    print_table(rows, f"IVF list choice, exact codes: {args.n} MiniLM prompts, {nlist} lists "
                      f"(feedback: first pass at {FIRST_PASS} lists, not counted in nprobe)")
    write_json(Path(args.out) / "ivf_routing.json", {"n": args.n, "nlist": nlist, "first_pass": FIRST_PASS,
                                                     "rows": rows})


if __name__ == "__main__":
    main()
