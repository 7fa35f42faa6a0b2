"""Reports from results.jsonl: the analysis of hil.results, rendered as JUnit XML and Markdown
(the HTML rendering is hil.report_html, which builds on this module; the files are written by
hil.report_cli, so no two report modules import each other).

Why from results.jsonl and not from memory: the file is what a run leaves on disk (docs/design.md,
contract 6), so a killed, resumed, merged or hand-copied run reports exactly like a clean one, and
`hil report` works on a directory copied off a CI machine. summary.json and run.json, when they sit
next to the results, add what records do not carry (ELF sizes, board limits, HELLO, expectations);
without them the report still says everything the records can prove and marks the rest
"not measured".

Honest numbers (docs/design.md, contracts 4 and 5): every count keeps the unit label the runner
wrote (`instructions (qemu icount)`, `instructions (renode)`, `ns (host)`, `cycles (dwt, board)`),
a latency derived from an emulated count is called emulated, and probabilities are computed on the
host from the device's int32 logits times the model's `logit_scale` (blob metadata), never by the
device.

Renderings: `render_html` (hil.report_html; self-contained, inline SVG), `render_junit` (one
testcase per sentence and one per expectation; validated against hil/report_junit.xsd by the
tests), `render_markdown` (a GitHub Actions step summary). `compare` puts two runs side by side.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from hil.results import (  # noqa: F401 - re-exported: the renderings' vocabulary
    WORST_ROWS,  # noqa: F401
    Analysis,
    ReportError,
    RunData,
    analyse,
    load_run,
    softmax,
    stage_names,
    stats,
)

JUNIT_XSD = Path(__file__).with_name("report_junit.xsd")
# XML 1.0 cannot carry most control characters even escaped; sentences may contain them.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


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
        (f"latency{' (estimated)' if 'estimated:' in a.latency_source else emu} median / p95",
         f"{num(lat['median'], 3)} / {num(lat['p95'], 3)} ms" if lat["median"] is not None
         else "not estimated (instructions, no cycles-per-instruction figure)"),
        ("stack / arena peak", f"{nbytes(a.memory.get('stack'))} / "
                               f"{nbytes(a.memory.get('arena'))}"),
    ]


# ---- JUnit -------------------------------------------------------------------------------------


def _x(text: Any) -> str:
    return xml_escape(_XML_BAD.sub("\ufffd", str(text)))


def _xa(text: Any) -> str:
    return quoteattr(_XML_BAD.sub("\ufffd", str(text)))


def _sentence_case(a: Analysis, r: dict[str, Any], cls: str,
                   misclassified_fail: bool) -> tuple[str, str]:
    """One sentence's <testcase> and its kind: "", "error" or "failure"."""
    text = str(r.get("text", ""))
    name = f"#{r.get('index')} {text[:80]}"
    secs = (r.get("host_ms") or 0) / 1e3
    body, kind = "", ""
    if r.get("status") != "ok":
        kind = "error"
        err = r.get("error") or {}
        body = (f"<error type={_xa(err.get('code', r.get('status')))} "
                f"message={_xa(str(err.get('reason', ''))[:500])}>"
                f"{_x(err.get('reason', ''))}</error>")
    elif not r.get("agree"):
        kind = "failure"
        body = (f"<failure type=\"disagreement\" message=\"device logits differ from the "
                f"host integer reference\">device:    {_x(r.get('logits'))}\n"
                f"reference: {_x(r.get('ref_logits'))}</failure>")
    elif misclassified_fail and r.get("correct") is False:
        kind = "failure"
        msg = (f"expected {a.label_name(r.get('label'))}, the device said "
               f"{a.label_name(r.get('pred'))}")
        body = f"<failure type=\"misclassified\" message={_xa(msg)}>{_x(msg)}</failure>"
    if r.get("status") == "ok":
        verdict = ("" if r.get("correct") is None else
                   "correct" if r.get("correct") else "MISCLASSIFIED")
        body += (f"<system-out>pred={_x(a.label_name(r.get('pred')))} "
                 f"label={_x(a.label_name(r.get('label')))} {verdict} "
                 f"tokens={r.get('tokens')} cycles={r.get('cycles')} "
                 f"[{_x(r.get('unit', ''))}] stack={r.get('stack')} "
                 f"arena={r.get('arena')}</system-out>")
    return (f"    <testcase classname={_xa(cls)} name={_xa(name)} "
            f"time=\"{secs:.6f}\">{body}</testcase>"), kind


def fmt_value(v: Any) -> str:
    """A measured value as people read it: integers with separators, fractions to 4 places
    (never `819885.3999999999`)."""
    if v is None:
        return "not measured"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.4f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.1f}"


def render_junit(a: Analysis, misclassified_fail: bool = False) -> str:
    """JUnit XML: suite `sentences` (one case per sentence), suite `expectations` (one per
    expectation, plus `run` when the run itself failed).

    A sentence case tests the device contract: it answered (else <error>) and its logits equal the
    host reference bit for bit (else <failure type="disagreement">). A wrong label is the model's
    business, judged by the accuracy expectation; it is noted in the case's system-out so a CI
    dashboard can still show it without 16% of every run turning red, unless
    `misclassified_fail` (`hil report --junit-misclassified-fail`) makes it a failure.
    """
    cls = f"hil.{a.board}.{a.target}.{a.scenario}"
    cases: list[str] = []
    fails = errs = 0
    for r in a.run.records:
        case, kind = _sentence_case(a, r, cls, misclassified_fail)
        cases.append(case)
        fails += kind == "failure"
        errs += kind == "error"
    exp_cases: list[str] = []
    efails = eskips = eerrs = 0
    for name, v in a.expectations.items():
        value = v.get("value")
        msg = f"{name}: limit {fmt_value(v.get('limit'))}, got {fmt_value(value)}"
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


def per_class(a: Analysis) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per label from the confusion matrix (labelled, answered
    sentences), then the macro and weighted averages, as sklearn's classification_report and
    STM32Cube.AI's validation show them. A class nobody predicted has precision None."""
    rows: list[dict[str, Any]] = []
    m = a.confusion
    for i in range(len(m)):
        support = sum(m[i])
        predicted = sum(row[i] for row in m)
        if not support and not predicted:
            continue
        tp = m[i][i]
        prec = tp / predicted if predicted else None
        rec = tp / support if support else None
        f1 = (2 * prec * rec / (prec + rec) if prec and rec else 0.0) \
            if prec is not None and rec is not None else None
        rows.append({"label": a.label_name(i), "precision": prec, "recall": rec, "f1": f1,
                     "support": support})
    total = sum(r["support"] for r in rows)
    for name, weight in (("macro avg", lambda r: 1), ("weighted avg", lambda r: r["support"])):
        agg: dict[str, Any] = {"label": name, "support": total}
        for key in ("precision", "recall", "f1"):
            vals = [(r[key], weight(r)) for r in rows if r[key] is not None and r["support"]]
            wsum = sum(w for _, w in vals)
            agg[key] = sum(v * w for v, w in vals) / wsum if wsum else None
        rows.append(agg)
    return rows


def verdict_reasons(a: Analysis) -> list[str]:
    """Why a run is not a pass, each in one line; empty = PASS. A run can fail with every
    expectation met (interrupted, sentences unanswered, logits differing): this says so first."""
    why = []
    if a.run_error:
        why.append(f"the run stopped: {a.run_error.strip().splitlines()[0][:160]}")
    selected = ((a.run.summary or {}).get("summary") or {}).get("selected")
    if selected is not None and a.n < int(selected):
        why.append(f"{int(selected) - a.n} of {selected} selected sentences have no record "
                   f"(continue with `hil run --resume`)")
    if a.errors:
        why.append(f"{a.errors} sentence(s) not answered: "
                   + ", ".join(f"{k} x{v}" for k, v in sorted(a.error_codes.items())))
    if a.disagree:
        why.append(f"{a.disagree} answer(s) differ from the host integer reference")
    why += [f"expectation {k} not met: limit {fmt_value(v.get('limit'))}, got "
            f"{fmt_value(v.get('value'))}" for k, v in a.expectations.items()
            if v.get("ok") is False]
    return why


def render_markdown(a: Analysis) -> str:
    """A step summary: verdict first (and why, when it is not a pass), then the numbers, then
    the classes, then what went wrong."""
    why = verdict_reasons(a)
    verdict = "FAIL" if why else "PASS"
    emu = " (emulated)" if a.emulated else ""
    lines = [f"## hil run {a.run.name}: {verdict}", ""]
    lines += [f"- **{w}**" for w in why] + ([""] if why else [])
    warned = (a.run.summary or {}).get("warnings") or []  # the board's, e.g. a short arena
    lines += [f"- the board warned: {w}" for w in warned] + ([""] if warned else [])
    lines += [
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
            lines.append(f"| {name} | {fmt_value(v.get('limit'))} | {fmt_value(val)} | "
                         f"{mark} |")
        lines.append("")
    classes = per_class(a)
    if classes:
        lines += ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [f"| {_md(c['label'])} | {pct(c['precision'])} | {pct(c['recall'])} | "
                  f"{pct(c['f1'])} | {c['support']} |" for c in classes]
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


# ---- thresholds on a comparison ----------------------------------------------------------------

_RULE_RE = re.compile(r"^\s*([a-z_.0-9]+)\s*([<>])\s*([+-]?\d+(?:\.\d+)?)\s*(pt|%)?\s*$")


def _measure(a: Analysis, name: str) -> float | None:
    """One comparable number of a run, by the name `--fail-on` uses."""
    values: dict[str, Any] = {
        "accuracy": a.accuracy, "agreement": a.agreement, "errors": a.errors,
        "cycles.median": a.cycle_stats["median"], "cycles.p95": a.cycle_stats["p95"],
        "latency.median": a.latency["median"], "latency.p95": a.latency["p95"],
        "stack": a.memory.get("stack"), "arena": a.memory.get("arena"),
        "flash": a.memory.get("flash"),
    }
    if name not in values:
        raise ValueError(f"unknown measure {name!r} in --fail-on; measures: "
                         f"{', '.join(values)}")
    v = values[name]
    return None if v is None else float(v)


def check_thresholds(a: Analysis, b: Analysis, spec: str) -> list[str]:
    """`--fail-on "accuracy<-0.5pt, cycles.p95>+5%, errors>0"`: the rules B crossed against A.

    A rule is MEASURE OP LIMIT[UNIT]: the change B - A in percentage points (`pt`, for the
    fractions accuracy and agreement), in percent of A (`%`), or in the measure's own unit
    (nothing). `<` fails when the change is below the limit, `>` when above, as twister's and
    pytest-benchmark's compare thresholds do. A measure missing on either side fails its rule:
    a threshold cannot pass on a number nobody took."""
    crossed = []
    for rule in filter(str.strip, spec.split(",")):
        m = _RULE_RE.match(rule)
        if m is None:
            raise ValueError(f"--fail-on rule {rule.strip()!r}: expected MEASURE<LIMIT or "
                             f"MEASURE>LIMIT with an optional pt or % unit, e.g. "
                             f"accuracy<-0.5pt or cycles.p95>+5%")
        name, op, limit, unit = m.group(1), m.group(2), float(m.group(3)), m.group(4) or ""
        x, y = _measure(a, name), _measure(b, name)
        if x is None or y is None:
            crossed.append(f"{rule.strip()}: {name} not measured in "
                           f"{'A' if x is None else 'B'}")
            continue
        if unit == "pt":
            change, shown = (y - x) * 100, f"{(y - x) * 100:+.2f} pt"
        elif unit == "%":
            change = (y - x) / x * 100 if x else math.inf * (1 if y > x else -1 if y < x else 0)
            shown = f"{change:+.2f}%"
        else:
            change, shown = y - x, f"{y - x:+,g}"
        if (op == "<" and change < limit) or (op == ">" and change > limit):
            crossed.append(f"{rule.strip()}: {name} changed {shown} ({fmt_value(x)} -> "
                           f"{fmt_value(y)})")
    return crossed
