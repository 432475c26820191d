"""The demo pipeline end to end (small), and `v2p eval --json` keys, on the shipped v2p-tiny."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from v2p.cli import app
from v2p.demo import run_demo

runner = CliRunner()
REQUIRED_KEYS = {"recall_at_1", "recall_at_5", "recall_at_10", "minilm_cosine", "bleu", "rouge_l",
                 "attribute_accuracy", "n_queries"}


def test_demo_pipeline_small(tmp_path):
    result = run_demo(tmp_path / "demo", n=60, queries=20)
    assert (tmp_path / "demo" / "index" / "manifest.json").is_file()
    assert len(result.clips) == 3 and all(p.is_file() for p in result.clips)
    assert result.in_bank == [True, True, False]
    assert all(len(a.candidates) == 5 for a in result.answers)
    report = result.report.as_dict()
    assert REQUIRED_KEYS <= set(report)
    assert report["n_queries"] + report["not_in_bank"]["n_queries"] == 20
    # the query clips come from another generator than the bank's: a real cross-generator test
    manifest = json.loads((tmp_path / "demo" / "index" / "manifest.json").read_text())
    assert manifest["videos"]["generators"] == ["ms"] and manifest["encoder"] == "v2p-tiny"
    assert all(p.name.startswith("t2vz-") for p in result.clips)

    out = runner.invoke(app, ["eval", "--index", str(tmp_path / "demo" / "index"), "--queries",
                              str(tmp_path / "demo" / "queries"), "--generator", "t2vz", "--json"])
    assert out.exit_code == 0, out.output
    cli_report = json.loads(out.stdout)
    assert REQUIRED_KEYS <= set(cli_report) and cli_report["mode"] == "plain"
    assert cli_report["recall_at_5"] == report["recall_at_5"]
    table = runner.invoke(app, ["eval", "--index", str(tmp_path / "demo" / "index"), "--queries",
                                str(tmp_path / "demo" / "queries"), "--generator", "t2vz"])
    assert table.exit_code == 0 and "recall_at_5" in table.stdout
    probe = cli_report["direction_probe"]
    if probe["n"]:
        assert f"direction probe: {probe['accuracy']:.3f}" in table.stdout


def _pika_bank(small_shard, tmp_path, **config):
    from v2p.data.shard import open_shard
    from v2p.index.build import BuildConfig, build_index

    build_index(open_shard(small_shard), tmp_path / "index",
                BuildConfig(encoder="v2p-tiny", videos=True, generators=["pika"], **config))
    return tmp_path / "index"


def test_eval_uses_the_banks_flag_stripping(small_shard, tmp_path):
    """A bank built with --strip-flags holds every prompt of the shard; eval must see that (it
    computed query ids without stripping and counted flagged prompts as not in the bank)."""
    from v2p.data.shard import open_shard
    from v2p.eval.runner import evaluate

    index = _pika_bank(small_shard, tmp_path, strip_flags=True)
    report = evaluate(index, open_shard(small_shard), generator="vc2").as_dict()
    assert report["n_queries"] == 12 and report["not_in_bank"]["n_queries"] == 0


def test_eval_refuses_the_index_own_videos_and_empty_query_sets(small_shard, tmp_path):
    index = _pika_bank(small_shard, tmp_path)
    own = runner.invoke(app, ["eval", "--index", str(index), "--queries", str(small_shard), "--generator", "pika"])
    assert own.exit_code != 0 and "in the index itself" in own.output
    none = runner.invoke(app, ["eval", "--index", str(index), "--queries", str(small_shard), "--generator", "t2vz"])
    assert none.exit_code != 0
    assert "no query videos of generator 't2vz'" in none.output and "its generators: ms, pika, vc2" in none.output
