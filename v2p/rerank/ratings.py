"""Ratings teach the ranking: fusion weights fitted to what users rated good and bad.

Every answer shown by ``v2p serve`` carries each candidate's ranking features (text z, video
z, camera agreement: :data:`v2p.retrieval.search.FEATURES`) and the page sends them back with a
rating. A rating makes preference pairs: the prompt rated good should rank above every other
prompt shown with it; a prompt rated bad below every other. A logistic model on the feature
differences of those pairs (no intercept: only differences matter) gives the weights that best
order them; they are shrunk towards the current weights in proportion to how few rated queries
there are, and written beside the index (``feedback_weights.json``), where every Retriever of
that index picks them up unless told not to (``--no-feedback-weights``).

Why weights, not per-prompt bonuses: the weights say how much to trust each path on *this*
bank (how many of its prompts have videos, how reliable the camera reading is), which carries
over to clips nobody has rated yet.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from v2p.errors import V2PError
from v2p.retrieval.search import FEATURES, FusionWeights

WEIGHTS_FILE = "feedback_weights.json"
SHRINK_QUERIES = 50  # prior strength of the current weights, in rated queries


def _vector(features: dict | None) -> np.ndarray | None:
    if not features:
        return None
    return np.array([float(features.get(k) or 0.0) for k in FEATURES])


def preference_pairs(rows: list[dict]) -> tuple[np.ndarray, int]:
    """(feature differences "preferred minus other" [n_pairs, 3], rated queries used) from rating rows
    (dicts with query_id, prompt_id, rating, shown = [{prompt_id, features}, ...])."""
    by_query: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_query[r["query_id"]].append(r)
    diffs, used = [], 0
    for ratings in by_query.values():
        shown = next((r["shown"] for r in ratings if r.get("shown")), None)
        if not shown:
            continue
        vectors = {s["prompt_id"]: _vector(s.get("features")) for s in shown if s.get("prompt_id")}
        vectors = {k: v for k, v in vectors.items() if v is not None}
        before = len(diffs)
        for r in ratings:
            me = vectors.get(r.get("prompt_id"))
            if me is None:
                continue
            for other_id, other in vectors.items():
                if other_id == r["prompt_id"]:
                    continue
                diffs.append(me - other if r["rating"] > 0 else other - me)
        used += len(diffs) > before
    return (np.array(diffs) if diffs else np.empty((0, len(FEATURES)))), used


def fit_weights(diffs: np.ndarray, n_queries: int, base: FusionWeights, *, l2: float = 1.0) -> FusionWeights:
    """Weights ordering the preference pairs (logistic, no intercept), on the base weights' scale
    (sum of absolute weights kept) and shrunk towards them: n / (n + SHRINK_QUERIES) of the fit."""
    from sklearn.linear_model import LogisticRegression

    if len(diffs) < 2 or n_queries == 0:
        raise V2PError(f"too few usable ratings to fit weights ({n_queries} rated queries with their candidates)")
    x = np.concatenate([diffs, -diffs])
    y = np.concatenate([np.ones(len(diffs)), np.zeros(len(diffs))])
    coef = LogisticRegression(fit_intercept=False, C=1.0 / l2).fit(x, y).coef_[0]
    base_vec = np.array([getattr(base, k) for k in FEATURES])
    scale = np.abs(base_vec).sum() / max(np.abs(coef).sum(), 1e-9)
    trust = n_queries / (n_queries + SHRINK_QUERIES)
    fitted = trust * coef * scale + (1 - trust) * base_vec
    return FusionWeights(**{k: float(v) for k, v in zip(FEATURES, fitted, strict=True)})


def read_rating_rows(db: str | Path) -> list[dict]:
    """Rating rows of a feedback DuckDB file, ``shown`` decoded."""
    import duckdb

    try:
        with duckdb.connect(str(db), read_only=True) as con:
            cur = con.execute("SELECT query_id, prompt_id, rating, shown FROM ratings")
            rows = [dict(zip(("query_id", "prompt_id", "rating", "shown"), r, strict=True)) for r in cur.fetchall()]
    except duckdb.Error as exc:
        raise V2PError(f"{db}: not a v2p feedback file ({str(exc).splitlines()[0]})") from None
    for r in rows:
        r["shown"] = json.loads(r["shown"]) if r["shown"] else None
    return rows


def fit_from_feedback(db: str | Path, index: str | Path, base: FusionWeights = FusionWeights()) -> dict:
    """Fit weights to a feedback file and write them beside ``index``; returns what was written."""
    diffs, n_queries = preference_pairs(read_rating_rows(db))
    weights = fit_weights(diffs, n_queries, base)
    record = {"weights": asdict(weights), "base": asdict(base), "rated_queries": n_queries, "pairs": int(len(diffs)),
              "feedback": str(Path(db).resolve()),
              "fitted": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (Path(index) / WEIGHTS_FILE).write_text(json.dumps(record, indent=2))
    return record


def serving_weights(index: str | Path, use_feedback: bool = True) -> FusionWeights:
    """What a query of ``index`` ranks with: its fitted weights when present and wanted, else the defaults."""
    fitted = load_feedback_weights(index) if use_feedback else None
    return fitted or FusionWeights()


def load_feedback_weights(index: str | Path) -> FusionWeights | None:
    """The weights fitted to this index's ratings, if any."""
    path = Path(index) / WEIGHTS_FILE
    if not path.is_file():
        return None
    try:
        return FusionWeights(**json.loads(path.read_text())["weights"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise V2PError(f"{path}: unreadable fitted weights ({exc}); delete it or refit with 'v2p feedback fit'") from None
