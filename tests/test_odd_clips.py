"""Clips real users hand in that the happy path never meets: phone video recorded sideways,
variable frame rate, long clips (the seeking path), 1,000-frame gifs, 1x1 and 8K frames,
audio-only files, containers with no frames. Each is a real file written by FFmpeg."""

from __future__ import annotations

import io
import tracemalloc
from fractions import Fraction

import av
import numpy as np
import pytest

from v2p.data import frames as frames_mod
from v2p.data.frames import display_rotation, sample_frames
from v2p.data.synth.encode import encode_video
from v2p.errors import VideoDecodeError


def _write(path, frames: np.ndarray, *, rate: int = 8, rotation: int = 0, pts: list[int] | None = None,
           fmt: str = "mp4") -> None:
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"preset": "ultrafast", "threads": "1"}
        if pts is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for k, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[k], Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _left_bar(t: int = 4, h: int = 32, w: int = 64) -> np.ndarray:
    clip = np.zeros((t, h, w, 3), np.uint8)
    clip[:, :, : w // 4] = 255  # a white bar down the left edge: its place after turning shows the turn
    return clip


@pytest.mark.parametrize(("rotation", "bar_edge"), [(90, "bottom"), (180, "right"), (270, "top")])
@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_a_sideways_phone_clip_is_turned_upright(tmp_path, rotation, bar_edge, backend):
    path = tmp_path / f"phone-{rotation}.mp4"
    _write(path, _left_bar(), rotation=rotation)
    with av.open(str(path)) as c:  # FFmpeg's own reading of the header, as a player applies it
        assert next(c.decode(video=0)).rotation % 360 == rotation
    assert display_rotation(str(path)) == rotation
    assert display_rotation(path.read_bytes()) == rotation  # archive members arrive as bytes
    frames = sample_frames(path, 2, backend=backend)
    assert frames.shape[1:3] == ((64, 32) if rotation in (90, 270) else (32, 64))
    f = frames[0].mean(axis=2)
    edges = {"bottom": f[-4:].mean(), "top": f[:4].mean(), "right": f[:, -4:].mean(), "left": f[:, :4].mean()}
    assert max(edges, key=edges.get) == bar_edge, edges


def test_an_upright_clip_is_left_alone(tmp_path):
    path = tmp_path / "upright.mp4"
    _write(path, _left_bar())
    assert display_rotation(str(path)) == 0
    assert sample_frames(path, 2)[0, :, :4].mean() > 200


def test_variable_frame_rate_samples_by_frame_order(tmp_path):
    levels = np.arange(12) * 20 + 10
    clip = np.stack([np.full((32, 32, 3), v, np.uint8) for v in levels])
    pts = [0, 10, 20, 400, 410, 420, 900, 905, 910, 2000, 2010, 2020]  # bursts and gaps, in ms
    path = tmp_path / "vfr.mp4"
    _write(path, clip, pts=pts)
    got = sample_frames(path, 4).reshape(4, -1).mean(1)
    assert np.all(np.diff(got) > 20), got


def test_a_long_clip_is_sampled_by_seeking_and_matches_decoding_in_order(tmp_path, monkeypatch):
    t = 900  # over LONG_CLIP_FRAMES, so PyAV seeks
    clip = np.stack([np.full((16, 16, 3), int(10 + 240 * k / t), np.uint8) for k in range(t)])
    path = tmp_path / "long.mp4"
    path.write_bytes(encode_video(clip, 30))
    calls = []
    real_seek = frames_mod._pyav_seek
    monkeypatch.setattr(frames_mod, "_pyav_seek", lambda *a: calls.append(a) or real_seek(*a))
    seeking = sample_frames(path, 6, backend="pyav").reshape(6, -1).mean(1)
    assert calls, "the long clip was decoded in order, not by seeking"
    expected = 10 + 240 * frames_mod.frame_indices(t, 6) / t
    assert np.allclose(seeking, expected, atol=4), (seeking, expected)


def test_a_gif_of_a_thousand_frames(tmp_path):
    clip = np.stack([np.full((8, 8, 3), k % 250, np.uint8) for k in range(1000)])
    path = tmp_path / "long.gif"
    path.write_bytes(encode_video(clip, 25, "gif"))
    tracemalloc.start()
    frames = sample_frames(path, 8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert frames.shape == (8, 8, 8, 3)
    assert peak < 50 << 20  # the 1,000 frames are never all held


@pytest.mark.parametrize(("h", "w"), [(1, 1), (4320, 7680)])
def test_one_by_one_and_8k_frames(tmp_path, h, w):
    path = tmp_path / f"frame-{w}x{h}.mp4"
    path.write_bytes(encode_video(np.full((1, h, w, 3), 128, np.uint8), 8))
    frames = sample_frames(path, 2, short_side=224)
    assert frames.shape[0] == 2
    assert min(frames.shape[1:3]) <= 224 if h > 224 else frames.shape[1:3] in ((1, 1), (2, 2))


@pytest.mark.parametrize("container", ["webm", "mov"])
def test_webm_vp9_and_mov(tmp_path, container):
    path = tmp_path / f"clip.{container}"
    path.write_bytes(encode_video(_left_bar(6), 8, container))
    assert sample_frames(path, 3).shape == (3, 32, 64, 3)


def test_an_audio_only_file_is_named_as_such(tmp_path):
    path = tmp_path / "song.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        samples = np.zeros((1, 16000), np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        sample_frames(path, 4)


def test_a_container_with_no_frames(tmp_path):
    path = tmp_path / "empty-track.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    with pytest.raises(VideoDecodeError) as info:
        sample_frames(path, 4)
    assert str(path) in str(info.value)


def test_files_are_streamed_not_read_whole(tmp_path, monkeypatch):
    path = tmp_path / "clip.mp4"
    path.write_bytes(encode_video(_left_bar(8), 8))
    monkeypatch.setattr("pathlib.Path.read_bytes", lambda self: pytest.fail(f"read {self} whole"))
    assert sample_frames(path, 2).shape == (2, 32, 64, 3)
    assert sample_frames(io.BytesIO(path.open("rb").read()).getvalue(), 2, name="m.mp4").shape[0] == 2
