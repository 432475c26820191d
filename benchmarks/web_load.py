"""The service under load, on loopback: warm per-query latency, a burst of concurrent uploads, and the
cold cost of one `v2p query` CLI call, for one encoder.

    python benchmarks/web_load.py [--encoder v2p-sight] [--concurrent 50] [--sequential 20]

Bank: a 500-prompt synthetic shard's prompts (text only). Query: a 24-frame H.264 clip panning
over a real photo (sampled at 8 frames). The server runs in its own process (`v2p serve`);
requests are bounded in count and time and go to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import print_table, write_json  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def burst(url: str, clip: bytes, n: int) -> tuple[list[float], int, float]:
    import httpx

    async def one(client):
        t0 = time.perf_counter()
        r = await client.post(url, files={"file": ("clip.mp4", clip, "video/mp4")})
        return time.perf_counter() - t0, r.status_code

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=300) as client:
        done = await asyncio.gather(*(one(client) for _ in range(n)))
    wall = time.perf_counter() - t0
    return [d for d, _ in done], sum(1 for _, s in done if s != 200), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default="v2p-sight")
    ap.add_argument("--concurrent", type=int, default=50)
    ap.add_argument("--sequential", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("bench-out/web_load.json"))
    args = ap.parse_args()
    import httpx
    from skimage import data

    from v2p.data.shard import open_shard
    from v2p.data.synth.writer import write_synthetic_shard
    from v2p.eval.camera_clips import camera_clip, encode_mp4
    from v2p.index.build import BuildConfig, build_index

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_synthetic_shard(tmp / "shard", 500, seed=5, generators=["ms"], video_sample=1)
        build_index(open_shard(tmp / "shard"), tmp / "index", BuildConfig(encoder=args.encoder))
        clip = encode_mp4(camera_clip(data.chelsea(), "pan_left", frames=24, size=(512, 288)))
        (tmp / "clip.mp4").write_bytes(clip)
        v2p = str(Path(sys.executable).with_name("v2p"))
        cold = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([v2p, "query", str(tmp / "clip.mp4"), "--index", str(tmp / "index")], check=True,
                           capture_output=True)
            cold.append(time.perf_counter() - t0)
        port = free_port()
        server = subprocess.Popen([v2p, "serve", "--index", str(tmp / "index"), "--port", str(port),
                                   "--max-pending", str(args.concurrent + 8)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(240):
                try:
                    if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.5)
            httpx.post(base + "/api/query", files={"file": ("clip.mp4", clip, "video/mp4")}, timeout=120)  # warm
            seq = []
            for _ in range(args.sequential):
                t0 = time.perf_counter()
                r = httpx.post(base + "/api/query", files={"file": ("clip.mp4", clip, "video/mp4")}, timeout=120)
                seq.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
            inner = r.json()["seconds"]
            lat, errors, wall = asyncio.run(burst(base + "/api/query", clip, args.concurrent))
        finally:
            server.terminate()
            server.wait(timeout=30)
    rows = [
        {"what": "cold `v2p query clip.mp4` (CLI, new process)", "n": 3, "p50 s": statistics.median(cold),
         "p95 s": max(cold), "errors": 0, "note": ""},
        {"what": "warm server, one query at a time", "n": args.sequential, "p50 s": statistics.median(seq),
         "p95 s": pct(seq, 0.95), "errors": 0, "note": f"of which retrieval {inner:.3f} s"},
        {"what": f"{args.concurrent} concurrent uploads", "n": args.concurrent, "p50 s": statistics.median(lat),
         "p95 s": pct(lat, 0.95), "errors": errors, "note": f"{args.concurrent / wall:.2f} queries/s"},
    ]
    print_table(rows, f"v2p serve under load ({args.encoder}, 8-frame clip, loopback)")
    write_json(args.out, {"encoder": args.encoder, "rows": rows, "cold": cold, "sequential": seq, "burst": lat})


if __name__ == "__main__":
    main()
