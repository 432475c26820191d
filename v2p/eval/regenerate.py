"""Regenerate and compare (``v2p eval --regenerate``): judge a predicted prompt by the video it makes.

Text metrics ask whether the predicted prompt *reads* like the true one; a user asks whether
it *makes* the same video. The synthetic world can answer that, because its renderer is a
generator: the predicted prompt (the top-1 answer, or the spliced prompt) is turned into
attributes (the bank's own attributes column for a bank prompt; parsed from free text
otherwise, with parse failures counted), rendered by the query's own generator, and the
regenerated clip is compared with the query clip:

* **video cosine**: the index encoder's same-modal video vectors of the two clips (what the
  video path compares);
* **ceiling**: the same cosine for the *true* prompt rendered again with the same fresh seed,
  i.e. how alike two renders of one prompt are; a perfect answer scores about this;
* **drawn attributes**: per attribute, whether the regenerated clip draws what the query clip
  shows (the renderer draws exactly the attributes it is given), and the share of clips that
  agree in every attribute.

Only synthetic shards (an ``attributes`` column and a known generator) can be regenerated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from v2p.data.synth.grammar import ATTRIBUTE_NAMES
from v2p.data.synth.render import GENERATORS
from v2p.data.synth.writer import render_video_bytes
from v2p.eval import metrics

REGEN_SEED = 90_001  # fresh noise, positions and timing: never the query's own render
NEEDED = ("shape", "colour", "action", "scene")  # a prompt that names none of these cannot be drawn


def _query_index(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def predicted_attributes(result, bank_attributes: Callable[[str], dict | None]) -> tuple[dict | None, bool]:
    """(attributes to render, parsed from free text?) of a result's best prompt; None when the
    prompt does not name what the renderer needs (a parse failure)."""
    if result.spliced:
        attrs, parsed = metrics.parse_attributes(result.spliced), True
    elif result.candidates:
        top = result.candidates[0]
        attrs = bank_attributes(top.prompt_id)
        parsed = attrs is None
        if attrs is None:
            attrs = metrics.parse_attributes(top.prompt)
    else:
        return None, False
    if any(k not in attrs for k in NEEDED):
        return None, parsed
    return {k: attrs[k] for k in ATTRIBUTE_NAMES}, parsed


def regenerate_batch(retriever, queries: Sequence, results: Sequence,
                     bank_attributes: Callable[[str], dict | None]) -> list[dict]:
    """One record per query that can be regenerated (synthetic attributes, known generator):
    ``{name, prompt_id, parsed, parse_failed, video_cosine, ceiling_cosine, agree: {attr: 0/1}}``.
    Query clips are re-decoded from ``q.data``, so call this while the batch still holds its bytes."""
    todo = [(q, r) for q, r in zip(queries, results, strict=True)
            if q.attributes and q.generator in GENERATORS and not r.error and q.data]
    if not todo:
        return []
    records, renders = [], []
    for q, r in todo:
        attrs, parsed = predicted_attributes(r, bank_attributes)
        rec = {"name": q.name, "prompt_id": q.prompt_id, "parsed": parsed, "parse_failed": attrs is None,
               "video_cosine": None, "ceiling_cosine": None, "agree": None}
        idx = _query_index(q.name)
        truth = {k: q.attributes[k] for k in ATTRIBUTE_NAMES}
        renders.append(render_video_bytes(REGEN_SEED, idx, q.generator, truth))
        if attrs is not None:
            renders.append(render_video_bytes(REGEN_SEED, idx, q.generator, attrs))
            rec["agree"] = {k: float(attrs[k] == truth[k]) for k in ATTRIBUTE_NAMES}
        records.append(rec)
    keys = _video_keys(retriever, [q.data for q, _ in todo] + renders)
    query_keys, rest = keys[:len(todo)], keys[len(todo):]
    j = 0
    for i, rec in enumerate(records):
        ceiling = rest[j]
        j += 1
        rec["ceiling_cosine"] = float(query_keys[i] @ ceiling) if ceiling is not None and query_keys[i] is not None \
            else None
        if not rec["parse_failed"]:
            regen = rest[j]
            j += 1
            rec["video_cosine"] = float(query_keys[i] @ regen) if regen is not None and query_keys[i] is not None \
                else None
    return records


def _video_keys(retriever, clips: list[bytes]) -> list[np.ndarray | None]:
    """Unit video vectors of clips decoded exactly as queries are (None where decoding failed)."""
    decoded = retriever.load_clips(clips)
    ok = [i for i, c in enumerate(decoded) if not isinstance(c, Exception)]
    out: list[np.ndarray | None] = [None] * len(clips)
    if ok:
        enc = retriever.encoder
        keys = enc.video_keys(enc.encode_frames([decoded[i] for i in ok]))
        keys = keys / np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
        for i, k in zip(ok, keys, strict=True):
            out[i] = k
    return out


def summarise_regeneration(records: Sequence[dict]) -> dict:
    """Means with 95% intervals; parse failures counted (a failed parse is a failed regeneration)."""
    n = len(records)
    if not n:
        return {"n": 0}
    cos = np.array([r["video_cosine"] for r in records if r["video_cosine"] is not None])
    ceil = np.array([r["ceiling_cosine"] for r in records if r["ceiling_cosine"] is not None])
    parsed = [r for r in records if r["parsed"]]
    agree = [r["agree"] for r in records if r["agree"] is not None]
    out: dict = {"n": n, "n_parsed": len(parsed), "parse_failures": sum(r["parse_failed"] for r in records),
                 "parse_failure_rate": (sum(r["parse_failed"] for r in parsed) / len(parsed)) if parsed else None,
                 "video_cosine": float(cos.mean()) if len(cos) else None,
                 "video_cosine_ci": list(metrics.bootstrap_ci(cos)) if len(cos) else None,
                 "ceiling_cosine": float(ceil.mean()) if len(ceil) else None}
    if agree:
        out["drawn_attribute_agreement"] = {k: float(np.mean([a[k] for a in agree])) for k in ATTRIBUTE_NAMES}
        every = np.array([float(all(a.values())) for a in agree] + [0.0] * out["parse_failures"])
        out["all_attributes_agree"] = float(every.mean())
        out["all_attributes_agree_ci"] = list(metrics.bootstrap_ci(every))
    return out
