"""The reranker's ``image`` term: what the frames show, mapped linearly into the prompt space.

A video encoder trained into text space keeps what its loss asked for. When the index also
stores a general-purpose picture embedding per frame (``v2p-tiny+image``, ``v2p-sight``,
CLIP: :meth:`Encoder.picture_vectors`), a plain ridge regression from a clip's mean picture
vector to its prompt's text vector, fitted on the bank's own clip/prompt pairs, reads what the
tower lost: on the held-out synthetic world, ``v2p-tiny``'s frame vectors tell a subject's
shape at 0.31-0.41 (linear probe) and 0.94 with MobileNetV1's embedding beside them. The term
is the cosine between the mapped clip and each candidate prompt, standardised over the
candidates and added to the retrieval score with a weight.

The ridge strength and the weight are chosen on out-of-fold scores: the bank's prompts are
split into folds, each fold's lists scored by a map fitted without that fold's prompts (so a
prompt is never scored by a map that saw it, not even through its other generators' renders),
and the pair with the best top-1 kept. That is stricter than a query meets (a bank prompt's
renders are all in the final map), so it errs towards a weaker map and a smaller weight. Like
the cross-encoder, the term must earn its place: its top-1 gain over retrieval on those lists
needs a paired 95% bootstrap interval above 0, else its weight is 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from v2p.embed.base import l2_normalize
from v2p.errors import V2PError
from v2p.rerank.terms import zscore

IMAGE_MAP_FILE = "image_map.npz"
IMAGE_MAP_RECORD = "image_map.json"
ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0)  # ridge strengths tried (unit-norm inputs)
TERM_WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.5)  # weights tried against the retrieval score's 1
FOLDS = 5


@dataclass
class ImageMap:
    """x -> normalise((x - mean_x) @ weights + mean_y): picture space [p] to prompt space [d]."""

    mean_x: np.ndarray
    mean_y: np.ndarray
    weights: np.ndarray
    alpha: float
    term_weight: float
    record: dict = field(default_factory=dict)

    def project(self, pictures: np.ndarray) -> np.ndarray:
        return l2_normalize((np.asarray(pictures, np.float32) - self.mean_x) @ self.weights + self.mean_y)

    def summary(self) -> dict:
        """What the training record keeps: the choice and its check, without every trial."""
        return {k: v for k, v in self.record.items() if k != "trials"} | {"alpha": self.alpha,
                                                                          "term_weight": self.term_weight}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / IMAGE_MAP_FILE, mean_x=self.mean_x, mean_y=self.mean_y, weights=self.weights)
        (folder / IMAGE_MAP_RECORD).write_text(json.dumps(
            {"alpha": self.alpha, "term_weight": self.term_weight, **self.record}, indent=2))

    @classmethod
    def load(cls, folder: Path) -> ImageMap | None:
        if not (folder / IMAGE_MAP_FILE).is_file():
            return None
        record = json.loads((folder / IMAGE_MAP_RECORD).read_text())
        with np.load(folder / IMAGE_MAP_FILE) as z:
            return cls(z["mean_x"], z["mean_y"], z["weights"], float(record["alpha"]),
                       float(record["term_weight"]), record)


def clip_pictures(encoder, frame_vectors: np.ndarray) -> np.ndarray | None:
    """[n, t, f] -> [n, p] unit mean picture vector per clip, or None when the encoder stores none."""
    pictures = encoder.picture_vectors(frame_vectors)
    return None if pictures is None else l2_normalize(np.asarray(pictures, np.float32).mean(axis=1))


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean_x, mean_y, W) of the ridge regression y ~ (x - mean_x) W + mean_y."""
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    xc = x - mean_x
    gram = xc.T @ xc + alpha * np.eye(x.shape[1], dtype=np.float64)
    w = np.linalg.solve(gram, xc.T @ (y - mean_y))
    return mean_x.astype(np.float32), mean_y.astype(np.float32), w.astype(np.float32)


def out_of_fold_scores(pictures: np.ndarray, clip_prompt: np.ndarray, prompt_vectors: np.ndarray,
                       list_clips: np.ndarray, list_rows: np.ndarray, alpha: float, folds: int = FOLDS,
                       seed: int = 0) -> np.ndarray:
    """[n_lists, K] cosine of each list's mapped clip with its candidates, each list scored by a
    map fitted without its true prompt's clips (folds over prompts).

    ``pictures`` [n_clips, p], ``clip_prompt`` [n_clips] prompt row of each clip,
    ``prompt_vectors`` [n_prompts, d] by prompt row, ``list_clips`` [n_lists] the query clip of
    each list, ``list_rows`` [n_lists, K] its candidate prompt rows."""
    prompts = np.unique(clip_prompt)
    fold_of_prompt = dict(zip(prompts.tolist(), np.random.default_rng(seed).permutation(len(prompts)) % folds,
                              strict=True))
    clip_fold = np.array([fold_of_prompt[int(r)] for r in clip_prompt])
    out = np.empty(list_rows.shape, np.float32)
    for f in range(folds):
        train = clip_fold != f
        scored = np.flatnonzero(clip_fold[list_clips] == f)
        if not len(scored):
            continue
        mean_x, mean_y, w = fit_ridge(pictures[train], prompt_vectors[clip_prompt[train]], alpha)
        mapped = l2_normalize((pictures[list_clips[scored]] - mean_x) @ w + mean_y)
        out[scored] = np.einsum("nd,nkd->nk", mapped, prompt_vectors[list_rows[scored]])
    return out


def fit_image_map(pictures: np.ndarray, clip_prompt: np.ndarray, prompt_vectors: np.ndarray,
                  list_clips: np.ndarray, list_rows: np.ndarray, retrieval: np.ndarray, positive: np.ndarray,
                  *, seed: int = 0) -> ImageMap:
    """Choose the ridge strength and the term's weight on out-of-fold scores of the mined lists
    (``retrieval`` [n_lists, K] their fused scores, ``positive`` [n_lists] where the truth is),
    check that the term earns its place, and fit the kept map on every clip."""
    from v2p.eval.metrics import paired_bootstrap_ci

    if len(np.unique(clip_prompt)) < FOLDS:
        raise V2PError(f"the image map needs clips of at least {FOLDS} prompts; the bank has fewer")
    base = zscore(retrieval.astype(np.float64))
    n = len(positive)
    plain_hits = (np.argmax(base, axis=1) == positive).astype(float)
    trials, best = [], None
    for alpha in ALPHAS:
        image = zscore(out_of_fold_scores(pictures, clip_prompt, prompt_vectors, list_clips, list_rows, alpha,
                                           seed=seed).astype(np.float64))
        for weight in TERM_WEIGHTS:
            hits = (np.argmax(base + weight * image, axis=1) == positive).astype(float)
            trials.append({"alpha": alpha, "weight": weight, "top1": float(hits.mean())})
            if best is None or hits.mean() > best[2].mean():
                best = (alpha, weight, hits)
    alpha, weight, hits = best
    gain = paired_bootstrap_ci(plain_hits.tolist(), hits.tolist())
    earned = gain[1] > 0
    mean_x, mean_y, w = fit_ridge(pictures, prompt_vectors[clip_prompt], alpha)
    record = {"lists": int(n), "clips": int(len(pictures)), "picture_dim": int(pictures.shape[1]),
              "folds": FOLDS, "top1_retrieval": float(plain_hits.mean()), "top1_with_term": float(hits.mean()),
              "gain": list(gain), "keeps_retrieval_order": not earned, "chosen_weight": weight, "trials": trials}
    return ImageMap(mean_x, mean_y, w, alpha, weight if earned else 0.0, record)
