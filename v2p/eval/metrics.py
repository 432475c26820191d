"""Evaluation metrics as small functions of plain data (each tested on hand-made cases).

Text metrics use maintained libraries: sacrebleu (sentence BLEU) and rouge-score (ROUGE-L
F-measure). MiniLM cosine is the "Stable Diffusion - Image to Prompts" competition's metric.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from v2p.data.normalize import strip_generator_flags
from v2p.data.synth.grammar import ACTIONS, CAMERAS, COLOURS, COUNTS, SCENES, SHAPES, STYLES


def recall_at_k(ranks: Sequence[int | None], k: int) -> np.ndarray:
    """Per query: 1.0 when the true item is at rank <= k (ranks are 1-based, None = not found)."""
    return np.array([1.0 if r is not None and r <= k else 0.0 for r in ranks])


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Sentence BLEU (0..100) per pair, sacrebleu's default smoothing."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(effective_order=True)
    return np.array([metric.sentence_score(h, [r]).score for h, r in zip(hypotheses, references, strict=True)])


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """ROUGE-L F-measure (0..1) per pair."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return np.array([scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hypotheses, references, strict=True)])


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two [n, d] arrays."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=1)


def minilm_cosine(hypotheses: Sequence[str], references: Sequence[str], encode: Callable) -> np.ndarray:
    """Cosine of MiniLM embeddings per pair; ``encode`` maps texts to vectors (a MiniLM encoder)."""
    return cosine_rows(encode(list(hypotheses)), encode(list(references)))


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded, so reports reproduce)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    lo, hi = np.percentile(means, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def paired_bootstrap_ci(before: np.ndarray, after: np.ndarray, *, n_boot: int = 2000, level: float = 0.95,
                        seed: int = 0) -> tuple[float, float, float]:
    """(mean gain, low, high) of ``after - before`` over the same queries, resampling queries
    together: the right interval for "did the change help", narrower than comparing two
    independent intervals because each query's difficulty cancels out."""
    diff = np.asarray(after, np.float64) - np.asarray(before, np.float64)
    if len(diff) == 0:
        return (float("nan"), float("nan"), float("nan"))
    lo, hi = bootstrap_ci(diff, n_boot=n_boot, level=level, seed=seed)
    return float(diff.mean()), lo, hi


# -- attributes of synthetic prompts, read back from text ----------------------------------
def _phrase_table() -> dict[str, list[tuple[str, object]]]:
    table: dict[str, list[tuple[str, object]]] = {}
    table["shape"] = [(form, value) for value, forms in SHAPES.items() for pair in forms for form in pair]
    table["colour"] = [(form, value) for value, forms in COLOURS.items() for form in forms]
    table["count"] = [(form, value) for value, forms in COUNTS.items() for form in forms if form not in ("a",)]
    table["action"] = [(form, value) for value, forms in ACTIONS.items() for form in forms]
    table["scene"] = [(form, value) for value, forms in SCENES.items() for form in forms]
    table["camera"] = [(form, value) for value, forms in CAMERAS.items() for form in forms if form]
    table["style"] = [(form, value) for value, forms in STYLES.items() for form in forms if form]
    for key in table:  # longest phrase first, so "bright red" wins over "red"
        table[key].sort(key=lambda fv: -len(fv[0]))
    return table


_PHRASES = _phrase_table()


def parse_attributes(prompt: str) -> dict:
    """Attributes of a synthetic-world prompt read from its words (for prompts with no attributes
    column, e.g. spliced ones). Unmentioned camera/style read as 'static'/'none'; count
    defaults to 1 (the singular forms 'a'/'an')."""
    text = " " + re.sub(r"\s+", " ", prompt.lower()) + " "
    camera_text = text
    text = " " + strip_generator_flags(text) + " "
    out: dict = {}
    for key, phrases in _PHRASES.items():
        source = camera_text if key == "camera" else text
        for phrase, value in phrases:
            if re.search(r"(?<![\w-])" + re.escape(phrase.lower()) + r"(?![\w-])", source):
                out[key] = value
                break
    out.setdefault("camera", "static")
    out.setdefault("style", "none")
    out.setdefault("count", 1)
    return out


OPPOSITE_ACTION = {"moving left": "moving right", "moving right": "moving left", "moving up": "moving down",
                   "moving down": "moving up", "growing": "shrinking", "shrinking": "growing"}


def swap_direction(prompt: str, action: str) -> str | None:
    """The prompt with its motion reversed ("sliding to the left" -> "sliding to the right"), or None
    when the action is not directed or its phrase is not found. Synonym lists of opposite actions
    are aligned, so the i-th form maps to the opposite's i-th form.

    Not ``v2p.data.reverse_motion`` (training's hard negatives, every motion word of free text):
    the probe reverses only the subject's action, by the grammar, so it measures exactly that
    and not the lexicon the model was trained with."""
    opposite = OPPOSITE_ACTION.get(action)
    if opposite is None:
        return None
    forms = sorted(enumerate(ACTIONS[action]), key=lambda f: -len(f[1]))
    for i, form in forms:
        m = re.search(r"(?<![\w-])" + re.escape(form) + r"(?![\w-])", prompt, flags=re.IGNORECASE)
        if m:
            return prompt[:m.start()] + ACTIONS[opposite][i] + prompt[m.end():]
    return None


def attribute_matches(predicted: Sequence[dict | None], truth: Sequence[dict]) -> dict[str, np.ndarray]:
    """Per attribute, per query: 1.0 when the predicted value equals the true one."""
    keys = sorted({k for t in truth for k in t})
    return {k: np.array([1.0 if p is not None and p.get(k) == t.get(k) else 0.0
                         for p, t in zip(predicted, truth, strict=True)]) for k in keys}
