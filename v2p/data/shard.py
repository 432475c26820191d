"""A shard = one prompts file + the video archives or folders that go with it.

``open_shard`` accepts either the prompts file itself (videos only if named) or a folder
holding one prompts file and any number of ``.tar`` archives / loose videos, which is how
VidProM is laid out (``VidProM_unique.csv`` beside ``pika_videos/pika_videos_1.tar`` ...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from v2p.data.bad_records import BadRecords
from v2p.data.prompts import is_prompts_file, read_prompts
from v2p.data.videos import ByteRange, VideoRef, VideoSource, discover_video_sources
from v2p.errors import BadInputError

PREFERRED_PROMPT_FILES = ("prompts.csv", "prompts.parquet", "VidProM_unique.csv")


@dataclass
class Shard:
    prompts_path: Path
    video_sources: list[VideoSource] = field(default_factory=list)

    def video_refs(self, bad: BadRecords) -> Iterator[VideoRef]:
        for ref, _ in self.video_entries(bad):
            yield ref

    def video_entries(self, bad: BadRecords, generators: Iterable[str] | None = None
                      ) -> Iterator[tuple[VideoRef, ByteRange]]:
        """Each video with the byte range that holds it; calling the range reads the bytes, so a
        caller that skips a video (a finished chunk on resume) never reads it."""
        wanted = set(generators) if generators else None
        seen: set[tuple[str, str]] = set()  # one video per (generator, uuid) across all sources
        for source in self.video_sources:
            for ref, read in source.entries(bad, seen):
                if wanted is None or ref.generator in wanted:
                    yield ref, read

    def video_payloads(self, bad: BadRecords, generators: Iterable[str] | None = None
                       ) -> Iterator[tuple[VideoRef, bytes]]:
        for ref, read in self.video_entries(bad, generators):
            yield ref, read()


def _find_prompts_file(folder: Path) -> Path:
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and is_prompts_file(p))
    if len(candidates) == 1:
        return candidates[0]
    for name in PREFERRED_PROMPT_FILES:
        if (folder / name).is_file():
            return folder / name
    if not candidates:
        raise BadInputError(str(folder), "no prompts file (.csv, .csv.gz, .parquet) in this folder")
    names = ", ".join(p.name for p in candidates)
    raise BadInputError(str(folder), f"several prompts files ({names}); pass the one to use")


def open_shard(path: str | Path, videos: Iterable[str | Path] | None = None) -> Shard:
    """Locate a shard's prompts file and video sources. ``videos`` overrides discovery."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(str(path), "no such file or folder")
    if path.is_dir():
        prompts = _find_prompts_file(path)
        sources = discover_video_sources(path)
    else:
        prompts = path
        sources = []
    if videos is not None:
        sources = []
        for v in videos:
            v = Path(v)
            if not v.exists():
                raise BadInputError(str(v), "no such video archive or folder")
            sources.extend(discover_video_sources(v) if v.is_dir() else [VideoSource(v)])
    return Shard(prompts, sources)


@dataclass
class ShardSummary:
    prompts_path: str
    video_sources: list[str]
    prompts: dict
    videos_per_generator: dict[str, int]
    prompts_without_videos: int | None
    bad: dict

    def as_dict(self) -> dict:
        return {
            "prompts_path": self.prompts_path,
            "video_sources": self.video_sources,
            "prompts": self.prompts,
            "videos": sum(self.videos_per_generator.values()),
            "videos_per_generator": self.videos_per_generator,
            "prompts_without_videos": self.prompts_without_videos,
            "bad": self.bad,
        }


def inspect_shard(shard: Shard, *, strip_flags: bool = False, examples_per_reason: int = 5) -> ShardSummary:
    """Read the whole shard once and count everything, bad records included (never raises on them)."""
    bad = BadRecords(skip_bad=True, examples_per_reason=examples_per_reason)
    reader = read_prompts(shard.prompts_path, strip_flags=strip_flags, dedup=False, bad=bad)
    uuids: set[str] = set()
    for batch in reader:
        uuids.update(batch.column("uuid").to_pylist())
    per_generator: Counter[str] = Counter()
    with_video: set[str] = set()
    for ref in shard.video_refs(bad):
        if ref.uuid not in uuids:
            bad.add(ref.container, f"member {ref.member}", "unknown_uuid",
                    f"uuid {ref.uuid} is not in {shard.prompts_path.name}")
            continue
        per_generator[ref.generator] += 1
        with_video.add(ref.uuid)
    without = len(uuids - with_video) if shard.video_sources else None
    return ShardSummary(
        prompts_path=str(shard.prompts_path),
        video_sources=[str(s.path) for s in shard.video_sources],
        prompts=reader.stats.as_dict(),
        videos_per_generator=dict(sorted(per_generator.items())),
        prompts_without_videos=without,
        bad=bad.summary(),
    )
