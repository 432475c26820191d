"""Peak memory of assembling the video store of a VidProM-scale build (vectors only, no decoding).

Simulates what ``v2p index build --videos`` has on disk after embedding ``--n`` videos: chunk
files of pooled video keys (``--key-dim``, unit vectors clustered like real embeddings) and
float16 per-frame vectors (8 x ``--frame-dim``), as written by the build. Then, in a fresh
process whose peak RSS is reset once its imports are done, runs the build's own assembly
(``IndexBuilder._assemble_index`` for the pooled-video index, chosen under ``--budget`` and
autotuned like the prompt index, and ``_assemble_frames`` for ``video_frames.npy``) and reports
the peak RSS it added beside the sizes of what it wrote. The per-frame file (2 GB at 1M x 8 x
128) is written in streamed appends, never held whole; the index itself is in RAM by design,
within its budget.

Usage: python benchmarks/video_store_memory.py [--n 1000000] [--budget 1G] [--out bench-out]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402

CHUNK = 10_000

ASSEMBLE = """
import json, sys, time
from pathlib import Path
from types import SimpleNamespace
from v2p.data.shard import Shard
from v2p.index.build import BuildConfig, IndexBuilder, _Chunks

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

work, key_dim, frame_dim, budget = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
encoder = SimpleNamespace(dim=key_dim, video_key_dim=key_dim, frame_dim=frame_dim, poolings=("mean",))
builder = IndexBuilder(Shard(work / "none.csv"), work.with_suffix(""), BuildConfig(encoder="v2p-tiny", videos=True,
                       memory_budget=budget), encoder=encoder)
builder.work = work
chunks = _Chunks(work / "videos")
final = work / "final"
final.mkdir(exist_ok=True)
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
t = time.perf_counter()
factory, n, tuned = builder._assemble_index(chunks, "videos", None, final, builder._video_key_queries(chunks))
index_s = time.perf_counter() - t
index_peak = status("VmHWM") - before
t = time.perf_counter()
builder._assemble_frames(chunks, final)
frames_s = time.perf_counter() - t
print(json.dumps({"factory": factory, "n": n, "recall_at_10": tuned.recall_at_10, "params": tuned.params,
                  "index_s": index_s, "frames_s": frames_s, "peak_over_start_mb": status("VmHWM") - before,
                  "index_peak_mb": index_peak,
                  "index_mb": (final / "videos.faiss").stat().st_size / 2**20,
                  "frames_mb": (final / "video_frames.npy").stat().st_size / 2**20}))
"""


def write_chunks(work: Path, n: int, key_dim: int, frame_dim: int) -> None:
    import pyarrow as pa

    from v2p.index.build import _Chunks, _save_npy, _save_parquet

    chunks = _Chunks(work / "videos")
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5_000, key_dim)).astype(np.float32)
    for k, start in enumerate(range(0, n, CHUNK)):
        if chunks.done(k) is not None:
            continue
        m = min(CHUNK, n - start)
        keys = centres[rng.integers(0, len(centres), m)] + 0.8 * rng.standard_normal((m, key_dim), np.float32)
        keys /= np.linalg.norm(keys, axis=1, keepdims=True)
        frames = rng.standard_normal((m, 8, frame_dim), np.float32).astype(np.float16)
        ids = [f"v{start + i}" for i in range(m)]
        _save_npy(chunks.path(k, ".frames.npy"), frames)
        _save_npy(chunks.path(k, ".npy"), keys.astype(np.float32))
        _save_parquet(chunks.path(k, ".parquet"), pa.table({"uuid": ids, "generator": ["sim"] * m,
                                                             "prompt_id": ids, "member": ids}))
        chunks.mark_done(k, {"rows": m, "bad": {}, "outside_limit": 0})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--key-dim", type=int, default=384)
    ap.add_argument("--frame-dim", type=int, default=128)
    ap.add_argument("--budget", default="1G")
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    work = Path(args.out) / f"video-store-{args.n}.partial"
    write_chunks(work, args.n, args.key_dim, args.frame_dim)
    run = subprocess.run([sys.executable, "-c", ASSEMBLE, str(work), str(args.key_dim), str(args.frame_dim),
                          args.budget], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(run.stderr)
    r = json.loads(run.stdout.strip().splitlines()[-1])
    row = {"videos": r["n"], "budget": args.budget, "factory": r["factory"],
           "tuned": ",".join(f"{k}={v}" for k, v in r["params"].items()) or "exact",
           "recall@10": r["recall_at_10"], "index_MB": round(r["index_mb"]), "frames_MB": round(r["frames_mb"]),
           "index_s": round(r["index_s"]), "frames_s": round(r["frames_s"]),
           "peak_RSS_index_MB": round(r["index_peak_mb"]), "peak_RSS_total_MB": round(r["peak_over_start_mb"])}
    print_table([row], "assembling the video store (peak RSS added by the assembly)")
    write_json(Path(args.out) / "video_store_memory.json", {"row": row, "args": vars(args)})


if __name__ == "__main__":
    main()
