"""`hil run --live`: the runner's progress callback, rendered while the run streams.

On a terminal a rich Live view; elsewhere (CI logs, pipes) plain lines, so logs stay greppable.
Its own module because the run's view and the console's view share nothing but `rich`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from typing import IO, Any

SPARK = "▁▂▃▄▅▆▇█"


class LiveDashboard:
    """`hil run --live`: the runner's progress callback, rendered while the run streams.

    On a terminal: a rich Live view (progress bar with rate and ETA, running accuracy and
    agreement, latency distribution, last results, errors). Elsewhere (CI logs, pipes): plain
    lines, one every ~5% and one for every problem, so logs stay greppable. Thread-safe: the
    runner's jobs call `on_result` from their own threads.
    """

    def __init__(self, total: int, title: str, stream: IO[str] | None = None,
                 plain: bool | None = None, *, clock_hz: int | None = None,
                 emulated: bool = False, labels: list[str] | None = None) -> None:
        self.total = max(0, total)
        self.title = title
        self.clock_hz = clock_hz  # board clock: device counts -> ms (emulated where it is)
        self.emulated = emulated
        self.labels = labels or []
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.plain = (not isatty or os.environ.get("TERM") == "dumb") if plain is None else plain
        self.n = self.ok = self.errors = self.agree = self.labelled = self.correct = 0
        self.latencies: list[float] = []
        self.unit = ""
        self.last: deque[dict[str, Any]] = deque(maxlen=5)
        self.error_lines: deque[str] = deque(maxlen=4)
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._live: Any = None
        self._step = max(1, self.total // 20)

    def __enter__(self) -> LiveDashboard:
        self.t0 = time.monotonic()
        if not self.plain:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self, console=Console(file=self.stream), refresh_per_second=4,
                              transient=False)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def on_result(self, rec: dict[str, Any]) -> None:
        """The runner's `progress` callback: one results.jsonl record."""
        with self._lock:
            self.n += 1
            status = rec.get("status")
            if status == "ok":
                self.ok += 1
                self.agree += bool(rec.get("agree"))
                if rec.get("correct") is not None:
                    self.labelled += 1
                    self.correct += bool(rec["correct"])
                cyc = rec.get("cycles")
                if cyc:
                    self.unit = str(rec.get("unit", ""))
                    self.latencies.append(self._ms(float(cyc)))
            else:
                self.errors += 1
                err = rec.get("error") or {}
                self.error_lines.append(f"#{rec.get('index')} {status} {err.get('code', '')}: "
                                        f"{str(err.get('reason', '')).splitlines()[0][:100]}"
                                        if err.get("reason") else f"#{rec.get('index')} {status}")
            self.last.append(rec)
            if self.plain:
                bad = status != "ok" or not rec.get("agree", True)
                if bad or self.n % self._step == 0 or self.n == self.total:
                    self.stream.write(self._plain_line(rec) + "\n")
                    self.stream.flush()

    # -- numbers --

    def rate(self) -> float:
        dt = time.monotonic() - self.t0
        return self.n / dt if dt > 0 else 0.0

    def eta_s(self) -> float | None:
        r = self.rate()
        return (self.total - self.n) / r if r > 0 and self.total else None

    def _pct(self, a: int, b: int) -> str:
        return "n/a" if b == 0 else f"{100 * a / b:.1f}%"

    def _plain_line(self, rec: dict[str, Any]) -> str:
        eta = self.eta_s()
        mark = rec.get("status") if rec.get("status") != "ok" else (
            "agree" if rec.get("agree") else "DISAGREE")
        return (f"  [{self.n}/{self.total}] {self.rate():.1f}/s ETA "
                f"{'?' if eta is None else f'{eta:.0f}s'}  agreement "
                f"{self._pct(self.agree, self.ok)}  accuracy "
                f"{self._pct(self.correct, self.labelled)}  errors {self.errors}  "
                f"last #{rec.get('index')} {mark}")

    def _in_ms(self) -> bool:
        return self.unit.startswith("ns") or bool(self.clock_hz)

    def _ms(self, count: float) -> float:
        """A device count as ms when its clock is known; else left in its own unit."""
        if self.unit.startswith("ns"):
            return count / 1e6
        return count / self.clock_hz * 1e3 if self.clock_hz else count

    def latency_label(self) -> str:
        if self.unit.startswith("ns"):
            return "latency ms (host ns)"
        if self.clock_hz:
            return (f"latency ms ({'emulated: ' if self.emulated else ''}{self.unit} / "
                    f"{self.clock_hz / 1e6:g} MHz)")
        return self.unit or "cycles"

    def _name(self, label: Any) -> str:
        if isinstance(label, int) and 0 <= label < len(self.labels):
            return self.labels[label]
        return "" if label is None else str(label)

    # -- rich --

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            eta = self.eta_s()
            head = Table.grid(padding=(0, 2))
            head.add_row(ProgressBar(total=self.total or 1, completed=self.n, width=40,
                                     complete_style="green", finished_style="green"),
                         f"{self.n}/{self.total}", f"{self.rate():.1f} sentences/s",
                         f"ETA {'?' if eta is None else time.strftime('%M:%S', time.gmtime(eta))}")
            stats = Table.grid(padding=(0, 3))
            stats.add_row(f"agreement {self._pct(self.agree, self.ok)}",
                          f"accuracy {self._pct(self.correct, self.labelled)}",
                          Text(f"errors {self.errors}", style="red" if self.errors else ""))
            lat = Text(f"{self.latency_label()}: {spark(self.latencies)}")
            if self.latencies:
                s = sorted(self.latencies)
                f = ".3f" if self._in_ms() else ",.0f"
                lat.append(f"  median {s[len(s) // 2]:{f}}  max {s[-1]:{f}}")
            last = Table(box=None, padding=(0, 1), show_header=True)
            for col in ("#", "status", "sentence", "predicted", "label", "tokens",
                        "latency ms" if self._in_ms() else self.unit):
                last.add_column(col, no_wrap=True)
            for r in list(self.last)[::-1]:
                ok = r.get("status") == "ok"
                v = r.get("cycles")
                shown = "" if not v else (f"{self._ms(v):.3f}" if self._in_ms() else f"{v:,}")
                last.add_row(str(r.get("index")),
                             Text("ok" if ok and r.get("agree") else
                                  "DISAGREE" if ok else str(r.get("status")),
                                  style="green" if ok and r.get("agree") else "red"),
                             str(r.get("text", ""))[:40], self._name(r.get("pred")),
                             self._name(r.get("label")), str(r.get("tokens", "")), shown)
            errs = Text("\n".join(self.error_lines) or "none", style="red" if self.errors
                        else "dim")
            return Panel(Group(head, stats, lat, last, Text("errors so far:"), errs),
                         title=self.title, title_align="left")


def spark(values: list[float], bins: int = 24) -> str:
    """A one-line histogram of `values` (empty string when there are none)."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if hi <= lo:
        return SPARK[-1]
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += 1
    top = max(counts)
    return "".join(SPARK[min(len(SPARK) - 1, int(c / top * (len(SPARK) - 1) + 0.999))]
                   if c else " " for c in counts)
