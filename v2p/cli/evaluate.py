"""`v2p eval` and `v2p demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from v2p.cli._app import StageProgress, print_json, app, friendly_errors, out, progress_bar
from v2p.cli.query import build_reranker, render_results, rerank_weights


# --------------------------------------------------------------------------- eval
def _render_eval(report: dict) -> None:
    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    def cell(group: dict, key: str) -> str:
        v = group.get(key)
        iv = group.get("intervals", {}).get(key)
        return fmt(v) + (f" [{iv[0]:.3f}, {iv[1]:.3f}]" if iv and v is not None else "")

    # two value columns, each "value [95% CI]": fits 80 columns without cutting metric names
    table = Table(title=f"eval: {report.get('queries')} against {report.get('index')}", title_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("prompt in bank", no_wrap=True)
    table.add_column("not in bank", no_wrap=True)
    nb = report.get("not_in_bank", {})
    failed = f" ({report.get('n_failed')} failed)" if report.get("n_failed") else ""
    table.add_row("queries", f"{report.get('n_queries', 0)}{failed}", str(nb.get("n_queries", 0)))
    for key in ("recall_at_1", "recall_at_5", "recall_at_10", "minilm_cosine", "bleu", "rouge_l",
                "direction_accuracy", "direction_given_axis"):
        if report.get(key) is None and nb.get(key) is None:
            continue
        table.add_row(key, cell(report, key), cell(nb, key))
    for attr in sorted(set(report.get("attribute_accuracy", {})) | set(nb.get("attribute_accuracy", {}))):
        table.add_row(f"attr {attr}", fmt(report.get("attribute_accuracy", {}).get(attr)),
                      fmt(nb.get("attribute_accuracy", {}).get(attr)))
    out.print(table)
    probe = report.get("direction_probe") or {}
    if probe.get("accuracy") is not None:
        lo, hi = probe["interval"]
        out.print(f"direction probe: {probe['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] of {probe['n']} directed clips "
                  "prefer their prompt to the motion-reversed one (0.5 = blind to frame order)")
    hardest = (report.get("breakdown") or {}).get("hardest") or []
    if hardest:
        out.print("hardest (R@1, in-bank queries): " + "; ".join(
            f"{h['group']}={h['value']} {h['recall_at_1']:.2f} (n={h['n_in_bank']})" for h in hardest[:5]),
            highlight=False)
    for where, regen in (report.get("regenerate") or {}).items():
        if regen.get("n") and regen.get("video_cosine") is not None:
            lo, hi = regen["video_cosine_ci"]
            out.print(f"regenerated ({where.replace('_', ' ')}, {regen['n']}): video cosine {regen['video_cosine']:.3f} "
                      f"[{lo:.3f}, {hi:.3f}] (two renders of the true prompt: {regen['ceiling_cosine']:.3f}), "
                      f"every drawn attribute right {regen.get('all_attributes_agree', 0):.3f}, "
                      f"{regen['parse_failures']} unparseable", highlight=False)
    if report.get("errors"):
        out.print(f"[yellow]{report['errors']} queries failed to decode[/]")


@app.command("eval")
@friendly_errors
def eval_command(
    index: Annotated[Path, typer.Option(help="Index folder to evaluate.")],
    queries: Annotated[Path | None, typer.Option(help="Shard whose videos are the queries (truth from its prompts).")] = None,
    labels: Annotated[Path | None, typer.Option(help="Your labelled clips/images: a CSV with columns file,prompt[,camera].")] = None,
    coco: Annotated[Path | None, typer.Option(help="Your labelled images as a COCO captions JSON (with --images).")] = None,
    images: Annotated[Path | None, typer.Option(help="Image folder of --coco.")] = None,
    generator: Annotated[str | None, typer.Option(help="Only this generator's videos (one absent from the index).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most N query videos.")] = None,
    rerank: Annotated[bool, typer.Option(help="Evaluate reranked answers.")] = False,
    splice: Annotated[bool, typer.Option(help="Evaluate spliced prompts as the top-1 answer (implies --rerank).")] = False,
    rerank_k: Annotated[int, typer.Option(help="Candidates considered by --rerank/--splice.")] = 50,
    weights: Annotated[str | None, typer.Option(help="Rerank weights, e.g. 'frame_max=0.5,consensus=1'.")] = None,
    lm: Annotated[str, typer.Option(help="Fluency LM: auto, bank, none, or a local HF causal LM.")] = "auto",
    cross_encoder: Annotated[bool, typer.Option(help="With --rerank, use the index's trained reranker "
                                                     "(v2p rerank train: the cross-encoder and the image "
                                                     "term) when it has one.")] = True,
    regenerate: Annotated[bool, typer.Option(help="Render each best answer with the query's generator and compare "
                                                  "it with the query clip (synthetic shards).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
):
    """R@1/5/10, MiniLM cosine, BLEU, ROUGE-L and per-attribute accuracy, with 95% bootstrap intervals.

    Queries come from a shard (--queries) or from your own labelled media (--labels or --coco)."""
    from v2p.data.shard import open_shard
    from v2p.errors import V2PError
    from v2p.eval.runner import evaluate
    from v2p.retrieval.search import Retriever

    sources = [name for name, v in (("--queries", queries), ("--labels", labels), ("--coco", coco)) if v is not None]
    if len(sources) != 1:
        raise V2PError("pass exactly one of --queries (a shard), --labels (file,prompt CSV) or --coco (with --images)"
                       + (f"; got {', '.join(sources)}" if sources else ""))
    if coco is not None and images is None:
        raise V2PError("--coco needs --images, the folder its file_name entries are in")
    if (labels is not None or coco is not None) and (rerank or splice or regenerate):
        raise V2PError("--rerank/--splice/--regenerate are evaluated on shards (--queries) only")
    parsed_weights = rerank_weights(weights) if (rerank or splice or weights) else None  # typos refused early
    retriever = Retriever(index)
    if labels is not None or coco is not None:
        _eval_labelled(index, retriever, labels, coco, images, as_json)
        return
    answer = None
    if rerank or splice:
        reranker = build_reranker(retriever, parsed_weights, lm, rerank_k, splice, cross_encoder)

        def answer(datas, names):
            return reranker.query_videos(datas, top=10, splice=splice)

    with progress_bar() as bar:
        report = evaluate(index, open_shard(queries), generator=generator, limit=limit, retriever=retriever,
                          answer=answer, on_progress=StageProgress(bar), regenerate=regenerate).as_dict()
        report["mode"] = "splice" if splice else ("rerank" if rerank else "plain")
        if rerank or splice:
            learned = (["cross-encoder"] if reranker.cross is not None else []) + \
                (["image term"] if reranker.image_map is not None and reranker.weights.image else [])
            report["reranker"] = " + ".join(learned) or "terms"
    if as_json:
        print_json(report)
    else:
        _render_eval(report)


def _eval_labelled(index: Path, retriever, labels: Path | None, coco: Path | None, images: Path | None,
                   as_json: bool) -> None:
    from v2p.eval.labelled import evaluate_labelled, read_coco_captions, read_labels_csv

    items = read_labels_csv(labels) if labels is not None else read_coco_captions(coco, images)
    with progress_bar(transient=True) as bar:
        report = evaluate_labelled(index, items, retriever=retriever, on_progress=StageProgress(bar)).as_dict()
    report["labels"] = str(labels or coco)
    if as_json:
        print_json(report)
        return
    report.setdefault("queries", report["labels"])
    _render_eval(report)
    cam = report["camera"]
    if cam["n"]:
        lo, hi = cam["interval"]
        out.print(f"camera motion: {cam['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] of {cam['n']} labelled clips "
                  "read right from the pixels")


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
        render_results([answer.as_dict()], show_truth={answer.query: truth})
    report = result.report.as_dict()
    _render_eval(report)
    if as_json:
        print_json(report)
    out.print(f"\nindex left at [bold]{result.index}[/]: try  v2p query {result.clips[0]} --index {result.index}")
