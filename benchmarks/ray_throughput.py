"""Single-process build vs ``--engine ray`` on this machine: videos/s, side by side in one run.

Builds the same synthetic shard (``--prompts`` prompts x 3 generators) twice with ``v2p-tiny``:
once in this process, once on a local Ray instance started for it (``ray.init`` is timed apart,
as a cluster is started once and used for many builds). Reports the embedding throughput and
what Ray adds: start-up, one model per actor, frames and vectors through the object store.

Usage: python benchmarks/ray_throughput.py [--prompts 80] [--encoder v2p-tiny] [--out bench-out]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=80)
    ap.add_argument("--encoder", default="v2p-tiny")
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    import ray

    from v2p.data.shard import open_shard
    from v2p.data.synth.writer import write_synthetic_shard
    from v2p.index.build import BuildConfig, build_index

    work = Path(tempfile.mkdtemp(prefix="v2p-ray-bench-"))
    try:
        write_synthetic_shard(work / "shard", args.prompts, seed=11, workers=1)
        config = BuildConfig(encoder=args.encoder, videos=True, video_chunk=64)
        rows = []
        build_index(open_shard(work / "shard"), work / "warm", config)  # model files in the page cache
        t = time.perf_counter()
        local = build_index(open_shard(work / "shard"), work / "local", config)
        rows.append({"engine": "local", "start_s": 0.0, "build_s": time.perf_counter() - t,
                     "videos_per_s": local.videos / (time.perf_counter() - t)})
        t = time.perf_counter()
        ray.init(num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False, log_to_driver=False)
        start = time.perf_counter() - t
        t = time.perf_counter()
        on_ray = build_index(open_shard(work / "shard"), work / "ray", config, engine="ray")
        build = time.perf_counter() - t
        ray.shutdown()
        rows.append({"engine": on_ray.engine, "start_s": start, "build_s": build, "videos_per_s": on_ray.videos / build})
        print_table(rows, f"{args.encoder}: {local.videos} videos + {local.prompts} prompts, "
                          f"{len(os.sched_getaffinity(0))} cores (build_s includes index assembly)")
        write_json(Path(args.out) / "ray_throughput.json", {"encoder": args.encoder, "videos": local.videos,
                                                             "prompts": local.prompts, "rows": rows})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
