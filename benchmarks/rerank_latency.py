"""What --rerank and --splice add per query on CPU, K = 50 candidates, model loading excluded.

Clips are decoded and encoded once beforehand (the same for every mode); then, one query at a
time: plain search; search + rerank (all terms on, bank LM included); search + rerank + splice;
and, when the index has one (`v2p rerank train`; benchmarks/rerank_eval.py trains it), the
learned cross-encoder alone, and the image term (the index's image map, with retrieval's
score) alone; with ``--encoder v2p-tiny+image`` also what the stored image embedding costs to
encode per query clip. Targets: rerank + splice together add under 300 ms per query (issue 5);
the learned reranker at most 50 ms for K = 50 (issue 14).
Usage: python benchmarks/rerank_latency.py [--queries 50] [--encoder v2p-tiny] [--out bench-out]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import encoder_suffix, heldout_index, heldout_world, print_table, write_json  # noqa: E402

from v2p.data.shard import open_shard  # noqa: E402
from v2p.eval.runner import load_queries  # noqa: E402
from v2p.rerank.lm import load_fluency_model  # noqa: E402
from v2p.rerank.cross import CROSS_DIR, load_cross_reranker  # noqa: E402
from v2p.rerank.image_map import ImageMap  # noqa: E402
from v2p.rerank.reranker import CROSS_TUNED, DEFAULT_K, Reranker, RerankWeights  # noqa: E402
from v2p.rerank.splice import splice_prompt  # noqa: E402
from v2p.retrieval.search import Retriever  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--encoder", default="v2p-tiny", help="the index's encoder spec (v2p-tiny or v2p-tiny+image)")
    args = ap.parse_args()
    out = Path(args.out) / "heldout"
    _, queries_dir = heldout_world(out)
    index = heldout_index(out, "temporal" + encoder_suffix(args.encoder), args.encoder, with_lm=True)
    retriever = Retriever(index)
    weights = RerankWeights(index=1.0, frame_mean=0.25, frame_max=0.25, consensus=0.5, fluency=0.1)
    reranker = Reranker(retriever, weights, fluency=load_fluency_model("bank", index))
    queries = load_queries(open_shard(queries_dir), generator="pika", limit=args.queries)
    enc = retriever.encoder
    frames = enc.encode_frames(retriever.load_clips([q.data for q in queries]))
    pooled, frame_text = enc.pool(frames), enc.frames_in_text_space(frames)
    reranker.metric_encoder  # load once, outside the timings
    cross_model = load_cross_reranker(index, retriever.index.encoder_spec, enc.fingerprint)
    cross = Reranker(retriever, CROSS_TUNED, cross=cross_model) if cross_model is not None else None
    image_map = ImageMap.load(index / CROSS_DIR)
    image = (Reranker(retriever, RerankWeights(index=1.0, image=image_map.term_weight or 1.0), image_map=image_map)
             if image_map is not None else None)
    times = {"plain search": [], "rerank (added)": [], "splice (added)": []}
    if cross is not None:
        times["cross-encoder rerank (added)"] = []
    if image is not None:
        times["image term rerank (added)"] = []
    embedder = getattr(enc, "embedder", None)  # v2p-tiny+image: the MobileNetV1 part of encoding
    if embedder is not None:
        clips = retriever.load_clips([q.data for q in queries])
        times["image embedding of the query clip (8 frames, added to encoding)"] = []
        for clip in clips:
            t0 = time.perf_counter()
            embedder([clip])
            times["image embedding of the query clip (8 frames, added to encoding)"].append(time.perf_counter() - t0)
    for i in range(len(queries)):
        t0 = time.perf_counter()
        cands = retriever.search(pooled[i:i + 1], top=DEFAULT_K, pool_size=DEFAULT_K)[0]
        t1 = time.perf_counter()
        ranked = reranker.rerank(cands, frame_text[i], DEFAULT_K)
        t2 = time.perf_counter()
        splice_prompt(pooled[i], ranked, enc, fluency=reranker.fluency)
        t3 = time.perf_counter()
        if cross is not None:
            t4 = time.perf_counter()
            cross.rerank(cands, frame_text[i], DEFAULT_K, frames=frames[i])
            times["cross-encoder rerank (added)"].append(time.perf_counter() - t4)
        if image is not None:
            t5 = time.perf_counter()
            image.rerank(cands, frame_text[i], DEFAULT_K, frames=frames[i])
            times["image term rerank (added)"].append(time.perf_counter() - t5)
        times["plain search"].append(t1 - t0)
        times["rerank (added)"].append(t2 - t1)
        times["splice (added)"].append(t3 - t2)
    times["rerank + splice (added)"] = [a + b for a, b in zip(times["rerank (added)"], times["splice (added)"],
                                                               strict=True)]
    rows = [{"step": k, "mean_ms": 1000 * float(np.mean(v)), "p50_ms": 1000 * float(np.median(v)),
             "p95_ms": 1000 * float(np.percentile(v, 95))} for k, v in times.items()]
    print_table(rows, f"per query, K={DEFAULT_K}, {len(queries)} queries, bank of "
                      f"{retriever.index.manifest['prompts']['count']} prompts")
    write_json(out / f"rerank_latency{encoder_suffix(args.encoder)}.json",
               {"encoder": args.encoder, "rows": rows, "weights": weights.__dict__})


if __name__ == "__main__":
    main()
