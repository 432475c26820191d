"""The typer apps and what every command shares: error handling, progress bars, JSON output."""

from __future__ import annotations

import functools
import json
import sys

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

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


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
