"""Renode vs QEMU on the same sentences: speed, and instruction counts per sentence and per layer.

Runs the first N sentences of the default scenario through the real CLI (`hil run --limit N`) on
Renode stm32f4, Renode nrf52840 (skipped with a note when it does not boot) and QEMU
netduinoplus2 (same Cortex-M4 kernels; QEMU counts instructions with -icount), then writes
benchmarks/results/renode_compare.json and .md: sentences/s side by side, per-layer counts for
each sentence on each, and the per-sentence ratio Renode/QEMU.

    PYTHONPATH=. python3 benchmarks/renode_compare.py [--limit 20] [--boards stm32f4 ...]

Renode's figures come from the overlay's DWT (CYCCNT = executed instructions, see
hil/targets/renode.py DWT_SCRIPT); QEMU's from SysTick under -icount shift=0 (one tick per
instruction). Sentences/s are end to end (emulator boot + streaming + host reference check), so
for small N they are dominated by boot; the host round trip per sentence is given too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = [("stm32f4", "renode"), ("nrf52840", "renode"), ("netduinoplus2", "qemu")]
REFERENCE = "netduinoplus2"


def run_board(board: str, limit: int, out: Path, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "hil.cli", "run", "--board", board, "--limit", str(limit),
           "--out", str(out), "--quiet"]
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"board": board, "ok": False, "note": f"timed out after {timeout:.0f} s"}
    summary_path = out / "summary.json"
    if not summary_path.is_file():
        return {"board": board, "ok": False, "note": (p.stderr or p.stdout).strip()[-400:]}
    s = json.loads(summary_path.read_text())
    rows = []
    if (out / "results.jsonl").is_file():
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    ok_rows = [r for r in rows if r.get("status") == "ok"]
    if s.get("error") or not ok_rows:
        err = s.get("error") or "no sentence answered"
        return {"board": board, "ok": False, "note": str(err).splitlines()[0][:300]}
    summ = s["summary"]
    return {
        "board": board, "ok": True, "target": s["target"], "unit": summ["cycles"]["unit"],
        "sentences": summ["sentences"], "agreement": summ["agreement"],
        "sentences_per_s": s["throughput"]["sentences_per_s"],
        "wall_s": s["throughput"]["wall_s"],
        "host_round_trip_ms_median": summ["host_round_trip_ms"]["median"],
        "count_median": summ["cycles"]["median"],
        "per_sentence": {str(r["index"]): {"text": r["text"], "tokens": r.get("tokens"),
                                            "count": r.get("cycles"), "layers": r.get("layers"),
                                            "tokenizer": r.get("tokenizer_cycles")}
                         for r in ok_rows},
    }


def compare(runs: dict, ref: str) -> dict:
    out = {}
    base = runs.get(ref)
    if not base or not base["ok"]:
        return out
    for board, r in runs.items():
        if board == ref or not r["ok"]:
            continue
        ratios, diffs, layer_ratios = [], [], []
        for idx, row in r["per_sentence"].items():
            q = base["per_sentence"].get(idx)
            if not q or not q["count"] or row["count"] is None:
                continue
            ratios.append(row["count"] / q["count"])
            diffs.append(row["count"] - q["count"])
            if row["layers"] and q["layers"]:
                pairs = zip(row["layers"], q["layers"], strict=False)
                layer_ratios.append([a / b if b else None for a, b in pairs])
        out[board] = {
            "vs": ref, "sentences": len(ratios),
            "ratio_min": min(ratios), "ratio_max": max(ratios),
            "ratio_median": statistics.median(ratios),
            "diff_min": min(diffs), "diff_max": max(diffs),
            "per_sentence_ratio": dict(zip(r["per_sentence"], ratios, strict=False)),
            "layer_ratio_min": [min(x[i] for x in layer_ratios if x[i] is not None)
                                for i in range(len(layer_ratios[0]))] if layer_ratios else [],
            "layer_ratio_max": [max(x[i] for x in layer_ratios if x[i] is not None)
                                for i in range(len(layer_ratios[0]))] if layer_ratios else [],
            "multiples_of_16800": sum(1 for row in r["per_sentence"].values()
                                      if row["count"] and row["count"] % 16800 == 0),
        }
    return out


def markdown(data: dict) -> str:
    runs, cmp_ = data["runs"], data["compare"]
    lines = [f"# Renode vs QEMU, first {data['limit']} sentences of nlu_scenario", "",
             "Counts are executed instructions (Renode: DWT CYCCNT = cpu.ExecutedInstructions; "
             "QEMU: SysTick under -icount shift=0). Sentences/s are end to end, boot included.", "",
             "| board | target | unit | sentences/s | wall s | host round trip ms (median) "
             "| median count | agreement |", "|---|---|---|---|---|---|---|---|"]
    for b, r in runs.items():
        if r["ok"]:
            lines.append(f"| {b} | {r['target']} | {r['unit']} | {r['sentences_per_s']:.2f} | "
                         f"{r['wall_s']:.1f} | {r['host_round_trip_ms_median']:.1f} | "
                         f"{r['count_median']:.0f} | {r['agreement']:.0%} |")
        else:
            lines.append(f"| {b} | | | skipped | | | | {r['note']} |")
    for b, c in cmp_.items():
        lines += ["", f"## {b} / {c['vs']}", "",
                  f"- per-sentence ratio: median {c['ratio_median']:.5f}, "
                  f"min {c['ratio_min']:.5f}, max {c['ratio_max']:.5f} "
                  f"({c['sentences']} sentences)",
                  f"- difference {b} − {c['vs']}: {c['diff_min']} .. {c['diff_max']} instructions",
                  "- per-layer ratio range: "
                  + ", ".join(f"L{i}: {lo:.4f}..{hi:.4f}" for i, (lo, hi) in enumerate(
                      zip(c["layer_ratio_min"], c["layer_ratio_max"], strict=True))),
                  f"- counts that are multiples of 16,800: {c['multiples_of_16800']}"]
    ok = [b for b, r in runs.items() if r["ok"]]
    if ok:
        first = runs[ok[0]]
        lines += ["", "## Per sentence and layer", "",
                  "| # | tokens | " + " | ".join(f"{b} total | {b} layers" for b in ok) + " |",
                  "|---|---|" + "---|---|" * len(ok)]
        for idx, row in first["per_sentence"].items():
            cells = []
            for b in ok:
                s = runs[b]["per_sentence"].get(idx, {})
                cells += [str(s.get("count")), " ".join(str(x) for x in s.get("layers") or [])]
            lines.append(f"| {idx} | {row['tokens']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--boards", nargs="+", default=[b for b, _ in RUNS])
    ap.add_argument("--out", default="/tmp/renode_compare")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)
    runs = {}
    for board, target in RUNS:
        if board not in args.boards:
            continue
        print(f"renode_compare: {board} on {target}, {args.limit} sentences", flush=True)
        runs[board] = {**run_board(board, args.limit, Path(args.out) / board, args.timeout),
                       "target": target}
        if not runs[board]["ok"]:
            print(f"  skipped: {runs[board]['note']}", flush=True)
    data = {"limit": args.limit, "runs": runs, "compare": compare(runs, REFERENCE)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "renode_compare.json").write_text(json.dumps(data, indent=1) + "\n")
    (RESULTS / "renode_compare.md").write_text(markdown(data))
    print(markdown(data).split("## Per sentence")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
