"""What Renode's measurements cost: sentences/s on Renode stm32f4 with nothing, opcode counting,
the guest profiler, and the profiler plus the execution-metrics log (hil.targets.renode_metrics).

Each mode runs the same first N sentences of the default scenario through hil.runner with the
measuring target (RunConfig.target_factory), one after the other on this machine, and writes
benchmarks/results/renode_profile.json and .md: end-to-end sentences/s (boot + streaming + host
check + collecting the files), the slowdown against no measurement, and the size of what each
mode leaves on disk. Every mode must still agree bit for bit with the host reference.

    PYTHONPATH=. python3 benchmarks/renode_profile.py [--limit 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.boards import BOARDS
from hil.runner import RunConfig, run
from hil.scenario import load_scenario, resolve_model
from hil.targets import renode_metrics as rm

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: mode -> (profile, execution_metrics); None = the plain target, no measurement at all
MODES: dict[str, tuple[bool, bool] | None] = {
    # Opcode counting is always on in a Renode run (about 1%); the results file's "none" row
    # was measured before that, with a target that typed no metrics commands at all.
    "opcodes": None, "opcodes+profiler": (True, False),
    "opcodes+profiler+execution metrics": (True, True)}


def one(mode: str, limit: int, out: Path) -> dict[str, Any]:
    """Run `limit` sentences in `mode`; sentences/s, agreement and bytes left on disk."""
    scenario = load_scenario("nlu_scenario")
    how = MODES[mode]
    cfg = RunConfig(board=BOARDS["stm32f4"], target="renode", scenario=scenario,
                    model_path=resolve_model(scenario.model, scenario.path.parent
                                             if scenario.path else None),
                    out_dir=out, limit=limit, profile=bool(how and how[0]),
                    execution_metrics=bool(how and how[1]))
    t0 = time.perf_counter()
    code, summary = run(cfg)
    wall = time.perf_counter() - t0
    merged = rm.merge(out)
    files = [p for p in out.iterdir() if p.suffix in (".folded", ".txt", ".bin", ".json")]
    return {"mode": mode, "exit": code, "sentences": limit, "wall_s": round(wall, 2),
            "sentences_per_s": round(limit / wall, 3),
            "agreement": summary["summary"].get("agreement"),
            "opcodes_counted": merged.get("renode_metrics", {}).get("opcodes", {}).get("counted"),
            "profile_total": merged.get("profile", {}).get("total"),
            "bytes_on_disk": sum(p.stat().st_size for p in files)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=20)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, mode in enumerate(MODES):
            rows.append(one(mode, args.limit, Path(tmp) / f"m{i}"))
            print(json.dumps(rows[-1]))
            shutil.rmtree(Path(tmp) / f"m{i}", ignore_errors=True)
    base = rows[0]["sentences_per_s"]
    for r in rows:
        r["slowdown"] = round(base / r["sentences_per_s"], 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "renode_profile.json").write_text(json.dumps(rows, indent=1) + "\n")
    md = ["| mode | sentences/s | slowdown | agreement | on disk |", "|---|---|---|---|---|"]
    md += [f"| {r['mode']} | {r['sentences_per_s']} | {r['slowdown']}x | {r['agreement']} | "
           f"{r['bytes_on_disk'] / 1e6:.2f} MB |" for r in rows]
    (RESULTS / "renode_profile.md").write_text(
        f"Renode stm32f4, first {args.limit} sentences of nlu_scenario, end to end "
        "(boot + streaming + host check + collecting).\n\n" + "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
