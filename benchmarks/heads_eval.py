"""Mean pooling vs the temporal head, measured with `v2p eval` on a held-out synthetic shard.

* training shard (seed 1001, 2,500 prompts x 4 generators): the one v2p-tiny was trained on;
* held-out shard (seed 777, prompts never seen in training): 2,000 prompts as the bank,
  videos by ms + vc2 in the index; 500 query videos by pika (a generator absent from the
  index); the bank keeps the first 1,600 prompts, so ~100 queries have no prompt in the bank.

The temporal model is the shipped v2p-tiny; the mean model is trained here with the same
command and seed, only `--head mean`. Usage: python benchmarks/heads_eval.py [--out bench-out]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import heldout_index, heldout_world, print_table, v2p_cli, write_json  # noqa: E402

TRAIN = ["--n", "2500", "--seed", "1001", "--generators", "pika,vc2,ms,t2vz"]
TRAIN_CMD = ["--text-encoder", "minilm", "--epochs", "60", "--patience", "6", "--seed", "0"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--train-shard", default="shards/train")
    args = ap.parse_args()
    out = Path(args.out) / "heldout"
    out.mkdir(parents=True, exist_ok=True)
    train_shard = Path(args.train_shard)
    if not (train_shard / "prompts.csv").exists():
        v2p_cli("synth", *TRAIN, "--out", str(train_shard))
    _, queries = heldout_world(out)
    mean_dir = out / "mean-model"
    if not (mean_dir / "model.safetensors").exists():
        v2p_cli("train", str(train_shard), "--out", str(mean_dir), "--head", "mean", *TRAIN_CMD)
    models = {"temporal (v2p-tiny)": "v2p-tiny", "mean": f"v2p:{mean_dir}"}
    rows, reports = [], {}
    for name, spec in models.items():
        index = heldout_index(out, name.split()[0], spec)
        report = json.loads(v2p_cli("eval", "--index", str(index), "--queries", str(queries), "--generator", "pika",
                                    "--json"))
        reports[name] = report
        nb = report["not_in_bank"]
        acc = report["attribute_accuracy"]
        rows.append({"head": name, "R@1": report["recall_at_1"], "R@5": report["recall_at_5"],
                     "R@10": report["recall_at_10"], "cos_in_bank": report["minilm_cosine"],
                     "cos_not_in_bank": nb.get("minilm_cosine"),
                     "direction_probe": report["direction_probe"]["accuracy"],
                     "probe_CI": "[{:.3f}, {:.3f}]".format(*report["direction_probe"]["interval"]),
                     "direction_acc": report["direction_accuracy"],
                     "action_acc": acc.get("action"), "camera_acc": acc.get("camera"), "shape_acc": acc.get("shape"),
                     "colour_acc": acc.get("colour"), "n_in/out": f"{report['n_queries']}/{nb.get('n_queries')}"})
    print_table(rows, "held-out shard (seed 777), queries by pika, bank indexed from ms + vc2")
    write_json(out / "heads_eval.json", {"rows": rows, "reports": reports})


if __name__ == "__main__":
    main()
