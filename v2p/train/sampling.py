"""Which prompts share a training batch.

InfoNCE only teaches what the batch's negatives ask for. In a batch of random prompts, colour
and scene already tell every prompt apart, so a tower can rank well in training while staying
blind to whatever is rarely decisive (a subject's shape, whether the camera moves). Any bank
holds the cure: prompts that differ from each other in a few words. ``neighbour_batches``
fills each batch with small groups of prompts that are near in the frozen text space, so each
clip meets its near misses as negatives. This is topic-aware batch sampling as in
dense-retrieval training (TAS-B), mined with no labels.
"""

from __future__ import annotations

import numpy as np

# a neighbour at this cosine or above is taken for a rewording of the same prompt, never a negative
REWORDING_COSINE = 0.97


def text_neighbours(text: np.ndarray, candidates: int, rewording_cosine: float = REWORDING_COSINE,
                    block: int = 1024) -> np.ndarray:
    """For each row of ``text`` (unit vectors, one per prompt), its ``candidates`` nearest other
    rows, best first.

    Rows at cosine ``rewording_cosine`` or more are skipped: a near-identical prompt is most
    likely a rewording of the same video, and as a negative it would teach noise. Missing slots
    are -1. Computed ``block`` rows at a time, so memory is ``block x len(text)``, not its square."""
    n = len(text)
    k = min(candidates, n - 1)
    out = np.full((n, max(k, 0)), -1, np.int64)
    if k <= 0:
        return out
    text = np.asarray(text, np.float32)
    for s in range(0, n, block):
        sims = text[s:s + block] @ text.T
        rows = np.arange(len(sims))
        sims[rows, s + rows] = -np.inf
        sims[sims >= rewording_cosine] = -np.inf
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        best = np.take_along_axis(sims, nearest, 1)
        order = np.argsort(-best, axis=1, kind="stable")
        nearest = np.take_along_axis(nearest, order, 1)
        nearest[np.take_along_axis(best, order, 1) == -np.inf] = -1
        out[s:s + block] = nearest
    return out


def neighbour_batches(neighbours: np.ndarray, group: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch's visiting order: a permutation of ``range(len(neighbours))`` laid out in groups.

    Anchors are taken in random order; each unused anchor brings up to ``group - 1`` of its
    unused nearest neighbours right after it, so consecutive slices cut into batches hold whole
    groups (a group may straddle two batches). Every prompt appears exactly once: the epoch
    still visits each prompt once. ``group`` 1 is a plain random permutation."""
    n = len(neighbours)
    if group <= 1:
        return rng.permutation(n)
    used = np.zeros(n, bool)
    order: list[int] = []
    for anchor in rng.permutation(n).tolist():
        if used[anchor]:
            continue
        used[anchor] = True
        members = [anchor]
        for other in neighbours[anchor].tolist():
            if len(members) == group:
                break
            if other >= 0 and not used[other]:
                used[other] = True
                members.append(other)
        order.extend(members)
    return np.asarray(order, np.int64)
