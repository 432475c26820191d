"""How many CPU threads v2p's libraries use: the CPUs this process may really run on.

``os.cpu_count()`` is the machine's count; a container limited by CPU affinity or a cgroup
quota gets far fewer, and torch or FAISS (OpenMP) sized to the machine then oversubscribe
and slow down. ``V2P_THREADS`` overrides the detected count.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

THREADS_ENV = "V2P_THREADS"


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """CPUs allowed by a cgroup v2 (cpu.max) or v1 (cfs quota/period) limit, if any."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        pass
    return None


def available_cpus() -> int:
    """CPUs this process may use: affinity mask, capped by a cgroup quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(n, quota) if quota else n)


def thread_count() -> int:
    """``V2P_THREADS`` when set to a positive integer, else :func:`available_cpus`."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, not {value!r}")
        return n
    return available_cpus()


def configure_torch_threads() -> int:
    import torch

    n = thread_count()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def configure_faiss_threads() -> int:
    import faiss

    n = thread_count()
    faiss.omp_set_num_threads(n)
    return n
