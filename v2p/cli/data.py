"""`v2p synth` and `v2p shard inspect`: make and check shards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from v2p.cli._app import shard_app, print_json, app, friendly_errors, out, progress_bar


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
    from v2p._paths import refuse_existing
    from v2p.data.synth.writer import write_synthetic_shard

    refuse_existing(out_dir, overwrite)  # before a progress bar is drawn
    gens = [g.strip() for g in generators.split(",") if g.strip()]
    with progress_bar() as bar:
        task = bar.add_task("rendering videos", total=(video_sample or n) * len(gens))
        result = write_synthetic_shard(out_dir, n, seed=seed, generators=gens, workers=workers or None,
                                       overwrite=overwrite, video_sample=video_sample,
                                       on_progress=lambda k: bar.advance(task, k))
    summary = {"out": str(result.out), "prompts": str(result.prompts_path), "n_prompts": result.n_prompts,
               "n_videos": result.n_videos, "archives": {g: str(p) for g, p in result.archives.items()}}
    if as_json:
        print_json(summary)
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
        print_json(summary)
    else:
        _render_summary(summary)
