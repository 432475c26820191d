"""Queries against real indexes: own video -> own prompt, text -> itself, errors per clip, CLI JSON."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from v2p.cli import app
from v2p.data.bad_records import BadRecords
from v2p.data.shard import open_shard
from v2p.errors import IndexMismatchError
from v2p.retrieval.search import FusionWeights, Retriever, standardise

runner = CliRunner()


@pytest.fixture(scope="module")
def shard_videos(small_shard, tmp_path_factory):
    """The shard's videos written out as files, with their true uuid."""
    folder = tmp_path_factory.mktemp("clips")
    out = []
    for ref, data in open_shard(small_shard).video_payloads(BadRecords()):
        path = folder / ref.member
        path.write_bytes(data)
        out.append((path, ref.uuid))
    return out


def test_own_video_finds_own_prompt_through_the_video_index(tiny_clip_index, shard_videos):
    """Random weights make the cross-modal path noise, so this checks the video path and the merge."""
    retriever = Retriever(tiny_clip_index, weights=FusionWeights(text=0.0, video=1.0))
    results = retriever.query_videos([p for p, _ in shard_videos], top=3)
    for (path, uuid), res in zip(shard_videos, results, strict=True):
        assert res.error is None
        top = res.candidates[0]
        assert top.uuid == uuid, path
        assert top.video_score == pytest.approx(1.0, abs=1e-3)
        assert top.source in ("video", "text+video")
        assert top.matched_video == path.stem  # its own member, e.g. vc2-<uuid>
        assert [c.rank for c in res.candidates] == [1, 2, 3]


def test_text_equal_to_a_bank_prompt_returns_it_first(minilm_index, tiny_clip_index):
    for index in (minilm_index, tiny_clip_index):
        retriever = Retriever(index)
        prompts = retriever.index.prompts_table.column("prompt").to_pylist()
        for res, prompt in zip(retriever.query_texts(prompts, top=2), prompts, strict=True):
            assert res.candidates[0].prompt == prompt
            assert res.candidates[0].score == pytest.approx(1.0, abs=1e-4)
            assert res.candidates[0].source == "text"


def test_minilm_paraphrase_finds_the_right_prompt(minilm_index):
    retriever = Retriever(minilm_index)
    prompts = retriever.index.prompts_table.column("prompt").to_pylist()
    target = prompts[0]
    res = retriever.query_texts([target.upper().replace(",", " ") + " 4k"], top=1)[0]
    assert res.candidates[0].prompt == target


def test_bad_clips_get_errors_and_the_rest_still_answer(tiny_clip_index, shard_videos, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00" * 500)
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")
    good = shard_videos[0][0]
    results = Retriever(tiny_clip_index).query_videos([corrupt, good, empty, tmp_path / "missing.mp4"], top=2)
    assert [r.error is None for r in results] == [False, True, False, False]
    assert str(corrupt) in results[0].error and "empty file" in results[2].error
    assert "cannot read file" in results[3].error
    assert len(results[1].candidates) == 2


def test_still_image_and_gif_queries(tiny_clip_index, shard_videos, tmp_path):
    from PIL import Image

    from v2p.data.frames import sample_frames
    from v2p.data.synth.encode import encode_video

    frames = sample_frames(shard_videos[0][0], 8)
    Image.fromarray(frames[0]).save(tmp_path / "still.png")
    (tmp_path / "clip.gif").write_bytes(encode_video(frames, 8, "gif"))
    results = Retriever(tiny_clip_index).query_videos([tmp_path / "still.png", tmp_path / "clip.gif"], top=1)
    assert all(r.error is None and len(r.candidates) == 1 for r in results)


def test_other_encoder_is_refused(tiny_clip_index):
    with pytest.raises(IndexMismatchError, match="built with encoder 'clip:v2p-clip-tiny/random'"):
        Retriever(tiny_clip_index, encoder="minilm")


def test_standardise():
    z, fill = standardise({1: 0.9, 2: 0.5, 3: 0.1})
    assert z[1] == pytest.approx(-z[3]) and z[2] == pytest.approx(0.0, abs=1e-6)
    assert fill == pytest.approx(z[3])
    assert standardise({}) == ({}, 0.0)


def test_query_cli_json(tiny_clip_index, shard_videos, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope")
    result = runner.invoke(app, ["query", str(shard_videos[0][0]), str(bad), "--index", str(tiny_clip_index),
                                 "--top", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [p["query"] for p in payload] == [str(shard_videos[0][0]), str(bad)]
    cand = payload[0]["candidates"][0]
    assert set(cand) >= {"rank", "score", "prompt", "uuid", "source"}
    assert "error" in payload[1] and payload[1]["candidates"] == []


def test_query_cli_text_and_table(minilm_index):
    result = runner.invoke(app, ["query", "--text", "a red ball bouncing", "--index", str(minilm_index)])
    assert result.exit_code == 0, result.output
    assert "rank" in result.stdout and "via" in result.stdout


def test_query_cli_refuses_other_encoder(tiny_clip_index):
    result = runner.invoke(app, ["query", "--text", "x", "--index", str(tiny_clip_index), "--encoder", "minilm"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and "Traceback" not in result.output


def test_index_from_other_weights_of_the_same_spec_is_refused(small_shard, tmp_path):
    """Two towers under one spec name (a retrained v2p-tiny, say) must not be mixed."""
    import shutil

    from v2p.embed.factory import create_encoder
    from v2p.index.build import BuildConfig, build_index
    from v2p.train.data import from_shard
    from v2p.train.loop import TrainConfig, train_tower

    data = from_shard(open_shard(small_shard), text_encoder="minilm")
    model = tmp_path / "m"
    train_tower(data, model, cfg=TrainConfig(epochs=1, batch_size=12, val_fraction=0.25))
    build_index(open_shard(small_shard), tmp_path / "idx", BuildConfig(encoder=f"v2p:{model}"))
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["encoder_fingerprint"]
    Retriever(tmp_path / "idx")  # same weights: fine
    shutil.rmtree(model)
    train_tower(data, model, cfg=TrainConfig(epochs=1, batch_size=12, val_fraction=0.25, seed=1))
    create_encoder.cache_clear()
    with pytest.raises(IndexMismatchError, match="built with other weights"):
        Retriever(tmp_path / "idx")


@pytest.fixture(scope="module")
def sparse_video_bank(tmp_path_factory):
    """200 prompts, bank videos (ms) for only 40 of them; queries: 25 of the prompts rendered by t2vz."""
    from v2p.data.synth.writer import write_synthetic_shard
    from v2p.index.build import BuildConfig, build_index

    root = tmp_path_factory.mktemp("sparse")
    write_synthetic_shard(root / "bank", 200, seed=31, generators=["ms"], video_sample=40, workers=1)
    write_synthetic_shard(root / "queries", 200, seed=31, generators=["t2vz"], video_sample=25, workers=1)
    build_index(open_shard(root / "bank"), root / "index", BuildConfig(encoder="v2p-tiny", videos=True))
    return root


def test_prompts_without_a_bank_video_are_still_found(sparse_video_bank):
    """A prompt absent from the video path because it has no video must not rank below every prompt
    with a mediocre video (the old fill value did exactly that: fused R@10 0.0 for such prompts)."""
    from v2p.eval.runner import load_queries

    fused = Retriever(sparse_video_bank / "index")
    text_only = Retriever(sparse_video_bank / "index", weights=FusionWeights(text=1.0, video=0.0))
    has_video = fused._prompt_has_video
    row_of = fused.index.prompt_row_by_id
    queries = [q for q in load_queries(open_shard(sparse_video_bank / "queries"))
               if not has_video[row_of[q.prompt_id]]]
    assert len(queries) >= 15

    def recall10(retriever):
        results = retriever.query_videos([q.data for q in queries], top=10)
        return sum(any(c.prompt_id == q.prompt_id for c in r.candidates) for q, r in
                   zip(queries, results, strict=True)) / len(queries)

    text_recall, fused_recall = recall10(text_only), recall10(fused)
    assert text_recall > 0.5
    assert fused_recall >= text_recall - 0.1, (fused_recall, text_recall)


def test_lookup_accepts_one_path_and_reuses_the_opened_index(tiny_clip_index, shard_videos):
    from v2p.retrieval.lookup import cached_retriever, lookup

    path = shard_videos[0][0]
    table = lookup(str(path), index=tiny_clip_index, top=2)
    assert table.num_rows == 2 and set(table.column("path").to_pylist()) == {str(path)}
    assert lookup(path, index=tiny_clip_index, top=1).num_rows == 1  # a PathLike too
    assert cached_retriever(tiny_clip_index) is cached_retriever(str(tiny_clip_index))
