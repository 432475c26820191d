"""`v2p query` (clips or text) and `v2p batch` (a DuckDB table), with rerank and splice."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from v2p.cli._app import print_json, app, err, friendly_errors, out, progress_bar
from v2p.errors import V2PError


# --------------------------------------------------------------------------- query
def rerank_weights(text: str | None) -> str | None:
    """``--weights`` checked (typos refused) before any model is loaded; applied on top of the
    defaults that fit the index (with or without a trained reranker) by :func:`build_reranker`."""
    from v2p.rerank.reranker import TUNED, parse_weights

    parse_weights(text, TUNED)
    return text


def build_reranker(retriever, weights, lm: str, k: int, splice: bool = False, cross_encoder: bool = True):
    """A reranker over ``retriever``; ``weights`` from :func:`rerank_weights`."""
    from v2p.rerank.reranker import make_reranker

    reranker, notes = make_reranker(retriever, weights=weights, lm=lm, k=k, splice=splice,
                                    cross="auto" if cross_encoder else "none")
    for note in notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    return reranker


def render_results(results: list[dict], show_truth: dict[str, str] | None = None) -> None:
    for res in results:
        title = f"[bold]{res['query']}[/]"
        out.print(title, highlight=False)
        if show_truth and res["query"] in show_truth:
            out.print(f"  true prompt: [green]{show_truth[res['query']]}[/]", highlight=False)
        if res.get("error"):
            out.print(f"  [red]error:[/] {res['error']}", highlight=False)
            continue
        if res.get("camera"):
            cam = res["camera"]
            out.print(f"  camera: [bold]{cam['phrase']}[/] ({cam['pika_flags']})", highlight=False)
        table = Table(show_lines=False, box=None, pad_edge=False)
        table.add_column("rank", no_wrap=True)
        table.add_column(res.get("score_kind", "score"), no_wrap=True)  # cosine, fused z or rerank
        table.add_column("prompt", overflow="fold", ratio=1)
        table.add_column("uuid", no_wrap=True, overflow="ellipsis", max_width=13)  # the JSON has it whole
        table.add_column("via", no_wrap=True)
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
    rerank: Annotated[bool, typer.Option(help="Rerank the top --rerank-k candidates (the index's trained reranker "
                                              "if any, else frames, consensus, fluency by --weights).")] = False,
    splice: Annotated[bool, typer.Option(help="Also compose a new prompt from the candidates' phrases (implies --rerank).")] = False,
    rerank_k: Annotated[int, typer.Option(help="Candidates considered by --rerank/--splice.")] = 50,
    weights: Annotated[str | None, typer.Option(help="Rerank weights, e.g. 'frame_max=0.5,consensus=1'.")] = None,
    lm: Annotated[str, typer.Option(help="Fluency LM: auto (the index's own), bank, none, or a local HF causal LM.")] = "auto",
    cross_encoder: Annotated[bool, typer.Option(help="With --rerank, use the index's trained reranker "
                                                     "(v2p rerank train: the cross-encoder and the image "
                                                     "term) when it has one.")] = True,
    feedback_weights: Annotated[bool, typer.Option(help="Rank with the weights fitted to this index's ratings (v2p feedback fit), if any.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array, one object per clip.")] = False,
):
    """Retrieve the prompts most likely to have made each clip."""
    from v2p.rerank.ratings import serving_weights
    from v2p.retrieval.search import Retriever

    if not clips and not text:
        raise V2PError("give one or more clips, or --text \"a prompt\"")
    if top < 1:
        raise V2PError("--top must be at least 1")
    parsed_weights = rerank_weights(weights) if (rerank or splice or weights) else None  # plain: no rerank import
    retriever = Retriever(index, encoder=encoder, weights=serving_weights(index, feedback_weights))
    results = []
    if clips and (rerank or splice):
        reranker = build_reranker(retriever, parsed_weights, lm, rerank_k, splice, cross_encoder)
        results += reranker.query_videos([str(c) for c in clips], top=top, splice=splice)
    elif clips:
        results += retriever.query_videos([str(c) for c in clips], top=top, pooling=pooling)
    if text:
        results += retriever.query_texts(text, top=top)
    payload = [r.as_dict() for r in results]
    if as_json:
        print_json(payload)
    else:
        render_results(payload)
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
    chunk: Annotated[int, typer.Option(min=1, help="Clips per committed transaction (a crash loses at most one).")] = 32,
    rerank: Annotated[bool, typer.Option(help="Rerank the top --rerank-k candidates before writing.")] = False,
    rerank_k: Annotated[int, typer.Option(help="Candidates considered by --rerank.")] = 50,
    lm: Annotated[str, typer.Option(help="Fluency LM for --rerank: auto, bank, none, or a local HF causal LM.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
):
    """Look up prompts for every video path in a DuckDB table; results go to --out-table in the same file."""
    from v2p.retrieval.batch import run_batch
    from v2p.retrieval.search import Retriever

    answerer = build_reranker(Retriever(index), rerank_weights(None), lm, rerank_k) if rerank else None

    with progress_bar() as bar:
        task = bar.add_task("querying clips", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, total=total, advance=done)

        report = run_batch(db, out_table=out_table, index=index, table=table, column=column, sql=sql, top=top,
                           chunk=chunk, on_progress=on_progress, retriever=answerer)
    if as_json:
        print_json(report.as_dict())
    else:
        out.print(f"{report.paths} paths: {report.skipped_done} already done, {report.queried} queried, "
                  f"{report.failed} failed (error rows); {report.rows_written} rows written to {report.out_table}")
