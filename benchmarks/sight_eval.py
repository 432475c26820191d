"""v2p on real images and real-pixel camera motion: coco-mini val as stills and as pan/zoom clips.

Bank: all 795 coco-mini captions (train2017 + val2017). Queries: the 79 val2017 photos
* as still images (truth: their 5 captions), and
* as 24-frame H.264 clips panning, tilting or zooming over each photo (the 7 camera labels in
  turn), every caption in the bank ending with its image's camera phrase ("..., camera pans
  left"): the answer must get the content and the camera right.

Reported per encoder (and, with --ablation, per bridge variant of v2p-sight, and the ceiling the
bridge gives COCO's own object labels): R@1/5/10, MiniLM
cosine of the top-1 against the closest true caption, 95% bootstrap intervals, camera-motion
accuracy, and the warm end-to-end latency of one 8-frame clip query (decode, encode, search).

    python benchmarks/sight_eval.py [--coco ../shared/data/coco-mini] [--ablation] [--out bench-out/sight_eval.json]

coco-mini is evaluation data (see its README): this script reads it, nothing ships it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import print_table, write_json  # noqa: E402

from v2p.data.motion import CAMERA_PHRASES  # noqa: E402
from v2p.data.shard import open_shard  # noqa: E402
from v2p.eval.camera_clips import CAMERA_LABELS, camera_clip, encode_mp4  # noqa: E402
from v2p.eval.labelled import LabelledItem, evaluate_labelled, score_labelled  # noqa: E402
from v2p.index.build import BuildConfig, build_index  # noqa: E402
from v2p.retrieval.search import FusionWeights, QueryResult, Retriever  # noqa: E402


def load_split(coco: Path, split: str) -> list[dict]:
    """Images with their captions and, for the ceiling row, COCO's own object labels (the
    fraction of the picture each of the 80 categories covers)."""
    ann = json.loads((coco / "annotations" / f"captions_{split}.json").read_text())
    caps: dict[int, list[tuple[int, str]]] = {}
    for a in ann["annotations"]:
        caps.setdefault(a["image_id"], []).append((a["id"], a["caption"].strip()))
    inst = json.loads((coco / "annotations" / f"instances_{split}.json").read_text())
    names = {c["id"]: c["name"] for c in inst["categories"]}
    objects: dict[int, dict[str, float]] = {}
    for a in inst["annotations"]:
        got = objects.setdefault(a["image_id"], {})
        got[names[a["category_id"]]] = got.get(names[a["category_id"]], 0.0) + a["area"]
    return [{"path": coco / split / im["file_name"], "captions": caps[im["id"]],
             "objects": {k: v / (im["width"] * im["height"]) for k, v in objects.get(im["id"], {}).items()}}
            for im in ann["images"]]


def camera_of(k: int) -> str:
    return CAMERA_LABELS[k % len(CAMERA_LABELS)]


def with_camera(caption: str, label: str) -> str:
    return caption.rstrip(" .") + ", " + CAMERA_PHRASES[label]


def write_bank(path: Path, images: list[dict], cameras: bool) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["uuid", "prompt"])
        for k, im in enumerate(images):
            for cid, cap in im["captions"]:
                w.writerow([f"coco-{cid}", with_camera(cap, camera_of(k)) if cameras else cap])


def build(bank_csv: Path, out: Path, encoder: str) -> Path:
    build_index(open_shard(bank_csv), out, BuildConfig(encoder=encoder), overwrite=True)
    return out


def make_clips(val: list[dict], offset: int, folder: Path) -> list[LabelledItem]:
    from PIL import Image

    items = []
    for k, im in enumerate(val):
        label = camera_of(offset + k)
        rgb = np.asarray(Image.open(im["path"]).convert("RGB"))
        path = folder / f"{im['path'].stem}-{label}.mp4"
        path.write_bytes(encode_mp4(camera_clip(rgb, label)))
        items.append(LabelledItem(path, [with_camera(c, label) for _, c in im["captions"]], label))
    return items


def row(name: str, kind: str, report: dict, seconds: float | None = None) -> dict:
    iv = report["intervals"]
    out = {"encoder": name, "queries": kind, "R@1": report["recall_at_1"],
           "R@1 CI": "[{:.3f}, {:.3f}]".format(*iv["recall_at_1"]), "R@5": report["recall_at_5"],
           "R@5 CI": "[{:.3f}, {:.3f}]".format(*iv["recall_at_5"]), "R@10": report["recall_at_10"],
           "cos": report["minilm_cosine"], "camera acc": report["camera"]["accuracy"] if report["camera"]["n"] else "-"}
    if seconds is not None:
        out["ms/clip"] = round(seconds * 1000)
    return out


def answer_with(encoder, retriever: Retriever, items: list[LabelledItem]) -> list[QueryResult]:
    """Answers of a bridge variant (an encoder object not built from a spec) against the same index."""
    from v2p.data.frames import sample_frames

    clips = [sample_frames(it.path, 8, short_side=encoder.frame_short_side) for it in items]
    frames = encoder.encode_frames(clips)
    cameras = encoder.camera(frames)
    cands = retriever.search(encoder.pool(frames), top=10, use_videos=False, cameras=cameras)
    return [QueryResult(str(it.path), c, camera=cam) for it, c, cam in zip(items, cands, cameras, strict=True)]


def object_label_ceiling(retriever: Retriever, stills: list[LabelledItem], val: list[dict],
                         train: list[dict]) -> dict:
    """What the bridge gives a *perfect* detector of COCO's 80 object categories: each photo's
    true objects as "a photo of a {name}." MiniLM vectors, weighted by area as the segment words
    are (full weight from 5% of the picture), summed, centred on train and searched like a sight
    query. A ceiling for any object-naming vision model behind this bridge, not a v2p result."""
    from v2p.embed.base import l2_normalize
    from v2p.embed.factory import create_encoder
    from v2p.embed.sight.bridge import to_query_space

    minilm = create_encoder("minilm")
    names = sorted({n for im in train + val for n in im["objects"]})
    vec = dict(zip(names, minilm.encode_text([f"a photo of a {n}." for n in names]), strict=True))

    def query(im: dict) -> np.ndarray:
        parts = [min(area / 0.05, 1.0) * vec[n] for n, area in im["objects"].items()]
        return np.sum(parts, axis=0) if parts else np.zeros(minilm.dim, np.float32)

    mean = l2_normalize(np.stack([query(im) for im in train if im["objects"]])).mean(axis=0)
    queries = to_query_space(np.stack([query(im) for im in val]), mean)
    cands = retriever.search(queries, top=10, use_videos=False)
    bank_ids = set(retriever.index.prompts_table.column("prompt_id").to_pylist())
    results = [QueryResult(str(it.path), c) for it, c in zip(stills, cands, strict=True)]
    return score_labelled(stills, results, bank_ids).as_dict()


def ablation(retriever: Retriever, stills: list[LabelledItem], tuning_photos: list[Path]) -> list[dict]:
    """Bridge variants on the val stills, each centred on its own mean over the tuning photos
    (the centring vector it would ship, as ``benchmarks/sight_calibrate.py`` makes it)."""
    from v2p._threads import thread_count
    from v2p.data.frames import sample_frames
    from v2p.embed.factory import create_encoder
    from v2p.embed.sight.bridge import BridgeConfig
    from v2p.embed.sight.encoder import SightEncoder

    bank_ids = set(retriever.index.prompts_table.column("prompt_id").to_pylist())
    base = BridgeConfig.load()
    variants = {
        "v2p-sight (shipped)": (base, True),
        "previous bridge: 3 crops averaged, segment 0.5": (
            dataclasses.replace(base, grid=0, view_pooling="mean", segment_weight=0.5), True),
        "no grid squares (3 crops)": (dataclasses.replace(base, grid=0), True),
        "views averaged, not noisy-or": (dataclasses.replace(base, view_pooling="mean"), True),
        "no centring": (base, False),
        "1 centre crop + grid": (dataclasses.replace(base, crops=1), True),
        "no segment words": (dataclasses.replace(base, segment_weight=0.0), True),
        "top-1 class only": (dataclasses.replace(base, top_k=1), True),
        "all classes (no top-k)": (dataclasses.replace(base, top_k=1001), True),
    }
    rows = []
    minilm = create_encoder("minilm")
    photos = [sample_frames(p, 1) for p in tuning_photos]
    for name, (cfg, centre) in variants.items():
        enc = SightEncoder(lambda: minilm, threads=thread_count())
        enc.cfg = cfg
        enc.query_mean = enc.centring_vector(photos) if centre else np.zeros_like(enc.query_mean)
        report = score_labelled(stills, answer_with(enc, retriever, stills), bank_ids).as_dict()
        rows.append(row(name, "val stills", report))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coco", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/coco-mini")
    ap.add_argument("--encoders", default="v2p-sight,v2p-tiny")
    ap.add_argument("--ablation", action="store_true", help="also measure bridge variants of v2p-sight (stills)")
    ap.add_argument("--out", type=Path, default=Path("bench-out/sight_eval.json"))
    args = ap.parse_args()
    train, val = load_split(args.coco, "train2017"), load_split(args.coco, "val2017")
    images = train + val
    rows, details = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_bank(tmp / "bank.csv", images, cameras=False)
        write_bank(tmp / "bank_camera.csv", images, cameras=True)
        stills = [LabelledItem(im["path"], [c for _, c in im["captions"]]) for im in val]
        (tmp / "clips").mkdir()
        clips = make_clips(val, len(train), tmp / "clips")
        for encoder in args.encoders.split(","):
            still_index = build(tmp / "bank.csv", tmp / f"idx-{encoder}", encoder)
            clip_index = build(tmp / "bank_camera.csv", tmp / f"idx-cam-{encoder}", encoder)
            r_still = evaluate_labelled(still_index, stills).as_dict()
            retriever = Retriever(clip_index)
            retriever.query_videos([str(clips[0].path)])  # warm: models loaded, first call paid
            t0 = time.perf_counter()
            r_clip = evaluate_labelled(clip_index, clips, retriever=retriever, batch=1).as_dict()
            per_clip = (time.perf_counter() - t0) / len(clips)
            rows += [row(encoder, "val stills", r_still), row(encoder, "val pan/zoom clips", r_clip, per_clip)]
            details[encoder] = {"stills": r_still, "clips": r_clip, "seconds_per_clip_query": per_clip}
            if encoder == "v2p-sight":  # the encoder that reads camera motion
                no_cam = Retriever(clip_index, weights=FusionWeights(camera=0.0))
                r_nocam = evaluate_labelled(clip_index, clips, retriever=no_cam).as_dict()
                rows.append(row(encoder + " (camera term off)", "val pan/zoom clips", r_nocam))
                details[encoder]["clips_camera_term_off"] = r_nocam
        ablation_rows = []
        if args.ablation:
            sight_retriever = Retriever(tmp / "idx-v2p-sight")
            ablation_rows = ablation(sight_retriever, stills, [im["path"] for im in train])
            ceiling = object_label_ceiling(sight_retriever, stills, val, train)
            ablation_rows.append(row("ceiling: COCO's true object labels, same bridge", "val stills", ceiling))
    print_table(rows, "coco-mini val2017 (79 photos) against all 795 captions")
    if ablation_rows:
        print_table(ablation_rows, "v2p-sight bridge variants (val stills)")
    write_json(args.out, {"rows": rows, "ablation": ablation_rows, "details": details})


if __name__ == "__main__":
    main()
