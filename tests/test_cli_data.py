"""The CLI's data commands, run as a user would (typer's runner, real files)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from v2p.cli import app

runner = CliRunner()


def test_synth_writes_vidprom_layout(tmp_path):
    result = runner.invoke(app, ["synth", "--n", "4", "--out", str(tmp_path / "s"), "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_prompts"] == 4 and summary["n_videos"] == 12
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "ms_videos_1.tar", "pika_videos_1.tar", "prompts.csv", "vc2_videos_1.tar"]


def test_shard_inspect_json(small_shard):
    result = runner.invoke(app, ["shard", "inspect", str(small_shard), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["videos"] == 36 and summary["prompts"]["unique"] == 12


def test_shard_inspect_table(small_shard):
    result = runner.invoke(app, ["shard", "inspect", str(small_shard)])
    assert result.exit_code == 0
    assert "unique prompts" in result.stdout and "pika" in result.stdout


def test_unreadable_input_is_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("uuid,text\n1,hello\n")
    result = runner.invoke(app, ["shard", "inspect", str(bad)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("error:") and "missing required column 'prompt'" in lines[0]
    assert "Traceback" not in result.output


def test_inspect_reports_bad_rows_with_reasons(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("uuid,prompt\nu1,good\nu2,\nu1,other\n")
    result = runner.invoke(app, ["shard", "inspect", str(path), "--json"])
    assert result.exit_code == 0
    bad = json.loads(result.stdout)["bad"]
    assert bad["by_reason"] == {"conflicting_uuid": 1, "empty_prompt": 1}
    assert {e["location"] for e in bad["examples"]} == {"row 2 (uuid u2)", "row 3 (uuid u1)"}


def test_logs_get_plain_progress_lines_and_refusals_come_first(tmp_path):
    """stderr that is not a terminal (a log) gets plain progress lines, not a live bar; a refused
    --out is reported before any progress is drawn."""
    result = runner.invoke(app, ["synth", "--n", "3", "--out", str(tmp_path / "s"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "rendering videos: 9/9 in" in result.stderr and "done" in result.stderr
    again = runner.invoke(app, ["synth", "--n", "3", "--out", str(tmp_path / "s"), "--workers", "1"])
    assert again.exit_code == 2 and "pass --overwrite" in again.stderr
    assert "rendering videos" not in again.stderr


def test_version_and_short_help():
    from v2p import __version__

    assert runner.invoke(app, ["--version"]).stdout.strip() == f"v2p {__version__}"
    short = runner.invoke(app, ["index", "build", "-h"])
    assert short.exit_code == 0 and "--encoder" in short.stdout and "<bool>" not in short.stdout
