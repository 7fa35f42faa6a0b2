"""The time of a 32-token sentence on the nRF52840 at 64 MHz (issue: target <= 100 ms).

Boots the nrf52840 firmware on Renode (hil.session, the same session `hil run` uses), classifies
the scenario's test sentences that tokenize to exactly 32 pieces (the [CLS] included) and reports,
per sentence, the executed instructions the instruction-counting DWT gave, the time at 64 MHz if
one instruction took one cycle, and, where hil/models/cpi.json has a cycles-per-instruction
estimate for this board and model (benchmarks/cycle_model.py), the estimated time. Renode counts
instructions, not cycles: the first figure is a floor, the second an estimate; neither is a
measurement on a board.

    python3 benchmarks/nrf52840_latency.py [--count 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hil.boards import estimated_cpi  # noqa: E402
from hil.scenario import load_scenario  # noqa: E402
from hil.session import BoardSession  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CLOCK_HZ = 64_000_000
TOKENS = 32


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=5, help="32-token sentences to classify")
    args = ap.parse_args()
    scenario = load_scenario("nlu_scenario")
    with tempfile.TemporaryDirectory() as tmp:
        s = BoardSession("nrf52840", model=scenario.model, run_dir=Path(tmp))
        texts = [x.text for x in scenario.load_sentences()]
        picked = [t for t in texts if len(s.oracle.ids(t)) == TOKENS][:args.count]
        if len(picked) < args.count:  # few natural ones: join sentences until 32 pieces
            joined = ""
            for t in texts:
                cand = f"{joined} {t}".strip()
                if len(s.oracle.ids(cand)) > TOKENS:
                    continue
                joined = cand
                if len(s.oracle.ids(joined)) == TOKENS:
                    picked.append(joined)
                    joined = ""
                if len(picked) >= args.count:
                    break
        s.boot()
        rows = []
        try:
            for text in picked:
                ans = s.classify(text)
                s.check_agrees(ans)
                rows.append({"text": text, "tokens": ans.tokens, "instructions": ans.cycles,
                             "unit": ans.unit,
                             "ms_at_1_cpi": round(ans.cycles / CLOCK_HZ * 1e3, 3)})
        finally:
            s.close()
    cpi = estimated_cpi("nrf52840", scenario.model)
    for r in rows:
        r["ms_estimated"] = None if cpi is None else round(r["ms_at_1_cpi"] * cpi, 3)
    worst = max(r["ms_estimated"] or r["ms_at_1_cpi"] for r in rows)
    out = {"board": "nrf52840", "clock_hz": CLOCK_HZ, "tokens": TOKENS, "cpi": cpi,
           "cpi_source": "hil/models/cpi.json (benchmarks/cycle_model.py)" if cpi else None,
           "where": "Renode 1.15.1, instruction-counting DWT", "rows": rows,
           "worst_ms": worst, "target_ms": 100, "met": worst <= 100}
    (RESULTS / "nrf52840_latency.json").write_text(json.dumps(out, indent=2) + "\n")
    for r in rows:
        est = "" if r["ms_estimated"] is None else f", est. {r['ms_estimated']:.1f} ms"
        print(f"{r['tokens']} tokens: {r['instructions']:,} {r['unit']} -> "
              f"{r['ms_at_1_cpi']:.1f} ms at 1 CPI{est}: {r['text'][:60]!r}")
    print(f"worst {worst:.1f} ms (target 100 ms): {'met' if out['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
