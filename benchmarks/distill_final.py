"""Table of finished `hil train` runs (distilled candidates for shipping): teacher, fp32 and int8
test accuracy (hil.quant integer reference on the whole test split), wall time of each phase, and
the exact command recorded in the run.

  python benchmarks/distill_final.py /tmp/distill_final/nlu_scenario /tmp/distill_final/sms_spam
Writes benchmarks/results/distill_final.json and .md (rows of the same run dir are replaced).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill_table import RESULTS, int8_limits, rep_cell, write_results  # noqa: E402


def row(run: Path, calib: int, limit: int | None = None) -> dict[str, Any]:
    """One run: what it recorded (distill_table.run_info) + an int8 check (cached in
    run/int8.json)."""
    from distill_table import int8_check, run_info

    return run_info(run) | {"int8": int8_check(run, calib, limit)}


def int8(r: dict[str, Any]) -> str:
    q = r["int8"]
    return f"{q['acc_int8'] / 100:.4f}" + (f" (first {q['sentences']})" if q.get("limit") else "")


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| dataset | run | teacher test | dev | test fp32 | test int8 | (b) min | "
             "fine-tune min | steps | stopped |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        t = r["teacher"].get("test_acc")
        lines.append(f"| {r['dataset']} | `{r['run']}` | {t:.4f} | {r['dev_acc']:.4f} | "
                     f"{r['test_acc']:.4f} | {int8(r)} | {rep_cell(r, str(r['rep_min']))} | "
                     f"{r['train_min']} | {r['steps']} | {r['stopped']} |" if t is not None else
                     f"| {r['dataset']} | `{r['run']}` | - | {r['dev_acc']:.4f} | "
                     f"{r['test_acc']:.4f} | {int8(r)} | {rep_cell(r, str(r['rep_min']))} | "
                     f"{r['train_min']} | {r['steps']} | {r['stopped']} |")
    lines += ["", "Commands (as recorded in each model.pt):", ""]
    lines += [f"- `{r['run']}`: `{r['command']}`" + (f" (encoder from `{r['init']}`)"
                                                    if r.get("init") else "") for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", nargs="+")
    p.add_argument("--calib", type=int, default=1000)
    p.add_argument("--int8-limit", action="append", default=[],
                   help="DATASET=N: int8 check on the first N test texts (long-text sets)")
    a = p.parse_args(argv)
    limits = int8_limits(a.int8_limit)
    path = RESULTS / "distill_final.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    for r in a.runs:
        ds = json.loads((Path(r) / "metrics.json").read_text())["dataset"]
        new = row(Path(r), a.calib, limits.get(ds))
        rows = [x for x in rows if x["run"] != new["run"]] + [new]
        print(json.dumps({k: new[k] for k in ("run", "test_acc", "int8")}), flush=True)
    write_results("distill_final", rows, markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
