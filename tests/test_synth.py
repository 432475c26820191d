"""The synthetic text-to-video world: layout, determinism, decodability, temporal design."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tarfile

import numpy as np
import pytest

from v2p.data.frames import sample_frames
from v2p.data.prompts import read_prompts_table
from v2p.data.synth.grammar import ATTRIBUTE_NAMES, ATTRIBUTE_VALUES
from v2p.data.synth.render import GENERATORS, render_frames
from v2p.data.synth.writer import SYNTH_COLUMNS, synth_prompts, write_synthetic_shard
from v2p.errors import V2PError


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_is_vidprom(small_shard):
    assert sorted(p.name for p in small_shard.iterdir()) == [
        "ms_videos_1.tar", "pika_videos_1.tar", "prompts.csv", "vc2_videos_1.tar"]
    header = (small_shard / "prompts.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == SYNTH_COLUMNS
    table = read_prompts_table(small_shard / "prompts.csv")
    uuids = set(table.column("uuid").to_pylist())
    for gen in ("pika", "vc2", "ms"):
        with tarfile.open(small_shard / f"{gen}_videos_1.tar") as tf:
            names = tf.getnames()
        assert {n[len(gen) + 1: -4] for n in names} == uuids
        assert all(n.startswith(f"{gen}-") and n.endswith(".mp4") for n in names)
    for attrs in table.column("attributes").to_pylist():
        a = json.loads(attrs)
        assert set(a) == set(ATTRIBUTE_NAMES)
        assert all(a[k] in ATTRIBUTE_VALUES[k] for k in ATTRIBUTE_NAMES)


def test_same_seed_same_shard_other_seed_differs(small_shard, tmp_path):
    again = write_synthetic_shard(tmp_path / "again", 12, seed=7, workers=2).out
    for name in ("prompts.csv", "pika_videos_1.tar", "vc2_videos_1.tar", "ms_videos_1.tar"):
        assert digest(small_shard / name) == digest(again / name), name
    other = write_synthetic_shard(tmp_path / "other", 12, seed=8, workers=1).out
    assert digest(small_shard / "prompts.csv") != digest(other / "prompts.csv")


def test_generator_subset_keeps_other_videos(small_shard, tmp_path):
    sub = write_synthetic_shard(tmp_path / "sub", 12, seed=7, generators=["vc2"], workers=1).out
    assert digest(sub / "vc2_videos_1.tar") == digest(small_shard / "vc2_videos_1.tar")


def test_surface_forms_vary_for_the_same_attributes():
    prompts = synth_prompts(400, 3)
    by_attrs: dict[str, set[str]] = {}
    for p in prompts:
        by_attrs.setdefault(json.dumps({k: p.attributes[k] for k in ("shape", "action")}), set()).add(p.prompt)
    assert max(len(v) for v in by_attrs.values()) >= 5
    texts = [p.prompt for p in prompts]
    assert any("\n" in t for t in texts)  # real prompts carry line breaks...
    assert any(" -ar " in t or " -gs " in t or " -neg " in t for t in texts)  # ...and Pika flags
    assert any(ord(c) > 0x2000 for t in texts for c in t)  # ...and emoji


def test_every_video_decodes_with_both_backends(small_shard):
    from v2p.data.bad_records import BadRecords
    from v2p.data.shard import open_shard

    shard = open_shard(small_shard)
    seen = 0
    for ref, data in shard.video_payloads(BadRecords()):
        profile = GENERATORS[ref.generator]
        for backend in ("decord", "pyav"):
            frames = sample_frames(data, 8, name=ref.member, backend=backend)
            assert frames.shape == (8, profile.height, profile.width, 3), (ref, backend)
            assert frames.std() > 5  # real pictures, not blank frames
        seen += 1
    assert seen == 36


@pytest.mark.parametrize(("a", "b"), [("moving left", "moving right"), ("moving up", "moving down"),
                                      ("growing", "shrinking")])
def test_direction_is_only_in_frame_order(a, b):
    """Opposite motions render the same frames in reverse: equal means, different order."""
    profile = dataclasses.replace(GENERATORS["vc2"], noise=0.0)  # noise planes differ by frame index
    base = {"shape": "square", "colour": "red", "count": 1, "scene": "solid", "camera": "static", "style": "none"}
    fa = render_frames({**base, "action": a}, profile, np.random.default_rng(5)).astype(np.float32)
    fb = render_frames({**base, "action": b}, profile, np.random.default_rng(5)).astype(np.float32)
    mean_gap = np.abs(fa.mean(0) - fb.mean(0)).mean()
    order_gap = np.abs(fa - fb).mean()
    assert mean_gap < 0.05 * order_gap  # the mean frame hides the direction ...
    assert np.abs(fa - fb[::-1]).mean() < 0.05 * order_gap  # ... frame order reveals it


def test_camera_moves_are_symmetric_too():
    profile = GENERATORS["ms"]
    base = {"shape": "circle", "colour": "blue", "count": 2, "action": "still", "scene": "stripes", "style": "none"}
    for a, b in (("pan left", "pan right"), ("zoom in", "zoom out")):
        fa = render_frames({**base, "camera": a}, profile, np.random.default_rng(9)).astype(np.float32)
        fb = render_frames({**base, "camera": b}, profile, np.random.default_rng(9)).astype(np.float32)
        assert np.abs(fa.mean(0) - fb.mean(0)).mean() < 0.1 * np.abs(fa - fb).mean()


def test_generators_differ_like_real_ones(small_shard):
    sizes = {g: (p.height, p.width) for g, p in GENERATORS.items()}
    assert len(set(sizes.values())) == len(GENERATORS)
    assert len({p.fps for p in GENERATORS.values()}) >= 3


def test_bad_arguments():
    with pytest.raises(V2PError, match="unknown generator"):
        write_synthetic_shard("/tmp/never", 3, generators=["sora"])
    with pytest.raises(V2PError, match="at least 1"):
        write_synthetic_shard("/tmp/never", 0)


def test_refuses_to_overwrite_without_flag(small_shard):
    with pytest.raises(V2PError, match="not empty"):
        write_synthetic_shard(small_shard, 2)
