"""results.jsonl and what it proves: the one reader, writer and merge, and the one analysis.

Why one module: every number a run reports (summary.json, the HTML, JUnit and Markdown reports,
the console's tallies) is computed from the records on disk, never from memory, so a killed,
resumed, merged or hand-copied run reports exactly like a clean one (docs/design.md, contract 6).
Reading, merging and analysing them in one place is what keeps two renderings from ever telling
two stories: there is one `stats`, one latency wording (the target's), and one judgement of the
expectations.

The format: one JSON object per line, appended and fsync'd as each answer arrives. Every record
has `index` (the sentence's position in the scenario: the key for resume, shards and merge
order), `text`, `label`, `status` (`ok`; `error` = refused for good, by the device or, for text
that cannot be sent, by the host; `timeout` = no answer or link damage, asked again on resume)
and, when ok, the judged answer (hil.session.Answer.record). Torn tails: repair_journal.
Data flows one way: this module imports boards, targets (their facts) and the blob reader.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.boards import BOARDS
from hil.errors import UsageError
from hil.oracle import softmax  # the one host softmax
from hil.scenario import judge_expectations
from hil.targets import TARGETS

WORST_ROWS = 50  # rows in the worst-cases table: enough to act on, small enough to read

# ---- the file ----------------------------------------------------------------------------------
# Error codes that mean the request or its answer was damaged on the link, not refused by the
# device: such a record is not final (docs/design.md, contract 6), so --resume asks it again.
LINK_DAMAGE_CODES = ("BAD_FRAME", "CRC", "TIMEOUT", "FAULT", "LOST")


def read_results(path: Path) -> list[dict[str, Any]]:
    """All complete records; a torn or unreadable line is skipped here (repair_journal reports
    and removes a torn tail before a resume appends)."""
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "index" in rec:
                out.append(rec)
    return out


def is_final(rec: dict[str, Any]) -> bool:
    """A device's own final answer: a result, or a refusal that is not link damage. A BAD_FRAME
    'error' written by an older hil is link damage too, so it is asked again."""
    if rec.get("status") == "ok":
        return True
    return rec.get("status") == "error" and \
        str((rec.get("error") or {}).get("code")) not in LINK_DAMAGE_CODES


def finished(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """index -> last final record (is_final). Timeouts and link damage are not: resume retries."""
    return {int(rec["index"]): rec for rec in records if is_final(rec)}


def repair_journal(path: Path) -> tuple[bytes, int]:
    """Cut a torn last line (a write killed half way: no newline, or not JSON) off results.jsonl,
    so the next append starts on a line of its own instead of gluing onto the fragment and
    silently losing both. Returns (the torn bytes cut, whole lines that do not parse)."""
    data = path.read_bytes() if path.is_file() else b""
    cut = data.rfind(b"\n", 0, len(data) - 1 if data.endswith(b"\n") else len(data)) + 1
    torn = data[cut:]
    if torn and (not torn.endswith(b"\n") or not _parses(torn)):
        with open(path, "r+b") as f:
            f.truncate(cut)
            os.fsync(f.fileno())
        data = data[:cut]
    else:
        torn = b""
    return torn, sum(1 for line in data.splitlines() if line.strip() and not _parses(line))


def _parses(line: bytes) -> bool:
    """Whether one journal line is a whole JSON record."""
    try:
        return isinstance(json.loads(line), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def encode_record(record: dict[str, Any]) -> bytes:
    """One journal line. Text that is not valid Unicode (a lone surrogate from the scenario) is
    written \\u-escaped instead of failing the write and, with it, the whole run."""
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")


class ResultsWriter:
    """Append-only, one JSON line per result: the whole line in one write(2) on an O_APPEND
    descriptor, then fsync, before the next request; a crash can tear at most the last line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, record: dict[str, Any]) -> None:
        data = encode_record(record)
        with self._lock:
            if self._fd is None:
                raise ValueError(f"{self.path}: journal already closed")
            written = os.write(self._fd, data)
            while written < len(data):  # a short write (full disk, signal): finish the line
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def latest_in_order(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per sentence (the last one), sorted by sentence index. A final answer (ok or
    device error) beats a later timeout record for the same sentence."""
    latest: dict[int, dict[str, Any]] = {}
    for rec in records:
        idx = int(rec["index"])
        if idx in latest and is_final(latest[idx]) and not is_final(rec):
            continue
        latest[idx] = rec
    return [latest[i] for i in sorted(latest)]


def merge_in_order(path: Path) -> list[dict[str, Any]]:
    """Rewrite results.jsonl sorted by sentence index, one record per index, via a temporary
    file and rename, so a crash here still leaves a valid file."""
    ordered = latest_in_order(read_results(path))
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "wb") as f:
        f.write(b"".join(encode_record(rec) for rec in ordered))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return ordered


# ---- one run on disk: loading ------------------------------------------------------------------


class ReportError(UsageError):
    """The path given is not a results file or a run directory."""


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
    if not model_path or not Path(model_path).is_file():
        return None, None
    try:
        from hil.quant.blob import read_blob

        blob = read_blob(Path(model_path).read_bytes())
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
    stage_rows: list[list[float]] = field(default_factory=list)  # per answer: per stage
    tokenizer_cycles: list[float] = field(default_factory=list)
    host_ms: list[float] = field(default_factory=list)
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
    def stage_mean(self) -> list[float]:
        """Mean count per stage (embedding, each layer, classifier), over answers with them."""
        n = max((len(r) for r in self.stage_rows), default=0)
        cols = [[r[i] for r in self.stage_rows if len(r) > i] for i in range(n)]
        return [sum(c) / len(c) for c in cols]

    @property
    def stage_median(self) -> list[float]:
        """Median count per stage; empty when answers report different numbers of stages."""
        if not self.stage_rows or len({len(r) for r in self.stage_rows}) != 1:
            return []
        return [float(stats(list(col))["median"] or 0.0) for col in zip(*self.stage_rows,
                                                                          strict=True)]

    @property
    def disagreements(self) -> list[int]:
        return [int(r["index"]) for r in self.run.records
                if r.get("status") == "ok" and not r.get("agree")]

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


def run_cpi(run: RunData, board: str) -> float | None:
    """The estimated cycles per instruction of the run's board and (shipped) model."""
    from hil.boards import estimated_cpi

    model = str((run.summary or {}).get("model") or run.meta.get("model") or "")
    return estimated_cpi(board, Path(model).parent.name if model.endswith("model.bin") else None)


def latency_source(target: str, unit: str | None, cpi: float | None = None) -> str:
    """How a run's latency was derived, in its target's own words (hil.targets)."""
    cls = TARGETS.get(target)
    if cls is None:
        return "device counts / board clock"
    return cls.latency_source(unit, cpi)


def is_emulated(target: str) -> bool:
    return bool(TARGETS.get(target) and TARGETS[target].emulated)


def _first(*values: Any) -> Any:  # the first that is not None
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
                 model_id=summ.get("model_id"), emulated=is_emulated(target), unit=unit,
                 latency_source=latency_source(target, unit, run_cpi(run, board)),
                 run_error=summ.get("error"))
    clock = _clock(run, board)
    cpi = run_cpi(run, board)
    n_labels = len(run.labels or [])
    for r in run.records:
        n_labels = max(n_labels, 1 + max([int(r["pred"])] if r.get("pred") is not None else [-1]),
                       1 + (int(r["label"]) if r.get("label") is not None else -1))
    a.confusion = [[0] * n_labels for _ in range(n_labels)]
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
            dev_unit = ("ns" if str(r.get("unit", "")).startswith("ns")
                        else str(r.get("device_unit")))
            ms = (TARGETS[target].latency_ms(float(cyc), dev_unit, clock, cpi)
                  if target in TARGETS else float(cyc) / clock * 1e3)
            if ms is not None:
                a.latency_ms.append(ms)
            a.cycles_tokens.append((int(r.get("tokens") or 0), float(cyc)))
        a.tokens.append(int(r.get("tokens") or 0))
        if r.get("layers"):
            a.stage_rows.append([float(v) for v in r["layers"]])
        if r.get("tokenizer_cycles"):
            a.tokenizer_cycles.append(float(r["tokenizer_cycles"]))
        if "host_ms" in r:
            a.host_ms.append(float(r["host_ms"]))
    a.disagree = a.ok - a.agree
    a.memory = _memory(run, ok_recs, board)
    a.worst = _worst(run, a)
    a.expectations = _expectations(run, a)
    return a


def _memory(run: RunData, ok_recs: list[dict[str, Any]], board: str) -> dict[str, int | None]:
    s = (run.summary or {}).get("summary") or {}
    hello = (run.summary or {}).get("hello") or {}
    fw = (run.summary or {}).get("firmware") or {}
    b = BOARDS.get(board)
    return {"flash": s.get("flash_bytes"), "static_ram": s.get("static_ram_bytes"),
            "stack": max((int(r.get("stack") or 0) for r in ok_recs), default=None),
            "stack_region": fw.get("stack") or None,
            "arena": max((int(r.get("arena") or 0) for r in ok_recs), default=None),
            "arena_capacity": hello.get("arena") or None, "ram_peak": s.get("ram_peak_bytes"),
            "board_flash": s.get("board_flash_bytes") or (b.flash_bytes if b else None) or None,
            "board_ram": s.get("board_ram_bytes") or (b.ram_bytes if b else None) or None}


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
    """The verdicts the run recorded; for a bare results file, judge run.json's expectations on
    what the records prove (RAM cannot be proven from records: not measured, so not met)."""
    recorded = (run.summary or {}).get("expectations")
    if isinstance(recorded, dict):
        return recorded
    expect = ((run.meta.get("scenario") or {}).get("expect")) or {}
    actual = {"min_accuracy": a.accuracy, "min_agreement": a.agreement,
              "max_cycles_p95": a.cycle_stats["p95"], "max_ram_bytes": None}
    verdicts, _ = judge_expectations(expect, actual, ram_limited=bool(a.memory.get("board_ram")))
    return verdicts
