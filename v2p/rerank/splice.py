"""``--splice``: compose a new prompt from phrases of the retrieved ones.

Like CLIP Interrogator's "best" mode, but over phrases of real retrieved prompts: split the
candidates into phrases (comma and line level, generator flags removed), then greedily add
the phrase that most raises the similarity between the clip vector and the growing prompt,
penalising a phrase that repeats one already chosen, until nothing helps or the prompt would
exceed 77 CLIP tokens. The prompt's vector is approximated by the normalised sum of its
phrase vectors during the search (each phrase is encoded once); the language model prior,
when given, picks the most natural order of the chosen phrases.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence

import numpy as np

from v2p.data.normalize import normalize_prompt, strip_generator_flags
from v2p.rerank.lm import FluencyModel

CLIP_CONTEXT = 77
MAX_PHRASES = 8
REDUNDANCY = 1.0  # penalty weight on a phrase's excess similarity to one already chosen ...
REDUNDANCY_FLOOR = 0.6  # ... above this cosine: only near-repeats are penalised, not related phrases
MAX_CANDIDATE_PHRASES = 96  # phrases of the best candidates first; encoding them is most of splice's cost
_SPLIT_RE = re.compile(r"[,;]+")


@functools.lru_cache(maxsize=1)
def _clip_tokenizer():
    import open_clip

    return open_clip.get_tokenizer("ViT-B-32")  # open_clip's bundled BPE vocabulary: offline


def clip_token_count(text: str) -> int:
    """Tokens CLIP would use, start and end tokens included."""
    tok = _clip_tokenizer()
    return len(tok.encode(text)) + 2 if hasattr(tok, "encode") else int((tok([text])[0] != 0).sum())


def split_phrases(prompt: str) -> list[str]:
    """Comma/line-level phrases of a prompt, generator flags removed, empty pieces dropped.

    Flags go first, line by line, so a quoted value such as -neg "blurry, ugly" is never cut."""
    out = []
    for line in prompt.splitlines():
        for piece in _SPLIT_RE.split(strip_generator_flags(line)):
            piece = piece.strip(" .\t-")
            if piece:
                out.append(piece)
    return out


def candidate_phrases(prompts: Sequence[str], limit: int = MAX_CANDIDATE_PHRASES) -> list[str]:
    """Unique phrases (by normalised form) in order of first appearance, best candidates first."""
    seen, out = set(), []
    for p in prompts:
        for ph in split_phrases(p):
            key = normalize_prompt(ph)
            if key and key not in seen:
                seen.add(key)
                out.append(ph)
                if len(out) >= limit:
                    return out
    return out


def greedy_compose(video: np.ndarray, phrase_vectors: np.ndarray, token_counts: Sequence[int], *,
                   max_tokens: int = CLIP_CONTEXT, max_phrases: int = MAX_PHRASES,
                   redundancy: float = REDUNDANCY, floor: float = REDUNDANCY_FLOOR) -> list[int]:
    """Indices of the phrases to keep, in the order chosen (pure: vectors in, choice out)."""
    v = video / max(np.linalg.norm(video), 1e-12)
    p = phrase_vectors / np.maximum(np.linalg.norm(phrase_vectors, axis=1, keepdims=True), 1e-12)
    chosen: list[int] = []
    total = np.zeros_like(v)
    current, used = 0.0, 2  # start/end tokens
    for _ in range(max_phrases):
        best, best_gain = None, 0.0
        cand_sum = total[None, :] + p
        sims = (cand_sum @ v) / np.maximum(np.linalg.norm(cand_sum, axis=1), 1e-12)
        overlap = (p @ p[chosen].T).max(axis=1) if chosen else np.zeros(len(p))
        gains = sims - current - redundancy * np.clip(overlap - floor, 0, None)
        for i in np.argsort(-gains):
            if i in chosen:
                continue
            sep = 1 if chosen else 0  # the comma joining phrases
            if used + token_counts[i] - 2 + sep > max_tokens:
                continue
            if gains[i] > best_gain:
                best, best_gain = int(i), float(gains[i])
            break
        if best is None:
            break
        chosen.append(best)
        total = total + p[best]
        current = float(sims[best])
        used += token_counts[best] - 2 + (1 if len(chosen) > 1 else 0)
    return chosen


def splice_prompt(video_vector: np.ndarray, candidates, encoder, *, fluency: FluencyModel | None = None,
                  max_tokens: int = CLIP_CONTEXT) -> str:
    """A new prompt for one clip from its ranked candidates (``Candidate`` objects or strings)."""
    prompts = [c if isinstance(c, str) else c.prompt for c in candidates]
    phrases = candidate_phrases(prompts)
    if not phrases:
        return prompts[0] if prompts else ""
    vectors = encoder.encode_text(phrases)
    counts = [clip_token_count(ph) for ph in phrases]
    chosen = greedy_compose(np.asarray(video_vector, np.float32), vectors, counts, max_tokens=max_tokens)
    if not chosen:
        return split_phrases(prompts[0])[0] if prompts else ""
    parts = [phrases[i] for i in chosen]
    if fluency is not None and 1 < len(parts) <= 4:
        orders = list(itertools.permutations(parts))
        scores = fluency.score([", ".join(o) for o in orders])
        parts = list(orders[int(np.argmax(scores))])
    text = ", ".join(parts)
    while clip_token_count(text) > max_tokens and len(parts) > 1:  # the approximate count was off
        parts = parts[:-1]
        text = ", ".join(parts)
    return text
