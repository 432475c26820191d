"""``<video spec>+image``: real image embeddings stored beside a video encoder's frame vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data as skdata

from v2p.embed.factory import create_encoder, parse_spec
from v2p.errors import EncoderSpecError

TINY_CLIP = "clip:v2p-clip-tiny/random"


@pytest.mark.parametrize(("spec", "canonical"), [
    ("v2p-tiny+image", "v2p-tiny+image"),
    (TINY_CLIP + "+image", TINY_CLIP + "+image"),
    ("v2p:/some/dir+image", "v2p:/some/dir+image"),
])
def test_image_suffix_parses_onto_any_video_spec(spec, canonical):
    parsed = parse_spec(spec)
    assert parsed.image_frames and parsed.canonical == canonical


@pytest.mark.parametrize("spec", ["minilm+image", "v2p-sight+image", "v2p-tiny+image+image"])
def test_image_suffix_needs_a_video_encoder_without_one(spec):
    with pytest.raises(EncoderSpecError, match=r"\+image goes after a video tower or CLIP spec"):
        parse_spec(spec)


def _photo_clip(name: str, frames: int = 4) -> np.ndarray:
    img = getattr(skdata, name)()[..., :3]
    return np.repeat(img[None, ::4, ::4], frames, axis=0)  # a small still clip of a real photo


def test_inner_encoder_is_untouched_and_the_image_part_sees_the_picture():
    plain = create_encoder("v2p-tiny")
    both = create_encoder("v2p-tiny+image")
    assert both.frame_dim == plain.frame_dim + 1024 and both.dim == plain.dim
    assert both.fingerprint != plain.fingerprint and both.frame_short_side == plain.frame_short_side
    clips = [_photo_clip("chelsea"), _photo_clip("rocket"), _photo_clip("chelsea")]
    frames = both.encode_frames(clips)
    own = plain.encode_frames(clips)
    assert frames.shape == (3, 4, both.frame_dim)
    assert np.array_equal(frames[..., :plain.frame_dim], own)  # retrieval reads exactly what it read before
    assert np.allclose(both.pool(frames), plain.pool(own)) and np.allclose(both.video_keys(frames),
                                                                            plain.video_keys(own))
    image = frames[..., plain.frame_dim:]
    assert np.allclose(np.linalg.norm(image, axis=-1), 1.0, atol=1e-5)
    same, other = float(image[0, 0] @ image[2, 0]), float(image[0, 0] @ image[1, 0])
    assert same > 0.999 and other < 0.9  # one photo twice vs a cat against a rocket
    assert both.encode_frames([]).shape == (0, both.num_frames, both.frame_dim)


def test_an_image_index_answers_as_its_inner_encoder_and_trains_a_reranker(small_shard, tiny_clip_index,
                                                                          tmp_path):
    from v2p.data.bad_records import BadRecords
    from v2p.data.shard import open_shard
    from v2p.index.build import BuildConfig, build_index
    from v2p.rerank import cross as C
    from v2p.rerank.reranker import make_reranker
    from v2p.retrieval.search import Retriever

    out = tmp_path / "idx"
    build_index(open_shard(small_shard), out, BuildConfig(encoder=TINY_CLIP + "+image", videos=True,
                                                          prompt_chunk=5, video_chunk=10))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["encoder"] == TINY_CLIP + "+image"
    clip = next(open_shard(small_shard).video_payloads(BadRecords()))[1]
    with_image = Retriever(out).query_videos([clip], top=5)[0]
    plain = Retriever(tiny_clip_index).query_videos([clip], top=5)[0]
    assert [c.prompt for c in with_image.candidates] == [c.prompt for c in plain.candidates]
    assert np.allclose([c.score for c in with_image.candidates], [c.score for c in plain.candidates], atol=1e-4)

    result = C.train_cross_reranker(out, C.CrossTrainConfig(k=6, epochs=1, patience=1, batch_lists=8))
    assert result.record["epochs_run"] == 1
    image = result.record["image_map"]  # the frames carry pictures, so the image term was fitted and judged
    assert image["picture_dim"] == 1024 and image["lists"] > 0 and image["folds"] == 5
    assert (out / C.CROSS_DIR / "image_map.npz").is_file()
    cfg = C.CrossConfig.load(out / C.CROSS_DIR)
    assert cfg.frame_dim == create_encoder(TINY_CLIP + "+image").frame_dim
    reranker, _ = make_reranker(Retriever(out), lm="none")
    assert reranker.cross is not None
    assert reranker.image_map is not None and reranker.weights.image == image["term_weight"]
    answer = reranker.query_videos([clip], top=5)[0]
    assert answer.score_kind == "rerank" and len(answer.candidates) == 5
    forced, _ = make_reranker(Retriever(out), lm="none", weights="image=1")
    assert "image" in forced.query_videos([clip], top=5)[0].candidates[0].terms


def test_an_image_weight_without_an_image_map_is_an_error(tiny_clip_index):
    from v2p.errors import V2PError
    from v2p.rerank.reranker import make_reranker
    from v2p.retrieval.search import Retriever

    with pytest.raises(V2PError, match="no image map"):
        make_reranker(Retriever(tiny_clip_index), lm="none", weights="image=1")
