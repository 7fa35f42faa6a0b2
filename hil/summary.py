"""The run summary: one JSON document computed from results.jsonl (never from memory), so a resumed
or merged run summarises exactly what is on disk.

Honest numbers (design contracts 4 and 5): every count carries its unit; `latency_ms` is derived
from the device's own count at the board clock and says whether it is `emulated` (QEMU: one
instruction taken as one cycle; Renode: virtual cycles; native: host nanoseconds); the host's
round-trip time is reported separately and is never called board latency. RAM peak = static RAM
from the ELF (.data + .bss, arena included, stack region excluded) + the painted stack's peak.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from hil.firmware import ElfSizes


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p95": None, "max": None, "mean": None}
    a = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)),
            "max": float(a.max()), "mean": float(a.mean())}


def _per_stage(ok: list[dict[str, Any]]) -> list[float]:
    """Median count per stage (embedding, each layer, classifier) over answers that have them."""
    rows = [r["layers"] for r in ok if r.get("layers")]
    if not rows or len({len(x) for x in rows}) != 1:
        return []
    return [float(v) for v in np.median(np.asarray(rows, dtype=np.float64), axis=0)]


def _latency_source(target: str, unit: str) -> str:
    if target == "qemu":
        return "instructions / board clock (QEMU icount; assumes 1 cycle per instruction)"
    if target == "renode":
        return "Renode virtual cycles / board clock"
    if unit.startswith("ns"):
        return "host nanoseconds (native process)"
    return "DWT cycles / board clock"


def summarize(cfg: Any, records: list[dict[str, Any]], *, sizes: ElfSizes | None,
              hello: dict[str, Any], targets: list[dict[str, Any]], wall_s: float,
              processed: int, skipped: int, total: int, error: str | None) -> dict[str, Any]:
    """The summary document (see the module docstring); `cfg` is a hil.runner.RunConfig."""
    ok = [r for r in records if r.get("status") == "ok"]
    errors = [r for r in records if r.get("status") != "ok"]
    labelled = [r for r in ok if r.get("correct") is not None]
    cycles = [float(r["cycles"]) for r in ok if r.get("cycles")]
    unit = ok[0]["unit"] if ok else None
    clock = int(hello.get("clock") or cfg.board.clock_hz)
    emulated = cfg.target in ("qemu", "renode")
    if unit and unit.startswith("ns"):
        lat = [c / 1e6 for c in cycles]
    else:
        lat = [c / clock * 1e3 for c in cycles]
    stack_peak = max((int(r.get("stack") or 0) for r in ok), default=None)
    arena_peak = max((int(r.get("arena") or 0) for r in ok), default=None)
    static_ram = None if sizes is None else sizes.data + sizes.bss
    ram_peak = None if static_ram is None or stack_peak is None else static_ram + stack_peak
    agree = [bool(r.get("agree")) for r in ok]
    ids_checked = [r["ids_match"] for r in ok if r.get("ids_match") is not None]
    error_codes: dict[str, int] = {}
    for r in errors:
        code = (r.get("error") or {}).get("code", r.get("status", "?"))
        error_codes[code] = error_codes.get(code, 0) + 1
    return {
        "board": cfg.board.name,
        "target": cfg.target,
        "model": str(cfg.model_path),
        "model_id": hello.get("model"),
        "scenario": cfg.scenario.name,
        "emulated": emulated,
        "complete": error is None and len(records) == total,
        "error": error,
        "summary": {
            "sentences": len(records),
            "selected": total,
            "ok": len(ok),
            "errors": len(errors),
            "error_codes": error_codes,
            "labelled": len(labelled),
            "accuracy": (sum(bool(r["correct"]) for r in labelled) / len(labelled))
            if labelled else None,
            "agreement": (sum(agree) / len(agree)) if agree else None,
            "disagreements": [r["index"] for r in ok if not r.get("agree")][:50],
            "tokenizer_agreement": (sum(ids_checked) / len(ids_checked)) if ids_checked
            else None,
            "cycles": {**_stats(cycles), "unit": unit,
                       "per_stage_median": _per_stage(ok),
                       "tokenizer_median": _stats([float(r["tokenizer_cycles"]) for r in ok
                                                   if r.get("tokenizer_cycles")])["median"]},
            "latency_ms": {**{k: v for k, v in _stats(lat).items()}, "emulated": emulated,
                           "source": _latency_source(cfg.target, unit or "")},
            "host_round_trip_ms": _stats([float(r["host_ms"]) for r in ok if "host_ms" in r]),
            "tokens": _stats([float(r.get("tokens") or 0) for r in ok]),
            "stack_peak_bytes": stack_peak,
            "arena_peak_bytes": arena_peak,
            "static_ram_bytes": static_ram,
            "ram_peak_bytes": ram_peak,
            "flash_bytes": None if sizes is None else sizes.flash,
            "board_flash_bytes": cfg.board.flash_bytes or None,
            "board_ram_bytes": cfg.board.ram_bytes or None,
        },
        "throughput": {
            "sentences_per_s": (processed / wall_s) if wall_s > 0 and processed else None,
            "wall_s": round(wall_s, 3),
            "processed_this_run": processed,
            "skipped_resumed": skipped,
            "jobs": cfg.jobs,
            "note": "end to end: target boot + streaming + host reference check",
        },
        "firmware": None if sizes is None else sizes.as_dict(),
        "hello": hello,
        "targets": targets,
        "results": str(cfg.out_dir / "results.jsonl"),
        "run_dir": str(cfg.out_dir),
    }


def check_expectations(summary: dict[str, Any], expect: dict[str, float]) -> list[str]:
    """Compare against the scenario's expectations; records the verdicts in the summary and
    returns the names (with numbers) of those that failed."""
    s = summary["summary"]
    actual = {
        "min_accuracy": s["accuracy"],
        "min_agreement": s["agreement"],
        "max_cycles_p95": s["cycles"]["p95"],
        "max_ram_bytes": s["ram_peak_bytes"],
    }
    verdicts: dict[str, Any] = {}
    failed: list[str] = []
    for name, limit in expect.items():
        value = actual.get(name)
        if name == "max_ram_bytes" and s["board_ram_bytes"] is None:
            verdicts[name] = {"limit": limit, "value": None, "ok": None,
                              "note": "not applicable: this board has no RAM limit"}
            continue
        if value is None:
            good = False
        elif name.startswith("min_"):
            good = value >= limit
        else:
            good = value <= limit
        verdicts[name] = {"limit": limit, "value": value, "ok": good}
        if not good:
            failed.append(f"{name}: expected {'>=' if name.startswith('min_') else '<='} "
                          f"{limit:g}, got {'not measured' if value is None else f'{value:g}'}")
    summary["expectations"] = verdicts
    summary["failed"] = failed
    return failed


def write_summary(summary: dict[str, Any], *paths: Path | None) -> None:
    """Write the same JSON to each path (atomically: temp file + rename)."""
    text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    for path in paths:
        if path is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def _model_name(path: str) -> str:
    p = Path(path)
    return p.parent.name if p.name == "model.bin" else p.name


def render_text(summary: dict[str, Any]) -> str:
    """A short human report for the terminal."""
    s = summary["summary"]

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    cyc = s["cycles"]
    lat = s["latency_ms"]
    lines = [
        f"board {summary['board']} on {summary['target']}"
        f"{' (emulated)' if summary['emulated'] else ''}, scenario {summary['scenario']}, "
        f"model {_model_name(summary['model'])}",
        f"  sentences {s['sentences']}/{s['selected']}  errors {s['errors']}  "
        f"agreement {pct(s['agreement'])}  accuracy {pct(s['accuracy'])}",
    ]
    if cyc["median"] is not None:
        lines.append(f"  {cyc['unit']}: median {cyc['median']:.0f}  p95 {cyc['p95']:.0f}  "
                     f"-> latency median {lat['median']:.2f} ms"
                     f"{' (emulated: ' + lat['source'] + ')' if lat['emulated'] else ''}")
    def b(v: int | None) -> str:
        return "n/a" if v is None else f"{v} B"

    lines.append(f"  peaks: stack {b(s['stack_peak_bytes'])}  arena {b(s['arena_peak_bytes'])}  "
                 f"RAM {b(s['ram_peak_bytes'])}"
                 f"{' of ' + b(s['board_ram_bytes']) if s['board_ram_bytes'] else ''}  "
                 f"flash {b(s['flash_bytes'])}"
                 f"{' of ' + b(s['board_flash_bytes']) if s['board_flash_bytes'] else ''}")
    tp = summary["throughput"]
    if tp["sentences_per_s"]:
        lines.append(f"  end to end: {tp['sentences_per_s']:.2f} sentences/s "
                     f"({tp['processed_this_run']} in {tp['wall_s']:.1f} s, jobs {tp['jobs']})")
    for f in summary.get("failed", []):
        lines.append(f"  EXPECTATION FAILED {f}")
    if summary.get("error"):
        lines.append(f"  RUN ERROR: {summary['error']}")
    lines.append(f"  results: {summary['results']}")
    return "\n".join(lines)
