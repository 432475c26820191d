"""The ``v2p`` command line: thin typer commands over the library's functions.

Only this package prints and sets up logging. Expected failures (:class:`V2PError`) become a
one-line ``error:`` message and exit code 2; nothing here holds logic the API lacks. One
module per command group; importing them registers their commands on ``app``.
"""

from __future__ import annotations

# importing a module registers its commands; in data-flow order, which --help keeps
from v2p.cli import data, index, query, models, evaluate, web  # noqa: F401, I001
from v2p.cli._app import app


def main() -> None:
    app()
