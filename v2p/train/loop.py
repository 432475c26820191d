"""Contrastive training of a video tower into a frozen text space (``v2p train``).

Loss: symmetric InfoNCE between video vectors and the frozen text vectors of their prompts,
with a learnable temperature (CLIP's logit scale). With ``hard_negatives`` (the default), prompts
that name a direction bring two NegCLIP-style hard negatives: their motion-reversed text
("sliding to the right" for a clip sliding to the left) as a wrong answer for the videos, and
their clip played backwards as a wrong answer for the prompts. Only the order of the frames
tells either apart, so the head has to learn time (random batches never ask for it: the
other attributes already separate random prompts). Two more options ask for what random
batches do not: ``neighbour_group`` fills batches with groups of text-near prompts, so a
clip's negatives include its near misses (``v2p/train/sampling.py``), and ``video_pairs``
adds a second clip of each prompt (another generator's render, as VidProM has four) and a
clip-to-clip InfoNCE term with its own temperature, training what the video path compares
(a query clip against the bank's own videos), not only the clip-to-text match. When the
training set carries word swaps (``v2p/train/word_swaps.py``: the prompt with one word
replaced by a word the bank uses in its place), they are wrong answers for the videos too,
so each attribute must be read on its own. Each epoch
visits every training prompt once, with one of its videos drawn at random (two with
``video_pairs``), so a batch never holds two positives for one prompt. Validation (held-out
prompts, every one of their videos) picks the best epoch and stops training once it has not
improved for ``patience`` epochs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2p._paths import refuse_existing
from v2p.embed.tower import TowerConfig, VideoTower, normalise_pixels, save_tower
from v2p.train.data import TrainingSet
from v2p.train.sampling import neighbour_batches, text_neighbours


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    patience: int = 5
    val_fraction: float = 0.1
    seed: int = 0
    max_steps: int | None = None  # stop after this many optimiser steps (tests, smoke runs)
    augment: bool = True
    hard_negatives: bool = True  # motion-reversed prompts and backwards clips as negatives (module doc)
    neighbour_group: int = 1  # batches of groups of this many text-near prompts (v2p/train/sampling.py); 1 = random
    video_pairs: bool = False  # also match two clips of one prompt (other generators') to each other (module doc)


@dataclass
class TrainResult:
    model: VideoTower
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best: dict = field(default_factory=dict)
    seconds: float = 0.0


class ContrastiveLoss(nn.Module):
    """Symmetric InfoNCE with a learnable temperature, initialised at 1/0.07 and capped at 100."""

    def __init__(self):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, video: torch.Tensor, text: torch.Tensor, extra_text: torch.Tensor | None = None,
                extra_text_mask: torch.Tensor | None = None, extra_video: torch.Tensor | None = None,
                extra_video_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``video[i]`` matches ``text[i]``. Hard negatives: each row of ``extra_text`` (where
        ``extra_text_mask``) is one more wrong answer for every video (a motion-reversed or
        word-swapped prompt), and each row of ``extra_video`` (where ``extra_video_mask``) one
        more wrong answer for every prompt (a clip played backwards)."""
        scale = self.logit_scale.clamp(max=math.log(100)).exp()
        logits = scale * video @ text.T
        target = torch.arange(len(video), device=video.device)
        video_to_text, text_to_video = logits, logits.T
        if extra_text is not None and bool(extra_text_mask.any()):
            extra = (scale * video @ extra_text.T).masked_fill(~extra_text_mask[None, :], float("-inf"))
            video_to_text = torch.cat([video_to_text, extra], dim=1)
        if extra_video is not None and bool(extra_video_mask.any()):
            extra = (scale * text @ extra_video.T).masked_fill(~extra_video_mask[None, :], float("-inf"))
            text_to_video = torch.cat([text_to_video, extra], dim=1)
        return (F.cross_entropy(video_to_text, target) + F.cross_entropy(text_to_video, target)) / 2


def _augment(pixels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per clip (same for all its frames): a mild random crop-and-resize and brightness change.

    No flips: a mirrored clip would show the opposite motion under the same prompt."""
    b, t, c, h, w = pixels.shape
    out = torch.empty_like(pixels)
    for i in range(b):
        s = float(torch.empty(1).uniform_(0.88, 1.0, generator=gen))
        ch, cw = max(8, int(h * s)), max(8, int(w * s))
        y0 = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
        crop = pixels[i, :, :, y0:y0 + ch, x0:x0 + cw]
        out[i] = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)
    gain = torch.empty(b, 1, 1, 1, 1).uniform_(0.9, 1.1, generator=gen)
    return (out * gain).clamp(0, 255)


class Trainer:
    def __init__(self, data: TrainingSet, tower_cfg: TowerConfig, cfg: TrainConfig,
                 on_progress: Callable[[str, int, int | None], None] | None = None, log_path: Path | None = None):
        self.data, self.cfg, self.tower_cfg = data, cfg, tower_cfg
        self.progress = on_progress or (lambda stage, advance, total: None)
        self.log_path = log_path
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.model = VideoTower(tower_cfg)
        self.loss = ContrastiveLoss()
        self.pair_loss = ContrastiveLoss()  # its own temperature: same-modal cosines sit higher
        self.text = torch.from_numpy(np.asarray(data.text_vectors, dtype=np.float32))
        self.use_hard = cfg.hard_negatives and data.has_reversal is not None and bool(data.has_reversal.any())
        if self.use_hard:
            self.reversed = torch.from_numpy(np.asarray(data.reversed_vectors, dtype=np.float32))
            self.has_reversal = torch.from_numpy(np.asarray(data.has_reversal, dtype=bool))
        self.use_swaps = data.has_swap is not None and bool(data.has_swap.any())
        if self.use_swaps:
            self.swaps = torch.from_numpy(np.asarray(data.swap_vectors, dtype=np.float32))
            self.has_swap = torch.from_numpy(np.asarray(data.has_swap, dtype=bool))
        self.train_prompts, self.val_prompts = data.split(cfg.val_fraction, cfg.seed)
        self.videos_of = [[] for _ in data.prompts]
        for v, p in enumerate(data.video_prompt.tolist()):
            self.videos_of[p].append(v)
        self.train_prompts = np.array([p for p in self.train_prompts if self.videos_of[p]], np.int64)
        self.val_prompts = np.array([p for p in self.val_prompts if self.videos_of[p]], np.int64)
        self.neighbours = np.full((len(self.train_prompts), 0), -1, np.int64)  # group 1: plain shuffles
        if cfg.neighbour_group > 1:
            keys = F.normalize(self.text[self.train_prompts], dim=1).numpy()
            self.neighbours = text_neighbours(keys, 4 * cfg.neighbour_group)

    def _frames(self, video_ids: np.ndarray, train: bool) -> torch.Tensor:
        """Frame vectors [B, T, f] of the videos (pixels through the frame encoder, or cached vectors)."""
        x = torch.from_numpy(self.data.inputs[video_ids])
        if self.data.is_pixels:
            pixels = x.permute(0, 1, 4, 2, 3).float()  # [B, T, 3, S, S] in 0..255
            if train and self.cfg.augment:
                pixels = _augment(pixels, self.gen)
            return self.model.encode_frames(normalise_pixels(pixels))
        return x.float()

    def _forward(self, video_ids: np.ndarray, train: bool) -> torch.Tensor:
        return self.model.pool(self._frames(video_ids, train))

    def _validate(self) -> dict:
        if len(self.val_prompts) == 0:
            return {}
        self.model.eval()
        vids = np.array([v for p in self.val_prompts for v in self.videos_of[p]], np.int64)
        with torch.no_grad():
            emb = torch.cat([self._forward(vids[s:s + 256], train=False) for s in range(0, len(vids), 256)])
            text = self.text[self.val_prompts]
            scale = self.loss.logit_scale.clamp(max=math.log(100)).exp()
            logits = scale * emb @ text.T
            col = {p: i for i, p in enumerate(self.val_prompts.tolist())}
            target = torch.tensor([col[int(self.data.video_prompt[v])] for v in vids])
            ranks = (logits > logits.gather(1, target[:, None])).sum(1)
            extra: dict = {}
            if self.use_hard:
                # each video against its own prompt's reversal: the direction a retrieval metric can hide
                own = torch.from_numpy(self.data.video_prompt[vids])
                has = self.has_reversal[own]
                rev = scale * (emb * self.reversed[own]).sum(1)
                rev_logit = rev.masked_fill(~has, float("-inf"))
                logits = torch.cat([logits, rev_logit[:, None]], dim=1)
                true = logits.gather(1, target[:, None])[:, 0]
                if bool(has.any()):
                    extra = {"val_reversal_acc": float((true[has] > rev[has]).float().mean()),
                             "val_reversal_videos": int(has.sum())}
            loss = float(F.cross_entropy(logits, target))
            if self.use_swaps:
                # each video against its own prompt's word swaps: one attribute decided alone
                own = torch.from_numpy(self.data.video_prompt[vids])
                has = self.has_swap[own]
                if bool(has.any()):
                    true = (emb * text[target]).sum(1, keepdim=True)
                    swapped = torch.einsum("bd,bkd->bk", emb, self.swaps[own])
                    extra["val_swap_acc"] = float((true > swapped)[has].float().mean())
            # the video path's question: is a held-out clip's nearest other clip one of its own prompt's?
            owner = torch.from_numpy(self.data.video_prompt[vids])
            has_twin = torch.bincount(owner)[owner] > 1
            if bool(has_twin.any()):
                nearest = torch.empty(len(vids), dtype=torch.long)
                for s in range(0, len(vids), 1024):  # blocks: memory 1024 x n, not n x n
                    same = emb[s:s + 1024] @ emb.T
                    same[torch.arange(len(same)), s + torch.arange(len(same))] = -float("inf")
                    nearest[s:s + 1024] = same.argmax(1)
                extra["val_video_r1"] = float((owner[nearest] == owner)[has_twin].float().mean())
        return {"val_loss": loss, "val_r1": float((ranks < 1).float().mean()),
                "val_r5": float((ranks < 5).float().mean()), "val_videos": len(vids), "val_prompts": len(text),
                **extra}

    def _text_loss(self, vids: np.ndarray, prompts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The clips' contrastive loss against the batch's prompts and their hard negatives
        (motion reversals, word swaps, the clips played backwards), and the pooled clips."""
        frames = self._frames(vids, train=True)
        pooled = self.model.pool(frames)
        texts, masks = [], []
        if self.use_hard:
            texts.append(self.reversed[prompts])
            masks.append(self.has_reversal[prompts])
        if self.use_swaps:
            texts.append(self.swaps[prompts].reshape(-1, self.swaps.shape[-1]))
            masks.append(self.has_swap[prompts].reshape(-1))
        extra_text, extra_mask = (torch.cat(texts), torch.cat(masks)) if texts else (None, None)
        if self.use_hard:
            return self.loss(pooled, self.text[prompts], extra_text, extra_mask, self.model.pool(frames.flip(1)),
                             self.has_reversal[prompts]), pooled
        return self.loss(pooled, self.text[prompts], extra_text, extra_mask), pooled

    def _other_videos(self, vids: np.ndarray, prompts: np.ndarray) -> np.ndarray:
        """For each (video, prompt) of a batch, another video of that prompt (itself when it has one only)."""
        out = vids.copy()
        for i, (v, p) in enumerate(zip(vids.tolist(), prompts.tolist(), strict=True)):
            others = [o for o in self.videos_of[p] if o != v]
            if others:
                out[i] = others[int(self.rng.integers(len(others)))]
        return out

    def run(self) -> TrainResult:
        cfg = self.cfg
        params = list(self.model.parameters()) + list(self.loss.parameters())
        if cfg.video_pairs:
            params += list(self.pair_loss.parameters())
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps_per_epoch = max(1, math.ceil(len(self.train_prompts) / cfg.batch_size))
        total = steps_per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
        warmup = max(1, total // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
        result = TrainResult(self.model)
        best_loss, stale, step = float("inf"), 0, 0
        best_state = None
        t0 = time.perf_counter()
        self.progress("training", 0, total)
        for epoch in range(1, cfg.epochs + 1):
            order = self.train_prompts[neighbour_batches(self.neighbours, cfg.neighbour_group, self.rng)]
            self.model.train()
            losses = []
            for s in range(0, len(order), cfg.batch_size):
                prompts = order[s:s + cfg.batch_size]
                if len(prompts) < 2:
                    continue
                vids = np.array([self.rng.choice(self.videos_of[p]) for p in prompts], np.int64)
                loss, pooled = self._text_loss(vids, prompts)
                if cfg.video_pairs:
                    second, pooled_second = self._text_loss(self._other_videos(vids, prompts), prompts)
                    loss = (loss + second) / 2 + self.pair_loss(pooled, pooled_second)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 5.0)
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                step += 1
                self.progress("training", 1, None)
                if cfg.max_steps is not None and step >= cfg.max_steps:
                    break
            record = {"epoch": epoch, "step": step, "train_loss": float(np.mean(losses)) if losses else None,
                      "temperature": float(1 / self.loss.logit_scale.detach().exp()), "seconds": time.perf_counter() - t0,
                      **self._validate()}
            result.history.append(record)
            if self.log_path is not None:
                with open(self.log_path, "a") as fh:
                    fh.write(json.dumps(record) + "\n")
            score = record.get("val_loss", record["train_loss"])
            if score is not None and score < best_loss:
                best_loss, stale = score, 0
                best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                result.best_epoch, result.best = epoch, record
            else:
                stale += 1
            if stale >= cfg.patience or (cfg.max_steps is not None and step >= cfg.max_steps):
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        self.model.eval()
        result.seconds = time.perf_counter() - t0
        return result


def train_tower(data: TrainingSet, out: str | Path, *, head: str = "temporal", text_encoder: str = "minilm",
                cfg: TrainConfig = TrainConfig(), tower_overrides: dict | None = None,
                on_progress: Callable[[str, int, int | None], None] | None = None,
                provenance: dict | None = None, overwrite: bool = False) -> TrainResult:
    """Train and save a tower to ``out`` (config.json, model.safetensors, train_log.jsonl, training.json).
    An existing non-empty ``out`` is refused unless ``overwrite``."""
    out = refuse_existing(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "train_log.jsonl"
    log.unlink(missing_ok=True)
    frame_dim = int(data.inputs.shape[-1]) if not data.is_pixels else 128
    tower_cfg = TowerConfig(text_encoder=text_encoder, text_dim=int(data.text_vectors.shape[1]),
                            frame_encoder=data.frame_encoder, frame_dim=frame_dim, head=head,
                            num_frames=int(data.inputs.shape[1]),
                            image_size=int(data.inputs.shape[2]) if data.is_pixels else 64,
                            **(tower_overrides or {}))
    result = Trainer(data, tower_cfg, cfg, on_progress, log).run()
    save_tower(result.model, out)
    n_params = sum(p.numel() for p in result.model.parameters())
    (out / "training.json").write_text(json.dumps({
        "source": data.source, "videos": len(data.inputs), "prompts": len(data.prompts), "train_config": asdict(cfg),
        "word_swaps_per_prompt": 0 if data.has_swap is None else int(data.has_swap.shape[1]),
        "prompts_with_word_swaps": 0 if data.has_swap is None else int(data.has_swap.any(1).sum()),
        "tower_config": asdict(tower_cfg), "parameters": n_params, "best_epoch": result.best_epoch,
        "best": result.best, "seconds": result.seconds, "torch": torch.__version__, **(provenance or {}),
    }, indent=2))
    return result
