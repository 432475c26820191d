"""A trained video tower as an :class:`~v2p.embed.base.Encoder` (``v2p-tiny``, ``v2p:<folder>``).

On a CPU a few clips run through the numpy forward pass (:mod:`v2p.embed.tower_numpy`), so a
cold clip query never imports torch; a call with :data:`TORCH_FROM_CLIPS` clips or more (an
index build) loads the torch modules of :mod:`v2p.embed.tower` once and runs there, where the
2.4 s import pays for itself (2 cores: numpy 86 clips/s, torch 400). On a CUDA device torch
runs everything. Both give the same vectors to float32 rounding (tested). Text goes through
the frozen text encoder the tower was trained into, built on first use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from v2p.embed.base import Encoder, ProgressFn
from v2p.embed.tower_config import TINY_CNN, TowerConfig
from v2p.embed.tower_numpy import NumpyTower
from v2p.embed.tower_numpy import frames_to_pixels as numpy_pixels
from v2p.errors import EncoderSpecError

TORCH_FROM_CLIPS = 32  # break-even of importing torch (2.4 s) on these 2 cores: 31 clips


class TowerEncoder(Encoder):
    """Videos through the tower, text through its text encoder."""

    def __init__(self, folder: Path, spec: str, device: str, *, sub_encoder: Callable[[str], Encoder]):
        """``device`` is resolved by the factory ("cpu": numpy, else torch on that device).
        ``sub_encoder(spec)`` builds the text encoder (and a frozen frame backbone) the tower was
        trained on: the factory passes its own cached builder, so this module never imports it."""
        if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
            raise EncoderSpecError(f"{folder}: not a trained v2p model (needs config.json and model.safetensors)")
        self.device = device
        self.folder = folder
        self.cfg = TowerConfig.load(folder)
        self._torch = None
        if device == "cpu":
            self._numpy = NumpyTower.load(folder)
        else:
            self._numpy = None
            self._torch_model()
        self.spec = spec
        self.fingerprint = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:16]
        self.dim = self.cfg.text_dim
        self.frame_dim = self.cfg.frame_dim
        self.num_frames = self.cfg.num_frames
        self.poolings = (self.cfg.head,)
        self._sub_encoder = sub_encoder
        self._text: Encoder | None = None  # built on first text encode: a clip query never needs it
        self.frames_backbone = None if self.cfg.frame_encoder == TINY_CNN else sub_encoder(self.cfg.frame_encoder)
        # frames only need the size the frame encoder reads (tiny-cnn: the whole frame at image_size)
        self.frame_short_side = (self.cfg.image_size if self.frames_backbone is None
                                 else self.frames_backbone.frame_short_side)

    @property
    def text(self) -> Encoder:
        """The frozen text encoder the tower was trained into."""
        if self._text is None:
            self._text = self._sub_encoder(self.cfg.text_encoder)
        return self._text

    def encode_text(self, texts: Sequence[str], *, batch_size: int | None = None,
                    on_progress: ProgressFn | None = None) -> np.ndarray:
        return self.text.encode_text(texts, batch_size=batch_size, on_progress=on_progress)

    def encode_frames(self, clips: Sequence[np.ndarray], *, batch_size: int = 64) -> np.ndarray:
        if self.frames_backbone is not None:
            return self.frames_backbone.encode_frames(clips, batch_size=batch_size)
        use_numpy = self._numpy is not None and len(clips) < TORCH_FROM_CLIPS
        out = []
        for start in range(0, len(clips), batch_size):
            part = clips[start:start + batch_size]
            out.append(self._numpy.encode_frames(numpy_pixels(part, self.cfg.image_size)) if use_numpy
                       else self._torch_frames(part))
        if not out:
            return np.empty((0, self.num_frames, self.frame_dim), np.float32)
        return np.concatenate(out)

    def pool(self, frame_vectors: np.ndarray, pooling: str | None = None) -> np.ndarray:
        self.check_pooling(pooling)
        return self._head(np.asarray(frame_vectors, np.float32))

    def frames_in_text_space(self, frame_vectors: np.ndarray) -> np.ndarray:
        """The head applied to every frame as a one-frame clip: what each moment looks like in text space."""
        x = np.asarray(frame_vectors, np.float32)
        n, t, f = x.shape
        return self._head(x.reshape(n * t, 1, f)).reshape(n, t, -1)

    # -- the two backends ------------------------------------------------------------------
    def _torch_model(self):
        """The torch modules, loaded on first need (a GPU, or a CPU call big enough to repay the import)."""
        if self._torch is None:
            from v2p.embed.base import pick_device
            from v2p.embed.tower import load_tower

            pick_device(self.device)  # torch's CPU threads set as for every torch encoder
            self._torch = load_tower(self.folder, self.device)
        return self._torch

    def _head(self, frames: np.ndarray) -> np.ndarray:
        if self._numpy is not None:  # the head is cheap: numpy on a CPU whatever the batch
            return self._numpy.pool(frames)
        import torch

        with torch.inference_mode():
            return self._torch_model().pool(torch.from_numpy(frames).to(self.device)).float().cpu().numpy()

    def _torch_frames(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        from v2p.embed.tower import frames_to_pixels

        model = self._torch_model()
        with torch.inference_mode():
            pixels = frames_to_pixels(clips, self.cfg.image_size).to(self.device)
            return model.encode_frames(pixels).float().cpu().numpy()
