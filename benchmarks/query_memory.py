"""Peak memory of one `query_videos` call over many clips: frames shrunk at decode and 32 clips
at a time (now) against full-resolution frames all decoded before any is encoded (before).

Each mode runs in its own process (peak RSS is per process), side by side in one run:

    python benchmarks/query_memory.py [--copies 200] [--size 1024x576] [--encoder v2p-tiny]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import print_table, write_json  # noqa: E402


def child(args) -> None:
    from v2p.retrieval import search
    from v2p.retrieval.search import Retriever

    retriever = Retriever(args.index)
    if args.mode == "before":
        retriever.encoder.frame_short_side = None  # keep full-resolution frames
        search.QUERY_CHUNK = 10**9  # decode every clip before encoding any
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    results = retriever.query_videos([args.clip] * args.copies, top=5)
    seconds = time.perf_counter() - t0
    assert all(r.candidates for r in results)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": args.mode, "peak_rss_mb": peak / 1024, "growth_mb": (peak - base) / 1024,
                      "seconds": seconds, "clips": args.copies}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=200)
    ap.add_argument("--size", default="1024x576")
    ap.add_argument("--encoder", default="v2p-tiny")
    ap.add_argument("--out", type=Path, default=Path("bench-out/query_memory.json"))
    ap.add_argument("--child", choices=["now", "before"])
    ap.add_argument("--index")
    ap.add_argument("--clip")
    args = ap.parse_args()
    if args.child:
        args.mode = args.child
        child(args)
        return
    from v2p.data.synth.writer import write_synthetic_shard
    from v2p.data.shard import open_shard
    from v2p.eval.camera_clips import camera_clip, encode_mp4
    from v2p.index.build import BuildConfig, build_index
    from skimage import data

    w, h = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_synthetic_shard(tmp / "shard", 50, seed=3, generators=["ms"])
        build_index(open_shard(tmp / "shard"), tmp / "index", BuildConfig(encoder=args.encoder, videos=True))
        clip = tmp / "clip.mp4"
        clip.write_bytes(encode_mp4(camera_clip(data.astronaut(), "pan_left", frames=48, size=(w, h))))
        rows = []
        for mode in ("before", "now"):
            run = subprocess.run([sys.executable, __file__, "--child", mode, "--index", str(tmp / "index"),
                                  "--clip", str(clip), "--copies", str(args.copies)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(run.stdout.strip().splitlines()[-1])
            rows.append({"mode": mode, "clips": r["clips"], "size": args.size, "peak RSS MB": round(r["peak_rss_mb"]),
                         "growth during call MB": round(r["growth_mb"]), "seconds": round(r["seconds"], 1)})
    print_table(rows, f"query_videos on {args.copies} copies of one {args.size} clip ({args.encoder})")
    write_json(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
