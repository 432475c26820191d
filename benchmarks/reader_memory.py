"""Stream a VidProM-sized prompts CSV (1.67M rows) through the reader: rows/s and peak RSS.

The CSV is generated from the synthetic grammar (multi-line prompts, quotes, emoji, flags),
then read in a *child* process so its peak RSS is the reader's alone. Target: < 1.5 GB.
Usage: python benchmarks/reader_memory.py [--rows 1670000] [--out bench-out]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402

from v2p.data.synth.writer import SYNTH_COLUMNS, synth_prompts  # noqa: E402

READ_SNIPPET = """
import json, resource, sys, time
from v2p.data.prompts import read_prompts
t0 = time.perf_counter()
reader = read_prompts(sys.argv[1], strip_flags=bool(int(sys.argv[2])))
batches = 0
for batch in reader:
    batches += 1
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "batches": batches, **reader.stats.as_dict(),
                  "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_csv(path: Path, rows: int) -> None:
    """Unique prompts: a pool of grammar prompts, each made unique with a row-dependent detail."""
    pool = synth_prompts(20_000, 11)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=SYNTH_COLUMNS, lineterminator="\n")
        w.writeheader()
        for i in range(rows):
            p = pool[i % len(pool)]
            row = dict(p.row)
            row["uuid"] = f"{i:08x}-{p.uuid[9:]}"
            row["prompt"] = f"{p.prompt}, take {i // len(pool)}"
            w.writerow(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_670_000)
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"prompts_{args.rows}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        make_csv(path, args.rows)
        print(f"generated {path} ({path.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - t0:.0f}s")
    results = []
    for strip in (0, 1):
        proc = subprocess.run([sys.executable, "-c", READ_SNIPPET, str(path), str(strip)],
                              capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout)
        results.append({"strip_flags": bool(strip), "rows": r["rows"], "unique": r["unique"],
                        "seconds": r["seconds"], "rows_per_s": r["rows"] / r["seconds"],
                        "peak_rss_MB": r["peak_rss_MB"], "target_MB": 1536,
                        "meets_target": r["peak_rss_MB"] < 1536})
    print_table(results, f"streaming {path.name} ({path.stat().st_size / 2**20:.0f} MB)")
    write_json(out / "reader_memory.json", {"csv_MB": path.stat().st_size / 2**20, "results": results})


if __name__ == "__main__":
    main()
