"""Output folders: one rule for every command that writes one (synth, index build, train)."""

from __future__ import annotations

from pathlib import Path

from v2p.errors import V2PError


def refuse_existing(path: str | Path, overwrite: bool) -> Path:
    """``path`` as a Path; a non-empty existing folder (or a file) is refused unless ``overwrite``."""
    path = Path(path)
    if overwrite or not path.exists():
        return path
    if path.is_dir() and not any(path.iterdir()):
        return path
    raise V2PError(f"{path} already exists and is not empty; pass --overwrite to replace it")
