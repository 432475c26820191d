"""Video towers trained by ``v2p train``: a frame encoder + a pooling head into a text space.

* frame encoder ``tiny-cnn``: a small CNN trained from scratch on 64x64 frames. Its last
  4x4 feature map is flattened, not averaged, so each frame vector keeps *where* things
  are: motion direction is then readable from the sequence of frame vectors.
  (Alternatively a frozen CLIP spec, whose per-frame vectors come from an index cache.)
* heads: ``mean`` (CLIP4Clip meanP: mean of frame vectors + linear projection) and
  ``temporal`` (CLIP4Clip seqTransf / STAN's temporal branch: a small transformer over frame
  vectors with temporal position embeddings, plus a residual to the mean).

A trained tower is a folder: ``config.json`` + ``model.safetensors`` (+ training log). Its
encoder spec is ``v2p:<folder>``; ``v2p-tiny`` is the one shipped inside the package. These
torch modules train towers and run them on a GPU; the Encoder is
:class:`v2p.embed.tower_encoder.TowerEncoder`, which on a CPU runs the same weights in numpy
(:mod:`v2p.embed.tower_numpy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2p.embed.tower_config import FRAME_MEAN, FRAME_STD, PACKAGED_MODELS, TINY_CNN, TowerConfig, tower_folder
from v2p.errors import EncoderSpecError

__all__ = ["FRAME_MEAN", "FRAME_STD", "PACKAGED_MODELS", "TINY_CNN", "TowerConfig", "tower_folder", "VideoTower",
           "FrameCNN", "MeanHead", "TemporalHead", "frames_to_pixels", "normalise_pixels", "save_tower", "load_tower"]


class FrameCNN(nn.Module):
    """Four stride-2 conv blocks (64 -> 4 px, ~11M multiply-adds a frame), flattened map -> frame vector.

    The flattened map keeps *where* things are, which the temporal head needs to read motion;
    but each of its 16 cells must then learn *what* is there on its own, and a subject that
    moves across the frame is a different input at every cell. ``max_pool`` adds each
    channel's maximum over the map (as a classifier's global pooling), the same wherever the
    subject stands: what it is, read once for all positions."""

    def __init__(self, width: int = 32, out_dim: int = 128, image_size: int = 64, max_pool: bool = False):
        super().__init__()
        chans = [3, width, 2 * width, 3 * width, 4 * width]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU()]
        self.features = nn.Sequential(*layers)
        self.max_pool = max_pool
        side = image_size // 16
        self.proj = nn.Linear(chans[-1] * (side * side + (1 if max_pool else 0)), out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W] -> [B, out_dim]
        maps = self.features(x)
        flat = maps.flatten(1)
        if self.max_pool:
            flat = torch.cat([flat, maps.amax(dim=(2, 3))], dim=1)
        return self.proj(flat)


class MeanHead(nn.Module):
    def __init__(self, frame_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(frame_dim, out_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:  # [B, T, f] -> [B, out]
        return self.proj(frames.mean(dim=1))


class TemporalHead(nn.Module):
    """Transformer over frame tokens. With ``frame_differences`` each token is the frame vector
    and its change since the previous frame (as TSN/TDN's RGB difference): where things go is
    then read off directly, instead of being inferred from position embeddings alone."""

    def __init__(self, frame_dim: int, out_dim: int, width: int = 128, layers: int = 2, heads: int = 4,
                 max_frames: int = 32, frame_differences: bool = False):
        super().__init__()
        self.frame_differences = frame_differences
        self.inp = nn.Linear(frame_dim * (2 if frame_differences else 1), width)
        self.pos = nn.Parameter(torch.zeros(max_frames, width))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.1,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(width, out_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if self.frame_differences:
            change = torch.cat([torch.zeros_like(frames[:, :1]), frames[:, 1:] - frames[:, :-1]], dim=1)
            frames = torch.cat([frames, change], dim=-1)
        x = self.inp(frames)
        h = self.encoder(x + self.pos[: x.shape[1]])
        return self.out((h + x).mean(dim=1))  # residual to the mean, as CLIP4Clip's seqTransf


class VideoTower(nn.Module):
    """Frame encoder (optional: absent when frames arrive as cached vectors) + head."""

    def __init__(self, cfg: TowerConfig):
        super().__init__()
        self.cfg = cfg
        self.frame_encoder = (FrameCNN(cfg.cnn_width, cfg.frame_dim, cfg.image_size, cfg.frame_max_pool)
                              if cfg.frame_encoder == TINY_CNN else None)
        if cfg.head == "mean":
            self.head = MeanHead(cfg.frame_dim, cfg.text_dim)
        elif cfg.head == "temporal":
            self.head = TemporalHead(cfg.frame_dim, cfg.text_dim, cfg.head_width, cfg.head_layers, cfg.head_heads,
                                     frame_differences=cfg.frame_differences)
        else:
            raise EncoderSpecError(f"unknown head {cfg.head!r}; choose mean or temporal")

    def encode_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] normalised pixels -> [B, T, frame_dim]."""
        b, t = pixels.shape[:2]
        return self.frame_encoder(pixels.flatten(0, 1)).view(b, t, -1)

    def pool(self, frames: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(frames), dim=-1)


def frames_to_pixels(clips: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """uint8 clips [T, H, W, 3] -> float [B, T, 3, size, size], whole frame resized (no crop)."""
    out = []
    for clip in clips:
        x = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2).float()
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(x)
    return normalise_pixels(torch.stack(out))


def normalise_pixels(x: torch.Tensor) -> torch.Tensor:
    """0..255 float or uint8 -> the tower's input range."""
    return (x.float() / 255.0 - FRAME_MEAN) / FRAME_STD


def save_tower(model: VideoTower, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model.cfg.save(folder)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))


def load_tower(folder: Path, device: str = "cpu") -> VideoTower:
    from safetensors.torch import load_file

    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise EncoderSpecError(f"{folder}: not a trained v2p model (needs config.json and model.safetensors)")
    model = VideoTower(TowerConfig.load(folder))
    missing, unexpected = model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
    if missing or unexpected:
        raise EncoderSpecError(f"{folder}: weights do not match the config (missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]})")
    return model.to(device).eval()
