"""Prompt-index search on real-model vectors, with the queries v2p really gets: clips.

Bank: the first ``--n`` prompt vectors of the MiniLM cache that ``benchmarks/scale_vectors.py``
fills (synthetic grammar prompts, real all-MiniLM-L6-v2 weights). Queries, three kinds:
``text`` (500 unseen prompts, MiniLM), ``clip:v2p-tiny`` and ``clip:v2p-sight`` (held-out
synthetic clips, seed 2001, pooled into the text space as ``v2p query`` does). For exact
search (``Flat``) and each index the tuner would consider under ``--budget``, it reports build
time, size, and per query kind: recall@10 against exact search at FAISS's usual nprobe 32 and at
the nprobe the tuner (``v2p/index/tune.py``) picks for ``--target``, with the latency of one
query per call and batched throughput, all measured side by side in one run.

Usage: python benchmarks/scale_search.py [--n 1670000] [--budget 1G] [--cache bench-out/scale-cache]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402
from scale_vectors import BLOCK, cache_folder, cached_blocks, load_vectors  # noqa: E402

from v2p.index import faiss_ops  # noqa: E402
from v2p.index.select import candidate_factories, parse_size, training_size  # noqa: E402
from v2p.index.tune import TuneResult, better, exact_neighbors, recall_at_k, sweep  # noqa: E402

QUERY_SEED = 2001


def query_vectors(out: Path, clips: int) -> dict[str, np.ndarray]:
    """Text and clip queries, computed once and cached beside the results."""
    path = out / f"scale-queries-{clips}.npz"
    if path.exists():
        return dict(np.load(path))
    from v2p.data.bad_records import BadRecords
    from v2p.data.frames import sample_frames
    from v2p.data.shard import open_shard
    from v2p.data.synth.writer import synth_prompt_range, write_synthetic_shard
    from v2p.embed.factory import create_encoder

    text = create_encoder("minilm").encode_text([p.prompt for p in synth_prompt_range(0, 500, QUERY_SEED)])
    shard = out / "scale-query-clips"
    if not (shard / "prompts.csv").exists():
        write_synthetic_shard(shard, clips, seed=QUERY_SEED, generators=["pika"], overwrite=True)
    payloads = [data for _, data in open_shard(shard).video_payloads(BadRecords())][:clips]
    found = {"text": text}
    for spec in ("v2p-tiny", "v2p-sight"):
        enc = create_encoder(spec)
        frames = [sample_frames(d, enc.num_frames, name="clip.mp4", short_side=enc.frame_short_side)
                  for d in payloads]
        found[f"clip:{spec}"] = enc.encode_videos(frames)
        print(f"encoded {len(frames)} query clips with {spec}", flush=True)
    np.savez(path, **found)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=None, help="bank size (default: all cached vectors)")
    ap.add_argument("--cache", default="bench-out/scale-cache")
    ap.add_argument("--budget", default="1G")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--also", default="", help="';'-separated extra factories (e.g. HNSW32,SQ8)")
    ap.add_argument("--factories", default="", help="';'-separated factories to build instead of Flat and the "
                    "tuner's candidates (exploring; no verdict table)")
    ap.add_argument("--train-max", type=int, default=None, help="cap on IVF training vectors (default: the build's rule)")
    ap.add_argument("--max-ms", type=float, default=2.0, help="latency bar for one query per call")
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = args.n or cached_blocks(cache_folder(Path(args.cache))) * BLOCK
    if n == 0:
        sys.exit("no cached vectors: run benchmarks/scale_vectors.py first")
    t0 = time.perf_counter()
    bank = load_vectors(Path(args.cache), n)
    print(f"bank: {n} x {bank.shape[1]} MiniLM vectors ({time.perf_counter() - t0:.0f}s to load)", flush=True)
    queries = query_vectors(out, args.clips)
    truth = {kind: exact_neighbors([bank], q) for kind, q in queries.items()}

    budget = parse_size(args.budget)
    candidates = candidate_factories(n, bank.shape[1], budget)
    factories = ["Flat"] + [f for f in candidates if f != "Flat"]
    factories = list(dict.fromkeys(factories + [f for f in args.also.split(";") if f]))  # each built once
    if args.factories:
        factories, candidates = [f for f in args.factories.split(";") if f], []
    rows, chosen = [], {}
    for factory in factories:
        t0 = time.perf_counter()
        size = min(training_size(factory, n), args.train_max or n)
        train = bank[np.linspace(0, n - 1, size).astype(np.int64)]
        index = faiss_ops.build_index(factory, bank.shape[1], train, (bank[s:s + 200_000] for s in range(0, n, 200_000)))
        build_s = time.perf_counter() - t0
        path = out / f"scale_{factory.replace(',', '_')}.faiss"
        faiss_ops.write_index(index, str(path))
        size_mb = path.stat().st_size / 2**20
        path.unlink()
        for kind, q in queries.items():
            default = recall_at_k(faiss_ops.search(index, q, 10)[1], truth[kind])
            tuned = sweep(index, factory, q, truth[kind], target=args.target, source=kind)
            t1 = time.perf_counter()
            faiss_ops.search(index, q, 10, **faiss_ops.search_kwargs(tuned.params))
            qps = len(q) / (time.perf_counter() - t1)
            if factory in candidates and kind.startswith("clip:") and better(chosen.get(kind), tuned):
                chosen[kind] = tuned
            rows.append({"factory": factory, "queries": kind, "size_MB": round(size_mb, 1),
                         "build_s": round(build_s, 1), "recall@10_nprobe32": round(default, 3),
                         "tuned": params_text(tuned.params),
                         "recall@10_tuned": tuned.recall_at_10, "ms_1q": round(tuned.latency_ms, 3),
                         "batch_qps": round(qps), "met": tuned.met})
            print_table(rows[-1:], f"{factory} / {kind}")
        del index
        gc.collect()
    print_table(rows, f"prompt index, {n} x {bank.shape[1]} real MiniLM vectors, budget {args.budget}, "
                      f"target recall@10 {args.target}")
    verdicts = [verdict(kind, result, args.max_ms) for kind, result in chosen.items()]
    if verdicts:
        print_table(verdicts, f"the tuner's choice per clip encoder (candidates: {', '.join(candidates)}), "
                          f"bar: recall@10 >= {args.target} at <= {args.max_ms} ms within {args.budget}")
    write_json(out / ("scale_search-explore.json" if args.factories else "scale_search.json"), {"n": n, "dim": int(bank.shape[1]), "budget": args.budget,
                                           "target": args.target, "max_ms": args.max_ms,
                                           "candidates": candidates, "rows": rows, "chosen": verdicts})


def params_text(params: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in params.items()) or "exact"


def verdict(kind: str, result: TuneResult, max_ms: float) -> dict:
    """One clip encoder's auto-chosen index against the bar (every candidate fits the budget)."""
    return {"queries": kind, "chosen": result.factory,
            "tuned": params_text(result.params),
            "recall@10": result.recall_at_10, "ms_1q": round(result.latency_ms, 3),
            "meets_bar": bool(result.met and result.latency_ms <= max_ms)}


if __name__ == "__main__":
    main()
