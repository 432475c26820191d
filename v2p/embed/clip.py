"""open_clip encoders: ``clip:<model>/<pretrained tag>`` and ``clip:<model>@<checkpoint>``.

Weights come through open_clip (the Hugging Face cache for pretrained tags) or a local
checkpoint. Offline without cached weights is a clear error, never a random model; random
init exists only behind the explicit tag ``random`` (for tests and timing).

Text is batched by length and each batch trimmed to its longest prompt. For open_clip's
standard ``CLIP`` text tower (causal mask + EOT/argmax pooling) the positions after the
EOT token never influence the pooled output, so trimming gives the same embeddings as
padding to 77 tokens, for much less work. Other text towers run at full length.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from v2p.embed.base import Encoder, ProgressFn, l2_normalize, pick_device
from v2p.errors import EncoderSpecError

_CONFIG_DIR = Path(__file__).parent / "model_configs"
RANDOM_TAG = "random"
RANDOM_INIT_SEED = 0


def _register_local_configs() -> None:
    import open_clip

    if "v2p-clip-tiny" not in open_clip.list_models():
        open_clip.add_model_config(_CONFIG_DIR)


def _offline_help(model: str, tag: str) -> str:
    return (
        f"CLIP weights {model}/{tag} are not available: they are not in the Hugging Face cache and "
        "they cannot be downloaded (offline?). Either run once on a connected machine "
        f"(python -c \"import open_clip; open_clip.create_model_and_transforms('{model}', pretrained='{tag}')\") "
        "and copy ~/.cache/huggingface to this one, or point at a checkpoint file: "
        f"--encoder clip:{model}@/path/to/open_clip_model.safetensors"
    )


def eot_positions(tokens):
    """Position of each row's end-of-text token: its largest id (49407 in CLIP's BPE).

    Not the count of non-zero ids: id 0 is both the pad id and the BPE token "!", so counting
    non-zeros cuts the EOT of any prompt with a "!" and pools the wrong position."""
    return tokens.argmax(dim=1)


def count_truncated(tokenizer, texts: Sequence[str], tokens) -> int:
    """Prompts whose text did not fit the context: EOT in the last slot and more BPE tokens than fit."""
    at_end = (eot_positions(tokens) == tokens.shape[1] - 1).nonzero().flatten().tolist()
    encode = getattr(tokenizer, "encode", None)
    if encode is None:  # tokenizers without a raw encode: an EOT in the last slot means cut
        return len(at_end)
    return sum(1 for i in at_end if len(encode(texts[i])) > tokens.shape[1] - 2)


ALLOW_DOWNLOAD_ENV = "V2P_ALLOW_DOWNLOAD"


def cached_weights(model: str, tag: str) -> str | None:
    """Path of a pretrained tag's weights in the local caches (Hugging Face hub cache, or
    open_clip's ``~/.cache/clip`` for URL weights), or None. Looks, never downloads."""
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(model, tag) or {}
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(hub)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in names:
            found = try_to_load_from_cache(repo, name)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    url = cfg.get("url", "")
    if url:
        local = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if local.is_file():
            return str(local)
    return None


class OpenClipEncoder(Encoder):
    """An open_clip model used as a frame encoder (mean pooling) and text encoder."""

    poolings = ("mean",)

    def __init__(self, model: str, *, pretrained: str | None = None, checkpoint: str | None = None,
                 device: str | None = None, num_frames: int = 8):
        import open_clip
        import torch

        _register_local_configs()
        if model not in open_clip.list_models():
            known = ", ".join(m for m in open_clip.list_models() if m.startswith(("ViT-B", "ViT-L", "v2p")))
            raise EncoderSpecError(f"unknown open_clip model {model!r}; e.g. {known} (open_clip.list_models())")
        if checkpoint is not None:
            if not Path(checkpoint).is_file():
                raise EncoderSpecError(f"checkpoint not found: {checkpoint}")
            source, self.spec = checkpoint, f"clip:{model}@{checkpoint}"
        elif pretrained == RANDOM_TAG:
            source, self.spec = None, f"clip:{model}/{RANDOM_TAG}"
        else:
            tags = [t for m, t in open_clip.list_pretrained() if m == model]
            if pretrained not in tags:
                raise EncoderSpecError(
                    f"no pretrained tag {pretrained!r} for {model}; known tags: {', '.join(tags) or 'none'} "
                    f"(or clip:{model}@/path/to/checkpoint, or clip:{model}/{RANDOM_TAG} for tests)")
            source, self.spec = pretrained, f"clip:{model}/{pretrained}"
            # v2p never downloads weights on its own: uncached is an error at once (offline, the
            # hub's retries took about a minute before saying so), unless downloads are allowed
            if cached_weights(model, pretrained) is None and os.environ.get(ALLOW_DOWNLOAD_ENV) != "1":
                raise EncoderSpecError(_offline_help(model, pretrained)
                                       + f" (or set {ALLOW_DOWNLOAD_ENV}=1 to let open_clip download them)")
        self.device = pick_device(device)
        try:
            # a spec names one space: random init is seeded so every process gets the same weights
            with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
                warnings.filterwarnings("ignore", message=".*initialized randomly.*")
                torch.manual_seed(RANDOM_INIT_SEED)
                self.model = open_clip.create_model(model, pretrained=source, device=self.device)
        except Exception as exc:  # torch.load / safetensors / hub each raise their own types
            if checkpoint is not None:
                reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                raise EncoderSpecError(f"cannot load checkpoint {checkpoint} into {model}: {reason}") from None
            # open_clip raises RuntimeError("Failed to download weights ...") when the hub is unreachable
            message = str(exc).lower()
            if isinstance(exc, OSError) or any(w in message for w in ("download", "offline", "connect", "hub")):
                raise EncoderSpecError(_offline_help(model, pretrained)) from None
            raise
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(model)
        self.context_length = int(getattr(self.model, "context_length", 77) or 77)
        cfg = getattr(self.model.visual, "preprocess_cfg", {}) or {}
        size = cfg.get("size", self.model.visual.image_size)
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (int(size), int(size))
        self.frame_short_side = max(self.image_size)  # preprocess resizes the short side to this anyway
        self.mean = torch.tensor(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.get("std", (0.26862954, 0.26130258, 0.27577711))).view(1, 3, 1, 1)
        with torch.no_grad():
            probe = self.model.encode_text(self.tokenizer(["a"]).to(self.device))
        self.dim = self.frame_dim = int(probe.shape[-1])
        self.num_frames = num_frames
        self.trim_supported = (isinstance(self.model, open_clip.CLIP) and self.model.attn_mask is not None
                               and self.model.text_pool_type in ("argmax", "eos"))
        self.truncated_count = 0

    # -- text ------------------------------------------------------------------------------
    def _autocast(self):
        import contextlib

        import torch

        if self.device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _text_features(self, tokens, trim: bool):
        """Text features for a [B, 77] token batch, trimmed to its longest prompt when exact."""
        from open_clip.transformer import text_global_pool
        from torch import nn

        m = self.model
        if not (trim and self.trim_supported):
            return m.encode_text(tokens)
        length = int(eot_positions(tokens).max()) + 1
        t = tokens[:, :length]
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(t).to(cast) + m.positional_embedding[:length].to(cast)
        x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
        x = m.ln_final(x)
        x = text_global_pool(x, t, m.text_pool_type, eos_token_id=getattr(m, "text_eos_id", None))
        if m.text_projection is not None:
            x = m.text_projection(x) if isinstance(m.text_projection, nn.Linear) else x @ m.text_projection
        return x

    def tokenize(self, texts: Sequence[str]):
        """Tokens [n, context_length]; counts prompts cut at the context length."""
        tokens = self.tokenizer(list(texts))
        self.truncated_count += count_truncated(self.tokenizer, texts, tokens)
        return tokens

    def encode_text(self, texts: Sequence[str], *, batch_size: int | None = None,
                    on_progress: ProgressFn | None = None, trim: bool = True) -> np.ndarray:
        import torch

        batch_size = batch_size or 256
        texts = list(texts)
        out = np.empty((len(texts), self.dim), np.float32)
        if not texts:
            return out
        tokens = self.tokenize(texts)
        order = np.argsort(-eot_positions(tokens).numpy(), kind="stable")  # longest first
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(texts), batch_size):
                idx = order[start:start + batch_size]
                feats = self._text_features(tokens[idx].to(self.device), trim)
                out[idx] = feats.float().cpu().numpy()
                if on_progress:
                    on_progress(len(idx))
        return l2_normalize(out)

    # -- frames ----------------------------------------------------------------------------
    def preprocess(self, clips: Sequence[np.ndarray]):
        """uint8 clips [t, H, W, 3] -> normalised float tensor [sum t, 3, h, w] (resize short side, centre crop)."""
        import torch
        import torchvision.transforms.v2.functional as TF

        out = []
        h, w = self.image_size
        for clip in clips:
            x = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2)
            x = TF.resize(x, [min(h, w)], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
            x = TF.center_crop(x, [h, w])
            out.append(x)
        x = torch.cat(out).float().div_(255.0)
        return (x - self.mean) / self.std

    def encode_frames(self, clips: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        import torch

        if not clips:
            return self.empty_frames()
        t = self.frames_per_clip(clips)
        feats = []
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(clips), batch_size):
                x = self.preprocess(clips[start:start + batch_size]).to(self.device)
                feats.append(self.model.encode_image(x).float().cpu().numpy())
        frames = np.concatenate(feats).reshape(len(clips), t, self.frame_dim)
        return l2_normalize(frames)

    def pool(self, frame_vectors: np.ndarray, pooling: str | None = None) -> np.ndarray:
        self.check_pooling(pooling)
        return l2_normalize(frame_vectors.astype(np.float32).mean(axis=1))

    def frames_in_text_space(self, frame_vectors: np.ndarray) -> np.ndarray:
        return l2_normalize(np.asarray(frame_vectors, np.float32))  # CLIP frames already share the text space

    def picture_vectors(self, frame_vectors: np.ndarray) -> np.ndarray:
        return np.asarray(frame_vectors, np.float32)  # CLIP's frame vectors are its image embeddings
