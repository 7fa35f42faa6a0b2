"""fp32 (torch) vs int8 (the integer reference) accuracy, per model, on the whole test split.

Both models see the same token ids (the model's tokenizer, truncated to max_len). The int8
numbers come from hil/quant/reference.py, which the C engine matches bit for bit
(tests/test_engine*.py), so they are the device's accuracy. The int8 model is the one
`hil quantize` writes: calibration method `auto` (chosen on the model's dev split, never test)
unless --methods forces others.

    python benchmarks/quant_accuracy.py                       # every hil/models/*/model.pt
    python benchmarks/quant_accuracy.py --model /tmp/runs/bbc_news --write
    python benchmarks/quant_accuracy.py --methods mse max p99.99 --model nlu_scenario

--model takes a shipped name or any run directory holding model.pt (the models of the other
datasets come from `python benchmarks/model_accuracy.py --only NAME` or
`python benchmarks/distill_final.py`; their run directory is printed in the table).
--write merges the rows into benchmarks/results/quant_accuracy.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hil.quant.cli import _model_dir, shipped_models  # noqa: E402
from hil.quant.quantize import compare_on_split, load_checkpoint, quantize_checkpoint  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def measure(model_dir: Path, method: str, calib: int, limit: int | None, workers: int = 1
            ) -> dict:
    """One row: quantize (timed) and compare fp32 vs int8 on the test split."""
    t0 = time.monotonic()
    qm = quantize_checkpoint(model_dir, calib_count=calib, method=method, workers=workers)
    quant_s = time.monotonic() - t0
    _, ckpt = load_checkpoint(model_dir)
    r = compare_on_split(model_dir, qm, limit=limit, workers=workers)
    shipped = model_dir.resolve().parent == (ROOT / "hil" / "models").resolve()
    cal = qm.meta["calibration"]
    return {"dataset": str(ckpt.get("dataset") or model_dir.name),
            "model": model_dir.name if shipped else str(model_dir), "shipped": shipped,
            "method": method, "chosen": cal["method"],
            "dev_candidates": cal.get("candidates", {}), "quantize_s": round(quant_s, 1), **r}


def write(rows: list[dict]) -> None:
    """Merge rows (keyed by dataset + method) into results/quant_accuracy.{json,md}."""
    path = RESULTS / "quant_accuracy.json"
    old = json.loads(path.read_text()) if path.exists() else []
    key = lambda r: (r["dataset"], r["method"])  # noqa: E731
    merged = {key(r): r for r in old} | {key(r): r for r in rows}
    allrows = sorted(merged.values(), key=lambda r: (not r["shipped"], r["dataset"], r["method"]))
    path.write_text(json.dumps(allrows, indent=1) + "\n")
    lines = [
        "# int8 accuracy: fp32 (torch) vs the integer reference (= the device)",
        "",
        "Produced by `python benchmarks/quant_accuracy.py --write [--model DIR]`, on the host "
        "(numpy integer reference; the C engine gives the same logits bit for bit). Whole test "
        "split unless `n` says otherwise. `auto` = the calibration method chosen on the model's "
        "dev split (candidates and their dev int8 accuracy in the last column); target: drop "
        "<= 1.0 point.",
        "",
        "| dataset | model | calibration | n test | fp32 % | int8 % | drop (points) | "
        "agreement % | dev int8 % per candidate |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in allrows:
        cand = ", ".join(f"{m} {v['dev_acc_int8']:.2f}" for m, v in
                         sorted(r["dev_candidates"].items()))
        calib = f"{r['method']} -> {r['chosen']}" if r["method"] == "auto" else r["method"]
        lines.append(f"| {r['dataset']} | {'shipped' if r['shipped'] else r['model']} | {calib} "
                     f"| {r['sentences']} | {r['acc_fp32']:.2f} | {r['acc_int8']:.2f} | "
                     f"{r['drop_points']:+.2f} | {r['agreement']:.2f} | {cand or '-'} |")
    (RESULTS / "quant_accuracy.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append",
                    help="shipped model name or run dir with model.pt (default: every shipped one)")
    ap.add_argument("--methods", nargs="*", default=["auto"], help="calibration methods")
    ap.add_argument("--calib", type=int, default=1000, help="calibration sentences")
    ap.add_argument("--limit", type=int, help="test sentences (default: the whole split)")
    ap.add_argument("--workers", type=int, default=1,
                    help="processes for the integer reference (results do not depend on it)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write", action="store_true", help="merge into benchmarks/results/")
    args = ap.parse_args(argv)
    dirs = [_model_dir(m) for m in args.model] if args.model else shipped_models()
    rows = [measure(d, m, args.calib, args.limit, args.workers) for d in dirs for m in args.methods]
    if args.write:
        write(rows)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'dataset':<16} {'calib':<14} {'split':<6} {'n':>6} {'fp32 %':>7} {'int8 %':>7} "
          f"{'drop':>6} {'agree %':>8}")
    for r in rows:
        calib = f"{r['method']}->{r['chosen']}" if r["method"] == "auto" else r["method"]
        print(f"{r['dataset']:<16} {calib:<14} {r['split']:<6} {r['sentences']:>6} "
              f"{r['acc_fp32']:>7.2f} {r['acc_int8']:>7.2f} {r['drop_points']:>6.2f} "
              f"{r['agreement']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
