"""Motion reversal of free-text prompts (the hard negatives of `v2p train`)."""

from __future__ import annotations

import pytest

from v2p.data.reverse_motion import reverse_motion


@pytest.mark.parametrize("prompt, reversed_prompt", [
    ("a red ball gliding from right to left, camera pans left",
     "a red ball gliding from left to right, camera pans right"),  # swapped all at once, not twice
    ("Cube RISING in the sky -camera zoom in -ar 16:9", "Cube FALLING in the sky -camera zoom out -ar 16:9"),
    ("Sunrise over the city,\ntime-lapse, rotate ccw 🌇", "Sunset over the city,\ntime-lapse, rotate cw 🌇"),
    ("a balloon getting bigger, slow push in", "a balloon getting smaller, slow pull back"),
    ("a man walking up the stairs", "a man walking down the stairs"),
    ("a flower blooming, zooming  in", "a flower wilting, zooming out"),
])
def test_reverses_every_directed_motion(prompt, reversed_prompt):
    assert reverse_motion(prompt) == reversed_prompt


@pytest.mark.parametrize("prompt", [
    "a ball bouncing up and down", "close-up of a cat", "a dog sitting on a sofa", "leftover pizza, 4k",
    "upside down city", "a pendulum swinging back and forth", "a car turning right now", "",
])
def test_no_direction_no_reversal(prompt):
    assert reverse_motion(prompt) is None


def test_neutral_phrase_next_to_a_directed_one():
    assert reverse_motion("close-up of a leaf falling") == "close-up of a leaf rising"
