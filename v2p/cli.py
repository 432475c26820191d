"""The ``v2p`` command line: thin typer commands over the library's functions.

Only this module prints and sets up logging. Expected failures (:class:`V2PError`) become a
one-line ``error:`` message and exit code 2; nothing here holds logic the API lacks.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from v2p.errors import V2PError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="From a generated video back to its prompt.")
shard_app = typer.Typer(no_args_is_help=True, help="Read and check VidProM-layout shards.")
index_app = typer.Typer(no_args_is_help=True, help="Build and describe prompt/video indexes.")
app.add_typer(shard_app, name="shard")
app.add_typer(index_app, name="index")

out = Console()
err = Console(stderr=True)


def friendly_errors(fn):
    """Turn expected failures into one line on stderr (exit 2) and Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except V2PError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def progress_bar(transient: bool = False) -> Progress:
    """Progress on stderr (stdout stays clean for --json): count, rate, elapsed and ETA."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TaskProgressColumn(show_speed=True),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err, transient=transient,
    )


class StageProgress:
    """Adapts the library's ``(stage, advance, total)`` callbacks to one rich task per stage."""

    def __init__(self, bar: Progress):
        self.bar, self.tasks = bar, {}

    def __call__(self, stage: str, advance: int, total: int | None) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        elif total is not None:
            self.bar.update(self.tasks[stage], total=total)
        if advance:
            self.bar.advance(self.tasks[stage], advance)


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


# --------------------------------------------------------------------------- synth
@app.command()
@friendly_errors
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the shard into.")],
    n: Annotated[int, typer.Option("--n", help="Number of prompts.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same shard.")] = 0,
    generators: Annotated[str, typer.Option(help="Comma-separated generators (pika, vc2, ms, t2vz).")] = "pika,vc2,ms",
    workers: Annotated[int, typer.Option(help="Render processes (0 = all cores).")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out folder.")] = False,
    video_sample: Annotated[int | None, typer.Option(help="Render videos for only K evenly spaced prompts (query shards).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
):
    """Write a synthetic text-to-video shard in VidProM's layout (prompts.csv + one tar per generator)."""
    from v2p.data.synth.writer import write_synthetic_shard

    gens = [g.strip() for g in generators.split(",") if g.strip()]
    with progress_bar() as bar:
        task = bar.add_task("rendering videos", total=(video_sample or n) * len(gens))
        result = write_synthetic_shard(out_dir, n, seed=seed, generators=gens, workers=workers or None,
                                       overwrite=overwrite, video_sample=video_sample,
                                       on_progress=lambda k: bar.advance(task, k))
    summary = {"out": str(result.out), "prompts": str(result.prompts_path), "n_prompts": result.n_prompts,
               "n_videos": result.n_videos, "archives": {g: str(p) for g, p in result.archives.items()}}
    if as_json:
        _print_json(summary)
    else:
        out.print(f"wrote {result.n_prompts} prompts and {result.n_videos} videos to {result.out}")


# --------------------------------------------------------------------------- shard inspect
def _render_summary(summary: dict) -> None:
    p = summary["prompts"]
    table = Table(title=f"shard {summary['prompts_path']}", show_header=False)
    table.add_row("rows", str(p["rows"]))
    table.add_row("valid rows", str(p["valid"]))
    table.add_row("unique prompts", str(p["unique"]))
    table.add_row("video sources", str(len(summary["video_sources"])))
    table.add_row("videos", str(summary["videos"]))
    for g, c in summary["videos_per_generator"].items():
        table.add_row(f"  {g}", str(c))
    pw = summary["prompts_without_videos"]
    table.add_row("prompts without videos", "n/a (no videos)" if pw is None else str(pw))
    table.add_row("bad records", str(summary["bad"]["total"]))
    for reason, c in summary["bad"]["by_reason"].items():
        table.add_row(f"  {reason}", str(c))
    out.print(table)
    for e in summary["bad"]["examples"]:
        out.print(f"  [yellow]{e['reason']}[/]: {e['source']}, {e['location']}: {e['detail']}", highlight=False)


@shard_app.command("inspect")
@friendly_errors
def shard_inspect(
    path: Annotated[Path, typer.Argument(help="Prompts file, or a folder holding it and its archives.")],
    strip_flags: Annotated[bool, typer.Option(help="Ignore generator flags (-ar, -neg ...) when deduplicating.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
):
    """Count rows, unique prompts, videos per generator, prompts without videos and bad records."""
    from v2p.data.shard import inspect_shard, open_shard

    summary = inspect_shard(open_shard(path), strip_flags=strip_flags).as_dict()
    if as_json:
        _print_json(summary)
    else:
        _render_summary(summary)


# --------------------------------------------------------------------------- index
@index_app.command("build")
@friendly_errors
def index_build(
    shard: Annotated[Path, typer.Argument(help="Prompts file, or a folder holding it and its video archives.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Index folder to write.")],
    encoder: Annotated[str, typer.Option(help="Encoder spec: v2p-tiny, minilm, clip:<model>/<tag>, clip:<model>@<ckpt>, v2p:<dir>.")] = "v2p-tiny",
    videos: Annotated[bool, typer.Option("--videos", help="Also index the shard's videos (pooled + per-frame).")] = False,
    generators: Annotated[str | None, typer.Option(help="Only these generators' videos (e.g. pika,vc2).")] = None,
    video_sources: Annotated[list[Path] | None, typer.Option("--video-source", help="Archive or folder of videos (repeatable); default: found beside the prompts.")] = None,
    limit: Annotated[int | None, typer.Option(help="Index only the first N unique prompts.")] = None,
    factory: Annotated[str | None, typer.Option(help="FAISS factory string for the prompt index (default: chosen from size and budget).")] = None,
    memory_budget: Annotated[str, typer.Option(help="Memory the prompt index may use, e.g. 4G.")] = "4G",
    frames: Annotated[int, typer.Option(help="Frames sampled per video.")] = 8,
    strip_flags: Annotated[bool, typer.Option(help="Ignore generator flags when deduplicating prompts.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip bad rows/videos (counted and reported) instead of stopping.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted build from its finished chunks.")] = False,
    prompt_chunk: Annotated[int, typer.Option(help="Prompts per checkpointed chunk (resume granularity).")] = 8192,
    video_chunk: Annotated[int, typer.Option(help="Videos per checkpointed chunk (resume granularity).")] = 256,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index folder.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the build report as JSON.")] = False,
):
    """Embed a shard's unique prompts (and with --videos its videos) into FAISS indexes."""
    from v2p.data.shard import open_shard
    from v2p.index.build import BuildConfig, build_index
    from v2p.index.select import parse_size

    try:
        parse_size(memory_budget)
    except ValueError as exc:
        raise V2PError(str(exc)) from None
    config = BuildConfig(encoder=encoder, videos=videos, limit=limit, factory=factory, memory_budget=memory_budget,
                         strip_flags=strip_flags, skip_bad=skip_bad, num_frames=frames, prompt_chunk=prompt_chunk,
                         video_chunk=video_chunk,
                         generators=[g.strip() for g in generators.split(",")] if generators else None)
    with progress_bar() as bar:
        report = build_index(open_shard(shard, video_sources), out_dir, config, resume=resume, overwrite=overwrite,
                             on_progress=StageProgress(bar))
    summary = report.as_dict()
    if as_json:
        _print_json(summary)
        return
    out.print(f"index {report.out}: {report.prompts} prompts ({report.prompt_factory})"
              + (f", {report.videos} videos ({report.video_factory})" if config.videos else "")
              + f" in {report.seconds:.1f}s" + (f", {report.resumed_chunks} chunks resumed" if report.resumed_chunks else ""))
    if report.skipped_outside_limit:
        out.print(f"  {report.skipped_outside_limit} videos belong to prompts beyond --limit and were not indexed")
    if report.bad["total"]:
        out.print(f"  [yellow]skipped {report.bad['total']} bad records[/]: "
                  + ", ".join(f"{k} {v}" for k, v in report.bad["by_reason"].items()))
        for e in report.bad["examples"]:
            out.print(f"    {e['source']}, {e['location']}: {e['detail']}", highlight=False)


@index_app.command("info")
@friendly_errors
def index_info(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
):
    """Show an index's manifest: encoder, counts, index types, sources."""
    from v2p.index.store import IndexDir

    manifest = IndexDir.open(index).manifest
    if as_json:
        _print_json(manifest)
        return
    table = Table(title=f"index {index}", show_header=False)
    table.add_row("encoder", manifest["encoder"])
    table.add_row("dim / metric", f"{manifest['dim']} / {manifest['metric']}")
    table.add_row("prompts", f"{manifest['prompts']['count']} ({manifest['prompts']['factory']})")
    v = manifest.get("videos")
    table.add_row("videos", f"{v['count']} ({v['factory']}, {v['frames_per_video']} frames, "
                            f"{', '.join(v['generators'])})" if v else "none")
    table.add_row("source", manifest["source"]["prompts"]["path"])
    table.add_row("created", f"{manifest['created']} by v2p {manifest['v2p_version']}")
    out.print(table)


# --------------------------------------------------------------------------- query
def _reranker(retriever, weights: str | None, lm: str, k: int):
    from v2p.rerank.reranker import TUNED, make_reranker, parse_weights

    reranker, notes = make_reranker(retriever, weights=parse_weights(weights, TUNED), lm=lm, k=k)
    for note in notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    return reranker


def _render_results(results: list[dict], show_truth: dict[str, str] | None = None) -> None:
    for res in results:
        title = f"[bold]{res['query']}[/]"
        out.print(title, highlight=False)
        if show_truth and res["query"] in show_truth:
            out.print(f"  true prompt: [green]{show_truth[res['query']]}[/]", highlight=False)
        if res.get("error"):
            out.print(f"  [red]error:[/] {res['error']}", highlight=False)
            continue
        table = Table(show_lines=False, box=None, pad_edge=False)
        for col in ("rank", "score", "prompt", "uuid", "via"):
            table.add_column(col, overflow="fold", max_width=80 if col == "prompt" else None)
        for c in res["candidates"]:
            table.add_row(str(c["rank"]), f"{c['score']:.3f}", c["prompt"].replace("\n", " ⏎ "), c["uuid"], c["source"])
        out.print(table)
        if res.get("spliced"):
            out.print(f"  spliced: [bold cyan]{res['spliced']}[/]", highlight=False)


@app.command()
@friendly_errors
def query(
    clips: Annotated[list[Path] | None, typer.Argument(help="Video files (mp4, webm, mov, gif, png/jpg...).")] = None,
    index: Annotated[Path, typer.Option(help="Index folder (from v2p index build).")] = Path("demo/index"),
    top: Annotated[int, typer.Option(help="Candidates per clip.")] = 5,
    text: Annotated[list[str] | None, typer.Option("--text", help="Find prompts near this prompt instead (repeatable).")] = None,
    pooling: Annotated[str | None, typer.Option(help="Frame pooling (default: the encoder's own, e.g. mean).")] = None,
    encoder: Annotated[str | None, typer.Option(help="Must equal the index's encoder; there to catch mistakes.")] = None,
    rerank: Annotated[bool, typer.Option(help="Rerank the top --rerank-k candidates (frames, consensus, fluency).")] = False,
    splice: Annotated[bool, typer.Option(help="Also compose a new prompt from the candidates' phrases (implies --rerank).")] = False,
    rerank_k: Annotated[int, typer.Option(help="Candidates considered by --rerank/--splice.")] = 50,
    weights: Annotated[str | None, typer.Option(help="Rerank weights, e.g. 'frame_max=0.5,consensus=1'.")] = None,
    lm: Annotated[str, typer.Option(help="Fluency LM: auto (the index's own), bank, none, or a local HF causal LM.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array, one object per clip.")] = False,
):
    """Retrieve the prompts most likely to have made each clip."""
    from v2p.retrieval.search import Retriever

    if not clips and not text:
        raise V2PError("give one or more clips, or --text \"a prompt\"")
    if top < 1:
        raise V2PError("--top must be at least 1")
    retriever = Retriever(index, encoder=encoder)
    results = []
    if clips and (rerank or splice):
        reranker = _reranker(retriever, weights, lm, rerank_k)
        results += reranker.query_videos([str(c) for c in clips], top=top, splice=splice)
    elif clips:
        results += retriever.query_videos([str(c) for c in clips], top=top, pooling=pooling)
    if text:
        results += retriever.query_texts(text, top=top)
    payload = [r.as_dict() for r in results]
    if as_json:
        _print_json(payload)
    else:
        _render_results(payload)
    if clips and all(r.error for r in results[: len(clips)]) and not text:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- batch
@app.command()
@friendly_errors
def batch(
    db: Annotated[Path, typer.Option(help="DuckDB database file.")],
    out_table: Annotated[str, typer.Option(help="Table to write results into (created if missing).")],
    index: Annotated[Path, typer.Option(help="Index folder.")],
    table: Annotated[str | None, typer.Option(help="Table holding video paths.")] = None,
    column: Annotated[str | None, typer.Option(help="Column of video paths.")] = None,
    sql: Annotated[str | None, typer.Option(help="A SELECT returning the video paths (instead of --table/--column).")] = None,
    top: Annotated[int, typer.Option(help="Candidates per clip.")] = 5,
    rerank: Annotated[bool, typer.Option(help="Rerank the top --rerank-k candidates before writing.")] = False,
    rerank_k: Annotated[int, typer.Option(help="Candidates considered by --rerank.")] = 50,
    lm: Annotated[str, typer.Option(help="Fluency LM for --rerank: auto, bank, none, or a local HF causal LM.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
):
    """Look up prompts for every video path in a DuckDB table; results go to --out-table in the same file."""
    from v2p.retrieval.batch import run_batch
    from v2p.retrieval.search import Retriever

    answerer = _reranker(Retriever(index), None, lm, rerank_k) if rerank else None

    with progress_bar() as bar:
        task = bar.add_task("querying clips", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, total=total, advance=done)

        report = run_batch(db, out_table=out_table, index=index, table=table, column=column, sql=sql, top=top,
                           on_progress=on_progress, retriever=answerer)
    if as_json:
        _print_json(report.as_dict())
    else:
        out.print(f"{report.paths} paths: {report.skipped_done} already done, {report.queried} queried, "
                  f"{report.failed} failed (error rows); {report.rows_written} rows written to {report.out_table}")


# --------------------------------------------------------------------------- lm
lm_app = typer.Typer(no_args_is_help=True, help="The fluency prior used by --rerank/--splice.")
app.add_typer(lm_app, name="lm")


@lm_app.command("train")
@friendly_errors
def lm_train(
    index: Annotated[Path, typer.Argument(help="Index folder: the LM learns its prompts and is stored in INDEX/lm.")],
    epochs: Annotated[int, typer.Option(help="Passes over the prompts.")] = 3,
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary size.")] = 4096,
    max_prompts: Annotated[int, typer.Option(help="Train on at most this many prompts (a seeded sample).")] = 200_000,
    min_steps: Annotated[int, typer.Option(help="At least this many optimiser steps (small banks get more passes).")] = 300,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the training record as JSON.")] = False,
):
    """Train a tiny GPT-2-style model (and its tokenizer) on the bank's own prompts, offline."""
    from v2p.rerank.lm import LMTrainConfig, train_bank_lm

    cfg = LMTrainConfig(epochs=epochs, vocab_size=vocab_size, max_prompts=max_prompts, min_steps=min_steps, seed=seed)
    with progress_bar() as bar:
        record = train_bank_lm(index, cfg, on_progress=StageProgress(bar))
    if as_json:
        _print_json(record)
    else:
        out.print(f"language model for {index}: {record['parameters']:,} parameters on {record['prompts']} prompts, "
                  f"loss {record['first_loss']:.2f} -> {record['final_loss']:.2f} in {record['seconds']:.0f}s")


# --------------------------------------------------------------------------- train
@app.command()
@friendly_errors
def train(
    source: Annotated[Path, typer.Argument(help="A shard (frames decoded, frame encoder trained) or an index folder "
                                                "built with --videos and a clip encoder (cached frame vectors).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Model folder to write (use as --encoder v2p:<folder>).")],
    text_encoder: Annotated[str, typer.Option(help="Frozen text space to train into.")] = "minilm",
    head: Annotated[str, typer.Option(help="Pooling head: mean or temporal.")] = "temporal",
    frame_encoder: Annotated[str, typer.Option(help="tiny-cnn (trained from scratch, shard source); a clip source "
                                                    "uses the index's own encoder.")] = "tiny-cnn",
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping on validation loss).")] = 40,
    batch_size: Annotated[int, typer.Option(help="Prompts per batch (InfoNCE negatives).")] = 128,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 2e-3,
    patience: Annotated[int, typer.Option(help="Epochs without validation improvement before stopping.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for the split, sampling and init.")] = 0,
    generators: Annotated[str | None, typer.Option(help="Train on these generators' videos only.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N unique prompts.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimiser steps (smoke runs).")] = None,
    frames: Annotated[int, typer.Option(help="Frames per video.")] = 8,
    skip_bad: Annotated[bool, typer.Option(help="Skip bad rows/videos instead of stopping.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the training summary as JSON.")] = False,
):
    """Train a video tower into a frozen text space (symmetric InfoNCE, learnable temperature)."""
    from v2p.train import data as train_data
    from v2p.train.loop import TrainConfig, train_tower

    if head not in ("mean", "temporal"):
        raise V2PError(f"--head must be mean or temporal, not {head!r}")
    is_index = (source / "manifest.json").is_file()
    with progress_bar() as bar:
        stages = StageProgress(bar)
        if is_index:
            data = train_data.from_index(source, text_encoder=text_encoder)
        else:
            if frame_encoder != "tiny-cnn":
                raise V2PError("a clip frame encoder trains on cached frame vectors: build an index with "
                               "'v2p index build SHARD --videos --encoder clip:...' and pass that index folder")
            from v2p.data.shard import open_shard

            data = train_data.from_shard(open_shard(source), text_encoder=text_encoder, num_frames=frames,
                                         generators=generators.split(",") if generators else None, limit=limit,
                                         skip_bad=skip_bad, on_progress=stages)
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed,
                          max_steps=max_steps)
        command = "v2p train " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else None
        result = train_tower(data, out_dir, head=head, text_encoder=text_encoder, cfg=cfg, on_progress=stages,
                             provenance={"command": command, "seed": seed})
    summary = {"out": str(out_dir), "encoder_spec": f"v2p:{out_dir}", "best_epoch": result.best_epoch,
               "epochs_run": len(result.history), "seconds": result.seconds, **result.best}
    if as_json:
        _print_json(summary)
    else:
        out.print(f"trained {head} tower -> {out_dir} (best epoch {result.best_epoch} of {len(result.history)}, "
                  f"val R@1 {result.best.get('val_r1', float('nan')):.3f}, {result.seconds:.0f}s); "
                  f"use it as --encoder v2p:{out_dir}")


# --------------------------------------------------------------------------- eval
def _render_eval(report: dict) -> None:
    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    def ci(group: dict, key: str) -> str:
        iv = group.get("intervals", {}).get(key)
        return f"[{iv[0]:.3f}, {iv[1]:.3f}]" if iv else ""

    table = Table(title=f"eval: {report.get('queries')} against {report.get('index')}")
    table.add_column("metric")
    table.add_column("prompt in bank")
    table.add_column("95% CI")
    table.add_column("not in bank")
    table.add_column("95% CI ")
    nb = report.get("not_in_bank", {})
    table.add_row("queries", str(report.get("n_queries", 0)), "", str(nb.get("n_queries", 0)), "")
    for key in ("recall_at_1", "recall_at_5", "recall_at_10", "minilm_cosine", "bleu", "rouge_l",
                "direction_accuracy", "direction_given_axis"):
        table.add_row(key, fmt(report.get(key)), ci(report, key), fmt(nb.get(key)), ci(nb, key))
    for attr in sorted(set(report.get("attribute_accuracy", {})) | set(nb.get("attribute_accuracy", {}))):
        table.add_row(f"attr {attr}", fmt(report.get("attribute_accuracy", {}).get(attr)), "",
                      fmt(nb.get("attribute_accuracy", {}).get(attr)), "")
    out.print(table)
    if report.get("errors"):
        out.print(f"[yellow]{report['errors']} queries failed to decode[/]")


@app.command("eval")
@friendly_errors
def eval_command(
    index: Annotated[Path, typer.Option(help="Index folder to evaluate.")],
    queries: Annotated[Path, typer.Option(help="Shard whose videos are the queries (truth from its prompts).")],
    generator: Annotated[str | None, typer.Option(help="Only this generator's videos (one absent from the index).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most N query videos.")] = None,
    rerank: Annotated[bool, typer.Option(help="Evaluate reranked answers.")] = False,
    splice: Annotated[bool, typer.Option(help="Evaluate spliced prompts as the top-1 answer (implies --rerank).")] = False,
    rerank_k: Annotated[int, typer.Option(help="Candidates considered by --rerank/--splice.")] = 50,
    weights: Annotated[str | None, typer.Option(help="Rerank weights, e.g. 'frame_max=0.5,consensus=1'.")] = None,
    lm: Annotated[str, typer.Option(help="Fluency LM: auto, bank, none, or a local HF causal LM.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
):
    """R@1/5/10, MiniLM cosine, BLEU, ROUGE-L and per-attribute accuracy, with 95% bootstrap intervals."""
    from v2p.data.shard import open_shard
    from v2p.eval.runner import evaluate
    from v2p.retrieval.search import Retriever

    retriever = Retriever(index)
    answer = None
    if rerank or splice:
        reranker = _reranker(retriever, weights, lm, rerank_k)

        def answer(datas, names):
            return reranker.query_videos(datas, top=10, splice=splice)

    with progress_bar() as bar:
        report = evaluate(index, open_shard(queries), generator=generator, limit=limit, retriever=retriever,
                          answer=answer, on_progress=StageProgress(bar)).as_dict()
        report["mode"] = "splice" if splice else ("rerank" if rerank else "plain")
    if as_json:
        _print_json(report)
    else:
        _render_eval(report)


# --------------------------------------------------------------------------- demo
@app.command()
@friendly_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Working folder; the index lands in OUT/index.")] = Path("demo"),
    n: Annotated[int, typer.Option("--n", help="Prompts in the bank shard.")] = 2000,
    queries: Annotated[int, typer.Option(help="Held-out query videos (another generator) to evaluate.")] = 300,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation report as JSON at the end.")] = False,
):
    """Synthesize a shard, index it with v2p-tiny, query held-out clips and print the evaluation (offline)."""
    from v2p.demo import run_demo

    with progress_bar(transient=True) as bar:
        result = run_demo(out_dir, n=n, queries=queries, on_progress=StageProgress(bar))
    for clip, truth, inside, answer in zip(result.clips, result.truths, result.in_bank, result.answers, strict=True):
        out.rule(f"{clip.name} ({'its prompt is in the bank' if inside else 'its prompt is NOT in the bank'})")
        _render_results([answer.as_dict()], show_truth={answer.query: truth})
    report = result.report.as_dict()
    _render_eval(report)
    if as_json:
        _print_json(report)
    out.print(f"\nindex left at [bold]{result.index}[/]: try  v2p query {result.clips[0]} --index {result.index}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
