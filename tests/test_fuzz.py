"""Property-based fuzzing of every reader that takes user files: prompts (CSV / Parquet),
video archives and folders, and the frame sampler.

The contract under test: whatever the bytes, a reader either yields good records or raises
one of the project's typed errors naming the file (and row or member) — never a raw
traceback — and with ``skip_bad`` every good record around a bad one is kept and every bad
one is counted. Examples are bounded and derandomized (a fixed seed) so the suite stays fast
and a failure reproduces.
"""

from __future__ import annotations

import csv
import io
import tarfile
import uuid as uuidlib

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v2p.data.bad_records import BadRecords
from v2p.data.frames import sample_frames
from v2p.data.prompts import read_prompts
from v2p.data.synth.encode import encode_video
from v2p.data.videos import VideoSource
from v2p.errors import BadInputError, VideoDecodeError

# pyarrow builds the text of a malformed CSV row before calling our handler, and a row holding
# undecodable bytes fails there (an "exception ignored" warning); the read then stops with our
# typed error, which is what the tests check
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

FUZZ = settings(max_examples=60, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# prompt text as people type it: quotes, commas, newlines, emoji, accents, NUL bytes, flags
PROMPT_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=80
                      ).filter(lambda s: s.strip())
PROMPT_TEXT = st.one_of(PROMPT_TEXT, st.sampled_from([
    'a "quoted", comma', "two\nlines", "emoji 🌊🔥", "nul\x00byte", "-ar 16:9 -motion 4", "x" * 20_000]))


def _read_all(path, **kwargs) -> list[pa.RecordBatch]:
    return list(read_prompts(path, dedup=False, **kwargs))


def _assert_typed_error_names_file(exc: BaseException, path) -> None:
    assert isinstance(exc, BadInputError), f"{type(exc).__name__}: {exc}"
    assert path.name in str(exc), str(exc)
    assert "Traceback" not in str(exc)


# -- prompts: raw bytes ----------------------------------------------------------------------

@FUZZ
@given(body=st.binary(max_size=400), with_header=st.booleans(), skip_bad=st.booleans())
def test_prompts_csv_of_any_bytes_reads_or_raises_a_typed_error(tmp_path_factory, body, with_header, skip_bad):
    path = tmp_path_factory.mktemp("fuzz") / "prompts.csv"
    path.write_bytes((b"uuid,prompt,time\n" if with_header else b"") + body)
    try:
        batches = _read_all(path, skip_bad=skip_bad)
    except Exception as exc:  # noqa: BLE001 - the property is about which exceptions escape
        _assert_typed_error_names_file(exc, path)
        return
    for b in batches:  # what is yielded is well formed
        assert all(u and u.strip() == u for u in b.column("uuid").to_pylist())
        assert all(p and p.strip() == p for p in b.column("prompt").to_pylist())


@FUZZ
@given(body=st.binary(max_size=600))
def test_parquet_of_any_bytes_is_a_typed_error(tmp_path_factory, body):
    path = tmp_path_factory.mktemp("fuzz") / "prompts.parquet"
    path.write_bytes(b"PAR1" + body)
    with pytest.raises(BadInputError) as info:
        _read_all(path, skip_bad=True)
    _assert_typed_error_names_file(info.value, path)


# -- prompts: good rows around a bad one --------------------------------------------------------

BAD_ROW_KINDS = ("extra_column", "missing_column", "latin1_prompt", "empty_uuid", "blank_prompt", "bad_carried_bytes")


def _csv_line(fields: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL).writerow(fields)
    return buf.getvalue().encode("utf-8")


def _bad_line(kind: str, u: str) -> bytes:
    if kind == "extra_column":
        return _csv_line([u, "a prompt", "2023-08-01", "surplus"])
    if kind == "missing_column":
        return _csv_line([u])
    if kind == "latin1_prompt":
        return u.encode() + ",caf\xe9 latin-1 prompt,2023-08-01\n".encode("latin-1")
    if kind == "empty_uuid":
        return _csv_line(["", "a prompt", "2023-08-01"])
    if kind == "blank_prompt":
        return _csv_line([u, "   ", "2023-08-01"])
    return u.encode() + b",fine prompt,\xff\xfe time\n"  # undecodable bytes in a carried column


@FUZZ
@given(prompts=st.lists(PROMPT_TEXT, min_size=1, max_size=12), kind=st.sampled_from(BAD_ROW_KINDS),
       data=st.data())
def test_good_rows_around_a_bad_row_are_all_kept(tmp_path_factory, prompts, kind, data):
    at = data.draw(st.integers(0, len(prompts)), label="bad row position")
    rng = np.random.default_rng(len(prompts) * 31 + at)
    uuids = [str(uuidlib.UUID(bytes=rng.bytes(16), version=4)) for _ in prompts]
    lines = [_csv_line([u, p, "2023-08-01"]) for u, p in zip(uuids, prompts, strict=True)]
    lines.insert(at, _bad_line(kind, str(uuidlib.UUID(bytes=rng.bytes(16), version=4))))
    path = tmp_path_factory.mktemp("fuzz") / "prompts.csv"
    path.write_bytes(b"uuid,prompt,time\n" + b"".join(lines))

    bad = BadRecords(skip_bad=True)
    batches = list(read_prompts(path, dedup=False, bad=bad))
    kept = [(u, p) for b in batches for u, p in zip(b.column("uuid").to_pylist(), b.column("prompt").to_pylist(),
                                                    strict=True)]
    expected = [(u, p.strip()) for u, p in zip(uuids, prompts, strict=True)]
    if kind == "bad_carried_bytes":  # the row itself is good: kept, its undecodable time shown as U+FFFD
        assert len(kept) == len(expected) + 1
        assert [k for k in kept if k[1] != "fine prompt"] == expected
        times = [t for b in batches for t in b.column("time").to_pylist()]
        assert any("\ufffd" in t for t in times)
        return
    assert kept == expected
    assert bad.total == 1, bad.summary()
    example = bad.examples[0]
    assert example.source == str(path) and ("row" in example.location or "line" in example.location)

    # without skip_bad the same file stops at the bad row, naming it
    with pytest.raises(BadInputError) as info:
        _read_all(path)
    _assert_typed_error_names_file(info.value, path)
    assert "row" in str(info.value) or "line" in str(info.value)


@pytest.mark.parametrize("header", ["uuid,prompt,uuid", "UUID,prompt,uuid", "uuid,prompt,prompt"])
def test_a_duplicated_required_column_is_refused(tmp_path, header):
    path = tmp_path / "prompts.csv"
    path.write_text(header + "\n" + ",".join(["a"] * len(header.split(","))) + "\n")
    with pytest.raises(BadInputError, match="appears twice"):
        _read_all(path)


def test_a_duplicated_carried_column_keeps_both(tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_text("uuid,prompt,time,time\nu1,a cat,t1,t2\n")
    (batch,) = _read_all(path)
    assert batch.column("time").to_pylist() == ["t1"]
    assert batch.column("time_2").to_pylist() == ["t2"]


# -- video archives and folders -----------------------------------------------------------------

@pytest.fixture(scope="module")
def clip_bytes() -> bytes:
    return encode_video(np.full((4, 32, 48, 3), 90, np.uint8), 8)


MEMBER_NAMES = st.one_of(
    st.builds(lambda g, i: f"{g}-{uuidlib.UUID(int=i)}.mp4", st.sampled_from(["pika", "vc2", "my-model"]),
              st.integers(0, 2**64)),
    st.sampled_from(["noprefix.mp4", "../escape-1.mp4", "/abs/pika-2.mp4", "dir/sub/pika-3.MP4", "pika-.mp4",
                     "pika-4.json", "spaced name-5.mp4", "ünïcode-6.webm", "pika-" + "7" * 200 + ".mp4"]),
)


@FUZZ
@given(names=st.lists(MEMBER_NAMES, min_size=1, max_size=8), cut=st.floats(0.0, 1.0), truncate=st.booleans())
def test_tar_of_odd_names_duplicates_and_truncation(tmp_path_factory, clip_bytes, names, cut, truncate):
    path = tmp_path_factory.mktemp("fuzz") / "videos_1.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for name in names:  # the list may repeat a name: a duplicated member
            info = tarfile.TarInfo(name)
            info.size = len(clip_bytes)
            tf.addfile(info, io.BytesIO(clip_bytes))
    if truncate:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])

    bad = BadRecords(skip_bad=True)
    seen = []
    for ref, read in VideoSource(path).entries(bad):
        assert read() == clip_bytes, f"{ref} came back altered"  # never half a video
        seen.append((ref.generator, ref.uuid))
    assert len(seen) == len(set(seen)), "a duplicated member was yielded twice"
    if not truncate:
        well_named = {n for n in names if n.lower().endswith((".mp4", ".webm")) and "-" in n.rsplit("/", 1)[-1]
                      and not n.rsplit("/", 1)[-1].startswith("-") and ".json" not in n}
        assert len(seen) + bad.total >= len(well_named)  # every member is yielded or counted
    # and without skip_bad the first problem is a typed error naming the archive
    try:
        for _, read in VideoSource(path).entries(BadRecords()):
            read()
    except BadInputError as exc:
        assert str(path) in str(exc)


# -- the frame sampler ------------------------------------------------------------------------

@FUZZ
@given(body=st.binary(max_size=2000), suffix=st.sampled_from([".mp4", ".webm", ".gif", ".mov", ".png", ".avi", ""]),
       container_head=st.booleans())
def test_frame_sampler_on_any_bytes_raises_only_decode_errors(tmp_path_factory, body, suffix, container_head):
    path = tmp_path_factory.mktemp("fuzz") / f"clip{suffix}"
    path.write_bytes((b"\x00\x00\x00\x18ftypmp42" if container_head else b"") + body)
    try:
        frames = sample_frames(path, 4)
    except VideoDecodeError as exc:
        assert str(path) in str(exc)
        return
    assert frames.shape[0] == 4 and frames.dtype == np.uint8  # some random bytes are a valid image


@FUZZ
@given(cut=st.floats(0.05, 0.95), flip=st.integers(0, 2**31))
def test_damaged_real_clips_decode_or_raise_decode_errors(tmp_path_factory, clip_bytes, cut, flip):
    data = bytearray(clip_bytes[: max(1, int(len(clip_bytes) * cut))])
    data[flip % len(data)] ^= 0xFF
    path = tmp_path_factory.mktemp("fuzz") / "damaged.mp4"
    path.write_bytes(bytes(data))
    try:
        frames = sample_frames(path, 4)
    except VideoDecodeError as exc:
        assert str(path) in str(exc)
        return
    assert frames.shape == (4, 32, 48, 3)
