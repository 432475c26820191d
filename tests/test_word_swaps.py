"""Word-swap negatives: substitutes learnt from shared contexts, swaps that change one word only,
and the rewording filter on real text vectors."""

from __future__ import annotations

import numpy as np

from v2p.train.data import embed_word_swaps
from v2p.train.word_swaps import FUNCTION_WORDS, find_substitutes, swap_words

CORPUS = [
    "a red cat running on the beach, 4k",
    "a red dog running on the beach, cinematic",
    "a blue cat sleeping on the sofa",
    "a blue dog sleeping on the sofa",
    "a green car driving in the city at night",
    "a green bus driving in the city at night",
    "Two cats 🐱 playing\nin the snow -ar 16:9",
    "two dogs playing in the snow -motion 2",
]


def test_substitutes_are_words_sharing_enough_contexts():
    subs = find_substitutes(CORPUS, min_shared=2)
    assert subs["cat"] == ["dog"] and subs["dog"] == ["cat"]  # ("red", "running"), ("blue", "sleeping")
    assert subs["red"] == ["blue"] and subs["blue"] == ["red"]  # ("a", "cat"), ("a", "dog")
    assert "car" not in subs  # shares one context with "bus" only: below min_shared
    assert "car" in find_substitutes(CORPUS, min_shared=1)["bus"]
    assert not set(subs) & FUNCTION_WORDS and not any(set(v) & FUNCTION_WORDS for v in subs.values())


def test_swaps_change_one_word_and_keep_the_rest_byte_for_byte():
    subs = {"cat": ["dog", "fox"], "red": ["blue"]}
    prompt = "A red cat 🐱 on the beach,\nRed sky -ar 16:9"
    swaps = swap_words(prompt, subs, count=10, rng=np.random.default_rng(0))
    assert len(swaps) == len(set(swaps)) == 4  # cat->dog, cat->fox, red->blue, Red->Blue
    assert set(swaps) == {"A red dog 🐱 on the beach,\nRed sky -ar 16:9", "A red fox 🐱 on the beach,\nRed sky -ar 16:9",
                          "A blue cat 🐱 on the beach,\nRed sky -ar 16:9", "A red cat 🐱 on the beach,\nBlue sky -ar 16:9"}
    assert len(swap_words(prompt, subs, count=2, rng=np.random.default_rng(0))) == 2
    assert swap_words("nothing to swap here", subs, count=3, rng=np.random.default_rng(0)) == []


def test_embedded_swaps_drop_rewordings_and_fill_slots_in_order():
    vocabulary = sorted({w for p in CORPUS for w in p.lower().replace(",", " ").split()} | {"fox"})

    def bag_of_words(texts):  # a real (if plain) text space: cosine falls with every changed word
        out = np.zeros((len(texts), len(vocabulary)), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(",", " ").split():
                out[i, vocabulary.index(w)] += 1
        return out

    prompts = CORPUS[:4]
    vectors = bag_of_words(prompts)
    swapped, has = embed_word_swaps(prompts, vectors, bag_of_words, per_prompt=3, seed=0)
    assert swapped.shape == (4, 3, len(vocabulary)) and has.shape == (4, 3)
    assert has.sum(1).tolist() == [3, 3, 3, 3]  # colour, animal and verb: one substitute each (red/blue...)
    assert not swapped[~has].any()
    for p, prompt in enumerate(prompts):
        for k in np.flatnonzero(has[p]):
            cos = swapped[p, k] @ vectors[p] / np.linalg.norm(swapped[p, k]) / np.linalg.norm(vectors[p])
            assert cos < 1 and np.abs(swapped[p, k] - vectors[p]).sum() == 2  # one word out, one in
    # a one-word swap of these 6- to 8-word prompts keeps cosine 6/7 or more: at 0.8 every swap is a rewording
    _, none_kept = embed_word_swaps(prompts, vectors, bag_of_words, per_prompt=3, seed=0, rewording_cosine=0.8)
    assert not none_kept.any()
