"""``v2p-sight``: the embedded encoder for real videos, from real weights shipped in the package.

Per frame it runs three quantized TFLite models (Apache 2.0, see ``v2p/models/v2p-sight``):
a MobileNetV2 ImageNet classifier, a MobileNetV1 1024-d image embedding and a DeepLabV3
PASCAL segmenter; and it reads the camera's motion from the pixels (:mod:`v2p.data.motion`).
A frame's stored vector is all of that side by side::

    [0:1024]     image embedding (L2-normalised): the video path, same-modal
    [1024:1408]  the frame in MiniLM space, uncentred (v2p.embed.sight.bridge)
    [1408:1412]  camera motion from the previous frame (tx, ty, zoom, residual)

Prompts are embedded by MiniLM; a clip's query vector is its frames' MiniLM-space part,
averaged and centred. Nothing here is trained on the synthetic world.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from v2p.data.motion import MOTION_FEATURES, CameraMotion, clip_motion_features, describe_motion
from v2p.embed.base import Encoder, ProgressFn, l2_normalize
from v2p.embed.sight.bridge import (MODEL_DIR, BridgeConfig, frame_text_vectors, load_label_vectors, pool_views,
                                    to_query_space)
from v2p.embed.sight.tflite import TFLiteModel, resize_to
from v2p.errors import EncoderSpecError

SPEC = "v2p-sight"
CLASSIFIER = "mobilenet_v2_1.0_224_quant.tflite"
EMBEDDER = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
SEGMENTER = "deeplabv3_mnv2_pascal_quant.tflite"
QUERY_MEAN = "query_mean.npy"
EMBED_DIM, TEXT_DIM = 1024, 384
PASCAL_CLASSES = 21


def _run_now(fn, *args) -> Future:
    """Run at once on this thread, as a finished future (one worker: no pool, no hand-off)."""
    done: Future = Future()
    done.set_result(fn(*args))
    return done


def _is_still(clip: np.ndarray) -> bool:
    """Every frame the same picture (a still image, or a clip that never changes)."""
    return all(np.array_equal(clip[0], frame) for frame in clip[1:])


def square_crops(frame: np.ndarray, n: int) -> list[tuple[int, int, int]]:
    """(top, left, side) of ``n`` square crops: the centre, then both ends of the long side."""
    h, w = frame.shape[:2]
    side = min(h, w)
    centre = ((h - side) // 2, (w - side) // 2, side)
    if n == 1 or h == w:
        return [centre]
    ends = [(0, 0, side), (h - side, 0, side)] if h > w else [(0, 0, side), (0, w - side, side)]
    return [centre, *ends][:n]


def grid_squares(frame: np.ndarray, n: int, side_fraction: float) -> list[tuple[int, int, int]]:
    """(top, left, side) of an ``n`` x ``n`` grid of squares of ``side_fraction`` of the short
    side, spread evenly from corner to corner (they overlap when n * fraction > 1)."""
    if n <= 0:
        return []
    h, w = frame.shape[:2]
    side = max(1, int(min(h, w) * side_fraction))
    tops = np.linspace(0, h - side, n).astype(int)
    lefts = np.linspace(0, w - side, n).astype(int)
    return [(int(t), int(left), side) for t in tops for left in lefts]


def frame_views(frame: np.ndarray, cfg: BridgeConfig) -> list[tuple[int, int, int]]:
    """Every square the classifier may read in a frame: the whole-height crops (view 0 is the
    centre, which the image embedding also reads), then the grid. ImageNet's classifier names
    the one main object of a photo; a real scene has several, and a person on a skateboard or a
    clock on a tower fills only part of the frame, so smaller squares let each be the main object
    of one view (``benchmarks/sight_eval.py --ablation``; numbers in the README)."""
    return square_crops(frame, cfg.crops) + grid_squares(frame, cfg.grid, cfg.grid_side)


def views_of_frame(j: int, frames: int, views: int, spread: bool) -> list[int]:
    """Which views frame ``j`` of a ``frames``-frame clip classifies. A clip's frames overlap so
    much that sharing the views out over them (frame j: views j, j + frames, ...) reads every
    view once per clip at about one classifier call a frame; a still reads every view."""
    if frames == 1 or not spread:
        return list(range(views))
    return list(range(j, views, frames)) or [j % views]


class SightEncoder(Encoder):
    """Real-weights frame encoder + MiniLM text encoder (see the module docstring)."""

    spec = SPEC
    dim = TEXT_DIM
    frame_dim = EMBED_DIM + TEXT_DIM + MOTION_FEATURES
    video_dim = EMBED_DIM
    poolings = ("mean",)
    frame_short_side = 320  # crops reach the classifier at 224; the segmenter reads 513 from this

    def __init__(self, text_encoder: Callable[[], Encoder], threads: int, folder: Path = MODEL_DIR):
        """``text_encoder()`` builds MiniLM when text is first encoded: a clip query never needs it
        (the class vectors are shipped), so a cold ``v2p query clip.mp4`` skips loading it.

        ``threads`` frames are read at once, each worker thread with its own single-threaded
        interpreters: LiteRT releases the GIL while it runs, and on these small batch-1 graphs
        frames side by side beat one frame on several threads (24 classifier calls: 107 ms on two
        workers against 131 ms on one two-thread interpreter, 2 cores)."""
        import hashlib

        self._make_text = text_encoder
        self._text: Encoder | None = None
        self.folder = folder
        self.cfg = BridgeConfig.load(folder)
        self.workers = max(1, threads)
        self._local = threading.local()
        self._workers_pool: ThreadPoolExecutor | None = None
        self._models()  # load now: a missing or damaged model file fails here, not at the first frame
        self.label_vectors = load_label_vectors(folder)
        self.query_mean = np.load(folder / QUERY_MEAN).astype(np.float32)
        digest = hashlib.sha256()
        for name in (CLASSIFIER, EMBEDDER, SEGMENTER, "label_vectors.npz", QUERY_MEAN, "bridge.json"):
            path = folder / name
            digest.update(path.read_bytes() if path.is_file() else b"")
        self.fingerprint = digest.hexdigest()[:16]

    def _models(self) -> tuple[TFLiteModel, TFLiteModel, TFLiteModel]:
        """The calling thread's single-threaded interpreters (an interpreter must not run in two
        threads at once; parallelism comes from the workers, see ``__init__``)."""
        models = getattr(self._local, "models", None)
        if models is None:
            models = tuple(TFLiteModel(self.folder / name, 1) for name in (CLASSIFIER, EMBEDDER, SEGMENTER))
            self._local.models = models
        return models

    @property
    def _executor(self) -> ThreadPoolExecutor:
        if self._workers_pool is None:
            self._workers_pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="v2p-sight")
        return self._workers_pool

    # -- text --------------------------------------------------------------------------------
    @property
    def text(self) -> Encoder:
        if self._text is None:
            text = self._make_text()
            if text.dim != TEXT_DIM:
                raise EncoderSpecError(f"v2p-sight's bridge is in MiniLM space ({TEXT_DIM}-d); got {text.spec}")
            self._text = text
        return self._text

    def encode_text(self, texts: Sequence[str], *, batch_size: int | None = None,
                    on_progress: ProgressFn | None = None) -> np.ndarray:
        return self.text.encode_text(texts, batch_size=batch_size, on_progress=on_progress)

    # -- frames ------------------------------------------------------------------------------
    def _read_frame(self, frame: np.ndarray, segment: bool, j: int, frames: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Frame ``j`` of a ``frames``-frame clip: (class probabilities pooled over the views it
        reads [1001], image embedding of the centre [1024], PASCAL area fractions [21] or None when
        this frame is not segmented), on the calling thread's models."""
        classifier, embedder, segmenter = self._models()
        size = classifier.input_size
        boxes = frame_views(frame, self.cfg)
        read = views_of_frame(j, frames, len(boxes), self.cfg.spread_views)
        resized = {}
        for v in {0, *read}:
            top, left, side = boxes[v]
            resized[v] = resize_to(frame[top:top + side, left:left + side], size)
        probs = pool_views(np.stack([classifier(resized[v]) for v in read]), self.cfg.view_pooling)
        centre = resized[0]
        areas = None
        if segment:
            classes = segmenter(resize_to(frame, segmenter.input_size))
            counts = np.bincount(np.asarray(classes, np.int64).ravel(), minlength=PASCAL_CLASSES)[:PASCAL_CLASSES]
            areas = counts / max(classes.size, 1)
        return probs, embedder(centre).reshape(-1), areas

    def encode_frames(self, clips: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        if not clips:
            return self.empty_frames()
        t = self.frames_per_clip(clips)
        out = np.empty((len(clips), t, self.frame_dim), np.float32)
        every = self.cfg.segment_every
        run = self._executor.submit if self.workers > 1 else _run_now
        frame_jobs = []
        for clip in clips:
            if _is_still(clip):  # an image decodes as one frame repeated: read it once, with every view
                job = run(self._read_frame, clip[0], True, 0, 1)
                frame_jobs.append([job] * t)
            else:
                frame_jobs.append([run(self._read_frame, frame, j % every == 0, j, t)
                                   for j, frame in enumerate(clip)])
        motion_jobs = [run(clip_motion_features, clip) for clip in clips]  # last: OpenCV's flow runs threads of its own
        for i, jobs in enumerate(frame_jobs):
            read = [job.result() for job in jobs]
            areas = np.zeros((t, PASCAL_CLASSES), np.float32)
            for j, (_, _, a) in enumerate(read):
                areas[j] = a if a is not None else areas[j - 1]  # carried from the last segmented frame
            out[i, :, :EMBED_DIM] = l2_normalize(np.stack([e for _, e, _ in read]))
            out[i, :, EMBED_DIM:EMBED_DIM + TEXT_DIM] = frame_text_vectors(np.stack([p for p, _, _ in read]), areas,
                                                                          self.label_vectors, self.cfg)
            out[i, :, EMBED_DIM + TEXT_DIM:] = motion_jobs[i].result()
        return out

    def centring_vector(self, photos: Sequence[np.ndarray]) -> np.ndarray:
        """Mean unit text vector of real photos (one-frame clips [1, H, W, 3]) under this
        encoder's bridge: the :data:`QUERY_MEAN` that ``benchmarks/sight_calibrate.py`` ships."""
        frames = self.encode_frames(photos)
        return l2_normalize(self._text_part(frames)[:, 0]).mean(axis=0).astype(np.float32)

    def _text_part(self, frame_vectors: np.ndarray) -> np.ndarray:
        return np.asarray(frame_vectors[..., EMBED_DIM:EMBED_DIM + TEXT_DIM], np.float32)

    def pool(self, frame_vectors: np.ndarray, pooling: str | None = None) -> np.ndarray:
        self.check_pooling(pooling)
        return to_query_space(self._text_part(frame_vectors).mean(axis=1), self.query_mean)

    def picture_vectors(self, frame_vectors: np.ndarray) -> np.ndarray:
        return np.asarray(frame_vectors[..., :EMBED_DIM], np.float32)

    def video_keys(self, frame_vectors: np.ndarray) -> np.ndarray:
        """Mean image embedding per clip: the video path compares pictures with pictures."""
        return l2_normalize(np.asarray(frame_vectors[..., :EMBED_DIM], np.float32).mean(axis=1))

    def frames_in_text_space(self, frame_vectors: np.ndarray) -> np.ndarray:
        return to_query_space(self._text_part(frame_vectors), self.query_mean)

    def camera(self, frame_vectors: np.ndarray) -> list[CameraMotion]:
        return [describe_motion(np.asarray(v[:, EMBED_DIM + TEXT_DIM:], np.float32)) for v in frame_vectors]
