"""Regenerate-and-compare, the per-property breakdown and the paired bootstrap: hand-made cases,
then a real evaluation of a real index with clips re-rendered by the synthetic generators."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from v2p.cli import app
from v2p.eval import metrics
from v2p.eval.breakdown import breakdown, motion_kind
from v2p.eval.regenerate import predicted_attributes, summarise_regeneration
from v2p.retrieval.search import Candidate, QueryResult

runner = CliRunner()

ATTRS = {"shape": "circle", "colour": "red", "count": 1, "action": "moving left", "scene": "sky",
         "camera": "static", "style": "none"}


def test_paired_bootstrap_is_the_interval_of_the_gain():
    before = np.array([1, 0, 0, 1, 0, 1, 0, 0] * 10, float)
    assert metrics.paired_bootstrap_ci(before, before) == (0.0, 0.0, 0.0)
    after = before.copy()
    after[1::8] = 1.0  # ten queries fixed, none broken
    gain, lo, hi = metrics.paired_bootstrap_ci(before, after)
    assert gain == pytest.approx(0.125) and 0 < lo < gain < hi


def test_breakdown_groups_and_hardest():
    records = []
    for i in range(20):
        moving = i % 2 == 0
        attrs = dict(ATTRS, action="moving left" if moving else "still", colour="red" if i < 10 else "blue")
        records.append({"name": str(i), "generator": "pika", "in_bank": i < 18, "rank": 1 if moving else 3,
                        "cosine": 0.9 if moving else 0.5, "attributes": attrs})
    out = breakdown(records, min_queries=3)
    row = {(r["group"], r["value"]): r for r in out["groups"]}
    assert row[("motion", "directed")]["recall_at_1"] == 1.0 and row[("motion", "still")]["recall_at_1"] == 0.0
    assert row[("action", "still")]["recall_at_5"] == 1.0  # rank 3
    assert row[("prompt", "not in bank")]["n_in_bank"] == 0 and row[("prompt", "not in bank")]["recall_at_1"] is None
    assert row[("generator", "pika")]["n"] == 20 and row[("camera motion", "static")]["n"] == 20
    assert row[("colour", "red")]["minilm_cosine"] == pytest.approx(0.7)
    assert out["hardest"][0]["recall_at_1"] == 0.0
    assert motion_kind("rotating") == "undirected" and motion_kind(None) is None


def _result(prompt: str, pid: str = "p", spliced: str | None = None) -> QueryResult:
    return QueryResult("q", [Candidate(1, 1.0, prompt, "u", pid, "text")], spliced=spliced)


def test_predicted_attributes_bank_parsed_and_failed():
    bank = {"p": ATTRS}
    attrs, parsed = predicted_attributes(_result("anything", "p"), bank.get)
    assert attrs == ATTRS and not parsed  # a bank prompt: its own attributes column
    attrs, parsed = predicted_attributes(_result("x", "p", spliced="two crimson cubes rising over the ocean, neon"),
                                         bank.get)
    assert parsed and attrs["colour"] == "red" and attrs["count"] == 2 and attrs["action"] == "moving up"
    attrs, parsed = predicted_attributes(_result("a cat playing piano", "nope"), bank.get)
    assert attrs is None and parsed  # names no shape/colour/scene: cannot be drawn


def test_summarise_regeneration_counts_parse_failures_as_misses():
    good = {"parsed": True, "parse_failed": False, "video_cosine": 0.8, "ceiling_cosine": 0.9,
            "agree": {k: 1.0 for k in ATTRS}}
    failed = {"parsed": True, "parse_failed": True, "video_cosine": None, "ceiling_cosine": 0.9, "agree": None}
    out = summarise_regeneration([good, failed])
    assert out["n"] == 2 and out["parse_failures"] == 1 and out["parse_failure_rate"] == 0.5
    assert out["video_cosine"] == pytest.approx(0.8) and out["all_attributes_agree"] == 0.5


@pytest.fixture(scope="module")
def t2vz_queries(tmp_path_factory):
    """The small shard's prompts (seed 7) rendered by t2vz, a generator the tiny index does not hold."""
    from v2p.data.synth.writer import write_synthetic_shard

    out = tmp_path_factory.mktemp("shards") / "t2vz"
    write_synthetic_shard(out, 12, seed=7, workers=1, generators=("t2vz",))
    return out


def test_eval_regenerate_and_breakdown_on_a_real_index(tiny_clip_index, t2vz_queries):
    from v2p.data.shard import open_shard
    from v2p.eval.runner import evaluate

    report = evaluate(tiny_clip_index, open_shard(t2vz_queries), generator="t2vz", regenerate=True)
    regen = report.meta["regenerate"]["in_bank"]
    assert regen["n"] == 12 and regen["parse_failures"] == 0  # bank prompts carry their attributes
    assert -1.0 <= regen["video_cosine"] <= 1.0 and -1.0 <= regen["ceiling_cosine"] <= 1.0
    right = [r for r in report.per_query if r["rank"] == 1]
    wrong = [r for r in report.per_query if r["rank"] != 1]
    assert right and wrong  # the random tiny CLIP gets some right, some wrong
    for r in right:  # a right top-1 is the true attributes rendered with the same fresh seed: the ceiling exactly
        assert r["regenerated"]["video_cosine"] == pytest.approx(r["regenerated"]["ceiling_cosine"], abs=1e-5)
        assert all(r["regenerated"]["agree"].values())
    assert all(not all(r["regenerated"]["agree"].values()) for r in wrong)  # 12 prompts: no two share every attribute
    assert len(report.per_query) == 12 and {r["generator"] for r in report.per_query} == {"t2vz"}
    groups = {(g["group"], g["value"]) for g in report.meta["breakdown"]["groups"]}
    assert ("generator", "t2vz") in groups and ("prompt", "in bank") in groups


def test_cli_eval_regenerate_json_and_refusal(tiny_clip_index, t2vz_queries, tmp_path):
    result = runner.invoke(app, ["eval", "--index", str(tiny_clip_index), "--queries", str(t2vz_queries),
                                 "--generator", "t2vz", "--limit", "4", "--regenerate", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["regenerate"]["in_bank"]["n"] == 4 and "hardest" in payload["breakdown"]
    table = runner.invoke(app, ["eval", "--index", str(tiny_clip_index), "--queries", str(t2vz_queries),
                                "--generator", "t2vz", "--limit", "4", "--regenerate"])
    assert table.exit_code == 0 and "regenerated (in bank, 4)" in table.stdout
    labels = tmp_path / "labels.csv"
    labels.write_text("file,prompt\nx.png,a cat\n")
    refused = runner.invoke(app, ["eval", "--index", str(tiny_clip_index), "--labels", str(labels), "--regenerate"])
    assert refused.exit_code == 2 and "--regenerate" in refused.output
