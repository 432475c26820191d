"""DuckDB batch lookup on real database files: rows, error rows, re-runs, identifier safety."""

from __future__ import annotations

import duckdb
import pytest
from typer.testing import CliRunner

from v2p import lookup
from v2p.cli import app
from v2p.data.bad_records import BadRecords
from v2p.data.shard import open_shard
from v2p.errors import V2PError
from v2p.retrieval.batch import quote_identifier, run_batch
from v2p.retrieval.lookup import LOOKUP_SCHEMA

runner = CliRunner()


@pytest.fixture()
def clip_db(small_shard, tmp_path):
    paths = []
    for ref, data in list(open_shard(small_shard).video_payloads(BadRecords()))[:4]:
        p = tmp_path / ref.member
        p.write_bytes(data)
        paths.append(str(p))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video")
    paths.append(str(corrupt))
    db = tmp_path / "clips.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE clips (id INTEGER, video_path VARCHAR)")
    con.executemany("INSERT INTO clips VALUES (?, ?)", [(i, p) for i, p in enumerate(paths)])
    con.close()
    return db, paths


def rows(db, sql):
    con = duckdb.connect(str(db))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_batch_writes_results_and_error_rows(clip_db, tiny_clip_index):
    db, paths = clip_db
    report = run_batch(db, table="clips", column="video_path", out_table="prompts_found", index=tiny_clip_index,
                       top=3, chunk=2)
    assert (report.paths, report.queried, report.failed, report.skipped_done) == (5, 5, 1, 0)
    assert report.rows_written == 4 * 3 + 1
    errs = rows(db, "SELECT path, error FROM prompts_found WHERE error IS NOT NULL")
    assert len(errs) == 1 and errs[0][0] == paths[-1] and "cannot decode video" in errs[0][1]
    ranks = rows(db, f"SELECT rank FROM prompts_found WHERE path = '{paths[0]}' ORDER BY rank")
    assert [r[0] for r in ranks] == [1, 2, 3]


def test_rerun_skips_done_and_retries_failures(clip_db, tiny_clip_index):
    db, paths = clip_db
    run_batch(db, table="clips", column="video_path", out_table="r", index=tiny_clip_index, top=2)
    again = run_batch(db, table="clips", column="video_path", out_table="r", index=tiny_clip_index, top=2)
    assert again.skipped_done == 4 and again.queried == 1 and again.failed == 1
    assert rows(db, "SELECT count(*) FROM r")[0][0] == 4 * 2 + 1  # the old error row was replaced


def test_sql_source(clip_db, tiny_clip_index):
    db, _ = clip_db
    report = run_batch(db, sql="SELECT video_path FROM clips WHERE id < 2", out_table="r", index=tiny_clip_index)
    assert report.paths == 2


@pytest.mark.parametrize("name", ["x; DROP TABLE clips", "clips--", 'a"b', "1abc", "a.b.c", ""])
def test_injection_in_identifiers_is_refused(clip_db, tiny_clip_index, name):
    db, _ = clip_db
    with pytest.raises(V2PError, match="invalid"):
        run_batch(db, table=name, column="video_path", out_table="r", index=tiny_clip_index)
    with pytest.raises(V2PError, match="invalid"):
        run_batch(db, table="clips", column="video_path", out_table=name, index=tiny_clip_index)
    assert rows(db, "SELECT count(*) FROM clips")[0][0] == 5


@pytest.mark.parametrize("sql", [
    "SELECT video_path FROM clips; DROP TABLE keep",
    # closes the old subquery wrapper: it ran the DROP
    "SELECT video_path FROM clips) AS a; DROP TABLE keep; SELECT * FROM (SELECT video_path FROM clips",
    "DROP TABLE keep",
    "CREATE TABLE x AS SELECT 1",
])
def test_sql_must_be_exactly_one_select(clip_db, tiny_clip_index, sql):
    db, _ = clip_db
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE OR REPLACE TABLE keep AS SELECT 1 AS x")
    with pytest.raises(V2PError, match="--sql"):
        run_batch(db, sql=sql, out_table="r", index=tiny_clip_index)
    assert rows(db, "SELECT count(*) FROM keep")[0][0] == 1
    assert rows(db, "SELECT count(*) FROM clips")[0][0] == 5


def test_refused_input_creates_no_output_table(clip_db, tiny_clip_index):
    db, _ = clip_db
    with pytest.raises(V2PError):
        run_batch(db, table="nope", column="video_path", out_table="never_made", index=tiny_clip_index)
    assert rows(db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'never_made'")[0][0] == 0


def test_wrong_table_or_column_is_named(clip_db, tiny_clip_index):
    db, _ = clip_db
    with pytest.raises(V2PError, match="no table 'videos' in the database; tables: clips"):
        run_batch(db, table="videos", column="video_path", out_table="r", index=tiny_clip_index)
    with pytest.raises(V2PError, match="has no column 'path'; columns: id, video_path"):
        run_batch(db, table="clips", column="path", out_table="r", index=tiny_clip_index)
    with pytest.raises(V2PError, match="exists with other columns"):
        run_batch(db, table="clips", column="video_path", out_table="clips", index=tiny_clip_index)


def test_quote_identifier():
    assert quote_identifier("main.clips") == '"main"."clips"'


def test_batch_cli(clip_db, tiny_clip_index):
    db, _ = clip_db
    result = runner.invoke(app, ["batch", "--db", str(db), "--table", "clips", "--column", "video_path",
                                 "--out-table", "found", "--index", str(tiny_clip_index), "--json"])
    assert result.exit_code == 0, result.output
    assert '"failed": 1' in result.stdout
    bad = runner.invoke(app, ["batch", "--db", str(db), "--table", "x; DROP TABLE clips", "--column", "c",
                              "--out-table", "found", "--index", str(tiny_clip_index)])
    assert bad.exit_code == 2 and "invalid table name" in bad.stderr


def test_python_lookup_api(clip_db, tiny_clip_index):
    _, paths = clip_db
    table = lookup(paths[:2] + paths[-1:], index=tiny_clip_index, top=2)
    assert table.schema == LOOKUP_SCHEMA
    assert table.num_rows == 2 * 2 + 1
    assert table.column("error").null_count == 4


def test_a_damaged_index_creates_no_output_table(clip_db, tiny_clip_index, tmp_path):
    import shutil

    db, _ = clip_db
    broken = tmp_path / "broken-index"
    shutil.copytree(tiny_clip_index, broken)
    (broken / "prompts.faiss").write_bytes(b"")
    with pytest.raises(V2PError, match="prompts.faiss: damaged index file"):
        run_batch(db, table="clips", column="video_path", out_table="never_made", index=broken)
    assert rows(db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'never_made'")[0][0] == 0


def _cli_batch(db, index, *extra, env=None):
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "v2p.cli", "batch", "--db", str(db), "--table", "clips", "--column", "video_path",
           "--out-table", "found", "--index", str(index), "--chunk", "1", "--json", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize("point", ["batch:1", "batch:2:open"])
def test_kill_9_mid_batch_loses_at_most_the_chunk_in_flight(clip_db, tiny_clip_index, point):
    import json

    db, paths = clip_db
    killed = _cli_batch(db, tiny_clip_index, env={"V2P_CRASH_AT": point})
    assert killed.returncode == -9, killed.stderr
    committed = rows(db, "SELECT DISTINCT path FROM found")
    assert len(committed) == 2, committed  # chunks 0 and 1: after chunk 1, or chunk 2 rolled back
    resumed = _cli_batch(db, tiny_clip_index)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["skipped_done"] + report["queried"] == len(paths)
    failed_before = sum(1 for (p,) in committed if p.endswith("corrupt.mp4"))  # error rows are retried
    assert report["queried"] == len(paths) - 2 + failed_before
    per_path = dict(rows(db, "SELECT path, count(*) FROM found GROUP BY path"))
    assert set(per_path) == set(paths)
    assert all(n in (1, 5) for n in per_path.values()), per_path  # an error row or the top 5, never twice


def test_a_second_run_on_a_file_in_use_gets_a_lock_error(clip_db, tiny_clip_index):
    import os

    db, _ = clip_db
    holder = duckdb.connect(str(db))  # this test process holds the write lock, as a running batch would
    try:
        busy = _cli_batch(db, tiny_clip_index)
    finally:
        holder.close()
    assert busy.returncode == 2
    assert f"in use by process {os.getpid()}" in busy.stderr and "Traceback" not in busy.stderr
    assert _cli_batch(db, tiny_clip_index).returncode == 0  # and the file is fine afterwards
    assert rows(db, "SELECT count(*) FROM clips")[0][0] == 5


def test_a_full_disk_mid_batch_is_a_clear_error_and_keeps_committed_rows(clip_db, tiny_clip_index, small_tmpfs):
    import shutil

    db, paths = clip_db
    on_small = small_tmpfs / "clips.duckdb"
    shutil.copy(db, on_small)
    filler = small_tmpfs / "filler"
    free = shutil.disk_usage(small_tmpfs).free
    filler.write_bytes(b"\0" * max(0, free - 40_000))  # room for a little, not for the whole run
    with pytest.raises(V2PError, match="writing results failed|cannot open") as info:
        for _ in range(20):  # grow the results until the disk is full
            run_batch(on_small, table="clips", column="video_path", out_table=f"found_{_}", index=tiny_clip_index,
                      chunk=1)
    assert str(on_small) in str(info.value)
    filler.unlink()
    con = duckdb.connect(str(on_small))  # the file still opens, and every committed chunk is whole
    try:
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
                  if t.startswith("found_")]
        for t in tables:
            counts = dict(con.execute(f"SELECT path, count(*) FROM {t} GROUP BY path").fetchall())
            assert all(n in (1, 5) for n in counts.values()), (t, counts)
    finally:
        con.close()
