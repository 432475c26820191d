"""The tuner: exact ground truth, recall, the parameter sweep on cross-modal queries, and how the
build and `v2p index tune` record what they chose."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from v2p.cli import app
from v2p.data.shard import open_shard
from v2p.index import faiss_ops
from v2p.index.build import BuildConfig, build_index
from v2p.index.select import candidate_factories
from v2p.index.store import IndexDir
from v2p.index.tune import exact_neighbors, parameter_grid, recall_at_k, sweep

TINY_CLIP = "clip:v2p-clip-tiny/random"


def _world(n=6000, dim=32, seed=0):
    """Clustered unit 'prompt' vectors, and 'clip' queries offset from them by a shared gap vector
    (the modality gap that makes cross-modal queries harder for an IVF index than text ones)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((60, dim)).astype(np.float32)
    bank = centres[rng.integers(0, 60, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    gap = rng.standard_normal(dim).astype(np.float32)
    queries = bank[rng.choice(n, 300, replace=False)] + 0.6 * gap / np.linalg.norm(gap)
    queries += 0.2 * rng.standard_normal(queries.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return bank, queries.astype(np.float32)


def test_exact_neighbours_over_blocks_equal_one_flat_search():
    bank, queries = _world(3000)
    whole = exact_neighbors([bank], queries)
    blocks = exact_neighbors([bank[:1000], bank[1000:1700], bank[1700:]], queries)
    # both are the true top 10: their scores, recomputed in float64, are the float64 top 10's.
    # Ids may swap where two scores tie to float32 rounding (blocks are other matrix shapes,
    # so BLAS sums in another order; seen under load), so ids are compared up to those ties.
    scores = queries.astype(np.float64) @ bank.astype(np.float64).T
    best = -np.sort(-scores, axis=1)[:, :10]
    for found in (whole, blocks):
        assert np.allclose(np.take_along_axis(scores, found, 1), best, atol=1e-5)
    assert (whole == blocks).all(1).mean() > 0.95


def test_recall_at_k():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert recall_at_k(truth, truth) == 1.0
    assert recall_at_k(np.array([[1, 2, 9, 9], [8, 7, 6, 5]]), truth) == pytest.approx((0.5 + 1.0) / 2)
    assert recall_at_k(np.array([[-1, -1, -1, -1], [5, -1, -1, -1]]), truth) == pytest.approx(0.125)


def test_the_sweep_finds_the_cheapest_nprobe_that_meets_the_target():
    bank, queries = _world()
    index = faiss_ops.build_index("IVF64,SQ8", bank.shape[1], bank, [bank])
    assert [p["nprobe"] for p in parameter_grid(index)] == [1, 2, 4, 8, 16, 32, 64]
    truth = exact_neighbors([bank], queries)
    result = sweep(index, "IVF64,SQ8", queries, truth, target=0.95, source="clips")
    assert result.met and result.recall_at_10 >= 0.95
    # measured again, independently: the chosen nprobe meets the target and the one below does not
    nprobe = result.params["nprobe"]
    assert recall_at_k(faiss_ops.search(index, queries, 10, nprobe=nprobe)[1], truth) >= 0.95
    assert nprobe > 1, "the world is too easy to test the sweep"
    below = recall_at_k(faiss_ops.search(index, queries, 10, nprobe=nprobe // 2)[1], truth)
    assert below < 0.95
    assert [t["nprobe"] for t in result.tried][-1] == nprobe


def test_single_queries_split_their_lists_over_the_cores_with_the_same_answer():
    import faiss

    bank, queries = _world()
    index = faiss_ops.build_index("IVF64,SQ8", bank.shape[1], bank, [bank])
    ivf = faiss.extract_index_ivf(index)
    batched = faiss_ops.search(index, queries, 10, nprobe=16)
    assert ivf.parallel_mode == (0 if len(queries) >= faiss.omp_get_max_threads() else 1)
    one_by_one = [faiss_ops.search(index, q[None], 10, nprobe=16) for q in queries[:50]]
    if faiss.omp_get_max_threads() > 1:
        assert ivf.parallel_mode == 1  # one query: its lists are what is split
    for (scores, ids), row in zip(one_by_one, range(50), strict=True):
        assert np.array_equal(ids[0], batched[1][row])
        assert np.allclose(scores[0], batched[0][row], atol=1e-5)
    faiss_ops.schedule_ivf(faiss_ops.build_index("Flat", bank.shape[1], None, [bank]), 1)  # no IVF: a no-op


def test_candidates_stay_exact_for_small_banks_and_respect_the_budget():
    assert candidate_factories(10_000, 384, 2**32) == ["Flat"]
    fast = "IVF4096,PQ192x4fs,Refine(SQ8)"
    assert candidate_factories(1_670_000, 384, 4 * 2**30) == ["Flat", "IVF4096,SQ8", fast, "HNSW32,SQ8"]
    # 1 GB: neither Flat (2.5 GB) nor HNSW32,SQ8 (1.1 GB) fits; fast-scan + SQ8 codes (0.8 GB) do
    assert candidate_factories(1_670_000, 384, 2**30) == ["IVF4096,SQ8", fast]
    assert candidate_factories(1_670_000, 384, 700 * 2**20) == ["IVF4096,SQ8"]


def test_a_fast_scan_index_is_swept_through_its_refinement_stage(tmp_path):
    import faiss

    bank, queries = _world()
    factory = "IVF64,PQ16x4fs,Refine(SQ8)"
    index = faiss_ops.build_index(factory, bank.shape[1], bank, [bank])
    assert faiss_ops.index_kind(index) == ("ivf", 64)
    params = faiss_ops.search_params(index, nprobe=8)
    assert isinstance(params, faiss.IndexRefineSearchParameters) and params.k_factor == faiss_ops.REFINE_K_FACTOR
    truth = exact_neighbors([bank], queries)
    result = sweep(index, factory, queries, truth, target=0.9, source="clips")
    assert result.met and 1 < result.params["nprobe"] < 64
    # written and read back, it answers the same
    faiss_ops.write_index(index, str(tmp_path / "fs.faiss"))
    again = faiss_ops.read_index(str(tmp_path / "fs.faiss"), mmap=True)
    a = faiss_ops.search(index, queries[:20], 10, nprobe=result.params["nprobe"])[1]
    b = faiss_ops.search(again, queries[:20], 10, nprobe=result.params["nprobe"])[1]
    assert np.array_equal(a, b)
    # `v2p index tune` searches the stored vectors exactly: they decode from the 8-bit codes
    from v2p.index.tune import _all_vectors

    assert np.abs(_all_vectors(again) - bank).max() < 0.02


@pytest.fixture(scope="module")
def ivf_index(small_shard, tmp_path_factory):
    out = tmp_path_factory.mktemp("tune") / "ivf"
    build_index(open_shard(small_shard), out, BuildConfig(encoder=TINY_CLIP, videos=True, factory="IVF4,Flat"))
    return out


def test_the_build_tunes_on_the_shards_clips_and_records_it(ivf_index):
    d = IndexDir.open(ivf_index)
    tuning = d.manifest["prompts"]["tuning"]
    assert tuning["queries"] == "clips (36 of the shard's videos)"
    assert tuning["met"] and tuning["recall_at_10"] >= 0.95 and tuning["factory"] == "IVF4,Flat"
    assert d.manifest["prompts"]["search"] == tuning["params"] and "nprobe" in tuning["params"]
    assert d.search_kwargs("prompts") == {"nprobe": tuning["params"]["nprobe"]}
    assert d.manifest["videos"]["tuning"]["queries"].startswith("videos (36")
    info = CliRunner().invoke(app, ["index", "info", str(ivf_index)])
    assert info.exit_code == 0 and "recall@10" in info.stdout and "meets target 0.95" in info.stdout


def test_index_tune_re_sweeps_and_rewrites_the_manifest(ivf_index, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(ivf_index, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["prompts"]["search"] = {"nprobe": 1}
    del manifest["prompts"]["tuning"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(app, ["index", "tune", str(copy), "--target-recall", "1.0", "--json"])
    assert result.exit_code == 0, result.output
    tuned = json.loads(result.stdout)["prompts"]
    assert tuned["met"] and tuned["recall_at_10"] == 1.0 and tuned["target"] == 1.0
    after = IndexDir.open(copy)
    assert after.manifest["prompts"]["search"] == tuned["params"]
    assert CliRunner().invoke(app, ["index", "verify", str(copy)]).exit_code == 0  # index files untouched


def test_tune_queries_of_the_wrong_size_are_refused(small_shard, tmp_path):
    bad = tmp_path / "q.npy"
    np.save(bad, np.zeros((5, 7), np.float32))
    result = CliRunner().invoke(app, ["index", "build", str(small_shard), "--out", str(tmp_path / "i"), "--encoder",
                                      TINY_CLIP, "--tune-queries", str(bad)])
    assert result.exit_code == 2 and "tuning queries must be [n," in result.output
