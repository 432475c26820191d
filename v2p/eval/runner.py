"""``v2p eval``: query an index with a shard's videos and score the answers against the truth.

Queries whose prompt is in the index's bank measure "which prompt made this" (R@1/5/10 of
the exact prompt, plus text metrics); queries whose prompt is not in the bank measure
"suggest a prompt" (text and attribute metrics only). Each metric gets a 95% bootstrap
interval. For a fair test, query with a generator whose videos are not in the index.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from v2p.data.bad_records import BadRecords
from v2p.data.prompts import read_prompts_table
from v2p.data.shard import Shard
from v2p.embed.factory import create_encoder
from v2p.data.synth.render import GENERATORS
from v2p.errors import V2PError
from v2p.eval import metrics
from v2p.eval.breakdown import breakdown
from v2p.eval.regenerate import regenerate_batch, summarise_regeneration
from v2p.retrieval.search import QueryResult, Retriever

DIRECTED_ACTIONS = ("moving left", "moving right", "moving up", "moving down", "growing", "shrinking")
# each directed action and its opposite share an axis; only frame order tells them apart
MOTION_AXIS = {"moving left": "x", "moving right": "x", "moving up": "y", "moving down": "y",
               "growing": "scale", "shrinking": "scale"}
RECALL_KS = (1, 5, 10)

# answer(query clips as bytes, names) -> one QueryResult per clip (plain retrieval, or reranked)
Answerer = Callable[[list[bytes], list[str]], list[QueryResult]]


@dataclass
class QueryTruth:
    name: str
    data: bytes
    uuid: str
    prompt: str
    prompt_id: str
    attributes: dict | None
    generator: str | None = None


@dataclass
class EvalReport:
    in_bank: dict = field(default_factory=dict)
    not_in_bank: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    # one record per query (name, generator, in_bank, rank, cosine, attributes): what the breakdown
    # and paired comparisons are computed from; not part of as_dict() (large for big evaluations)
    per_query: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {**self.in_bank, "not_in_bank": self.not_in_bank, **self.meta}


def iter_queries(shard: Shard, *, generator: str | None = None, limit: int | None = None,
                 strip_flags: bool = False) -> Iterator[QueryTruth]:
    """The shard's videos (of one generator, if named) with their true prompt and attributes, one
    at a time (a caller that batches holds one batch of clip bytes, never the whole shard).

    ``strip_flags`` must be the bank's own setting (the index manifest's), or queries whose
    prompt differs from a bank prompt only by generator flags are miscounted as not in the bank."""
    table = read_prompts_table(shard.prompts_path, dedup=False, strip_flags=strip_flags,
                               bad=BadRecords(skip_bad=True))
    has_attrs = "attributes" in table.column_names
    truth = {}
    for i, uuid in enumerate(table.column("uuid").to_pylist()):
        attrs = table.column("attributes")[i].as_py() if has_attrs else None
        truth[uuid] = (table.column("prompt")[i].as_py(), table.column("prompt_id")[i].as_py(),
                       json.loads(attrs) if attrs else None)
    n = 0
    for ref, data in shard.video_payloads(BadRecords(skip_bad=True), [generator] if generator else None):
        if ref.uuid not in truth:
            continue
        prompt, pid, attrs = truth[ref.uuid]
        yield QueryTruth(ref.member, data, ref.uuid, prompt, pid, attrs, ref.generator)
        n += 1
        if limit is not None and n >= limit:
            return


def load_queries(shard: Shard, *, generator: str | None = None, limit: int | None = None,
                 strip_flags: bool = False) -> list[QueryTruth]:
    """All of :func:`iter_queries` as a list (benchmarks and tests with small shards)."""
    return list(iter_queries(shard, generator=generator, limit=limit, strip_flags=strip_flags))


def direction_given_axis(predicted: list[dict], truth: list[dict]) -> np.ndarray:
    """Per query whose top-1 moves on the true motion's axis: 1.0 if the direction is right too.

    Whole-prompt matches can get a direction right without seeing motion (the other attributes
    identify the prompt); this isolates direction: a model blind to frame order scores 0.5."""
    out = []
    for p, t in zip(predicted, truth, strict=True):
        ta, pa = t.get("action"), (p or {}).get("action")
        if ta in MOTION_AXIS and pa in MOTION_AXIS and MOTION_AXIS[pa] == MOTION_AXIS[ta]:
            out.append(1.0 if pa == ta else 0.0)
    return np.array(out)


def _summarise(per_query: dict[str, np.ndarray], attrs: dict[str, np.ndarray], direction: np.ndarray,
               n: int, axis_direction: np.ndarray = np.array([])) -> dict:
    out: dict = {"n_queries": n}
    intervals = {}
    for name, values in per_query.items():
        out[name] = float(values.mean()) if len(values) else None
        intervals[name] = list(metrics.bootstrap_ci(values)) if len(values) else None
    out["attribute_accuracy"] = {k: float(v.mean()) for k, v in attrs.items()} if attrs else {}
    intervals["attribute_accuracy"] = {k: list(metrics.bootstrap_ci(v)) for k, v in attrs.items()} if attrs else {}
    out["direction_accuracy"] = float(direction.mean()) if len(direction) else None
    intervals["direction_accuracy"] = list(metrics.bootstrap_ci(direction)) if len(direction) else None
    out["direction_given_axis"] = float(axis_direction.mean()) if len(axis_direction) else None
    out["n_direction_given_axis"] = int(len(axis_direction))
    intervals["direction_given_axis"] = list(metrics.bootstrap_ci(axis_direction)) if len(axis_direction) else None
    out["intervals"] = intervals
    return out


def score_answers(queries: list[QueryTruth], results: list[QueryResult], bank_ids: set[str],
                  bank_attributes: Callable[[str], dict | None]) -> EvalReport:
    """Metrics of answered queries, split by whether the true prompt is in the bank."""
    minilm = create_encoder("minilm")
    report = EvalReport()
    pairs = list(zip(queries, results, strict=True))
    records = {id(q): {"name": q.name, "generator": q.generator, "in_bank": q.prompt_id in bank_ids, "rank": None,
                       "cosine": None, "attributes": q.attributes} for q in queries}
    errors = sum(1 for _, r in pairs if r.error or not r.candidates)
    for in_bank in (True, False):
        everyone = [(q, r) for q, r in pairs if (q.prompt_id in bank_ids) == in_bank]
        group = [(q, r) for q, r in everyone if not r.error and r.candidates]
        failed = len(everyone) - len(group)
        target = report.in_bank if in_bank else report.not_in_bank
        if not everyone:
            target.update({"n_queries": 0, "n_failed": 0})
            continue
        per_query = {}
        if in_bank:
            # a query that failed to decode or returned nothing is a miss, never left out: an encoder
            # that fails on hard clips must not score higher for it
            ranks = [next((c.rank for c in r.candidates if c.prompt_id == q.prompt_id), None) for q, r in everyone]
            for (q, _), rank in zip(everyone, ranks, strict=True):
                records[id(q)]["rank"] = rank
            for k in RECALL_KS:
                per_query[f"recall_at_{k}"] = metrics.recall_at_k(ranks, k)
        if not group:
            target.update(_summarise(per_query, {}, np.array([]), len(everyone)), n_failed=failed)
            continue
        tops = [r.best_prompt for _, r in group]
        refs = [q.prompt for q, _ in group]
        per_query["minilm_cosine"] = metrics.minilm_cosine(tops, refs, minilm.encode_text)
        for (q, _), cos in zip(group, per_query["minilm_cosine"], strict=True):
            records[id(q)]["cosine"] = float(cos)
        per_query["bleu"] = metrics.bleu(tops, refs)
        per_query["rouge_l"] = metrics.rouge_l(tops, refs)
        with_truth = [(q, r) for q, r in group if q.attributes]
        attrs, direction, axis_direction = {}, np.array([]), np.array([])
        if with_truth:
            predicted = [metrics.parse_attributes(r.spliced) if r.spliced else
                         (bank_attributes(r.candidates[0].prompt_id) or metrics.parse_attributes(r.candidates[0].prompt))
                         for _, r in with_truth]
            truth = [q.attributes for q, _ in with_truth]
            attrs = metrics.attribute_matches(predicted, truth)
            directed = [i for i, t in enumerate(truth) if t.get("action") in DIRECTED_ACTIONS]
            direction = attrs["action"][directed] if directed else np.array([])
            axis_direction = direction_given_axis(predicted, truth)
        summary = _summarise(per_query, attrs, direction, len(everyone), axis_direction)
        target.update(summary, n_failed=failed)
    report.per_query = [records[id(q)] for q in queries]
    report.meta = {"errors": errors, "breakdown": breakdown(report.per_query)}
    return report


def direction_probe_pairs(items: list[QueryTruth]) -> list[tuple[QueryTruth, str]]:
    """The directed queries with their motion-reversed prompt."""
    pairs = []
    for q in items:
        swapped = metrics.swap_direction(q.prompt, (q.attributes or {}).get("action", ""))
        if swapped is not None and swapped != q.prompt:
            pairs.append((q, swapped))
    return pairs


def direction_probe_scores(retriever: Retriever, items: list[QueryTruth]) -> np.ndarray:
    """Per directed clip: 1.0 when its vector prefers its true prompt over the motion-reversed one.

    Retrieval metrics can get a direction right without seeing it (the other attributes pin the
    prompt down); this asks the encoder directly. Mean pooling cannot tell a clip from the same
    clip played backwards, so it scores about 0.5 by construction."""
    pairs = direction_probe_pairs(items)
    if not pairs or not retriever.encoder.has_video:
        return np.array([])
    clips = retriever.load_clips([q.data for q, _ in pairs])
    keep = [i for i, c in enumerate(clips) if not isinstance(c, Exception)]
    if not keep:
        return np.array([])
    video = retriever.encoder.encode_videos([clips[i] for i in keep])
    true_t = retriever.encoder.encode_text([pairs[i][0].prompt for i in keep])
    swap_t = retriever.encoder.encode_text([pairs[i][1] for i in keep])
    return (np.sum(video * true_t, axis=1) > np.sum(video * swap_t, axis=1)).astype(np.float64)


def summarise_probe(right: np.ndarray) -> dict:
    if not len(right):
        return {"accuracy": None, "n": 0, "interval": None}
    return {"accuracy": float(right.mean()), "n": int(len(right)), "interval": list(metrics.bootstrap_ci(right))}


def _no_queries_error(index_generators: list[str], shard: Shard, generator: str | None) -> V2PError:
    present = sorted({ref.generator for ref in shard.video_refs(BadRecords(skip_bad=True))})
    asked = f" of generator {generator!r}" if generator else ""
    return V2PError(f"no query videos{asked} in {shard.prompts_path.parent} (its generators: "
                    f"{', '.join(present) or 'none'}; the index holds videos of: {', '.join(index_generators) or 'none'}); "
                    "pass --generator with one the shard has and the index does not")


def _refuse_seen(batch: list[QueryTruth], seen: set[tuple[str, str]], index_generators: list[str]) -> None:
    """Queries that are the index's own videos make R@1 trivially 1.0: refuse them."""
    hits = [q for q in batch if (q.generator, q.uuid) in seen]
    if hits:
        gens = sorted({q.generator for q in hits})
        raise V2PError(f"{len(hits)} of these query videos are in the index itself ({', '.join(gens)} videos, e.g. "
                       f"{hits[0].name}): evaluating on them measures nothing. Use --generator with one the index "
                       f"does not hold (it holds: {', '.join(index_generators)})")


def evaluate(index: str | Path, queries: Shard, *, generator: str | None = None, limit: int | None = None,
             top: int = 10, answer: Answerer | None = None, retriever: Retriever | None = None,
             on_progress: Callable[[str, int, int | None], None] | None = None, batch: int = 64,
             regenerate: bool = False) -> EvalReport:
    """Query ``index`` with the videos of ``queries`` and score the top answers.

    Clips are streamed in batches of ``batch`` (their bytes are dropped once answered). The
    index's own videos are refused as queries, and a shard with no matching videos is an error.
    ``regenerate`` also renders each best answer with the query's generator and compares the
    two clips (:mod:`v2p.eval.regenerate`; synthetic shards only)."""
    progress = on_progress or (lambda stage, advance, total: None)
    retriever = retriever or Retriever(index)
    build = retriever.index.manifest.get("build") or {}
    videos_meta = retriever.index.manifest.get("videos") or {}
    index_generators = list(videos_meta.get("generators") or [])
    seen: set[tuple[str, str]] = set()
    if retriever.index.has_videos:
        vt = retriever.index.videos_table
        seen = set(zip(vt.column("generator").to_pylist(), vt.column("uuid").to_pylist(), strict=True))
    if answer is None:
        def answer(datas: list[bytes], names: list[str]) -> list[QueryResult]:
            return retriever.query_videos(datas, top=max(top, max(RECALL_KS)))
    table = retriever.index.prompts_table
    bank_ids = set(table.column("prompt_id").to_pylist())
    attr_col = table.column("attributes").to_pylist() if "attributes" in table.column_names else None
    row_of = retriever.index.prompt_row_by_id

    def bank_attributes(pid: str) -> dict | None:
        if attr_col is None or pid not in row_of or not attr_col[row_of[pid]]:
            return None
        return json.loads(attr_col[row_of[pid]])

    items: list[QueryTruth] = []
    results: list[QueryResult] = []
    probe: list[np.ndarray] = []
    regenerated: list[dict] = []
    progress("querying", 0, limit)
    stream = iter_queries(queries, generator=generator, limit=limit, strip_flags=bool(build.get("strip_flags")))
    while part := list(itertools.islice(stream, batch)):
        _refuse_seen(part, seen, index_generators)
        answers = answer([q.data for q in part], [q.name for q in part])
        results += answers
        probe.append(direction_probe_scores(retriever, part))
        if regenerate:
            regenerated += regenerate_batch(retriever, part, answers, bank_attributes)
        items += [dataclasses.replace(q, data=b"") for q in part]
        progress("querying", len(part), None)
    if not items:
        raise _no_queries_error(index_generators, queries, generator)
    report = score_answers(items, results, bank_ids, bank_attributes)
    report.meta["direction_probe"] = summarise_probe(np.concatenate(probe) if probe else np.array([]))
    if regenerate:
        if not regenerated:
            raise V2PError(f"--regenerate needs a synthetic shard (an attributes column and one of the generators "
                           f"{', '.join(GENERATORS)}); {queries.prompts_path} has neither")
        by_name = {r["name"]: r for r in regenerated}
        for rec in report.per_query:
            if rec["name"] in by_name:
                rec["regenerated"] = {k: by_name[rec["name"]][k] for k in ("video_cosine", "ceiling_cosine", "agree")}
        report.meta["regenerate"] = {
            "in_bank": summarise_regeneration([r for r in regenerated if r["prompt_id"] in bank_ids]),
            "not_in_bank": summarise_regeneration([r for r in regenerated if r["prompt_id"] not in bank_ids])}
    report.meta.update({"index": str(index), "queries": str(queries.prompts_path), "generator": generator,
                        "encoder": retriever.index.encoder_spec})
    return report
