"""Scoring terms for reranking retrieved prompts: small pure functions of plain arrays.

Every term returns one value per candidate, higher = better. The reranker standardises each
term over the candidate list (z-scores) before weighting, so terms on different scales
(cosines, log-likelihoods) combine without hand-made rescaling.
"""

from __future__ import annotations

import numpy as np


def zscore(values: np.ndarray) -> np.ndarray:
    """Standardise over the candidate list (the last axis: one list, or a row per list); a
    constant term becomes all zeros (no information)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[-1] == 0:
        return np.zeros_like(values)
    std = values.std(axis=-1, keepdims=True)
    centred = values - values.mean(axis=-1, keepdims=True)
    return np.where(std < 1e-9, 0.0, centred / np.maximum(std, 1e-9))


def frame_scores(frame_text: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fine-grained video-prompt match: per-frame vectors [t, d] (in the text space) against
    candidate text vectors [K, d] -> (mean over frames, max over frames), each [K].

    The mean rewards prompts that describe the whole clip; the max rewards a prompt that
    matches one moment very well (a subject that appears, a zoom's end state)."""
    sims = np.asarray(frame_text, np.float32) @ np.asarray(candidates, np.float32).T  # [t, K]
    return sims.mean(axis=0), sims.max(axis=0)


def consensus(candidate_vectors: np.ndarray, retrieval_scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Each candidate's cosine to the score-weighted centroid of all candidates.

    The prompt closest to the centroid has the highest expected similarity to the truth when
    the truth is somewhere among (or between) the candidates: what a MiniLM-cosine metric
    rewards. Weights are a softmax of the standardised retrieval scores."""
    vecs = np.asarray(candidate_vectors, np.float64)
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    z = zscore(retrieval_scores) / max(temperature, 1e-6)
    w = np.exp(z - z.max())
    w /= w.sum()
    centroid = w @ vecs
    centroid /= max(np.linalg.norm(centroid), 1e-12)
    return vecs @ centroid
