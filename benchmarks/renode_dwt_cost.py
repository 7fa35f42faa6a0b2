"""What instruction-exact timing costs on Renode: the same sentences on stm32f4 with the overlay's
instruction-counting DWT (a Python peripheral whose CYCCNT reads cpu.ExecutedInstructions) and
with Renode's built-in Miscellaneous.DWT (which moves only at the 100 us quantum's sync points),
alternated so that the machine's load falls on both alike. Reports sentences/s (end to end, boot
included) and the ratio, and how many counts are multiples of 16,800 (the quantum at 168 MHz).

    python3 benchmarks/renode_dwt_cost.py [--limit 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hil.targets.renode_scripts as rs  # noqa: E402
from hil.boards import BOARDS  # noqa: E402
from hil.runner import RunConfig, run  # noqa: E402
from hil.scenario import load_scenario, resolve_model  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
EXACT = rs.platform_overlay


def builtin_overlay(board):  # type: ignore[no-untyped-def]
    """The overlay with Renode's own DWT in place of the instruction-counting one."""
    text = EXACT(board)
    head, rest = text.split("dwt: Python.PythonPeripheral", 1)
    tail = rest.split("'''", 2)[2]
    return (f"{head}dwt: Miscellaneous.DWT @ sysbus 0xE0001000\n"
            f"    frequency: {board.clock_hz}\n{tail}")


def one(kind: str, limit: int) -> dict:
    rs.platform_overlay = EXACT if kind == "exact" else builtin_overlay
    scen = load_scenario("nlu_scenario")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(board=BOARDS["stm32f4"], target="renode", scenario=scen,
                        model_path=resolve_model(scen.model), out_dir=Path(tmp) / "r",
                        limit=limit)
        t0 = time.perf_counter()
        code, summary = run(cfg)
        wall = time.perf_counter() - t0
        recs = [json.loads(x) for x in (Path(tmp) / "r" / "results.jsonl").read_text().split("\n")
                if x]
    quantized = sum(1 for r in recs if r.get("cycles") and r["cycles"] % 16_800 == 0)
    return {"dwt": kind, "exit": code, "wall_s": round(wall, 2),
            "sentences_per_s": round(limit / wall, 3),
            "agreement": summary["summary"]["agreement"], "multiples_of_16800": quantized}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    runs = [one(kind, args.limit) for _ in range(args.rounds) for kind in ("exact", "builtin")]
    speed = {k: round(statistics.median(r["sentences_per_s"] for r in runs if r["dwt"] == k), 3)
             for k in ("exact", "builtin")}
    out = {"board": "stm32f4", "sentences": args.limit, "rounds": args.rounds, "runs": runs,
           "median_sentences_per_s": speed,
           "exact_over_builtin": round(speed["exact"] / speed["builtin"], 3),
           "where": "Renode 1.15.1 on this 2-core machine, end to end (boot included)"}
    (RESULTS / "renode_dwt_cost.json").write_text(json.dumps(out, indent=2) + "\n")
    for r in runs:
        print(r)
    print(f"median sentences/s: exact {speed['exact']}, built-in {speed['builtin']} "
          f"(ratio {out['exact_over_builtin']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
