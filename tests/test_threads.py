"""Thread counts follow the CPUs this process may use, and V2P_THREADS overrides them."""

from __future__ import annotations

import os

import pytest

from v2p import _threads


def test_affinity_not_machine_count(monkeypatch):
    monkeypatch.delenv(_threads.THREADS_ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(_threads, "_cgroup_quota", lambda: None)
    assert _threads.thread_count() == 1


def test_cgroup_quota_caps_affinity(monkeypatch, tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _threads._cgroup_quota(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _threads._cgroup_quota(tmp_path) is None
    monkeypatch.delenv(_threads.THREADS_ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(_threads, "_cgroup_quota", lambda: 3)
    assert _threads.available_cpus() == 3


def test_env_override_and_its_errors(monkeypatch):
    monkeypatch.setenv(_threads.THREADS_ENV, "3")
    assert _threads.thread_count() == 3
    monkeypatch.setenv(_threads.THREADS_ENV, "zero")
    with pytest.raises(ValueError, match="V2P_THREADS must be a positive integer"):
        _threads.thread_count()


def test_torch_and_faiss_are_both_set(monkeypatch):
    import faiss
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv(_threads.THREADS_ENV, "1")
    try:
        assert _threads.configure_torch_threads() == 1 and torch.get_num_threads() == 1
        assert _threads.configure_faiss_threads() == 1 and faiss.omp_get_max_threads() == 1
    finally:
        monkeypatch.delenv(_threads.THREADS_ENV)
        torch.set_num_threads(before)
        _threads.configure_faiss_threads()
