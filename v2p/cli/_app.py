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

# plain click help: readable at 80 columns, no "<bool>" after every flag; -h as well as --help
_HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(add_completion=False, no_args_is_help=True, help="From a generated video back to its prompt.",
                  rich_markup_mode=None, context_settings=_HELP)
shard_app = typer.Typer(no_args_is_help=True, help="Read and check VidProM-layout shards.", rich_markup_mode=None,
                        context_settings=_HELP)
index_app = typer.Typer(no_args_is_help=True, help="Build and describe prompt/video indexes.", rich_markup_mode=None,
                        context_settings=_HELP)


def _version(value: bool) -> None:
    if value:
        from v2p import __version__

        print(f"v2p {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """From a generated video back to its prompt."""
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
