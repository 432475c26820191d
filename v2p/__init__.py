"""v2p: from a generated video back to its prompt.

The package mirrors the data flow: ``v2p.data`` (shards, frames, synthetic world) ->
``v2p.embed`` (encoders) -> ``v2p.index`` (FAISS + metadata) -> ``v2p.retrieval`` (queries,
DuckDB batches) -> ``v2p.rerank``; ``v2p.cli`` is a thin layer over all of it.
"""

__version__ = "0.1.0"


def lookup(paths, *, index, top: int = 5, **kwargs):
    """Prompts for video files as a pyarrow Table (path, rank, prompt, uuid, score, source, error)."""
    from v2p.retrieval.lookup import lookup as _lookup

    return _lookup(paths, index=index, top=top, **kwargs)


__all__ = ["__version__", "lookup"]
