"""A fluency prior: per-token log-likelihood of a prompt under a small causal language model.

Offline default: a tiny GPT-2-style model (a few M parameters) and a byte-level BPE tokenizer,
both trained on the bank's own prompts by ``v2p lm train INDEX_DIR`` and stored in
``INDEX_DIR/lm/``, so it knows how real prompts of *this* bank read. Any Hugging Face causal
LM whose files are already on the machine (e.g. ``distilgpt2`` in the HF cache) works too;
nothing is downloaded and nothing falls back to random weights.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from v2p._hf import quiet_transformers
from v2p.errors import V2PError

LM_DIR = "lm"
MAX_TOKENS = 96


@dataclass
class LMTrainConfig:
    vocab_size: int = 4096
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    epochs: int = 3
    min_steps: int = 300  # small banks get more passes: a few steps teach a model nothing
    batch_size: int = 64
    lr: float = 3e-3
    max_prompts: int = 200_000
    seed: int = 0


class FluencyModel:
    """Mean per-token log-likelihood of texts (higher = reads more like the bank's prompts)."""

    def __init__(self, model, tokenizer, name: str):
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name

    @torch.inference_mode()
    def score(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out = np.empty(len(texts), np.float64)
        for s in range(0, len(texts), batch_size):
            enc = self.tokenizer(list(texts[s:s + batch_size]), return_tensors="pt", padding=True, truncation=True,
                                 max_length=MAX_TOKENS)
            ids, mask = enc["input_ids"], enc["attention_mask"]
            logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            logp = torch.log_softmax(logits.float(), dim=-1).gather(2, ids[:, 1:, None])[..., 0]
            m = mask[:, 1:].float()
            out[s:s + len(ids)] = ((logp * m).sum(1) / m.sum(1).clamp(min=1)).numpy()
        return out


def _wrap_tokenizer(tokenizer_file: Path):
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file), bos_token="<s>", eos_token="</s>",
                                  pad_token="<pad>", unk_token="<unk>")
    tok.padding_side = "right"
    return tok


def train_bank_lm(index_dir: str | Path, cfg: LMTrainConfig = LMTrainConfig(),
                  on_progress: Callable[[str, int, int | None], None] | None = None) -> dict:
    """Train tokenizer + tiny GPT-2 on the index's prompts; write them to ``INDEX_DIR/lm``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    from v2p.index.store import IndexDir

    progress = on_progress or (lambda stage, advance, total: None)
    index = IndexDir.open(index_dir)
    prompts = index.prompts_table.column("prompt").to_pylist()
    rng = np.random.default_rng(cfg.seed)
    if len(prompts) > cfg.max_prompts:
        prompts = [prompts[i] for i in sorted(rng.choice(len(prompts), cfg.max_prompts, replace=False))]
    out = Path(index_dir) / LM_DIR
    out.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(prompts, vocab_size=cfg.vocab_size, min_frequency=2,
                            special_tokens=["<pad>", "<s>", "</s>", "<unk>"])
    bpe.save(str(out / "tokenizer.json"))
    tok = _wrap_tokenizer(out / "tokenizer.json")
    torch.manual_seed(cfg.seed)
    with quiet_transformers():
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=MAX_TOKENS + 2, n_embd=cfg.n_embd,
                                           n_layer=cfg.n_layer, n_head=cfg.n_head, bos_token_id=tok.bos_token_id,
                                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    texts = [f"<s>{p}</s>" for p in prompts]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    per_epoch = math.ceil(len(texts) / cfg.batch_size)
    epochs = max(cfg.epochs, math.ceil(cfg.min_steps / per_epoch))
    steps = epochs * per_epoch
    warmup = max(1, steps // 10)  # linear warm-up, then cosine decay (robust for any step count)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(steps, 1)))))
    progress("training language model", 0, steps)
    losses = []
    model.train()
    with quiet_transformers():  # transformers warns about config fields at the first forward pass
        for _ in range(epochs):
            order = rng.permutation(len(texts))
            for b in range(0, len(order), cfg.batch_size):
                batch = [texts[j] for j in order[b:b + cfg.batch_size]]
                enc = tok(batch, return_tensors="pt", padding=True, truncation=True, max_length=MAX_TOKENS)
                labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
                loss = model(**enc, labels=labels).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                progress("training language model", 1, None)
    with quiet_transformers():
        model.save_pretrained(str(out))
    record = {"prompts": len(prompts), "config": asdict(cfg), "epochs_run": epochs, "final_loss": float(np.mean(losses[-20:])),
              "first_loss": float(np.mean(losses[:20])), "seconds": time.perf_counter() - t0,
              "parameters": sum(p.numel() for p in model.parameters())}
    (out / "training.json").write_text(json.dumps(record, indent=2))
    return record


def load_fluency_model(spec: str | None, index_dir: str | Path | None = None) -> FluencyModel:
    """``None``/``"bank"``: the index's own LM (``v2p lm train``); otherwise a local HF causal LM name or path."""
    if spec in (None, "bank"):
        folder = Path(index_dir or ".") / LM_DIR
        if not (folder / "config.json").is_file():
            raise V2PError(f"{index_dir}: no language model; train one with 'v2p lm train {index_dir}' "
                           "or pass --lm <a Hugging Face causal LM present on this machine>")
        from transformers import GPT2LMHeadModel

        with quiet_transformers():
            model = GPT2LMHeadModel.from_pretrained(str(folder))
        return FluencyModel(model, _wrap_tokenizer(folder / "tokenizer.json"), f"bank:{folder}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with quiet_transformers():
            tok = AutoTokenizer.from_pretrained(spec, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(spec, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise V2PError(f"language model {spec!r} is not on this machine (weights are never downloaded or "
                       f"replaced by random ones): {str(exc).splitlines()[0]}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return FluencyModel(model, tok, spec)
