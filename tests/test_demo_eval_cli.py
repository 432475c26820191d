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
