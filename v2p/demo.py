"""``v2p demo``: the whole path on the embedded default, offline, in a few minutes on 2 cores.

1. a bank shard: ``n`` prompts, each rendered by one generator (``ms``);
2. a query shard: the *same* prompts (same seed) rendered by another generator (``t2vz``),
   for an evenly spaced sample only, so no query video is in the index;
3. prompt + video indexes of the bank with ``v2p-tiny``, leaving the last 10% of prompts out
   of the bank (the "suggest a prompt" case);
4. three held-out clips queried, each shown with its true prompt;
5. the evaluation summary over all query videos.

Everything lands under ``out`` (``demo/`` by default): ``demo/index`` is ready for
``v2p query your_clip.mp4`` afterwards.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from v2p.data.shard import open_shard
from v2p.data.synth.writer import write_synthetic_shard
from v2p.eval.runner import EvalReport, evaluate, load_queries
from v2p.index.build import BuildConfig, build_index
from v2p.retrieval.search import QueryResult, Retriever

BANK_GENERATOR, QUERY_GENERATOR = "ms", "t2vz"


@dataclass
class DemoResult:
    index: Path
    clips: list[Path]
    truths: list[str]
    in_bank: list[bool]
    answers: list[QueryResult]
    report: EvalReport


def run_demo(out: str | Path = "demo", *, n: int = 2000, seed: int = 2024, queries: int = 300,
             encoder: str = "v2p-tiny", on_progress: Callable[[str, int, int | None], None] | None = None
             ) -> DemoResult:
    progress = on_progress or (lambda stage, advance, total: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    progress("rendering bank videos", 0, n)
    write_synthetic_shard(out / "bank", n, seed=seed, generators=[BANK_GENERATOR], overwrite=True,
                          on_progress=lambda k: progress("rendering bank videos", k, None))
    progress("rendering query videos", 0, queries)
    write_synthetic_shard(out / "queries", n, seed=seed, generators=[QUERY_GENERATOR], overwrite=True,
                          video_sample=queries, on_progress=lambda k: progress("rendering query videos", k, None))
    bank_size = int(n * 0.9)
    build_index(open_shard(out / "bank"), out / "index",
                BuildConfig(encoder=encoder, videos=True, limit=bank_size), overwrite=True, on_progress=progress)
    retriever = Retriever(out / "index")
    bank_ids = set(retriever.index.prompts_table.column("prompt_id").to_pylist())
    items = load_queries(open_shard(out / "queries"), generator=QUERY_GENERATOR)
    inside = [q for q in items if q.prompt_id in bank_ids]
    outside = [q for q in items if q.prompt_id not in bank_ids]
    shown = inside[:2] + outside[:1]
    clips_dir = out / "clips"
    shutil.rmtree(clips_dir, ignore_errors=True)
    clips_dir.mkdir()
    clips = []
    for q in shown:
        path = clips_dir / q.name
        path.write_bytes(q.data)
        clips.append(path)
    answers = retriever.query_videos(clips, top=5)
    report = evaluate(out / "index", open_shard(out / "queries"), generator=QUERY_GENERATOR, retriever=retriever,
                      on_progress=progress)
    return DemoResult(out / "index", clips, [q.prompt for q in shown], [q in inside for q in shown], answers, report)
