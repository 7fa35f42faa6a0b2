"""Distillation vs from-scratch under one wall-time budget, per dataset, fp32 and int8.

Why a script: the claim "the teacher helps" is only worth the table it comes with. For each
dataset it runs `hil train` once per variant with the same total budget, all variants at the same
time (so they share the same CPU load on the shared machine), then quantizes every result with
hil.quant and scores the int8 integer reference on the full test split:

  neither  plain recipe from scratch                          hil train ... --budget-min B
  a        soft logits (train + transfer set)                 ... --teacher minilm --budget-min B
  b        representation distillation R min, then plain fine-tune B-R min  (--no-kd --rep-min R)
  ab       both: R min of (b), then (a) for B-R min

Teacher embedding time is shared (cached on disk) and reported on its own row ("teacher").
Re-running skips variants whose metrics.json exists, so a killed benchmark resumes.

  python benchmarks/distill_compare.py nlu_scenario --budget-min 10 --rep-min 4
Writes benchmarks/results/distill_<dataset>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = ("neither", "a", "b", "ab")


def variant_command(v: str, data: str, out: Path, a: argparse.Namespace) -> list[str]:
    """The exact `hil train` command of one variant (recorded in the table)."""
    train = rest = a.budget_min
    if v in ("b", "ab"):
        train = rest - a.rep_min
    cmd = ["hil", "train", "--data", data, "--out", str(out), "--budget-min", f"{train:g}",
           "--threads", str(a.threads), *shlex.split(a.train_args)]
    if v != "neither":
        cmd += ["--teacher", a.teacher, *shlex.split(a.teacher_args)]
        if v == "b":
            cmd += ["--no-kd"]
        if v in ("b", "ab"):
            cmd += ["--rep-min", f"{a.rep_min:g}"]
    return cmd


def int8_check(run: Path, calib: int) -> dict[str, Any]:
    """fp32 vs int8 (hil.quant integer reference) accuracy on the whole test split."""
    from hil.quant.quantize import compare_on_split, quantize_checkpoint

    cached = run / "int8.json"  # a re-run of the table does not quantize again
    if cached.exists() and cached.stat().st_mtime >= (run / "model.pt").stat().st_mtime:
        return json.loads(cached.read_text())
    qm = quantize_checkpoint(run, calib_count=calib)
    res = compare_on_split(run, qm, split="test")
    cached.write_text(json.dumps(res))
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("data")
    p.add_argument("--budget-min", type=float, default=10.0, help="total per variant")
    p.add_argument("--rep-min", type=float, default=4.0, help="(b) share of the budget")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--teacher", default="minilm")
    p.add_argument("--teacher-args", default="", help="extra --transfer-*/--kd-* options")
    p.add_argument("--train-args", default="--epochs 40 --patience 8 --lr 2e-3 --dropout 0.2 "
                                            "--label-smoothing 0.1",
                   help="the plain recipe shared by every variant")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", default="/tmp/distill_runs")
    p.add_argument("--tag", default="", help="suffix of the result files and run dirs")
    p.add_argument("--calib", type=int, default=1000)
    a = p.parse_args(argv)
    tag = f"{a.data}{a.tag}"
    runs = Path(a.runs) / tag
    runs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs: dict[str, tuple[subprocess.Popen[bytes], float, list[str]]] = {}
    cmds: dict[str, list[str]] = {}
    for v in a.variants.split(","):
        out = runs / v
        cmds[v] = variant_command(v, a.data, out, a)
        if (out / "metrics.json").exists():
            continue
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "log.txt", "ab") as log:
            procs[v] = (subprocess.Popen(["nice", "-n", "5", *cmds[v]], stdout=log,
                                         stderr=subprocess.STDOUT, env=env),
                        time.monotonic(), cmds[v])
        print(f"started {v}: {shlex.join(cmds[v])}", flush=True)
    walls: dict[str, float] = {}
    for v, (proc, t0, _) in procs.items():
        rc = proc.wait()
        walls[v] = time.monotonic() - t0
        print(f"{v} finished rc={rc} in {walls[v] / 60:.1f} min", flush=True)
    rows: list[dict[str, Any]] = []
    teacher: dict[str, Any] = {}
    for v in cmds:
        out = runs / v
        if not (out / "metrics.json").exists():
            rows.append({"variant": v, "error": f"no metrics.json (see {out / 'log.txt'})"})
            continue
        m = json.loads((out / "metrics.json").read_text())
        d = json.loads((out / "distill.json").read_text()) if (out / "distill.json").exists() \
            else {}
        teacher = d.get("teacher", teacher)
        q = int8_check(out, a.calib)
        rows.append({"variant": v, "command": shlex.join(cmds[v]),
                     "train_min": round(m["elapsed_s"] / 60, 2),
                     "rep_min": round(d.get("rep", {}).get("elapsed_s", 0) / 60, 2),
                     "wall_min": round(walls.get(v, float("nan")) / 60, 2),
                     "steps": m["steps"], "stopped": m["stopped"],
                     "dev_acc": m["dev"]["accuracy"], "test_acc": m["test"]["accuracy"],
                     "test_macro_f1": m["test"]["macro_f1"], "int8": q, "run": str(out)})
    res = {"dataset": a.data, "budget_min": a.budget_min, "rep_min": a.rep_min,
           "teacher": teacher, "rows": rows, "argv": sys.argv}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"distill_{tag}.json").write_text(json.dumps(res, indent=1))
    (RESULTS / f"distill_{tag}.md").write_text(markdown(res))
    print(markdown(res))
    return 0


def markdown(res: dict[str, Any]) -> str:
    """The table of one dataset."""
    t = res["teacher"]
    lines = [f"## {res['dataset']}: budget {res['budget_min']:g} min per variant "
             f"((b) {res['rep_min']:g} min of it)", ""]
    if t:
        lines.append(f"Teacher `{t.get('teacher')}` ({t.get('identity')}), head "
                     f"{t.get('head')}: dev {t.get('dev_acc', float('nan')):.4f}, test "
                     f"{t.get('test_acc', float('nan')):.4f}; transfer set "
                     f"{t.get('transfer_n')} docs; teacher phase of the run {t.get('seconds')} s "
                     "(embeddings from the on-disk cache when present).")
        lines.append("")
    lines += ["| variant | dev acc | test acc fp32 | test acc int8 | agreement | steps | "
              "(b) min | fine-tune min | stopped |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in res["rows"]:
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['error']} |")
            continue
        q = r["int8"]
        lines.append(f"| {r['variant']} | {r['dev_acc']:.4f} | {r['test_acc']:.4f} | "
                     f"{q['acc_int8'] / 100:.4f} | {q['agreement']:.1f}% | {r['steps']} | "
                     f"{r['rep_min']} | {r['train_min']} | {r['stopped']} |")
    lines += ["", "Commands:", ""]
    lines += [f"- {r['variant']}: `{r['command']}`" for r in res["rows"] if "command" in r]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
