"""The index directory: what ``v2p index build`` writes and every query reads.

::

    manifest.json      encoder spec, dim, metric, counts, factory strings, source hashes, version
    prompts.faiss      one vector per unique prompt (FAISS id = row of prompts.parquet)
    prompts.parquet    row -> uuid, prompt, prompt_id, carried columns
    videos.faiss       (with --videos) one pooled vector per video
    videos.parquet     row -> uuid, generator, prompt_id, prompt_row, member
    video_frames.npy   (with --videos) float16 [n_videos, frames, frame_dim] per-frame vectors

Opening checks that the files agree with the manifest (sizes, counts, dims), so a mismatched
or half-copied index is refused with a message instead of returning wrong rows. The manifest
also records every file's SHA-256: :func:`verify_index` (``v2p index verify``) re-reads them
all, which catches a flipped bit that a size check cannot.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from v2p.errors import IndexMismatchError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
PROMPTS_INDEX, PROMPTS_TABLE = "prompts.faiss", "prompts.parquet"
VIDEOS_INDEX, VIDEOS_TABLE, VIDEO_FRAMES = "videos.faiss", "videos.parquet", "video_frames.npy"


def read_manifest(path: Path) -> dict:
    """The parsed manifest of an index folder; a clear error when it is missing or unreadable."""
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise IndexMismatchError(f"{path}: not a v2p index (no {MANIFEST}); build one with 'v2p index build'")
    try:
        return json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise IndexMismatchError(f"{mpath}: unreadable manifest ({exc})") from None


@dataclass
class IndexDir:
    path: Path
    manifest: dict

    @classmethod
    def open(cls, path: str | Path) -> IndexDir:
        path = Path(path)
        if not path.exists():
            stranded = sorted(path.parent.glob(path.name + ".old-*")) if path.parent.is_dir() else []
            if stranded:
                raise IndexMismatchError(f"{path}: no index here, but {stranded[-1]} holds the previous one (a build "
                                         f"crashed while replacing it): rename it back to {path.name}")
        manifest = read_manifest(path)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(f"{path}: index format {manifest.get('format_version')} is not "
                                     f"{FORMAT_VERSION}; rebuild it with this v2p version")
        needed = [PROMPTS_INDEX, PROMPTS_TABLE]
        if manifest.get("videos"):
            needed += [VIDEOS_INDEX, VIDEOS_TABLE, VIDEO_FRAMES]
        missing = [n for n in needed if not (path / n).is_file()]
        if missing:
            raise IndexMismatchError(f"{path}: incomplete index, missing {', '.join(missing)}")
        for name, record in manifest.get("files", {}).items():  # cheap: one stat per file
            size = (path / name).stat().st_size if (path / name).is_file() else None
            if size != record["size"]:
                raise IndexMismatchError(damaged_message(path, name, f"{size} bytes, the manifest says {record['size']}"
                                                         if size is not None else "missing"))
        return cls(path, manifest)

    # -- facts -----------------------------------------------------------------------------
    @property
    def encoder_spec(self) -> str:
        return self.manifest["encoder"]

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def has_videos(self) -> bool:
        return bool(self.manifest.get("videos"))

    def check_encoder(self, spec: str | None) -> str:
        """The manifest's spec; a different requested spec is refused (vectors would not compare)."""
        from v2p.embed.factory import canonical_spec

        if spec and canonical_spec(spec) != canonical_spec(self.encoder_spec):
            raise IndexMismatchError(
                f"{self.path} was built with encoder {self.encoder_spec!r}; querying it with {spec!r} would compare "
                "vectors from different spaces. Drop --encoder, or build an index with that encoder.")
        return self.encoder_spec

    def check_fingerprint(self, fingerprint: str | None) -> None:
        """Refuse an encoder whose weights differ from the build's (same spec, other version)."""
        built = self.manifest.get("encoder_fingerprint")
        if built and fingerprint and built != fingerprint:
            raise IndexMismatchError(
                f"{self.path} was built with other weights of {self.encoder_spec!r} (fingerprint {built}, "
                f"loaded {fingerprint}); rebuild the index with 'v2p index build'")

    def search_kwargs(self, name: str) -> dict:
        """Keyword arguments for :func:`v2p.index.faiss_ops.search` on the ``prompts`` or ``videos``
        index: the parameters its build tuned (nprobe / efSearch), or FAISS-level defaults."""
        from v2p.index.faiss_ops import search_kwargs

        return search_kwargs((self.manifest.get(name) or {}).get("search") or {})

    # -- lazy loads (each file read once per IndexDir) --------------------------------------
    @functools.cached_property
    def prompts_index(self):
        return self._load_index(PROMPTS_INDEX, self.manifest["prompts"]["count"])

    @functools.cached_property
    def prompts_table(self) -> pa.Table:
        return self._load_table(PROMPTS_TABLE, self.manifest["prompts"]["count"])

    @property
    def video_dim(self) -> int:
        """Size of the video index's vectors (the encoder's video keys; the text dim before they existed)."""
        return int(self.manifest["videos"].get("dim", self.dim))

    @functools.cached_property
    def videos_index(self):
        return self._load_index(VIDEOS_INDEX, self.manifest["videos"]["count"], self.video_dim)

    @functools.cached_property
    def videos_table(self) -> pa.Table:
        return self._load_table(VIDEOS_TABLE, self.manifest["videos"]["count"])

    @functools.cached_property
    def video_frames(self) -> np.ndarray:
        arr = np.load(self.path / VIDEO_FRAMES, mmap_mode="r")
        v = self.manifest["videos"]
        if arr.shape != (v["count"], v["frames_per_video"], v["frame_dim"]):
            raise IndexMismatchError(f"{self.path / VIDEO_FRAMES}: shape {arr.shape} does not match the manifest")
        return arr

    def _load_index(self, name: str, count: int, dim: int | None = None):
        from v2p.index.faiss_ops import read_index

        dim = dim or self.dim
        try:
            index = read_index(str(self.path / name), mmap=True)  # queries touch a few pages, not the whole file
        except RuntimeError as exc:  # FAISS reports a short or corrupt file as a RuntimeError
            short = re.search(r"(\d+) != (\d+)", str(exc))
            reason = (f"FAISS read {short.group(1)} of {short.group(2)} bytes" if short
                      else str(exc).strip().splitlines()[0][:120])
            raise IndexMismatchError(f"{self.path / name}: damaged or truncated index file ({reason}); rebuild it "
                                     "with 'v2p index build' (or --resume if its .partial folder remains)") from None
        if index.ntotal != count or index.d != dim:
            raise IndexMismatchError(f"{self.path / name}: holds {index.ntotal} vectors of dim {index.d}, the manifest "
                                     f"says {count} of dim {dim}; the index folder is mixed up, rebuild it")
        return index

    def _load_table(self, name: str, count: int) -> pa.Table:
        table = pq.read_table(self.path / name)
        if table.num_rows != count:
            raise IndexMismatchError(f"{self.path / name}: {table.num_rows} rows, the manifest says {count}; rebuild")
        return table

    @functools.cached_property
    def prompt_row_by_id(self) -> dict[str, int]:
        return {pid: i for i, pid in enumerate(self.prompts_table.column("prompt_id").to_pylist())}


# -- integrity ---------------------------------------------------------------------------------
def damaged_message(path: Path, name: str, what: str) -> str:
    partial = Path(str(path) + ".partial")
    fix = (f"resume the build with 'v2p index build ... --out {path} --resume' ({partial.name} remains)"
           if partial.is_dir() else f"rebuild it with 'v2p index build ... --out {path} --overwrite'")
    return f"{path / name}: damaged index file ({what}); {fix}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_records(folder: Path) -> dict[str, dict]:
    """``{name: {size, sha256}}`` of every file of an index folder (the manifest excluded)."""
    return {p.name: {"size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}


def write_manifest(folder: Path, manifest: dict) -> None:
    """Write the manifest through a temporary file and a rename, so a crash never leaves half a manifest."""
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, folder / MANIFEST)


@dataclass
class FileCheck:
    name: str
    size: int | None
    expected_size: int
    ok: bool
    problem: str | None = None


def verify_index(path: str | Path, on_file: Callable[[str], None] | None = None) -> list[FileCheck]:
    """Re-read every file the manifest lists and compare size and SHA-256 (``v2p index verify``).

    Returns one :class:`FileCheck` per file; an index built before checksums were recorded
    raises, since there is nothing to compare against."""
    path = Path(path)
    manifest = read_manifest(path)  # not IndexDir.open: its size check would stop at the first bad file
    files = manifest.get("files")
    if not files:
        raise IndexMismatchError(f"{path}: built before v2p recorded checksums; rebuild it to be able to verify it")
    checks = []
    for name, record in files.items():
        if on_file:
            on_file(name)
        f = path / name
        if not f.is_file():
            checks.append(FileCheck(name, None, record["size"], False, "missing"))
            continue
        size = f.stat().st_size
        if size != record["size"]:
            checks.append(FileCheck(name, size, record["size"], False, f"{size} bytes, expected {record['size']}"))
        elif sha256_file(f) != record["sha256"]:
            checks.append(FileCheck(name, size, record["size"], False, "checksum differs (same size: altered bytes)"))
        else:
            checks.append(FileCheck(name, size, record["size"], True))
    return checks
