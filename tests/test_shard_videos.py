"""Shards: folders vs tars, member naming, truncated archives, orphans and prompts without videos."""

from __future__ import annotations

import shutil
import tarfile

import pytest

from v2p.data.bad_records import BadRecords
from v2p.data.shard import inspect_shard, open_shard
from v2p.data.videos import VideoSource, parse_member_name
from v2p.errors import BadInputError

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"pika-{UUID}.mp4", ("pika", UUID)),
        (f"vc2_videos_3/vc2-{UUID}.mp4", ("vc2", UUID)),  # folder inside the archive
        (f"my-model-{UUID}.webm", ("my-model", UUID)),  # hyphenated prefix
        (f"MS-{UUID.upper()}.MP4", ("MS", UUID)),
        ("t2vz-abc123.mp4", ("t2vz", "abc123")),  # non-uuid ids split at the first hyphen
        ("noprefix.mp4", None),
        (f"pika-{UUID}.json", None),
    ],
)
def test_parse_member_name(name, expected):
    assert parse_member_name(name) == expected


def test_shard_summary_counts_everything(small_shard):
    summary = inspect_shard(open_shard(small_shard)).as_dict()
    assert summary["prompts"]["rows"] == 12
    assert summary["prompts"]["unique"] == 12
    assert summary["videos_per_generator"] == {"ms": 12, "pika": 12, "vc2": 12}
    assert summary["prompts_without_videos"] == 0
    assert summary["bad"]["total"] == 0


def test_folder_of_loose_videos_equals_tar(small_shard, tmp_path):
    folder = tmp_path / "loose"
    folder.mkdir()
    with tarfile.open(small_shard / "vc2_videos_1.tar") as tf:
        tf.extractall(folder, filter="data")
    from_tar = {(r.generator, r.uuid) for r in VideoSource(small_shard / "vc2_videos_1.tar").refs(BadRecords())}
    from_dir = {(r.generator, r.uuid) for r in VideoSource(folder).refs(BadRecords())}
    assert from_tar == from_dir and len(from_tar) == 12
    tar_bytes = dict((r.uuid, b) for r, b in VideoSource(small_shard / "vc2_videos_1.tar").payloads(BadRecords()))
    dir_bytes = dict((r.uuid, b) for r, b in VideoSource(folder).payloads(BadRecords()))
    assert tar_bytes == dir_bytes


def test_truncated_archive_is_reported_not_half_read(small_shard, tmp_path):
    tar = tmp_path / "pika_videos_1.tar"
    data = (small_shard / "pika_videos_1.tar").read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match="archive is truncated") as info:
        list(VideoSource(tar).payloads(BadRecords()))
    assert str(tar) in str(info.value) and "member pika-" in str(info.value)
    bad = BadRecords(skip_bad=True)
    complete = list(VideoSource(tar).payloads(bad))
    assert 0 < len(complete) < 12
    assert bad.counts["truncated_archive"] == 1
    with tarfile.open(small_shard / "pika_videos_1.tar") as tf:  # what was read is whole
        sizes = {m.name: m.size for m in tf.getmembers()}
    for ref, payload in complete:
        assert len(payload) == sizes[ref.member]


def test_not_a_tar_is_reported(tmp_path):
    tar = tmp_path / "x.tar"
    tar.write_bytes(b"this is not a tar file at all" * 10)
    with pytest.raises(BadInputError, match="not a readable tar archive"):
        list(VideoSource(tar).refs(BadRecords()))


def test_orphans_and_prompts_without_videos(small_shard, tmp_path):
    shard = tmp_path / "shard"
    shutil.copytree(small_shard, shard)
    lines = (shard / "prompts.csv").read_text(encoding="utf-8")
    # drop two prompt rows: their videos become orphans
    import csv
    import io

    rows = list(csv.reader(io.StringIO(lines)))
    kept = rows[:1] + rows[3:]
    with open(shard / "prompts.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(kept)
    # and drop the ms archive: the remaining prompts lack one generator but still have videos
    (shard / "ms_videos_1.tar").unlink()
    # add a prompt that has no video at all
    with open(shard / "prompts.csv", "a", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow(["11111111-2222-4333-8444-555555555555", "a prompt with no video"] + [""] * 8)
    summary = inspect_shard(open_shard(shard)).as_dict()
    assert summary["bad"]["by_reason"] == {"unknown_uuid": 4}  # 2 prompts x 2 remaining generators
    example = summary["bad"]["examples"][0]
    assert example["location"].startswith("member ") and "is not in prompts.csv" in example["detail"]
    assert summary["prompts_without_videos"] == 1
    assert summary["videos_per_generator"] == {"pika": 10, "vc2": 10}


def test_open_shard_errors(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        open_shard(tmp_path / "missing")
    with pytest.raises(BadInputError, match="no prompts file"):
        open_shard(tmp_path)
    (tmp_path / "a.csv").write_text("uuid,prompt\n")
    (tmp_path / "b.csv").write_text("uuid,prompt\n")
    with pytest.raises(BadInputError, match="several prompts files"):
        open_shard(tmp_path)
