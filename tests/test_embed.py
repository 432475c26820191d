"""Encoders: spec parsing, real open_clip code paths (random tiny config, checkpoints), real MiniLM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from v2p.embed.clip import OpenClipEncoder
from v2p.embed.factory import create_encoder, parse_spec
from v2p.errors import EncoderSpecError

from conftest import TINY_CLIP

PROMPTS = [
    "a red ball",
    "A video of 2 tangerine crosses in a sandy desert, climbing up, fixed shot, octane render -ar 16:9",
    "emoji 🌊🔥 and a multi\nline prompt",
    "x",
    " ".join(["a very long prompt about a cat"] * 30),  # beyond 77 tokens: truncated
    'Wow!", she said',  # "!" is BPE id 0, the same id as padding
    "!!! a dog on a skateboard!!! 🐶🛹!",
    "!",
    " ".join(["cat"] * 75),  # exactly 77 tokens with start and end: fits, not truncated
    " ".join(["cat"] * 75) + " !",  # one more: cut
]


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [("clip:ViT-B-32/laion2b_s34b_b79k", "clip:ViT-B-32/laion2b_s34b_b79k"),
     ("clip:ViT-B-32@/models/x.pt", "clip:ViT-B-32@/models/x.pt"),
     ("minilm", "minilm"), ("v2p-tiny", "v2p-tiny"), ("v2p:/some/dir", "v2p:/some/dir")],
)
def test_parse_spec(spec, canonical):
    assert parse_spec(spec).canonical == canonical


@pytest.mark.parametrize("spec", ["", "clip:", "clip:ViT-B-32", "bert", "clip:/tag", "clip:model@"])
def test_unknown_spec_lists_valid_forms(spec):
    with pytest.raises(EncoderSpecError, match="valid forms: clip:<model>/<pretrained>"):
        parse_spec(spec)


@pytest.fixture(scope="module")
def tiny():
    return create_encoder(TINY_CLIP)


def test_trimmed_text_equals_padded(tiny):
    assert tiny.trim_supported
    trimmed = tiny.encode_text(PROMPTS, batch_size=2, trim=True)
    padded = tiny.encode_text(PROMPTS, batch_size=2, trim=False)
    assert trimmed.shape == (len(PROMPTS), tiny.dim)
    assert np.abs(trimmed - padded).max() < 1e-5
    assert np.allclose(np.linalg.norm(trimmed, axis=1), 1.0, atol=1e-5)


def test_batch_order_is_restored(tiny):
    together = tiny.encode_text(PROMPTS, batch_size=2)
    one_by_one = np.concatenate([tiny.encode_text([p]) for p in PROMPTS])
    assert np.abs(together - one_by_one).max() < 1e-5


def test_long_prompts_are_counted_as_truncated(tiny):
    before = tiny.truncated_count
    tiny.encode_text(PROMPTS)
    assert tiny.truncated_count - before == 2


def test_exclamation_prompts_keep_their_own_embedding(tiny):
    """Counting non-zero ids cut the EOT of prompts with "!" and pooled the start token:
    unrelated prompts then embedded identically."""
    a, b = tiny.encode_text(['Wow!", she said', "Stop! a red car turns left"])
    assert float(a @ b) < 0.999


def test_random_init_is_one_space_across_instances():
    a = OpenClipEncoder("v2p-clip-tiny", pretrained="random").encode_text(["same space"])
    torch.manual_seed(123)  # global RNG state must not matter
    b = OpenClipEncoder("v2p-clip-tiny", pretrained="random").encode_text(["same space"])
    assert np.array_equal(a, b)


def test_local_checkpoint_loads_through_open_clip(tiny, tmp_path):
    ckpt = tmp_path / "tiny.pt"
    torch.save(tiny.model.state_dict(), ckpt)
    loaded = create_encoder(f"clip:v2p-clip-tiny@{ckpt}")
    assert loaded.spec == f"clip:v2p-clip-tiny@{ckpt}"
    assert np.abs(loaded.encode_text(PROMPTS) - tiny.encode_text(PROMPTS)).max() < 1e-6


def test_checkpoint_errors(tmp_path):
    with pytest.raises(EncoderSpecError, match="checkpoint not found"):
        create_encoder(f"clip:v2p-clip-tiny@{tmp_path / 'missing.pt'}")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(EncoderSpecError, match="cannot load checkpoint"):
        create_encoder(f"clip:v2p-clip-tiny@{bad}")


def test_unknown_model_and_tag():
    with pytest.raises(EncoderSpecError, match="unknown open_clip model"):
        create_encoder("clip:NoSuchNet/random")
    with pytest.raises(EncoderSpecError, match="no pretrained tag 'nope' for ViT-B-32; known tags: .*laion2b_s34b_b79k"):
        create_encoder("clip:ViT-B-32/nope")


def test_offline_pretrained_tag_is_a_clear_error_not_random_weights(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderSpecError, match="not in the Hugging Face cache.*clip:ViT-B-32@"):
        create_encoder("clip:ViT-B-32/laion2b_s34b_b79k")


def test_uncached_tag_fails_fast_even_without_offline_mode(monkeypatch):
    """Without HF_HUB_OFFLINE the hub's retries took ~54 s here before the same error."""
    import time

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("V2P_ALLOW_DOWNLOAD", raising=False)
    t0 = time.perf_counter()
    with pytest.raises(EncoderSpecError, match="V2P_ALLOW_DOWNLOAD=1"):
        create_encoder("clip:ViT-B-32/openai")
    assert time.perf_counter() - t0 < 10


def test_frames_are_encoded_per_frame_and_pooled(tiny):
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (4, 40, 70, 3), dtype=np.uint8) for _ in range(3)]
    frames = tiny.encode_frames(clips)
    assert frames.shape == (3, 4, tiny.frame_dim)
    assert np.allclose(np.linalg.norm(frames, axis=-1), 1.0, atol=1e-5)
    pooled = tiny.pool(frames)
    assert pooled.shape == (3, tiny.dim)
    assert np.allclose(pooled, tiny.encode_videos(clips), atol=1e-6)
    with pytest.raises(EncoderSpecError, match="no pooling 'temporal'"):
        tiny.pool(frames, "temporal")


def test_minilm_is_real_and_text_only():
    enc = create_encoder("minilm")
    v = enc.encode_text(["a red ball bouncing", "a crimson sphere hopping", "a spreadsheet of tax figures"])
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2  # real weights: paraphrases are closer than unrelated text
    with pytest.raises(EncoderSpecError, match="text-only"):
        enc.encode_frames([np.zeros((2, 8, 8, 3), np.uint8)])


def test_encoders_are_built_once():
    assert create_encoder("minilm") is create_encoder("minilm")


def test_cache_is_keyed_by_the_resolved_device():
    """device=None and the device it resolves to are one model, loaded once."""
    from v2p.embed.base import pick_device

    assert create_encoder("minilm") is create_encoder("minilm", pick_device(None))


def test_model_folder_specs_are_stored_absolute(tmp_path, monkeypatch):
    from v2p.embed.factory import canonical_spec

    monkeypatch.chdir(tmp_path)
    assert canonical_spec("v2p:models/mine") == f"v2p:{tmp_path / 'models' / 'mine'}"
    assert canonical_spec("v2p-tiny") == "v2p-tiny" and canonical_spec("v2p-sight") == "v2p-sight"


def test_encoder_modules_do_not_import_the_factory():
    """The factory builds sub-encoders and hands them in: no import loop factory <-> tower."""
    from pathlib import Path

    import v2p.embed as pkg

    root = Path(pkg.__file__).parent
    for module in [root / "tower.py", root / "clip.py", root / "minilm.py", *sorted((root / "sight").glob("*.py"))]:
        assert "v2p.embed.factory" not in module.read_text(), module.name
