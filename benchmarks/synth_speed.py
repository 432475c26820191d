"""Time the synthetic world: N prompts x G generators rendered and encoded into a shard.

Target (issue 2): 1,000 prompts x 3 generators in under 2 minutes on 2 cores.
Usage: python benchmarks/synth_speed.py [--n 1000] [--generators pika,vc2,ms] [--out bench-out]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402

from v2p.data.synth.writer import write_synthetic_shard  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--generators", default="pika,vc2,ms")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    gens = args.generators.split(",")
    shard = Path(args.out) / "synth-speed-shard"
    shutil.rmtree(shard, ignore_errors=True)
    t0 = time.perf_counter()
    result = write_synthetic_shard(shard, args.n, seed=0, generators=gens, workers=args.workers or None)
    seconds = time.perf_counter() - t0
    size_mb = sum(p.stat().st_size for p in shard.iterdir()) / 2**20
    row = {"prompts": args.n, "generators": len(gens), "videos": result.n_videos, "seconds": seconds,
           "videos_per_s": result.n_videos / seconds, "shard_MB": size_mb, "target_s": 120.0,
           "meets_target": seconds < 120.0 if args.n == 1000 and len(gens) == 3 else "n/a"}
    print_table([row], "synthetic shard rendering")
    write_json(Path(args.out) / "synth_speed.json", {"result": row})
    shutil.rmtree(shard, ignore_errors=True)


if __name__ == "__main__":
    main()
