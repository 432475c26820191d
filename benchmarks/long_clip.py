"""Sampling frames from a long, large clip: time and peak memory stay bounded by the frames kept.

Writes a ``--minutes``-long clip at ``--height`` (default 10 minutes of 1080p at 24 fps, H.264,
a keyframe every 250 frames as x264 defaults) once under ``--out``, then samples 8 frames in
a fresh process per backend (peak RSS is the process's own maximum, so each backend is measured
alone; the peak is reset after imports through /proc/self/clear_refs, Linux) and reports seconds
and the peak RSS the sampling added, beside the file's size: a reader that loaded the file
whole would add at least the file size. ``--gif-frames`` adds a gif of that many frames.
Usage: python benchmarks/long_clip.py [--minutes 10] [--height 1080] [--out bench-out]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402

PROBE = """
import json, sys, time
from v2p.data.frames import sample_frames

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:  # resets the peak (VmHWM) to the current RSS
    fh.write("5")
t = time.perf_counter()
frames = sample_frames(sys.argv[1], 8, backend=sys.argv[2], short_side=224)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "rss_before_mb": before, "peak_over_before_mb": status("VmHWM") - before,
                  "shape": list(frames.shape)}))
"""


def write_clip(path: Path, minutes: float, height: int, fps: int = 24) -> None:
    import av

    width = height * 16 // 9 // 2 * 2
    total = int(minutes * 60 * fps)
    x = np.linspace(0, 4 * np.pi, width, dtype=np.float32)
    y = np.linspace(0, 2 * np.pi, height, dtype=np.float32)[:, None]
    base = ((np.sin(x + y) * 0.5 + 0.5) * 200).astype(np.uint8)
    t0 = time.perf_counter()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        for k in range(total):
            shift = (k * 7) % width
            frame = np.repeat(np.roll(base, shift, axis=1)[:, :, None], 3, axis=2)
            frame[:40, :200] = (k * 255 // total)  # a level that says which frame this is
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
            if k % 2400 == 0:
                print(f"  writing {path.name}: {k}/{total} frames, {time.perf_counter() - t0:.0f}s", flush=True)
        for packet in stream.encode():
            out.mux(packet)


def write_gif(path: Path, frames: int) -> None:
    from v2p.data.synth.encode import encode_video

    clip = np.stack([np.full((240, 320, 3), k % 250, np.uint8) for k in range(frames)])
    path.write_bytes(encode_video(clip, 25, "gif"))


def probe(path: Path, backend: str) -> dict:
    run = subprocess.run([sys.executable, "-c", PROBE, str(path), backend], capture_output=True, text=True)
    if run.returncode != 0:
        return {"error": run.stderr.strip().splitlines()[-1]}
    return json.loads(run.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--gif-frames", type=int, default=1000)
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip = out / f"long-{args.minutes:g}min-{args.height}p.mp4"
    if not clip.exists():
        tmp = clip.with_suffix(".tmp.mp4")
        write_clip(tmp, args.minutes, args.height)
        tmp.rename(clip)
    gif = out / f"long-{args.gif_frames}-frames.gif"
    if args.gif_frames and not gif.exists():
        write_gif(gif, args.gif_frames)
    rows = []
    for path, backends in ((clip, ("auto", "pyav")), (gif, ("auto",))):
        if not path.exists():
            continue
        for backend in backends:
            r = probe(path, backend)
            rows.append({"clip": path.name, "file_mb": round(path.stat().st_size / 2**20, 1), "backend": backend,
                         "seconds": round(r.get("seconds", float("nan")), 2),
                         "peak_over_imports_mb": round(r.get("peak_over_before_mb", float("nan")), 1),
                         "error": r.get("error", "")})
    print_table(rows, "8 frames (short side 224) from long clips: time and peak RSS above the imported process")
    write_json(out / "long_clip.json", {"rows": rows, "minutes": args.minutes, "height": args.height})


if __name__ == "__main__":
    main()
