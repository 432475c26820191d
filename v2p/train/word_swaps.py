"""Word-swap hard negatives: a prompt with one word replaced by a word the bank uses in its place.

Why: retrieval's first-place misses are mostly prompts that are right in every attribute but one
(for ``v2p-tiny`` on the held-out world, the subject's shape in 64 of 77). A batch of whole
prompts rarely isolates that one word, so the tower can stay blind to it. A negative that
differs from the true prompt in exactly one word forces the clip to decide that word alone;
this is NegCLIP's swap negatives (Yuksekgonul et al., 2023), made here from the bank's own
text with no tagger and no labels.

Which words may replace which is learnt from the bank by distribution: two words are
substitutes when they occur between the same left and right neighbours in at least
``min_shared`` distinct contexts ("a red *cube* on" and "a red *ball* on"). That finds nouns
for nouns, colours for colours, numbers for numbers, on any prompt corpus (VidProM's free text
as much as a synthetic grammar). Function words are never swapped. A swap can hit a synonym
("cube" for "box"): the training side drops swaps whose text vector is at rewording distance
of the original (``REWORDING_COSINE``), and what remains is the noise NegCLIP also accepts.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np

# words never swapped: a changed article or preposition rarely changes what a video shows
FUNCTION_WORDS = frozenset("""
a an the and or but nor of in on at to from by with without into onto over under above below
near beside between through across along around about against among behind beyond up down off
out is are was were be been being am it its this that these those there here as than then so
very too just some any all each every no not for while during after before his her their our my
your we you they he she i me him them us who whom which what when where why how
""".split())

_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")  # letters/digits, inner ' and - kept ("five-pointed")
_START, _END = "<s>", "</s>"
MAX_WORDS_PER_CONTEXT = 64  # a context shared by more words than this says little about any pair


def _is_swappable(word: str) -> bool:
    return word not in FUNCTION_WORDS and len(word) > 1


def find_substitutes(prompts: list[str], min_shared: int = 2) -> dict[str, list[str]]:
    """For each swappable word of the corpus, the words seen in at least ``min_shared`` of its
    (left word, right word) contexts, most shared first. Lower-cased; pure function of the text."""
    words_in: dict[tuple[str, str], set[str]] = defaultdict(set)
    for prompt in prompts:
        words = [m.group(0).lower() for m in _WORD.finditer(prompt)]
        for i, word in enumerate(words):
            if _is_swappable(word):
                left = words[i - 1] if i else _START
                right = words[i + 1] if i + 1 < len(words) else _END
                words_in[(left, right)].add(word)
    shared: dict[str, Counter] = defaultdict(Counter)
    for words in words_in.values():
        if 2 <= len(words) <= MAX_WORDS_PER_CONTEXT:
            for word in words:
                shared[word].update(w for w in words if w != word)
    return {word: [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_shared]
            for word, counts in sorted(shared.items())
            if any(n >= min_shared for n in counts.values())}


def swap_words(prompt: str, substitutes: dict[str, list[str]], count: int, rng: np.random.Generator) -> list[str]:
    """Up to ``count`` distinct variants of ``prompt``, each with one word replaced by one of its
    substitutes (positions and substitutes drawn at random; the rest of the text kept byte for byte)."""
    options = [(m.start(), m.end(), sub) for m in _WORD.finditer(prompt)
               for sub in substitutes.get(m.group(0).lower(), ())]
    out: list[str] = []
    for i in rng.permutation(len(options)).tolist():
        start, end, sub = options[i]
        original = prompt[start:end]
        if original[:1].isupper():
            sub = sub[:1].upper() + sub[1:]
        variant = prompt[:start] + sub + prompt[end:]
        if variant != prompt and variant not in out:
            out.append(variant)
            if len(out) == count:
                break
    return out
