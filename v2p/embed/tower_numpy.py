"""A trained video tower's forward pass in numpy: clip queries on the CPU without importing torch.

Importing torch takes 2.4 s on these 2 cores, most of a cold ``v2p query clip.mp4`` with
``v2p-tiny``, whose forward pass is small (a 4-layer CNN on 64x64 frames, 11M multiply-adds a
frame, and a 2-layer transformer over 8 frame tokens). So on a CPU the tower runs here, from the
same ``model.safetensors`` (read by safetensors' numpy loader), and torch is only imported to
train a tower or to run one on a GPU (:mod:`v2p.embed.tower`). The two agree to float32
rounding (``tests/test_tower_numpy.py`` checks every layer kind against torch), including the
frame resize: torch's antialiased bilinear interpolation, reimplemented as two weight matrices.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from v2p.embed.tower_config import FRAME_MEAN, FRAME_STD, TowerConfig

BN_EPS = LN_EPS = 1e-5


# -- frames -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _aa_weights(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] weights of torch's ``interpolate(mode="bilinear", antialias=True,
    align_corners=False)`` along one axis: a triangle filter widened by the downscale factor."""
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    weights = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        centre = scale * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), in_size)
        j = np.arange(lo, hi)
        w = np.clip(1.0 - np.abs((j - centre + 0.5) * invscale), 0.0, None)
        total = w.sum()
        weights[i, lo:hi] = w / total if total > 0 else 0.0
    return weights.astype(np.float32)


def frames_to_pixels(clips: Sequence[np.ndarray], size: int) -> np.ndarray:
    """uint8 clips [T, H, W, 3] -> float32 [B, T, 3, size, size] in the tower's input range."""
    out = []
    for clip in clips:
        x = np.asarray(clip, np.float32).transpose(0, 3, 1, 2)  # [T, 3, H, W]
        h, w = x.shape[-2:]
        if (h, w) != (size, size):
            x = np.einsum("oh,tchw,pw->tcop", _aa_weights(h, size), x, _aa_weights(w, size), optimize=True)
        out.append(x)
    return ((np.stack(out) / np.float32(255.0) - np.float32(FRAME_MEAN)) / np.float32(FRAME_STD)).astype(np.float32)


# -- layers -------------------------------------------------------------------------------------
def _erf(x: np.ndarray) -> np.ndarray:
    """erf by Abramowitz & Stegun 7.1.26 (max error 1.5e-7): within float32 rounding of a GELU,
    and no scipy import on the cold path."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as torch's default."""
    return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))).astype(np.float32)


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * weight + bias


def conv3x3_s2(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """3x3 convolution, stride 2, padding 1, no bias, channels last: [N, H, W, C] x [O, C, 3, 3]
    -> [N, H/2, W/2, O], as one matrix product over the nine shifted views (im2col). Callers keep
    N small (a clip's frames): the column matrix then stays in cache, and this runs as fast as
    torch's convolution on these 2 cores instead of 25x slower on a 512-frame batch."""
    n, h, w, c = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    oh, ow = (h + 1) // 2, (w + 1) // 2
    cols = np.concatenate([p[:, i:i + 2 * oh:2, j:j + 2 * ow:2, :] for i in range(3) for j in range(3)], axis=-1)
    return (cols.reshape(-1, 9 * c) @ weight.transpose(2, 3, 1, 0).reshape(9 * c, -1)).reshape(n, oh, ow, -1)


def _attention(x: np.ndarray, w: dict, prefix: str, heads: int) -> np.ndarray:
    """torch.nn.MultiheadAttention (batch_first, self-attention, no mask) on [B, T, D]."""
    b, t, d = x.shape
    qkv = x @ w[prefix + "in_proj_weight"].T + w[prefix + "in_proj_bias"]
    q, k, v = (part.reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3) for part in np.split(qkv, 3, axis=-1))
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // heads)
    logits = np.exp(logits - logits.max(-1, keepdims=True))
    attn = logits / logits.sum(-1, keepdims=True)
    out = (attn @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
    return out @ w[prefix + "out_proj.weight"].T + w[prefix + "out_proj.bias"]


# -- the tower ----------------------------------------------------------------------------------
class NumpyTower:
    """The forward pass of :class:`v2p.embed.tower.VideoTower` (eval mode) on numpy arrays."""

    def __init__(self, cfg: TowerConfig, weights: dict[str, np.ndarray]):
        from v2p.embed.tower_config import TINY_CNN
        from v2p.errors import EncoderSpecError

        self.cfg = cfg
        self.w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        try:  # shapes the config implies, then a dry run: a mismatch fails here, not at a query
            expected = {"head.out.weight": (cfg.text_dim, cfg.head_width),
                        "head.inp.weight": (cfg.head_width, cfg.frame_dim * (2 if cfg.frame_differences else 1))}
            if cfg.head == "mean":
                expected = {"head.proj.weight": (cfg.text_dim, cfg.frame_dim)}
            for key, shape in expected.items():
                if self.w[key].shape != shape:
                    raise ValueError(f"{key} is {self.w[key].shape}, the config implies {shape}")
            if cfg.head == "temporal" and any(k.startswith(f"head.encoder.layers.{cfg.head_layers}.") for k in self.w):
                raise ValueError(f"more transformer layers than head_layers={cfg.head_layers}")
            if cfg.frame_encoder == TINY_CNN:
                self.encode_frames(np.zeros((1, 1, 3, cfg.image_size, cfg.image_size), np.float32))
            self.pool(np.zeros((1, cfg.num_frames, cfg.frame_dim), np.float32))
        except (KeyError, ValueError) as exc:
            raise EncoderSpecError(f"tower weights do not match its config ({type(exc).__name__}: {exc})") from None

    @classmethod
    def load(cls, folder: Path) -> NumpyTower:
        from safetensors.numpy import load_file

        return cls(TowerConfig.load(folder), load_file(str(folder / "model.safetensors")))

    def encode_frames(self, pixels: np.ndarray, frames_per_step: int = 16) -> np.ndarray:
        """[B, T, 3, H, W] normalised pixels -> [B, T, frame_dim], ``frames_per_step`` frames at a
        time (see :func:`conv3x3_s2`)."""
        b, t = pixels.shape[:2]
        flat = pixels.reshape(b * t, *pixels.shape[2:])
        w = self.w
        out = []
        for start in range(0, len(flat), frames_per_step):
            x = flat[start:start + frames_per_step].transpose(0, 2, 3, 1)  # channels last
            for conv, bn in ((0, 1), (3, 4), (6, 7), (9, 10)):
                x = conv3x3_s2(x, w[f"frame_encoder.features.{conv}.weight"])
                g = f"frame_encoder.features.{bn}."
                scale = w[g + "weight"] / np.sqrt(w[g + "running_var"] + BN_EPS)
                x = gelu(x * scale + (w[g + "bias"] - w[g + "running_mean"] * scale))
            maps = x
            x = x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # torch flattens channels first
            if self.cfg.frame_max_pool:
                x = np.concatenate([x, maps.max(axis=(1, 2))], axis=1)
            out.append(x @ w["frame_encoder.proj.weight"].T + w["frame_encoder.proj.bias"])
        return np.concatenate(out).reshape(b, t, -1).astype(np.float32)

    def pool(self, frames: np.ndarray) -> np.ndarray:
        """[B, T, frame_dim] -> unit vectors [B, text_dim]."""
        w = self.w
        frames = np.asarray(frames, np.float32)
        if self.cfg.head == "mean":
            y = frames.mean(axis=1) @ w["head.proj.weight"].T + w["head.proj.bias"]
        else:
            if self.cfg.frame_differences:
                change = np.concatenate([np.zeros_like(frames[:, :1]), frames[:, 1:] - frames[:, :-1]], axis=1)
                frames = np.concatenate([frames, change], axis=-1)
            x = frames @ w["head.inp.weight"].T + w["head.inp.bias"]
            h = x + w["head.pos"][: x.shape[1]]
            for i in range(self.cfg.head_layers):
                p = f"head.encoder.layers.{i}."
                h = h + _attention(layer_norm(h, w[p + "norm1.weight"], w[p + "norm1.bias"]), w, p + "self_attn.",
                                   self.cfg.head_heads)
                z = layer_norm(h, w[p + "norm2.weight"], w[p + "norm2.bias"])
                h = h + gelu(z @ w[p + "linear1.weight"].T + w[p + "linear1.bias"]) @ w[p + "linear2.weight"].T \
                    + w[p + "linear2.bias"]
            y = (h + x).mean(axis=1) @ w["head.out.weight"].T + w["head.out.bias"]
        return (y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-12)).astype(np.float32)
