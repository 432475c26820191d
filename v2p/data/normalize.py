"""Prompt normalisation: the key that decides when two prompts are "the same".

Real prompts differ in case, runs of spaces, line breaks and (for Pika) trailing generator
flags such as ``-ar 16:9 -motion 4 -gs 24 -neg "blurry"``. Dedup keys on a normalised form
and gives each unique prompt a stable id derived from that form alone, so the id does not
depend on file order or on which shard a prompt came from.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Generator flags seen in VidProM prompts (Pika's discord syntax). Each takes one value;
# -neg takes a quoted phrase or a single word, -camera takes one or two words.
_VALUE = r'(?:"[^"]*"|\'[^\']*\'|“[^”]*”|[^\s"\',]+)'
_CAMERA_VALUE = r"(?:zoom\s+(?:in|out)|pan\s+(?:left|right|up|down)|rotate\s+(?:cw|ccw|clockwise|counterclockwise|anticlockwise)|\S+)"
FLAG_NAMES = ("ar", "motion", "gs", "neg", "seed", "fps")
_FLAG_RE = re.compile(
    r"(?:(?<=\s)|^)(?:--?(?:" + "|".join(FLAG_NAMES) + r")\s+" + _VALUE
    + r"|--?camera\s+" + _CAMERA_VALUE + r")(?=[\s,]|$)",
    re.IGNORECASE,
)
_SPACE_RE = re.compile(r"\s+")
_SPACE_BEFORE_COMMA_RE = re.compile(r"\s+,")


def strip_generator_flags(prompt: str) -> str:
    """Remove generator flags (``-ar 16:9``, ``-neg "blurry"``, ``-camera zoom in`` ...).

    A flag must stand alone (start of text or after white space) and be followed by white
    space or the end, so hyphenated words such as ``sci-fi`` or ``-gsm`` are left intact.
    """
    stripped = _SPACE_RE.sub(" ", _FLAG_RE.sub(" ", prompt))
    return _SPACE_BEFORE_COMMA_RE.sub(",", stripped).strip(" ,")


def normalize_prompt(prompt: str, *, strip_flags: bool = False) -> str:
    """Unicode NFKC, case-folded, white space (newlines too) collapsed to one space."""
    text = unicodedata.normalize("NFKC", prompt)
    if strip_flags:
        text = strip_generator_flags(text)
    return _SPACE_RE.sub(" ", text).strip().casefold()


def prompt_id(normalized: str) -> str:
    """Stable 16-hex-digit id of a normalised prompt (BLAKE2b, 64 bits)."""
    return hashlib.blake2b(normalized.encode("utf-8"), digest_size=8).hexdigest()
