"""`v2p serve` (the web page and HTTP API) and `v2p feedback export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from v2p.cli._app import _HELP, app, err, friendly_errors, out, print_json
from v2p.errors import V2PError

feedback_app = typer.Typer(no_args_is_help=True, help="Ratings collected by v2p serve.", rich_markup_mode=None,
                           context_settings=_HELP)
app.add_typer(feedback_app, name="feedback")


@app.command()
@friendly_errors
def serve(
    index: Annotated[Path, typer.Option(help="Index folder to serve.")] = Path("demo/index"),
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    feedback: Annotated[Path | None, typer.Option(help="DuckDB file for ratings (default: INDEX/feedback.duckdb).")] = None,
    top: Annotated[int, typer.Option(help="Prompts shown per clip.")] = 5,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted (413 beyond).")] = 64.0,
    max_seconds: Annotated[float, typer.Option(help="Longest clip accepted (422 beyond).")] = 120.0,
    max_pending: Annotated[int, typer.Option(help="Queries waiting or running at once (503 beyond).")] = 16,
    feedback_weights: Annotated[bool, typer.Option(help="Rank with the weights fitted to this index's ratings (v2p feedback fit), if any.")] = True,
    rerank: Annotated[bool, typer.Option(help="Answer through the reranker: the index's trained cross-encoder "
                                              "(v2p rerank train) if it has one.")] = False,
    splice: Annotated[bool, typer.Option(help="Also show a prompt composed from the candidates' phrases "
                                              "(implies --rerank; adds about 190 ms a query on 2 cores).")] = False,
):
    """Serve the upload page and the JSON API, models loaded once and kept warm."""
    try:
        import uvicorn

        from v2p.web.app import QueryService, ServeConfig, create_app
    except ImportError as exc:
        raise V2PError(f"v2p serve needs the web extra ({exc.name} is missing): pip install 'v2p[web]'") from None
    cfg = ServeConfig(index=index, feedback=feedback, top=top, max_upload_mb=max_upload_mb, max_seconds=max_seconds,
                      max_pending=max_pending, feedback_weights=feedback_weights, rerank=rerank, splice=splice)
    err.print(f"loading {index} ...")
    service = QueryService(cfg)
    for note in service.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    err.print(f"v2p serving {index} ({service.retriever.index.encoder_spec}) at http://{host}:{port}/  "
              f"ratings -> {service.feedback.path}")
    uvicorn.run(create_app(cfg, service), host=host, port=port, log_level="warning")


@feedback_app.command("fit")
@friendly_errors
def feedback_fit(
    db: Annotated[Path, typer.Argument(help="Feedback DuckDB file.")],
    index: Annotated[Path, typer.Option(help="Index the ratings were given on; the weights are written beside it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the fitted record as JSON.")] = False,
):
    """Fit the fusion weights (text, video, camera) to the ratings; queries and serve then use them."""
    from v2p.rerank.ratings import WEIGHTS_FILE, fit_from_feedback

    if not db.is_file():
        raise V2PError(f"{db}: no such feedback file")
    record = fit_from_feedback(db, index)
    if as_json:
        print_json(record)
    else:
        w = record["weights"]
        out.print(f"fitted on {record['rated_queries']} rated queries ({record['pairs']} preference pairs): text "
                  f"{w['text']:.3f}, video {w['video']:.3f}, camera {w['camera']:.3f} -> {index / WEIGHTS_FILE}")


@feedback_app.command("export")
@friendly_errors
def feedback_export(
    db: Annotated[Path, typer.Argument(help="Feedback DuckDB file (INDEX/feedback.duckdb by default in serve).")],
    out_file: Annotated[Path, typer.Option("--out", help="File to write: .parquet or .csv.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
):
    """Export every rating to Parquet or CSV."""
    from v2p.web.feedback import export_feedback

    n = export_feedback(db, out_file)
    if as_json:
        print_json({"rows": n, "out": str(out_file)})
    else:
        out.print(f"{n} ratings -> {out_file}")
