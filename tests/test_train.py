"""Training: a few real steps lower the loss; trained folders load as encoders; cached-frame training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from v2p.data.shard import open_shard
from v2p.embed.factory import create_encoder
from v2p.embed.tower import TemporalHead, MeanHead
from v2p.errors import EncoderSpecError, V2PError
from v2p.index.build import BuildConfig, build_index
from v2p.retrieval.search import Retriever
from v2p.train import data as train_data
from v2p.train.loop import ContrastiveLoss, TrainConfig, train_tower

import torch


@pytest.fixture(scope="module")
def shard_set(small_shard):
    return train_data.from_shard(open_shard(small_shard), text_encoder="minilm", image_size=64)


def test_training_set_from_shard(shard_set):
    assert shard_set.inputs.shape == (36, 8, 64, 64, 3) and shard_set.inputs.dtype == np.uint8
    assert shard_set.text_vectors.shape == (12, 384)
    assert sorted(np.bincount(shard_set.video_prompt).tolist()) == [3] * 12  # 3 generators per prompt
    train, val = shard_set.split(0.25, seed=0)
    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == 12


@pytest.mark.parametrize("head,group,pairs,max_pool", [("temporal", 1, False, False), ("mean", 1, False, False),
                                                        ("temporal", 3, True, True)])
def test_a_few_steps_lower_the_loss(shard_set, tmp_path, head, group, pairs, max_pool):
    cfg = TrainConfig(epochs=12, batch_size=9, lr=3e-3, patience=100, val_fraction=0.25, augment=False,
                      neighbour_group=group, video_pairs=pairs)
    result = train_tower(shard_set, tmp_path / head, head=head, cfg=cfg, tower_overrides={"frame_max_pool": max_pool})
    losses = [r["train_loss"] for r in result.history]
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    assert {"val_loss", "val_r1", "val_r5", "val_video_r1"} <= set(result.history[0])
    files = sorted(p.name for p in (tmp_path / head).iterdir())
    assert files == ["config.json", "model.safetensors", "train_log.jsonl", "training.json"]
    log = [json.loads(line) for line in (tmp_path / head / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(1, 13))
    training = json.loads((tmp_path / head / "training.json").read_text())
    assert training["train_config"]["neighbour_group"] == group
    assert training["train_config"]["video_pairs"] is pairs
    assert training["word_swaps_per_prompt"] == 0 and "val_swap_acc" not in result.history[0]
    assert json.loads((tmp_path / head / "config.json").read_text())["frame_max_pool"] is max_pool


def test_word_swaps_enter_training_and_are_recorded(shard_set, tmp_path):
    from dataclasses import replace

    mini = create_encoder("minilm")
    # 12 prompts rarely repeat a context twice: one shared context is evidence enough here
    swaps, has = train_data.embed_word_swaps(shard_set.prompts, shard_set.text_vectors, mini.encode_text,
                                             per_prompt=2, min_shared=1)
    assert has.any()
    data = replace(shard_set, swap_vectors=swaps, has_swap=has)
    cfg = TrainConfig(epochs=2, batch_size=9, val_fraction=0.25, augment=False)
    result = train_tower(data, tmp_path / "m", cfg=cfg)
    assert 0.0 <= result.history[-1]["val_swap_acc"] <= 1.0
    training = json.loads((tmp_path / "m" / "training.json").read_text())
    assert training["word_swaps_per_prompt"] == 2 and training["prompts_with_word_swaps"] == int(has.any(1).sum())


def test_trained_folder_is_an_encoder_and_indexes(shard_set, small_shard, tmp_path):
    train_tower(shard_set, tmp_path / "m", cfg=TrainConfig(epochs=1, batch_size=12, val_fraction=0.25))
    enc = create_encoder(f"v2p:{tmp_path / 'm'}")
    assert enc.dim == 384 and enc.poolings == ("temporal",)
    clips = list(shard_set.inputs[:2])
    v = enc.encode_videos(clips)
    assert v.shape == (2, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert np.allclose(enc.encode_text(["a red ball"]), create_encoder("minilm").encode_text(["a red ball"]))
    report = build_index(open_shard(small_shard), tmp_path / "idx",
                         BuildConfig(encoder=f"v2p:{tmp_path / 'm'}", videos=True))
    assert report.videos == 36
    r = Retriever(tmp_path / "idx")
    assert r.index.manifest["videos"]["pooling"] == "temporal"
    assert len(r.query_texts(["a red ball"], top=3)[0].candidates) == 3


def test_head_trains_on_cached_clip_frames(tiny_clip_index, tmp_path):
    data = train_data.from_index(tiny_clip_index, text_encoder="minilm")
    assert data.inputs.shape == (36, 8, 64) and data.frame_encoder == "clip:v2p-clip-tiny/random"
    result = train_tower(data, tmp_path / "head", head="mean",
                         cfg=TrainConfig(epochs=3, batch_size=12, val_fraction=0.25))
    assert len(result.history) == 3
    cfg = json.loads((tmp_path / "head" / "config.json").read_text())
    assert cfg["frame_encoder"] == "clip:v2p-clip-tiny/random" and cfg["frame_dim"] == 64
    enc = create_encoder(f"v2p:{tmp_path / 'head'}")
    assert enc.encode_videos([np.zeros((8, 32, 32, 3), np.uint8)]).shape == (1, 384)


def test_train_refuses_frame_max_pool_on_cached_frames(tiny_clip_index, tmp_path):
    from typer.testing import CliRunner

    from v2p.cli import app

    res = CliRunner().invoke(app, ["train", str(tiny_clip_index), "--out", str(tmp_path / "m"), "--frame-max-pool"])
    assert res.exit_code == 2 and "--frame-max-pool changes the tiny-cnn frame encoder" in res.output, res.output


def test_index_without_videos_cannot_train(minilm_index):
    with pytest.raises(V2PError, match="built without --videos"):
        train_data.from_index(minilm_index, text_encoder="minilm")


def test_missing_model_folder(tmp_path):
    with pytest.raises(EncoderSpecError, match="no such model folder"):
        create_encoder(f"v2p:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderSpecError, match="not a trained v2p model"):
        create_encoder(f"v2p:{tmp_path / 'empty'}")


@pytest.mark.parametrize("frame_differences", [True, False])
def test_temporal_head_sees_order_mean_head_does_not(frame_differences):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 16)
    reversed_x = x.flip(1)
    mean = MeanHead(16, 4).eval()
    temporal = TemporalHead(16, 4, width=16, heads=2, frame_differences=frame_differences).eval()
    with torch.no_grad():
        assert torch.allclose(mean(x), mean(reversed_x), atol=1e-6)
        assert not torch.allclose(temporal(x), temporal(reversed_x), atol=1e-3)


def test_contrastive_loss_prefers_matching_pairs():
    loss = ContrastiveLoss()
    eye = torch.eye(4)
    assert loss(eye, eye) < loss(eye, eye.roll(1, 0))


def test_hard_negatives_enter_only_where_their_mask_is_set():
    loss = ContrastiveLoss()
    eye = torch.eye(3)
    plain = loss(eye, eye)
    yes, no = torch.tensor([True, True, True]), torch.tensor([False, False, False])
    # a reversal identical to the true pair (what a head blind to frame order produces) costs; a far one barely
    assert loss(eye, eye, extra_text=eye, extra_text_mask=yes) > plain
    assert loss(eye, eye, extra_video=eye, extra_video_mask=yes) > plain
    assert torch.allclose(loss(eye, eye, eye, no, eye, no), plain)
    assert torch.allclose(loss(eye, eye, -eye, yes, -eye, yes), plain, atol=1e-4)


def test_training_set_carries_motion_reversals(shard_set):
    from v2p.data.reverse_motion import reverse_motion

    expected = [reverse_motion(p) is not None for p in shard_set.prompts]
    assert shard_set.has_reversal.tolist() == expected and any(expected)
    i = expected.index(True)
    mini = create_encoder("minilm")
    assert np.allclose(shard_set.reversed_vectors[i], mini.encode_text([reverse_motion(shard_set.prompts[i])])[0],
                       atol=1e-5)
    assert not shard_set.reversed_vectors[~shard_set.has_reversal].any()


def test_towers_saved_before_frame_differences_still_load(tmp_path):
    from v2p.embed.tower import TowerConfig

    cfg = TowerConfig()
    cfg.save(tmp_path)
    values = json.loads((tmp_path / "config.json").read_text())
    assert values.pop("frame_differences") is True  # new towers use them
    (tmp_path / "config.json").write_text(json.dumps(values))
    assert TowerConfig.load(tmp_path).frame_differences is False


def test_block_stack_equals_np_stack():
    from v2p.train.data import _BlockStack

    clips = [np.full((2, 3), i, np.uint8) for i in range(7)]
    stack = _BlockStack(block=3)
    for c in clips:
        stack.append(c)
    assert np.array_equal(stack.to_array(), np.stack(clips))


def test_train_refuses_an_existing_out_without_overwrite(shard_set, tmp_path):
    from typer.testing import CliRunner

    from v2p.cli import app
    from v2p.errors import V2PError

    cfg = TrainConfig(epochs=1, batch_size=12, val_fraction=0.25)
    train_tower(shard_set, tmp_path / "m", cfg=cfg)
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    with pytest.raises(V2PError, match="already exists and is not empty; pass --overwrite"):
        train_tower(shard_set, tmp_path / "m", cfg=cfg)
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    res = CliRunner().invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "pass --overwrite" in res.output  # refused before any decoding
    train_tower(shard_set, tmp_path / "m", cfg=TrainConfig(epochs=1, batch_size=12, val_fraction=0.25, seed=3),
                overwrite=True)
    assert (tmp_path / "m" / "model.safetensors").read_bytes() != before


def test_resume_refuses_weights_retrained_since_the_crash(shard_set, small_shard, tmp_path):
    """The resume key holds the weights' fingerprint, not just the spec v2p:<dir>."""
    import os
    import subprocess
    import sys

    from v2p.index.build import CRASH_ENV

    model = tmp_path / "m"
    train_tower(shard_set, model, cfg=TrainConfig(epochs=1, batch_size=12, val_fraction=0.25))
    cmd = [sys.executable, "-m", "v2p.cli", "index", "build", str(small_shard), "--out", str(tmp_path / "idx"),
           "--encoder", f"v2p:{model}", "--prompt-chunk", "5"]
    killed = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, CRASH_ENV: "prompts:0"})
    assert killed.returncode == -9, killed.stderr
    train_tower(shard_set, model, cfg=TrainConfig(epochs=1, batch_size=12, val_fraction=0.25, seed=5), overwrite=True)
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert resumed.returncode == 2 and "settings differ: encoder_fingerprint" in resumed.stderr


def test_train_refuses_a_bad_neighbour_group_or_word_swap_count(tmp_path):
    from typer.testing import CliRunner

    from v2p.cli import app

    res = CliRunner().invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "m"), "--neighbour-group", "200"])
    assert res.exit_code == 2 and "must be between 1 and --batch-size (128), not 200" in res.output, res.output
    assert not (tmp_path / "m").exists()
    res = CliRunner().invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "m"), "--word-swaps", "-1"])
    assert res.exit_code == 2 and "--word-swaps must be 0 or more, not -1" in res.output, res.output
