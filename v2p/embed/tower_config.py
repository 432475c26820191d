"""What a trained video tower is, without torch: its config, where models live, and how a
name resolves to a model folder (read by the torch modules in :mod:`v2p.embed.tower` and by
the numpy forward pass in :mod:`v2p.embed.tower_numpy`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from v2p.errors import EncoderSpecError

TINY_CNN = "tiny-cnn"
PACKAGED_MODELS = Path(__file__).resolve().parent.parent / "models"
FRAME_MEAN, FRAME_STD = 0.45, 0.25


@dataclass
class TowerConfig:
    text_encoder: str = "minilm"
    text_dim: int = 384
    frame_encoder: str = TINY_CNN  # or a CLIP spec (frozen; frames come from an index cache)
    frame_dim: int = 128
    image_size: int = 64
    cnn_width: int = 32
    head: str = "temporal"  # or "mean"
    head_width: int = 128
    head_layers: int = 2
    head_heads: int = 4
    num_frames: int = 8
    frame_differences: bool = True  # temporal head tokens carry frame-to-frame change (see TemporalHead)
    frame_max_pool: bool = False  # tiny-cnn frame vectors also see each channel's max over the map (see FrameCNN)

    def save(self, folder: Path) -> None:
        (folder / "config.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: Path) -> TowerConfig:
        values = json.loads((folder / "config.json").read_text())
        values.setdefault("frame_differences", False)  # towers saved before the options existed
        values.setdefault("frame_max_pool", False)
        return cls(**values)


def tower_folder(name: str) -> tuple[Path, str]:
    """(folder, canonical spec) of ``v2p-tiny`` (shipped in the package) or a ``v2p train`` folder."""
    if name == "v2p-tiny":
        folder = PACKAGED_MODELS / "v2p-tiny"
        if not (folder / "model.safetensors").is_file():
            raise EncoderSpecError(f"the packaged v2p-tiny model is missing at {folder}; reinstall v2p")
        return folder, "v2p-tiny"
    folder = Path(name).expanduser().resolve()
    if not folder.is_dir():
        raise EncoderSpecError(f"v2p:{name}: no such model folder (train one with 'v2p train')")
    return folder, f"v2p:{folder}"
