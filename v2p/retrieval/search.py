"""Query an index with clips or text: encode once per batch, search, merge paths by prompt.

Two paths find candidates for a clip:

* **text**: the pooled clip vector against the prompt vectors (cross-modal);
* **video**: the pooled clip vector against the bank's own video vectors (same-modal), each
  hit standing for the prompt that made that video (a prompt keeps its best video).

A prompt found both ways is one candidate with both scores. Cross-modal and same-modal
cosines live on different scales (CLIP: ~0.3 vs ~0.8), so each path's scores are
standardised over that query's candidate pool (z-scores, "distribution-based score
fusion") and summed with weights.

A path that did not return a prompt is handled by what its silence means:

* the prompt has videos in the bank, but none came back: the path's lowest returned score
  is an upper bound on what it would have given, so it gets that;
* the prompt has no video in the bank at all (VidProM's 1.67M prompts with only some
  archives downloaded): the video path knows nothing about it. Its unknown video score is
  imputed from the text path (the prompt's text z-score stands in for it), so a text-only
  prompt competes on its text evidence instead of being ranked below every prompt with a
  mediocre video.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa

from v2p._threads import available_cpus
from v2p.data.frames import sample_frames
from v2p.data.motion import CameraMotion, camera_agreement
from v2p.embed.factory import create_encoder
from v2p.errors import VideoDecodeError
from v2p.index import faiss_ops
from v2p.index.store import IndexDir

VIDEO_HITS_PER_RESULT = 4  # videos searched per requested result (several videos share a prompt)
CANDIDATE_POOL = 50  # candidates gathered per path before merging
QUERY_CHUNK = 32  # clips decoded and encoded together by query_videos (bounds memory per call)


@dataclass(frozen=True)
class FusionWeights:
    """How much each path counts in the merged ranking (after per-path standardisation).

    Defaults tuned on a validation shard (the demo's: seed 2024, t2vz queries against an ms
    bank), never on the test shard: the same-modal video path is the stronger signal
    (v2p-tiny, R@5: video alone 0.926, text alone 0.652, equal weights 0.893, text 0.1 0.937);
    a small text weight still breaks ties and covers prompts with no video in the bank.
    """

    text: float = 0.1
    video: float = 1.0
    camera: float = 0.5  # per unit of camera agreement (+1 / -1) when the encoder reads motion


FEATURES = ("text", "video", "camera")


def fused_score(features: dict, weights: FusionWeights) -> float:
    """The merged score: each path's feature times its weight (a missing feature counts 0)."""
    return sum(getattr(weights, k) * (features.get(k) or 0.0) for k in FEATURES)


def standardise(scores: dict[int, float]) -> tuple[dict[int, float], float]:
    """z-scores of one path's candidate scores, and the z-score of its lowest (the fill value)."""
    if not scores:
        return {}, 0.0
    values = np.fromiter(scores.values(), dtype=np.float64)
    mean, std = values.mean(), values.std() + 1e-6
    return {k: (v - mean) / std for k, v in scores.items()}, (values.min() - mean) / std


@dataclass
class Candidate:
    rank: int
    score: float
    prompt: str
    uuid: str
    prompt_id: str
    source: str  # "text", "video" or "text+video"
    text_score: float | None = None
    video_score: float | None = None
    matched_video: str | None = None  # "<generator>-<uuid>" of the closest bank video, if any
    terms: dict | None = None  # per-term scores when reranked
    features: dict | None = None  # ranking features: text z, video z, camera agreement (None: not used)
    index_row: int = field(default=-1, repr=False)  # row in the prompt index (internal)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("index_row")
        for key in ("terms", "features"):
            if d[key] is None:
                d.pop(key)
        return d


@dataclass
class QueryResult:
    query: str
    candidates: list[Candidate] = field(default_factory=list)
    error: str | None = None
    spliced: str | None = None  # a prompt composed from the candidates' phrases (--splice)
    camera: CameraMotion | None = None  # the camera motion read from the clip's pixels, if the encoder reads it
    score_kind: str = "cosine"  # what candidate scores are: "cosine" (one path) or "fused z" (z-scores summed)

    def as_dict(self) -> dict:
        d = {"query": self.query, "score_kind": self.score_kind, "candidates": [c.as_dict() for c in self.candidates]}
        if self.spliced is not None:
            d["spliced"] = self.spliced
        if self.camera is not None:
            d["camera"] = self.camera.as_dict()
        if self.error is not None:
            d["error"] = self.error
        return d

    @property
    def best_prompt(self) -> str | None:
        """The answer a user would take: the spliced prompt if any, else the top candidate."""
        return self.spliced or (self.candidates[0].prompt if self.candidates else None)


@dataclass
class ClipSearch:
    """What one batch of clips produced: per-frame vectors, pooled query vectors, camera
    readings (None when the encoder reads none) and ranked candidates per clip."""

    frames: np.ndarray
    vectors: np.ndarray
    cameras: list[CameraMotion] | None
    candidates: list[list[Candidate]]
    score_kind: str = "cosine"

    def fill(self, results: list[QueryResult], ok: list[int]) -> None:
        """Put each searched clip's answer into its result (``ok[n]`` = the result of clip n)."""
        for n, i in enumerate(ok):
            results[i].candidates = self.candidates[n]
            results[i].camera = self.cameras[n] if self.cameras is not None else None
            results[i].score_kind = self.score_kind


class VideoAnswerer(Protocol):
    """Anything that answers clips: a :class:`Retriever`, or a reranker built on one."""

    def query_videos(self, sources: Sequence[str | os.PathLike | bytes], *, top: int = 5) -> list[QueryResult]:
        ...


def _label(source: str | os.PathLike | bytes, i: int) -> str:
    return f"<bytes {i}>" if isinstance(source, bytes) else str(source)


class Retriever:
    """An opened index plus the encoder it was built with (refusing any other)."""

    def __init__(self, index: str | Path | IndexDir, *, encoder: str | None = None, device: str | None = None,
                 weights: FusionWeights = FusionWeights()):
        self.index = index if isinstance(index, IndexDir) else IndexDir.open(index)
        self.encoder = create_encoder(self.index.check_encoder(encoder), device)
        self.index.check_fingerprint(self.encoder.fingerprint)
        self.weights = weights

    # -- decoding --------------------------------------------------------------------------
    def load_clips(self, sources: Sequence[str | os.PathLike | bytes], num_frames: int | None = None,
                   offset: int = 0) -> list[np.ndarray | VideoDecodeError]:
        """Frames per source (decoded in threads), or the decode error for that source."""
        n = num_frames or self._frames_per_video()
        short_side = self.encoder.frame_short_side

        def one(item):
            i, src = item
            try:
                return sample_frames(src, n, name=_label(src, i), short_side=short_side)
            except VideoDecodeError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=min(4, available_cpus())) as pool:
            return list(pool.map(one, enumerate(sources, start=offset)))

    def _frames_per_video(self) -> int:
        if self.index.has_videos:
            return int(self.index.manifest["videos"]["frames_per_video"])
        return self.encoder.num_frames

    # -- queries ---------------------------------------------------------------------------
    def decode_queries(self, sources: Sequence[str | os.PathLike | bytes], offset: int = 0
                       ) -> tuple[list[QueryResult], list[int], list[np.ndarray]]:
        """One empty result per source (errors filled in), the indices that decoded, and their clips.
        ``offset`` numbers unnamed byte sources when a caller passes a slice of a longer list."""
        clips = self.load_clips(sources, offset=offset)
        results = [QueryResult(_label(s, offset + i)) for i, s in enumerate(sources)]
        ok = []
        for i, c in enumerate(clips):
            if isinstance(c, VideoDecodeError):
                results[i].error = str(c)
            else:
                ok.append(i)
        return results, ok, [clips[i] for i in ok]

    def query_videos(self, sources: Sequence[str | os.PathLike | bytes], *, top: int = 5,
                     pooling: str | None = None) -> list[QueryResult]:
        """One result per source, in order; undecodable sources get ``error`` and no candidates.

        Sources are decoded and encoded :data:`QUERY_CHUNK` at a time: memory stays flat however
        many clips one call passes."""
        results: list[QueryResult] = []
        for part, ok, clips in self.decoded_chunks(sources):
            if ok:
                self.search_clips(clips, top=top, pooling=pooling).fill(part, ok)
            results += part
        return results

    def decoded_chunks(self, sources: Sequence[str | os.PathLike | bytes]
                       ) -> Iterator[tuple[list[QueryResult], list[int], list[np.ndarray]]]:
        """:meth:`decode_queries` over :data:`QUERY_CHUNK` sources at a time: every caller that
        answers clips (plain queries, the reranker) holds one chunk of frames, never all."""
        for start in range(0, len(sources), QUERY_CHUNK):
            yield self.decode_queries(sources[start:start + QUERY_CHUNK], offset=start)

    def search_clips(self, clips: Sequence[np.ndarray], *, top: int = 5, pool_size: int = CANDIDATE_POOL,
                     pooling: str | None = None) -> ClipSearch:
        """Encode decoded clips once and search both paths: the one query flow that plain
        queries and the reranker share."""
        pooling = self.encoder.check_pooling(pooling)
        frames = self.encoder.encode_frames(clips)
        vectors = self.encoder.pool(frames, pooling)
        same_space = (self.index.has_videos and pooling == self.index.manifest["videos"].get("pooling", pooling))
        cameras = self.encoder.camera(frames)
        candidates = self.search(vectors, top=top, use_videos=same_space, pool_size=pool_size,
                                 video_vectors=self.encoder.video_keys(frames) if same_space else None,
                                 cameras=cameras)
        return ClipSearch(frames, vectors, cameras, candidates, "fused z" if same_space else "cosine")

    def prompt_vectors(self, rows: Sequence[int], prompts: Sequence[str]) -> np.ndarray:
        """Text vectors [n, dim] of the bank prompts at ``rows`` (whose texts are ``prompts``):
        read back from the prompt index when it stores them exactly, else encoded again."""
        index = self.index.prompts_index
        if self.index.manifest["prompts"]["factory"] in ("Flat", "SQfp16"):
            try:
                return index.reconstruct_batch(np.asarray(rows, np.int64))
            except RuntimeError:
                pass
        return self.encoder.encode_text(list(prompts))

    def query_texts(self, texts: Sequence[str], *, top: int = 5) -> list[QueryResult]:
        vectors = self.encoder.encode_text(list(texts))
        merged = self.search(vectors, top=top, use_videos=False)
        return [QueryResult(t, cands) for t, cands in zip(texts, merged, strict=True)]

    def search(self, vectors: np.ndarray, *, top: int = 5, use_videos: bool = True,
               pool_size: int = CANDIDATE_POOL, video_vectors: np.ndarray | None = None,
               cameras: Sequence[CameraMotion] | None = None,
               exclude_videos: Sequence[int] | None = None) -> list[list[Candidate]]:
        """Merged, ranked candidates for each query vector (already in the index's space).

        ``video_vectors`` are the queries for the video path when the encoder has its own
        same-modal keys (default: ``vectors``); ``cameras`` the motion read from each clip,
        which moves prompts that ask for that camera motion up and those asking another down.
        ``exclude_videos[q]`` is a bank video row the video path must not return for query q:
        a bank video used as a query (reranker training) must not find itself."""
        k = max(top, pool_size)
        t_scores, t_ids = faiss_ops.search(self.index.prompts_index, vectors, k, **self.index.search_kwargs("prompts"))
        v_hits = None
        if use_videos and self.index.has_videos:
            keys = vectors if video_vectors is None else video_vectors
            extra = 1 if exclude_videos is not None else 0
            v_hits = faiss_ops.search(self.index.videos_index, keys, k * VIDEO_HITS_PER_RESULT + extra,
                                      **self.index.search_kwargs("videos"))
        out = []
        for q in range(len(vectors)):
            text = {int(i): float(s) for s, i in zip(t_scores[q], t_ids[q], strict=True) if i >= 0}
            video: dict[int, tuple[float, int]] = {}
            if v_hits is not None:
                skip = int(exclude_videos[q]) if exclude_videos is not None else -1
                for s, vi in zip(v_hits[0][q], v_hits[1][q], strict=True):
                    if vi < 0 or vi == skip:
                        continue
                    row = int(self._video_prompt_rows[vi])
                    if row not in video or s > video[row][0]:
                        video[row] = (float(s), int(vi))
            out.append(self._merge(text, video, top, cameras[q] if cameras is not None else None))
        return out

    def _merge(self, text: dict[int, float], video: dict[int, tuple[float, int]], top: int,
               camera: CameraMotion | None = None) -> list[Candidate]:
        """Rank the pool. Every candidate keeps its ranking features (text z, video z, camera
        agreement): what the score was made of, and what ratings are fitted to."""
        zt, t_fill = standardise(text)
        zv, v_fill = standardise({row: s for row, (s, _) in video.items()})
        w = self.weights
        has_video = self._prompt_has_video if video else None
        rows = sorted(set(text) | set(video))
        agree = self._camera_agreements(rows, camera) if camera is not None else {}
        scored = []
        for row in rows:
            ts = text.get(row)
            vs = video[row][0] if row in video else None
            z_text = zt.get(row, t_fill)
            z_video = None
            if video:
                if row in zv:
                    z_video = zv[row]
                elif has_video[row]:
                    z_video = v_fill  # it has videos and none came back: at most the lowest returned
                else:
                    z_video = z_text  # no video in the bank: unknown, imputed from the text evidence
            features = {"text": z_text, "video": z_video, "camera": agree.get(row)}
            scored.append((fused_score(features, w), row, ts, vs, features))
        if not video:  # text path alone: show the cosine itself (it means more to a reader than a z-score),
            spread = float(np.std([x[2] for x in scored]) + 1e-6)  # the camera bonus in its units
            scored = [(ts + w.camera * spread * (f["camera"] or 0.0), row, ts, vs, f)
                      for _, row, ts, vs, f in scored]
        scored.sort(key=lambda x: (-x[0], x[1]))
        scored = scored[:top]
        # only the shown rows are read from the tables (Arrow take), never whole columns as lists
        prompts = self.index.prompts_table.take(pa.array([x[1] for x in scored], pa.int64()))
        prompts = prompts.select(["prompt", "uuid", "prompt_id"]).to_pylist()
        matched = {}
        shown_videos = [video[row][1] for _, row, _, vs, _ in scored if vs is not None]
        if shown_videos:
            vt = self.index.videos_table.take(pa.array(shown_videos, pa.int64())).select(["generator", "uuid"])
            matched = {vi: f"{r['generator']}-{r['uuid']}" for vi, r in zip(shown_videos, vt.to_pylist(), strict=True)}
        cands = []
        for rank, ((score, row, ts, vs, feats), p) in enumerate(zip(scored, prompts, strict=True), start=1):
            source = "text+video" if ts is not None and vs is not None else ("text" if ts is not None else "video")
            cands.append(Candidate(rank, float(score), p["prompt"], p["uuid"], p["prompt_id"], source, ts, vs,
                                   matched.get(video[row][1]) if vs is not None else None, features=feats,
                                   index_row=row))
        return cands

    def _camera_agreements(self, rows: list[int], camera: CameraMotion) -> dict[int, float]:
        """Per pool row: +1 / -1 / 0 as its prompt asks for the camera motion seen, another, or none."""
        prompts = self.index.prompts_table.take(pa.array(rows, pa.int64())).column("prompt").to_pylist()
        return {row: camera_agreement(prompt, camera) for row, prompt in zip(rows, prompts, strict=True)}

    # -- columns of the video table, read once ---------------------------------------------
    @functools.cached_property
    def _video_prompt_rows(self) -> np.ndarray:
        return self.index.videos_table.column("prompt_row").to_numpy()

    @functools.cached_property
    def _prompt_has_video(self) -> np.ndarray:
        """Per prompt row: does the bank hold at least one video of it?"""
        mask = np.zeros(self.index.prompts_table.num_rows, dtype=bool)
        mask[self._video_prompt_rows] = True
        return mask
