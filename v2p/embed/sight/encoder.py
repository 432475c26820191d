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

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from v2p.data.motion import MOTION_FEATURES, CameraMotion, clip_motion_features, describe_motion
from v2p.embed.base import Encoder, ProgressFn, l2_normalize
from v2p.embed.sight.bridge import MODEL_DIR, BridgeConfig, frame_text_vectors, load_label_vectors, to_query_space
from v2p.embed.sight.tflite import TFLiteModel
from v2p.errors import EncoderSpecError

SPEC = "v2p-sight"
CLASSIFIER = "mobilenet_v2_1.0_224_quant.tflite"
EMBEDDER = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
SEGMENTER = "deeplabv3_mnv2_pascal_quant.tflite"
QUERY_MEAN = "query_mean.npy"
EMBED_DIM, TEXT_DIM = 1024, 384
PASCAL_CLASSES = 21


def square_crops(frame: np.ndarray, n: int) -> list[tuple[int, int, int]]:
    """(top, left, side) of ``n`` square crops: the centre, then both ends of the long side."""
    h, w = frame.shape[:2]
    side = min(h, w)
    centre = ((h - side) // 2, (w - side) // 2, side)
    if n == 1 or h == w:
        return [centre]
    ends = [(0, 0, side), (h - side, 0, side)] if h > w else [(0, 0, side), (0, w - side, side)]
    return [centre, *ends][:n]


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
        (the class vectors are shipped), so a cold ``v2p query clip.mp4`` skips loading it."""
        import hashlib

        self._make_text = text_encoder
        self._text: Encoder | None = None
        self.cfg = BridgeConfig.load(folder)
        self.classifier = TFLiteModel(folder / CLASSIFIER, threads)
        self.embedder = TFLiteModel(folder / EMBEDDER, threads)
        self.segmenter = TFLiteModel(folder / SEGMENTER, threads)
        self.label_vectors = load_label_vectors(folder)
        self.query_mean = np.load(folder / QUERY_MEAN).astype(np.float32)
        digest = hashlib.sha256()
        for name in (CLASSIFIER, EMBEDDER, SEGMENTER, "label_vectors.npz", QUERY_MEAN, "bridge.json"):
            path = folder / name
            digest.update(path.read_bytes() if path.is_file() else b"")
        self.fingerprint = digest.hexdigest()[:16]

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
    def _resized(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        import cv2

        h, w = size
        interp = cv2.INTER_AREA if image.shape[0] > h else cv2.INTER_LINEAR
        return cv2.resize(image, (w, h), interpolation=interp)

    def _frame(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities averaged over the crops [1001], image embedding [1024])."""
        size = self.classifier.input_size
        probs = []
        centre = None
        for top, left, side in square_crops(frame, self.cfg.crops):
            crop = self._resized(frame[top:top + side, left:left + side], size)
            centre = crop if centre is None else centre
            probs.append(self.classifier(crop))
        return np.mean(probs, axis=0), self.embedder(centre).reshape(-1)

    def _segment_areas(self, frame: np.ndarray) -> np.ndarray:
        classes = self.segmenter(self._resized(frame, self.segmenter.input_size))
        counts = np.bincount(np.asarray(classes, np.int64).ravel(), minlength=PASCAL_CLASSES)[:PASCAL_CLASSES]
        return counts / max(classes.size, 1)

    def encode_frames(self, clips: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        if not clips:
            return self.empty_frames()
        t = self.frames_per_clip(clips)
        out = np.empty((len(clips), t, self.frame_dim), np.float32)
        for i, clip in enumerate(clips):
            probs, embeds, areas = [], [], np.zeros((t, PASCAL_CLASSES), np.float32)
            for j, frame in enumerate(clip):
                p, e = self._frame(frame)
                probs.append(p)
                embeds.append(e)
                if j % self.cfg.segment_every == 0:
                    areas[j] = self._segment_areas(frame)
                else:
                    areas[j] = areas[j - 1]
            out[i, :, :EMBED_DIM] = l2_normalize(np.stack(embeds))
            out[i, :, EMBED_DIM:EMBED_DIM + TEXT_DIM] = frame_text_vectors(np.stack(probs), areas,
                                                                          self.label_vectors, self.cfg)
            out[i, :, EMBED_DIM + TEXT_DIM:] = clip_motion_features(clip)
        return out

    def _text_part(self, frame_vectors: np.ndarray) -> np.ndarray:
        return np.asarray(frame_vectors[..., EMBED_DIM:EMBED_DIM + TEXT_DIM], np.float32)

    def pool(self, frame_vectors: np.ndarray, pooling: str | None = None) -> np.ndarray:
        self.check_pooling(pooling)
        return to_query_space(self._text_part(frame_vectors).mean(axis=1), self.query_mean)

    def video_keys(self, frame_vectors: np.ndarray) -> np.ndarray:
        """Mean image embedding per clip: the video path compares pictures with pictures."""
        return l2_normalize(np.asarray(frame_vectors[..., :EMBED_DIM], np.float32).mean(axis=1))

    def frames_in_text_space(self, frame_vectors: np.ndarray) -> np.ndarray:
        return to_query_space(self._text_part(frame_vectors), self.query_mean)

    def camera(self, frame_vectors: np.ndarray) -> list[CameraMotion]:
        return [describe_motion(np.asarray(v[:, EMBED_DIM + TEXT_DIM:], np.float32)) for v in frame_vectors]
