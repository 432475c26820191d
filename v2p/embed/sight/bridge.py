"""From what the vision models see to MiniLM's text space: the bridge of ``v2p-sight``.

ImageNet class scores are not prompts. Each class becomes text ("a photo of a {name}." for
each synonym on its label line, averaged in MiniLM space), and a frame's text vector is the
probability-weighted mean of its top classes' vectors. The PASCAL segmenter adds what
ImageNet has no class for, above all *people*, weighted by how much of the frame they fill.

Measured on coco-mini (``benchmarks/sight_eval.py --ablation``; tuned on train2017, reported
on val2017) the pieces that earned their place: synonyms over the first name alone, the
top-5 classes, *object-sized views*: three whole-height square crops plus a 3 x 3 grid of
squares of 0.45 the short side, pooled by noisy-or (a class counts when any view sees it),
segment words, and *centring*: subtracting the mean query vector of real photos
(:data:`QUERY_MEAN`), which removes what every "a photo of a ..." vector shares. What did
not: joining label names into one sentence, sharper or flatter class distributions, other
label templates, finer grids (0.3-0.35 of the short side), a ridge correction or a
nearest-photo memory fitted on coco-mini train (no gain; they also pull answers towards the
tuning captions), pseudo-relevance feedback from the bank, and matching in class space
(captions turned into ImageNet class distributions) instead of text space.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from v2p.embed.base import l2_normalize

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "v2p-sight"
BRIDGE_FILE = "bridge.json"
LABEL_VECTORS = "label_vectors.npz"
LABEL_TEMPLATE = "a photo of {}."
# PASCAL VOC classes as people write them in prompts (the file's names are terse: "tvmonitor")
PASCAL_PHRASES = {
    "aeroplane": ["an airplane", "a plane"], "diningtable": ["a dining table", "a table"],
    "motorbike": ["a motorcycle", "a motorbike"], "person": ["a person", "a man", "a woman", "people"],
    "pottedplant": ["a potted plant"], "sofa": ["a sofa", "a couch"], "tvmonitor": ["a television", "a tv monitor"],
}


VIEW_POOLINGS = ("noisy_or", "mean")


@dataclass(frozen=True)
class BridgeConfig:
    top_k: int = 5  # ImageNet classes kept per frame
    segment_weight: float = 0.35  # weight of the segment words against the ImageNet part
    segment_min_area: float = 0.01  # a PASCAL class covering less of the frame is ignored
    segment_full_area: float = 0.05  # ... and one covering this much counts fully
    crops: int = 3  # whole-height square crops per frame for the classifier (1 = centre only)
    grid: int = 3  # ... plus a grid x grid of smaller squares over the frame (0 = none)
    grid_side: float = 0.45  # the grid squares' side, as a fraction of the frame's short side
    view_pooling: str = "noisy_or"  # how a frame's views combine: "noisy_or" (seen in any view) or "mean"
    segment_every: int = 8  # segment every n-th frame (an 8-frame clip: its first); 7x a classifier call
    spread_views: bool = True  # in a clip, the views are shared out over its frames (a still: every view)

    def __post_init__(self):
        if self.view_pooling not in VIEW_POOLINGS:
            raise ValueError(f"view_pooling must be one of {', '.join(VIEW_POOLINGS)}; got {self.view_pooling!r}")

    @classmethod
    def load(cls, folder: Path = MODEL_DIR) -> BridgeConfig:
        path = folder / BRIDGE_FILE
        return cls(**json.loads(path.read_text())["config"]) if path.is_file() else cls()

    def as_dict(self) -> dict:
        return asdict(self)


def _article(name: str) -> str:
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def imagenet_phrases(labels_file: Path = MODEL_DIR / "imagenet_labels.txt") -> list[list[str]]:
    """Per ImageNet class (1001, class 0 = background): its synonyms as phrases."""
    out = []
    for line in labels_file.read_text().splitlines():
        names = [n.strip() for n in line.split(",") if n.strip()]
        out.append([_article(n) for n in names] or ["background"])
    return out


def pascal_phrases(labels_file: Path = MODEL_DIR / "pascal_voc_segmentation_labels.txt") -> list[list[str]]:
    """Per PASCAL class (21, class 0 = background) its phrases."""
    names = [n.strip() for n in labels_file.read_text().splitlines()[:21]]
    return [PASCAL_PHRASES.get(n, [_article(n)]) for n in names]


def compute_label_vectors(encode_text) -> dict[str, np.ndarray]:
    """MiniLM vectors of every class: the mean of its phrases in :data:`LABEL_TEMPLATE`."""
    out = {}
    for name, phrases in (("imagenet", imagenet_phrases()), ("pascal", pascal_phrases())):
        flat = [LABEL_TEMPLATE.format(p) for ps in phrases for p in ps]
        vecs = encode_text(flat)
        bounds = np.cumsum([0] + [len(ps) for ps in phrases])
        out[name] = np.stack([vecs[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    return out


def load_label_vectors(folder: Path = MODEL_DIR) -> dict[str, np.ndarray]:
    with np.load(folder / LABEL_VECTORS) as z:
        return {k: z[k].astype(np.float32) for k in z.files}


def pool_views(view_probs: np.ndarray, how: str) -> np.ndarray:
    """One frame's class probabilities from its views' [views, 1001]. ``noisy_or`` is the chance
    that at least one view shows the class (1 - prod(1 - p)): a small object that one grid
    square sees clearly is kept, not averaged away by the views that miss it."""
    view_probs = np.asarray(view_probs, np.float32)
    if how == "mean" or len(view_probs) == 1:
        return view_probs.mean(axis=0)
    return 1.0 - np.prod(1.0 - np.clip(view_probs, 0.0, 1.0), axis=0)


def frame_text_vectors(class_probs: np.ndarray, segment_areas: np.ndarray, vectors: dict[str, np.ndarray],
                       cfg: BridgeConfig) -> np.ndarray:
    """[n, 384] uncentred text vectors of frames from ImageNet probabilities [n, 1001] and PASCAL
    area fractions [n, 21]."""
    probs = np.array(class_probs, np.float32, copy=True)
    probs[:, 0] = 0.0  # "background"
    if cfg.top_k < probs.shape[1]:
        drop = np.argsort(-probs, axis=1)[:, cfg.top_k:]
        np.put_along_axis(probs, drop, 0.0, axis=1)
    probs /= np.maximum(probs.sum(axis=1, keepdims=True), 1e-9)
    areas = np.array(segment_areas, np.float32, copy=True)
    areas[:, 0] = 0.0
    presence = np.clip(areas / cfg.segment_full_area, 0.0, 1.0) * (areas >= cfg.segment_min_area)
    return probs @ vectors["imagenet"] + cfg.segment_weight * (presence @ vectors["pascal"])


def to_query_space(text_vectors: np.ndarray, query_mean: np.ndarray) -> np.ndarray:
    """Normalise, centre on the mean query of real photos, normalise again: MiniLM-space queries."""
    return l2_normalize(l2_normalize(np.asarray(text_vectors, np.float32)) - query_mean)
