"""Videos of a shard: loose files in a folder, or members of ``.tar`` archives.

VidProM ships videos as tars (``pika_videos_1.tar`` ...) whose members are named
``<generator>-<uuid>.mp4``. Archives are read member by member, never extracted. A member's
data that runs past the end of the file (a truncated download) is reported as such rather
than yielding a half video.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from v2p.data.bad_records import BadRecords

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif", ".m4v")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class VideoRef:
    """Where one video lives: a file, or a member of an archive."""

    container: str  # the tar path, or the folder for loose files
    member: str  # member name inside the tar, or path relative to the folder
    generator: str
    uuid: str

    @property
    def in_archive(self) -> bool:
        return self.container.endswith(".tar")

    def __str__(self) -> str:
        return f"{self.container}:{self.member}" if self.in_archive else str(Path(self.container) / self.member)


def parse_member_name(name: str) -> tuple[str, str] | None:
    """``pika-<uuid>.mp4`` -> ("pika", "<uuid>"); None when the name has no ``<prefix>-<id>`` form.

    A standard 36-character uuid suffix is matched first, so prefixes may contain hyphens
    (``my-model-<uuid>.mp4``); other ids split at the first hyphen.
    """
    stem = PurePosixPath(name).name
    for suffix in VIDEO_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    else:
        return None
    m = _UUID_RE.search(stem)
    if m and m.start() >= 2 and stem[m.start() - 1] == "-":
        return stem[: m.start() - 1], m.group(0).lower()
    generator, sep, ident = stem.partition("-")
    if not sep or not generator or not ident:
        return None
    return generator, ident


def is_video_name(name: str) -> bool:
    return name.lower().endswith(VIDEO_SUFFIXES)


@dataclass(frozen=True)
class ByteRange:
    """Where a video's encoded bytes lie: ``size`` bytes at ``offset`` of a file (a loose clip, or
    a member inside an uncompressed tar). Calling it reads them. It is plain data, so it travels
    to other processes or machines (the Ray build), which read the bytes themselves from a path
    they share (local copy, NFS, a mounted bucket) instead of receiving them from the driver."""

    path: str
    offset: int
    size: int

    def __call__(self) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(self.size)
        if len(data) != self.size:
            raise OSError(f"{self.path}: {self.size} bytes expected at offset {self.offset}, {len(data)} read")
        return data


@dataclass
class VideoSource:
    """One archive or folder of videos. Iterate :meth:`refs` to list, :meth:`payloads` to read."""

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def is_archive(self) -> bool:
        return self.path.is_file() and self.path.name.endswith(".tar")

    def _ref(self, member: str, bad: BadRecords) -> VideoRef | None:
        parsed = parse_member_name(member)
        if parsed is None:
            bad.add(str(self.path), f"member {member}", "bad_member_name",
                    "video name is not <generator>-<uuid>.<ext>")
            return None
        return VideoRef(str(self.path), member, parsed[0], parsed[1])

    def _folder_files(self) -> Iterator[str]:
        for root, dirs, files in os.walk(self.path):
            dirs.sort()
            for f in sorted(files):
                if is_video_name(f):
                    yield str(Path(root, f).relative_to(self.path))

    def _archive_members(self, tf: tarfile.TarFile, bad: BadRecords) -> Iterator[tarfile.TarInfo]:
        size = self.path.stat().st_size
        try:
            for info in tf:
                if not info.isfile() or not is_video_name(info.name):
                    continue
                if info.offset_data + info.size > size:
                    bad.add(str(self.path), f"member {info.name}", "truncated_archive",
                            f"archive is truncated: member needs {info.size} bytes, "
                            f"{max(0, size - info.offset_data)} present")
                    return
                yield info
        except tarfile.TarError as exc:
            bad.add(str(self.path), "after the last complete member", "truncated_archive",
                    f"archive is truncated or corrupt ({exc})")

    def _open_archive(self, bad: BadRecords) -> tarfile.TarFile | None:
        try:
            return tarfile.open(self.path, mode="r:")
        except (tarfile.TarError, OSError) as exc:
            bad.add(str(self.path), "header", "unreadable_archive", f"not a readable tar archive ({exc})")
            return None

    def entries(self, bad: BadRecords, seen: set[tuple[str, str]] | None = None
                ) -> Iterator[tuple[VideoRef, ByteRange]]:
        """Each well-named video with the byte range that holds it (call it to read the bytes).

        A second video of the same generator and uuid (a member repeated in an archive, or the
        same clip in two sources sharing ``seen``) is a bad record, never indexed twice."""
        seen = set() if seen is None else seen

        def first_time(ref: VideoRef) -> bool:
            key = (ref.generator, ref.uuid)
            if key in seen:
                bad.add(str(self.path), f"member {ref.member}", "duplicate_video",
                        f"a second {ref.generator} video for uuid {ref.uuid}; the first one is kept")
                return False
            seen.add(key)
            return True

        if not self.is_archive:
            for rel in self._folder_files():
                ref = self._ref(rel, bad)
                if ref is not None and first_time(ref):
                    path = (self.path / rel).resolve()
                    yield ref, ByteRange(str(path), 0, path.stat().st_size)
            return
        tf = self._open_archive(bad)
        if tf is None:
            return
        archive = str(self.path.resolve())
        with tf:
            for info in self._archive_members(tf, bad):
                ref = self._ref(info.name, bad)
                if ref is None or not first_time(ref):
                    continue
                if info.issparse():  # its data is not one contiguous range; clips are never stored so
                    bad.add(str(self.path), f"member {info.name}", "sparse_member",
                            "a sparse tar member cannot be read as one byte range; re-create the archive")
                    continue
                yield ref, ByteRange(archive, info.offset_data, info.size)

    def refs(self, bad: BadRecords) -> Iterator[VideoRef]:
        """List videos without reading their bytes."""
        for ref, _ in self.entries(bad):
            yield ref

    def payloads(self, bad: BadRecords) -> Iterator[tuple[VideoRef, bytes]]:
        """Read videos one at a time: (where it came from, its encoded bytes)."""
        for ref, read in self.entries(bad):
            yield ref, read()


def discover_video_sources(folder: Path) -> list[VideoSource]:
    """Every ``.tar`` below ``folder`` plus the folder itself if it holds loose videos."""
    folder = Path(folder)
    tars = sorted(p for p in folder.rglob("*.tar") if p.is_file())
    sources = [VideoSource(p) for p in tars]
    if any(is_video_name(p.name) for p in folder.rglob("*") if p.is_file()):
        sources.append(VideoSource(folder))
    return sources
