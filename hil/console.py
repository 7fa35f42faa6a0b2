"""Live views: `hil console` (type a sentence, watch the device classify it) and the `hil run
--live` dashboard.

Why a console at all: a demo, a bring-up session or a "why did it say *that*" question wants one
sentence at a time with everything the device reported next to what the host makes of it: the
label, the class probabilities, the tokens as the device saw them, the cost with its unit, the
memory high-water marks, and whether the logits were bit-exact with the host's integer reference.

Honesty rules (docs/design.md, contracts 4 and 5) apply on screen too: probabilities are computed on
the HOST (softmax of the device's int32 logits times the blob's `logit_scale`) and say so; a count
from an emulator is labelled with its unit and the latency derived from it is called emulated.

Two outputs for one loop: with a terminal on both ends, a rich screen redrawn after each sentence;
otherwise (`hil console < sentences.txt`, pipes, CI) one plain `key=value` line per sentence, so
the console can be scripted and tested. The same split holds for `--live`: a rich dashboard on a
terminal, plain progress lines elsewhere.

Data flows one way: this module reads from the session (boot, ask, judge), protocol and report
helpers; nothing upstream imports it. The `hil run --live` dashboard is hil.live.
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hil.boards import Board, get_board
from hil.errors import (
    EXIT_ENVIRONMENT,
    EXIT_EXPECTATIONS,
    EXIT_OK,
    EXIT_RUN_ERROR,
    HilError,
    WrongFirmware,
    exit_code_of,
)
from hil.paths import runs_dir
from hil.protocol import DeviceError, DeviceTimeout, LinkClosed
from hil.report import nbytes, softmax
from hil.scenario import text_problem
from hil.session import Answer, BoardSession, resolve
from hil.targets import TargetError

HISTORY = 8  # sentences kept on screen under the current one
TOP_K = 5  # probability bars shown (all when the model has fewer classes)


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
    """A hil.session.BoardSession, as the console needs it: reconnects on demand and turns every
    answer or failure into a Turn.

    Why it owns reconnecting: a board that resets answers with a fresh HELLO (the Device re-sends
    the request by itself, and we only report it); a board that died (process gone, link closed,
    no answer after the retries) gets a fresh boot before the next sentence, shown on screen.
    """

    def __init__(self, board: Board, target: str, model_path: Path, run_dir: Path,
                 elf: Path | None = None, port: str | None = None, timeout_s: float = 30.0,
                 hello_timeout_s: float | None = None) -> None:
        self.session = BoardSession(board, target, model=model_path, elf=elf, run_dir=run_dir,
                                    port=port, timeout=timeout_s, retries=1,
                                    hello_timeout=hello_timeout_s)
        self.board = board
        self.target_name = target
        self.model_path = model_path
        self.oracle = self.session.oracle
        self.labels = self.oracle.labels
        self.logit_scale = self.oracle.logit_scale
        self.link_state = "down"
        self.errors: list[str] = []
        self.boots = 0
        self._n = 0

    @property
    def hello(self) -> Any:
        return self.session.hello

    @property
    def emulated(self) -> bool:
        return self.session.target_cls.emulated

    # -- lifecycle --

    def build(self) -> Path | None:
        """The firmware to boot: --elf, or built for this board and model (serial: none)."""
        return self.session.prepare()[0]

    def connect(self) -> None:
        """Boot (or open) the target and wait for its HELLO; raises on failure."""
        self.session.name = f"console-{self.target_name}-{self.board.name}-boot{self.boots}"
        self.boots += 1
        self.link_state = "booting"
        try:
            self.session.start()
        except WrongFirmware:
            self.link_state = "wrong model"
            raise
        except BaseException:
            self.link_state = "down"
            raise
        self.link_state = "up"

    def close(self) -> None:
        """Stop the target (kills an emulator or native process; closes a serial port)."""
        self.session.close()
        if self.link_state == "up":
            self.link_state = "down"

    @property
    def pid(self) -> int | None:
        proc = getattr(self.session.target, "proc", None)
        return getattr(proc, "pid", None)

    # -- one sentence --

    def classify(self, text: str) -> Turn:
        """Send one sentence; a dead link is reported and the target rebooted once."""
        self._n += 1
        note = ""
        problem = text_problem(text)
        if problem is not None:  # bytes that were not UTF-8: say so, keep going, send nothing
            self.errors.append(problem)
            return Turn(self._n, text, "error", note=f"bad input, not sent: {problem}")
        if not self.session.alive() or self.link_state != "up":
            note = self._reconnect("the link was down")
            if self.link_state != "up":
                return Turn(self._n, text, "lost", note=note)
        before = self.session.hello
        try:
            answer = self.session.ask(text)
        except DeviceError as exc:
            self.errors.append(f"{exc.code}: {exc.reason}")
            return Turn(self._n, text, "error", note=f"device error {exc.code}: {exc.reason}")
        except (DeviceTimeout, LinkClosed, TargetError, OSError) as exc:
            first = str(exc).splitlines()[0]
            self.errors.append(first)
            self.link_state = "lost"
            return Turn(self._n, text, "lost", note=self._reconnect(f"link lost ({first})"))
        if self.session.hello is not before:
            note = "device reset during the request (fresh HELLO); the request was re-sent"
        return self._turn(answer, note)

    def _reconnect(self, why: str) -> str:
        try:
            self.connect()
        except (HilError, OSError) as exc:
            self.errors.append(str(exc).splitlines()[0])
            return f"{why}; reconnect failed: {str(exc).splitlines()[0]}"
        return f"{why}; rebooted and reconnected"

    def _turn(self, a: Answer, note: str) -> Turn:
        probs = softmax(a.logits, self.logit_scale)
        ranked = sorted(range(len(probs)), key=lambda i: -probs[i])[:TOP_K]
        vocab = self.oracle.tokenizer
        tokens = [vocab.id_to_token(i) if 0 <= i < vocab.vocab_size else f"<{i}>"
                  for i in (a.ids if a.ids is not None else a.host_ids)]
        return Turn(
            n=self._n, text=a.text, status="ok", label=a.label_name,
            probs=[(self.name(i), probs[i]) for i in ranked], tokens=tokens, cycles=a.cycles,
            unit=a.unit, latency_ms=a.latency_ms, emulated=a.emulated, stack=a.stack,
            arena=a.arena, agree=a.agree, ids_match=a.ids_match, note=note)

    def name(self, label: int) -> str:
        return self.oracle.label_name(label)

    def reset(self) -> str:
        """`:reset`: ask the device to reboot (RESET, OK, fresh HELLO)."""
        if self.session.device is None:
            return "no device"
        try:
            self.session.reset()
        except (DeviceError, DeviceTimeout, LinkClosed) as exc:
            return f"reset failed: {str(exc).splitlines()[0]}"
        return "device reset: fresh HELLO received"

    def status(self) -> str:
        """The status line: board, target, firmware/model ids, link state, errors so far."""
        h = self.hello
        ids = f"fw {h.fw}  model {h.model_hex}" if h is not None else "fw ?  model ?"
        pid = f" (pid {self.pid})" if self.pid else ""
        emu = " (emulated)" if self.emulated else ""
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
    """Read sentences until EOF/`:quit`/Ctrl-C; returns the exit code, as for `hil run`: 3 if
    the device could never be reached or a sentence went unanswered (lost), 1 if one was
    refused (device error, or input that is not UTF-8), else 0. The target is stopped on every
    way out."""
    from rich.console import Console

    console = Console(file=stdout, force_terminal=interactive or None, highlight=False)
    history: list[Turn] = []
    turn: Turn | None = None
    notice = ""
    seen: set[str] = set()  # statuses of the turns: the exit code
    try:
        try:
            session.connect()
        except (HilError, OSError) as exc:
            session.errors.append(str(exc).splitlines()[0])
            print(f"hil console: {exc}", file=sys.stderr)
            if not interactive:
                return EXIT_RUN_ERROR
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
            seen.add(turn.status)
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
    return EXIT_RUN_ERROR if "lost" in seen else EXIT_EXPECTATIONS if "error" in seen else EXIT_OK


def cmd_console(args: argparse.Namespace) -> int:
    """`hil console --board B [--target T] [--model M] [--elf F]`."""
    try:
        board = get_board(args.board)
        target = args.target or board.default_target
        run_dir = Path(args.out or runs_dir() / f"console-{board.name}-{target}")
        run_dir.mkdir(parents=True, exist_ok=True)
        session = ConsoleSession(board, target, resolve(args.model), run_dir,
                                 elf=Path(args.elf) if args.elf else None, port=args.port,
                                 timeout_s=args.timeout)
        session.build()
    except KeyError as exc:
        print(f"hil console: {exc.args[0]}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except HilError as exc:
        print(f"hil console: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    if isinstance(sys.stdin, io.TextIOWrapper):  # invalid UTF-8 must reach us, not kill us
        sys.stdin.reconfigure(errors="surrogateescape")
    interactive = not args.plain and sys.stdin.isatty() and sys.stdout.isatty()
    return run_console(session, sys.stdin, sys.stdout, interactive)
