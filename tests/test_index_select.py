"""Index choice as pure functions: exact factory strings for known sizes, autofaiss-style."""

import numpy as np
import pytest

from v2p.index import faiss_ops
from v2p.index.select import choose_factory, index_memory, ivf_lists, parse_size

G = 2**30


@pytest.mark.parametrize(
    ("n", "dim", "budget", "expected"),
    [
        (1_000, 512, 4 * G, "Flat"),
        (1_670_000, 384, 4 * G, "Flat"),  # MiniLM bank: 2.4 GB fp32 fits 4G
        (1_670_000, 512, 4 * G, "Flat"),  # 3.2 GiB fits 4 GiB
        (1_670_000, 512, 2 * G, "SQfp16"),  # 1.6 GiB of fp16 codes (the 1.7 GB)
        (1_670_000, 512, int(1.5 * G), "IVF4096,SQ8"),  # not HNSW32,SQ8: more memory, lower recall (select.py)
        (1_670_000, 512, 1 * G, "IVF4096,SQ8"),
        (6_690_000, 512, 4 * G, "IVF8192,SQ8"),  # every VidProM video, pooled
        (6_690_000, 512, 3 * G, "IVF8192,PQ64"),
        (100_000_000, 512, 8 * G, "IVF32768,PQ64"),
    ],
)
def test_choose_factory(n, dim, budget, expected):
    assert choose_factory(n, dim, budget) == expected
    assert index_memory(expected, n, dim) <= budget


def test_memory_of_fast_scan_codes_with_their_refinement():
    n, dim = 1_670_000, 384
    lists = 4096 * dim * 4
    assert index_memory("IVF4096,PQ192x4fs", n, dim) == n * (96 + 8) + lists
    assert index_memory("IVF4096,PQ192x4fs,Refine(SQ8)", n, dim) == n * (96 + 8) + lists + n * dim
    assert index_memory("IVF4096,PQ64", n, dim) == n * (64 + 8) + lists


def test_too_small_a_budget_is_an_error():
    with pytest.raises(ValueError, match="do not fit"):
        choose_factory(10_000_000, 512, 10 * 2**20)


@pytest.mark.parametrize(("n", "k"), [(100, 16), (10_000, 256), (1_670_000, 4096), (6_690_000, 8192)])
def test_ivf_lists(n, k):
    assert ivf_lists(n) == k


@pytest.mark.parametrize(("text", "value"), [("4G", 4 * G), ("512M", 512 * 2**20), ("1.5GB", int(1.5 * G)),
                                             ("1000", 1000), ("2GiB", 2 * G)])
def test_parse_size(text, value):
    assert parse_size(text) == value


def test_parse_size_rejects_junk():
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


@pytest.mark.parametrize(("factory", "min_recall"), [("Flat", 1.0), ("SQfp16", 0.99), ("HNSW32,SQ8", 0.85),
                                                     ("IVF64,SQ8", 0.85), ("IVF64,PQ16", 0.4),
                                                     ("IVF64,PQ32x4fs,Refine(SQ8)", 0.85)])
def test_ann_recall_against_exact(factory, min_recall):
    """Every index type the selector can pick, checked against IndexFlat on a seeded set.

    Queries are held out (not vectors from the index), as cross-modal queries are."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(50, 64)).astype(np.float32)
    base = centers[rng.integers(0, 50, 6000)] + 0.6 * rng.normal(size=(6000, 64)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = centers[rng.integers(0, 50, 200)] + 0.6 * rng.normal(size=(200, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = faiss_ops.build_index("Flat", 64, None, [base])
    _, truth = faiss_ops.search(exact, queries, 10)
    index = faiss_ops.build_index(factory, 64, base, [base[:3000], base[3000:]])
    assert index.ntotal == 6000
    _, found = faiss_ops.search(index, queries, 10)
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= min_recall, recall
