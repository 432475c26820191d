"""v2p-sight on real photos (scikit-image's sample images) and camera motion read from real pixels.

The shipped TFLite models are real weights; the clips are real H.264 files panned, tilted and
zoomed over real photos with a known direction. Nothing here reads the evaluation data beside the repo."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from skimage import data as skdata
from typer.testing import CliRunner

from v2p.cli import app
from v2p.data.frames import sample_frames
from v2p.data.motion import camera_agreement, camera_in_prompt, camera_motion, CameraMotion
from v2p.embed.factory import create_encoder
from v2p.eval.camera_clips import CAMERA_LABELS, camera_clip, encode_mp4

runner = CliRunner()
PHOTOS = {"chelsea": "a cat", "coffee": "a cup of coffee", "rocket": "a rocket launching", "astronaut": "an astronaut"}


def photo(name: str) -> np.ndarray:
    img = getattr(skdata, name)()
    return np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]


@pytest.fixture(scope="module")
def sight():
    return create_encoder("v2p-sight")


def test_shipped_label_vectors_follow_their_recipe():
    """The shipped class vectors are MiniLM of the label phrases (benchmarks/sight_calibrate.py)."""
    from v2p.embed.sight.bridge import compute_label_vectors, load_label_vectors

    shipped = load_label_vectors()
    fresh = compute_label_vectors(create_encoder("minilm").encode_text)
    assert shipped["imagenet"].shape == (1001, 384) and shipped["pascal"].shape == (21, 384)
    for key in ("imagenet", "pascal"):
        assert np.abs(shipped[key] - fresh[key]).max() < 2e-3


def test_sight_sees_what_is_in_real_photos(sight):
    bank = ["a cat sleeping on a sofa", "an astronaut in a space suit", "a cup of coffee on a table",
            "a rocket launching into the sky", "a dog running on the beach", "a bowl of fruit",
            "a city street at night", "a horse in a field", "a man riding a bicycle"]
    vectors = sight.encode_text(bank)
    clips = [np.repeat(photo(n)[None], 8, axis=0) for n in PHOTOS]
    frames = sight.encode_frames(clips)
    assert frames.shape == (4, 8, sight.frame_dim)
    queries = sight.pool(frames)
    assert queries.shape == (4, 384) and np.allclose(np.linalg.norm(queries, axis=1), 1, atol=1e-5)
    ranked = [[bank[i] for i in np.argsort(-(q @ vectors.T))] for q in queries]
    top1 = {name: r[0] for name, r in zip(PHOTOS, ranked, strict=True)}
    assert top1["chelsea"].startswith("a cat")
    assert top1["coffee"].startswith("a cup of coffee")
    assert top1["rocket"].startswith("a rocket")
    assert "an astronaut in a space suit" in ranked[3][:2]
    keys = sight.video_keys(frames)
    assert keys.shape == (4, 1024)
    assert [c.label for c in sight.camera(frames)] == ["static"] * 4  # still photos do not move


def test_frame_views_cover_the_frame_with_whole_and_small_squares():
    from v2p.embed.sight.bridge import BridgeConfig
    from v2p.embed.sight.encoder import frame_views, grid_squares

    wide = np.zeros((320, 480, 3), np.uint8)
    views = frame_views(wide, BridgeConfig(crops=3, grid=3, grid_side=0.45))
    assert views[:3] == [(0, 80, 320), (0, 0, 320), (0, 160, 320)]  # centre first: the embedding reads it
    grid = views[3:]
    assert len(grid) == 9 and {side for _, _, side in grid} == {144}
    assert grid[0] == (0, 0, 144) and grid[-1] == (320 - 144, 480 - 144, 144)  # corner to corner
    assert all(0 <= t and t + s <= 320 and 0 <= left and left + s <= 480 for t, left, s in views)
    assert grid_squares(wide, 0, 0.45) == []
    square = np.zeros((100, 100, 3), np.uint8)
    assert frame_views(square, BridgeConfig(crops=3, grid=2, grid_side=0.5))[0] == (0, 0, 100)
    assert len(frame_views(square, BridgeConfig(crops=3, grid=2, grid_side=0.5))) == 1 + 4
    tiny = np.zeros((1, 1, 3), np.uint8)
    assert all(s == 1 for _, _, s in frame_views(tiny, BridgeConfig()))


def test_views_are_shared_out_over_a_clip_and_all_read_in_a_still():
    from v2p.embed.sight.encoder import views_of_frame

    assert views_of_frame(0, 1, 12, spread=True) == list(range(12))  # a still reads every view
    per_frame = [views_of_frame(j, 8, 12, spread=True) for j in range(8)]
    assert per_frame[0] == [0, 8] and per_frame[7] == [7]
    assert sorted(v for vs in per_frame for v in vs) == list(range(12))  # each view once per clip
    assert [views_of_frame(j, 16, 3, spread=True) for j in range(5)] == [[0], [1], [2], [0], [1]]
    assert views_of_frame(5, 8, 12, spread=False) == list(range(12))


def test_noisy_or_keeps_what_one_view_sees():
    from v2p.embed.sight.bridge import BridgeConfig, pool_views

    views = np.array([[0.0, 0.9, 0.1], [0.0, 0.0, 0.1], [0.0, 0.0, 0.1]], np.float32)
    assert np.allclose(pool_views(views, "noisy_or"), [0.0, 0.9, 1 - 0.9 ** 3])
    assert np.allclose(pool_views(views, "mean"), [0.0, 0.3, 0.1])
    assert np.allclose(pool_views(views[:1], "noisy_or"), views[0])
    with pytest.raises(ValueError, match="view_pooling"):
        BridgeConfig(view_pooling="max")


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket"])
def test_camera_motion_from_real_pixels(name):
    """Pans, tilts and zooms over a real photo, through a real mp4 encode and decode."""
    right = 0
    for label in CAMERA_LABELS:
        frames = sample_frames(encode_mp4(camera_clip(photo(name), label)), 8, name=f"{label}.mp4")
        motion = camera_motion(frames)
        right += motion.label == label
        if label == "static":
            assert motion.strength == 0
    assert right >= 6, f"{right}/7 camera motions read right on {name}"


@pytest.mark.parametrize(("prompt", "label"), [
    ("a cat on a sofa, camera pans left", "pan_left"),
    ("A dog -camera pan right -motion 2", "pan_right"),
    ("zooming in on a flower", "zoom_in"),
    ("slow zoom out over the city", "zoom_out"),
    ("pull back from the lighthouse", "zoom_out"),
    ("static camera, rain on a window", "static"),
    ("locked-off shot of a street", "static"),
    ("tilting up to the sky", "tilt_up"),
    ("a red ball bouncing", None),
])
def test_camera_words_in_prompts(prompt, label):
    assert camera_in_prompt(prompt) == label


def test_camera_agreement():
    seen = CameraMotion("pan_left", 0.2, 0.0, 0.0, 1)
    assert camera_agreement("a cat, camera pans left", seen) == 1.0
    assert camera_agreement("a cat, camera pans right", seen) == -1.0
    assert camera_agreement("a cat", seen) == 0.0
    assert seen.pika_flags == "-camera pan left -motion 1" and seen.phrase == "camera pans left"


@pytest.fixture(scope="module")
def photo_shard(tmp_path_factory):
    """A real-photo shard in VidProM layout: prompts.csv + loose clips <generator>-<uuid>.mp4."""
    root = tmp_path_factory.mktemp("photo-shard")
    rows = []
    for k, (name, subject) in enumerate(PHOTOS.items()):
        for j, label in enumerate(("pan_left", "zoom_in")):
            uuid = f"{k:08d}-0000-4000-8000-{j:012d}"
            rows.append({"uuid": uuid, "prompt": f"{subject}, camera {'pans left' if j == 0 else 'zooms in'}"})
            (root / f"real-{uuid}.mp4").write_bytes(encode_mp4(camera_clip(photo(name), label)))
    with open(root / "prompts.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["uuid", "prompt"])
        w.writeheader()
        w.writerows(rows)
    return root


def test_sight_index_searches_pictures_and_reads_the_camera(photo_shard, tmp_path):
    out = runner.invoke(app, ["index", "build", str(photo_shard), "--out", str(tmp_path / "idx"), "--videos"])
    assert out.exit_code == 0, out.output
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["encoder"] == "v2p-sight"  # the default encoder
    assert manifest["videos"]["dim"] == 1024 and manifest["dim"] == 384
    # a clip the bank has not seen: the cat photo panning left, shot again at another size
    clip = tmp_path / "cat.mp4"
    clip.write_bytes(encode_mp4(camera_clip(photo("chelsea"), "pan_left", size=(256, 256), frames=16)))
    res = runner.invoke(app, ["query", str(clip), "--index", str(tmp_path / "idx"), "--json", "--top", "3"])
    assert res.exit_code == 0, res.output
    answer = json.loads(res.stdout)[0]
    assert answer["camera"]["label"] == "pan_left" and answer["camera"]["phrase"] == "camera pans left"
    assert answer["score_kind"] == "fused z"
    assert answer["candidates"][0]["prompt"] == "a cat, camera pans left"
    assert answer["candidates"][0]["source"] == "text+video"
    # the cross-encoder reads v2p-sight's 1,412-d frames too; untrained it ranks exactly as retrieval
    from v2p.rerank.cross import CrossConfig, CrossScorer, minilm_word_vectors, save_cross_reranker, vocab_sha256

    cfg = CrossConfig(frame_dim=manifest["videos"]["frame_dim"], num_frames=manifest["videos"]["frames_per_video"],
                      encoder_spec="v2p-sight", encoder_fingerprint=manifest.get("encoder_fingerprint"),
                      vocab_sha256=vocab_sha256())
    save_cross_reranker(CrossScorer(cfg, minilm_word_vectors()), tmp_path / "idx")
    reranked = runner.invoke(app, ["query", str(clip), "--index", str(tmp_path / "idx"), "--json", "--top", "3",
                                   "--rerank", "--lm", "none"])
    assert reranked.exit_code == 0, reranked.output
    again = json.loads(reranked.stdout)[0]
    assert again["score_kind"] == "rerank" and "cross" in again["candidates"][0]["terms"]
    assert [c["prompt"] for c in again["candidates"]] == [c["prompt"] for c in answer["candidates"]]


def test_eval_on_labelled_media(photo_shard, tmp_path):
    """`v2p eval --labels` (file,prompt,camera CSV) and `--coco` (captions JSON) on real photos."""
    index = tmp_path / "idx"
    assert runner.invoke(app, ["index", "build", str(photo_shard), "--out", str(index)]).exit_code == 0
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "prompt", "camera"])
        for k, (name, subject) in enumerate(PHOTOS.items()):
            (tmp_path / f"{name}.mp4").write_bytes(encode_mp4(camera_clip(photo(name), "zoom_in")))
            w.writerow([f"{name}.mp4", f"{subject}, camera zooms in", "zoom_in"])
        w.writerow(["missing.mp4", "a cat, camera pans left", "camera pans left"])
    res = runner.invoke(app, ["eval", "--index", str(index), "--labels", str(labels), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["n_queries"] == 5 and report["n_failed"] == 1 and report["errors"] == 1
    assert report["recall_at_5"] == pytest.approx(0.8)  # the missing file is a miss, not dropped
    assert report["recall_at_1"] >= 0.6
    assert report["camera"]["n"] == 5 and report["camera"]["accuracy"] == pytest.approx(0.8)

    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    Image.fromarray(photo("coffee")).save(images / "coffee.png")
    Image.fromarray(photo("chelsea")).save(images / "cat.jpg")
    captions = {"images": [{"id": 1, "file_name": "coffee.png"}, {"id": 2, "file_name": "cat.jpg"}],
                "annotations": [{"id": 10, "image_id": 1, "caption": "a cup of coffee, camera zooms in"},
                                {"id": 11, "image_id": 1, "caption": "coffee in a white cup"},
                                {"id": 12, "image_id": 2, "caption": "a cat, camera pans left"}]}
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    res = runner.invoke(app, ["eval", "--index", str(index), "--coco", str(tmp_path / "captions.json"),
                              "--images", str(images), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["n_queries"] == 2 and report["recall_at_10"] == 1.0

    bad = tmp_path / "bad.csv"
    bad.write_text("path,text\na.mp4,a cat\n")
    res = runner.invoke(app, ["eval", "--index", str(index), "--labels", str(bad)])
    assert res.exit_code == 2 and "missing column(s) file, prompt" in res.output
    both = runner.invoke(app, ["eval", "--index", str(index), "--labels", str(labels), "--coco", str(bad)])
    assert both.exit_code == 2 and "exactly one of" in both.output


def test_gif_of_odd_size_is_read_and_seen(sight, tmp_path):
    """Real generated clips arrive as gifs of odd sizes and lengths."""
    from PIL import Image

    frames = camera_clip(photo("chelsea"), "zoom_in", frames=11, size=(173, 97))
    path = tmp_path / "odd.gif"
    Image.fromarray(frames[0]).save(path, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]],
                                    duration=80, loop=0)
    clip = sample_frames(path, 8, short_side=sight.frame_short_side)
    assert clip.shape == (8, 97, 173, 3)
    bank = ["a cat sleeping on a sofa", "a cup of coffee on a table", "a rocket launching into the sky"]
    vectors = sight.encode_frames([clip])
    assert (sight.pool(vectors) @ sight.encode_text(bank).T).argmax() == 0
    assert sight.camera(vectors)[0].label == "zoom_in"
