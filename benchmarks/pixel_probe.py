"""What the decoded frames show, against what the stored frame vectors keep: a diagnostic.

The reranker benchmark's linear probe reads a subject's shape from v2p-tiny's per-frame
vectors at about 0.41 (majority class 0.19), and shape is the attribute wrong in most of plain
retrieval's first-place misses. This script asks whether the *pixels* the query path decodes
(short side 64, v2p-tiny's decode) carry it: a small CNN is trained with the synthetic
world's attribute labels on the bank's videos (ms + vc2, the held-out world of
benchmarks/_common.heldout_world, minus the query prompts) and scored on the pika query
clips, a generator it never saw. Labels are used here only to measure; no shipped model
is trained on them.

``--net tower`` trains v2p-tiny's own frame encoder instead (``FrameCNN`` with max-pooled
channels, on the 64x64 whole frame its query path feeds it), max-pooled over frames: whether
that architecture *can* read shape when told it, which separates a too-small encoder from a
training signal that never asks for shape.
Usage: python benchmarks/pixel_probe.py [--attribute shape] [--net probe|tower] [--epochs 8] [--seed 0]
       [--out bench-out]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import heldout_world, print_table, write_json  # noqa: E402

from v2p.data.frames import sample_frames  # noqa: E402
from v2p.data.shard import open_shard  # noqa: E402
from v2p.embed.tower import FrameCNN, TowerConfig, normalise_pixels  # noqa: E402
from v2p.eval.runner import iter_queries  # noqa: E402

FRAMES, HEIGHT, WIDTH = 8, 64, 112


def load(folder: Path, attribute: str) -> tuple[np.ndarray, list[str], list[str]]:
    """uint8 [n, 8, 3, 64, 112] frames of a shard's videos (decoded at short side 64, as
    v2p-tiny's query path decodes, then resized to one canvas), each video's attribute value,
    and its prompt uuid."""
    clips, labels, uuids = [], [], []
    for q in iter_queries(open_shard(folder)):
        frames = sample_frames(q.data, FRAMES, name=q.name, short_side=64)
        x = F.interpolate(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), size=(HEIGHT, WIDTH),
                          mode="bilinear", antialias=True, align_corners=False)
        clips.append(x.round().clamp(0, 255).to(torch.uint8).numpy())
        labels.append(str(q.attributes[attribute]))
        uuids.append(q.uuid)
    return np.stack(clips), labels, uuids


class ProbeCNN(nn.Module):
    """Six 3x3 convolutions at full resolution, max-pooled over space and frames."""

    def __init__(self, classes: int, width: int = 32):
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.GELU())
        w = width
        self.features = nn.Sequential(block(3, w), block(w, w), nn.MaxPool2d(2), block(w, 2 * w), block(2 * w, 2 * w),
                                      nn.MaxPool2d(2), block(2 * w, 4 * w), block(4 * w, 4 * w),
                                      nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * w, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[:2]
        x = x.flatten(0, 1).float() / 255.0
        x = (x - x.mean((1, 2, 3), keepdim=True)) / (x.std((1, 2, 3), keepdim=True) + 1e-3)
        return self.head(self.features(x).view(n, t, -1).amax(1))


class TowerFrameProbe(nn.Module):
    """v2p-tiny's frame encoder architecture (default config) on its own input, a linear head."""

    def __init__(self, classes: int):
        super().__init__()
        cfg = TowerConfig(frame_max_pool=True)
        self.size = cfg.image_size
        self.frames = FrameCNN(cfg.cnn_width, cfg.frame_dim, cfg.image_size, max_pool=cfg.frame_max_pool)
        self.head = nn.Linear(cfg.frame_dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[:2]
        x = F.interpolate(x.flatten(0, 1).float(), size=(self.size, self.size), mode="bilinear", antialias=True,
                          align_corners=False)
        return self.head(self.frames(normalise_pixels(x)).view(n, t, -1).amax(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--attribute", default="shape")
    ap.add_argument("--net", choices=("probe", "tower"), default="probe")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    out = Path(args.out) / "heldout"
    bank, queries = heldout_world(out)
    t0 = time.perf_counter()
    xb, yb_text, ub = load(bank, args.attribute)
    xq, yq_text, uq = load(queries, args.attribute)
    decode_s = time.perf_counter() - t0
    query_prompts = set(uq)
    keep = [i for i, u in enumerate(ub) if u not in query_prompts]  # no query prompt is trained on
    classes = sorted(set(yb_text))
    to_id = {c: i for i, c in enumerate(classes)}
    xb, yb = torch.from_numpy(xb[keep]), torch.tensor([to_id[yb_text[i]] for i in keep])
    xq, yq = torch.from_numpy(xq), torch.tensor([to_id.get(c, -1) for c in yq_text])
    net = ProbeCNN(len(classes)) if args.net == "probe" else TowerFrameProbe(len(classes))
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=0.01)
    rows = []
    for epoch in range(1, args.epochs + 1):
        net.train()
        t, losses = time.perf_counter(), []
        for idx in torch.randperm(len(xb)).split(32):
            picks = torch.randint(0, FRAMES, (4,))  # 4 random frames a clip, a colour cast and noise
            x = xb[idx][:, picks].float() * torch.empty(len(idx), 1, 3, 1, 1).uniform_(0.85, 1.15)
            x = (x + torch.randn_like(x) * torch.empty(len(idx), 1, 1, 1, 1).uniform_(0, 6)).clamp(0, 255)
            loss = F.cross_entropy(net(x), yb[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        net.eval()
        with torch.no_grad():
            pred = torch.cat([net(part).argmax(1) for part in xq.split(50)])
        rows.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                     "query_accuracy": float((pred == yq).float().mean()), "seconds": time.perf_counter() - t})
    majority = float(np.bincount(yq[yq >= 0].numpy()).max() / len(yq))
    print_table(rows, f"{args.attribute} from decoded frames: {args.net} CNN trained on {len(xb)} bank clips "
                      f"(ms + vc2), scored on {len(xq)} pika clips; majority class {majority:.3f}")
    suffix = "" if args.net == "probe" else f"_{args.net}"
    write_json(out / f"pixel_probe_{args.attribute}{suffix}.json",
               {"attribute": args.attribute, "net": args.net, "seed": args.seed, "epochs": args.epochs,
                "classes": classes, "rows": rows, "majority": majority, "train_clips": len(xb), "query_clips": len(xq),
                "decode_seconds": decode_s})


if __name__ == "__main__":
    main()
