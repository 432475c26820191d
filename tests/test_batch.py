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
