"""Do ratings improve the ranking? A simulated user rates answers on a validation world, the fusion
weights are fitted to those ratings (`v2p feedback fit`), and the gain is measured on a held-out world.

Both worlds are set up like a real deployment over VidProM with only some archives downloaded:
a bank of N prompts of which only a fraction has a video (ms), queried with clips of another
generator (t2vz). The simulated user sees the top 5 of each validation query and rates the true
prompt good when it is there, else the first prompt bad (ground truth, as the issue asks);
ratings go through the real feedback store (DuckDB). Held-out: R@1 and R@5 with the default
weights and with the fitted ones, on the same queries, with paired 95% bootstrap intervals.

    python benchmarks/feedback_gain.py [--n 600] [--with-video 240] [--queries 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import print_table, write_json  # noqa: E402

from v2p.data.shard import open_shard  # noqa: E402
from v2p.data.synth.writer import write_synthetic_shard  # noqa: E402
from v2p.eval.metrics import bootstrap_ci  # noqa: E402
from v2p.eval.runner import load_queries  # noqa: E402
from v2p.index.build import BuildConfig, build_index  # noqa: E402
from v2p.rerank.ratings import fit_from_feedback, load_feedback_weights  # noqa: E402
from v2p.retrieval.search import FusionWeights, Retriever  # noqa: E402
from v2p.web.feedback import FeedbackStore, Rating  # noqa: E402


def world(root: Path, seed: int, args) -> tuple[Path, list]:
    write_synthetic_shard(root / "bank", args.n, seed=seed, generators=["ms"], video_sample=args.with_video)
    write_synthetic_shard(root / "queries", args.n, seed=seed, generators=["t2vz"], video_sample=args.queries)
    build_index(open_shard(root / "bank"), root / "index", BuildConfig(encoder=args.encoder, videos=True))
    return root / "index", load_queries(open_shard(root / "queries"), generator="t2vz")


def ranks(retriever: Retriever, queries: list, top: int = 10) -> list[int | None]:
    out = []
    for s in range(0, len(queries), 32):
        part = queries[s:s + 32]
        for q, r in zip(part, retriever.query_videos([q.data for q in part], top=top), strict=True):
            out.append(next((c.rank for c in r.candidates if c.prompt_id == q.prompt_id), None))
    return out


def simulate_user(retriever: Retriever, queries: list, store: FeedbackStore, shown: int = 5) -> int:
    n = 0
    for s in range(0, len(queries), 32):
        part = queries[s:s + 32]
        for q, r in zip(part, retriever.query_videos([q.data for q in part], top=shown), strict=True):
            if not r.candidates:
                continue
            seen = [{"prompt_id": c.prompt_id, "rank": c.rank, "features": c.features} for c in r.candidates]
            hit = next((c for c in r.candidates if c.prompt_id == q.prompt_id), None)
            target, rating = (hit, 1) if hit is not None else (r.candidates[0], -1)
            store.add(Rating(uuid.uuid4().hex, rating, target.prompt_id, target.prompt, target.rank, shown=seen))
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--with-video", type=int, default=240, help="bank prompts that have a video")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--encoder", default="v2p-tiny")
    ap.add_argument("--validation-seed", type=int, default=2024)
    ap.add_argument("--test-seed", type=int, default=777)
    ap.add_argument("--out", type=Path, default=Path("bench-out/feedback_gain.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        val_index, val_queries = world(tmp / "val", args.validation_seed, args)
        test_index, test_queries = world(tmp / "test", args.test_seed, args)
        store = FeedbackStore(tmp / "ratings.duckdb")
        rated = simulate_user(Retriever(val_index), val_queries, store)
        record = fit_from_feedback(tmp / "ratings.duckdb", val_index)
        fitted = load_feedback_weights(val_index)
        base = ranks(Retriever(test_index, weights=FusionWeights()), test_queries)
        tuned = ranks(Retriever(test_index, weights=fitted), test_queries)
    rows, detail = [], {}
    for k in (1, 5):
        a = np.array([1.0 if r is not None and r <= k else 0.0 for r in base])
        b = np.array([1.0 if r is not None and r <= k else 0.0 for r in tuned])
        lo, hi = bootstrap_ci(b - a)
        rows.append({"metric": f"R@{k}", "default weights": float(a.mean()), "fitted to ratings": float(b.mean()),
                     "gain": float((b - a).mean()), "gain 95% CI": f"[{lo:+.3f}, {hi:+.3f}]"})
        detail[f"recall_at_{k}"] = {"default": float(a.mean()), "fitted": float(b.mean()), "gain_ci": [lo, hi]}
    print(f"validation: {rated} rated queries -> weights {asdict(fitted)} (default {asdict(FusionWeights())})")
    print_table(rows, f"held-out world (seed {args.test_seed}): {len(test_queries)} t2vz queries, bank {args.n} prompts, "
                      f"{args.with_video} with a video")
    write_json(args.out, {"args": vars(args) | {"out": str(args.out)}, "fit": record, "rows": rows, "detail": detail})


if __name__ == "__main__":
    main()
