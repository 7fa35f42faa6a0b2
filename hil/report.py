"""Reports from results.jsonl: one analysis, three renderings (HTML, JUnit XML, Markdown).

Why from results.jsonl and not from memory: the file is what a run leaves on disk (design
contract 6), so a killed, resumed, merged or hand-copied run reports exactly like a clean one, and
`hil report` works on a directory copied off a CI machine. summary.json and run.json, when they sit
next to the results, add what records do not carry (ELF sizes, board limits, HELLO, expectations);
without them the report still says everything the records can prove and marks the rest
"not measured".

Honest numbers (contracts 4 and 5): every count keeps the unit label the runner wrote
(`instructions (qemu icount)`, `cycles (renode virtual)`, `ns (host)`, `cycles (dwt, board)`), a
latency derived from an emulated count is called emulated, and probabilities are computed on the
host from the device's int32 logits times the model's `logit_scale` (blob metadata), never by the
device.

Renderings: `render_html` (hil.report_html; self-contained, inline SVG), `render_junit` (one
testcase per sentence and one per expectation; validated against hil/report_junit.xsd by the
tests), `render_markdown` (a GitHub Actions step summary). `compare` puts two runs side by side.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from hil.boards import BOARDS, EMULATED_TARGETS
from hil.runner import latest_in_order, read_results

JUNIT_XSD = Path(__file__).with_name("report_junit.xsd")
WORST_ROWS = 50  # rows in the worst-cases table: enough to act on, small enough to read
# XML 1.0 cannot carry most control characters even escaped; sentences may contain them.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class ReportError(ValueError):
    """The path given is not a results file or a run directory."""


# ---- loading -----------------------------------------------------------------------------------


@dataclass
class RunData:
    """One run as found on disk: its records plus whatever metadata sits beside them."""

    name: str
    results_path: Path
    records: list[dict[str, Any]]
    summary: dict[str, Any] | None = None  # summary.json, when present
    meta: dict[str, Any] = field(default_factory=dict)  # run.json, when present
    labels: list[str] | None = None
    logit_scale: float | None = None  # from the blob's metadata, for host-side probabilities


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def model_info(model_path: str | None) -> tuple[list[str] | None, float | None]:
    """(label names, logit scale) from a model blob's metadata; (None, None) if unreadable."""
    if not model_path:
        return None, None
    path = Path(model_path)
    if not path.is_file():
        return None, None
    try:
        from hil.quant.blob import read_blob

        blob = read_blob(path.read_bytes())
    except Exception:  # noqa: BLE001 - a report must not die on a blob it only reads labels from
        return None, None
    labels = blob.meta.get("labels")
    scale = blob.meta.get("logit_scale")
    return (list(map(str, labels)) if isinstance(labels, list) else None,
            float(scale) if isinstance(scale, int | float) else None)


def load_run(path: str | Path, name: str | None = None) -> RunData:
    """A run directory (results.jsonl inside) or a results .jsonl file."""
    p = Path(path)
    results = p / "results.jsonl" if p.is_dir() else p
    if not results.is_file():
        raise ReportError(f"{p}: expected a run directory with results.jsonl in it, or a "
                          f"results .jsonl file; found neither")
    folder = results.parent
    summary = _read_json(folder / "summary.json")
    meta = _read_json(folder / "run.json") or {}
    model = (summary or {}).get("model") or meta.get("model")
    labels, scale = model_info(model)
    if labels is None:
        labels = _scenario_labels(meta)
    return RunData(name=name or (folder.name if p.is_dir() or results.name == "results.jsonl"
                                 else results.stem),
                   results_path=results, records=latest_in_order(read_results(results)),
                   summary=summary, meta=meta, labels=labels, logit_scale=scale)


def _scenario_labels(meta: dict[str, Any]) -> list[str] | None:
    path = (meta.get("scenario") or {}).get("path")
    if not path or not Path(path).is_file():
        return None
    try:
        from hil.scenario import load_scenario

        return load_scenario(path).labels
    except Exception:  # noqa: BLE001 - labels are a nicety; ids still show
        return None


# ---- analysis ----------------------------------------------------------------------------------


def softmax(logits: list[int], scale: float | None) -> list[float]:
    """Host-side probabilities: softmax(int32 logits x logit_scale). Without a scale the raw
    accumulators are used as they are (flagged by the caller: they are then not calibrated)."""
    if not logits:
        return []
    s = 1.0 if scale is None else scale
    z = [v * s for v in logits]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    total = sum(e)
    return [v / total for v in e]


def _quantile(sorted_vals: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), without numpy."""
    if len(sorted_vals) == 1:
        return sorted_vals[0]
    pos = q * (len(sorted_vals) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def stats(values: list[float]) -> dict[str, float | None]:
    """median / p95 / max / mean, None when there is nothing to describe."""
    if not values:
        return {"median": None, "p95": None, "max": None, "mean": None, "min": None}
    v = sorted(values)
    return {"median": _quantile(v, 0.5), "p95": _quantile(v, 0.95), "max": v[-1],
            "mean": sum(v) / len(v), "min": v[0]}


def stage_names(n: int) -> list[str]:
    """Per-stage names for RESULT `layers=`: embedding first, classifier last (protocol.md)."""
    if n <= 0:
        return []
    if n == 1:
        return ["all"]
    return ["embedding", *[f"layer {i}" for i in range(n - 2)], "classifier"]


@dataclass
class Analysis:
    """Everything the renderings show, computed once from a RunData."""

    run: RunData
    board: str
    target: str
    scenario: str
    model_id: str | None
    emulated: bool
    unit: str | None  # the cycle unit label, verbatim from the records
    latency_source: str
    n: int = 0
    ok: int = 0
    errors: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    labelled: int = 0
    correct: int = 0
    agree: int = 0
    disagree: int = 0
    ids_checked: int = 0
    ids_match: int = 0
    latency_ms: list[float] = field(default_factory=list)
    cycles: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    cycles_tokens: list[tuple[int, float]] = field(default_factory=list)
    stage_mean: list[float] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    memory: dict[str, int | None] = field(default_factory=dict)
    worst: list[dict[str, Any]] = field(default_factory=list)
    expectations: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_error: str | None = None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def agreement(self) -> float | None:
        return self.agree / self.ok if self.ok else None

    @property
    def tokenizer_agreement(self) -> float | None:
        return self.ids_match / self.ids_checked if self.ids_checked else None

    @property
    def labels(self) -> list[str]:
        return self.run.labels or []

    def label_name(self, i: int | None) -> str:
        if i is None:
            return "-"
        names = self.labels
        return names[i] if 0 <= i < len(names) else str(i)

    @property
    def latency(self) -> dict[str, float | None]:
        return stats(self.latency_ms)

    @property
    def cycle_stats(self) -> dict[str, float | None]:
        return stats(self.cycles)


def _clock(run: RunData, board: str) -> int:
    hello = (run.summary or {}).get("hello") or {}
    if hello.get("clock"):
        return int(hello["clock"])
    b = BOARDS.get(board)
    return b.clock_hz if b else 1_000_000_000


def _latency_source(target: str, unit: str | None) -> str:
    if unit and unit.startswith("ns"):
        return "host nanoseconds (native process)"
    if target == "qemu":
        return "emulated: QEMU icount instructions / board clock (1 cycle per instruction assumed)"
    if target == "renode":
        return "emulated: Renode virtual cycles / board clock"
    return "DWT cycles / board clock"


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def analyse(run: RunData) -> Analysis:
    """Count, time and judge every record of a run (see the module docstring)."""
    summ = run.summary or {}
    board = str(_first(summ.get("board"), run.meta.get("board"), "?"))
    target = str(_first(summ.get("target"), run.meta.get("target"), "?"))
    scenario = str(_first(summ.get("scenario"), (run.meta.get("scenario") or {}).get("name"),
                          "?"))
    ok_recs = [r for r in run.records if r.get("status") == "ok"]
    unit = next((r.get("unit") for r in ok_recs if r.get("unit")), None)
    a = Analysis(run=run, board=board, target=target, scenario=scenario,
                 model_id=summ.get("model_id"), emulated=target in EMULATED_TARGETS, unit=unit,
                 latency_source=_latency_source(target, unit), run_error=summ.get("error"))
    clock = _clock(run, board)
    n_labels = len(run.labels or [])
    for r in run.records:
        n_labels = max(n_labels, 1 + max([int(r["pred"])] if r.get("pred") is not None else [-1]),
                       1 + (int(r["label"]) if r.get("label") is not None else -1))
    a.confusion = [[0] * n_labels for _ in range(n_labels)]
    stage_sum: list[float] = []
    stage_n = 0
    for r in run.records:
        a.n += 1
        if r.get("status") != "ok":
            a.errors += 1
            code = str((r.get("error") or {}).get("code") or r.get("status") or "?")
            a.error_codes[code] = a.error_codes.get(code, 0) + 1
            continue
        a.ok += 1
        a.agree += bool(r.get("agree"))
        if r.get("ids_match") is not None:
            a.ids_checked += 1
            a.ids_match += bool(r["ids_match"])
        if r.get("correct") is not None:
            a.labelled += 1
            a.correct += bool(r["correct"])
        if r.get("label") is not None and r.get("pred") is not None:
            a.confusion[int(r["label"])][int(r["pred"])] += 1
        cyc = r.get("cycles")
        if cyc:
            a.cycles.append(float(cyc))
            ms = cyc / 1e6 if str(r.get("unit", "")).startswith("ns") else cyc / clock * 1e3
            a.latency_ms.append(ms)
            a.cycles_tokens.append((int(r.get("tokens") or 0), float(cyc)))
        a.tokens.append(int(r.get("tokens") or 0))
        layers = r.get("layers") or []
        if layers:
            if len(layers) > len(stage_sum):
                stage_sum += [0.0] * (len(layers) - len(stage_sum))
            for i, v in enumerate(layers):
                stage_sum[i] += float(v)
            stage_n += 1
    a.disagree = a.ok - a.agree
    a.stage_mean = [v / stage_n for v in stage_sum] if stage_n else []
    a.memory = _memory(run, ok_recs, board)
    a.worst = _worst(run, a)
    a.expectations = _expectations(run, a)
    return a


def _memory(run: RunData, ok_recs: list[dict[str, Any]], board: str) -> dict[str, int | None]:
    s = (run.summary or {}).get("summary") or {}
    hello = (run.summary or {}).get("hello") or {}
    fw = (run.summary or {}).get("firmware") or {}
    b = BOARDS.get(board)
    return {
        "flash": s.get("flash_bytes"),
        "static_ram": s.get("static_ram_bytes"),
        "stack": max((int(r.get("stack") or 0) for r in ok_recs), default=None),
        "stack_region": fw.get("stack") or None,
        "arena": max((int(r.get("arena") or 0) for r in ok_recs), default=None),
        "arena_capacity": hello.get("arena") or None,
        "ram_peak": s.get("ram_peak_bytes"),
        "board_flash": s.get("board_flash_bytes") or (b.flash_bytes if b else None) or None,
        "board_ram": s.get("board_ram_bytes") or (b.ram_bytes if b else None) or None,
    }


def _worst(run: RunData, a: Analysis) -> list[dict[str, Any]]:
    """Errors first, then disagreements with the reference, then the most confident mistakes."""
    rows: list[tuple[tuple[int, float], dict[str, Any]]] = []
    for r in run.records:
        base = {"index": r.get("index"), "text": r.get("text", ""),
                "label": a.label_name(r.get("label")) if r.get("label") is not None else "-",
                "pred": a.label_name(r.get("pred")) if r.get("pred") is not None else "-",
                "tokens": r.get("tokens"), "cycles": r.get("cycles")}
        if r.get("status") != "ok":
            err = r.get("error") or {}
            rows.append(((0, 0.0), {**base, "kind": str(r.get("status")),
                                    "detail": f"{err.get('code', '?')}: "
                                              f"{str(err.get('reason', ''))[:200]}"}))
            continue
        if not r.get("agree"):
            diff = sum(1 for x, y in zip(r.get("logits") or [], r.get("ref_logits") or [],
                                         strict=False) if x != y)
            rows.append(((1, 0.0), {**base, "kind": "disagree",
                                    "detail": f"{diff} of {len(r.get('logits') or [])} logits "
                                              f"differ from the host reference"}))
            continue
        if r.get("correct") is False:
            p = softmax(r.get("logits") or [], run.logit_scale)
            conf = p[int(r["pred"])] if p and 0 <= int(r["pred"]) < len(p) else 0.0
            rows.append(((2, -conf), {**base, "kind": "misclassified",
                                      "detail": f"p({base['pred']})={conf:.2f} (host softmax)"}))
    rows.sort(key=lambda t: t[0])
    return [r for _, r in rows[:WORST_ROWS]]


def _expectations(run: RunData, a: Analysis) -> dict[str, dict[str, Any]]:
    """The verdicts the run recorded; for a bare results file, evaluate run.json's expectations
    against what the records prove (RAM cannot be proven from records: not measured)."""
    recorded = (run.summary or {}).get("expectations")
    if isinstance(recorded, dict):
        return recorded
    expect = ((run.meta.get("scenario") or {}).get("expect")) or {}
    actual = {"min_accuracy": a.accuracy, "min_agreement": a.agreement,
              "max_cycles_p95": a.cycle_stats["p95"], "max_ram_bytes": None}
    out: dict[str, dict[str, Any]] = {}
    for name, limit in expect.items():
        value = actual.get(name)
        good = None if value is None else (value >= limit if name.startswith("min_")
                                           else value <= limit)
        out[name] = {"limit": limit, "value": value, "ok": good if value is not None else False}
    return out


# ---- formatting helpers ------------------------------------------------------------------------


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def num(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def nbytes(v: int | None) -> str:
    if v is None:
        return "not measured"
    if v >= 1024 * 1024:
        return f"{v / 1024 / 1024:.2f} MiB"
    if v >= 1024:
        return f"{v / 1024:.1f} KiB"
    return f"{v} B"


def headline(a: Analysis) -> list[tuple[str, str]]:
    """The numbers every rendering leads with, as (name, value) pairs; units always attached."""
    lat = a.latency
    cyc = a.cycle_stats
    emu = " (emulated)" if a.emulated else ""
    return [
        ("sentences", f"{a.n} ({a.ok} answered, {a.errors} errors)"),
        ("agreement with integer reference", f"{pct(a.agreement)} ({a.disagree} disagree)"),
        ("accuracy", f"{pct(a.accuracy)} of {a.labelled} labelled"),
        ("tokenizer agreement", pct(a.tokenizer_agreement)),
        (f"{a.unit or 'cycles'} median / p95", f"{num(cyc['median'])} / {num(cyc['p95'])}"),
        (f"latency{emu} median / p95", f"{num(lat['median'], 3)} / {num(lat['p95'], 3)} ms"),
        ("stack / arena peak", f"{nbytes(a.memory.get('stack'))} / "
                               f"{nbytes(a.memory.get('arena'))}"),
    ]


# ---- JUnit -------------------------------------------------------------------------------------


def _x(text: Any) -> str:
    return xml_escape(_XML_BAD.sub("\ufffd", str(text)))


def _xa(text: Any) -> str:
    return quoteattr(_XML_BAD.sub("\ufffd", str(text)))


def render_junit(a: Analysis) -> str:
    """JUnit XML: suite `sentences` (one case per sentence), suite `expectations` (one per
    expectation, plus `run` when the run itself failed).

    A sentence case tests the device contract: it answered (else <error>) and its logits equal the
    host reference bit for bit (else <failure type="disagreement">). A wrong label is the model's
    business, judged by the accuracy expectation; it is noted in the case's system-out so a CI
    dashboard can still show it without 16% of every run turning red.
    """
    cls = f"hil.{a.board}.{a.target}.{a.scenario}"
    cases: list[str] = []
    fails = errs = 0
    for r in a.run.records:
        text = str(r.get("text", ""))
        name = f"#{r.get('index')} {text[:80]}"
        secs = (r.get("host_ms") or 0) / 1e3
        body = ""
        if r.get("status") != "ok":
            errs += 1
            err = r.get("error") or {}
            body = (f"<error type={_xa(err.get('code', r.get('status')))} "
                    f"message={_xa(str(err.get('reason', ''))[:500])}>"
                    f"{_x(err.get('reason', ''))}</error>")
        elif not r.get("agree"):
            fails += 1
            body = (f"<failure type=\"disagreement\" message=\"device logits differ from the "
                    f"host integer reference\">device:    {_x(r.get('logits'))}\n"
                    f"reference: {_x(r.get('ref_logits'))}</failure>")
        if r.get("status") == "ok":
            verdict = ("" if r.get("correct") is None else
                       "correct" if r.get("correct") else "MISCLASSIFIED")
            body += (f"<system-out>pred={_x(a.label_name(r.get('pred')))} "
                     f"label={_x(a.label_name(r.get('label')))} {verdict} "
                     f"tokens={r.get('tokens')} cycles={r.get('cycles')} "
                     f"[{_x(r.get('unit', ''))}] stack={r.get('stack')} "
                     f"arena={r.get('arena')}</system-out>")
        cases.append(f"    <testcase classname={_xa(cls)} name={_xa(name)} "
                     f"time=\"{secs:.6f}\">{body}</testcase>")
    exp_cases: list[str] = []
    efails = eskips = eerrs = 0
    for name, v in a.expectations.items():
        value = v.get("value")
        msg = f"{name}: limit {v.get('limit')}, got {'not measured' if value is None else value}"
        if v.get("ok") is None:
            eskips += 1
            body = f"<skipped message={_xa(v.get('note') or msg)}/>"
        elif not v.get("ok"):
            efails += 1
            body = f"<failure type=\"expectation\" message={_xa(msg)}>{_x(msg)}</failure>"
        else:
            body = f"<system-out>{_x(msg)}</system-out>"
        exp_cases.append(f"    <testcase classname={_xa(cls)} name={_xa(name)} time=\"0\">"
                         f"{body}</testcase>")
    if a.run_error:
        eerrs += 1
        exp_cases.append(f"    <testcase classname={_xa(cls)} name=\"run\" time=\"0\">"
                         f"<error type=\"run\" message={_xa(a.run_error[:500])}>"
                         f"{_x(a.run_error)}</error></testcase>")
    props = "".join(f"<property name={_xa(k)} value={_xa(v)}/>" for k, v in (
        ("board", a.board), ("target", a.target), ("scenario", a.scenario),
        ("model_id", a.model_id or ""), ("emulated", str(a.emulated).lower()),
        ("cycle_unit", a.unit or ""), ("latency_source", a.latency_source)))
    wall = ((a.run.summary or {}).get("throughput") or {}).get("wall_s") or 0
    total_t = sum((r.get("host_ms") or 0) for r in a.run.records) / 1e3
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<testsuites name={_xa('hil ' + a.run.name)} tests=\"{len(cases) + len(exp_cases)}\" "
        f"failures=\"{fails + efails}\" errors=\"{errs + eerrs}\" time=\"{float(wall):.3f}\">",
        f"  <testsuite name=\"sentences\" tests=\"{len(cases)}\" failures=\"{fails}\" "
        f"errors=\"{errs}\" skipped=\"0\" time=\"{total_t:.3f}\">",
        f"    <properties>{props}</properties>",
        *cases,
        "  </testsuite>",
        f"  <testsuite name=\"expectations\" tests=\"{len(exp_cases)}\" failures=\"{efails}\" "
        f"errors=\"{eerrs}\" skipped=\"{eskips}\" time=\"0\">",
        *exp_cases,
        "  </testsuite>",
        "</testsuites>",
        "",
    ])


# ---- Markdown ----------------------------------------------------------------------------------


def _md(text: Any) -> str:
    """A table cell: pipes escaped, newlines flattened, long texts cut."""
    t = str(text).replace("|", "\\|").replace("\n", " ").replace("\r", " ")
    return t if len(t) <= 90 else t[:87] + "..."


def render_markdown(a: Analysis) -> str:
    """A step summary: verdict first, then the numbers, then what went wrong."""
    failed = [k for k, v in a.expectations.items() if v.get("ok") is False]
    ok = not failed and not a.run_error and a.errors == 0 and a.disagree == 0
    verdict = "PASS" if ok else "FAIL"
    emu = " (emulated)" if a.emulated else ""
    lines = [f"## hil run {a.run.name}: {verdict}", "",
             f"board **{a.board}** on **{a.target}**{emu}, scenario **{a.scenario}**, "
             f"model `{a.model_id or '?'}`", "",
             "| measure | value |", "|---|---|"]
    lines += [f"| {_md(k)} | {_md(v)} |" for k, v in headline(a)]
    lines += ["", f"Latency source: {a.latency_source}.", ""]
    if a.expectations:
        lines += ["| expectation | limit | value | verdict |", "|---|---|---|---|"]
        for name, v in a.expectations.items():
            mark = {True: "pass", False: "**FAIL**", None: "n/a"}[v.get("ok")]
            val = v.get("value")
            lines.append(f"| {name} | {v.get('limit')} | "
                         f"{'not measured' if val is None else f'{val:g}'} | {mark} |")
        lines.append("")
    if a.error_codes:
        lines.append("Errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(a.error_codes.items()))
                     + "")
        lines.append("")
    if a.run_error:
        lines += ["Run error:", "```", a.run_error.strip()[:2000], "```", ""]
    if a.worst:
        lines += [f"### Worst cases (first {min(10, len(a.worst))} of {len(a.worst)})", "",
                  "| # | kind | text | label | predicted | detail |", "|---|---|---|---|---|---|"]
        for w in a.worst[:10]:
            lines.append(f"| {w['index']} | {w['kind']} | {_md(w['text'])} | {_md(w['label'])} "
                         f"| {_md(w['pred'])} | {_md(w['detail'])} |")
        lines.append("")
    return "\n".join(lines)


# ---- comparing two runs ------------------------------------------------------------------------


def compare_rows(a: Analysis, b: Analysis) -> list[tuple[str, str, str, str]]:
    """(measure, A, B, delta) rows; a delta is B - A in the measure's own unit."""
    def d(x: float | None, y: float | None, fmt: str) -> str:
        if x is None or y is None:
            return "n/a"
        return f"{y - x:+{fmt}}"

    la, lb = a.latency, b.latency
    ca, cb = a.cycle_stats, b.cycle_stats
    same_unit = a.unit == b.unit
    rows = [
        ("sentences", str(a.n), str(b.n), f"{b.n - a.n:+d}"),
        ("errors", str(a.errors), str(b.errors), f"{b.errors - a.errors:+d}"),
        ("agreement", pct(a.agreement), pct(b.agreement),
         d(a.agreement and 100 * a.agreement, b.agreement and 100 * b.agreement, ".1f") + " pp"),
        ("accuracy", pct(a.accuracy), pct(b.accuracy),
         d(None if a.accuracy is None else 100 * a.accuracy,
           None if b.accuracy is None else 100 * b.accuracy, ".1f") + " pp"),
        ("latency median (ms)", num(la["median"], 3), num(lb["median"], 3),
         d(la["median"], lb["median"], ".3f")),
        ("latency p95 (ms)", num(la["p95"], 3), num(lb["p95"], 3), d(la["p95"], lb["p95"], ".3f")),
        (f"cycles median [{a.unit}] vs [{b.unit}]" if not same_unit else
         f"{a.unit or 'cycles'} median", num(ca["median"]), num(cb["median"]),
         d(ca["median"], cb["median"], ",.0f") if same_unit else "different units"),
        ("stack peak (B)", num(a.memory.get("stack")), num(b.memory.get("stack")),
         d(a.memory.get("stack"), b.memory.get("stack"), ",.0f")),
        ("arena peak (B)", num(a.memory.get("arena")), num(b.memory.get("arena")),
         d(a.memory.get("arena"), b.memory.get("arena"), ",.0f")),
        ("flash (B)", num(a.memory.get("flash")), num(b.memory.get("flash")),
         d(a.memory.get("flash"), b.memory.get("flash"), ",.0f")),
    ]
    return rows


def changed_predictions(a: Analysis, b: Analysis) -> list[dict[str, Any]]:
    """Sentences (same index and text in both runs) whose predicted label differs."""
    by_a = {r["index"]: r for r in a.run.records if r.get("status") == "ok"}
    out = []
    for r in b.run.records:
        old = by_a.get(r["index"])
        if old is None or r.get("status") != "ok" or old.get("text") != r.get("text"):
            continue
        if old.get("pred") != r.get("pred"):
            out.append({"index": r["index"], "text": r.get("text", ""),
                        "label": a.label_name(r.get("label")) if r.get("label") is not None
                        else "-", "a": a.label_name(old.get("pred")),
                        "b": b.label_name(r.get("pred"))})
    return out


def render_compare_markdown(a: Analysis, b: Analysis) -> str:
    lines = [f"## hil compare: A = {a.run.name} ({a.board}/{a.target}), "
             f"B = {b.run.name} ({b.board}/{b.target})", "",
             "| measure | A | B | B - A |", "|---|---|---|---|"]
    lines += [f"| {_md(m)} | {_md(x)} | {_md(y)} | {_md(dd)} |" for m, x, y, dd in
              compare_rows(a, b)]
    changed = changed_predictions(a, b)
    lines += ["", f"{len(changed)} sentence(s) changed their predicted label.", ""]
    return "\n".join(lines)


# ---- writing -----------------------------------------------------------------------------------


def write_reports(run_paths: list[str | Path], *, html: Path | None = None,
                  junit: Path | None = None, markdown: Path | None = None) -> list[Path]:
    """Write the requested files for one run (or a comparison of two); returns what was written.
    JUnit describes one run (the last given: the new one in `hil report OLD NEW`)."""
    from hil.report_html import render_compare_html, render_html

    runs = [analyse(load_run(p)) for p in run_paths]
    written = []
    if html is not None:
        text = render_html(runs[0]) if len(runs) == 1 else render_compare_html(runs[0], runs[1])
        _write(html, text)
        written.append(html)
    if junit is not None:
        _write(junit, render_junit(runs[-1]))
        written.append(junit)
    if markdown is not None:
        text = render_markdown(runs[0]) if len(runs) == 1 else render_compare_markdown(*runs[:2])
        _write(markdown, text)
        written.append(markdown)
    return written


def write_run_reports(out_dir: Path) -> list[Path]:
    """The three reports beside a run's results (what `hil run` writes when it ends)."""
    return write_reports([out_dir], html=out_dir / "report.html", junit=out_dir / "junit.xml",
                         markdown=out_dir / "summary.md")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
