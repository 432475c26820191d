"""Which properties of a video make its prompt hard to recover: metrics grouped by what the clip shows.

A pure function of per-query records (one per evaluated query: whether its prompt is in the
bank, the rank the truth got, the top answer's MiniLM cosine, the generator, the true
attributes), so ``v2p eval --json`` can carry the table and tests can check it on hand-made
records. Groups: every attribute value, the generator, the kind of motion (directed, other
motion, still), whether the camera moves, and in bank vs not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from v2p.eval import metrics

DIRECTED = {"moving left", "moving right", "moving up", "moving down", "growing", "shrinking"}


def motion_kind(action: str | None) -> str | None:
    if action is None:
        return None
    if action in DIRECTED:
        return "directed"
    return "still" if action == "still" else "undirected"


def _groups(record: dict) -> list[tuple[str, str]]:
    attrs = record.get("attributes") or {}
    out = [(name, str(value)) for name, value in sorted(attrs.items())]
    if record.get("generator"):
        out.append(("generator", record["generator"]))
    kind = motion_kind(attrs.get("action"))
    if kind:
        out.append(("motion", kind))
    if "camera" in attrs:
        out.append(("camera motion", "static" if attrs["camera"] == "static" else "moving"))
    out.append(("prompt", "in bank" if record["in_bank"] else "not in bank"))
    return out


def breakdown(records: Sequence[dict], *, min_queries: int = 5) -> dict:
    """``{"groups": [...], "hardest": [...]}``: per (group, value) the query count, R@1 and R@5 of
    its in-bank queries (with a 95% interval for R@1) and the mean top-1 MiniLM cosine of all
    its answered queries; ``hardest`` lists the values with the lowest R@1 among those with at
    least ``min_queries`` in-bank queries."""
    members: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        for key in _groups(r):
            members[key].append(r)
    rows = []
    for (group, value), rs in sorted(members.items()):
        ranks = [r["rank"] for r in rs if r["in_bank"]]
        cos = np.array([r["cosine"] for r in rs if r.get("cosine") is not None], np.float64)
        row = {"group": group, "value": value, "n": len(rs), "n_in_bank": len(ranks),
               "recall_at_1": None, "recall_at_1_ci": None, "recall_at_5": None,
               "minilm_cosine": float(cos.mean()) if len(cos) else None}
        if ranks:
            r1 = metrics.recall_at_k(ranks, 1)
            row.update(recall_at_1=float(r1.mean()), recall_at_1_ci=list(metrics.bootstrap_ci(r1)),
                       recall_at_5=float(metrics.recall_at_k(ranks, 5).mean()))
        rows.append(row)
    ranked = [r for r in rows if r["recall_at_1"] is not None and r["n_in_bank"] >= min_queries]
    hardest = sorted(ranked, key=lambda r: (r["recall_at_1"], -r["n_in_bank"]))[:8]
    return {"groups": rows, "hardest": [{"group": r["group"], "value": r["value"], "recall_at_1": r["recall_at_1"],
                                         "n_in_bank": r["n_in_bank"]} for r in hardest]}
