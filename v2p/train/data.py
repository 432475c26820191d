"""Training pairs (video, prompt) for ``v2p train``, from a shard or from an index's frame cache.

* From a shard: every video is decoded once (``num_frames`` frames, resized to the tower's
  input size) and kept as uint8; the frame encoder is then trained from scratch.
* From an index built with ``--videos``: the per-frame vectors it cached are used as they
  are (the CLIP frame encoder stays frozen), so no frame is decoded or encoded again.

Prompts are embedded once with the frozen text encoder, and so are their motion reversals
(``reverse_motion``: the prompt of the clip played backwards), which training uses as hard
negatives so the tower must read the order of the frames, and, when asked, their word swaps
(``word_swaps``: the prompt with one word replaced), hard negatives for every other attribute.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from v2p.data.bad_records import BadRecords
from v2p.data.frames import sample_frames
from v2p.data.prompts import read_prompts_table
from v2p.data.reverse_motion import reverse_motion
from v2p.data.shard import Shard
from v2p.embed.factory import create_encoder
from v2p.errors import V2PError, VideoDecodeError
from v2p.index.store import IndexDir
from v2p.train.sampling import REWORDING_COSINE
from v2p.train.word_swaps import find_substitutes, swap_words


@dataclass
class TrainingSet:
    """``inputs[i]`` is video i (uint8 frames [T,S,S,3], or float16 frame vectors [T,f]); it shows prompt ``video_prompt[i]``."""

    inputs: np.ndarray
    video_prompt: np.ndarray
    prompts: list[str]
    text_vectors: np.ndarray
    source: str
    frame_encoder: str  # "tiny-cnn" for pixels, else the spec of the cached frame vectors
    # text vectors of each prompt's motion reversal (zeros where it has none; see has_reversal)
    reversed_vectors: np.ndarray | None = None
    has_reversal: np.ndarray | None = None
    # text vectors [n, k, d] of up to k word swaps per prompt (zeros where fewer; see has_swap)
    swap_vectors: np.ndarray | None = None
    has_swap: np.ndarray | None = None

    @property
    def is_pixels(self) -> bool:
        return self.inputs.dtype == np.uint8

    def split(self, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Prompt indices for training and validation (a prompt's videos stay on one side)."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.prompts))
        n_val = max(1, int(round(len(order) * val_fraction))) if len(order) > 1 else 0
        return np.sort(order[n_val:]), np.sort(order[:n_val])


def embed_reversals(prompts: list[str], encode: Callable[[list[str]], np.ndarray], dim: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Text vectors of the prompts' motion reversals (zero rows where a prompt names no direction)."""
    reversed_prompts = [reverse_motion(p) for p in prompts]
    has = np.array([r is not None for r in reversed_prompts], dtype=bool)
    vectors = np.zeros((len(prompts), dim), dtype=np.float32)
    if has.any():
        vectors[has] = encode([r for r in reversed_prompts if r is not None])
    return vectors, has


def embed_word_swaps(prompts: list[str], vectors: np.ndarray, encode: Callable[[list[str]], np.ndarray],
                     per_prompt: int, seed: int = 0, rewording_cosine: float = REWORDING_COSINE,
                     min_shared: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Text vectors [n, per_prompt, d] of each prompt's word swaps, and which slots are filled.

    Twice as many swaps as wanted are drawn, because those at ``rewording_cosine`` or more of
    their prompt (filler for filler, a plural, a synonym the text space already equates) are
    dropped: as negatives they would push a clip away from a text that describes it equally.
    ``min_shared`` is ``find_substitutes``' evidence threshold."""
    substitutes = find_substitutes(prompts, min_shared)
    rng = np.random.default_rng(seed)
    drawn = [swap_words(p, substitutes, 2 * per_prompt, rng) for p in prompts]
    out = np.zeros((len(prompts), per_prompt, vectors.shape[1]), np.float32)
    has = np.zeros((len(prompts), per_prompt), bool)
    flat = [v for variants in drawn for v in variants]
    if not flat:
        return out, has
    swapped = encode(flat)
    owner = np.repeat(np.arange(len(prompts)), [len(v) for v in drawn])
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    cosine = (swapped / np.maximum(np.linalg.norm(swapped, axis=1, keepdims=True), 1e-12) * unit[owner]).sum(1)
    filled = np.zeros(len(prompts), np.int64)
    for row in np.flatnonzero(cosine < rewording_cosine).tolist():
        p = owner[row]
        if filled[p] < per_prompt:
            out[p, filled[p]], has[p, filled[p]] = swapped[row], True
            filled[p] += 1
    return out, has


class _BlockStack:
    """Equal-shaped arrays appended into preallocated blocks, stacked once at the end.

    Why not a list of small arrays: thousands of long-lived 100 KB clips interleaved with
    the decoder's multi-MB temporaries fragment glibc's heap, and a 10,000-clip shard then
    took over 20 GB instead of 1 GB (measured). Blocks keep the kept data in few large chunks."""

    def __init__(self, block: int = 256):
        self.block, self.blocks, self.n = block, [], 0

    def append(self, x: np.ndarray) -> None:
        if self.n % self.block == 0:
            self.blocks.append(np.empty((self.block, *x.shape), x.dtype))
        self.blocks[-1][self.n % self.block] = x
        self.n += 1

    def to_array(self) -> np.ndarray:
        out = np.concatenate(self.blocks)[: self.n] if self.blocks else np.empty((0,))
        self.blocks = []
        return out


def _resize_uint8(frames: np.ndarray, size: int) -> np.ndarray:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def from_shard(shard: Shard, *, text_encoder: str, num_frames: int = 8, image_size: int = 64,
               generators: list[str] | None = None, limit: int | None = None, skip_bad: bool = False,
               word_swaps: int = 0, on_progress: Callable[[str, int, int | None], None] | None = None) -> TrainingSet:
    """Decode the shard's videos and pair them with their (deduplicated) prompts (and up to
    ``word_swaps`` word-swap negatives per prompt)."""
    progress = on_progress or (lambda stage, advance, total: None)
    bad = BadRecords(skip_bad=skip_bad)
    table = read_prompts_table(shard.prompts_path, dedup=False, bad=bad)
    uuid_to_pid = dict(zip(table.column("uuid").to_pylist(), table.column("prompt_id").to_pylist(), strict=True))
    firsts = table.filter(table.column("first_occurrence"))
    if limit is not None:
        firsts = firsts.slice(0, limit)
    pid_index = {pid: i for i, pid in enumerate(firsts.column("prompt_id").to_pylist())}
    prompts = firsts.column("prompt").to_pylist()

    def decode(item):
        ref, data = item
        try:
            return ref, _resize_uint8(sample_frames(data, num_frames, name=str(ref)), image_size), None
        except VideoDecodeError as exc:
            return ref, None, exc

    wanted = ((ref, data) for ref, data in shard.video_payloads(bad, generators)
              if uuid_to_pid.get(ref.uuid) in pid_index)
    clips, owners = _BlockStack(), []
    progress("decoding videos", 0, None)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        # Executor.map submits its whole input at once: feed it bounded chunks, never the archive
        while chunk := list(itertools.islice(wanted, 256)):
            for ref, clip, error in pool.map(decode, chunk):
                if error is not None:
                    bad.add(ref.container, f"member {ref.member}", "undecodable_video", error.reason)
                    continue
                clips.append(clip)
                owners.append(pid_index[uuid_to_pid[ref.uuid]])
                progress("decoding videos", 1, None)
    if not clips.n:
        raise V2PError(f"{shard.prompts_path}: no decodable videos paired with prompts; training needs videos")
    text = create_encoder(text_encoder)
    progress("embedding prompts", 0, len(prompts))
    vectors = text.encode_text(prompts, on_progress=lambda n: progress("embedding prompts", n, None))
    reversed_vectors, has_reversal = embed_reversals(prompts, text.encode_text, vectors.shape[1])
    data = TrainingSet(clips.to_array(), np.asarray(owners, np.int64), prompts, vectors,
                       str(shard.prompts_path), "tiny-cnn", reversed_vectors, has_reversal)
    return _with_word_swaps(data, text.encode_text, word_swaps, progress)


def _with_word_swaps(data: TrainingSet, encode: Callable[..., np.ndarray], per_prompt: int,
                     progress: Callable[[str, int, int | None], None]) -> TrainingSet:
    """``data`` with up to ``per_prompt`` embedded word swaps per prompt (unchanged at 0)."""
    if per_prompt > 0:
        progress("embedding word swaps", 0, None)

        def encode_counted(texts: list[str]) -> np.ndarray:
            return encode(texts, on_progress=lambda n: progress("embedding word swaps", n, None))

        data.swap_vectors, data.has_swap = embed_word_swaps(data.prompts, data.text_vectors, encode_counted, per_prompt)
    return data


def from_index(index_dir: str | Path, *, text_encoder: str, word_swaps: int = 0,
               on_progress: Callable[[str, int, int | None], None] | None = None) -> TrainingSet:
    """Use the per-frame vectors an index cached (``v2p index build --videos``) as training inputs.

    Any video encoder's frame vectors will do (CLIP, v2p-sight, another tower): the trained head
    names that encoder as its frozen frame backbone and calls it again at query time."""
    index = IndexDir.open(index_dir)
    if not index.has_videos:
        raise V2PError(f"{index_dir}: built without --videos; there are no cached frame vectors to train on")
    prompts = index.prompts_table.column("prompt").to_pylist()
    rows = index.videos_table.column("prompt_row").to_numpy()
    text = create_encoder(text_encoder)
    vectors = text.encode_text(prompts)
    reversed_vectors, has_reversal = embed_reversals(prompts, text.encode_text, vectors.shape[1])
    data = TrainingSet(np.asarray(index.video_frames, dtype=np.float16), rows.astype(np.int64), prompts, vectors,
                       str(index_dir), index.encoder_spec, reversed_vectors, has_reversal)
    return _with_word_swaps(data, text.encode_text, word_swaps, on_progress or (lambda stage, advance, total: None))
