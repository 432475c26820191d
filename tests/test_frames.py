"""Frame sampling on real encoded clips of many kinds, and clear errors on bad ones."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from v2p.data.frames import frame_indices, sample_frames
from v2p.data.synth.encode import encode_video
from v2p.errors import VideoDecodeError


def ramp_clip(t: int, h: int, w: int) -> np.ndarray:
    """Frame k is uniformly grey at level 10 + step*k: which frame was sampled is readable."""
    step = 20 if t <= 12 else 230 // t
    return np.stack([np.full((h, w, 3), 10 + step * k, np.uint8) for k in range(t)])


def test_frame_indices_spread_and_repeat():
    assert frame_indices(16, 4).tolist() == [2, 6, 10, 14]
    assert frame_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    assert frame_indices(1, 8).tolist() == [0] * 8


@pytest.mark.parametrize("container", ["mp4", "webm", "gif", "mov"])
def test_containers_decode_in_order(tmp_path, container):
    path = tmp_path / f"clip.{container}"
    path.write_bytes(encode_video(ramp_clip(12, 64, 96), 8, container))
    frames = sample_frames(path, 4)
    assert frames.shape == (4, 64, 96, 3)
    levels = frames.reshape(4, -1).mean(1)
    assert np.all(np.diff(levels) > 20), levels  # uniform over the clip, in order


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_both_backends_agree_on_mp4(tmp_path, backend):
    path = tmp_path / "clip.mp4"
    path.write_bytes(encode_video(ramp_clip(10, 64, 64), 10))
    levels = sample_frames(path, 5, backend=backend).reshape(5, -1).mean(1)
    expected = 10 + 20 * frame_indices(10, 5)
    assert np.allclose(levels, expected, atol=4)


def test_auto_falls_back_to_pyav_where_decord_fails(tmp_path):
    """decord 0.6 rejects some widths (48 px: 'from_size == to_size'); auto must still decode."""
    path = tmp_path / "narrow.mp4"
    path.write_bytes(encode_video(ramp_clip(10, 48, 48), 10))
    with pytest.raises(VideoDecodeError, match="decord"):
        sample_frames(path, 5, backend="decord")
    levels = sample_frames(path, 5).reshape(5, -1).mean(1)
    assert np.allclose(levels, 10 + 20 * frame_indices(10, 5), atol=4)


def test_odd_size_and_one_frame_clip(tmp_path):
    path = tmp_path / "odd.mp4"
    path.write_bytes(encode_video(ramp_clip(1, 61, 97), 24))
    frames = sample_frames(path, 8)
    assert frames.shape[0] == 8 and frames.shape[-1] == 3
    assert frames.shape[1] in (61, 62) and frames.shape[2] in (97, 98)  # H.264 pads odd sizes
    assert np.all(frames == frames[0])


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_still_image_is_a_one_frame_video(tmp_path, suffix):
    path = tmp_path / f"still.{suffix}"
    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(path)
    frames = sample_frames(path, 3)
    assert frames.shape == (3, 30, 40, 3)
    assert abs(frames.mean() - 200) < 3


def test_bytes_input_uses_name_for_errors():
    with pytest.raises(VideoDecodeError, match=r"^archive.tar:pika-x.mp4: cannot decode video"):
        sample_frames(b"garbage" * 100, 4, name="archive.tar:pika-x.mp4")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 40, "cannot decode video"),
     (b"hello, I am a text file\n" * 20, "cannot decode video")],
)
def test_corrupt_empty_and_non_video_files(tmp_path, content, message):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoDecodeError, match=message) as info:
        sample_frames(path)
    assert str(path) in str(info.value)


def test_truncated_mp4_is_an_error_or_fewer_frames_never_a_crash(tmp_path):
    data = encode_video(ramp_clip(24, 64, 64), 8)
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 3])
    try:
        frames = sample_frames(path, 4)
    except VideoDecodeError as exc:
        assert str(path) in str(exc)
    else:
        assert frames.shape == (4, 64, 64, 3)


def test_missing_file(tmp_path):
    with pytest.raises(VideoDecodeError, match="cannot read file"):
        sample_frames(tmp_path / "nope.mp4")


def test_corrupt_image(tmp_path):
    path = tmp_path / "broken.png"
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue()[:20])
    with pytest.raises(VideoDecodeError, match="not a readable image"):
        sample_frames(path)


def test_non_video_bytes_skip_decord_and_stay_quiet(tmp_path, capfd):
    """decord printed a whole non-video file to stderr; such input now goes to PyAV only."""
    from v2p.data.frames import looks_like_decord_container

    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"these are my holiday notes, not a video " * 50)
    with pytest.raises(VideoDecodeError, match="notes.mp4"):
        sample_frames(junk, 4)
    assert "holiday notes" not in capfd.readouterr().err
    assert not looks_like_decord_container(junk.read_bytes())


def test_frames_are_shrunk_right_after_decoding(tmp_path):
    big = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    path = tmp_path / "big.png"
    Image.fromarray(big).save(path)
    frames = sample_frames(path, 4, short_side=64)
    assert frames.shape == (4, 64, 114, 3)
    assert sample_frames(path, 1, short_side=4000).shape == (1, 1080, 1920, 3)  # never enlarged
