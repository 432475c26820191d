"""Plain retrieval vs --rerank vs --splice, side by side on the same held-out queries (`v2p eval`).

Test shard: seed 777 (see _common.heldout_world), index by v2p-tiny over ms + vc2 videos of the
first 1,600 prompts, 500 pika query videos. The rerank weights were tuned on another shard
(benchmarks/rerank_tune.py, seed 2024); a second rerank row turns on the terms the earlier,
direction-blind v2p-tiny was tuned to (ALL_TERMS), to show what they do on this model. The
bank LM is trained on the index's own prompts.
Usage: python benchmarks/rerank_eval.py [--out bench-out]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import heldout_index, heldout_world, print_table, v2p_cli, write_json  # noqa: E402

ALL_TERMS = "frame_max=0.25,consensus=0.25,fluency=0.25"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    out = Path(args.out) / "heldout"
    _, queries = heldout_world(out)
    index = heldout_index(out, "temporal", "v2p-tiny", with_lm=True)
    rows, reports = [], {}
    modes = (("plain", []), ("rerank (defaults)", ["--rerank"]),
             ("rerank " + ALL_TERMS, ["--rerank", "--weights", ALL_TERMS]), ("splice", ["--splice"]))
    for mode, flags in modes:
        r = json.loads(v2p_cli("eval", "--index", str(index), "--queries", str(queries), "--generator", "pika",
                               "--json", *flags))
        reports[mode] = r
        nb = r["not_in_bank"]

        def ci(group, key):
            iv = group["intervals"].get(key)
            return f"[{iv[0]:.3f}, {iv[1]:.3f}]" if iv else ""

        attrs_nb = nb.get("attribute_accuracy", {})
        rows.append({"mode": mode, "R@1": r["recall_at_1"], "R@1 CI": ci(r, "recall_at_1"), "R@5": r["recall_at_5"],
                     "cos in bank": r["minilm_cosine"], "cos CI": ci(r, "minilm_cosine"),
                     "cos not in bank": nb["minilm_cosine"], "cos nb CI": ci(nb, "minilm_cosine"),
                     "attr acc not in bank": sum(attrs_nb.values()) / max(1, len(attrs_nb)),
                     "attr acc in bank": sum(r["attribute_accuracy"].values()) / max(1, len(r["attribute_accuracy"])),
                     "bleu nb": nb["bleu"], "rouge_l nb": nb["rouge_l"]})
    print_table(rows, "plain / rerank / splice, held-out shard (seed 777), pika queries")
    write_json(out / "rerank_eval.json", {"rows": rows, "reports": reports})


if __name__ == "__main__":
    main()
