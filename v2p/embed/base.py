"""The one interface every encoder implements, and the device choice they share.

An encoder maps prompts and clips into one space named by its *spec* string:

* ``encode_text(texts) -> float32 [n, d]``, L2-normalised;
* ``encode_frames(clips) -> float32 [n, t, f]``, one vector per sampled frame (kept so a
  pooling head can be trained later without decoding videos again);
* ``pool(frame_vectors) -> float32 [n, d]``, L2-normalised, in the text space.

``encode_videos`` is ``pool(encode_frames(...))``. Text-only encoders raise on video calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np

from v2p.errors import EncoderSpecError

ProgressFn = Callable[[int], None]


def cuda_may_be_present() -> bool:
    """Whether a CUDA device could be there, known without importing torch (2.4 s here): the
    NVIDIA driver's /proc entry or device node. False is certain; True means ask torch."""
    import os

    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    gpus = "/proc/driver/nvidia/gpus"
    return (os.path.isdir(gpus) and bool(os.listdir(gpus))) or os.path.exists("/dev/nvidia0")


def pick_device(device: str | None = None) -> str:
    """``cuda`` when a CUDA device is visible, else ``cpu`` (torch given the CPUs this process
    may use: affinity and cgroup quota, or ``V2P_THREADS``)."""
    import torch

    from v2p._threads import configure_torch_threads

    if device:
        resolved = device
    else:
        resolved = "cuda" if torch.cuda.is_available() else "cpu"
    if resolved == "cpu":
        configure_torch_threads()
    return resolved


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


class Encoder(ABC):
    """Base class: subclasses set ``spec``, ``dim``, ``frame_dim`` and implement the encoders."""

    spec: str
    dim: int  # the shared text/video space
    frame_dim: int | None = None  # per-frame vector size (None for text-only encoders)
    num_frames: int = 8  # frames sampled per clip by default
    poolings: tuple[str, ...] = ()  # pooling names this encoder accepts; the first is its default
    fingerprint: str | None = None  # identifies the weights when the spec alone does not (trained towers)
    video_dim: int | None = None  # size of video_keys() vectors; None = dim (the video path uses pool())
    frame_short_side: int | None = None  # frames are shrunk to this short side on decoding (None: kept whole)

    @abstractmethod
    def encode_text(self, texts: Sequence[str], *, batch_size: int | None = None,
                    on_progress: ProgressFn | None = None) -> np.ndarray:
        """Unit vectors [n, dim]; ``batch_size`` None = the encoder's own default for its device."""

    def encode_frames(self, clips: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        raise EncoderSpecError(f"{self.spec} is a text-only encoder; videos need a clip:... or v2p-tiny encoder")

    def pool(self, frame_vectors: np.ndarray, pooling: str | None = None) -> np.ndarray:
        raise EncoderSpecError(f"{self.spec} is a text-only encoder; videos need a clip:... or v2p-tiny encoder")

    def frames_in_text_space(self, frame_vectors: np.ndarray) -> np.ndarray:
        """[n, t, f] per-frame vectors -> [n, t, d]: each frame alone, in the text space (for
        fine-grained frame-vs-prompt scores)."""
        raise EncoderSpecError(f"{self.spec} is a text-only encoder; videos need a clip:... or v2p-tiny encoder")

    def video_keys(self, frame_vectors: np.ndarray) -> np.ndarray:
        """[n, t, f] -> [n, video_dim]: what the video path compares (bank videos against the
        query clip). By default the pooled text-space vector; an encoder with a better
        same-modal space (real image embeddings) returns that instead."""
        return self.pool(frame_vectors)

    def picture_vectors(self, frame_vectors: np.ndarray) -> np.ndarray | None:
        """[n, t, f] -> [n, t, p]: the part of each frame vector that is a general-purpose
        picture embedding (real image weights), for maps fitted on a bank's own clip/prompt
        pairs (the reranker's image term); None when the encoder stores none."""
        return None

    @property
    def video_key_dim(self) -> int:
        return self.video_dim or self.dim

    def camera(self, frame_vectors: np.ndarray) -> list | None:
        """Per clip, the camera motion read from its frames (a CameraMotion), or None when this
        encoder does not read motion."""
        return None

    def empty_frames(self) -> np.ndarray:
        return np.empty((0, self.num_frames, self.frame_dim), np.float32)

    @staticmethod
    def frames_per_clip(clips: Sequence[np.ndarray]) -> int:
        """The one frame count every clip of a batch shares (batches are arrays in time)."""
        counts = {c.shape[0] for c in clips}
        if len(counts) != 1:
            raise ValueError("all clips in a batch must have the same number of frames")
        return counts.pop()

    def encode_videos(self, clips: Sequence[np.ndarray], *, pooling: str | None = None,
                      batch_size: int = 32) -> np.ndarray:
        return self.pool(self.encode_frames(clips, batch_size=batch_size), pooling)

    @property
    def has_video(self) -> bool:
        return self.frame_dim is not None

    def check_pooling(self, pooling: str | None) -> str:
        if not self.poolings:
            raise EncoderSpecError(f"{self.spec} does not encode videos")
        if pooling is None:
            return self.poolings[0]
        if pooling not in self.poolings:
            raise EncoderSpecError(f"{self.spec} has no pooling {pooling!r}; choose from {', '.join(self.poolings)}")
        return pooling
