"""fp32 (torch) vs int8 (the integer reference) accuracy of every shipped model.

Both models see the same token ids (the model's tokenizer, truncated to max_len) of the whole
test split. The int8 numbers come from hil/quant/reference.py, which the C engine matches bit for
bit (tests/test_engine*.py), so they are the device's accuracy.

    python benchmarks/quant_accuracy.py                       # every hil/models/*/model.pt
    python benchmarks/quant_accuracy.py --methods mse max p99.99 --model nlu_scenario
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hil.quant.cli import shipped_models  # noqa: E402
from hil.quant.quantize import compare_on_split, quantize_checkpoint  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", help="model name (default: every shipped one)")
    ap.add_argument("--methods", nargs="*", default=["mse"], help="calibration methods")
    ap.add_argument("--calib", type=int, default=1000, help="calibration sentences")
    ap.add_argument("--limit", type=int, help="test sentences (default: the whole split)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    dirs = [d for d in shipped_models() if not args.model or d.name in args.model]
    rows = []
    for d in dirs:
        for method in args.methods:
            qm = quantize_checkpoint(d, calib_count=args.calib, method=method)
            r = compare_on_split(d, qm, limit=args.limit)
            rows.append({"model": d.name, "method": method, **r})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'model':<16} {'calib':<8} {'split':<6} {'n':>5} {'fp32 %':>7} {'int8 %':>7} "
          f"{'drop':>6} {'agree %':>8}")
    for r in rows:
        print(f"{r['model']:<16} {r['method']:<8} {r['split']:<6} {r['sentences']:>5} "
              f"{r['acc_fp32']:>7.2f} {r['acc_int8']:>7.2f} {r['drop_points']:>6.2f} "
              f"{r['agreement']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
