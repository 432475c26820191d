"""Ratings of answers, kept in a DuckDB file: what users say about the prompts v2p shows.

One row per rating: which clip (content hash), which query (id), which candidate (prompt id,
rank, text), the rating (+1 / -1), an optional "the prompt I actually wanted", the candidates
shown, and when. Every write is its own committed transaction on a fresh connection: a rating
acknowledged to the user survives a ``kill -9`` of the server (DuckDB's write-ahead log).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

from v2p.errors import V2PError

TABLE = "ratings"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    rated_at TIMESTAMP DEFAULT current_timestamp,
    query_id VARCHAR NOT NULL,
    clip_sha256 VARCHAR,
    query_text VARCHAR,
    index_path VARCHAR,
    encoder VARCHAR,
    prompt_id VARCHAR,
    prompt VARCHAR,
    rank INTEGER,
    rating INTEGER NOT NULL,
    wanted_prompt VARCHAR,
    shown VARCHAR
)
"""
EXPORT_FORMATS = ("parquet", "csv")


@dataclass
class Rating:
    query_id: str
    rating: int  # +1 (good) or -1 (bad)
    prompt_id: str | None = None
    prompt: str | None = None
    rank: int | None = None
    clip_sha256: str | None = None
    query_text: str | None = None
    wanted_prompt: str | None = None
    shown: list[dict] | None = None  # the candidates on screen: [{prompt_id, rank, score}]


class FeedbackStore:
    """A DuckDB file of ratings; safe to share between the server's threads."""

    def __init__(self, path: str | Path, *, index_path: str = "", encoder: str = ""):
        self.path = Path(path)
        self.index_path, self.encoder = index_path, encoder
        self._lock = threading.Lock()  # one writer at a time inside this process
        try:
            with duckdb.connect(str(self.path)) as con:
                con.execute(SCHEMA)
        except duckdb.Error as exc:
            raise V2PError(f"{self.path}: cannot open as a DuckDB feedback file ({str(exc).splitlines()[0]})") from None

    def add(self, rating: Rating) -> None:
        if rating.rating not in (-1, 1):
            raise V2PError("rating must be 1 (good) or -1 (bad)")
        row = [rating.query_id, rating.clip_sha256, rating.query_text, self.index_path, self.encoder,
               rating.prompt_id, rating.prompt, rating.rank, rating.rating, rating.wanted_prompt,
               json.dumps(rating.shown, ensure_ascii=False) if rating.shown is not None else None]
        with self._lock, duckdb.connect(str(self.path)) as con:
            con.execute(f"INSERT INTO {TABLE} (query_id, clip_sha256, query_text, index_path, encoder, prompt_id, "
                        "prompt, rank, rating, wanted_prompt, shown) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def count(self) -> int:
        with self._lock, duckdb.connect(str(self.path), read_only=False) as con:
            return int(con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])


def export_feedback(db: str | Path, out: str | Path, fmt: str | None = None) -> int:
    """Write every rating to Parquet or CSV (by ``fmt`` or ``out``'s suffix); returns the row count."""
    db, out = Path(db), Path(out)
    if not db.is_file():
        raise V2PError(f"{db}: no such feedback file")
    fmt = fmt or out.suffix.lstrip(".").lower()
    if fmt not in EXPORT_FORMATS:
        raise V2PError(f"export format must be one of {', '.join(EXPORT_FORMATS)} (got {fmt!r})")
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if TABLE not in tables:
            raise V2PError(f"{db}: not a v2p feedback file (no table {TABLE!r})")
        n = int(con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])
        target = str(out).replace("'", "''")
        option = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER"
        con.execute(f"COPY (SELECT * FROM {TABLE} ORDER BY rated_at) TO '{target}' ({option})")
    return n
