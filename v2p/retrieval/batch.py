"""``v2p batch``: read video paths from a DuckDB table, write their prompts back into the same file.

Identifiers are validated (letters, digits, underscore; optionally ``schema.table``) and
quoted, so a name like ``x; DROP TABLE y`` is refused before any SQL runs. A ``--sql``
source is parsed with DuckDB's own statement splitter and must be exactly one SELECT
(wrapping text in a subquery is not enough: ``x) AS a; DROP TABLE keep; SELECT * FROM (y``
closes the wrapper). Everything (names, source, output table, index) is checked before anything
is written. Results are committed one transaction per chunk, so ``kill -9`` or a full disk loses
at most the chunk in flight; a re-run skips paths that already have result rows and retries
paths that failed. A second run on a file in use gets a lock error naming the holder.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from v2p.errors import V2PError
from v2p.retrieval.lookup import results_to_table
from v2p.retrieval.search import Retriever, VideoAnswerer

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
RESULT_COLUMNS = [("path", "VARCHAR"), ("rank", "INTEGER"), ("prompt", "VARCHAR"), ("uuid", "VARCHAR"),
                  ("prompt_id", "VARCHAR"), ("score", "DOUBLE"), ("source", "VARCHAR"), ("error", "VARCHAR"),
                  ("queried_at", "TIMESTAMP")]


def quote_identifier(name: str, what: str = "identifier") -> str:
    """``schema.table`` -> ``"schema"."table"``; anything else than plain names is refused."""
    if not isinstance(name, str) or not _IDENT_RE.match(name):
        raise V2PError(f"invalid {what} {name!r}: use letters, digits and underscores (optionally schema.name)")
    return ".".join(f'"{part}"' for part in name.split("."))


@dataclass
class BatchReport:
    paths: int
    skipped_done: int
    queried: int
    failed: int
    rows_written: int
    out_table: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def single_select(sql: str) -> str:
    """The one SELECT statement of ``sql`` (trailing semicolon dropped); anything else is refused."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise V2PError(f"--sql does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise V2PError(f"--sql must be exactly one SELECT statement; it holds {len(statements)}")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        raise V2PError(f"--sql must be a SELECT statement, not {statement.type.name}")
    return statement.query.strip().rstrip(";")


def _source_paths(con: duckdb.DuckDBPyConnection, table: str | None, column: str | None, sql: str | None) -> list[str]:
    if sql is not None:
        if table is not None:
            raise V2PError("pass either --sql or --table/--column, not both")
        sql = single_select(sql)
        col = quote_identifier(column, "column") if column else None
        try:
            rel = con.sql(f"SELECT * FROM ({sql}) AS v2p_source")
        except duckdb.Error as exc:
            raise V2PError(f"--sql failed: {str(exc).splitlines()[0]}") from None
        if col is None and len(rel.columns) != 1:
            raise V2PError(f"--sql returns {len(rel.columns)} columns {rel.columns}; return one, or name it with --column")
        query = f"SELECT DISTINCT {col or _quote_plain(rel.columns[0])} FROM ({sql}) AS v2p_source"
    else:
        if table is None or column is None:
            raise V2PError("pass --table and --column (or --sql)")
        qt, qc = quote_identifier(table, "table name"), quote_identifier(column, "column name")
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if table.split(".")[-1] not in tables:
            raise V2PError(f"no table {table!r} in the database; tables: {', '.join(sorted(tables)) or 'none'}")
        cols = [r[0] for r in con.execute(f"DESCRIBE {qt}").fetchall()]
        if column not in cols:
            raise V2PError(f"table {table!r} has no column {column!r}; columns: {', '.join(cols)}")
        query = f"SELECT DISTINCT {qc} FROM {qt}"
    try:
        values = [r[0] for r in con.execute(query + " ORDER BY 1").fetchall()]
    except duckdb.Error as exc:
        raise V2PError(f"reading video paths failed: {str(exc).splitlines()[0]}") from None
    return [str(v) for v in values if v is not None and str(v).strip()]


def _quote_plain(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_out_table(con: duckdb.DuckDBPyConnection, out: str) -> tuple[str, bool]:
    """The quoted output table name and whether it exists (an existing one must have our columns)."""
    q = quote_identifier(out, "output table name")
    existing = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if out.split(".")[-1] not in existing:
        return q, False
    cols = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {q}").fetchall()]
    if [c for c, _ in cols] != [c for c, _ in RESULT_COLUMNS]:
        raise V2PError(f"table {out!r} exists with other columns ({', '.join(c for c, _ in cols)}); "
                       "choose another --out-table")
    return q, True


def _connect(db: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(db))
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            holder = re.search(r"\(PID (\d+)\)", text)
            who = f"process {holder.group(1)}" if holder else "another process"
            raise V2PError(f"{db}: in use by {who} (DuckDB allows one writer per file); wait for that run to "
                           "finish, then run again: rows it committed are kept and skipped") from None
        raise V2PError(f"{db}: cannot open as DuckDB ({text.splitlines()[0]})") from None
    except duckdb.Error as exc:
        raise V2PError(f"{db}: cannot open as DuckDB ({str(exc).splitlines()[0]})") from None


CRASH_ENV = "V2P_CRASH_AT"  # test hook: "batch:1" kills the run once chunk 1 is committed, "batch:1:open" inside it


def _commit_rows(con: duckdb.DuckDBPyConnection, db: Path, q_out: str, part: list[str], rows: pa.Table,
                 k: int) -> None:
    """One transaction per chunk: its failed rows from an earlier run are replaced and its results
    inserted together, so a kill or a full disk loses at most this chunk and never half of it."""
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(f"DELETE FROM {q_out} WHERE error IS NOT NULL AND list_contains(?, path)", [part])
        con.register("v2p_rows", rows)
        con.execute(f"INSERT INTO {q_out} SELECT path, rank, prompt, uuid, prompt_id, score, source, error, "
                    "now()::TIMESTAMP FROM v2p_rows")
        con.unregister("v2p_rows")
        if os.environ.get(CRASH_ENV) == f"batch:{k}:open":
            os.kill(os.getpid(), signal.SIGKILL)
        con.execute("COMMIT")
    except duckdb.Error as exc:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        reason = str(exc).splitlines()[0]
        if "No space left" in reason or "disk" in reason.lower():
            reason = "no space left on the device"
        raise V2PError(f"{db}: writing results failed ({reason}); the rows committed before are kept: "
                       "free space and run again to fill only what is missing") from None
    if os.environ.get(CRASH_ENV) == f"batch:{k}":
        os.kill(os.getpid(), signal.SIGKILL)


def run_batch(db: str | Path, *, out_table: str, index: str | Path | None = None, table: str | None = None,
              column: str | None = None, sql: str | None = None, top: int = 5, chunk: int = 32,
              retriever: VideoAnswerer | None = None, on_progress: Callable[[int, int], None] | None = None
              ) -> BatchReport:
    """Query every path of the source and write result rows into ``out_table`` of the same file.

    ``retriever`` answers the clips (a plain :class:`Retriever` over ``index`` by default, or a reranker)."""
    db = Path(db)
    if not db.is_file():
        raise V2PError(f"{db}: no such DuckDB file")
    con = _connect(db)
    try:
        # everything is checked before anything is written: names, source, output table, index
        quote_identifier(out_table, "output table name")
        paths = _source_paths(con, table, column, sql)
        q_out, out_exists = _check_out_table(con, out_table)
        done = ({r[0] for r in con.execute(f"SELECT DISTINCT path FROM {q_out} WHERE error IS NULL").fetchall()}
                if out_exists else set())
        todo = [p for p in paths if p not in done]
        if todo and retriever is None:
            if index is None:
                raise V2PError("pass --index")
            retriever = Retriever(index)  # opens and checks the index now, before the table exists
        if not out_exists:
            con.execute(f"CREATE TABLE {q_out} (" + ", ".join(f"{c} {t}" for c, t in RESULT_COLUMNS) + ")")
        if on_progress:
            on_progress(0, len(todo))
        failed = written = 0
        for k, start in enumerate(range(0, len(todo), chunk)):
            part = todo[start:start + chunk]
            results = retriever.query_videos(part, top=top)
            rows = results_to_table(part, results)
            rows = rows.append_column("queried_at", pa.array([None] * rows.num_rows, pa.timestamp("us")))
            failed += sum(1 for r in results if r.error is not None)
            _commit_rows(con, db, q_out, part, rows, k)
            written += rows.num_rows
            if on_progress:
                on_progress(len(part), len(todo))
        return BatchReport(len(paths), len(paths) - len(todo), len(todo), failed, written, out_table)
    finally:
        con.close()
