"""Which attributes a video encoder reads: a counterfactual test on the held-out world.

For each pika query clip of the held-out world (benchmarks/_common.heldout_world; no encoder
trains on it) and each attribute whose words its prompt contains, the prompt is rewritten
with that attribute's words swapped for another value's ("a red *cube*" -> "a red *ball*",
every other word kept), and the test asks whether the clip's vector is nearer the true prompt
than the rewritten one (MiniLM text space, as retrieval's text path compares). Chance is 0.5;
an attribute at chance is one the encoder cannot see, whatever its recall says. The synthetic
world's labels and vocabulary are used here only to measure.

Usage: python benchmarks/attribute_swaps.py [--encoders v2p-tiny,v2p:models/mine] [--limit 500] [--out bench-out]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import heldout_world, print_table, write_json  # noqa: E402

from v2p.data.frames import sample_frames  # noqa: E402
from v2p.data.shard import open_shard  # noqa: E402
from v2p.data.synth.grammar import ACTIONS, COLOURS, SCENES, SHAPES  # noqa: E402
from v2p.embed.factory import create_encoder  # noqa: E402
from v2p.eval import metrics  # noqa: E402
from v2p.eval.runner import load_queries  # noqa: E402

# attribute -> value -> surface forms; shapes keep (singular, plural) so a swap keeps the number
SURFACES: dict[str, dict[str, list[tuple[str, ...]]]] = {
    "shape": {v: list(forms) for v, forms in SHAPES.items()},
    "colour": {v: [(f,) for f in forms] for v, forms in COLOURS.items()},
    "scene": {v: [(f,) for f in forms] for v, forms in SCENES.items()},
    "action": {v: [(f,) for f in forms] for v, forms in ACTIONS.items()},
}


def swapped_prompt(prompt: str, attribute: str, value: str, rng: np.random.Generator) -> str | None:
    """``prompt`` with ``value``'s longest surface form present replaced by another value's form
    (the same grammatical number for shapes); None when no form of ``value`` is in it."""
    table = SURFACES[attribute]
    found = [(len(form[k]), form[k], k) for form in table[value] for k in range(len(form))
             if re.search(rf"(?<!\w){re.escape(form[k])}(?!\w)", prompt, flags=re.IGNORECASE)]
    if not found:
        return None
    _, text, number = max(found)
    others = [v for v in table if v != value]
    other = others[int(rng.integers(len(others)))]
    form = table[other][int(rng.integers(len(table[other])))]
    return re.sub(rf"(?<!\w){re.escape(text)}(?!\w)", form[min(number, len(form) - 1)], prompt, count=1,
                  flags=re.IGNORECASE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", default="v2p-tiny", help="comma-separated encoder specs, side by side")
    ap.add_argument("--limit", type=int, default=500, help="query clips (the held-out world has 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args()
    _, queries_dir = heldout_world(args.out / "heldout")
    queries = load_queries(open_shard(queries_dir), generator="pika", limit=args.limit)
    rng = np.random.default_rng(args.seed)
    tests = [(qi, attribute, swapped) for qi, q in enumerate(queries) for attribute in SURFACES
             if (swapped := swapped_prompt(q.prompt, attribute, q.attributes[attribute], rng)) is not None]
    text = create_encoder("minilm")
    true_text = text.encode_text([q.prompt for q in queries])
    swap_text = text.encode_text([s for _, _, s in tests])
    clips = [sample_frames(q.data, 8, name=f"query {i}") for i, q in enumerate(queries)]
    rows, results = [], {}
    for spec in args.encoders.split(","):
        t0 = time.perf_counter()
        video = create_encoder(spec).encode_videos(clips)
        seconds = time.perf_counter() - t0
        results[spec] = {}
        for attribute in SURFACES:
            idx = np.array([i for i, (_, a, _) in enumerate(tests) if a == attribute])
            qi = np.array([tests[i][0] for i in idx])
            prefers_truth = ((video[qi] * true_text[qi]).sum(1) > (video[qi] * swap_text[idx]).sum(1)).astype(float)
            low, high = metrics.bootstrap_ci(prefers_truth)
            results[spec][attribute] = {"accuracy": float(prefers_truth.mean()), "ci95": [low, high],
                                        "tests": len(idx)}
            rows.append({"encoder": spec, "attribute": attribute, "prefers true prompt": prefers_truth.mean(),
                         "95% CI": f"[{low:.3f}, {high:.3f}]", "tests": len(idx), "encode s": seconds})
    print_table(rows, f"Counterfactual attribute swaps: {len(queries)} held-out pika clips (chance 0.5)")
    write_json(args.out / "attribute_swaps.json", {"queries": len(queries), "seed": args.seed,
                                                   "results": results})


if __name__ == "__main__":
    main()
