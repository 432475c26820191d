"""`v2p index build`, `info`, `verify` and `tune`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from v2p.cli._app import index_app, StageProgress, print_json, friendly_errors, err, out, progress_bar
from v2p.embed.factory import DEFAULT_ENCODER
from v2p.errors import V2PError


# --------------------------------------------------------------------------- index
@index_app.command("build")
@friendly_errors
def index_build(
    shard: Annotated[Path, typer.Argument(help="Prompts file, or a folder holding it and its video archives.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Index folder to write.")],
    encoder: Annotated[str, typer.Option(help="Encoder spec: v2p-sight (real vision models, the default), v2p-tiny (synthetic world), minilm, clip:<model>/<tag>, clip:<model>@<ckpt>, v2p:<dir>.")] = DEFAULT_ENCODER,
    videos: Annotated[bool, typer.Option("--videos", help="Also index the shard's videos (pooled + per-frame).")] = False,
    generators: Annotated[str | None, typer.Option(help="Only these generators' videos (e.g. pika,vc2).")] = None,
    video_sources: Annotated[list[Path] | None, typer.Option("--video-source", help="Archive or folder of videos (repeatable); default: found beside the prompts.")] = None,
    limit: Annotated[int | None, typer.Option(help="Index only the first N unique prompts.")] = None,
    factory: Annotated[str | None, typer.Option(help="FAISS factory string for the prompt index (default: chosen from size and budget).")] = None,
    memory_budget: Annotated[str, typer.Option(help="Memory each index (prompts, and videos) may use, e.g. 4G; chooses the index type.")] = "4G",
    frames: Annotated[int, typer.Option(help="Frames sampled per video.")] = 8,
    strip_flags: Annotated[bool, typer.Option(help="Ignore generator flags when deduplicating prompts.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip bad rows/videos (counted and reported) instead of stopping.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted build from its finished chunks.")] = False,
    prompt_chunk: Annotated[int, typer.Option(help="Prompts per checkpointed chunk (resume granularity).")] = 8192,
    video_chunk: Annotated[int, typer.Option(help="Videos per checkpointed chunk (resume granularity).")] = 256,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index folder.")] = False,
    full_hash: Annotated[bool, typer.Option(help="Record full SHA-256 hashes of the sources (an extra pass over every archive) instead of sampled ones.")] = False,
    target_recall: Annotated[float, typer.Option(min=0.0, max=1.0, help="Recall@10 against exact search the chosen index and its nprobe/efSearch must reach on the tuning queries.")] = 0.95,
    tune_queries: Annotated[Path | None, typer.Option(help="A .npy [n, dim] of query vectors to tune on (default: the shard's own clips with --videos, else a sample of its prompts).")] = None,
    engine: Annotated[str, typer.Option(help="Who embeds: local (this process) or ray (a Ray cluster; pip install 'v2p[distributed]'). Both write the same index, and either resumes the other.")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster to join with --engine ray (default: RAY_ADDRESS, else a local Ray instance).")] = None,
    ray_actors: Annotated[int | None, typer.Option(min=1, help="Encoder actors with --engine ray (default: one per GPU, else one per CPU).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the build report as JSON.")] = False,
):
    """Embed a shard's unique prompts (and with --videos its videos) into FAISS indexes."""
    from v2p.data.shard import open_shard
    from v2p.index.build import BuildConfig
    from v2p.index.select import parse_size

    try:
        parse_size(memory_budget)
    except ValueError as exc:
        raise V2PError(str(exc)) from None
    config = BuildConfig(encoder=encoder, videos=videos, limit=limit, factory=factory, memory_budget=memory_budget,
                         strip_flags=strip_flags, skip_bad=skip_bad, num_frames=frames, prompt_chunk=prompt_chunk,
                         video_chunk=video_chunk, full_hash=full_hash, target_recall=target_recall,
                         tune_queries=str(tune_queries) if tune_queries else None,
                         generators=[g.strip() for g in generators.split(",")] if generators else None)
    from v2p.index.build import make_builder

    builder = make_builder(open_shard(shard, video_sources), out_dir, config, engine=engine, ray_address=ray_address,
                           ray_actors=ray_actors, resume=resume, overwrite=overwrite)
    try:
        with progress_bar() as bar:
            builder.progress = StageProgress(bar)
            report = builder.run()
    except KeyboardInterrupt:
        kept = builder.finished_chunks()
        if kept:
            err.print(f"interrupted: {kept} finished chunks kept in {builder.work}; run the same command with "
                      "--resume to continue from them")
        else:
            err.print("interrupted before any chunk was finished; nothing was kept")
        raise typer.Exit(130) from None
    summary = report.as_dict()
    if as_json:
        print_json(summary)
        return
    out.print(f"index {report.out}: {report.prompts} prompts ({report.prompt_factory})"
              + (f", {report.videos} videos ({report.video_factory})" if config.videos else "")
              + f" in {report.seconds:.1f}s" + (f" on {report.engine}" if report.engine != "local" else "") + (f", {report.resumed_chunks} chunks resumed" if report.resumed_chunks else ""))
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
        print_json(manifest)
        return
    table = Table(title=f"index {index}", show_header=False)
    table.add_row("encoder", manifest["encoder"])
    table.add_row("dim / metric", f"{manifest['dim']} / {manifest['metric']}")
    table.add_row("prompts", f"{manifest['prompts']['count']} ({manifest['prompts']['factory']})")
    table.add_row("prompt search", describe_tuning(manifest["prompts"]))
    v = manifest.get("videos")
    table.add_row("videos", f"{v['count']} ({v['factory']}, {v['frames_per_video']} frames, "
                            f"{', '.join(v['generators'])})" if v else "none")
    if v:
        table.add_row("video search", describe_tuning(v))
    table.add_row("source", manifest["source"]["prompts"]["path"])
    table.add_row("created", f"{manifest['created']} by v2p {manifest['v2p_version']}")
    files = manifest.get("files")
    table.add_row("files", f"{len(files)}, {sum(f['size'] for f in files.values()) / 2**20:.1f} MiB, SHA-256 "
                           "recorded ('v2p index verify' checks them)" if files else "no checksums recorded (an older build)")
    out.print(table)


@index_app.command("verify")
@friendly_errors
def index_verify(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one record per file as JSON.")] = False,
):
    """Re-read every index file and compare its size and SHA-256 with the manifest (exit 1 on a mismatch)."""
    from v2p.index.store import damaged_message, verify_index

    checks = verify_index(index)
    bad = [c for c in checks if not c.ok]
    if as_json:
        print_json({"index": str(index), "ok": not bad,
                    "files": [{"name": c.name, "size": c.size, "expected_size": c.expected_size, "ok": c.ok,
                               "problem": c.problem} for c in checks]})
    else:
        for c in checks:
            out.print(f"  {'ok ' if c.ok else 'BAD'}  {c.name}" + ("" if c.ok else f": {c.problem}"), highlight=False)
    if bad:
        raise V2PError(damaged_message(index, bad[0].name, bad[0].problem)
                       + (f" ({len(bad) - 1} more damaged)" if len(bad) > 1 else ""))
    if not as_json:
        out.print(f"{index}: all {len(checks)} files match the manifest", highlight=False)


def describe_tuning(section: dict) -> str:
    t = section.get("tuning")
    if not t:
        return "not tuned (built before tuning; run 'v2p index tune')"
    params = ", ".join(f"{k} {v}" for k, v in t["params"].items()) or "exact scan"
    verdict = "meets" if t["met"] else "MISSES"
    return (f"{params}: recall@10 {t['recall_at_10']:.3f} vs exact ({verdict} target {t['target']}) on "
            f"{t['queries']}, {t['latency_ms']:.2f} ms/query")


@index_app.command("tune")
@friendly_errors
def index_tune(
    index: Annotated[Path, typer.Argument(help="Index folder.")],
    target_recall: Annotated[float, typer.Option(min=0.0, max=1.0, help="Recall@10 against exact search to reach.")] = 0.95,
    tune_queries: Annotated[Path | None, typer.Option(help="A .npy [n, dim] of query vectors for the prompt index (default: the index's own clips, else its prompts).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tuning results as JSON.")] = False,
):
    """Re-sweep an index's search parameters (nprobe / efSearch) on clip queries and record them in its manifest."""
    from v2p.index.tune import retune_index

    results = retune_index(index, target=target_recall, queries_path=str(tune_queries) if tune_queries else None,
                           on_stage=lambda name: err.print(f"tuning {name} ...") if not as_json else None)
    if as_json:
        print_json({name: r.as_dict() for name, r in results.items()})
        return
    for name, r in results.items():
        out.print(f"{name}: {r.factory}, {describe_tuning({'tuning': r.as_dict()})}", highlight=False)
