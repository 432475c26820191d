"""The numpy forward pass of a video tower against the torch modules it mirrors: the frame
resize, the CNN, both heads, the shipped v2p-tiny end to end, and a cold query without torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from v2p.embed import tower as T
from v2p.embed import tower_numpy as N
from v2p.embed.base import cuda_may_be_present
from v2p.errors import EncoderSpecError


@pytest.mark.parametrize(("h", "w"), [(64, 113), (288, 512), (40, 30), (64, 64), (7, 200)])
def test_resize_matches_torch_antialiased_bilinear(h, w):
    rng = np.random.default_rng(h * w)
    clip = rng.integers(0, 256, (3, h, w, 3), dtype=np.uint8)
    ours = N.frames_to_pixels([clip], 64)
    theirs = T.frames_to_pixels([clip], 64).numpy()
    assert ours.shape == theirs.shape == (1, 3, 3, 64, 64)
    assert np.abs(ours - theirs).max() < 1e-4


def test_gelu_and_layers_match_torch():
    x = np.linspace(-6, 6, 1001, dtype=np.float32)
    assert np.abs(N.gelu(x) - F.gelu(torch.from_numpy(x)).numpy()).max() < 1e-6
    rng = np.random.default_rng(0)
    img = rng.normal(size=(2, 5, 17, 16)).astype(np.float32)
    weight = rng.normal(size=(7, 5, 3, 3)).astype(np.float32)
    ref = F.conv2d(torch.from_numpy(img), torch.from_numpy(weight), stride=2, padding=1).numpy()
    ours = N.conv3x3_s2(img.transpose(0, 2, 3, 1), weight).transpose(0, 3, 1, 2)  # channels last
    assert np.abs(ours - ref).max() < 1e-4


@pytest.mark.parametrize("head,max_pool", [("temporal", False), ("mean", False), ("temporal", True)])
def test_random_tower_matches_torch(tmp_path, head, max_pool):
    torch.manual_seed(3)
    cfg = T.TowerConfig(head=head, frame_differences=True, frame_max_pool=max_pool)
    model = T.VideoTower(cfg).eval()
    with torch.no_grad():  # make BatchNorm's running statistics non-trivial
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    T.save_tower(model, tmp_path / "m")
    ours = N.NumpyTower.load(tmp_path / "m")
    pixels = np.random.default_rng(1).normal(size=(2, 8, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        frames_ref = model.encode_frames(torch.from_numpy(pixels))
        pooled_ref = model.pool(frames_ref).numpy()
    frames = ours.encode_frames(pixels)
    assert np.abs(frames - frames_ref.numpy()).max() < 1e-3 * max(1.0, float(np.abs(frames).max()))
    assert np.abs(ours.pool(frames_ref.numpy()) - pooled_ref).max() < 1e-5


def test_shipped_v2p_tiny_numpy_equals_torch(small_shard):
    from v2p.data.bad_records import BadRecords
    from v2p.data.frames import sample_frames
    from v2p.data.shard import open_shard
    from v2p.embed.tower_config import tower_folder
    from v2p.embed.tower_encoder import TowerEncoder

    folder, spec = tower_folder("v2p-tiny")
    numpy_enc = TowerEncoder(folder, spec, "cpu", sub_encoder=lambda s: None)
    torch_model = T.load_tower(folder, "cpu")
    clips = [sample_frames(data, 8, name=ref.member, short_side=64)
             for ref, data in list(open_shard(small_shard).video_payloads(BadRecords()))[:6]]
    ours = numpy_enc.encode_videos(clips)
    with torch.no_grad():
        ref = torch_model.pool(torch_model.encode_frames(T.frames_to_pixels(clips, 64))).numpy()
    assert ours.shape == ref.shape == (6, 384)
    assert np.sum(ours * ref, axis=1).min() > 0.99999  # same vectors to float32 rounding


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    from v2p.embed.tower_config import tower_folder

    folder, _ = tower_folder("v2p-tiny")
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    cfg = json.loads((bad / "config.json").read_text())
    for change in ({"head_width": 64}, {"head_layers": 1}, {"head_layers": 3}, {"frame_differences": False},
                   {"frame_max_pool": not cfg.get("frame_max_pool", False)}):
        (bad / "config.json").write_text(json.dumps({**cfg, **change}))
        with pytest.raises(EncoderSpecError, match="do not match its config"):
            N.NumpyTower.load(bad)


def test_cold_clip_query_with_v2p_tiny_never_imports_torch(tmp_path):
    code = ("import sys, numpy as np; from v2p.embed.factory import create_encoder; e = create_encoder('v2p-tiny'); "
            "v = e.encode_videos([np.zeros((8, 64, 64, 3), np.uint8)]); print(v.shape, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    # with an NVIDIA driver present torch is asked for the GPU; on a CPU machine it is never imported
    assert out.stdout.strip() == f"(1, 384) {cuda_may_be_present()}"


def test_big_cpu_batches_run_torch_with_the_same_vectors():
    from v2p.embed.tower_config import tower_folder
    from v2p.embed.tower_encoder import TORCH_FROM_CLIPS, TowerEncoder

    folder, spec = tower_folder("v2p-tiny")
    enc = TowerEncoder(folder, spec, "cpu", sub_encoder=lambda s: None)
    rng = np.random.default_rng(5)
    clips = [rng.integers(0, 256, (8, 64, 90, 3), dtype=np.uint8) for _ in range(TORCH_FROM_CLIPS)]
    small = np.concatenate([enc.encode_frames(clips[:TORCH_FROM_CLIPS // 2]),
                            enc.encode_frames(clips[TORCH_FROM_CLIPS // 2:])])
    assert enc._torch is None  # small calls: numpy only
    big = enc.encode_frames(clips)
    assert enc._torch is not None  # a build-sized call loads torch once
    assert np.abs(big - small).max() < 1e-3 * np.abs(big).max()
    assert np.sum(enc.pool(big) * enc.pool(small), axis=1).min() > 0.99999
