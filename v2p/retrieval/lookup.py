"""Many clips at once as a table: the Python API behind ``v2p batch`` (``v2p.lookup``)."""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=4)
def _opened(path: str, manifest_mtime_ns: int) -> Retriever:
    """One Retriever per index folder and version: repeated lookups reuse its open FAISS index."""
    return Retriever(path)


def cached_retriever(index: str | Path) -> Retriever:
    """The process's Retriever for ``index``, reopened only when its manifest changes (a rebuild)."""
    from v2p.errors import IndexMismatchError
    from v2p.index.store import MANIFEST

    path = Path(index).resolve()
    try:
        mtime = (path / MANIFEST).stat().st_mtime_ns
    except OSError:
        raise IndexMismatchError(f"{index}: not a v2p index (no {MANIFEST}); build one with 'v2p index build'") from None
    return _opened(str(path), mtime)


def lookup(paths: str | os.PathLike | Sequence[str | os.PathLike], *, index: str | Path | None = None, top: int = 5,
           retriever: Retriever | None = None, pooling: str | None = None) -> pa.Table:
    """Top prompts for one video/image path or a list of them, as a table with one row per
    (clip, candidate):

    ``path`` the clip as given; ``rank`` 1 = best; ``prompt`` the bank prompt; ``uuid`` and
    ``prompt_id`` its VidProM uuid and normalised-text id; ``score`` the fused score (z-score
    units when the index has videos, else the text cosine); ``source`` which paths found it
    (text, video, text+video); ``error`` why a clip gave no answer (then one row, others null).
    """
    if retriever is None:
        if index is None:
            raise ValueError("pass index= (an index folder) or retriever=")
        retriever = cached_retriever(index)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # one path, not its characters
    labels = [str(p) for p in paths]
    return results_to_table(labels, retriever.query_videos(labels, top=top, pooling=pooling))
