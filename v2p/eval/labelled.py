"""Evaluate on a user's own labelled media: clips or images with the prompt(s) that describe them.

Two label formats:

* **CSV** with a header: ``file`` (path, relative to the CSV's folder or absolute) and
  ``prompt``; a file may appear on several rows (several true prompts). An optional
  ``camera`` column holds the true camera motion (``pan_left`` ... ``static``, or a phrase such
  as "camera pans left") and adds camera-motion accuracy to the report.
* **COCO captions JSON** (``captions_val2017.json`` style: ``images`` with ``file_name`` and
  ``annotations`` with ``image_id`` + ``caption``), with the image folder given separately.

An item is *in the bank* when one of its prompts is a bank prompt (same normalised text,
with the index's own flag stripping). R@k counts an item found when any of its prompts is
in the top k; items that fail to decode are misses, never dropped. The MiniLM cosine is the
top-1 prompt against the closest of the item's prompts (COCO has five per image).
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from v2p.data.motion import CAMERA_PHRASES, camera_in_prompt
from v2p.data.normalize import normalize_prompt, prompt_id
from v2p.embed.factory import create_encoder
from v2p.errors import BadInputError, V2PError
from v2p.eval import metrics
from v2p.retrieval.search import QueryResult, Retriever

RECALL_KS = (1, 5, 10)


@dataclass
class LabelledItem:
    path: Path
    prompts: list[str] = field(default_factory=list)
    camera: str | None = None  # a CAMERA_PHRASES key


def _camera_label(value: str, where: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if value in CAMERA_PHRASES:
        return value
    parsed = camera_in_prompt(value)
    if parsed is None:
        raise BadInputError(where, f"unknown camera motion {value!r}; use one of {', '.join(CAMERA_PHRASES)}")
    return parsed


def read_labels_csv(path: str | Path) -> list[LabelledItem]:
    """Items of a ``file,prompt[,camera]`` CSV, in first-appearance order."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            missing = [c for c in ("file", "prompt") if c not in columns]
            if missing:
                raise BadInputError(str(path), f"missing column(s) {', '.join(missing)}; "
                                               f"the header has {', '.join(columns) or 'nothing'} "
                                               "(need file,prompt and optionally camera)")
            items: dict[str, LabelledItem] = {}
            for line, row in enumerate(reader, start=2):
                where = f"{path}, line {line}"
                file, prompt = (row.get("file") or "").strip(), (row.get("prompt") or "").strip()
                if not file or not prompt:
                    raise BadInputError(where, "empty file or prompt")
                full = Path(file) if Path(file).is_absolute() else path.parent / file
                item = items.setdefault(str(full), LabelledItem(full))
                item.prompts.append(prompt)
                camera = _camera_label(row.get("camera") or "", where)
                if camera is not None:
                    item.camera = camera
    except UnicodeDecodeError as exc:
        raise BadInputError(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise BadInputError(str(path), f"cannot read ({exc.strerror or exc})") from None
    if not items:
        raise BadInputError(str(path), "no labelled rows")
    return list(items.values())


def read_coco_captions(path: str | Path, images: str | Path) -> list[LabelledItem]:
    """Items of a COCO captions JSON, image files under ``images``."""
    path, images = Path(path), Path(images)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = {im["id"]: im["file_name"] for im in data["images"]}
        items = {i: LabelledItem(images / name) for i, name in files.items()}
        for ann in data["annotations"]:
            if ann["image_id"] not in items:
                raise BadInputError(str(path), f"annotation {ann.get('id')} names image {ann['image_id']}, "
                                               "which is not in 'images'")
            items[ann["image_id"]].prompts.append(str(ann["caption"]).strip())
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BadInputError(str(path), f"not a COCO captions file ({type(exc).__name__}: {exc})") from None
    return [it for it in items.values() if it.prompts]


@dataclass
class LabelledReport:
    in_bank: dict
    not_in_bank: dict
    camera: dict
    meta: dict

    def as_dict(self) -> dict:
        return {**self.in_bank, "not_in_bank": self.not_in_bank, "camera": self.camera, **self.meta}


def _summary(values: dict[str, np.ndarray], n: int, failed: int) -> dict:
    out: dict = {"n_queries": n, "n_failed": failed}
    intervals = {}
    for name, v in values.items():
        out[name] = float(v.mean()) if len(v) else None
        intervals[name] = list(metrics.bootstrap_ci(v)) if len(v) else None
    out["intervals"] = intervals
    return out


def score_labelled(items: list[LabelledItem], results: list[QueryResult], bank_ids: set[str], *,
                   strip_flags: bool = False, encode: Callable | None = None) -> LabelledReport:
    """R@k, MiniLM cosine (top-1 vs the closest true prompt) and camera accuracy of answered items."""
    encode = encode or create_encoder("minilm").encode_text
    ids = [{prompt_id(normalize_prompt(p, strip_flags=strip_flags)) for p in it.prompts} for it in items]
    groups = {}
    for in_bank in (True, False):
        members = [k for k, i in enumerate(ids) if bool(i & bank_ids) == in_bank]
        answered = [k for k in members if not results[k].error and results[k].candidates]
        values: dict[str, np.ndarray] = {}
        if in_bank:
            ranks = [next((c.rank for c in results[k].candidates if c.prompt_id in ids[k]), None) for k in members]
            for kk in RECALL_KS:
                values[f"recall_at_{kk}"] = metrics.recall_at_k(ranks, kk)
        if answered:
            tops = encode([results[k].best_prompt for k in answered])
            refs = [items[k].prompts for k in answered]
            flat = encode([p for r in refs for p in r])
            bounds = np.cumsum([0] + [len(r) for r in refs])
            values["minilm_cosine"] = np.array([float(np.max(flat[a:b] @ tops[j])) for j, (a, b) in
                                                enumerate(zip(bounds[:-1], bounds[1:], strict=True))])
        groups[in_bank] = _summary(values, len(members), len(members) - len(answered))
    reads_camera = any(r.camera is not None for r in results)  # an encoder that reads no motion is not scored on it
    with_camera = [k for k, it in enumerate(items) if it.camera is not None] if reads_camera else []
    right = np.array([1.0 if results[k].camera is not None and results[k].camera.label == items[k].camera else 0.0
                      for k in with_camera])
    camera = {"n": len(with_camera), "accuracy": float(right.mean()) if len(right) else None,
              "interval": list(metrics.bootstrap_ci(right)) if len(right) else None}
    if with_camera:
        labels = sorted({items[k].camera for k in with_camera})
        camera["per_label"] = {lab: float(np.mean([r for k, r in zip(with_camera, right, strict=True)
                                                   if items[k].camera == lab])) for lab in labels}
    errors = sum(1 for r in results if r.error)
    return LabelledReport(groups[True], groups[False], camera, {"errors": errors})


def evaluate_labelled(index: str | Path, items: list[LabelledItem], *, retriever: Retriever | None = None,
                      top: int = 10, batch: int = 16,
                      on_progress: Callable[[str, int, int | None], None] | None = None) -> LabelledReport:
    """Query ``index`` with every labelled file (clips and still images) and score the answers."""
    if not items:
        raise V2PError("no labelled items to evaluate")
    progress = on_progress or (lambda stage, advance, total: None)
    retriever = retriever or Retriever(index)
    results: list[QueryResult] = []
    progress("querying", 0, len(items))
    it = iter(items)
    while part := list(itertools.islice(it, batch)):
        results += retriever.query_videos([str(p.path) for p in part], top=max(top, max(RECALL_KS)))
        progress("querying", len(part), None)
    strip = bool((retriever.index.manifest.get("build") or {}).get("strip_flags"))
    bank_ids = set(retriever.index.prompts_table.column("prompt_id").to_pylist())
    report = score_labelled(items, results, bank_ids, strip_flags=strip)
    report.meta.update({"index": str(index), "encoder": retriever.index.encoder_spec, "items": len(items)})
    return report
