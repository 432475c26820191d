"""Sample N frames spread uniformly over a clip: the one way every stage reads video.

decord is tried first (fast seeking) and PyAV is the fallback (decord is unmaintained and
fails on some inputs: gifs, odd containers, some webm). Still images (png, jpg, webp, bmp)
are one-frame videos. The result always has exactly ``n`` frames: a clip shorter than
``n`` repeats frames, so batches of clips have one shape in time.

Memory and time are bounded by the frames kept, not the clip: a file is streamed by the
decoder (never read whole), PyAV seeks to each sampled frame of a long clip instead of
decoding all of them, and frames are shrunk right after decoding. A phone clip recorded
sideways is turned upright from its track header, as a player shows it.
"""

from __future__ import annotations

import io
import math
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


Media = str | bytes  # a file path (streamed from disk) or a whole encoded clip in memory
LONG_CLIP_FRAMES = 600  # beyond this, PyAV seeks to each sampled frame instead of decoding them all


def _open_media(media: Media):
    return media if isinstance(media, str) else io.BytesIO(media)


def _decord(media: Media, n: int) -> np.ndarray:
    import decord

    vr = decord.VideoReader(_open_media(media), num_threads=1)
    total = len(vr)
    if total < 1:
        raise ValueError("no frames")
    return vr.get_batch(frame_indices(total, n).tolist()).asnumpy()


def _pyav_pick(media: Media, wanted: set[int] | None) -> tuple[list[np.ndarray], int]:
    """Decode once: the frames whose index is in ``wanted`` (all if None), and the count decoded."""
    import av

    kept, count = [], 0
    stop = max(wanted) if wanted else None
    with av.open(_open_media(media), mode="r") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        for i, frame in enumerate(container.decode(video=0)):
            count = i + 1
            if wanted is None or i in wanted:
                kept.append(frame.to_ndarray(format="rgb24"))
            if stop is not None and i >= stop:
                break
    return kept, count


def _pyav_seek(media: Media, n: int, total: int) -> np.ndarray | None:
    """n frames of a long clip by seeking to each one's time: bounded work whatever the length
    (a 10-minute clip decodes a keyframe interval per sample, not 15,000 frames). None when
    the container cannot seek or lacks timing, so the caller decodes in order instead."""
    import av

    with av.open(_open_media(media), mode="r") as container:
        stream = container.streams.video[0]
        if stream.duration is None or stream.time_base is None or stream.duration <= 0:
            return None
        start = stream.start_time or 0
        out = []
        for index in frame_indices(total, n).tolist():
            target = start + int(stream.duration * (index + 0.5) / total)
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
            except av.FFmpegError:
                return None
            picked = None
            for frame in container.decode(stream):
                picked = frame
                if frame.pts is not None and frame.pts >= target:
                    break
            if picked is None:
                return None
            out.append(picked.to_ndarray(format="rgb24"))
    return np.stack(out)


def _pyav(media: Media, n: int) -> np.ndarray:
    """PyAV decodes pixels as stored; the display rotation is applied here (decord applies it itself)."""
    frames = _pyav_stored(media, n)
    turns = display_rotation(media) // 90
    return np.rot90(frames, k=turns, axes=(1, 2)) if turns else frames


def _pyav_stored(media: Media, n: int) -> np.ndarray:
    import av

    with av.open(_open_media(media), mode="r") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        total = container.streams.video[0].frames  # 0 when the container does not say (gif, webm)
    if total > LONG_CLIP_FRAMES:
        frames = _pyav_seek(media, n, total)
        if frames is not None:
            return frames
    if total <= 0:  # count first, so a long clip is never held whole in memory
        _, total = _pyav_pick(media, set())
    if total <= 0:
        raise ValueError("no decodable frames")
    wanted = frame_indices(total, n)
    kept, decoded = _pyav_pick(media, set(wanted.tolist()))
    if not kept:
        raise ValueError("no decodable frames")
    if decoded < total and len(kept) < len(set(wanted.tolist())):  # header over-counted frames
        return np.stack([kept[i] for i in frame_indices(len(kept), n)])
    position = {f: k for k, f in enumerate(sorted(set(wanted.tolist())))}
    return np.stack([kept[position[f]] for f in wanted.tolist()])


def _read_head(media: Media, size: int = 512) -> bytes:
    if isinstance(media, bytes):
        return media[:size]
    with open(media, "rb") as fh:
        return fh.read(size)


def _mp4_moov(media: Media) -> bytes | None:
    """The ``moov`` box of an MP4/MOV (a few KB of headers), found by walking the top-level boxes:
    read from disk by seeking, so a clip whose moov sits at its end is not read whole."""
    fh = open(media, "rb") if isinstance(media, str) else io.BytesIO(media)
    with fh:
        end = fh.seek(0, io.SEEK_END)
        pos = 0
        while pos + 8 <= end:
            fh.seek(pos)
            head = fh.read(16)
            size, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if size == 1 and len(head) >= 16:
                size = int.from_bytes(head[8:16], "big")
            elif size == 0:
                size = end - pos
            if size < 8:
                return None
            if kind == b"moov":
                fh.seek(pos)
                return fh.read(min(size, 64 << 20))
            pos += size
    return None


def display_rotation(media: Media) -> int:
    """Counter-clockwise degrees (0, 90, 180, 270) a player turns the picture by: phones record
    sideways and say so in the track header (tkhd) matrix. decord applies it; PyAV does not."""
    if _read_head(media, 12)[4:8] not in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return 0
    try:
        moov = _mp4_moov(media)
    except OSError:
        return 0
    at = 0
    while moov and (at := moov.find(b"tkhd", at) + 1) > 0:
        body = moov[at + 3:]
        version = body[0] if body else 0
        matrix_at = 4 + (32 if version == 1 else 20) + 16  # times/ids/duration, then layer..volume
        if len(body) < matrix_at + 44:
            break
        a, b = (int.from_bytes(body[matrix_at + k:matrix_at + k + 4], "big", signed=True) for k in (0, 4))
        width = int.from_bytes(body[matrix_at + 36:matrix_at + 40], "big")
        if width == 0:  # an audio track
            continue
        return round(-math.degrees(math.atan2(b, a)) / 90) % 4 * 90  # the sign FFmpeg reports
    return 0


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
        media, label = source, name or "<bytes>"
        size, head = len(source), source[:512]
    else:  # a file is streamed by the decoders, never read whole (a 4K clip can be gigabytes)
        label = str(source)
        media = os.fspath(source)
        try:
            size = Path(media).stat().st_size
            head = _read_head(media, 512)
        except OSError as exc:
            raise VideoDecodeError(label, f"cannot read file ({exc.strerror or exc})") from None
    if size == 0:
        raise VideoDecodeError(label, "empty file (0 bytes)")
    if label.lower().endswith(IMAGE_SUFFIXES):
        try:
            return shrink_frames(_image(_read_all(media), 1), short_side).repeat(n, axis=0)
        except Exception as exc:  # PIL raises several unrelated types for bad images
            raise VideoDecodeError(label, f"not a readable image ({exc})") from None
    attempts = {"auto": (_decord, _pyav), "decord": (_decord,), "pyav": (_pyav,)}[backend]
    if backend == "auto" and (label.lower().endswith(".gif") or not looks_like_decord_container(head)):
        attempts = (_pyav,)  # decord reads gifs poorly, and prints unparseable input whole
    errors = []
    for decode in attempts:
        try:
            frames = decode(media, n)
        except Exception as exc:  # decoders raise their own error zoo; each is reported below
            errors.append(f"{decode.__name__.strip('_')}: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}")
            continue
        if frames.ndim != 4 or frames.shape[0] != n or frames.shape[-1] != 3:
            errors.append(f"{decode.__name__.strip('_')}: unexpected frame array {frames.shape}")
            continue
        return np.ascontiguousarray(shrink_frames(frames, short_side), dtype=np.uint8)
    if any("no video stream" in e for e in errors):
        raise VideoDecodeError(label, "has no video stream (an audio-only or data file?)")
    raise VideoDecodeError(label, "cannot decode video (" + "; ".join(errors) + ")")


def _read_all(media: Media) -> bytes:
    return media if isinstance(media, bytes) else Path(media).read_bytes()
