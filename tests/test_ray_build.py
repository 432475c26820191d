"""``--engine ray`` on a local Ray instance (2 CPUs): the same index as the single-process
build, the same bad records, and a killed build that resumes without recomputing its parts."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import ray  # the distributed extra, installed by make test

from v2p.data.shard import open_shard
from v2p.errors import BadInputError, V2PError
from v2p.index.build import CRASH_ENV, BuildConfig, build_index
from v2p.index.ray_build import RayPlan, plan_for
from v2p.index.store import IndexDir


ENCODER = "v2p-tiny"  # real shipped weights: every Ray worker loads the very same model
CHUNKS = dict(prompt_chunk=5, video_chunk=10)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _config(**kw) -> BuildConfig:
    return BuildConfig(encoder=ENCODER, videos=True, **CHUNKS, **kw)


def _vectors(index) -> np.ndarray:
    return index.reconstruct_n(0, index.ntotal)


def _assert_same_index(a_dir, b_dir) -> None:
    a, b = IndexDir.open(a_dir), IndexDir.open(b_dir)
    assert a.prompts_table.equals(b.prompts_table)
    assert a.videos_table.equals(b.videos_table)
    np.testing.assert_allclose(_vectors(a.prompts_index), _vectors(b.prompts_index), atol=1e-5)
    np.testing.assert_allclose(_vectors(a.videos_index), _vectors(b.videos_index), atol=1e-5)
    np.testing.assert_allclose(np.asarray(a.video_frames, np.float32), np.asarray(b.video_frames, np.float32),
                               atol=2e-3)  # float16 storage: one step of rounding apart at most
    queries = _vectors(a.prompts_index)[:6]
    assert np.array_equal(a.prompts_index.search(queries, 5)[1], b.prompts_index.search(queries, 5)[1])
    keys = _vectors(a.videos_index)[::5]
    assert np.array_equal(a.videos_index.search(keys, 5)[1], b.videos_index.search(keys, 5)[1])
    for name in ("prompts", "videos"):
        assert a.manifest[name]["factory"] == b.manifest[name]["factory"]
        assert a.manifest[name]["count"] == b.manifest[name]["count"]


@pytest.fixture(scope="module")
def local_build(small_shard, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray-ref") / "local"
    build_index(open_shard(small_shard), out, _config())
    return out


def test_plan_uses_gpus_when_the_cluster_has_them():
    assert plan_for({"CPU": 16.0, "GPU": 2.0}) == RayPlan(2, "cuda", 1.0, 64, 1024)
    assert plan_for({"CPU": 2.0}) == RayPlan(2, "cpu", 0.0, 8, 256)
    assert plan_for({"CPU": 8.0}, actors=3).actors == 3


def test_ray_build_equals_the_single_process_build(local_ray, small_shard, local_build, tmp_path):
    report = build_index(open_shard(small_shard), tmp_path / "ray", _config(), engine="ray")
    assert report.engine == "ray (2 cpu actors)"
    assert (report.prompts, report.videos) == (12, 36)
    _assert_same_index(local_build, tmp_path / "ray")
    assert IndexDir.open(tmp_path / "ray").manifest["build"]["engine"] == "ray (2 cpu actors)"


def _add_tar(path, members) -> None:
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_ray_build_keeps_the_meaning_of_bad_records(local_ray, small_shard, tmp_path):
    import csv

    shard = tmp_path / "shard"
    shutil.copytree(small_shard, shard)
    with open(shard / "prompts.csv", encoding="utf-8") as fh:
        first_uuid = list(csv.reader(fh))[1][0]
    _add_tar(shard / "extra_videos_1.tar", [(f"t2vz-{first_uuid}.mp4", b"\x00\x00\x00\x18ftypmp42 corrupt"),
                                            ("ms-0f8fad5b-d9cb-469f-a165-70867728950e.mp4", b"orphan")])
    # without --skip-bad the first bad record stops the build, named as the local build names it
    with pytest.raises(BadInputError, match=r"member ms-0f8fad5b.*is not in prompts.csv"):
        build_index(open_shard(shard), tmp_path / "stopped", _config(), engine="ray")
    assert not (tmp_path / "stopped").exists()
    local = build_index(open_shard(shard), tmp_path / "local", _config(skip_bad=True))
    on_ray = build_index(open_shard(shard), tmp_path / "ray", _config(skip_bad=True), engine="ray")
    assert on_ray.bad["by_reason"] == local.bad["by_reason"] == {"undecodable_video": 1, "unknown_uuid": 1}
    assert {e["reason"] for e in on_ray.bad["examples"]} == {"undecodable_video", "unknown_uuid"}
    assert on_ray.videos == local.videos == 36
    _assert_same_index(tmp_path / "local", tmp_path / "ray")


def _killed_at(cmd: list[str], point: str) -> None:
    """Run a build that SIGKILLs itself at ``point``; then end what its local Ray left running
    (the agents of a killed driver linger for a minute or two), so the suite stays light."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, CRASH_ENV: point}, start_new_session=True)
    _, stderr = proc.communicate(timeout=300)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    assert proc.returncode == -9, stderr


def test_killed_ray_build_resumes_without_recomputing_finished_parts(local_ray, small_shard, local_build, tmp_path):
    """A real SIGKILL of the driver after video chunk 1; a resume on Ray killed again once the
    final folder is complete; a last resume. The parts finished before each kill are reused byte
    for byte, never recomputed, and the index equals the single-process one."""
    out = tmp_path / "idx"
    cmd = [sys.executable, "-m", "v2p.cli", "index", "build", str(small_shard), "--out", str(out), "--encoder",
           ENCODER, "--videos", "--prompt-chunk", "5", "--video-chunk", "10", "--engine", "ray"]
    _killed_at(cmd, "videos:1")
    partial = tmp_path / "idx.partial"
    done = sorted(p.relative_to(partial).as_posix() for p in partial.glob("*/chunk-*.done"))
    assert done == [f"prompts/chunk-0000{k}.done" for k in range(3)] + [f"videos/chunk-0000{k}.done" for k in range(2)]
    kept = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in partial.glob("*/chunk-*")}

    _killed_at(cmd + ["--resume"], "publish:0")
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in kept} == kept  # untouched, not rewritten
    assert len(list(partial.glob("videos/chunk-*.done"))) == 4  # the other two video chunks were embedded

    report = build_index(open_shard(small_shard), out, _config(), engine="ray", resume=True)
    assert report.resumed_chunks == 3 + 4  # nothing left to embed: every part is reused
    _assert_same_index(local_build, out)


def test_unknown_engine_and_ray_options_without_ray_are_refused(small_shard, tmp_path):
    with pytest.raises(V2PError, match="unknown engine 'spark'"):
        build_index(open_shard(small_shard), tmp_path / "a", _config(), engine="spark")
    with pytest.raises(V2PError, match="need --engine ray"):
        build_index(open_shard(small_shard), tmp_path / "b", _config(), ray_address="10.0.0.1:6379")
