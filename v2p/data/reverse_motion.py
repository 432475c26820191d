"""The prompt of a clip played backwards: every motion word swapped for its opposite.

Why: a video tower that averages its frames cannot tell "a car driving to the left" from
"a car driving to the right" when the only difference is the order of the frames, and
contrastive training on random prompt pairs never asks it to (in a random batch the other
attributes already tell prompts apart). ``v2p train`` therefore adds, for each prompt that
names a direction, the same prompt with the direction reversed as a *hard negative*: a text
that matches everything in the clip except its arrow of time.

This works on free text (real VidProM prompts, Pika ``-camera pan left`` flags), not on the
synthetic grammar: an English lexicon of opposite motion words and phrases. Direction-neutral
phrases ("up and down", "back and forth", "close-up", "upside down") are left alone, and a
prompt with no directed motion has no reversal (``None``), so it gets no hard negative.
"""

from __future__ import annotations

import re

# (word or phrase, its opposite); the table is used in both directions unless marked one-way
_PAIRS: list[tuple[str, str]] = [
    ("left", "right"), ("leftward", "rightward"), ("leftwards", "rightwards"),
    ("up", "down"), ("upward", "downward"), ("upwards", "downwards"), ("uphill", "downhill"),
    ("upstairs", "downstairs"), ("rising", "falling"), ("rises", "falls"), ("rise", "fall"),
    ("ascending", "descending"), ("ascends", "descends"), ("ascend", "descend"),
    ("growing", "shrinking"), ("grows", "shrinks"), ("grow", "shrink"), ("bigger", "smaller"),
    ("expanding", "contracting"), ("expands", "contracts"), ("expand", "contract"),
    ("inflating", "deflating"), ("inflates", "deflates"),
    ("zoom in", "zoom out"), ("zooms in", "zooms out"), ("zooming in", "zooming out"),
    ("zoomed in", "zoomed out"), ("push in", "pull back"), ("pushing in", "pulling back"),
    ("pushes in", "pulls back"), ("dolly in", "dolly out"),
    ("clockwise", "counterclockwise"), ("cw", "ccw"),
    ("forward", "backward"), ("forwards", "backwards"),
    ("approaching", "receding"), ("approaches", "recedes"),
    ("towards the camera", "away from the camera"),
    ("opening", "closing"), ("opens", "closes"),
    ("appearing", "disappearing"), ("appears", "disappears"),
    ("entering", "exiting"), ("enters", "exits"),
    ("filling", "emptying"), ("inhaling", "exhaling"),
    ("sunrise", "sunset"), ("blooming", "wilting"),
]
_ONE_WAY: dict[str, str] = {
    "larger": "smaller", "anticlockwise": "clockwise", "counter-clockwise": "clockwise",
    "toward the camera": "away from the camera", "pull out": "push in", "pulling out": "pushing in",
}
# phrases whose motion has no arrow of time (or whose words are not motion at all)
_NEUTRAL = [
    "up and down", "down and up", "left and right", "right and left", "back and forth", "forth and back",
    "side to side", "to and fro", "in and out", "round and round", "rise and fall", "ups and downs",
    "upside down", "upside-down", "close up", "close-up", "up close", "right now", "all right",
    "right angle", "right-angle",
]


def _table() -> dict[str, str]:
    table = {a: b for a, b in _PAIRS} | {b: a for a, b in _PAIRS} | _ONE_WAY
    return table | {phrase: phrase for phrase in _NEUTRAL}


_SWAP = _table()
# longest first, so "zoom in" wins over nothing and "up and down" over "up"; words stand alone
_SWAP_RE = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(k).replace(r"\ ", r"\s+") for k in sorted(_SWAP, key=len, reverse=True))
    + r")(?![\w-])",
    re.IGNORECASE,
)


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def reverse_motion(prompt: str) -> str | None:
    """``prompt`` with each directed motion word swapped for its opposite, all at once
    ("gliding from left to right" -> "gliding from right to left"); None when it names none."""
    changed = False

    def swap(m: re.Match) -> str:
        nonlocal changed
        found = m.group(0)
        opposite = _SWAP[re.sub(r"\s+", " ", found.lower())]
        if opposite == re.sub(r"\s+", " ", found.lower()):
            return found
        changed = True
        return _match_case(found, opposite)

    out = _SWAP_RE.sub(swap, prompt)
    return out if changed else None
