"""The per-dataset table of issue #8: teacher accuracy, EmbBERT from scratch, EmbBERT distilled
(fp32 and the int8 integer reference of hil.quant), and the wall time of each, from recorded runs.

    python benchmarks/distill_table.py \\
        --distilled /tmp/distill_runs2/nlu_scenario /tmp/distill_runs2/sms_spam ... \\
        --scratch /tmp/distill_runs2/imdb_scratch ...
    python benchmarks/distill_table.py            # re-render the table from the saved json

A run directory is what `hil train` wrote (metrics.json, model.pt, distill.json for distilled
runs); the dataset is read from it. Rows are merged by dataset into
benchmarks/results/distill_table.json, so runs can be added one at a time and the table outlives
the /tmp directories. A dataset without a scratch run here falls back to its recorded short
fine-tune from scratch in benchmarks/results/model_accuracy.json (the source column says so);
a teacher without a test score in the run falls back to benchmarks/results/distill_teacher.json.
The int8 check runs hil.quant's calibration (whatever `hil quantize` does by default) on the
run's model.pt and scores the integer reference on the test split (cached in RUN/int8.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
ORDER = ["nlu_scenario", "sms_spam", "imdb", "movie_snippets", "bbc_news", "hwu64"]


def int8_check(run: Path, calib: int, limit: int | None) -> dict[str, Any]:
    """fp32 vs int8 reference accuracy on the test split (or its first `limit` texts)."""
    from hil.quant.quantize import compare_on_split, quantize_checkpoint

    cached = run / "int8.json"
    if cached.exists() and cached.stat().st_mtime >= (run / "model.pt").stat().st_mtime:
        q = json.loads(cached.read_text())
        if q.get("limit") == limit:
            return q
    q = compare_on_split(run, quantize_checkpoint(run, calib_count=calib), split="test",
                         limit=limit) | {"limit": limit}
    cached.write_text(json.dumps(q))
    return q


def run_info(run: Path) -> dict[str, Any]:
    """What a `hil train` run directory records: accuracy, phases' wall time, command."""
    import torch

    m = json.loads((run / "metrics.json").read_text())
    d = json.loads((run / "distill.json").read_text()) if (run / "distill.json").exists() else {}
    ck = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    init = ck.get("train_args", {}).get("init")
    rep, shared = d.get("rep", {}), False
    if not rep and init and Path(init).name == "pretrained.pt" and Path(init).parent.name == "rep":
        # Fine-tuned from another run's (b) encoder: that (b) is part of this model's cost.
        other = Path(init).parent.parent / "distill.json"
        rep = json.loads(other.read_text()).get("rep", {}) if other.exists() else {}
        shared = bool(rep)
    return {"run": str(run), "dataset": m["dataset"],
            "command": ck.get("train_args", {}).get("command", "?"), "init": init,
            "teacher": d.get("teacher", {}), "teacher_s": d.get("teacher_s"),
            "rep_min": round(rep.get("elapsed_s", 0) / 60, 2), "rep_shared": shared,
            "rep_steps": rep.get("steps", 0),
            "train_min": round(m["elapsed_s"] / 60, 2), "steps": m["steps"],
            "stopped": m["stopped"], "dev_acc": m["dev"]["accuracy"],
            "test_acc": m["test"]["accuracy"], "test_n": m["test"]["n"]}


def rep_cell(r: dict[str, Any], text: str) -> str:
    """The (b) minutes, marked when the encoder came from another run (and is shared)."""
    return f"{text} (shared)" if r.get("rep_shared") else text


def fallback_scratch(name: str) -> dict[str, Any] | None:
    path = RESULTS / "model_accuracy.json"
    r = json.loads(path.read_text())["rows"].get(name) if path.exists() else None
    if not r or "short fine-tune from scratch" not in r.get("source", ""):
        return None
    return {"run": "benchmarks/results/model_accuracy.json", "dataset": name,
            "command": r["command"], "train_min": r.get("train_minutes"),
            "test_acc": r["accuracy"], "test_n": r["n"], "source": r["source"]}


def fallback_teacher(name: str, teacher: str = "minilm") -> dict[str, Any]:
    """The teacher's own row in distill_teacher.json (rows are per dataset and teacher)."""
    path = RESULTS / "distill_teacher.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    return next((r for r in rows if r["dataset"] == name
                 and r.get("teacher", "minilm") == teacher), {})


def int8_limits(values: list[str]) -> dict[str, int]:
    """--int8-limit DATASET=N options -> {dataset: N}."""
    return {k: int(v) for k, v in (x.split("=") for x in values)}


def write_results(stem: str, obj: Any, md: str) -> None:
    """benchmarks/results/STEM.json and STEM.md; the table is printed too."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(obj, indent=1))
    (RESULTS / f"{stem}.md").write_text(md)
    print(md)


def fmt(x: float | None, nd: int = 4) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def markdown(rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Distillation from an offline teacher, per dataset (benchmarks/distill_table.py)", "",
        "Test accuracy (fraction) on each dataset's test split unless a count says otherwise; "
        "wall times in minutes on 2 CPU cores (one torch thread per job, up to five jobs at "
        "once, so a job had 0.4 to 1 core), no GPU. Teacher: `minilm` = frozen "
        "all-MiniLM-L6-v2 + logistic head; `ngram` = "
        "TF-IDF n-grams + logistic regression on the span the student sees (out-of-fold on "
        "train); `minilm,ngram` = both, log-probabilities mixed with the MiniLM weight w chosen "
        "on dev. Teacher minutes are the embedding + fitting time inside the distilled run (0 "
        "when cached). Distilled = (b) representation distillation when the run has (b) min, "
        "then fine-tuning on hard + soft labels; (b) min marked (shared) = the run started from "
        "another run's (b) encoder, whose minutes are shown. int8 = hil.quant integer "
        "reference (bit-exact with the firmware).", "",
        "| dataset | teacher | teacher test | teacher min | scratch test | scratch min | "
        "distilled dev | distilled test fp32 | distilled test int8 | (b) min | fine-tune min |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes: list[str] = []
    for name in [n for n in ORDER if n in rows] + sorted(set(rows) - set(ORDER)):
        r = rows[name]
        t, s, d = r.get("teacher", {}), r.get("scratch") or {}, r.get("distilled") or {}
        q = d.get("int8") or {}
        int8 = q.get("acc_int8")
        int8_s = "-" if int8 is None else f"{int8 / 100:.4f}" + (
            f" (first {q['sentences']})" if q.get("limit") else "")
        t_acc = t.get("test_acc")
        t_s = f"{t_acc:.4f}" if t_acc is not None else "-"
        if t.get("test_n") and s.get("test_n") and t["test_n"] != s.get("test_n"):
            t_s += f" (n={t['test_n']})"
        spec = t.get("teacher", "minilm") + (f" (w={t['mix_weight']:g})"
                                             if t.get("mix_weight") is not None else "")
        lines.append(
            f"| {name} | {spec} | {t_s} | {fmt((d.get('teacher_s') or 0) / 60, 1) if d else '-'} | "
            f"{fmt(s.get('test_acc'))} | {fmt(s.get('train_min'), 1)} | "
            f"{fmt(d.get('dev_acc'))} | {fmt(d.get('test_acc'))} | {int8_s} | "
            f"{rep_cell(d, fmt(d.get('rep_min'), 1)) if d else '-'} | "
            f"{fmt(d.get('train_min'), 1)} |")
        for kind, x in (("scratch", s), ("distilled", d)):
            if x:
                notes.append(f"- {name}, {kind} ({x.get('source') or x['run']}): "
                             f"`{x['command']}`")
        if t.get("note"):
            notes.append(f"- {name}, teacher: {t['note']}")
    return "\n".join(lines + ["", "Runs and commands:", ""] + notes) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--distilled", nargs="*", default=[], help="distilled run directories")
    p.add_argument("--scratch", nargs="*", default=[], help="from-scratch run directories")
    p.add_argument("--calib", type=int, default=1000)
    p.add_argument("--int8-limit", action="append", default=[],
                   help="DATASET=N: int8 check on the first N test texts (long-text sets)")
    a = p.parse_args(argv)
    limits = int8_limits(a.int8_limit)
    path = RESULTS / "distill_table.json"
    rows: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    for r in a.scratch:
        info = run_info(Path(r))
        rows.setdefault(info["dataset"], {})["scratch"] = info
    for r in a.distilled:
        info = run_info(Path(r))
        name = info["dataset"]
        info["int8"] = int8_check(Path(r), a.calib, limits.get(name))
        row = rows.setdefault(name, {})
        row["distilled"] = info
        teacher = dict(info["teacher"])
        if teacher.get("test_acc") is None:
            fb = fallback_teacher(name, teacher.get("teacher", "minilm"))
            teacher.update({k: fb[k] for k in ("test_acc", "test_n", "dev_acc", "note")
                            if k in fb})
        row["teacher"] = teacher
        print(json.dumps({"dataset": name, "test": info["test_acc"], "int8": info["int8"]}),
              flush=True)
    for name, row in rows.items():
        if not row.get("scratch"):
            row["scratch"] = fallback_scratch(name)
        if not row.get("teacher"):  # no distilled run (imdb): the teacher's own measurement
            fb = fallback_teacher(name)
            row["teacher"] = {k: fb[k] for k in ("test_acc", "test_n", "dev_acc", "note")
                              if k in fb}
    write_results("distill_table", rows, markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
