"""Table of finished `hil train` runs (distilled candidates for shipping): teacher, fp32 and int8
test accuracy (hil.quant integer reference on the whole test split), wall time of each phase, and
the exact command recorded in the run.

  python benchmarks/distill_final.py /tmp/distill_final/nlu_scenario /tmp/distill_final/sms_spam
Writes benchmarks/results/distill_final.json and .md (rows of the same run dir are replaced).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def row(run: Path, calib: int) -> dict[str, Any]:
    """One run: metrics.json + distill.json + an int8 check (cached in run/int8.json)."""
    from hil.quant.quantize import compare_on_split, quantize_checkpoint

    m = json.loads((run / "metrics.json").read_text())
    d = json.loads((run / "distill.json").read_text()) if (run / "distill.json").exists() else {}
    ck = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    cached = run / "int8.json"
    if cached.exists() and cached.stat().st_mtime >= (run / "model.pt").stat().st_mtime:
        q = json.loads(cached.read_text())
    else:
        q = compare_on_split(run, quantize_checkpoint(run, calib_count=calib), split="test")
        cached.write_text(json.dumps(q))
    return {"run": str(run), "dataset": m["dataset"],
            "command": ck.get("train_args", {}).get("command", "?"),
            "init": ck.get("train_args", {}).get("init"),
            "teacher": d.get("teacher", {}), "teacher_s": d.get("teacher_s"),
            "rep_min": round(d.get("rep", {}).get("elapsed_s", 0) / 60, 2),
            "rep_steps": d.get("rep", {}).get("steps", 0),
            "train_min": round(m["elapsed_s"] / 60, 2), "steps": m["steps"],
            "stopped": m["stopped"], "dev_acc": m["dev"]["accuracy"],
            "test_acc": m["test"]["accuracy"], "test_macro_f1": m["test"]["macro_f1"],
            "int8": q}


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| dataset | run | teacher test | dev | test fp32 | test int8 | (b) min | "
             "fine-tune min | steps | stopped |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        t = r["teacher"].get("test_acc")
        lines.append(f"| {r['dataset']} | `{r['run']}` | {t:.4f} | {r['dev_acc']:.4f} | "
                     f"{r['test_acc']:.4f} | {r['int8']['acc_int8'] / 100:.4f} | {r['rep_min']} | "
                     f"{r['train_min']} | {r['steps']} | {r['stopped']} |" if t is not None else
                     f"| {r['dataset']} | `{r['run']}` | - | {r['dev_acc']:.4f} | "
                     f"{r['test_acc']:.4f} | {r['int8']['acc_int8'] / 100:.4f} | {r['rep_min']} | "
                     f"{r['train_min']} | {r['steps']} | {r['stopped']} |")
    lines += ["", "Commands (as recorded in each model.pt):", ""]
    lines += [f"- `{r['run']}`: `{r['command']}`" + (f" (encoder from `{r['init']}`)"
                                                    if r["init"] else "") for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", nargs="+")
    p.add_argument("--calib", type=int, default=1000)
    a = p.parse_args(argv)
    path = RESULTS / "distill_final.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    for r in a.runs:
        new = row(Path(r), a.calib)
        rows = [x for x in rows if x["run"] != new["run"]] + [new]
        print(json.dumps({k: new[k] for k in ("run", "test_acc", "int8")}), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))
    (RESULTS / "distill_final.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
