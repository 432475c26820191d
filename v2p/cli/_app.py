"""The typer apps and what every command shares: error handling, progress bars, JSON output."""

from __future__ import annotations

import functools
import json
import sys
import time

import typer
from rich.markup import escape
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
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # [n, d] is text
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


class PlainProgress:
    """Progress for logs (stderr is not a terminal): a plain line per task every ``every``
    seconds and when it ends, instead of a live bar that a log file shows only at the end."""

    def __init__(self, every: float = 10.0):
        self.every = every
        self.tasks: dict[int, dict] = {}

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        for task_id in list(self.tasks):
            self._line(task_id, final=True)

    def add_task(self, description: str, total: float | None = None, **_) -> int:
        task_id = len(self.tasks)
        now = time.monotonic()
        self.tasks[task_id] = {"description": description, "total": total, "completed": 0, "start": now,
                               "last": now, "done": False}
        return task_id

    def update(self, task_id: int, *, total: float | None = None, advance: float = 0, **_) -> None:
        task = self.tasks[task_id]
        if total is not None:
            task["total"] = total
        self.advance(task_id, advance)

    def advance(self, task_id: int, advance: float = 1) -> None:
        task = self.tasks[task_id]
        task["completed"] += advance
        now = time.monotonic()
        if now - task["last"] >= self.every:
            task["last"] = now
            self._line(task_id)

    def stop_task(self, task_id: int) -> None:
        self._line(task_id, final=True)

    def _line(self, task_id: int, final: bool = False) -> None:
        task = self.tasks[task_id]
        if task["done"]:
            return
        task["done"] = final
        elapsed = time.monotonic() - task["start"]
        total = f"/{int(task['total'])}" if task["total"] else ""
        rate = task["completed"] / elapsed if elapsed > 0 else 0.0
        err.print(f"{task['description']}: {int(task['completed'])}{total} in {elapsed:.0f}s ({rate:.1f}/s)"
                  + (" done" if final else ""), highlight=False, soft_wrap=True)


def progress_bar(transient: bool = False) -> Progress | PlainProgress:
    """Progress on stderr (stdout stays clean for --json): count, rate, elapsed and ETA on a
    terminal; periodic plain lines when stderr goes to a log."""
    if not err.is_terminal:
        return PlainProgress()
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
            for earlier in self.tasks.values():  # a new stage ends the others: their clocks stop
                self.bar.stop_task(earlier)
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        elif total is not None:
            self.bar.update(self.tasks[stage], total=total)
        if advance:
            self.bar.advance(self.tasks[stage], advance)


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
