"""The reranker's image term: a ridge map from picture vectors to the prompt space, chosen out of fold."""

from __future__ import annotations

import numpy as np

from v2p.embed.base import l2_normalize
from v2p.rerank.image_map import ImageMap, fit_image_map, fit_ridge, out_of_fold_scores


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 20)).astype(np.float32)
    a = rng.standard_normal((20, 6)).astype(np.float32)
    mean_x, mean_y, w = fit_ridge(x, x @ a + 3.0, alpha=1e-6)
    assert np.allclose((x - mean_x) @ w + mean_y, x @ a + 3.0, atol=1e-3)


def _world(related: bool, n_prompts: int = 120, clips_per_prompt: int = 2, k: int = 8, seed: int = 0):
    """Prompts, two clips each, and retrieval lists of k candidates whose scores are noise around
    the truth; with ``related`` the clips' pictures are a noisy linear image of their prompt."""
    rng = np.random.default_rng(seed)
    prompts = l2_normalize(rng.standard_normal((n_prompts, 16)))
    clip_prompt = np.repeat(np.arange(n_prompts), clips_per_prompt)
    if related:
        mixing = rng.standard_normal((16, 32))
        pictures = prompts[clip_prompt] @ mixing + 0.3 * rng.standard_normal((len(clip_prompt), 32))
    else:
        pictures = rng.standard_normal((len(clip_prompt), 32))
    pictures = l2_normalize(pictures.astype(np.float32))
    rows = np.empty((len(clip_prompt), k), np.int64)
    positive = rng.integers(0, k, len(clip_prompt))
    for i, p in enumerate(clip_prompt):
        others = rng.choice(np.setdiff1d(np.arange(n_prompts), [p]), k - 1, replace=False)
        rows[i] = np.insert(others, positive[i], p)
    retrieval = rng.standard_normal(rows.shape).astype(np.float32)
    retrieval[np.arange(len(rows)), positive] += 0.5  # retrieval is right about half the time
    return pictures, clip_prompt, prompts, np.arange(len(clip_prompt)), rows, retrieval, positive


def test_a_term_that_can_only_memorise_does_not_earn_its_place():
    """Pictures unrelated to prompts: a map fitted on a list's own clips would look useful; out of
    fold it cannot, so the weight stays 0."""
    world = _world(related=False)
    fitted = fit_image_map(*world)
    assert fitted.term_weight == 0.0 and fitted.record["keeps_retrieval_order"]
    assert fitted.record["gain"][1] <= 0


def test_out_of_fold_scores_never_see_the_lists_own_prompt():
    pictures, clip_prompt, prompts, clips, rows, _, positive = _world(related=False)
    scores = out_of_fold_scores(pictures, clip_prompt, prompts, clips, rows, alpha=1e-4)
    is_truth = np.arange(scores.shape[1]) == positive[:, None]
    truth, others = scores[is_truth], scores[~is_truth]
    assert abs(float(truth.mean()) - float(others.mean())) < 0.05  # no memorised advantage for the truth


def test_a_real_relation_earns_a_weight_and_the_map_round_trips(tmp_path):
    world = _world(related=True)
    fitted = fit_image_map(*world)
    assert fitted.term_weight > 0 and fitted.record["gain"][1] > 0
    assert fitted.record["top1_with_term"] > fitted.record["top1_retrieval"] + 0.1
    fitted.save(tmp_path)
    loaded = ImageMap.load(tmp_path)
    assert loaded.alpha == fitted.alpha and loaded.term_weight == fitted.term_weight
    pictures = world[0][:5]
    assert np.allclose(loaded.project(pictures), fitted.project(pictures))
    assert np.allclose(np.linalg.norm(loaded.project(pictures), axis=1), 1.0, atol=1e-5)
    assert ImageMap.load(tmp_path / "nothing") is None
