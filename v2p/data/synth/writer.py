"""Write a synthetic shard in VidProM's exact layout.

``DIR/prompts.csv`` with VidProM_unique.csv's columns plus ``attributes`` (JSON), and one
``DIR/<generator>_videos_1.tar`` per generator whose members are ``<generator>-<uuid>.mp4``.
Everything is a function of the seed: prompt i and its video by generator g draw from
their own seeded streams, so a shard is identical whatever the worker count, and choosing
fewer generators leaves the other videos unchanged.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import shutil
import tarfile
import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from v2p.data.prompts import write_prompts_csv
from v2p.data.synth.encode import encode_video
from v2p.data.synth.grammar import sample_attributes, write_prompt
from v2p.data.synth.render import DEFAULT_GENERATORS, GENERATORS, render_frames
from v2p._paths import refuse_existing
from v2p.errors import V2PError

VIDPROM_COLUMNS = ["uuid", "prompt", "time", "toxicity", "obscene", "identity_attack", "insult", "threat",
                   "sexual_explicit"]
SYNTH_COLUMNS = VIDPROM_COLUMNS + ["attributes"]
_GENERATOR_ORDER = list(GENERATORS)  # stable stream index per generator


@dataclass
class SynthPrompt:
    index: int
    uuid: str
    prompt: str
    attributes: dict
    row: dict = field(repr=False)


def synth_prompts(n: int, seed: int) -> list[SynthPrompt]:
    """The n prompt rows of a shard (no videos): cheap, deterministic in (n, seed)."""
    return synth_prompt_range(0, n, seed)


def synth_prompt_range(start_index: int, stop_index: int, seed: int) -> list[SynthPrompt]:
    """Prompt rows ``start_index`` to ``stop_index - 1`` of the seed's shard: each row draws from
    its own stream, so a corpus of millions is made (and resumed) a block at a time."""
    start = datetime(2023, 7, 1, tzinfo=timezone.utc)
    out = []
    for i in range(start_index, stop_index):
        rng = np.random.default_rng([seed, i, 0])
        attrs = sample_attributes(rng)
        text = write_prompt(attrs, rng)
        uid = str(uuidlib.UUID(bytes=rng.bytes(16), version=4))
        scores = rng.beta(0.5, 30, size=6)
        row = {
            "uuid": uid, "prompt": text,
            "time": (start + timedelta(seconds=int(rng.integers(0, 120 * 86400)))).strftime("%Y-%m-%d %H:%M:%S"),
            **{c: f"{s:.6f}" for c, s in zip(VIDPROM_COLUMNS[3:], scores, strict=True)},
            "attributes": json.dumps(attrs, sort_keys=True),
        }
        out.append(SynthPrompt(i, uid, text, attrs, row))
    return out


def render_video_bytes(seed: int, index: int, generator: str, attributes: dict) -> bytes:
    """mp4 bytes of prompt ``index`` as rendered by ``generator`` (pure function of its inputs)."""
    profile = GENERATORS[generator]
    rng = np.random.default_rng([seed, index, 1, _GENERATOR_ORDER.index(generator)])
    frames = render_frames(attributes, profile, rng)
    return encode_video(frames, profile.fps)


def _render_task(task: tuple[int, int, str, dict]) -> bytes:
    return render_video_bytes(*task)


@dataclass
class SynthResult:
    out: Path
    prompts_path: Path
    archives: dict[str, Path]
    n_prompts: int
    n_videos: int


def _tar_add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def write_synthetic_shard(
    out: str | Path,
    n: int,
    *,
    seed: int = 0,
    generators: Sequence[str] = DEFAULT_GENERATORS,
    workers: int | None = None,
    overwrite: bool = False,
    video_sample: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> SynthResult:
    """Render n prompts x len(generators) videos into ``out``. ``on_progress(k)`` after k more videos.

    ``video_sample=K`` renders videos for only K evenly spaced prompts (all n stay in the CSV):
    a query shard for a bank made with the same seed, at a fraction of the cost.
    """
    if n < 1:
        raise V2PError("--n must be at least 1")
    if video_sample is not None and not 1 <= video_sample <= n:
        raise V2PError(f"--video-sample must be between 1 and --n ({n})")
    unknown = [g for g in generators if g not in GENERATORS]
    if unknown or not generators:
        raise V2PError(f"unknown generator(s) {unknown}; choose from {', '.join(GENERATORS)}")
    out = Path(out)
    refuse_existing(out, overwrite)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    prompts = synth_prompts(n, seed)
    write_prompts_csv([p.row for p in prompts], tmp / "prompts.csv", SYNTH_COLUMNS)
    archives = {g: tmp / f"{g}_videos_1.tar" for g in generators}
    tars = {g: tarfile.open(path, "w", format=tarfile.GNU_FORMAT) for g, path in archives.items()}
    rendered = prompts if video_sample is None else [
        prompts[i] for i in sorted(set(np.linspace(0, n - 1, video_sample).round().astype(int).tolist()))]
    tasks = [(seed, p.index, g, p.attributes) for p in rendered for g in generators]
    workers = workers or os.cpu_count() or 1
    try:
        if workers == 1 or len(tasks) < 48:
            results = map(_render_task, tasks)
            pool = None
        else:
            pool = mp.get_context("spawn").Pool(workers)
            results = pool.imap(_render_task, tasks, chunksize=8)
        for (s, index, g, _), data in zip(tasks, results, strict=True):
            _tar_add(tars[g], f"{g}-{prompts[index].uuid}.mp4", data)
            if on_progress:
                on_progress(1)
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        for tf in tars.values():
            tf.close()
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return SynthResult(out, out / "prompts.csv", {g: out / p.name for g, p in archives.items()}, n, len(tasks))
