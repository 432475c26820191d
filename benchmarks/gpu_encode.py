"""Encode and decode rates on a GPU box: the measured figures behind corpus_cost.py's GPU row.

Run it on a machine with a CUDA device (this project runs it through the ``device`` tool). It
measures, each stage alone:

* prompts/s of MiniLM (the text side of every encoder) on the GPU, per batch size;
* clips/s of ``v2p-tiny`` on the GPU (8 decoded frames a clip), per batch size;
* clips/s of decoding (8 frames sampled per clip, the build's decoder) on all the box's cores,
  one process per core, on the clips of ``corpus_cost.py`` (VidProM's size, 1024x576, 3 s).

``v2p-sight`` has no GPU figure: its vision models are LiteRT CPU kernels, so on a GPU box
they run on its cores like anywhere else (corpus_cost.py has their per-core cost).

Usage: python benchmarks/gpu_encode.py --clips DIR --prompts FILE.json [--stages prompts,clips] [--out bench-out]
       (writes gpu_encode.json; corpus_cost.py --gpu-json FILE turns it into hours)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402


def _sync() -> None:
    import torch

    torch.cuda.synchronize()


def prompt_rates(texts: list[str], batch_sizes: list[int]) -> list[dict]:
    from v2p.embed.factory import create_encoder

    n = len(texts)
    enc = create_encoder("minilm", "cuda")
    dtype = str(next(enc.model.parameters()).dtype)
    enc.encode_text(texts[:4096], batch_size=256)  # warm-up: kernels, allocator
    rows = []
    for bs in batch_sizes:
        _sync()
        t = time.perf_counter()
        enc.encode_text(texts, batch_size=bs)
        _sync()
        rows.append({"stage": "minilm prompts", "batch": bs, "items_per_s": n / (time.perf_counter() - t),
                     "dtype": dtype})
    return rows


def _decode_one(path: str) -> tuple[int, ...]:
    from v2p.data.frames import sample_frames

    return sample_frames(path, 8, short_side=160).shape


def clip_rates(paths: list[Path], repeat: int, batch_sizes: list[int]) -> list[dict]:
    from v2p.data.frames import sample_frames
    from v2p.embed.factory import create_encoder

    enc = create_encoder("v2p-tiny", "cuda")
    clips = [sample_frames(str(p), enc.num_frames, short_side=enc.frame_short_side) for p in paths]
    many = clips * max(1, (max(batch_sizes) * 4) // len(clips))
    enc.encode_frames(many[:64], batch_size=64)
    rows = []
    for bs in batch_sizes:
        _sync()
        t = time.perf_counter()
        enc.encode_frames(many, batch_size=bs)
        _sync()
        rows.append({"stage": "v2p-tiny clips", "batch": bs, "items_per_s": len(many) / (time.perf_counter() - t),
                     "dtype": "float32"})
    cores = len(os.sched_getaffinity(0))
    jobs = [str(p) for p in paths] * repeat
    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(_decode_one, jobs[:cores]))  # start the workers before timing
        t = time.perf_counter()
        list(pool.map(_decode_one, jobs, chunksize=1))
        rows.append({"stage": f"decode clips ({cores} processes)", "batch": 1,
                     "items_per_s": len(jobs) / (time.perf_counter() - t), "dtype": "-"})
    return rows


def _read_prompts(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    return data["prompts"] if isinstance(data, dict) else data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", help="folder of mp4 clips (corpus_cost.py makes them)")
    ap.add_argument("--repeat", type=int, default=8, help="decode each clip this many times")
    ap.add_argument("--prompts",
                    help="a block-NNNN.json of scale_vectors.py's cache (its synthetic prompts), or a JSON list")
    ap.add_argument("--stages", default="prompts,clips")
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu_encode.py measures a CUDA device; none is visible here")
    rows = []
    if "clips" in args.stages:
        rows += clip_rates(sorted(Path(args.clips).glob("*.mp4")), args.repeat, [64, 256, 1024])
    if "prompts" in args.stages:
        rows += prompt_rates(_read_prompts(Path(args.prompts)), [256, 1024, 4096])
    print_table(rows, f"encode/decode rates on {torch.cuda.get_device_name(0)}")
    out = Path(args.out) / f"gpu_encode_{args.stages.replace(',', '_')}.json"
    write_json(out, {"device": torch.cuda.get_device_name(0), "cores": len(os.sched_getaffinity(0)),
                     "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
