"""`hil run --live`: the runner's progress callback, rendered while the run streams.

On a terminal a rich Live view; elsewhere (CI logs, pipes) plain lines, so logs stay greppable.
Its own module because the run's view and the console's view share nothing but `rich`.

What it must not do (issue #19): call a wrong prediction "ok" (agreement with the host reference
and correctness against the label are two different claims, shown apart), hide the memory the
run is costing, cut text without saying so, or vanish: a 60-sentence QEMU run is over in about a
second, so the live view is transient and the final state is printed once, for good, when the
run ends (or is interrupted).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from typing import IO, Any

SPARK = "▁▂▃▄▅▆▇█"
ELLIPSIS = "…"


def clip(text: str, width: int) -> str:
    """`text` in at most `width` characters, ending in an ellipsis when it was cut (a cut that
    does not say so reads as the whole sentence)."""
    return text if len(text) <= width else text[: max(0, width - 1)] + ELLIPSIS


class LiveDashboard:
    """`hil run --live`: the runner's progress callback, rendered while the run streams.

    On a terminal: a rich Live view (progress bar with rate and ETA, running accuracy and
    agreement, latency distribution, last results, errors). Elsewhere (CI logs, pipes): plain
    lines, one every ~5% and one for every problem, so logs stay greppable. Thread-safe: the
    runner's jobs call `on_result` from their own threads.
    """

    def __init__(self, total: int, title: str, stream: IO[str] | None = None,
                 plain: bool | None = None, *, clock_hz: int | None = None,
                 emulated: bool = False, labels: list[str] | None = None,
                 ram_bytes: int | None = None, cpi: float | None = None) -> None:
        self.total = max(0, total)
        self.title = title
        self.clock_hz = clock_hz  # board clock: device counts -> ms (emulated where it is)
        self.cpi = cpi  # estimated cycles per instruction, for instruction counts
        self.emulated = emulated
        self.labels = labels or []
        self.ram_bytes = ram_bytes or None  # the real chip's RAM (0/None: unknown or no limit)
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.plain = (not isatty or os.environ.get("TERM") == "dumb") if plain is None else plain
        self.n = self.ok = self.errors = self.agree = self.labelled = self.correct = 0
        self.latencies: list[float] = []
        self.stack_peak = self.arena_peak = 0
        self.per_class: dict[str, list[int]] = {}  # label name -> [correct, total]
        self.outcome = ""  # "" while running; "finished" or "interrupted" once it ended
        self.unit = ""
        self.last: deque[dict[str, Any]] = deque(maxlen=5)
        self.error_lines: deque[str] = deque(maxlen=4)
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._live: Any = None
        self._quiet_tty: Any = None
        self._step = max(1, self.total // 20)

    def __enter__(self) -> LiveDashboard:
        self.t0 = time.monotonic()
        if not self.plain:
            from rich.console import Console
            from rich.live import Live

            self._quiet_tty = _EchoOff()
            # transient: the final frame is printed once by __exit__, never redrawn twice
            self._live = Live(self, console=Console(file=self.stream), refresh_per_second=4,
                              transient=True)
            self._live.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        """Print the final frame once. Why the tty's echo is off while the view is up: the
        terminal echoes Ctrl-C as `^C` after the view's last line, which wraps a full-width
        panel by one line, and rich's redraw then lands one line low: the header drawn twice."""
        self.outcome = "interrupted" if exc_type is KeyboardInterrupt else "finished"
        if self._live is not None:
            live, self._live = self._live, None
            try:
                live.stop()
                live.console.print(self)
            finally:
                self._quiet_tty.close()

    def on_result(self, rec: dict[str, Any]) -> None:
        """The runner's `progress` callback: one results.jsonl record."""
        with self._lock:
            self.n += 1
            status = rec.get("status")
            if status == "ok":
                self._count_ok(rec)
            else:
                self.errors += 1
                err = rec.get("error") or {}
                reason = str(err.get("reason", "")).splitlines()
                self.error_lines.append(
                    f"#{rec.get('index')} {status} {err.get('code', '')}: {clip(reason[0], 100)}"
                    if reason and reason[0] else f"#{rec.get('index')} {status}")
            self.last.append(rec)
            if self.plain:
                bad = status != "ok" or not rec.get("agree", True) or rec.get("correct") is False
                if bad or self.n % self._step == 0 or self.n == self.total:
                    self.stream.write(self._plain_line(rec) + "\n")
                    self.stream.flush()

    def _count_ok(self, rec: dict[str, Any]) -> None:
        self.ok += 1
        self.agree += bool(rec.get("agree"))
        if rec.get("correct") is not None:
            self.labelled += 1
            self.correct += bool(rec["correct"])
            tally = self.per_class.setdefault(self._name(rec.get("label")), [0, 0])
            tally[0] += bool(rec["correct"])
            tally[1] += 1
        self.stack_peak = max(self.stack_peak, int(rec.get("stack") or 0))
        self.arena_peak = max(self.arena_peak, int(rec.get("arena") or 0))
        cyc = rec.get("cycles")
        if cyc:
            self.unit = str(rec.get("unit", ""))
            self.latencies.append(self._ms(float(cyc)))

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
            ("agree" if rec.get("agree") else "DISAGREE")
            + {True: " correct", False: " WRONG", None: ""}[rec.get("correct")])
        return (f"  [{self.n}/{self.total}] {self.rate():.1f}/s ETA "
                f"{'?' if eta is None else f'{eta:.0f}s'}  agreement "
                f"{self._pct(self.agree, self.ok)}  accuracy "
                f"{self._pct(self.correct, self.labelled)}  errors {self.errors}  "
                f"{self.memory_line()}  last #{rec.get('index')} {mark}")

    def _in_ms(self) -> bool:
        if self.unit.startswith("instructions"):
            return bool(self.cpi and self.clock_hz)
        return self.unit.startswith("ns") or bool(self.clock_hz)

    def _ms(self, count: float) -> float:
        """A device count as ms when its clock is known; else left in its own unit."""
        if self.unit.startswith("ns"):
            return count / 1e6
        if self.unit.startswith("instructions"):  # a time only through the estimated CPI
            return count * self.cpi / self.clock_hz * 1e3 if self.cpi and self.clock_hz else count
        return count / self.clock_hz * 1e3 if self.clock_hz else count

    def latency_label(self) -> str:
        if self.unit.startswith("ns"):
            return "latency ms (host ns)"
        if self.unit.startswith("instructions") and self._in_ms():
            return (f"latency ms, estimated ({self.unit} x {self.cpi:.2f} CPI / "
                    f"{self.clock_hz / 1e6:g} MHz)")
        if self.clock_hz and self._in_ms():
            return (f"latency ms ({'emulated: ' if self.emulated else ''}{self.unit} / "
                    f"{self.clock_hz / 1e6:g} MHz)")
        return self.unit or "cycles"

    def _name(self, label: Any) -> str:
        if isinstance(label, int) and 0 <= label < len(self.labels):
            return self.labels[label]
        return "" if label is None else str(label)

    def memory_line(self) -> str:
        """Peaks so far, as the device measured them (contract 5): the painted stack's and the
        arena's high-water marks; the board's RAM beside them when the chip has a limit."""
        ram = f"  board RAM {_bytes(self.ram_bytes)}" if self.ram_bytes else ""
        return (f"stack peak {_bytes(self.stack_peak)}  arena peak "
                f"{_bytes(self.arena_peak)}{ram}")

    def tally_line(self) -> str:
        """Correct/total per true label, worst first (where the model is weak, at a glance)."""
        rows = sorted(self.per_class.items(), key=lambda kv: (kv[1][0] / kv[1][1], kv[0]))
        return "  ".join(f"{name} {c}/{t}" for name, (c, t) in rows)

    # -- rich --

    def __rich_console__(self, console: Any, options: Any) -> Any:
        """The panel, laid out for the width at hand (the sentence column gives way first)."""
        yield self._panel(options.max_width)

    def _panel(self, width: int) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.text import Text

        with self._lock:
            title = self.title if not self.outcome else (
                f"{self.title}: {self.outcome} after {time.monotonic() - self.t0:.1f} s")
            errs = Text("\n".join(self.error_lines) or "none", style="red" if self.errors
                        else "dim")
            tally = Text("per class (correct/total): " + (self.tally_line() or "n/a"))
            return Panel(Group(self._head(), Text(self.memory_line()), self._latency(), tally,
                               self._last_table(width), Text("errors so far:"), errs),
                         title=title, title_align="left")

    def _head(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        eta = self.eta_s()
        head = Table.grid(padding=(0, 2))
        head.add_row(ProgressBar(total=self.total or 1, completed=self.n, width=40,
                                 complete_style="green", finished_style="green"),
                     f"{self.n}/{self.total}", f"{self.rate():.1f} sentences/s",
                     f"ETA {'?' if eta is None else time.strftime('%M:%S', time.gmtime(eta))}")
        stats = Table.grid(padding=(0, 3))
        stats.add_row(f"agreement {self._pct(self.agree, self.ok)} (bit-exact logits)",
                      f"accuracy {self._pct(self.correct, self.labelled)} (vs label)",
                      Text(f"errors {self.errors}", style="red" if self.errors else ""))
        return Group(head, stats)

    def _latency(self) -> Any:
        from rich.text import Text

        lat = Text(f"{self.latency_label()}: {spark(self.latencies)}")
        if self.latencies:
            s = sorted(self.latencies)
            f = ".3f" if self._in_ms() else ",.0f"
            lat.append(f"  median {s[len(s) // 2]:{f}}  max {s[-1]:{f}}")
        return lat

    def _last_table(self, width: int) -> Any:
        """The last results: `ref` says whether the logits were bit-exact, `answer` whether
        the prediction matched the label; a wrong answer from an exact device is not ok."""
        from rich.table import Table
        from rich.text import Text

        last = Table(box=None, padding=(0, 1), show_header=True)
        name_w = max([9, *map(len, self.labels)])
        unit_col = "latency ms" if self._in_ms() else self.unit
        widths = {"#": max(3, len(str(self.total))), "ref": 7, "answer": 7, "sentence": 0,
                  "predicted": name_w, "label": name_w, "tokens": 6, unit_col: len(unit_col)}
        # only the sentence gives way on a narrow terminal, and says so with an ellipsis
        sent_w = max(8, min(40, width - 4 - sum(widths.values()) - 2 * len(widths)))
        widths["sentence"] = sent_w
        for col, w in widths.items():
            last.add_column(col, no_wrap=True, overflow="ellipsis", min_width=w)
        for r in list(self.last)[::-1]:
            ok = r.get("status") == "ok"
            v = r.get("cycles")
            shown = "" if not v else (f"{self._ms(v):.3f}" if self._in_ms() else f"{v:,}")
            ref = (Text("exact", style="green") if ok and r.get("agree") else
                   Text("DIFFERS" if ok else str(r.get("status")), style="red"))
            right = r.get("correct")
            answer = Text({True: "correct", False: "WRONG", None: "-"}[right if ok else None],
                          style={True: "green", False: "bold red", None: "dim"}[
                              right if ok else None])
            last.add_row(str(r.get("index")), ref, answer, clip(str(r.get("text", "")), sent_w),
                         self._name(r.get("pred")), self._name(r.get("label")),
                         str(r.get("tokens", "")), shown)
        return last


def _bytes(n: int | None) -> str:
    if not n:
        return "n/a"
    return f"{n} B" if n < 10 * 1024 else f"{n / 1024:.1f} KiB"


class _EchoOff:
    """Turn the controlling terminal's echo off (restored by close): keys typed while the live
    view is up, Ctrl-C's `^C` above all, would shift the view under rich's cursor arithmetic."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.saved: list[Any] | None = None
        with contextlib.suppress(OSError, ValueError, ImportError, AttributeError):
            import termios

            fd = sys.stdin.fileno()
            if os.isatty(fd):
                self.saved = termios.tcgetattr(fd)
                new = termios.tcgetattr(fd)
                new[3] &= ~(termios.ECHO | termios.ECHOCTL)
                termios.tcsetattr(fd, termios.TCSANOW, new)
                self.fd = fd

    def close(self) -> None:
        if self.fd is not None and self.saved is not None:
            import termios

            with contextlib.suppress(OSError):
                termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)
            self.fd = None


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
