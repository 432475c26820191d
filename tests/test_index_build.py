"""Index builds on real shards: layout, manifest, limits, bad videos, kill -9 + resume, atomicity."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
import tarfile

import numpy as np
import pytest

from v2p.data.shard import open_shard
from v2p.errors import BadInputError, IndexMismatchError, V2PError
from v2p.index.build import CRASH_ENV, BuildConfig, build_index
from v2p.index.store import IndexDir

from conftest import TINY_CLIP


def vectors(index) -> np.ndarray:
    return index.reconstruct_n(0, index.ntotal)


def test_index_layout_and_manifest(tiny_clip_index, small_shard):
    files = sorted(p.name for p in tiny_clip_index.iterdir())
    assert files == ["manifest.json", "prompts.faiss", "prompts.parquet", "video_frames.npy", "videos.faiss",
                     "videos.parquet"]
    m = json.loads((tiny_clip_index / "manifest.json").read_text())
    assert m["encoder"] == TINY_CLIP and m["dim"] == 64 and m["metric"] == "inner_product"
    tuning = m["prompts"].pop("tuning")
    assert m["prompts"] == {"count": 12, "factory": "Flat", "index_file": "prompts.faiss",
                            "table_file": "prompts.parquet", "search": {}}
    assert tuning["factory"] == "Flat" and tuning["recall_at_10"] == 1.0 and tuning["met"]
    assert tuning["queries"] == "clips (36 of the shard's videos)"
    assert m["videos"]["count"] == 36 and m["videos"]["generators"] == ["ms", "pika", "vc2"]
    assert m["videos"]["frames_per_video"] == 8 and m["videos"]["frame_dim"] == 64
    assert len(m["source"]["prompts"]["sha256"]) == 64
    assert len(m["source"]["video_sources"]) == 3
    idx = IndexDir.open(tiny_clip_index)
    assert idx.video_frames.shape == (36, 8, 64) and idx.video_frames.dtype == np.float16
    prompts = idx.prompts_table
    assert {"row", "uuid", "prompt", "prompt_id", "attributes", "toxicity"} <= set(prompts.column_names)
    videos = idx.videos_table
    # every video points at the prompt row of its own uuid's prompt
    pid_of_uuid = dict(zip(prompts.column("uuid").to_pylist(), prompts.column("prompt_id").to_pylist(), strict=True))
    for uuid, row in zip(videos.column("uuid").to_pylist(), videos.column("prompt_row").to_pylist(), strict=True):
        assert prompts.column("prompt_id")[row].as_py() == pid_of_uuid[uuid]
    # pooled vectors are the mean of the stored frames (mean pooling), in float16 precision
    frames = np.asarray(idx.video_frames, dtype=np.float32)
    pooled = frames.mean(1)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    assert np.abs(pooled - vectors(idx.videos_index)).max() < 2e-3


def test_limit_and_generator_filter(small_shard, tmp_path):
    cfg = BuildConfig(encoder=TINY_CLIP, videos=True, limit=5, generators=["vc2", "ms"])
    report = build_index(open_shard(small_shard), tmp_path / "idx", cfg)
    assert report.prompts == 5 and report.videos == 10
    assert report.skipped_outside_limit == 14  # 7 prompts beyond the limit x 2 generators
    assert IndexDir.open(tmp_path / "idx").manifest["videos"]["generators"] == ["ms", "vc2"]


def _add_tar(path, members):
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_bad_videos_stop_the_build_or_are_counted(small_shard, tmp_path):
    import csv

    shard = tmp_path / "shard"
    shutil.copytree(small_shard, shard)
    with open(shard / "prompts.csv", encoding="utf-8") as fh:
        first_uuid = list(csv.reader(fh))[1][0]
    corrupt = (f"t2vz-{first_uuid}.mp4", b"\x00\x00\x00\x18ftypmp42 corrupt")
    orphan = ("ms-0f8fad5b-d9cb-469f-a165-70867728950e.mp4", b"orphan")
    _add_tar(shard / "extra_videos_1.tar", [corrupt])
    with pytest.raises(BadInputError, match=r"extra_videos_1.tar, member t2vz-.*: cannot decode video"):
        build_index(open_shard(shard), tmp_path / "a", BuildConfig(encoder=TINY_CLIP, videos=True))
    assert not (tmp_path / "a").exists()  # no half index
    _add_tar(shard / "extra_videos_1.tar", [corrupt, orphan])
    with pytest.raises(BadInputError, match=r"member ms-0f8fad5b.*is not in prompts.csv"):
        build_index(open_shard(shard), tmp_path / "c", BuildConfig(encoder=TINY_CLIP, videos=True))
    report = build_index(open_shard(shard), tmp_path / "b", BuildConfig(encoder=TINY_CLIP, videos=True, skip_bad=True))
    assert report.videos == 36
    assert report.bad["by_reason"] == {"undecodable_video": 1, "unknown_uuid": 1}


def _cli_build(shard, out, *extra, env=None):
    cmd = [sys.executable, "-m", "v2p.cli", "index", "build", str(shard), "--out", str(out), "--encoder", TINY_CLIP,
           "--videos", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_kill_9_then_resume_equals_uninterrupted_build(small_shard, tmp_path):
    """A real SIGKILL after a video chunk, then --resume: same contents as one clean build."""
    chunked = dict(prompt_chunk=5, video_chunk=10)
    clean = build_index(open_shard(small_shard), tmp_path / "clean", BuildConfig(encoder=TINY_CLIP, videos=True,
                                                                                 **chunked))
    out = tmp_path / "resumed"
    sizes = ("--prompt-chunk", "5", "--video-chunk", "10")
    killed = _cli_build(small_shard, out, *sizes, env={CRASH_ENV: "videos:1"})
    assert killed.returncode == -9, killed.stderr
    assert not out.exists()  # nothing that loads
    with pytest.raises(IndexMismatchError):
        IndexDir.open(out)
    partial = tmp_path / "resumed.partial"
    assert sorted(p.name for p in (partial / "videos").glob("*.done")) == ["chunk-00000.done", "chunk-00001.done"]
    again = _cli_build(small_shard, out, *sizes)
    assert again.returncode == 2 and "pass --resume" in again.stderr
    resumed = _cli_build(small_shard, out, *sizes, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["resumed_chunks"] == 3 + 2  # 3 prompt chunks (12 prompts / 5) and 2 video chunks
    assert report["videos"] == clean.videos == 36
    a, b = IndexDir.open(tmp_path / "clean"), IndexDir.open(out)
    assert a.prompts_table.equals(b.prompts_table)
    assert a.videos_table.equals(b.videos_table)
    assert np.array_equal(vectors(a.prompts_index), vectors(b.prompts_index))
    assert np.array_equal(vectors(a.videos_index), vectors(b.videos_index))
    assert np.array_equal(np.asarray(a.video_frames), np.asarray(b.video_frames))
    assert not partial.exists()


def test_resume_refuses_other_settings(small_shard, tmp_path):
    out = tmp_path / "idx"
    killed = _cli_build(small_shard, out, env={CRASH_ENV: "prompts:0"})
    assert killed.returncode == -9
    other = _cli_build(small_shard, out, "--resume", "--limit", "3")
    assert other.returncode == 2 and "settings differ: limit" in other.stderr


def test_overwrite_guard(tiny_clip_index, small_shard):
    with pytest.raises(V2PError, match="already exists and is not empty; pass --overwrite"):
        build_index(open_shard(small_shard), tiny_clip_index, BuildConfig(encoder=TINY_CLIP))


def test_text_only_encoder_cannot_index_videos(small_shard, tmp_path):
    with pytest.raises(V2PError, match="text-only"):
        build_index(open_shard(small_shard), tmp_path / "x", BuildConfig(encoder="minilm", videos=True))


def test_mismatched_index_is_refused(tiny_clip_index, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_clip_index, broken)
    m = json.loads((broken / "manifest.json").read_text())
    m["prompts"]["count"] = 99
    (broken / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexMismatchError, match="holds 12 vectors of dim 64, the manifest says 99"):
        IndexDir.open(broken).prompts_index
    (broken / "videos.faiss").unlink()
    with pytest.raises(IndexMismatchError, match="incomplete index, missing videos.faiss"):
        IndexDir.open(broken)
    with pytest.raises(IndexMismatchError, match="not a v2p index"):
        IndexDir.open(tmp_path)


def test_resume_does_not_read_finished_video_chunks(small_shard, tmp_path, monkeypatch):
    """A resume lists the videos of finished chunks by reference; only unfinished ones are read."""
    from v2p.data.videos import VideoSource

    out = tmp_path / "idx"
    sizes = ("--prompt-chunk", "5", "--video-chunk", "10")
    killed = _cli_build(small_shard, out, *sizes, env={CRASH_ENV: "videos:1"})
    assert killed.returncode == -9, killed.stderr
    reads = []
    original = VideoSource.entries

    def counting(self, bad, seen=None):
        for ref, read in original(self, bad, seen):
            yield ref, lambda read=read, ref=ref: reads.append(ref.member) or read()

    monkeypatch.setattr(VideoSource, "entries", counting)
    report = build_index(open_shard(small_shard), out, BuildConfig(encoder=TINY_CLIP, videos=True, prompt_chunk=5,
                                                                   video_chunk=10), resume=True)
    assert report.videos == 36 and report.resumed_chunks == 3 + 2
    assert len(reads) == 36 - 20


def test_manifest_hashes_are_sampled_unless_asked(small_shard, tmp_path):
    from v2p.index.build import sampled_sha256, sha256_file

    shard = open_shard(small_shard)
    build_index(shard, tmp_path / "a", BuildConfig(encoder=TINY_CLIP, videos=True))
    build_index(shard, tmp_path / "b", BuildConfig(encoder=TINY_CLIP, videos=True, full_hash=True))
    tar = shard.video_sources[0].path
    a = json.loads((tmp_path / "a" / "manifest.json").read_text())["source"]
    b = json.loads((tmp_path / "b" / "manifest.json").read_text())["source"]
    assert a["hash"] == "sampled_sha256" and a["video_sources"][0]["sha256"] == sampled_sha256(tar)
    assert b["hash"] == "sha256" and b["video_sources"][0]["sha256"] == sha256_file(tar)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (40 * 4096))  # 40 MiB: sampled, not read whole
    before = sampled_sha256(big)
    with open(big, "r+b") as fh:  # a change inside a sampled block is seen
        fh.seek(0)
        fh.write(b"x")
    assert sampled_sha256(big) != before


def test_failed_build_leaves_nothing_to_block_its_retry(small_shard, tmp_path):
    """A bad row stops the build before any chunk is finished: no .partial remains, so the retry
    with --skip-bad needs neither --resume nor clean-up."""
    shard = tmp_path / "shard"
    shutil.copytree(small_shard, shard)
    with open(shard / "prompts.csv", "a", encoding="utf-8") as fh:
        fh.write('0f8fad5b-d9cb-469f-a165-70867728950e,""\n')  # an empty prompt
    out = tmp_path / "idx"
    failed = _cli_build(shard, out)
    assert failed.returncode == 2 and "malformed csv row" in failed.stderr.lower()
    assert not (tmp_path / "idx.partial").exists() and not out.exists()
    retry = _cli_build(shard, out, "--skip-bad")
    assert retry.returncode == 0, retry.stderr


def test_overwrite_clears_a_stale_partial(small_shard, tmp_path):
    out = tmp_path / "idx"
    killed = _cli_build(small_shard, out, "--prompt-chunk", "5", env={CRASH_ENV: "prompts:0"})
    assert killed.returncode == -9 and (tmp_path / "idx.partial").exists()
    other_encoder = _cli_build(small_shard, out, "--overwrite", "--limit", "4")
    assert other_encoder.returncode == 0, other_encoder.stderr
    assert IndexDir.open(out).manifest["prompts"]["count"] == 4
    assert not (tmp_path / "idx.partial").exists()


def test_publishing_over_an_index_never_leaves_the_path_empty(small_shard, tmp_path, monkeypatch):
    """Over an existing index the folders are exchanged atomically: no rename of the old index aside."""
    import v2p.index.build as build_module

    out = tmp_path / "idx"
    build_index(open_shard(small_shard), out, BuildConfig(encoder=TINY_CLIP, limit=4))
    real_replace = os.replace

    def replace(src, dst):
        assert Path(src) != out, "the old index was moved aside: a window without an index"
        return real_replace(src, dst)

    monkeypatch.setattr(build_module.os, "replace", replace)
    build_index(open_shard(small_shard), out, BuildConfig(encoder=TINY_CLIP, limit=6), overwrite=True)
    assert IndexDir.open(out).manifest["prompts"]["count"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_a_stranded_previous_index_is_named(tmp_path):
    (tmp_path / "idx.old-123").mkdir()
    with pytest.raises(IndexMismatchError, match="idx.old-123 holds the previous one"):
        IndexDir.open(tmp_path / "idx")


def test_a_truncated_faiss_file_is_a_one_line_error(tiny_clip_index, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_clip_index, broken)
    path = broken / "prompts.faiss"
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    with pytest.raises(IndexMismatchError, match=r"prompts.faiss: damaged index file \(\d+ bytes, the manifest says"):
        IndexDir.open(broken)
    # an index from before sizes were recorded still gets FAISS's failure as one line
    manifest = json.loads((broken / "manifest.json").read_text())
    del manifest["files"]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="prompts.faiss: damaged or truncated index file"):
        IndexDir.open(broken).prompts_index


def test_manifest_records_size_and_checksum_of_every_file(tiny_clip_index):
    import hashlib

    files = json.loads((tiny_clip_index / "manifest.json").read_text())["files"]
    on_disk = sorted(p.name for p in tiny_clip_index.iterdir() if p.is_file() and p.name != "manifest.json")
    assert sorted(files) == on_disk
    for name, record in files.items():
        data = (tiny_clip_index / name).read_bytes()
        assert record == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_verify_finds_altered_bytes_that_a_size_check_cannot(tiny_clip_index, tmp_path):
    from typer.testing import CliRunner

    from v2p.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["index", "verify", str(tiny_clip_index), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["ok"] is True

    altered = tmp_path / "altered"
    shutil.copytree(tiny_clip_index, altered)
    frames = altered / "video_frames.npy"
    data = bytearray(frames.read_bytes())
    data[-3] ^= 0x40  # one bit of one vector, same size
    frames.write_bytes(bytes(data))
    IndexDir.open(altered)  # the cheap open check passes: sizes agree
    result = runner.invoke(app, ["index", "verify", str(altered)])
    assert result.exit_code == 2
    assert "video_frames.npy: damaged index file (checksum differs" in result.output
    assert "--overwrite" in result.output
    (tmp_path / "altered.partial").mkdir()  # with the build's work folder left, resuming is the fix
    result = runner.invoke(app, ["index", "verify", str(altered)])
    assert "--resume" in result.output


def _content_hash(index: Path) -> str:
    """SHA-256 over what a query reads: row ids, prompts, every vector, every per-frame vector."""
    import hashlib

    d = IndexDir.open(index)
    h = hashlib.sha256()
    for table in (d.prompts_table, d.videos_table):
        for name in ("uuid", "prompt_id", "prompt", "generator", "member", "prompt_row"):
            if name in table.column_names:
                h.update(repr(table.column(name).to_pylist()).encode())
    for arr in (vectors(d.prompts_index), vectors(d.videos_index), np.asarray(d.video_frames)):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def test_kill_soak_every_kill_point_resumes_to_the_same_index(small_shard, tmp_path):
    """SIGKILL at chunk boundaries, mid-chunk (arrays written, chunk not yet marked done), after the
    final folder is complete, and at random moments; each run resumed by the next. The finished
    index has the same content hash as an uninterrupted build."""
    import random

    sizes = ("--prompt-chunk", "5", "--video-chunk", "10")
    clean = tmp_path / "clean"
    assert _cli_build(small_shard, clean, *sizes).returncode == 0
    expected = _content_hash(clean)

    out = tmp_path / "hooked"
    points = ["prompts:1:arrays", "prompts:2", "videos:0:arrays", "videos:2", "videos:3:arrays", "publish:0"]
    for k, point in enumerate(points):
        run = _cli_build(small_shard, out, *sizes, *(["--resume"] if k else []), env={CRASH_ENV: point})
        assert run.returncode == -9, (point, run.stderr)
        assert not out.exists(), point  # never an index that loads before the build is whole
    assert _cli_build(small_shard, out, *sizes, "--resume").returncode == 0
    assert _content_hash(out) == expected

    rng = random.Random(1234)  # kills at random moments of the run (mid-encode, mid-write, mid-assembly)
    out = tmp_path / "random"
    for k in range(3):
        cmd = [sys.executable, "-m", "v2p.cli", "index", "build", str(small_shard), "--out", str(out), "--encoder",
               TINY_CLIP, "--videos", *sizes, *(["--resume"] if k else [])]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        partial = Path(str(out) + ".partial")
        deadline = time.monotonic() + 60
        while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the work starts once torch is imported: kill within the work itself
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = _cli_build(small_shard, out, *sizes, "--resume")
    if final.returncode != 0:  # a kill that landed after publishing leaves a finished index: nothing to resume
        assert "exists" in final.stderr, final.stderr
    assert _content_hash(out) == expected


def test_a_full_disk_fails_clearly_leaves_nothing_that_loads_and_resumes(small_shard, small_tmpfs):
    out = small_tmpfs / "idx"
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_tmpfs).free - 120_000))  # room for the chunks only
    config = BuildConfig(encoder=TINY_CLIP, videos=True, prompt_chunk=5, video_chunk=10)
    with pytest.raises(V2PError, match="no space left on the device .*run again with --resume"):
        build_index(open_shard(small_shard), out, config)
    with pytest.raises(IndexMismatchError):
        IndexDir.open(out)
    filler.unlink()
    report = build_index(open_shard(small_shard), out, config, resume=True)
    assert report.resumed_chunks > 0 and report.videos == 36
    assert IndexDir.open(out).prompts_index.ntotal == 12
