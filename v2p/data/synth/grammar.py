"""Procedural prompts: attributes first, then one of many surface forms.

A prompt is sampled as attributes (subject = shape x colour x count, action, scene, camera,
style), then written out through templates, synonyms, varying word order and the filler
real prompts carry ("4k, cinematic", Pika flags, the odd emoji or line break), so matching
words alone is not enough to find the right prompt. The vocabulary is data, not code.
"""

from __future__ import annotations

import numpy as np

SHAPES: dict[str, list[tuple[str, str]]] = {  # value -> [(singular, plural)]
    "circle": [("circle", "circles"), ("ball", "balls"), ("sphere", "spheres"), ("disc", "discs"), ("orb", "orbs")],
    "square": [("square", "squares"), ("box", "boxes"), ("block", "blocks"), ("cube", "cubes")],
    "triangle": [("triangle", "triangles"), ("pyramid", "pyramids"), ("triangular shape", "triangular shapes")],
    "star": [("star", "stars"), ("star shape", "star shapes"), ("five-pointed star", "five-pointed stars")],
    "diamond": [("diamond", "diamonds"), ("rhombus", "rhombuses"), ("gem", "gems")],
    "cross": [("cross", "crosses"), ("plus sign", "plus signs"), ("cross shape", "cross shapes")],
}
COLOURS: dict[str, list[str]] = {
    "red": ["red", "crimson", "scarlet", "bright red"],
    "green": ["green", "emerald", "lime green"],
    "blue": ["blue", "cobalt blue", "azure", "deep blue"],
    "yellow": ["yellow", "golden", "lemon yellow"],
    "purple": ["purple", "violet", "lilac"],
    "orange": ["orange", "tangerine", "amber"],
    "cyan": ["cyan", "turquoise", "aqua"],
    "white": ["white", "pure white", "ivory"],
}
COUNTS: dict[int, list[str]] = {1: ["a", "one", "a single", "a lone"], 2: ["two", "2", "a pair of"], 3: ["three", "3", "a trio of"]}
ACTIONS: dict[str, list[str]] = {
    "moving left": ["moving left", "sliding to the left", "drifting leftward", "gliding from right to left"],
    "moving right": ["moving right", "sliding to the right", "drifting rightward", "gliding from left to right"],
    "moving up": ["moving up", "rising", "floating upward", "climbing up"],
    "moving down": ["moving down", "falling", "sinking downward", "dropping down"],
    "rotating": ["rotating", "spinning", "turning round and round", "twirling"],
    "growing": ["growing", "getting bigger", "expanding", "growing larger"],
    "shrinking": ["shrinking", "getting smaller", "contracting", "shrinking away"],
    "bouncing": ["bouncing", "bouncing up and down", "hopping", "bouncing around"],
    "still": ["standing still", "motionless", "resting", "not moving"],
}
SCENES: dict[str, list[str]] = {
    "sky": ["in the sky", "against a blue sky", "in a cloudy sky", "up among the clouds"],
    "ocean": ["over the ocean", "above ocean waves", "by the sea", "over rolling waves"],
    "desert": ["in the desert", "over sand dunes", "in a sandy desert", "on desert sand"],
    "grass": ["on a grass field", "in a green meadow", "over a grassy field", "on a lawn"],
    "night": ["at night under the stars", "in a starry night sky", "on a starry night", "under a night sky"],
    "snow": ["in falling snow", "during a snowstorm", "while snow falls", "in a snowfall"],
    "solid": ["on a plain background", "against a solid backdrop", "on a blank background", "on a flat colour background"],
    "stripes": ["on a striped background", "in front of stripes", "with a striped backdrop", "against bold stripes"],
}
CAMERAS: dict[str, list[str]] = {
    "static": ["", "static camera", "fixed shot", "locked-off camera"],
    "pan left": ["camera pans left", "panning left", "pan left shot", "-camera pan left"],
    "pan right": ["camera pans right", "panning right", "pan right shot", "-camera pan right"],
    "zoom in": ["camera zooms in", "zoom in", "slow push in", "-camera zoom in"],
    "zoom out": ["camera zooms out", "zoom out", "slow pull back", "-camera zoom out"],
}
STYLES: dict[str, list[str]] = {
    "none": [""],
    "black and white": ["black and white", "monochrome", "grayscale footage"],
    "pixel art": ["pixel art", "8-bit style", "retro pixel graphics"],
    "blurry": ["blurry", "out of focus", "soft focus"],
    "high contrast": ["high contrast", "harsh contrast", "dramatic contrast"],
    "neon": ["neon", "neon glow", "cyberpunk neon lights"],
}
FILLER = ["4k", "cinematic", "highly detailed", "trending on artstation", "8k uhd", "hyperrealistic",
          "unreal engine", "masterpiece", "sharp focus", "award winning", "octane render", "HD"]
PIKA_FLAGS = ["-ar 16:9", "-ar 9:16", "-motion 2", "-motion 4", "-gs 12", "-gs 24", '-neg "blurry, low quality"',
              "-seed 1234", "-fps 24"]
PREFIXES = ["", "", "a video of ", "footage of ", "animation of ", "a clip showing ", "a short film of "]
EMOJI = ["✨", "🌊", "🔥", "🎬", "💫", "🌈"]

ATTRIBUTE_NAMES = ("shape", "colour", "count", "action", "scene", "camera", "style")
ATTRIBUTE_VALUES: dict[str, list] = {
    "shape": list(SHAPES), "colour": list(COLOURS), "count": list(COUNTS), "action": list(ACTIONS),
    "scene": list(SCENES), "camera": list(CAMERAS), "style": list(STYLES),
}


def _pick(rng: np.random.Generator, options: list):
    return options[int(rng.integers(len(options)))]


def sample_attributes(rng: np.random.Generator) -> dict:
    """Uniform over every attribute; camera and style lean to 'static'/'none' as real prompts do."""
    attrs = {name: _pick(rng, values) for name, values in ATTRIBUTE_VALUES.items()}
    if rng.random() < 0.4:
        attrs["camera"] = "static"
    if rng.random() < 0.3:
        attrs["style"] = "none"
    attrs["count"] = int(attrs["count"])
    return attrs


def write_prompt(attrs: dict, rng: np.random.Generator) -> str:
    """One surface form of ``attrs``: template, synonyms, order and filler all drawn from ``rng``."""
    singular, plural = _pick(rng, SHAPES[attrs["shape"]])
    count_word = _pick(rng, COUNTS[attrs["count"]])
    colour = _pick(rng, COLOURS[attrs["colour"]])
    noun = singular if attrs["count"] == 1 else plural
    if count_word in ("a",) and colour[0] in "aeiou":
        count_word = "an"
    subject = f"{count_word} {colour} {noun}"
    action = _pick(rng, ACTIONS[attrs["action"]])
    scene = _pick(rng, SCENES[attrs["scene"]])
    camera = _pick(rng, CAMERAS[attrs["camera"]])
    style = _pick(rng, STYLES[attrs["style"]])

    form = int(rng.integers(4))
    if form == 0:  # "a red ball sliding left over the ocean, neon, camera pans left"
        parts = [f"{subject} {action} {scene}", style, camera]
    elif form == 1:  # "over the ocean, a red ball sliding left, ..."
        parts = [scene, f"{subject} {action}", style, camera]
    elif form == 2:  # "neon style: a red ball ..., sliding left"
        lead = f"{style} " if style else ""
        parts = [f"{lead}{subject} {scene}", action, camera]
    else:  # comma-separated tag list
        parts = [subject, action, scene, camera, style]
    parts = [p for p in parts if p]
    if attrs["camera"] != "static" and camera.startswith("-camera") and camera in parts:
        parts.remove(camera)  # a Pika camera flag goes at the end, after the text
        flags = [camera]
    else:
        flags = []
    n_filler = int(rng.integers(0, 4))
    if n_filler:
        parts.extend(rng.choice(FILLER, size=n_filler, replace=False).tolist())
    sep = "\n" if rng.random() < 0.02 else ", "
    prefix = _pick(rng, PREFIXES) if form != 1 else ""  # "a video of over the ocean" reads wrong
    text = prefix + sep.join(parts)
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.04:
        text += " " + _pick(rng, EMOJI)
    if rng.random() < 0.25:
        flags.extend(rng.choice(PIKA_FLAGS, size=int(rng.integers(1, 4)), replace=False).tolist())
    if flags:
        text += " " + " ".join(flags)
    return text
