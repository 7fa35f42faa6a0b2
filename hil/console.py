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
from collections import Counter
from pathlib import Path
from typing import IO, Any

from hil.boards import Board, get_board
from hil.console_view import HELP, TOP_K, Turn, render_screen
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
from hil.report import softmax
from hil.scenario import text_problem
from hil.session import Answer, BoardSession, resolve
from hil.targets import TargetError

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
                 hello_timeout_s: float | None = None, min_confidence: float = 0.8) -> None:
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
        self.min_confidence = min_confidence
        self.tally: Counter[str] = Counter()  # sentences by outcome, for `:stats`
        self.resets = 0
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
        """Send one sentence and count what came of it (`:stats`)."""
        turn = self._classify(text)
        self.tally[turn.status] += 1
        self.tally["low confidence"] += turn.low
        self.tally["truncated"] += bool(turn.truncated)
        return turn

    def _classify(self, text: str) -> Turn:
        """One sentence; a dead link is reported and the target rebooted once."""
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
            arena=a.arena, agree=a.agree, ids_match=a.ids_match, note=note,
            full_tokens=len(self.oracle.tokenizer.encode(a.text, max_len=1 << 30)),
            min_confidence=self.min_confidence)

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
        self.resets += 1
        return "device reset: fresh HELLO received"

    def model_info(self) -> str:
        """`:model`: which model the host judges against, its labels and its token limit."""
        o = self.oracle
        h = self.hello
        dev = (f"; the device runs model {h.model_hex}, max {h.maxtext} bytes of text"
               if h is not None else "")
        warning = self.session.arena_warning
        warn = f"\nwarning: {warning}" if warning else ""
        return (f"model {self.model_path.parent.name} ({self.model_path}), id "
                f"{o.model_id:08X}; max {o.dims['max_len']} tokens including [CLS] (longer "
                f"sentences are cut){dev}\n{len(self.labels)} labels: {', '.join(self.labels)}"
                f"{warn}")

    def stats(self) -> str:
        """`:stats`: the device's own counters (STATS) beside what this session counted."""
        t = self.tally
        mine = (f"session: {sum(t[k] for k in ('ok', 'error', 'lost'))} sentences, ok "
                f"{t['ok']}, refused {t['error']}, lost {t['lost']}, low confidence "
                f"{t['low confidence']}, truncated {t['truncated']}; boots {self.boots}, "
                f"resets {self.resets}, errors {len(self.errors)}")
        if self.session.device is None:
            return f"device: not connected\n{mine}"
        try:
            st = self.session.device.stats(timeout=min(self.session.timeout, 10.0))
        except (DeviceError, DeviceTimeout, LinkClosed, OSError) as exc:
            return f"device: STATS failed: {str(exc).splitlines()[0]}\n{mine}"
        unit = self.hello.unit if self.hello is not None else "?"
        extra = "".join(f", {k} {v}" for k, v in st.extra.items())
        return (f"device (STATS, since its last boot): requests {st.requests}, errors "
                f"{st.errors}, uptime {st.uptime} {unit}{extra}\n{mine}")

    def status(self) -> str:
        """The status line: board, target, firmware/model ids, link state, errors so far."""
        h = self.hello
        ids = f"fw {h.fw}  model {h.model_hex}" if h is not None else "fw ?  model ?"
        pid = f" (pid {self.pid})" if self.pid else ""
        emu = " (emulated)" if self.emulated else ""
        return (f"board {self.board.name}  target {self.target_name}{emu}  {ids}  "
                f"link {self.link_state}{pid}  errors {len(self.errors)}")


# ---- the console loop ---------------------------------------------------------------------------


QUIT = (":quit", ":q", ":exit")


def command(session: ConsoleSession, text: str) -> str | None:
    """The answer to a `:` command, or None when `text` is a sentence. Why a colon word is
    never sent: `:help` classified as a sentence (issue #19) answers nothing anyone asked."""
    word = text.strip().split(" ", 1)[0].lower()
    if len(word) < 2 or word[0] != ":" or not word[1].isalpha():
        return None
    if word == ":help":
        return HELP
    if word == ":model":
        return session.model_info()
    if word == ":stats":
        return session.stats()
    if word == ":reset":
        notice = session.reset()
        if "failed" in notice:
            session.errors.append(notice)
        return notice
    return f"unknown command {word}: nothing sent (:help lists the commands)"


class _Loop:
    """One console run's state: the turns so far, the notice to show, how input is read."""

    def __init__(self, session: ConsoleSession, stdin: IO[str], stdout: IO[str],
                 interactive: bool, history_file: Path | None) -> None:
        from rich.console import Console

        self.session = session
        self.stdin, self.stdout = stdin, stdout
        self.interactive = interactive
        self.console = Console(file=stdout, force_terminal=interactive or None, highlight=False)
        self.history: list[Turn] = []
        self.turn: Turn | None = None
        self.notice = ""
        self.seen: set[str] = set()  # statuses of the turns: the exit code
        self.lines = 0
        self.prompt = _prompt_session(history_file) if interactive else None

    def read(self) -> str | None:
        """The next line (None at EOF), after redrawing the screen on a terminal."""
        self.lines += 1
        if self.prompt is None:
            line = self.stdin.readline()
            return line.rstrip("\r\n") if line else None
        self.console.clear()
        self.console.print(render_screen(self.session, self.turn, self.history, self.notice,
                                         size=tuple(self.console.size)))  # type: ignore[arg-type]
        self.notice = ""
        try:
            return str(self.prompt.prompt("sentence> "))
        except EOFError:
            return None

    def say(self, text: str, err: bool = False) -> None:
        """A notice: on the next screen, or `# ` lines (stdout; stderr for hints) when plain."""
        if self.interactive:
            self.notice = text
            return
        stream = sys.stderr if err else self.stdout
        stream.write("".join(f"# {ln}\n" for ln in text.splitlines()))
        stream.flush()

    def handle(self, text: str) -> bool:
        """One line: a command, a sentence, or an empty line (said, never silently dropped).
        False means leave."""
        if not text.strip():
            self.say(f"line {self.lines}: empty, nothing sent (type a sentence, or :help)",
                     err=True)
            return True
        if text.strip().lower() in QUIT:
            return False
        answer = command(self.session, text)
        if answer is not None:
            self.say(answer)
            return True
        if self.turn is not None:
            self.history.append(self.turn)
        self.turn = self.session.classify(text)
        self.seen.add(self.turn.status)
        if not self.interactive:
            self.stdout.write(self.turn.plain() + "\n")
            self.stdout.flush()
        return True


def _prompt_session(history_file: Path | None) -> Any:
    """prompt_toolkit's line editor: Left/Right, Ctrl-A/E, and Up/Down through the sentences of
    earlier runs too (a FileHistory); in memory only when the file cannot be written."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, History, InMemoryHistory

    history: History = InMemoryHistory()
    if history_file is not None:
        try:
            history_file.parent.mkdir(parents=True, exist_ok=True)
            history_file.touch()
            history = FileHistory(str(history_file))
        except OSError as exc:
            print(f"hil console: history not kept ({history_file}: {exc.strerror})",
                  file=sys.stderr)
    return PromptSession(history=history)


def run_console(session: ConsoleSession, stdin: IO[str], stdout: IO[str],
                interactive: bool, history_file: Path | None = None) -> int:
    """Read sentences until EOF/`:quit`/Ctrl-C; returns the exit code, as for `hil run`: 3 if
    the device could never be reached or a sentence went unanswered (lost), 1 if one was
    refused (device error, or input that is not UTF-8), else 0. The target is stopped on every
    way out."""
    loop = _Loop(session, stdin, stdout, interactive, history_file)
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
        warning = session.session.arena_warning
        if warning:  # before the first sentence, whose NO_MEMORY it would otherwise explain
            print(f"hil console: warning: {warning}", file=sys.stderr, flush=True)
        while True:
            text = loop.read()
            if text is None or not loop.handle(text):
                break
    except KeyboardInterrupt:
        if interactive:
            loop.console.print("\n[yellow]interrupted[/]")
    finally:
        pid = session.pid
        session.close()
        msg = f"hil console: stopped {session.target_name}" + (f" (pid {pid})" if pid else "")
        print(msg, file=sys.stderr, flush=True)
    seen = loop.seen
    return EXIT_RUN_ERROR if "lost" in seen else EXIT_EXPECTATIONS if "error" in seen else EXIT_OK


def history_path() -> Path:
    """Where the console keeps the sentences typed (Up recalls them, across runs): beside the
    run folders, so $HIL_RUNS_DIR moves it too."""
    return runs_dir() / "console-history"


def cmd_console(args: argparse.Namespace) -> int:
    """`hil console --board B [--target T] [--model M] [--elf F]`."""
    try:
        board = get_board(args.board)
        target = args.target or board.default_target
        run_dir = Path(args.out or runs_dir() / f"console-{board.name}-{target}")
        run_dir.mkdir(parents=True, exist_ok=True)
        session = ConsoleSession(board, target, resolve(args.model), run_dir,
                                 elf=Path(args.elf) if args.elf else None, port=args.port,
                                 timeout_s=args.timeout, min_confidence=args.min_confidence)
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
    history = None if args.history == "" else Path(args.history or history_path())
    return run_console(session, sys.stdin, sys.stdout, interactive, history)
