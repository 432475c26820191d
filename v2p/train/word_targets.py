"""Bag-of-words targets for ``v2p train --word-loss W``: which of the corpus's content words each prompt uses.

Why: contrastive training into a frozen text space only asks that a clip land nearer its own
prompt than the batch's other prompts. When the other attributes already tell a batch apart,
an attribute such as the subject's shape is never needed, and the frame encoder never learns
it (``benchmarks/attribute_swaps.py``). Predicting every content word of the prompt from the
frame vectors asks for each word separately. This is the cheapest form of captioning
supervision (multi-label tags, as in VirTex or tag-prediction pretraining). It comes from the
prompt text alone, with no labels, so it works on any corpus.

The vocabulary is a pure function of the training prompts: lower-cased words (the same word
pattern as the word swaps), function words dropped, kept when at least ``min_prompts``
prompts use them and at most ``max_fraction`` of them do (a word in every prompt tells no
clip from another), the ``max_words`` most used first.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from v2p.train.word_swaps import _WORD, FUNCTION_WORDS


def prompt_words(prompt: str) -> set[str]:
    """The distinct content words of a prompt, lower-cased."""
    return {w for w in (m.group(0).lower() for m in _WORD.finditer(prompt))
            if w not in FUNCTION_WORDS and len(w) > 1 and not w.isdigit()}


def word_vocabulary(prompts: list[str], *, min_prompts: int = 5, max_fraction: float = 0.5,
                    max_words: int = 2000) -> list[str]:
    """Content words used by enough prompts to learn from and few enough to tell prompts apart."""
    counts = Counter(w for p in prompts for w in prompt_words(p))
    ceiling = max_fraction * len(prompts)
    kept = [w for w, c in counts.items() if min_prompts <= c <= ceiling]
    kept.sort(key=lambda w: (-counts[w], w))
    return kept[:max_words]


def word_targets(prompts: list[str], vocabulary: list[str]) -> np.ndarray:
    """bool [n_prompts, len(vocabulary)]: prompt i uses word j."""
    column = {w: j for j, w in enumerate(vocabulary)}
    out = np.zeros((len(prompts), len(vocabulary)), bool)
    for i, prompt in enumerate(prompts):
        for w in prompt_words(prompt):
            j = column.get(w)
            if j is not None:
                out[i, j] = True
    return out
