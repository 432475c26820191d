"""Rerank and splice: each scoring term on hand-made cases with known orderings, the token limit,
flag removal, the bank language model, and the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from v2p.cli import app
from v2p.errors import V2PError
from v2p.rerank import terms
from v2p.rerank.lm import LMTrainConfig, load_fluency_model, train_bank_lm
from v2p.rerank.reranker import RerankWeights, Reranker, make_reranker, parse_weights
from v2p.rerank.splice import (CLIP_CONTEXT, candidate_phrases, clip_token_count, greedy_compose, split_phrases,
                               splice_prompt)
from v2p.retrieval.search import Retriever

runner = CliRunner()


def test_zscore():
    assert terms.zscore(np.array([2.0, 2.0, 2.0])).tolist() == [0.0, 0.0, 0.0]
    z = terms.zscore(np.array([1.0, 2.0, 3.0]))
    assert z[1] == pytest.approx(0.0) and z[2] == pytest.approx(-z[0]) and z[2] > 0


def test_frame_scores_mean_vs_max():
    frames = np.array([[1.0, 0.0], [0.0, 1.0]])  # two different moments
    cands = np.array([[1.0, 0.0], [0.7071, 0.7071]])  # matches moment 1 only / matches both halfway
    mean, mx = terms.frame_scores(frames, cands)
    assert mean[1] > mean[0]  # the whole clip is better described by candidate 2
    assert mx[0] > mx[1]  # one moment is matched best by candidate 1


def test_consensus_sinks_the_outlier():
    vecs = np.array([[1.0, 0.1, 0.0], [0.9, 0.2, 0.0], [0.0, 0.0, 1.0]])
    c = terms.consensus(vecs, np.array([0.0, 0.0, 0.0]))
    assert c[2] < c[0] and c[2] < c[1]
    # a strongly preferred outlier pulls the centroid to itself
    c2 = terms.consensus(vecs, np.array([0.0, 0.0, 10.0]), temperature=0.1)
    assert c2[2] > c2[0]


@pytest.mark.parametrize(("prompt", "expected"), [
    ('a cat, dancing -ar 16:9 -neg "blurry, ugly"', ["a cat", "dancing"]),
    ("sunset\nover the sea; 4k -camera zoom in", ["sunset", "over the sea", "4k"]),
    ("sci-fi city, neon", ["sci-fi city", "neon"]),
])
def test_split_phrases_removes_flags(prompt, expected):
    assert split_phrases(prompt) == expected


def test_candidate_phrases_dedupe_in_order():
    assert candidate_phrases(["A red ball, 4k", "a RED ball, in the sky", "4K, neon"]) == [
        "A red ball", "4k", "in the sky", "neon"]


def test_greedy_compose_picks_complementary_not_redundant_phrases():
    e = np.eye(4)
    video = e[0] + e[1]
    phrases = np.array([e[0], e[0] * 0.99 + e[3] * 0.01, e[1], e[2]])
    chosen = greedy_compose(video, phrases, [5, 5, 5, 5])
    assert sorted(chosen) == [0, 2] or sorted(chosen) == [1, 2]
    assert 3 not in chosen


def test_greedy_compose_respects_the_token_limit():
    e = np.eye(3)
    chosen = greedy_compose(e[0] + e[1] + e[2], e, [40, 40, 10], max_tokens=CLIP_CONTEXT)
    used = 2 + sum(c - 2 for c in (40, 40, 10) if True)
    assert used > CLIP_CONTEXT  # all three would not fit ...
    assert len(chosen) == 2 and sum([40, 40, 10][i] - 2 for i in chosen) + 2 + 1 <= CLIP_CONTEXT


def test_clip_token_count():
    assert clip_token_count("a red ball") == 5  # 3 words + start and end tokens


class _BagEncoder:
    """A transparent text encoder for splice tests: one dimension per known word."""

    words = ["red", "ball", "sky", "ocean", "neon", "4k"]

    def encode_text(self, texts):
        out = np.zeros((len(texts), len(self.words)))
        for i, t in enumerate(texts):
            for j, w in enumerate(self.words):
                out[i, j] = float(w in t.lower())
        return out + 1e-3


def test_splice_builds_the_prompt_the_video_supports():
    video = _BagEncoder().encode_text(["red ball sky"])[0]
    cands = ["a red ball, over the ocean, 4k -ar 16:9", "in the sky, neon", "a blue cube, in the sky"]
    spliced = splice_prompt(video, cands, _BagEncoder())
    assert "red ball" in spliced and "sky" in spliced
    assert "ocean" not in spliced and "neon" not in spliced and "-ar" not in spliced


def test_splice_stays_within_77_clip_tokens():
    long_phrases = [", ".join(f"phrase {i} with several extra descriptive words" for i in range(j, j + 5))
                    for j in range(0, 40, 5)]

    class AllRelevant:
        def encode_text(self, texts):
            rng = np.random.default_rng(len(texts))
            return np.abs(rng.normal(size=(len(texts), 16))) + 1.0

    spliced = splice_prompt(np.ones(16), long_phrases, AllRelevant())
    assert clip_token_count(spliced) <= CLIP_CONTEXT


@pytest.fixture(scope="module")
def lm_index(minilm_index, tmp_path_factory):
    """A copy of the MiniLM index with a bank LM trained on its prompts."""
    dest = tmp_path_factory.mktemp("lm") / "idx"
    shutil.copytree(minilm_index, dest)
    record = train_bank_lm(dest, LMTrainConfig(vocab_size=300, epochs=40, min_steps=0, batch_size=4, lr=5e-3))
    assert record["final_loss"] < record["first_loss"]
    return dest


def test_bank_lm_prefers_prompts_like_the_bank(lm_index):
    lm = load_fluency_model("bank", lm_index)
    bank = Retriever(lm_index).index.prompts_table.column("prompt").to_pylist()
    scores = lm.score([bank[0], "zq xv kk pp qq zz, 88 ## ^^ ~~", " ".join(reversed(bank[0].split()))])
    assert scores[0] > scores[2] > scores[1]


def test_missing_lm_is_a_clear_error(minilm_index):
    with pytest.raises(V2PError, match="no language model"):
        load_fluency_model("bank", minilm_index)
    with pytest.raises(V2PError, match="not on this machine"):
        load_fluency_model("no-such-org/no-such-model", minilm_index)


def test_reranker_orders_by_the_weighted_terms(tiny_clip_index, small_shard):
    from v2p.data.bad_records import BadRecords
    from v2p.data.shard import open_shard

    retriever = Retriever(tiny_clip_index)
    clip = next(open_shard(small_shard).video_payloads(BadRecords()))[1]
    plain = retriever.query_videos([clip], top=10)[0]
    index_only = Reranker(retriever, RerankWeights(index=1.0), k=50).query_videos([clip], top=10)[0]  # same pool
    assert [c.prompt_id for c in index_only.candidates] == [c.prompt_id for c in plain.candidates]
    by_max = Reranker(retriever, RerankWeights(index=0.0, frame_max=1.0), k=10).query_videos([clip], top=10)[0]
    maxes = [c.terms["frame_max"] for c in by_max.candidates]
    assert maxes == sorted(maxes, reverse=True)
    assert by_max.candidates[0].terms.keys() >= {"index", "frame_mean", "frame_max"}


def test_make_reranker_notes_a_missing_lm(tiny_clip_index):
    reranker, notes = make_reranker(Retriever(tiny_clip_index), weights=RerankWeights(fluency=1.0))
    assert reranker.weights.fluency == 0.0 and "v2p lm train" in notes[0]


def test_make_reranker_says_when_weights_keep_the_retrieval_order(tiny_clip_index):
    _, notes = make_reranker(Retriever(tiny_clip_index), weights=RerankWeights(), lm="none")
    assert any("keep the retrieval order" in n for n in notes)
    _, notes = make_reranker(Retriever(tiny_clip_index), weights=RerankWeights(consensus=0.5), lm="none")
    assert not any("keep the retrieval order" in n for n in notes)


def test_parse_weights():
    w = parse_weights("frame_max=0.5, consensus=2", RerankWeights())
    assert (w.frame_max, w.consensus, w.index) == (0.5, 2.0, 1.0)
    with pytest.raises(V2PError, match="unknown rerank weight 'bogus'"):
        parse_weights("bogus=1", RerankWeights())


def test_cli_lm_train_then_query_rerank_splice(tiny_clip_index, small_shard, tmp_path):
    idx = tmp_path / "idx"
    shutil.copytree(tiny_clip_index, idx)
    result = runner.invoke(app, ["lm", "train", str(idx), "--epochs", "2", "--min-steps", "10", "--vocab-size", "300",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert (idx / "lm" / "tokenizer.json").is_file()
    from v2p.data.bad_records import BadRecords
    from v2p.data.shard import open_shard

    ref, data = next(open_shard(small_shard).video_payloads(BadRecords()))
    clip = tmp_path / ref.member
    clip.write_bytes(data)
    result = runner.invoke(app, ["query", str(clip), "--index", str(idx), "--splice", "--json",
                                 "--weights", "fluency=0.5,frame_max=0.5"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)[0]
    assert payload["spliced"] and clip_token_count(payload["spliced"]) <= CLIP_CONTEXT
    assert "fluency" in payload["candidates"][0]["terms"]
