"""Pick a FAISS index type from (N, dim, memory budget): small pure functions, each testable alone.

The rule, in order (first that fits the budget wins):

1. ``Flat``       exact inner product, fp32                 N * dim * 4 bytes
2. ``SQfp16``     exact scan over fp16 codes (~1e-3 error)  N * dim * 2
3. ``IVF{k},SQ8`` inverted lists over 8-bit codes            N * (dim + 8) + k * dim * 4
4. ``IVF{k},PQ{m}`` product quantisation, the largest m that fits

Exact search is preferred while it fits because cross-modal queries (a video against text
vectors) lose more recall under compression than same-modal ones. This rule names the
default type; the build then measures (``v2p/index/tune.py``): :func:`candidate_factories`
lists the types worth building (exact, IVF, inverted lists over 4-bit fast-scan codes
re-scored with 8-bit ones, and ``HNSW32,SQ8`` where the budget holds its 1.6x memory), and
the tuner keeps the fastest one that reaches the recall target on clip queries. At its own
default efSearch HNSW looked worse than IVF on random clustered vectors; tuned on real clip
queries it was faster (640k MiniLM prompts: 1.8-2.2 vs 2.7 ms for v2p-tiny clips at
recall@10 0.95). Sizes are estimates of the index in memory, not of the process.
"""

from __future__ import annotations

import math
import re

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
HNSW_M = 32


def parse_size(text: str) -> int:
    """'4G' / '512M' / '1.5GB' / '1000' -> bytes."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 4G, 512M)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def ivf_lists(n: int) -> int:
    """Number of IVF lists: about 4 * sqrt(N), a power of two, at least 16 and at most N / 39."""
    k = 2 ** round(math.log2(max(16.0, 4.0 * math.sqrt(max(n, 1)))))
    while k > 16 and k * 39 > n:  # FAISS wants >= 39 training points per list
        k //= 2
    return k


def pq_subquantizers(dim: int, n: int, budget: int) -> int | None:
    """Largest m dividing dim (and <= dim / 2) with N * m bytes of codes within the budget."""
    for m in sorted((d for d in range(1, dim // 2 + 1) if dim % d == 0), reverse=True):
        if m <= 64 and n * (m + 8) <= budget:
            return m
    return None


def fast_scan_factory(n: int, dim: int) -> str:
    """Inverted lists over 4-bit fast-scan codes (two dimensions per sub-quantizer), whose
    shortlist is re-scored with 8-bit codes: scanning a list costs far less than SQ8's, which is
    what clip queries need (they scan many lists), and the re-scoring keeps their recall."""
    return f"IVF{ivf_lists(n)},PQ{dim // 2}x4fs,Refine(SQ8)"


def index_memory(factory: str, n: int, dim: int) -> int:
    """Estimated bytes of an index of N vectors built from ``factory``."""
    if factory.endswith(",Refine(SQ8)"):
        return index_memory(factory[: -len(",Refine(SQ8)")], n, dim) + n * dim
    if factory == "Flat":
        return n * dim * 4
    if factory == "SQfp16":
        return n * dim * 2
    if factory.startswith("HNSW"):
        m = int(factory[4:].split(",")[0])
        return int(n * (dim + m * 2 * 4 * 1.1))
    if factory.startswith("IVF"):
        lists_part, codes = factory.split(",")
        k = int(lists_part[3:])
        if codes == "SQ8":
            code_bytes = dim
        else:  # PQ{m} (8 bits per sub-quantizer) or PQ{m}x{bits}[fs]
            m, _, bits = codes[2:].removesuffix("fs").partition("x")
            code_bytes = -(-int(m) * int(bits or 8) // 8)
        return n * (code_bytes + 8) + k * dim * 4
    raise ValueError(f"no memory model for {factory!r}")


def choose_factory(n: int, dim: int, budget: int) -> str:
    """The FAISS factory string for N vectors of ``dim`` within ``budget`` bytes."""
    if n <= 0 or dim <= 0:
        raise ValueError("n and dim must be positive")
    for factory in ("Flat", "SQfp16"):
        if index_memory(factory, n, dim) <= budget:
            return factory
    k = ivf_lists(n)
    if index_memory(f"IVF{k},SQ8", n, dim) <= budget:
        return f"IVF{k},SQ8"
    m = pq_subquantizers(dim, n, budget - k * dim * 4)
    if m is None:
        raise ValueError(f"{n} vectors of dim {dim} do not fit in {budget} bytes even with PQ; raise the budget")
    return f"IVF{k},PQ{m}"


IVF_MIN_N = 50_000  # below this, exact search of a query takes about a millisecond: nothing to gain


def candidate_factories(n: int, dim: int, budget: int) -> list[str]:
    """Index types worth building and tuning for N vectors within the budget, most exact first:
    the first exact type that fits, and from ``IVF_MIN_N`` vectors on the inverted-list type
    (SQ8, else PQ). The tuner keeps the fastest one that reaches its recall target."""
    if n <= 0 or dim <= 0:
        raise ValueError("n and dim must be positive")
    out = [f for f in ("Flat", "SQfp16") if index_memory(f, n, dim) <= budget][:1]
    if n >= IVF_MIN_N or not out:
        ivf = choose_factory(n, dim, min(budget, index_memory("SQfp16", n, dim) - 1))
        out.append(ivf)
    fast = fast_scan_factory(n, dim)
    if n >= IVF_MIN_N and dim % 2 == 0 and index_memory(fast, n, dim) <= budget:
        out.append(fast)  # clip queries at 100k: 0.32-0.45 ms against SQ8's 0.50-0.55 at recall@10 0.95
    hnsw = f"HNSW{HNSW_M},SQ8"
    if n >= IVF_MIN_N and index_memory(hnsw, n, dim) <= budget:
        out.append(hnsw)  # tuned, it beat IVF on clip queries (benchmarks/scale_search.py), at 1.6x the memory
    return out


def needs_training(factory: str) -> bool:
    return factory.startswith("IVF") or "SQ8" in factory or "PQ" in factory or "SQfp16" in factory


def training_size(factory: str, n: int) -> int:
    """How many vectors to train on: 64 per IVF list (capped), all for small sets."""
    if factory.startswith("IVF"):
        k = int(factory.split(",")[0][3:])
        return min(n, max(64 * k, 10_000))
    return min(n, 100_000)
