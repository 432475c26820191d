"""The learned cross-encoder reranker: tokens, the listwise loss, its start as plain retrieval,
leave-one-out mining, training on a real index, loading checks, and the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from v2p.cli import app
from v2p.errors import V2PError
from v2p.rerank import cross as C
from v2p.rerank.reranker import CROSS_TUNED, TUNED, make_reranker
from v2p.retrieval.search import Retriever

runner = CliRunner()


def test_tokenize_real_prompt_text():
    ids, mask = C.tokenize(["A red ball 🔥 sliding\nleft -camera pan left -motion 4", "cat"], max_tokens=40)
    assert ids.shape == mask.shape and ids.shape[0] == 2
    assert mask[1].sum() == 3  # [CLS] cat [SEP]
    assert ids[0, 0] == 101 and (ids[1, 3:] == 0).all()  # [CLS] first, zero padding
    long_ids, long_mask = C.tokenize(["word " * 200], max_tokens=16)
    assert long_ids.shape == (1, 16) and long_mask.all()


def test_listwise_loss_matches_cross_entropy_per_list():
    scores = torch.tensor([2.0, 0.5, -1.0, 0.3, 1.2])  # list 0: pairs 0-2, list 1: pairs 3-4
    list_of = torch.tensor([0, 0, 0, 1, 1])
    labels = torch.tensor([1, 4])  # pair index of each list's truth
    loss = C._listwise_loss(scores, list_of, labels, 2)
    expected = (F.cross_entropy(scores[None, :3], torch.tensor([1])) +
                F.cross_entropy(scores[None, 3:], torch.tensor([1]))) / 2
    assert float(loss) == pytest.approx(float(expected), abs=1e-6)


def _colour_direction_task(n_clips: int = 480, seed: int = 0):
    """Lists in which retrieval's features are the same for every candidate, so only reading the
    frames with the words finds the truth: a colour code in the frame vectors and a colour word
    in the prompt; a drift whose sign only the order of frames shows, and 'left'/'right'."""
    colours, directions = ["red", "green", "blue", "yellow"], ["left", "right"]
    prompts = [f"a {c} ball moving {d}" for c in colours for d in directions]
    rng = np.random.default_rng(seed)
    t, f = 4, 8
    frames = rng.normal(0, 0.3, (n_clips, t, f)).astype(np.float32)
    truth = rng.integers(0, len(prompts), n_clips)
    for i, row in enumerate(truth):
        colour, direction = divmod(int(row), 2)
        frames[i, :, colour] += 2.0
        frames[i, :, 4] += np.linspace(1, -1, t) * (1 if direction == 0 else -1)  # same states, other order
    k = len(prompts)
    lists = C.TrainingLists(videos=np.arange(n_clips), rows=np.tile(np.arange(k), (n_clips, 1)),
                            features=np.zeros((n_clips, k, len(C.FEATURE_NAMES)), np.float32), positive=truth)
    ids, mask = C.tokenize(prompts, 16)
    tokens = {r: ids[r, mask[r]] for r in range(k)}
    return lists, tokens, frames


def test_fit_learns_what_only_frames_and_words_tell():
    lists, tokens, frames = _colour_direction_task()
    cfg = C.CrossTrainConfig(epochs=10, patience=10, batch_lists=16, lr=1e-3, reversed_negatives=False)
    torch.manual_seed(0)
    model = C.CrossScorer(C.CrossConfig(frame_dim=frames.shape[2], num_frames=frames.shape[1], width=32, layers=2,
                                        heads=2, max_tokens=16, dropout=0.0), C.minilm_word_vectors())
    train_idx, val_idx = np.arange(400), np.arange(400, len(frames))
    assert C.list_top1(model, lists, val_idx, tokens, frames) < 0.3  # untrained: ties, ~chance (1/8)
    fit = C.fit_cross_scorer(model, lists, tokens, {}, frames, train_idx, val_idx, cfg)
    assert fit.history[0]["epoch"] == 0 and fit.history[0]["val_top1"] < 0.3  # epoch 0: the untrained model
    assert fit.best_top1 >= 0.9 and fit.best_epoch > 0 and fit.history[-1]["loss"] < fit.history[1]["loss"]
    assert fit.gain[1] > 0  # the gain over retrieval's order is clear: it is kept
    assert C.list_top1(model, lists, val_idx, tokens, frames) == pytest.approx(fit.best_top1)  # left at the best


def test_a_reranker_that_does_not_clearly_beat_retrieval_keeps_its_order():
    """Frames that say nothing about the truth: whatever an epoch scores on validation by chance,
    the kept model is epoch 0, which ranks exactly as retrieval does."""
    lists, tokens, frames = _colour_direction_task()
    frames = np.random.default_rng(9).normal(size=frames.shape).astype(np.float32)  # no signal left
    lists.features[:] = np.random.default_rng(3).normal(size=lists.features.shape)  # retrieval's own scores
    cfg = C.CrossTrainConfig(epochs=4, patience=4, batch_lists=16, lr=1e-3, reversed_negatives=False)
    torch.manual_seed(0)
    model = C.CrossScorer(C.CrossConfig(frame_dim=frames.shape[2], num_frames=frames.shape[1], width=32, layers=2,
                                        heads=2, max_tokens=16, dropout=0.0), C.minilm_word_vectors())
    fit = C.fit_cross_scorer(model, lists, tokens, {}, frames, np.arange(400), np.arange(400, len(frames)), cfg)
    assert fit.best_epoch == 0 and fit.gain is not None and fit.gain[1] <= 0
    retrieval_first = (np.argmax(lists.features[400:, :, 0], axis=1) == lists.positive[400:]).mean()
    assert C.list_top1(model, lists, np.arange(400, len(frames)), tokens, frames) == pytest.approx(retrieval_first)


def test_untrained_scorer_is_plain_retrieval(tiny_clip_index, small_shard):
    """At initialisation the score is the fused retrieval score exactly: training starts from
    retrieval's order and learns corrections."""
    from v2p.data.bad_records import BadRecords
    from v2p.data.shard import open_shard

    retriever = Retriever(tiny_clip_index)
    clip = next(open_shard(small_shard).video_payloads(BadRecords()))[1]
    found = retriever.search_clips(retriever.load_clips([clip]), top=10, pool_size=10)
    cands = found.candidates[0]
    manifest = retriever.index.manifest["videos"]
    model = C.CrossScorer(C.CrossConfig(frame_dim=manifest["frame_dim"], num_frames=manifest["frames_per_video"]),
                          C.minilm_word_vectors())
    scores = C.CrossReranker(model, tiny_clip_index).score(found.frames[0], cands)
    assert np.allclose(scores, [c.score for c in cands], atol=1e-5)


def test_search_can_leave_a_bank_video_out(tiny_clip_index):
    retriever = Retriever(tiny_clip_index)
    frames = np.asarray(retriever.index.video_frames[:3], np.float32)
    enc = retriever.encoder
    vectors, keys = enc.pool(frames), enc.video_keys(frames)
    table = retriever.index.videos_table.to_pylist()
    own = [f"{table[v]['generator']}-{table[v]['uuid']}" for v in range(3)]
    plain = retriever.search(vectors, top=50, video_vectors=keys)
    for cs, me in zip(plain, own, strict=True):  # a bank video as a query finds itself
        assert me in {c.matched_video for c in cs}
    left_out = retriever.search(vectors, top=50, video_vectors=keys, exclude_videos=[0, 1, 2])
    for cs, me in zip(left_out, own, strict=True):
        assert me not in {c.matched_video for c in cs}


def test_mine_lists_puts_the_truth_in_every_list(tiny_clip_index):
    retriever = Retriever(tiny_clip_index)
    n = retriever.index.manifest["videos"]["count"]
    lists = C.mine_lists(retriever, np.arange(n), k=6)
    assert len(lists.videos) + lists.missed == n and len(lists.videos) > 0
    truth = retriever.index.videos_table.column("prompt_row").to_numpy()
    got = lists.rows[np.arange(len(lists.videos)), lists.positive]
    assert (got == truth[lists.videos]).all()
    assert lists.features.shape == (len(lists.videos), 6, len(C.FEATURE_NAMES))


@pytest.fixture(scope="module")
def trained_index(tiny_clip_index, tmp_path_factory):
    """A copy of the tiny index with a reranker trained on it (the shared fixture stays untouched)."""
    idx = tmp_path_factory.mktemp("cross") / "idx"
    shutil.copytree(tiny_clip_index, idx)
    result = C.train_cross_reranker(idx, C.CrossTrainConfig(k=6, epochs=3, patience=3, batch_lists=8))
    return idx, result


def test_training_writes_the_reranker_with_its_record(trained_index):
    idx, result = trained_index
    rec = json.loads((idx / C.CROSS_DIR / "training.json").read_text())
    assert rec["lists"] > 0 and rec["epochs_run"] == 3 and rec["encoder"] == "clip:v2p-clip-tiny/random"
    # validation: held-out prompts, queried with the one generator no training list comes from
    assert rec["val_generator"] in {"ms", "pika", "vc2"} and 0 < rec["val_lists"] and 0 < rec["train_lists"]
    assert rec["train_lists"] + rec["val_lists"] <= rec["lists"]
    assert [h["epoch"] for h in rec["history"]] == [0, 1, 2, 3]  # epoch 0: the untrained model, as retrieval
    assert (idx / C.CROSS_DIR / "model.safetensors").is_file()
    cfg = C.CrossConfig.load(idx / C.CROSS_DIR)
    assert cfg.vocab_sha256 == C.vocab_sha256() and cfg.frame_dim > 0


def test_rerank_uses_the_trained_reranker(trained_index, small_shard):
    from v2p.data.bad_records import BadRecords
    from v2p.data.shard import open_shard

    idx, _ = trained_index
    retriever = Retriever(idx)
    reranker, notes = make_reranker(retriever, lm="none")
    assert reranker.cross is not None and reranker.weights == CROSS_TUNED
    assert not any("keep the retrieval order" in n for n in notes)
    clip = next(open_shard(small_shard).video_payloads(BadRecords()))[1]
    result = reranker.query_videos([clip], top=5)[0]
    crosses = [c.terms["cross"] for c in result.candidates]
    assert crosses == sorted(crosses, reverse=True) and result.score_kind == "rerank"
    off, _ = make_reranker(retriever, lm="none", cross="none")
    assert off.cross is None and off.weights == TUNED
    mixed, _ = make_reranker(retriever, lm="none", weights="frame_max=0.5")  # --weights on top of the cross defaults
    assert mixed.weights.cross == 1.0 and mixed.weights.frame_max == 0.5


def test_reranker_of_another_encoder_is_refused(trained_index, tmp_path):
    idx, _ = trained_index
    other = tmp_path / "idx"
    shutil.copytree(idx, other)
    cfg_path = other / C.CROSS_DIR / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["encoder_spec"] = "v2p-tiny"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(V2PError, match="trained for encoder 'v2p-tiny'.*v2p rerank train"):
        make_reranker(Retriever(other), lm="none")


def test_cross_weight_without_a_reranker_is_an_error(tiny_clip_index):
    with pytest.raises(V2PError, match="no trained reranker"):
        make_reranker(Retriever(tiny_clip_index), lm="none", weights="cross=1")


def test_cli_rerank_train(tiny_clip_index, minilm_index, tmp_path):
    idx = tmp_path / "idx"
    shutil.copytree(tiny_clip_index, idx)
    result = runner.invoke(app, ["rerank", "train", str(idx), "--epochs", "1", "--k", "4", "--json"])
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout)
    assert rec["epochs_run"] == 1 and rec["best_epoch"] in (0, 1)
    no_videos = runner.invoke(app, ["rerank", "train", str(minilm_index)])
    assert no_videos.exit_code == 2 and "build the index with --videos" in no_videos.output


def test_split_lists_holds_out_prompts_and_one_generator():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(50), 3)
    gens = np.tile(np.array(["ms", "vc2", "pika"]), 50)
    gens[2::3][:10] = "ms"  # pika is the rarest generator
    train, val, val_gen = C.split_lists(truth, gens, 0.2, rng)
    assert val_gen == "pika" and len(val) > 0
    assert set(truth[train]).isdisjoint(truth[val])  # no validation prompt is trained on
    assert (gens[val] == "pika").all() and not (gens[train] == "pika").any()
    one_gen_train, one_gen_val, none = C.split_lists(truth, np.full(len(truth), "ms"), 0.2, rng)
    assert none is None and len(one_gen_train) + len(one_gen_val) == len(truth)
