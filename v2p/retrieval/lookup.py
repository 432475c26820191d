"""Many clips at once as a table: the Python API behind ``v2p batch`` (``v2p.lookup``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from v2p.retrieval.search import QueryResult, Retriever

LOOKUP_SCHEMA = pa.schema([
    ("path", pa.string()), ("rank", pa.int32()), ("prompt", pa.string()), ("uuid", pa.string()),
    ("prompt_id", pa.string()), ("score", pa.float64()), ("source", pa.string()), ("error", pa.string()),
])


def results_to_table(paths: Sequence[str], results: Sequence[QueryResult]) -> pa.Table:
    """One row per (clip, candidate); a clip that failed gets one row with ``error`` set."""
    rows = []
    for path, res in zip(paths, results, strict=True):
        if res.error is not None or not res.candidates:
            rows.append({"path": path, "rank": None, "prompt": None, "uuid": None, "prompt_id": None,
                         "score": None, "source": None, "error": res.error or "no candidates"})
            continue
        for c in res.candidates:
            rows.append({"path": path, "rank": c.rank, "prompt": c.prompt, "uuid": c.uuid, "prompt_id": c.prompt_id,
                         "score": c.score, "source": c.source, "error": None})
    return pa.Table.from_pylist(rows, schema=LOOKUP_SCHEMA)


def lookup(paths: Sequence[str | os.PathLike], *, index: str | Path | None = None, top: int = 5,
           retriever: Retriever | None = None, pooling: str | None = None) -> pa.Table:
    """Top prompts for each video path, as rows (path, rank, prompt, uuid, prompt_id, score, source, error)."""
    if retriever is None:
        if index is None:
            raise ValueError("pass index= (an index folder) or retriever=")
        retriever = Retriever(index)
    labels = [str(p) for p in paths]
    return results_to_table(labels, retriever.query_videos(labels, top=top, pooling=pooling))
