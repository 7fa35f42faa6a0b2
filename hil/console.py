"""Live views: `hil console` (type a sentence, watch the device classify it) and the `hil run
--live` dashboard.

Why a console at all: a demo, a bring-up session or a "why did it say *that*" question wants one
sentence at a time with everything the device reported next to what the host makes of it: the
label, the class probabilities, the tokens as the device saw them, the cost with its unit, the
memory high-water marks, and whether the logits were bit-exact with the host's integer reference.

Honesty rules (design contracts 4 and 5) apply on screen too: probabilities are computed on the
HOST (softmax of the device's int32 logits times the blob's `logit_scale`) and say so; a count
from an emulator is labelled with its unit and the latency derived from it is called emulated.

Two outputs for one loop: with a terminal on both ends, a rich screen redrawn after each sentence;
otherwise (`hil console < sentences.txt`, pipes, CI) one plain `key=value` line per sentence, so
the console can be scripted and tested. The same split holds for `--live`: a rich dashboard on a
terminal, plain progress lines elsewhere.

Data flows one way: this module reads from targets, protocol, runner (the host oracle) and
report helpers; nothing upstream imports it.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hil.boards import EMULATED_TARGETS, Board, cycle_unit, get_board, to_cycles
from hil.report import nbytes, softmax

HISTORY = 8  # sentences kept on screen under the current one
TOP_K = 5  # probability bars shown (all when the model has fewer classes)
SPARK = "▁▂▃▄▅▆▇█"


# ---- one classified sentence --------------------------------------------------------------------


@dataclass
class Turn:
    """What the console shows for one sentence (also the plain line's fields)."""

    n: int
    text: str
    status: str  # ok | error | lost
    label: str = ""
    probs: list[tuple[str, float]] = field(default_factory=list)  # top-k, host-computed
    tokens: list[str] = field(default_factory=list)  # device ids as host vocabulary strings
    cycles: int | None = None
    unit: str = ""
    latency_ms: float | None = None
    emulated: bool = False
    stack: int | None = None
    arena: int | None = None
    agree: bool | None = None  # logits bit-exact with the host reference
    ids_match: bool | None = None  # device ids == host tokenizer ids
    note: str = ""  # reset seen, reconnected, error text

    def plain(self) -> str:
        """One line, `key=value` separated by two spaces; the text last, quoted."""
        if self.status != "ok":
            return f"#{self.n}  status={self.status}  {self.note}  text={self.text!r}"
        top = self.probs[0][1] if self.probs else 0.0
        lat = "n/a" if self.latency_ms is None else f"{self.latency_ms:.3f}ms"
        parts = [f"#{self.n}", f"label={self.label}", f"p={top:.3f}(host)",
                 f"tokens={len(self.tokens)}", f"cycles={self.cycles}[{self.unit}]",
                 f"latency={lat}{'(emulated)' if self.emulated else ''}",
                 f"stack={self.stack}B", f"arena={self.arena}B",
                 f"ref={'bit-exact' if self.agree else 'DIFFERS'}"]
        if self.note:
            parts.append(f"note={self.note!r}")
        parts.append(f"text={self.text!r}")
        return "  ".join(parts)


# ---- the device session -------------------------------------------------------------------------


class ConsoleSession:
    """One target with a protocol Device on it, plus the host oracle; reconnects on demand.

    Why it owns reconnecting: a board that resets answers with a fresh HELLO (the Device re-sends
    the request by itself, and we only report it); a board that died (process gone, link closed,
    no answer after the retries) gets a fresh boot before the next sentence, shown on screen.
    """

    def __init__(self, board: Board, target: str, model_path: Path, run_dir: Path,
                 elf: Path | None = None, port: str | None = None, timeout_s: float = 30.0,
                 hello_timeout_s: float | None = None) -> None:
        from hil.runner import HELLO_TIMEOUT, Oracle

        self.board = board
        self.target_name = target
        self.model_path = model_path
        self.run_dir = run_dir
        self.elf = elf
        self.port = port
        self.timeout_s = timeout_s
        self.hello_timeout_s = hello_timeout_s or HELLO_TIMEOUT.get(target, 30.0)
        self.oracle = Oracle(model_path)
        meta = self.oracle.blob.meta
        self.labels: list[str] = [str(x) for x in meta.get("labels") or []]
        self.logit_scale: float | None = meta.get("logit_scale")
        self.target: Any = None
        self.device: Any = None
        self.hello: Any = None
        self.link_state = "down"
        self.errors: list[str] = []
        self.boots = 0
        self._n = 0

    # -- lifecycle --

    def build(self) -> Path:
        """The firmware to boot: --elf, or built for this board and model (serial: none)."""
        from hil import firmware as fw

        if self.elf is not None or self.target_name == "serial":
            return self.elf or Path("-")
        self.elf = fw.build(self.board, self.model_path, log_path=self.run_dir / "build.log",
                            dest=self.run_dir / "firmware.elf")
        return self.elf

    def connect(self) -> None:
        """Boot (or open) the target and wait for its HELLO; raises on failure."""
        from hil.protocol import Device, DeviceTimeout
        from hil.targets import TARGETS, TargetError

        self.close()
        name = f"console-{self.target_name}-{self.board.name}-boot{self.boots}"
        self.boots += 1
        self.link_state = "booting"
        if self.target_name == "serial":
            from hil.targets.serial import SerialTarget

            self.target = SerialTarget(self.board, self.run_dir, port=self.port, name=name)
        else:
            cls = TARGETS[self.target_name]
            self.target = cls(self.board, self.run_dir, elf=self.build(), name=name)  # type: ignore[call-arg]
        link = self.target.start()
        self.device = Device(link, timeout=self.timeout_s, retries=1)
        try:
            try:
                self.hello = self.device.wait_hello(self.hello_timeout_s)
            except DeviceTimeout:
                self.hello = self.device.hello(timeout=min(self.hello_timeout_s, 5.0))
        except DeviceTimeout as exc:
            self.link_state = "down"
            raise TargetError(f"{name}: no HELLO within {self.hello_timeout_s:g} s ({exc})",
                              link.tail(), link.log_path) from None
        if self.hello.model != self.oracle.model_id:
            self.link_state = "wrong model"
            raise TargetError(f"{name}: the device runs model {self.hello.model_hex}, the host "
                              f"blob {self.model_path} is {self.oracle.model_id:08X}",
                              link.tail(), link.log_path)
        self.link_state = "up"

    def close(self) -> None:
        """Stop the target (kills an emulator or native process; closes a serial port)."""
        if self.target is not None:
            self.target.stop()
        self.target = None
        self.device = None
        if self.link_state == "up":
            self.link_state = "down"

    @property
    def pid(self) -> int | None:
        proc = getattr(self.target, "proc", None)
        return getattr(proc, "pid", None)

    # -- one sentence --

    def classify(self, text: str) -> Turn:
        """Send one sentence; a dead link is reported and the target rebooted once."""
        from hil.protocol import DeviceError, DeviceTimeout, LinkClosed
        from hil.targets import TargetError

        self._n += 1
        note = ""
        if self.device is None or self.link_state != "up" or (
                self.target is not None and not self.target.alive()):
            note = self._reconnect("the link was down")
            if self.link_state != "up":
                return Turn(self._n, text, "lost", note=note)
        before = self.device.info
        try:
            res = self.device.classify(text, timeout=self.timeout_s)
        except DeviceError as exc:
            self.errors.append(f"{exc.code}: {exc.reason}")
            return Turn(self._n, text, "error", note=f"device error {exc.code}: {exc.reason}")
        except (DeviceTimeout, LinkClosed, TargetError, OSError) as exc:
            first = str(exc).splitlines()[0]
            self.errors.append(first)
            self.link_state = "lost"
            note = self._reconnect(f"link lost ({first})")
            return Turn(self._n, text, "lost", note=note)
        if self.device.info is not before:
            note = "device reset during the request (fresh HELLO); the request was re-sent"
            self.hello = self.device.info
        return self._turn(text, res, note)

    def _reconnect(self, why: str) -> str:
        from hil.targets import TargetError

        try:
            self.connect()
        except (TargetError, OSError) as exc:
            self.errors.append(str(exc).splitlines()[0])
            return f"{why}; reconnect failed: {str(exc).splitlines()[0]}"
        return f"{why}; rebooted and reconnected"

    def _turn(self, text: str, res: Any, note: str) -> Turn:
        device_unit = self.hello.unit
        clock = int(self.hello.clock or self.board.clock_hz)
        cycles = to_cycles(int(res.cycles), self.target_name, device_unit, clock)
        latency = cycles / 1e6 if device_unit == "ns" else cycles / clock * 1e3
        probs = softmax(list(res.logits), self.logit_scale)
        ranked = sorted(range(len(probs)), key=lambda i: -probs[i])[:TOP_K]
        ids = list(res.ids) if res.ids is not None else self.oracle.ids(text)
        vocab_size = self.oracle.tokenizer.vocab_size
        tokens = [self.oracle.tokenizer.id_to_token(i) if 0 <= i < vocab_size else f"<{i}>"
                  for i in ids]
        host_ids = self.oracle.ids(text)
        ref = self.oracle.logits(host_ids)
        return Turn(
            n=self._n, text=text, status="ok", label=self.name(res.label),
            probs=[(self.name(i), probs[i]) for i in ranked], tokens=tokens, cycles=cycles,
            unit=cycle_unit(self.target_name, device_unit), latency_ms=latency,
            emulated=self.target_name in EMULATED_TARGETS, stack=res.stack, arena=res.arena,
            agree=list(res.logits) == ref,
            ids_match=None if res.ids is None else list(res.ids) == host_ids, note=note)

    def name(self, label: int) -> str:
        return self.labels[label] if 0 <= label < len(self.labels) else str(label)

    def reset(self) -> str:
        """`:reset`: ask the device to reboot (RESET, OK, fresh HELLO)."""
        from hil.protocol import DeviceError, DeviceTimeout, LinkClosed

        if self.device is None:
            return "no device"
        try:
            self.hello = self.device.reset(timeout=self.hello_timeout_s)
        except (DeviceError, DeviceTimeout, LinkClosed) as exc:
            return f"reset failed: {str(exc).splitlines()[0]}"
        return "device reset: fresh HELLO received"

    def status(self) -> str:
        """The status line: board, target, firmware/model ids, link state, errors so far."""
        h = self.hello
        ids = f"fw {h.fw}  model {h.model_hex}" if h is not None else "fw ?  model ?"
        pid = f" (pid {self.pid})" if self.pid else ""
        emu = " (emulated)" if self.target_name in EMULATED_TARGETS else ""
        return (f"board {self.board.name}  target {self.target_name}{emu}  {ids}  "
                f"link {self.link_state}{pid}  errors {len(self.errors)}")


# ---- rendering ----------------------------------------------------------------------------------


def _bar(frac: float, width: int = 28) -> str:
    full = int(round(max(0.0, min(1.0, frac)) * width))
    return "█" * full + "·" * (width - full)


def render_screen(session: ConsoleSession, turn: Turn | None, history: list[Turn],
                  notice: str = "") -> Any:
    """The rich renderable for the console screen (`notice`: the answer to a `:` command)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    status = Text(session.status(), style="reverse")
    if session.errors:
        status.append(f"  last error: {session.errors[-1][:80]}", style="reverse red")
    parts: list[Any] = [status]
    if notice:
        parts.append(Text(notice, style="bold yellow"))
    if turn is None:
        parts.append(Panel("Type a sentence and press Enter. `:reset` reboots the device, "
                           "`:quit` or Ctrl-D leaves, Ctrl-C stops.", title="hil console"))
    elif turn.status != "ok":
        parts.append(Panel(Text(f"{turn.text}\n\n{turn.status.upper()}: {turn.note}",
                                style="bold red"), title=f"#{turn.n}"))
    else:
        body = Table.grid(padding=(0, 2))
        body.add_column(justify="right", style="bold")
        body.add_column()
        top = turn.probs[0][1] if turn.probs else 0.0
        body.add_row("label", Text(f"{turn.label}  ({top:.1%})", style="bold green"))
        bars = Table.grid(padding=(0, 1))
        for name, p in turn.probs:
            bars.add_row(Text(name, style="cyan"), Text(_bar(p), style="green"),
                         Text(f"{p:6.1%}"))
        body.add_row("probabilities", bars)
        body.add_row("", Text(f"host-computed: softmax(int32 logits x logit_scale "
                              f"{session.logit_scale:.3g}); top {len(turn.probs)}",
                              style="dim"))
        body.add_row("tokens", Text(" ".join(turn.tokens), style="magenta"))
        same = {True: "same ids as the host tokenizer", False: "ids DIFFER from the host's",
                None: "ids not reported"}[turn.ids_match]
        body.add_row("token count", f"{len(turn.tokens)} (as the device tokenized it; {same})")
        emu = "emulated " if turn.emulated else ""
        lat = "n/a" if turn.latency_ms is None else f"{turn.latency_ms:.3f} ms"
        body.add_row("cost", f"{turn.cycles:,} {turn.unit}  ->  {emu}latency {lat}")
        cap = session.hello.arena if session.hello is not None else 0
        body.add_row("memory", f"stack high-water {nbytes(turn.stack)}   arena high-water "
                               f"{nbytes(turn.arena)}" + (f" of {nbytes(cap)}" if cap else ""))
        body.add_row("reference", Text("logits bit-exact with the host integer reference",
                                       style="green") if turn.agree else
                     Text("logits DIFFER from the host integer reference", style="bold red"))
        if turn.note:
            body.add_row("note", Text(turn.note, style="yellow"))
        parts.append(Panel(body, title=f"#{turn.n}  {turn.text[:70]}", title_align="left"))
    if history:
        hist = Table(title="history", title_justify="left", expand=True)
        for col, just in (("#", "right"), ("sentence", "left"), ("label", "left"),
                          ("p (host)", "right"), ("tok", "right"), ("latency", "right"),
                          ("ref", "left")):
            hist.add_column(col, justify=just, no_wrap=True,  # type: ignore[arg-type]
                            overflow="ellipsis", ratio=1 if col == "sentence" else None)
        for t in history[-HISTORY:][::-1]:
            if t.status != "ok":
                hist.add_row(str(t.n), t.text[:60], Text(t.status, style="red"), "", "", "", "")
                continue
            hist.add_row(str(t.n), t.text[:60], t.label, f"{t.probs[0][1]:.0%}",
                         str(len(t.tokens)),
                         f"{t.latency_ms:.3f} ms{' (emu)' if t.emulated else ''}",
                         Text("exact", style="green") if t.agree else Text("DIFF", style="red"))
        parts.append(hist)
    return Group(*parts)


# ---- the console loop ---------------------------------------------------------------------------


def run_console(session: ConsoleSession, stdin: IO[str], stdout: IO[str],
                interactive: bool) -> int:
    """Read sentences until EOF/`:quit`/Ctrl-C; returns the exit code (0, or 3 if the device
    could never be reached). The target is stopped on every way out."""
    from rich.console import Console

    from hil.targets import TargetError

    console = Console(file=stdout, force_terminal=interactive or None, highlight=False)
    history: list[Turn] = []
    turn: Turn | None = None
    notice = ""
    try:
        try:
            session.connect()
        except (TargetError, OSError) as exc:
            session.errors.append(str(exc).splitlines()[0])
            print(f"hil console: {exc}", file=sys.stderr)
            if not interactive:
                return 3
        if not interactive:
            print(f"# {session.status()}", file=sys.stderr, flush=True)
        while True:
            if interactive:
                console.clear()
                console.print(render_screen(session, turn, history, notice))
                notice = ""
                try:
                    line = console.input("[bold]sentence> [/]")
                except EOFError:
                    break
            else:
                line = stdin.readline()
                if not line:
                    break
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            if text.strip() in (":quit", ":q", ":exit"):
                break
            if text.strip() == ":reset":
                notice = session.reset()
                if "failed" in notice:
                    session.errors.append(notice)
                if not interactive:
                    print(f"# {notice}", flush=True)
                continue
            if turn is not None:
                history.append(turn)
            turn = session.classify(text)
            if not interactive:
                stdout.write(turn.plain() + "\n")
                stdout.flush()
    except KeyboardInterrupt:
        if interactive:
            console.print("\n[yellow]interrupted[/]")
    finally:
        pid = session.pid
        session.close()
        msg = f"hil console: stopped {session.target_name}" + (f" (pid {pid})" if pid else "")
        print(msg, file=sys.stderr, flush=True)
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    """`hil console --board B [--target T] [--model M] [--elf F]`."""
    from hil import firmware as fw
    from hil.scenario import ScenarioError, resolve_model

    try:
        board = get_board(args.board)
        model = resolve_model(args.model)
    except (KeyError, ScenarioError) as exc:
        print(f"hil console: {exc}", file=sys.stderr)
        return 2
    target = args.target or board.default_target
    if target not in board.targets:
        print(f"hil console: board {board.name} does not run on {target}; it runs on "
              f"{', '.join(board.targets)}", file=sys.stderr)
        return 2
    run_dir = Path(args.out or Path("out") / f"console-{board.name}-{target}")
    run_dir.mkdir(parents=True, exist_ok=True)
    interactive = not args.plain and sys.stdin.isatty() and sys.stdout.isatty()
    session = ConsoleSession(board, target, model, run_dir,
                             elf=Path(args.elf) if args.elf else None, port=args.port,
                             timeout_s=args.timeout)
    try:
        session.build()
    except fw.BuildError as exc:
        print(f"hil console: {exc}", file=sys.stderr)
        return exc.exit_code
    return run_console(session, sys.stdin, sys.stdout, interactive)


# ---- `hil run --live` ---------------------------------------------------------------------------


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
