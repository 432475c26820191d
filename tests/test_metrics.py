"""Evaluation metrics on hand-made cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from v2p.eval import metrics
from v2p.eval.runner import QueryTruth, score_answers
from v2p.retrieval.search import Candidate, QueryResult


def test_recall_at_k():
    ranks = [1, 3, None, 6, 10]
    assert metrics.recall_at_k(ranks, 1).tolist() == [1, 0, 0, 0, 0]
    assert metrics.recall_at_k(ranks, 5).tolist() == [1, 1, 0, 0, 0]
    assert metrics.recall_at_k(ranks, 10).mean() == pytest.approx(0.8)


def test_bleu_and_rouge_on_known_pairs():
    same = "a red ball bouncing on the beach"
    assert metrics.bleu([same], [same])[0] == pytest.approx(100.0)
    assert metrics.rouge_l([same], [same])[0] == pytest.approx(1.0)
    assert metrics.bleu(["zebra umbrella quantum"], [same])[0] < 5
    assert metrics.rouge_l(["zebra umbrella quantum"], [same])[0] == 0.0
    # ROUGE-L F: LCS "a red ball" = 3 of 3 and 7 words -> P=1, R=3/7
    assert metrics.rouge_l(["a red ball"], [same])[0] == pytest.approx(2 * (3 / 7) / (1 + 3 / 7))


def test_cosine_rows():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[2.0, 0.0], [1.0, 0.0]])
    assert metrics.cosine_rows(a, b).tolist() == [1.0, 0.0]


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    values = np.r_[np.ones(80), np.zeros(20)]
    lo, hi = metrics.bootstrap_ci(values)
    assert lo < 0.8 < hi and 0.65 < lo and hi < 0.92
    assert metrics.bootstrap_ci(values) == (lo, hi)
    assert metrics.bootstrap_ci(np.ones(10)) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a red ball bouncing in the desert", {"colour": "red", "shape": "circle", "count": 1, "action": "bouncing",
                                               "scene": "desert", "camera": "static", "style": "none"}),
        ("Three crimson boxes, sliding to the left, over rolling waves, neon glow, camera pans right, 4k",
         {"colour": "red", "shape": "square", "count": 3, "action": "moving left", "scene": "ocean",
          "camera": "pan right", "style": "neon"}),
        ("a pair of lilac rhombuses drifting rightward on a starry night -camera zoom in -ar 16:9",
         {"colour": "purple", "shape": "diamond", "count": 2, "action": "moving right", "scene": "night",
          "camera": "zoom in", "style": "none"}),
    ],
)
def test_parse_attributes(prompt, expected):
    assert metrics.parse_attributes(prompt) == expected


def test_attribute_matches():
    truth = [{"shape": "circle", "colour": "red"}, {"shape": "star", "colour": "blue"}]
    predicted = [{"shape": "circle", "colour": "blue"}, None]
    m = metrics.attribute_matches(predicted, truth)
    assert m["shape"].tolist() == [1.0, 0.0] and m["colour"].tolist() == [0.0, 0.0]


def _cand(rank, prompt, pid):
    return Candidate(rank, 1.0 / rank, prompt, f"u-{pid}", pid, "text")


def test_score_answers_known_case():
    """Three in-bank queries: found at rank 1, at rank 3, not found; one query outside the bank."""
    bank = {"p1": "a red ball bouncing", "p2": "a blue star rotating", "p3": "two green squares falling"}
    attrs = {"p1": {"shape": "circle", "action": "bouncing"}, "p2": {"shape": "star", "action": "rotating"},
             "p3": {"shape": "square", "action": "moving down"}}
    queries = [QueryTruth(f"q{i}", b"", f"u{i}", bank.get(pid, "a yellow ring growing"), pid,
                          attrs.get(pid, {"shape": "circle", "action": "growing"}))
               for i, pid in enumerate(["p1", "p2", "p3", "p9"])]
    results = [
        QueryResult("q0", [_cand(1, bank["p1"], "p1"), _cand(2, bank["p2"], "p2")]),
        QueryResult("q1", [_cand(1, bank["p3"], "p3"), _cand(2, bank["p1"], "p1"), _cand(3, bank["p2"], "p2")]),
        QueryResult("q2", [_cand(1, bank["p1"], "p1")]),
        QueryResult("q3", [_cand(1, bank["p1"], "p1")]),
    ]
    report = score_answers(queries, results, set(bank), attrs.get).as_dict()
    assert report["n_queries"] == 3
    assert report["recall_at_1"] == pytest.approx(1 / 3)
    assert report["recall_at_5"] == pytest.approx(2 / 3)
    assert report["attribute_accuracy"]["shape"] == pytest.approx(1 / 3)
    assert report["direction_accuracy"] == 0.0  # only q2 has a directed action, and it is wrong
    assert report["bleu"] == pytest.approx(np.mean(metrics.bleu([bank["p1"], bank["p3"], bank["p1"]],
                                                                [bank["p1"], bank["p2"], bank["p3"]])))
    top1 = [bank["p1"], bank["p3"], bank["p1"]]
    from v2p.embed.factory import create_encoder

    enc = create_encoder("minilm").encode_text
    expected = metrics.minilm_cosine(top1, [bank["p1"], bank["p2"], bank["p3"]], enc).mean()
    assert report["minilm_cosine"] == pytest.approx(expected, abs=1e-6)
    nb = report["not_in_bank"]
    assert nb["n_queries"] == 1 and "recall_at_1" not in nb
    assert nb["attribute_accuracy"]["shape"] == 1.0 and nb["attribute_accuracy"]["action"] == 0.0
    assert set(report["intervals"]) >= {"recall_at_1", "minilm_cosine", "bleu", "rouge_l"}


def test_direction_given_axis_ignores_other_axes():
    from v2p.eval.runner import direction_given_axis

    truth = [{"action": "moving left"}, {"action": "moving left"}, {"action": "growing"}, {"action": "rotating"},
             {"action": "moving up"}]
    predicted = [{"action": "moving left"}, {"action": "moving right"}, {"action": "moving up"},
                 {"action": "rotating"}, {"action": "moving up"}]
    assert direction_given_axis(predicted, truth).tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize(("prompt", "action", "expected"), [
    ("Three red boxes sliding to the left, 4k", "moving left", "Three red boxes sliding to the right, 4k"),
    ("a ball, Rising, in the sky", "moving up", "a ball, falling, in the sky"),
    ("a star getting bigger", "growing", "a star getting smaller"),
    ("a star rotating", "rotating", None),
])
def test_swap_direction(prompt, action, expected):
    assert metrics.swap_direction(prompt, action) == expected


def test_failed_queries_are_misses_not_left_out():
    """An encoder that fails on hard clips must not score higher: failures count in R@k."""
    bank = {"p1": "a red ball bouncing", "p2": "a blue star rotating"}
    queries = [QueryTruth("q0", b"", "u0", bank["p1"], "p1", None),
               QueryTruth("q1", b"", "u1", bank["p2"], "p2", None)]
    results = [QueryResult("q0", [_cand(1, bank["p1"], "p1")]), QueryResult("q1", error="cannot decode video")]
    report = score_answers(queries, results, set(bank), lambda pid: None).as_dict()
    assert report["n_queries"] == 2 and report["n_failed"] == 1 and report["errors"] == 1
    assert report["recall_at_1"] == pytest.approx(0.5)
    assert report["minilm_cosine"] == pytest.approx(1.0, abs=1e-5)  # text metrics over answered queries
