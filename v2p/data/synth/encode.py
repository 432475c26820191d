"""Encode frames to video bytes with PyAV (mp4/H.264 by default; webm, gif, mov for tests)."""

from __future__ import annotations

import io

import av
import numpy as np

_CODECS = {  # container -> (codec, pixel format, options)
    "mp4": ("libx264", "yuv420p", {"preset": "ultrafast", "crf": "26", "threads": "1"}),
    "mov": ("libx264", "yuv420p", {"preset": "ultrafast", "crf": "26", "threads": "1"}),
    "webm": ("libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8", "threads": "1"}),
    "gif": ("gif", "rgb8", {}),
}


def encode_video(frames: np.ndarray, fps: int, container: str = "mp4") -> bytes:
    """Frames uint8 [T, H, W, 3] -> encoded bytes. Deterministic for a given input.

    H.264 in yuv420p needs even sizes; odd sizes are padded by one edge pixel row/column.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError("frames must be uint8 [T, H, W, 3]")
    codec, pix_fmt, options = _CODECS[container]
    if pix_fmt == "yuv420p" and (frames.shape[1] % 2 or frames.shape[2] % 2):
        frames = np.pad(frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)), mode="edge")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container if container != "mov" else "mov") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.options = dict(options)
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()
