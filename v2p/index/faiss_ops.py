"""FAISS building and searching, on the GPU when a GPU build and a CUDA device are present.

Search parameters (nprobe, efSearch) are passed per call, never set on the shared index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

try:
    import faiss
except ImportError:  # v2p depends on one of two FAISS wheels through an extra, never both
    from v2p.errors import V2PError

    raise V2PError("FAISS is not installed: pip install 'v2p[cpu]' (or 'v2p[gpu]' on a CUDA 12 machine, "
                   "in an environment without faiss-cpu)") from None

from v2p._threads import configure_faiss_threads
from v2p.index.select import needs_training

configure_faiss_threads()  # OpenMP sized to this process's CPUs (affinity, cgroup), not the machine's

DEFAULT_NPROBE = 32
DEFAULT_EF_SEARCH = 128
# a ``...,Refine(SQ8)`` index re-scores this many times k of its fast-scan shortlist with 8-bit
# codes: at 100k MiniLM prompts, clip queries reached recall@10 0.96-0.97 with 32 (0.75-0.86
# with 4 or 16: clip scores sit close together, and 4-bit codes shuffle them)
REFINE_K_FACTOR = 32


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def new_index(factory: str, dim: int) -> faiss.Index:
    return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)


def build_index(factory: str, dim: int, train: np.ndarray | None, chunks: Iterable[np.ndarray],
                on_add: Callable[[int], None] | None = None) -> faiss.Index:
    """Train on ``train`` (if the type needs it), add every chunk in order, return a CPU index."""
    index = new_index(factory, dim)
    gpu = None
    if gpu_available() and not factory.startswith("HNSW") and "fs" not in factory and "Refine" not in factory:
        # HNSW, fast-scan codes and refinement have no GPU versions
        gpu = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(gpu, 0, index)
    if needs_training(factory) and not index.is_trained:
        index.train(np.ascontiguousarray(train, dtype=np.float32))
    for chunk in chunks:
        index.add(np.ascontiguousarray(chunk, dtype=np.float32))
        if on_add:
            on_add(len(chunk))
    return faiss.index_gpu_to_cpu(index) if gpu is not None else index


def _searched_index(index: faiss.Index) -> faiss.Index:
    """The index whose parameters a search sets: through a pre-transform and a refinement stage."""
    base = faiss.downcast_index(index)
    if isinstance(base, faiss.IndexPreTransform):
        base = faiss.downcast_index(base.index)
    if isinstance(base, faiss.IndexRefine):
        base = faiss.downcast_index(base.base_index)
    return base


def index_kind(index: faiss.Index) -> tuple[str, int]:
    """("ivf", nlist), ("hnsw", M) or ("exact", 0): what a search parameter can tune."""
    base = _searched_index(index)
    if isinstance(base, faiss.IndexIVF):
        return "ivf", int(base.nlist)
    if isinstance(base, faiss.IndexHNSW):
        return "hnsw", int(base.hnsw.nb_neighbors(1))
    return "exact", 0


def search_params(index: faiss.Index, nprobe: int = DEFAULT_NPROBE, ef_search: int = DEFAULT_EF_SEARCH):
    """Per-call search parameters for the index's type (None for exact indexes)."""
    base = _searched_index(index)
    params = None
    if isinstance(base, faiss.IndexIVF):
        params = faiss.SearchParametersIVF(nprobe=nprobe)
    elif isinstance(base, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW(efSearch=ef_search)
    if isinstance(faiss.downcast_index(index), faiss.IndexRefine):
        return faiss.IndexRefineSearchParameters(k_factor=REFINE_K_FACTOR, base_index_params=params)
    return params


def search_kwargs(params: dict) -> dict:
    """Tuned parameters as a manifest stores them (``{"nprobe": 64}``, ``{"efSearch": 128}``)
    -> keyword arguments of :func:`search`."""
    names = {"nprobe": "nprobe", "efSearch": "ef_search"}
    return {names[k]: int(v) for k, v in params.items() if k in names}


def schedule_ivf(index: faiss.Index, n_queries: int) -> None:
    """Split an IVF search over the cores by inverted list when there are fewer queries than cores
    (a ``v2p query``: one clip), by query otherwise (FAISS's default). Only the schedule changes,
    never the result, so setting it per call on a shared index is safe. One query on 2 cores:
    0.42 vs 0.68 ms (60k MiniLM vectors, IVF256,SQ8, nprobe 64); batches keep the default,
    which was as fast or faster for them."""
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:  # not an IVF index: nothing to schedule
        return
    ivf.parallel_mode = 1 if n_queries < faiss.omp_get_max_threads() else 0


def search(index: faiss.Index, queries: np.ndarray, k: int, *, nprobe: int = DEFAULT_NPROBE,
           ef_search: int = DEFAULT_EF_SEARCH) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) [n, k]; ids of -1 mean fewer than k results."""
    k = max(1, min(k, index.ntotal))
    q = np.ascontiguousarray(queries, dtype=np.float32)
    params = search_params(index, nprobe, ef_search)
    if params is None:
        return index.search(q, k)
    schedule_ivf(index, len(q))
    return index.search(q, k, params=params)


def write_index(index: faiss.Index, path: str) -> None:
    """Write an index; FAISS reports a failed write as a RuntimeError, turned into the OSError it
    is (ENOSPC when the disk is full) so callers handle it like any other write."""
    try:
        faiss.write_index(index, path)
    except RuntimeError as exc:
        import errno
        import shutil
        from pathlib import Path

        full = shutil.disk_usage(Path(path).parent).free < (1 << 20)
        raise OSError(errno.ENOSPC if full else errno.EIO,
                      "No space left on device" if full else str(exc).strip().splitlines()[0], path) from None


def read_index(path: str, mmap: bool = False) -> faiss.Index:
    """Read an index; with ``mmap`` its vectors stay in the page cache, shared between processes
    and loaded on demand (measured at 200k x 512: Flat 391 MB resident when read, 1 MB mapped;
    IVF256,SQ8 101 MB vs 1-3 MB). ``IO_FLAG_MMAP_IFC`` maps flat codes too (FAISS >= 1.8)."""
    if not mmap:
        return faiss.read_index(path)
    flags = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP) | faiss.IO_FLAG_READ_ONLY
    try:
        return faiss.read_index(path, flags)
    except RuntimeError:  # an index type FAISS cannot map: read it whole
        return faiss.read_index(path)
