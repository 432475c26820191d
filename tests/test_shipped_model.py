"""The embedded default: v2p-tiny ships inside the package and loads with the network off."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from v2p.embed.factory import create_encoder
from v2p.embed.tower import PACKAGED_MODELS


def test_checkpoint_and_provenance_are_packaged():
    folder = PACKAGED_MODELS / "v2p-tiny"
    assert (folder / "model.safetensors").stat().st_size < 8 * 2**20  # a few MB
    training = json.loads((folder / "training.json").read_text())
    assert training["command"].startswith("v2p train") and "seed" in training
    assert (folder / "train_log.jsonl").read_text().strip()
    assert "v2p synth" in (folder / "README.md").read_text()


def test_loads_offline_in_a_fresh_process(tmp_path):
    """No network, no HF cache: HOME points at an empty folder and the hub is forced offline."""
    code = ("from v2p.embed.factory import create_encoder; import numpy as np; e = create_encoder('v2p-tiny'); "
            "v = e.encode_videos([np.zeros((8, 64, 64, 3), np.uint8)]); t = e.encode_text(['a red ball']); "
            "print(e.spec, v.shape, t.shape)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HOME": str(tmp_path),
           "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "v2p-tiny (1, 384) (1, 384)"


def test_v2p_tiny_embeds_videos_near_their_prompts(small_shard):
    """The shipped weights are trained, not random: a video is closer to its own prompt than to others."""
    from v2p.train.data import from_shard
    from v2p.data.shard import open_shard

    enc = create_encoder("v2p-tiny")
    data = from_shard(open_shard(small_shard), text_encoder="minilm")
    v = enc.encode_videos(list(data.inputs))
    sims = v @ data.text_vectors.T
    own = sims[np.arange(len(v)), data.video_prompt]
    rank = (sims > own[:, None]).sum(1)
    assert np.mean(rank < 5) > 0.6  # chance is 5/12
    assert enc.poolings == ("temporal",) and enc.spec == "v2p-tiny"


def test_v2p_tiny_knows_which_way_things_move(tmp_path):
    """The direction probe on fresh clips: each directed clip is closer to its prompt than to the
    same prompt with the motion reversed (a head blind to frame order scores 0.5)."""
    from v2p.data.synth.writer import write_synthetic_shard
    from v2p.data.shard import open_shard
    from v2p.eval.metrics import swap_direction
    from v2p.eval.runner import load_queries

    write_synthetic_shard(tmp_path / "s", 60, seed=31, generators=["vc2"], workers=1)
    pairs = [(q, swap_direction(q.prompt, q.attributes["action"])) for q in load_queries(open_shard(tmp_path / "s"))]
    pairs = [(q, s) for q, s in pairs if s]
    assert len(pairs) >= 25
    enc = create_encoder("v2p-tiny")
    from v2p.data.frames import sample_frames

    v = enc.encode_videos([sample_frames(q.data, enc.num_frames) for q, _ in pairs])
    right = np.sum(v * enc.encode_text([q.prompt for q, _ in pairs]), 1) > np.sum(v * enc.encode_text([s for _, s in pairs]), 1)
    assert right.mean() > 0.75, right.mean()
