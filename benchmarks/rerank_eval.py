"""Plain retrieval vs hand-made rerank terms vs the learned cross-encoder vs splice, side by side
on the same held-out queries, with regenerate-and-compare and the paired R@1 gain.

Test shard: seed 777 (see _common.heldout_world), index by v2p-tiny over ms + vc2 videos of the
first 1,600 prompts, 500 pika query videos (a generator the index does not hold; the queries are
never used for training or tuning). The cross-encoder is trained by `v2p rerank train` on the
index's own ms/vc2 videos (leave-one-out mining), as a user would train it on their bank; the
hand-made term weights were tuned on another shard (benchmarks/rerank_tune.py, seed 2024). The
bank LM is trained on the index's own prompts. Paired bootstrap: the same queries resampled for
both modes, so the interval is of the gain itself.
``--encoder v2p-tiny+image`` builds the same index with MobileNetV1 image embeddings stored beside
v2p-tiny's frame vectors (retrieval unchanged; the cross-encoder reads both), and writes
``rerank_eval-<encoder>.json``. ``--modes`` picks a subset of the modes (plain is always run): hand-made
terms, the image term alone (index + image map, when the index's frames carry pictures), the trained
defaults (cross-encoder, plus the image term when it earned its place) and splice.
Usage: python benchmarks/rerank_eval.py [--out bench-out] [--encoder v2p-tiny] [--modes terms,image,cross,splice]
       [--retrain] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import encoder_suffix, heldout_index, heldout_world, print_table, v2p_cli, write_json  # noqa: E402

from v2p.data.shard import open_shard  # noqa: E402
from v2p.eval import metrics  # noqa: E402
from v2p.eval.runner import evaluate  # noqa: E402
from v2p.rerank.cross import CROSS_DIR  # noqa: E402
from v2p.rerank.reranker import RerankWeights, make_reranker  # noqa: E402
from v2p.retrieval.search import Retriever  # noqa: E402

ALL_TERMS = "frame_max=0.25,consensus=0.25,fluency=0.25"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--retrain", action="store_true", help="train the cross-encoder again even if the index has one")
    ap.add_argument("--limit", type=int, default=None, help="at most N query videos")
    ap.add_argument("--encoder", default="v2p-tiny", help="the index's encoder spec (v2p-tiny or v2p-tiny+image)")
    ap.add_argument("--modes", default="terms,image,cross,splice",
                    help="modes besides plain: terms, image, cross, splice")
    args = ap.parse_args()
    out = Path(args.out) / "heldout"
    _, queries = heldout_world(out)
    index = heldout_index(out, "temporal" + encoder_suffix(args.encoder), args.encoder, with_lm=True)
    training = None
    if args.retrain or not (index / CROSS_DIR / "model.safetensors").is_file():
        t0 = time.perf_counter()
        training = json.loads(v2p_cli("rerank", "train", str(index), "--json"))
        training["wall_seconds"] = time.perf_counter() - t0
    else:
        training = json.loads((index / CROSS_DIR / "training.json").read_text())
    retriever = Retriever(index)
    shard = open_shard(queries)

    def answerer(**kw):
        reranker, _ = make_reranker(retriever, **kw)
        return lambda datas, names: reranker.query_videos(datas, top=10, splice=kw.get("splice", False))

    chosen = set(args.modes.split(",")) if args.modes else set()
    unknown = chosen - {"terms", "image", "cross", "splice"}
    if unknown:
        ap.error(f"unknown mode(s) {', '.join(sorted(unknown))}; choose from terms, image, cross, splice")
    image_weight = (training.get("image_map") or {}).get("term_weight") or 0.0
    optional = {"terms": ("rerank, hand-made terms", lambda: answerer(weights=ALL_TERMS, cross="none")),
                "image": ("rerank, image term alone", lambda: answerer(weights=RerankWeights(index=1.0,
                                                                                             image=image_weight))),
                "cross": ("rerank, trained defaults (cross-encoder + image term)", lambda: answerer()),
                "splice": ("splice (trained defaults' order)", lambda: answerer(splice=True))}
    modes = {"plain": None, **{label: make() for key, (label, make) in optional.items() if key in chosen}}
    reports, rows = {}, []
    for mode, answer in modes.items():
        print(f"evaluating: {mode}", flush=True)
        reports[mode] = evaluate(index, shard, generator="pika", limit=args.limit, retriever=retriever,
                                 answer=answer, regenerate=True)
    plain_hits = _hits(reports["plain"])
    for mode, rep in reports.items():
        r, nb = rep.in_bank, rep.not_in_bank
        gain = metrics.paired_bootstrap_ci(plain_hits, _hits(rep))
        regen_in, regen_nb = rep.meta["regenerate"]["in_bank"], rep.meta["regenerate"]["not_in_bank"]
        rows.append({"mode": mode, "R@1": r["recall_at_1"], "R@1 CI": _ci(r, "recall_at_1"),
                     "R@1 gain vs plain [paired 95%]": f"{gain[0]:+.3f} [{gain[1]:+.3f}, {gain[2]:+.3f}]",
                     "R@5": r["recall_at_5"], "cos in bank": r["minilm_cosine"],
                     "cos not in bank": nb.get("minilm_cosine"),
                     "regen cos in bank": regen_in.get("video_cosine"),
                     "regen cos not in bank": regen_nb.get("video_cosine"),
                     "all attrs right, not in bank": regen_nb.get("all_attributes_agree"),
                     "unparseable": regen_in.get("parse_failures", 0) + regen_nb.get("parse_failures", 0)})
    print_table(rows, f"plain / rerank / cross-encoder / splice, held-out shard (seed 777), pika queries, "
                      f"index by {args.encoder}")
    ceiling = reports["plain"].meta["regenerate"]["in_bank"].get("ceiling_cosine")
    print(f"\nregenerated-clip cosine ceiling (two renders of the true prompt): {ceiling:.3f}")
    probe = frame_vector_probe(retriever, shard)
    print_table(probe, "what the index's per-frame vectors can tell (linear probe: fit on the bank's videos, "
                       "scored on the pika queries)")
    hardest = reports["plain"].meta["breakdown"]["hardest"]
    print_table([{k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in h.items()} for h in hardest],
                "hardest groups for plain retrieval (R@1, in-bank queries)")
    write_json(out / f"rerank_eval{encoder_suffix(args.encoder)}.json",
               {"encoder": args.encoder, "rows": rows, "training": training, "regenerate_ceiling": ceiling,
                "frame_vector_probe": probe, "reports": {m: rep.as_dict() for m, rep in reports.items()}})


def frame_vector_probe(retriever, shard) -> list[dict]:
    """Per attribute: how well a logistic regression on a clip's per-frame vectors (flattened)
    recovers it, fitted on the bank's own videos and scored on the query clips. A reranker that
    reads these vectors cannot tell apart what they do not carry."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from v2p.eval.runner import load_queries

    index = retriever.index
    bank = np.asarray(index.video_frames, np.float32)
    prompt_rows = index.videos_table.column("prompt_row").to_numpy()
    attrs = [json.loads(a) for a in index.prompts_table.column("attributes").to_pylist()]
    queries = load_queries(shard, generator="pika")
    frames = retriever.encoder.encode_frames(retriever.load_clips([q.data for q in queries]))
    x_bank, x_query = bank.reshape(len(bank), -1), frames.reshape(len(frames), -1)
    scaler = StandardScaler().fit(x_bank)
    rows = []
    for name in ("shape", "colour", "count", "action", "scene", "camera", "style"):
        y_bank = [str(attrs[r][name]) for r in prompt_rows]
        y_query = [str(q.attributes[name]) for q in queries]
        clf = LogisticRegression(max_iter=3000, C=0.1).fit(scaler.transform(x_bank), y_bank)
        chance = max(y_query.count(v) for v in set(y_query)) / len(y_query)
        rows.append({"attribute": name, "probe accuracy": float(clf.score(scaler.transform(x_query), y_query)),
                     "majority class": chance})
    return rows


def _hits(report) -> list[float]:
    """Per in-bank query (in query order): 1.0 when the truth is ranked first."""
    return [1.0 if r["rank"] == 1 else 0.0 for r in report.per_query if r["in_bank"]]


def _ci(group: dict, key: str) -> str:
    iv = group["intervals"].get(key)
    return f"[{iv[0]:.3f}, {iv[1]:.3f}]" if iv else ""


if __name__ == "__main__":
    main()
