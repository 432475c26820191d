"""Sample N frames spread uniformly over a clip: the one way every stage reads video.

decord is tried first (fast seeking) and PyAV is the fallback (decord is unmaintained and
fails on some inputs: gifs, odd containers, some webm). Still images (png, jpg, webp, bmp)
are one-frame videos. The result always has exactly ``n`` frames: a clip shorter than
``n`` repeats frames, so batches of clips have one shape in time.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from v2p.errors import VideoDecodeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEFAULT_NUM_FRAMES = 8
BACKENDS = ("auto", "decord", "pyav")


def frame_indices(total: int, n: int) -> np.ndarray:
    """n indices spread uniformly over ``total`` frames (centre of n equal segments)."""
    if total < 1:
        raise ValueError("a clip needs at least one frame")
    return np.minimum(((np.arange(n) + 0.5) * total / n).astype(np.int64), total - 1)


def shrink_frames(frames: np.ndarray, short_side: int | None) -> np.ndarray:
    """Frames whose short side exceeds ``short_side`` resized down to it (area filter, aspect kept).

    Done right after decoding, so a 4K clip costs its full size only for the frames in hand,
    never for a whole batch of clips waiting to be encoded."""
    if short_side is None or min(frames.shape[1:3]) <= short_side:
        return frames
    import cv2

    h, w = frames.shape[1:3]
    scale = short_side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def looks_like_decord_container(data: bytes) -> bool:
    """Magic bytes of the containers decord reads (MP4/MOV, Matroska/WebM, AVI, FLV, MPEG-TS).

    decord writes its whole input to stderr when it cannot parse it; anything else goes
    straight to PyAV, which fails quietly with a reason."""
    head = data[:12]
    return (head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
            or head[:4] == b"\x1a\x45\xdf\xa3"
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
            or head[:3] == b"FLV"
            or (len(data) > 188 and data[0] == 0x47 and data[188] == 0x47))


def _decord(data: bytes, n: int) -> np.ndarray:
    import decord

    vr = decord.VideoReader(io.BytesIO(data), num_threads=1)
    total = len(vr)
    if total < 1:
        raise ValueError("no frames")
    return vr.get_batch(frame_indices(total, n).tolist()).asnumpy()


def _pyav_pick(data: bytes, wanted: set[int] | None) -> tuple[list[np.ndarray], int]:
    """Decode once: the frames whose index is in ``wanted`` (all if None), and the count decoded."""
    import av

    kept, count = [], 0
    stop = max(wanted) if wanted else None
    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        for i, frame in enumerate(container.decode(video=0)):
            count = i + 1
            if wanted is None or i in wanted:
                kept.append(frame.to_ndarray(format="rgb24"))
            if stop is not None and i >= stop:
                break
    return kept, count


def _pyav(data: bytes, n: int) -> np.ndarray:
    import av

    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        total = container.streams.video[0].frames  # 0 when the container does not say (gif, webm)
    if total <= 0:  # count first, so a long clip is never held whole in memory
        _, total = _pyav_pick(data, set())
    if total <= 0:
        raise ValueError("no decodable frames")
    wanted = frame_indices(total, n)
    kept, decoded = _pyav_pick(data, set(wanted.tolist()))
    if not kept:
        raise ValueError("no decodable frames")
    if decoded < total and len(kept) < len(set(wanted.tolist())):  # header over-counted frames
        return np.stack([kept[i] for i in frame_indices(len(kept), n)])
    position = {f: k for k, f in enumerate(sorted(set(wanted.tolist())))}
    return np.stack([kept[position[f]] for f in wanted.tolist()])


def _image(data: bytes, n: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        rgb = np.asarray(img.convert("RGB"))
    return np.repeat(rgb[None], n, axis=0)


def sample_frames(
    source: str | os.PathLike | bytes,
    n: int = DEFAULT_NUM_FRAMES,
    *,
    name: str | None = None,
    backend: str = "auto",
    short_side: int | None = None,
) -> np.ndarray:
    """uint8 [n, H, W, 3] frames of a video file, or of encoded bytes named ``name``.

    ``short_side`` shrinks frames larger than that right after decoding (see :func:`shrink_frames`).

    Raises :class:`VideoDecodeError` naming the file when no backend can decode it.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}")
    if n < 1:
        raise ValueError("n must be at least 1")
    if isinstance(source, bytes):
        data, label = source, name or "<bytes>"
    else:
        label = str(source)
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise VideoDecodeError(label, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise VideoDecodeError(label, "empty file (0 bytes)")
    if label.lower().endswith(IMAGE_SUFFIXES):
        try:
            return shrink_frames(_image(data, 1), short_side).repeat(n, axis=0)
        except Exception as exc:  # PIL raises several unrelated types for bad images
            raise VideoDecodeError(label, f"not a readable image ({exc})") from None
    attempts = {"auto": (_decord, _pyav), "decord": (_decord,), "pyav": (_pyav,)}[backend]
    if backend == "auto" and (label.lower().endswith(".gif") or not looks_like_decord_container(data)):
        attempts = (_pyav,)  # decord reads gifs poorly, and prints unparseable input whole
    errors = []
    for decode in attempts:
        try:
            frames = decode(data, n)
        except Exception as exc:  # decoders raise their own error zoo; each is reported below
            errors.append(f"{decode.__name__.strip('_')}: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}")
            continue
        if frames.ndim != 4 or frames.shape[0] != n or frames.shape[-1] != 3:
            errors.append(f"{decode.__name__.strip('_')}: unexpected frame array {frames.shape}")
            continue
        return np.ascontiguousarray(shrink_frames(frames, short_side), dtype=np.uint8)
    raise VideoDecodeError(label, "cannot decode video (" + "; ".join(errors) + ")")
