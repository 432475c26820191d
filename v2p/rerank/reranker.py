"""Rerank the top K retrieved prompts (``--rerank``) and optionally splice a new one (``--splice``).

For each clip, the K candidates of plain retrieval are rescored by a weighted sum of
standardised terms (see :mod:`v2p.rerank.terms`): the retrieval score, the fine-grained
frame-vs-prompt match (mean and max over frames), consensus with the other candidates, a
language model's fluency prior, and, when the index has them (``v2p rerank train``), the
learned cross-encoder that reads the clip's frames and each prompt's words together
(:mod:`v2p.rerank.cross`; it takes the retrieval features in itself, so with it the
defaults rank by it instead of the index term) and the image term, a map from the frames'
picture embedding to the prompt space (:mod:`v2p.rerank.image_map`), added at the weight
its training chose when it earned its place. The clip is decoded and encoded once; the candidates' text
vectors are read back from the prompt index when it stores them exactly.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from v2p.embed.factory import create_encoder
from v2p.errors import V2PError
from v2p.rerank import terms as T
from v2p.rerank.cross import CROSS_DIR, CrossReranker
from v2p.rerank.image_map import ImageMap, clip_pictures
from v2p.rerank.lm import FluencyModel
from v2p.retrieval.search import Candidate, QueryResult, Retriever

DEFAULT_K = 50
METRIC_SPACE = "minilm"


@dataclass(frozen=True)
class RerankWeights:
    """Weights of the standardised terms (0 turns a term off; tuned defaults in ``TUNED``)."""

    index: float = 1.0
    frame_mean: float = 0.0
    frame_max: float = 0.0
    consensus: float = 0.0
    fluency: float = 0.0
    cross: float = 0.0  # the learned cross-encoder (v2p rerank train), when the index has one
    image: float = 0.0  # the learned image map (v2p rerank train), when the index's frames carry pictures


class Reranker:
    def __init__(self, retriever: Retriever, weights: RerankWeights, *, fluency: FluencyModel | None = None,
                 cross: CrossReranker | None = None, image_map: ImageMap | None = None, k: int = DEFAULT_K):
        self.retriever, self.weights, self.fluency, self.cross, self.k = retriever, weights, fluency, cross, k
        self.image_map = image_map
        self.encoder = retriever.encoder
        if weights.image and image_map is None:
            raise ValueError("an image weight needs a trained image map (v2p rerank train INDEX_DIR)")
        if weights.fluency and fluency is None:
            raise ValueError("a fluency weight needs a language model (v2p lm train INDEX_DIR)")
        if weights.cross and cross is None:
            raise ValueError("a cross weight needs a trained reranker (v2p rerank train INDEX_DIR)")

    @functools.cached_property
    def metric_encoder(self):
        """MiniLM, for consensus; reused when the index's own text space is MiniLM's."""
        text_spec = getattr(getattr(self.encoder, "cfg", None), "text_encoder", None) or self.encoder.spec
        return self.encoder if text_spec == METRIC_SPACE else create_encoder(METRIC_SPACE)

    def _text_vectors(self, cands: list[Candidate]) -> np.ndarray:
        return self.retriever.prompt_vectors([c.index_row for c in cands], [c.prompt for c in cands])

    def term_values(self, cands: list[Candidate], frame_text: np.ndarray, names: Sequence[str] | None = None,
                    frames: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Raw values of the terms with a non-zero weight (or of ``names``), one per candidate;
        ``frames`` are the clip's per-frame vectors as the encoder made them (the cross term's input)."""
        w = self.weights
        names = set(names) if names is not None else {n for n in RerankWeights.__dataclass_fields__ if getattr(w, n)}
        retrieval = np.array([c.score for c in cands])
        parts = {"index": retrieval}
        if names & {"frame_mean", "frame_max", "consensus", "image"}:
            text_vecs = self._text_vectors(cands)
            if "image" in names and self.image_map is not None and frames is not None:
                pictures = clip_pictures(self.encoder, np.asarray(frames, np.float32)[None])
                parts["image"] = text_vecs @ self.image_map.project(pictures)[0]
            if names & {"frame_mean", "frame_max"}:
                parts["frame_mean"], parts["frame_max"] = T.frame_scores(frame_text, text_vecs)
            if "consensus" in names:
                metric_vecs = text_vecs if self.metric_encoder is self.encoder else \
                    self.metric_encoder.encode_text([c.prompt for c in cands])
                parts["consensus"] = T.consensus(metric_vecs, retrieval)
        if "fluency" in names and self.fluency is not None:
            parts["fluency"] = self.fluency.score([c.prompt for c in cands])
        if "cross" in names and self.cross is not None and frames is not None:
            parts["cross"] = self.cross.score(frames, cands)
        return parts

    @staticmethod
    def combine(parts: dict[str, np.ndarray], weights: RerankWeights) -> np.ndarray:
        """The reranking score: weighted sum of each term standardised over the candidates."""
        return sum(getattr(weights, name) * T.zscore(values) for name, values in parts.items())

    def rerank(self, cands: list[Candidate], frame_text: np.ndarray, top: int,
               frames: np.ndarray | None = None) -> list[Candidate]:
        """Rescore one clip's candidates; ``frame_text`` is its per-frame vectors in the text space,
        ``frames`` the same vectors as the encoder made them."""
        if len(cands) < 2:
            return cands[:top]
        parts = self.term_values(cands, frame_text, frames=frames)
        total = self.combine(parts, self.weights)
        order = np.argsort(-total, kind="stable")[:top]
        return [replace(cands[i], rank=r, score=float(total[i]),
                        terms={name: float(values[i]) for name, values in parts.items()})
                for r, i in enumerate(order, start=1)]

    def query_videos(self, sources: Sequence[str | os.PathLike | bytes], *, top: int = 5,
                     splice: bool = False) -> list[QueryResult]:
        """Like :meth:`Retriever.query_videos`, reranked; with ``splice`` each result also gets ``spliced``."""
        answers: list[QueryResult] = []
        for part, ok, clips in self.retriever.decoded_chunks(sources):
            self.answer_decoded(part, ok, clips, top=top, splice=splice)
            answers += part
        return answers

    def answer_decoded(self, results: list[QueryResult], ok: list[int], clips: Sequence[np.ndarray], *,
                       top: int = 5, splice: bool = False) -> None:
        """Fill ``results[ok[n]]`` with the reranked answer to decoded clip n (the web service
        decodes once, for the answer and the frame strip, and calls this)."""
        if not ok:
            return
        from v2p.rerank.splice import splice_prompt

        found = self.retriever.search_clips(clips, top=self.k, pool_size=self.k)
        found.fill(results, ok)
        frame_text = self.encoder.frames_in_text_space(found.frames)
        for j, i in enumerate(ok):
            ranked = self.rerank(found.candidates[j], frame_text[j], max(top, self.k if splice else top),
                                 frames=found.frames[j])
            results[i].candidates = ranked[:top]
            results[i].score_kind = "rerank"  # weighted sum of standardised terms
            if splice:
                results[i].spliced = splice_prompt(found.vectors[j], ranked, self.encoder, fluency=self.fluency)


def parse_weights(text: str | None, base: RerankWeights) -> RerankWeights:
    """'frame_max=0.5,consensus=1' -> base with those weights replaced; unknown names are an error."""
    if not text:
        return base
    changes = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in RerankWeights.__dataclass_fields__:
            raise V2PError(f"unknown rerank weight {name!r}; known: {', '.join(RerankWeights.__dataclass_fields__)}")
        try:
            changes[name] = float(value)
        except ValueError:
            raise V2PError(f"rerank weight {name} needs a number, got {value!r}") from None
    return replace(base, **changes)


def make_reranker(retriever: Retriever, *, weights: RerankWeights | str | None = None, lm: str = "auto",
                  k: int = DEFAULT_K, splice: bool = False, cross: str = "auto") -> tuple[Reranker, list[str]]:
    """A reranker with the index's language model and cross-encoder when it has them. Returns it
    with notes for the user.

    ``weights``: None for the defaults (:data:`CROSS_TUNED` when the index has a trained
    cross-encoder, else :data:`TUNED`), a ``--weights`` text applied on top of those, or a
    :class:`RerankWeights` as it is. ``lm``: "auto" (the index's own LM if trained, else none),
    "bank" (the index's, required), "none", or the name/path of a Hugging Face causal LM present
    on this machine. With ``splice`` the LM is loaded even at fluency weight 0: splice orders its
    phrases with it. ``cross``: "auto" (the index's cross-encoder and image term if trained) or "none"."""
    from v2p.rerank.cross import load_cross_reranker
    from v2p.rerank.lm import LM_DIR, load_fluency_model

    if cross not in ("auto", "none"):
        raise V2PError(f"cross must be auto or none, not {cross!r}")
    cross_model = (load_cross_reranker(retriever.index.path, retriever.index.encoder_spec, retriever.encoder.fingerprint)
                   if cross == "auto" else None)
    image_map = ImageMap.load(retriever.index.path / CROSS_DIR) if cross == "auto" else None
    base = CROSS_TUNED if cross_model is not None else TUNED
    if image_map is not None and image_map.term_weight:
        base = replace(base, image=image_map.term_weight)  # chosen and checked by v2p rerank train
    if not isinstance(weights, RerankWeights):
        weights = parse_weights(weights, base)
    notes: list[str] = []
    if weights.cross and cross_model is None:
        raise V2PError(f"no trained reranker in {retriever.index.path} (a cross weight needs one): "
                       f"train it with 'v2p rerank train {retriever.index.path}'")
    if weights.image and image_map is None:
        raise V2PError(f"no image map in {retriever.index.path} (an image weight needs one): train it with "
                       f"'v2p rerank train {retriever.index.path}' on an index whose frames carry pictures "
                       "(an encoder spec ending in +image, v2p-sight or CLIP, built with --videos)")
    if not weights.cross:
        cross_model = None
    fluency = None
    has_bank_lm = (retriever.index.path / LM_DIR / "config.json").is_file()
    if (weights.fluency or splice) and lm != "none":
        if lm == "auto" and not has_bank_lm:
            notes.append(f"no language model in {retriever.index.path}: the fluency prior is off "
                         f"(add it with 'v2p lm train {retriever.index.path}')")
        else:
            fluency = load_fluency_model(None if lm in ("auto", "bank") else lm, retriever.index.path)
    if fluency is None:
        weights = replace(weights, fluency=0.0)
    if not splice and not any(getattr(weights, name) for name in RerankWeights.__dataclass_fields__ if name != "index"):
        notes.append("these rerank weights keep the retrieval order (without a trained reranker the defaults do: "
                     "no hand-made term raised v2p-tiny's accuracy, see the README); train one with "
                     f"'v2p rerank train {retriever.index.path}', or turn terms on with --weights, "
                     "e.g. --weights frame_max=0.25,consensus=0.25")
    return Reranker(retriever, weights, fluency=fluency, cross=cross_model, image_map=image_map, k=k), notes


# Defaults chosen on the validation world by benchmarks/rerank_tune.py (seed 2024, 1,000 queries,
# never the test shard), for v2p-tiny: among the 108 weight sets whose exact top-1 is no lower
# than plain retrieval's, the highest lower bound of the paired top-1 MiniLM-cosine gain. Since
# v2p-tiny learnt motion direction, no set qualifies but plain order (the best others: cosine
# +0.001 at exact top-1 -0.002), so the defaults keep the retrieval order. (For the earlier,
# direction-blind v2p-tiny the same search picked frame_max=0.25, consensus=0.25, fluency=0.25.)
TUNED = RerankWeights(index=1.0, frame_mean=0.0, frame_max=0.0, consensus=0.0, fluency=0.0)
# With a trained cross-encoder: its score alone. It reads the retrieval features itself, so adding
# the index term again would count them twice.
CROSS_TUNED = RerankWeights(index=0.0, cross=1.0)
