"""End-to-end throughput and device numbers of `hil run`, with and without --jobs 2.

Every number in the host report comes from here: for each (board, jobs) it runs the default
scenario (300 nlu_scenario sentences, the shipped model) through the real CLI into
out/bench/<board>-j<jobs>/ and prints one table row from the summary JSON. Run it on an idle
machine: the sentences/s include target boot, streaming and the host's reference check.

    python3 benchmarks/run_throughput.py [--boards native netduinoplus2 mps2-an386] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from hil import cli


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boards", nargs="+", default=["native", "netduinoplus2", "mps2-an386"])
    ap.add_argument("--jobs", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default="out/bench")
    args = ap.parse_args(argv)
    rows = []
    for board in args.boards:
        for jobs in args.jobs:
            out = Path(args.out) / f"{board}-j{jobs}"
            shutil.rmtree(out, ignore_errors=True)
            argv_run = ["run", "--board", board, "--jobs", str(jobs), "--out", str(out),
                        "--quiet"] + (["--limit", str(args.limit)] if args.limit else [])
            code = cli.main(argv_run)
            s = json.loads((out / "summary.json").read_text())
            m = s["summary"]
            rows.append({
                "board": board, "target": s["target"], "jobs": jobs, "exit": code,
                "sentences": m["sentences"], "sent_per_s": s["throughput"]["sentences_per_s"],
                "agreement": m["agreement"], "accuracy": m["accuracy"],
                "cycles_median": m["cycles"]["median"], "cycles_p95": m["cycles"]["p95"],
                "unit": m["cycles"]["unit"], "latency_ms_median": m["latency_ms"]["median"],
                "emulated": s["emulated"], "stack_peak": m["stack_peak_bytes"],
                "arena_peak": m["arena_peak_bytes"], "ram_peak": m["ram_peak_bytes"],
                "flash": m["flash_bytes"],
            })
    (Path(args.out) / "throughput.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"{'board':14} {'jobs':>4} {'sent/s':>7} {'agree':>6} {'acc':>6} {'median':>10} "
          f"{'p95':>10}  unit")
    for r in rows:
        print(f"{r['board']:14} {r['jobs']:>4} {r['sent_per_s']:>7.1f} {r['agreement']:>6.3f} "
              f"{r['accuracy']:>6.3f} {r['cycles_median']:>10.0f} {r['cycles_p95']:>10.0f}  "
              f"{r['unit']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
