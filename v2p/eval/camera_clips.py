"""Clips with a known camera motion, made from a still photo: a window panned, tilted or zoomed
over it. The truth for testing and measuring :mod:`v2p.data.motion` on real pixels."""

from __future__ import annotations

import io

import numpy as np

CAMERA_LABELS = ("pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "static")


def _window(label: str, t: float, h: int, w: int, travel: float) -> tuple[float, float, float, float]:
    """(top, left, height, width) of the camera's view at time t in [0, 1]."""
    if label.startswith("zoom"):
        start, end = (1.0, 1.0 - travel * 1.4) if label == "zoom_in" else (1.0 - travel * 1.4, 1.0)
        scale = start + (end - start) * t
        vh, vw = h * scale, w * scale
        return (h - vh) / 2, (w - vw) / 2, vh, vw
    scale = 1.0 - travel
    vh, vw = h * scale, w * scale
    top, left = (h - vh) / 2, (w - vw) / 2
    shift = (t - 0.5) * travel
    if label == "pan_left":  # the view moves left over the scene
        left = (w - vw) / 2 - shift * w
    elif label == "pan_right":
        left = (w - vw) / 2 + shift * w
    elif label == "tilt_up":
        top = (h - vh) / 2 - shift * h
    elif label == "tilt_down":
        top = (h - vh) / 2 + shift * h
    return top, left, vh, vw


def camera_clip(image: np.ndarray, label: str, *, frames: int = 24, size: tuple[int, int] = (320, 240),
                travel: float = 0.25) -> np.ndarray:
    """uint8 [frames, H, W, 3]: the camera moving as ``label`` says over ``image`` (uint8 RGB)."""
    import cv2

    if label not in CAMERA_LABELS:
        raise ValueError(f"unknown camera motion {label!r}; choose from {', '.join(CAMERA_LABELS)}")
    h, w = image.shape[:2]
    out_w, out_h = size
    out = np.empty((frames, out_h, out_w, 3), np.uint8)
    for i in range(frames):
        top, left, vh, vw = _window(label, i / max(frames - 1, 1), h, w, travel)
        # affine map from the view rectangle to the output frame (sub-pixel, no jitter)
        m = np.array([[out_w / vw, 0, -left * out_w / vw], [0, out_h / vh, -top * out_h / vh]], np.float64)
        out[i] = cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    return out


def encode_mp4(frames: np.ndarray, fps: int = 12) -> bytes:
    """H.264 mp4 bytes of uint8 RGB frames (PyAV), so tests decode a real video file."""
    import av

    buf = io.BytesIO()
    h, w = frames.shape[1:3]
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        for f in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: stream.height, : stream.width]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()
