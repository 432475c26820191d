"""What embedding all of VidProM costs: measured rates on this machine, turned into hours.

Measured here, each stage alone: decoding (8 frames sampled per clip, one core) on clips the
size of VidProM's (``--width`` x ``--height``, 3 s at 24 fps, H.264, moving content so the codec
works as hard as on real footage), frame encoding per video encoder on this machine's cores, and
prompt encoding (MiniLM, the text side of every encoder). A build overlaps decoding with
encoding (decode threads release the GIL), so the hours assume the cores are shared by CPU
seconds: hours = items x CPU-seconds per item / cores. N machines divide the embedding
(shards are independent; the index assembly is not counted: minutes, see scale_search.py).

GPU rows come only from measurement: ``--gpu-json`` takes the files ``gpu_encode.py`` wrote on a
GPU box (prompts/s and v2p-tiny clips/s on its GPU, clips/s decoded on all its cores). There the
GPU encodes while the cores decode, so a video stage runs at the slower of the two rates.
v2p-sight gets no GPU row: its models are LiteRT CPU kernels.

Usage: python benchmarks/corpus_cost.py [--clips 24] [--out bench-out]
       [--gpu-json bench-out/gpu_encode_clips.json bench-out/gpu_encode_prompts.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402

PROMPTS, VIDEOS = 1_670_000, 6_690_000


def make_clips(folder: Path, n: int, width: int, height: int) -> list[Path]:
    from v2p.data.synth.encode import encode_video

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"clip-{i:03d}.mp4"
        if not path.exists():
            base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
            frames = np.stack([np.roll(base, 3 * t, axis=1) for t in range(72)])
            path.write_bytes(encode_video(frames, 24))
        paths.append(path)
    return paths


def gpu_rates(files: list[Path]) -> dict:
    """The best measured rate of each stage across gpu_encode.py's outputs of one box."""
    best: dict[str, float] = {}
    box = ""
    for f in files:
        data = json.loads(f.read_text())
        box = f"{data['device'].replace('NVIDIA ', '')} box ({data['cores']} cores)"
        for row in data["rows"]:
            key = ("prompts_per_s" if row["stage"].startswith("minilm") else
                   "clips_per_s" if row["stage"].startswith("v2p-tiny") else "decode_per_s")
            best[key] = max(best.get(key, 0.0), row["items_per_s"])
    missing = {"prompts_per_s", "clips_per_s", "decode_per_s"} - set(best)
    if missing:
        sys.exit(f"--gpu-json lacks {', '.join(sorted(missing))}: run gpu_encode.py with --stages prompts,clips")
    return {"box": box, **best}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--height", type=int, default=576)
    ap.add_argument("--encoders", default="v2p-tiny,v2p-sight")
    ap.add_argument("--machines", default="1,10,100")
    ap.add_argument("--gpu-json", nargs="*", default=[], help="gpu_encode.py outputs from one GPU box")
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    out = Path(args.out)
    cores = len(os.sched_getaffinity(0))
    from v2p.data.frames import sample_frames
    from v2p.data.synth.writer import synth_prompt_range
    from v2p.embed.factory import create_encoder

    paths = make_clips(out / f"cost-clips-{args.width}x{args.height}", args.clips, args.width, args.height)
    rates = {}
    text = [p.prompt for p in synth_prompt_range(0, 2000, 3000)]
    minilm = create_encoder("minilm")
    minilm.encode_text(text[:64])
    t = time.perf_counter()
    minilm.encode_text(text)
    rates["prompt_cpu_s"] = (time.perf_counter() - t) * cores / len(text)
    for spec in args.encoders.split(","):
        enc = create_encoder(spec)
        t = time.perf_counter()
        clips = [sample_frames(p, enc.num_frames, short_side=enc.frame_short_side) for p in paths]
        decode_cpu_s = (time.perf_counter() - t) / len(paths)  # one thread: CPU-seconds per clip
        enc.encode_frames(clips[:2])
        t = time.perf_counter()
        enc.encode_frames(clips)
        encode_cpu_s = (time.perf_counter() - t) * cores / len(paths)
        rates[spec] = {"decode_cpu_s": decode_cpu_s, "encode_cpu_s": encode_cpu_s}
        print(f"{spec}: decode {decode_cpu_s * 1000:.0f} ms, encode {encode_cpu_s * 1000:.0f} CPU-ms per clip",
              flush=True)
    rows = []
    for machines in (int(m) for m in args.machines.split(",")):
        row = {"machines": f"{machines} x {cores}-core", "prompts_h": PROMPTS * rates["prompt_cpu_s"] / cores /
               machines / 3600}
        for spec in args.encoders.split(","):
            r = rates[spec]
            row[f"videos_h_{spec}"] = VIDEOS * (r["decode_cpu_s"] + r["encode_cpu_s"]) / cores / machines / 3600
        rows.append({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
    gpu = gpu_rates([Path(f) for f in args.gpu_json]) if args.gpu_json else None
    if gpu:
        for machines in (int(m) for m in args.machines.split(",")):
            row = {"machines": f"{machines} x {gpu['box']}",
                   "prompts_h": PROMPTS / gpu["prompts_per_s"] / machines / 3600}
            for spec in args.encoders.split(","):
                clips_per_s = min(gpu["decode_per_s"], gpu["clips_per_s"]) if spec == "v2p-tiny" else None
                row[f"videos_h_{spec}"] = (round(VIDEOS / clips_per_s / machines / 3600, 2)
                                           if clips_per_s else "CPU models")
            rows.append({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
    print_table(rows, f"hours to embed VidProM ({PROMPTS:,} prompts, {VIDEOS:,} videos, 8 frames each, "
                      f"clips {args.width}x{args.height} 3 s)")
    write_json(out / "corpus_cost.json", {"rates": rates, "cores": cores, "rows": rows, "gpu": gpu,
                                          "clip": [args.width, args.height, 72]})


if __name__ == "__main__":
    main()
