"""``<video spec>+image``: any video encoder, with a real image embedding stored beside each frame.

A video tower trained into text space keeps what its contrastive loss asked for and little
else: ``v2p-tiny``'s frame vectors read a subject's shape at 0.31-0.41 (linear probe, six
shapes, majority 0.19), so the reranker that reads them cannot see shape either. With the
shipped MobileNetV1 image embedding (real ImageNet weights, ``v2p/models/v2p-sight``) of the
same 64-pixel frames beside them, the probe reads shape at 0.94 on another generator's clips
(``benchmarks/rerank_eval.py --encoder v2p-tiny+image``). This wrapper stores both per frame::

    [0:f]        the inner encoder's frame vector (what it pools, searches and reads motion from)
    [f:f+1024]   MobileNetV1 embedding of the frame's centre square, L2-normalised

Everything retrieval does (text vectors, pooling, video keys, camera) is the inner encoder's,
on its own part: an index built with ``v2p-tiny+image`` answers exactly as ``v2p-tiny`` does.
What changes is what a per-frame reader sees: the learned cross-encoder reranker
(``v2p rerank train``) reads the whole frame vector, so it can learn which prompt words the
picture features agree with.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from v2p.embed.base import Encoder, ProgressFn, l2_normalize

IMAGE_SUFFIX = "+image"  # the spec suffix (v2p.embed.factory parses it)
IMAGE_DIM = 1024


class ImageEmbedder:
    """MobileNetV1's 1024-d embedding of a frame's centre square, frames read ``threads`` at a
    time, each worker thread with its own single-threaded interpreter (as v2p-sight reads)."""

    def __init__(self, threads: int):
        from v2p.embed.sight.bridge import MODEL_DIR
        from v2p.embed.sight.encoder import EMBEDDER

        self.path = MODEL_DIR / EMBEDDER
        self.workers = max(1, threads)
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self.fingerprint = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]
        self._model()  # a missing or damaged model file fails here, not at the first frame

    def _model(self):
        from v2p.embed.sight.tflite import TFLiteModel

        model = getattr(self._local, "model", None)
        if model is None:
            model = self._local.model = TFLiteModel(self.path, 1)
        return model

    def _embed(self, frame: np.ndarray) -> np.ndarray:
        from v2p.embed.sight.encoder import square_crops
        from v2p.embed.sight.tflite import resize_to

        model = self._model()
        top, left, side = square_crops(frame, 1)[0]
        return model(resize_to(frame[top:top + side, left:left + side], model.input_size)).reshape(-1)

    def __call__(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 clips [n] of [t, H, W, 3] -> L2-normalised float32 [n, t, 1024]."""
        frames = [f for clip in clips for f in clip]
        if self.workers > 1 and len(frames) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="v2p-image")
            vectors = list(self._pool.map(self._embed, frames))
        else:
            vectors = [self._embed(f) for f in frames]
        t = clips[0].shape[0] if len(clips) else 0
        return l2_normalize(np.stack(vectors).reshape(len(clips), t, IMAGE_DIM)) if frames else \
            np.empty((len(clips), t, IMAGE_DIM), np.float32)


class ImageFramesEncoder(Encoder):
    """``inner`` with an image embedding beside each of its frame vectors (module docstring)."""

    def __init__(self, inner: Encoder, embedder: ImageEmbedder):
        if not inner.has_video:
            raise ValueError(f"{inner.spec}{IMAGE_SUFFIX}: {inner.spec} encodes no video")
        self.inner, self.embedder = inner, embedder
        self.spec = inner.spec + IMAGE_SUFFIX
        self.dim = inner.dim
        self.inner_frame_dim = inner.frame_dim
        self.frame_dim = inner.frame_dim + IMAGE_DIM
        self.num_frames = inner.num_frames
        self.poolings = inner.poolings
        self.video_dim = inner.video_dim
        self.frame_short_side = inner.frame_short_side
        self.fingerprint = hashlib.sha256(f"{inner.fingerprint}|{embedder.fingerprint}".encode()).hexdigest()[:16]

    def _own(self, frame_vectors: np.ndarray) -> np.ndarray:
        return frame_vectors[..., :self.inner_frame_dim]

    def encode_text(self, texts: Sequence[str], *, batch_size: int | None = None,
                    on_progress: ProgressFn | None = None) -> np.ndarray:
        return self.inner.encode_text(texts, batch_size=batch_size, on_progress=on_progress)

    def encode_frames(self, clips: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        if not clips:
            return self.empty_frames()
        own = self.inner.encode_frames(clips, batch_size=batch_size)
        return np.concatenate([own, self.embedder(clips)], axis=-1).astype(np.float32)

    def pool(self, frame_vectors: np.ndarray, pooling: str | None = None) -> np.ndarray:
        return self.inner.pool(self._own(frame_vectors), pooling)

    def frames_in_text_space(self, frame_vectors: np.ndarray) -> np.ndarray:
        return self.inner.frames_in_text_space(self._own(frame_vectors))

    def video_keys(self, frame_vectors: np.ndarray) -> np.ndarray:
        return self.inner.video_keys(self._own(frame_vectors))

    def camera(self, frame_vectors: np.ndarray) -> list | None:
        return self.inner.camera(self._own(frame_vectors))

    def picture_vectors(self, frame_vectors: np.ndarray) -> np.ndarray:
        return np.asarray(frame_vectors[..., self.inner_frame_dim:], np.float32)
