"""The run summary: one JSON document computed from results.jsonl (never from memory), so a resumed
or merged run summarises exactly what is on disk.

Honest numbers (docs/design.md, contracts 4 and 5): every count carries its unit; `latency_ms` is
derived from the device's own count at the board clock and says whether it is `emulated` (QEMU: one
instruction taken as one cycle; Renode: virtual cycles; native: host nanoseconds); the host's
round-trip time is reported separately and is never called board latency. RAM peak = static RAM
from the ELF (.data + .bss, arena included, stack region excluded) + the painted stack's peak.
"provenance" (hil.provenance.collect) says which checkout, tools, host and model made the numbers,
so two summaries can be told comparable or not without asking whoever ran them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hil.errors import EXIT_EXPECTATIONS, EXIT_OK, EXIT_RUN_ERROR, exit_code_of
from hil.firmware import ElfSizes
from hil.provenance import collect as collect_provenance
from hil.results import RunData, analyse, is_final, stats
from hil.scenario import judge_expectations


def summarize(cfg: Any, records: list[dict[str, Any]], *, sizes: ElfSizes | None,
              hello: dict[str, Any], targets: list[dict[str, Any]], wall_s: float,
              processed: int, skipped: int, total: int, error: str | None,
              answered: int | None = None) -> dict[str, Any]:
    """The summary document (see the module docstring); `cfg` is a hil.runner.RunConfig. The
    numbers come from hil.results.analyse, the same analysis the reports use. Throughput counts
    the sentences answered in this run (`answered`), not those attempted: a run that timed out
    on everything must not claim a high rate."""
    answered = processed if answered is None else answered
    so_far = {"board": cfg.board.name, "target": cfg.target, "scenario": cfg.scenario.name,
              "hello": hello, "error": error, "model": str(cfg.model_path)}
    a = analyse(RunData(name=cfg.out_dir.name, results_path=cfg.out_dir / "results.jsonl",
                        records=records, summary=so_far))
    cyc, lat = a.cycle_stats, a.latency
    static_ram = None if sizes is None else sizes.data + sizes.bss
    stack_peak, arena_peak = a.memory["stack"], a.memory["arena"]
    ram_peak = None if static_ram is None or stack_peak is None else static_ram + stack_peak
    return {
        "board": cfg.board.name,
        "target": cfg.target,
        "model": str(cfg.model_path),
        "model_id": hello.get("model"),
        "scenario": cfg.scenario.name,
        "emulated": a.emulated,
        "complete": error is None and len(records) == total,
        "error": error,
        "summary": {
            "sentences": a.n, "selected": total, "ok": a.ok, "errors": a.errors,
            "error_codes": a.error_codes, "labelled": a.labelled, "accuracy": a.accuracy,
            "agreement": a.agreement, "disagreements": a.disagreements[:50],
            "tokenizer_agreement": a.tokenizer_agreement,
            "cycles": {**cyc, "unit": a.unit, "per_stage_median": a.stage_median,
                       "tokenizer_median": stats(a.tokenizer_cycles)["median"]},
            "latency_ms": {**lat, "emulated": a.emulated, "source": a.latency_source},
            "host_round_trip_ms": stats(a.host_ms),
            "tokens": stats([float(x) for x in a.tokens]),
            "stack_peak_bytes": stack_peak,
            "arena_peak_bytes": arena_peak,
            "static_ram_bytes": static_ram,
            "ram_peak_bytes": ram_peak,
            "flash_bytes": None if sizes is None else sizes.flash,
            "board_flash_bytes": cfg.board.flash_bytes or None,
            "board_ram_bytes": cfg.board.ram_bytes or None,
        },
        "throughput": {
            "sentences_per_s": (answered / wall_s) if wall_s > 0 and answered else None,
            "answered_this_run": answered,
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
        "provenance": collect_provenance(cfg.model_path, hello.get("model")),
    }


def check_expectations(summary: dict[str, Any], expect: dict[str, float]) -> list[str]:
    """Judge the scenario's expectations (hil.scenario.judge_expectations); records the verdicts
    in the summary and returns the failures, with numbers."""
    s = summary["summary"]
    actual = {"min_accuracy": s["accuracy"], "min_agreement": s["agreement"],
              "max_cycles_p95": s["cycles"]["p95"], "max_ram_bytes": s["ram_peak_bytes"]}
    verdicts, failed = judge_expectations(expect, actual,
                                          ram_limited=s["board_ram_bytes"] is not None)
    summary["expectations"] = verdicts
    summary["failed"] = failed
    return failed


def open_and_refused(records: list[dict[str, Any]],
                     wanted: set[int]) -> tuple[list[int], list[dict[str, Any]]]:
    """(selected sentences with no final answer, records the device or host refused for good)."""
    final = {int(r["index"]): r for r in records if is_final(r)}
    return (sorted(wanted - set(final)),
            [r for i, r in sorted(final.items()) if r["status"] != "ok"])


def incomplete_text(out_dir: Path, records: list[dict[str, Any]], unanswered: list[int]) -> str:
    """Why the run is not complete, by cause, and how to finish it."""
    by_index = {int(r["index"]): r for r in records}
    causes: dict[str, int] = {}
    for i in unanswered:
        code = str((by_index.get(i, {}).get("error") or {}).get("code") or "never asked")
        causes[code] = causes.get(code, 0) + 1
    return (f"{len(unanswered)} selected sentence(s) unanswered ("
            f"{', '.join(f'{k} {v}' for k, v in sorted(causes.items()))}; first "
            f"{', '.join(f'#{i}' for i in unanswered[:10])}); `hil run --resume {out_dir}` "
            f"asks them again")


def refused_text(refused: list[dict[str, Any]], total: int) -> str:
    """The expectation every run has: each selected sentence gets an answer, not a refusal."""
    codes: dict[str, int] = {}
    for r in refused:
        code = str((r.get("error") or {}).get("code"))
        codes[code] = codes.get(code, 0) + 1
    return (f"answered: {len(refused)} of {total} sentences refused ("
            f"{', '.join(f'{k} {v}' for k, v in sorted(codes.items()))}; first "
            f"{', '.join('#' + str(r['index']) for r in refused[:10])})")


def verdict(errors: list[BaseException], unanswered: list[int], failed: list[str]) -> int:
    """The exit code (README, "Exit codes"): a run error's own code (3, or 2 for a missing
    tool); 3 when any selected sentence is unanswered (timeout, fault, link damage, never sent);
    1 when an expectation failed or a sentence was refused (TOO_LONG, BAD_TEXT); else 0."""
    if errors:
        return max(exit_code_of(e) for e in errors if exit_code_of(e) != EXIT_OK)
    if unanswered:
        return EXIT_RUN_ERROR
    return EXIT_EXPECTATIONS if failed else EXIT_OK


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
        est = lat["source"].startswith(("estimated", "emulated: estimated"))
        shown = ("-> no time estimate (" + lat["source"].split(": ", 1)[-1] + ")"
                 if lat["median"] is None else
                 f"-> latency median {'≈ ' if est else ''}{lat['median']:.2f} ms"
                 f"{' (' + lat['source'] + ')' if lat['emulated'] else ''}")
        lines.append(f"  {cyc['unit']}: median {cyc['median']:.0f}  p95 {cyc['p95']:.0f}  "
                     + shown)
    def b(v: int | None) -> str:
        return "n/a" if v is None else f"{v} B"

    lines.append(f"  peaks: stack {b(s['stack_peak_bytes'])}  arena {b(s['arena_peak_bytes'])}  "
                 f"RAM peak {b(s['ram_peak_bytes'])} (data+bss+stack used)"
                 f"{' of ' + b(s['board_ram_bytes']) if s['board_ram_bytes'] else ''}  "
                 f"flash {b(s['flash_bytes'])}"
                 f"{' of ' + b(s['board_flash_bytes']) if s['board_flash_bytes'] else ''}")
    tp = summary["throughput"]
    if tp["sentences_per_s"]:
        lines.append(f"  end to end: {tp['sentences_per_s']:.2f} sentences/s "
                     f"({tp.get('answered_this_run', tp['processed_this_run'])} answered in "
                     f"{tp['wall_s']:.1f} s, jobs {tp['jobs']})")
    for f in summary.get("failed", []):
        lines.append(f"  EXPECTATION FAILED {f}")
    if summary.get("error"):
        lines.append(f"  RUN ERROR: {summary['error']}")
    lines.append(f"  results: {summary['results']}")
    return "\n".join(lines)
