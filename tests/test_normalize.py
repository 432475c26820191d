import pytest

from v2p.data.normalize import normalize_prompt, prompt_id, strip_generator_flags


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A Red  Ball\nmoving left", "a red ball moving left"),
        ("  cinematic,\t4K  ", "cinematic, 4k"),
        ("Ｆｕｌｌｗｉｄｔｈ text", "fullwidth text"),  # NFKC folds compatibility forms
        ("emoji stays 🌊", "emoji stays 🌊"),
    ],
)
def test_normalize_prompt(raw, expected):
    assert normalize_prompt(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('a cat dancing -ar 16:9 -motion 4 -gs 24 -neg "blurry, ugly"', "a cat dancing"),
        ("sunset over sea -camera zoom in -seed 42", "sunset over sea"),
        ("-fps 24 a robot", "a robot"),
        ("a sci-fi city, neon -gs 12", "a sci-fi city, neon"),  # hyphenated words survive
        ("self-driving car -ar 9:16, 4k", "self-driving car, 4k"),
        ("no flags at all", "no flags at all"),
        ("price is -5 dollars", "price is -5 dollars"),  # not a known flag
    ],
)
def test_strip_generator_flags(raw, expected):
    assert strip_generator_flags(raw) == expected


def test_strip_flags_only_when_asked():
    raw = "A Dog -ar 16:9"
    assert normalize_prompt(raw) == "a dog -ar 16:9"
    assert normalize_prompt(raw, strip_flags=True) == "a dog"


def test_prompt_id_is_stable_and_content_addressed():
    a = prompt_id(normalize_prompt("A red ball"))
    assert a == prompt_id(normalize_prompt("a  RED\nball"))
    assert a != prompt_id(normalize_prompt("a blue ball"))
    assert len(a) == 16 and int(a, 16) >= 0
    # fixed value: ids must not change between versions, they are stored in indexes
    assert prompt_id("a red ball") == "aacb52bb89c0d846"
