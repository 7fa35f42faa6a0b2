"""One board session: the one way every front end boots a board, talks to it and judges it.

`hil run`'s jobs, `hil console`, the Robot library and the pytest fixture all do the same
things with a board, so they all do them here: say whether the target can run on this machine
(and why not), build or take the firmware, start the target, wait for the boot HELLO (asking
for it when a real board booted before the host listened), check the protocol version and the
model, classify, and judge every answer against the host's integer reference with the cycle
counts converted once, by the target class that knows what they mean (docs/design.md,
contracts 1 and 4).

The front ends keep only what is theirs: the runner its jobs, shards, resume, retries and
records; the console its two views; Robot and pytest their keywords and fixture, which turn a
failure into an assertion that names the board, the target and the transcript (`classify`,
`check_agrees`). `ask` is the same request without that translation, for callers that record
errors instead of failing on them.

Data flows one way: this module imports boards, targets, protocol, firmware and the quant
reference; nothing below it imports it.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hil import firmware as fw
from hil.boards import Board, get_board
from hil.errors import HilError, NoHello, UsageError, WrongFirmware
from hil.oracle import Oracle, softmax
from hil.paths import runs_dir
from hil.protocol import PROTO_VERSION, Device, DeviceError, DeviceTimeout, Hello, LinkClosed
from hil.targets import Target, TargetOptions, make_target, target_class
from hil.targets.base import MissingTool, TargetError


class SessionError(AssertionError):
    """A check or a step failed (Robot and pytest); the message names board, target and log."""

    ROBOT_SUPPRESS_NAME = True  # Robot shows the message, not "SessionError: ..."


class TargetUnavailable(Exception):
    """The target cannot run on this machine (tool missing): tests skip, they do not fail."""


# ---- one judged answer -------------------------------------------------------------------------


@dataclass
class Answer:
    """One classification, judged: what the device said, what the host says, in honest units."""

    text: str
    label: int
    label_name: str
    logits: list[int]
    ref_logits: list[int]
    agree: bool  # logits equal the reference's bit for bit
    ids: list[int] | None  # as the device tokenized (None: not reported)
    host_ids: list[int]
    ids_match: bool | None
    tokens: int
    cycles: int  # in `unit`
    cycles_raw: int  # as the device counted (`device_unit`)
    device_unit: str
    unit: str
    layers: list[int]  # per stage, in `unit`
    tokenizer_cycles: int | None
    stack: int
    arena: int
    host_ms: float  # the host's round trip: never called the board's latency
    # From the device's own count: cycles at the board clock, or instructions times the board's
    # estimated cycles per instruction; None for instructions with no estimate (contract 4).
    latency_ms: float | None
    emulated: bool
    probs: list[float]  # softmax(logits x logit_scale), computed on the host (contract 4)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def record(self) -> dict[str, Any]:
        """The results.jsonl fields of an ok answer (hil.results)."""
        return {"status": "ok", "pred": self.label, "logits": self.logits,
                "ref_logits": self.ref_logits, "agree": self.agree, "ids_match": self.ids_match,
                "tokens": self.tokens, "cycles": self.cycles, "cycles_raw": self.cycles_raw,
                "device_unit": self.device_unit, "unit": self.unit, "layers": self.layers,
                "stack": self.stack, "arena": self.arena,
                "tokenizer_cycles": self.tokenizer_cycles, "host_ms": round(self.host_ms, 3)}


# ---- the session -------------------------------------------------------------------------------


def resolve(model: str | Path) -> Path:
    """A shipped model name or a blob path -> the blob (UsageError when there is none)."""
    from hil.scenario import ScenarioError, resolve_model

    try:
        return resolve_model(str(model))
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None


class BoardSession:
    """Build, boot and talk to one board; `stop()` always cleans up (also after a failure).

    `wrap` lets a caller put something between the target and the session (the runner's fault
    injection, `--faults`); `factory` replaces the target itself (a test's stand-in for what
    cannot exist here); `oracle` lets parallel sessions share one reference.
    """

    def __init__(self, board: str | Board, target: str | None = None, *,
                 model: str | Path = "nlu_scenario", elf: str | Path | None = None,
                 run_dir: str | Path | None = None, port: str | None = None,
                 serial_number: str | None = None, place: str | None = None,
                 timeout: float | None = None,
                 retries: int = 1, hello_timeout: float | None = None, name: str | None = None,
                 oracle: Oracle | None = None,
                 wrap: Callable[[Target], Target] | None = None,
                 factory: Callable[[str], Target] | None = None,
                 profile: bool = False, execution_metrics: bool = False) -> None:
        try:
            self.board: Board = board if isinstance(board, Board) else get_board(board)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        self.target_kind = target or self.board.default_target
        self.target_cls = target_class(self.target_kind, self.board)
        self.model_name = str(model)
        self.model_path = oracle.model_path if oracle is not None else resolve(model)
        self.elf = Path(elf) if elf else None
        self.run_dir = Path(run_dir or runs_dir() / f"{self.board.name}-{self.target_kind}")
        self.options = TargetOptions(port=port, serial_number=serial_number, place=place,
                                     profile=profile, execution_metrics=execution_metrics)
        self.timeout = timeout or self.target_cls.request_timeout_s
        self.retries = retries
        self.hello_timeout = hello_timeout or self.target_cls.hello_timeout_s
        self.name = name or f"{self.target_kind}-{self.board.name}"
        self.wrap = wrap
        self.factory = factory  # tests: name -> a target that cannot exist here
        self.on_answer: Callable[[Answer], None] | None = None  # pytest: record_property
        self._unread: list[str] = []  # lines `expect` has not looked at yet
        self._oracle = oracle
        self.target: Target | None = None
        self.device: Device | None = None
        self.hello: Hello | None = None
        self.last: Answer | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- naming, for every message --

    @property
    def where(self) -> str:
        return f"[{self.board.name} on {self.target_kind}]"

    @property
    def arena_warning(self) -> str | None:
        """Hello.arena_warning of the booted board, for run, console, Robot and pytest."""
        return self.hello.arena_warning if self.hello is not None else None

    @property
    def log_path(self) -> str:
        link = getattr(self.target, "link", None)
        return str(link.log_path) if link is not None else str(self.run_dir)

    def fail(self, message: str) -> SessionError:
        """An assertion naming board and target, with the last bytes and the transcript."""
        link = getattr(self.target, "link", None)
        tail = link.tail()[-300:] if link is not None else b""
        text = f"{self.where} {message}"
        if tail:
            text += f"\n  last bytes received: {tail!r}"
        return SessionError(text + f"\n  full log: {self.log_path}")

    # -- the model on the host --

    @property
    def oracle(self) -> Oracle:
        with self._lock:
            if self._oracle is None:
                self._oracle = Oracle.load(self.model_path)
            return self._oracle

    @functools.cached_property
    def cpi(self) -> float | None:
        """The board's estimated cycles per instruction for this model (shipped models only)."""
        from hil.boards import estimated_cpi

        name = self.model_path.parent.name if self.model_path.name == "model.bin" else None
        return estimated_cpi(self.board.name, name)

    @property
    def labels(self) -> list[str]:
        return self.oracle.labels

    def label_id(self, label: str | int) -> int:
        """A label given as its name or its number."""
        text = str(label).strip()
        if text.lstrip("-").isdigit():
            return int(text)
        if text not in self.labels:
            raise SessionError(f"{self.where} unknown label {text!r} for model "
                               f"{self.model_name}; labels: {', '.join(self.labels) or '?'}")
        return self.labels.index(text)

    def label_name(self, label: int) -> str:
        return self.oracle.label_name(label)

    # -- before anything starts --

    def unavailable(self) -> str | None:
        """Why this board cannot run on its target here (None = it can). Starts nothing."""
        why = self.target_cls.missing()
        if why is None and self.target_cls.builds_firmware and self.elf is None:
            why = fw.missing_toolchain(self.board)
        if why is None and not self.target_cls.builds_firmware:
            probe = self.target_cls(self.board, self.run_dir, options=self.options)
            why = getattr(probe, "board_missing", lambda: None)()
        return why

    def prepare(self, dest: Path | None = None) -> tuple[Path | None, fw.ElfSizes | None]:
        """The firmware to boot and its sizes: the ELF given, else built into the run folder.
        Raises hil.firmware's typed errors (does not fit: exit 1; no toolchain: exit 2)."""
        if self.elf is None and self.target_cls.builds_firmware:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.elf = fw.build(self.board, self.model_path, log_path=self.run_dir / "build.log",
                                dest=dest or self.run_dir / "firmware.elf")
        elif self.elf is not None and not self.elf.is_file():
            raise UsageError(f"{self.where} firmware {self.elf} does not exist")
        if self.elf is None or not self.board.is_chip:
            return self.elf, None  # a host executable's sizes say nothing about a chip
        sizes = fw.elf_sizes(self.elf)
        fw.check_fits(self.board, sizes)
        return self.elf, sizes

    # -- life cycle --

    def start(self) -> Hello:
        """Start the target, wait for the boot HELLO (or ask for it), check protocol and model.

        Raises MissingTool, TargetError, NoHello, WrongFirmware or LinkClosed; the target is
        stopped again before any of them leaves."""
        if self.elf is None and self.target_cls.builds_firmware:
            self.prepare()
        self.stop()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        target = self.factory(self.name) if self.factory else make_target(
            self.target_kind, self.board, self.run_dir, elf=self.elf, name=self.name,
            options=self.options)
        self.target = self.wrap(target) if self.wrap else target
        try:
            link = self.target.start()
            self.device = Device(link, timeout=self.timeout, retries=self.retries)
            self.hello = self._wait_hello()
            self._check_firmware()
        except BaseException:
            self.stop()
            raise
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ref-{self.name}")
        self._unread = list(self.device.lines)  # the boot banner, for `expect`
        return self.hello

    def boot(self) -> Hello:
        """`start` for tests (Robot, pytest): TargetUnavailable when the target cannot run on this
        machine (they skip), DoesNotFit as it is, and a SessionError naming board, target and
        log for every other failure."""
        why = self.unavailable()
        if why:
            raise TargetUnavailable(f"{self.where} cannot run here: {why}")
        try:
            return self.start()
        except MissingTool as exc:
            raise TargetUnavailable(f"{self.where} {exc}") from None
        except fw.DoesNotFit:
            raise
        except (HilError, LinkClosed) as exc:
            raise self.fail(f"the board did not start: {exc}") from None

    def _wait_hello(self) -> Hello:
        assert self.device is not None and self.target is not None
        try:
            try:
                return self.device.wait_hello(self.hello_timeout)
            except DeviceTimeout:
                # The board may have booted before the host opened the link: ask once.
                return self.device.hello(timeout=min(self.hello_timeout, 5.0))
        except (DeviceTimeout, ValueError) as exc:  # ValueError: a frame that is no HELLO
            why = "" if isinstance(exc, DeviceTimeout) else f"; the answer was not a HELLO: {exc}"
            link = self.target.link
            raise NoHello(str(TargetError(
                f"{self.name}: the board never said HELLO within {self.hello_timeout:g} s, nor "
                f"answered a HELLO request (expected a line starting with `$0 HELLO proto="
                f"{PROTO_VERSION}`){why}", link.tail() if link else b"",
                link.log_path if link else None))) from None

    def _check_firmware(self) -> None:
        """The device speaks this host's protocol and runs the host's model, or WrongFirmware."""
        assert self.hello is not None and self.target is not None
        link = self.target.link
        tail, log = (link.tail(), link.log_path) if link else (b"", None)
        rebuild = f"`hil build --board {self.board.name} --model {self.model_path}`"
        if str(self.hello.proto) != str(PROTO_VERSION):
            raise WrongFirmware(str(TargetError(
                f"{self.name}: the device speaks protocol version {self.hello.proto}, this host "
                f"speaks {PROTO_VERSION} (firmware {self.hello.fw or '?'}): rebuild the firmware "
                f"from this checkout ({rebuild}) or use the matching hil", tail, log)))
        if self.hello.model != self.oracle.model_id:
            raise WrongFirmware(str(TargetError(
                f"{self.name}: the device runs model {self.hello.model or 0:08X}, the host's "
                f"blob {self.model_path} is {self.oracle.model_id:08X}: rebuild the firmware "
                f"({rebuild})", tail, log)))

    def stop(self) -> None:
        if self.target is not None:
            self.target.stop()
        self.device = None

    def close(self) -> None:
        """Stop, and let the reference thread go (the session is not started again)."""
        self.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def alive(self) -> bool:
        return self.target is not None and self.device is not None and self.target.alive()

    def need_device(self) -> Device:
        if self.device is None:
            raise SessionError(f"{self.where} the board is not started (use Start Board first)")
        return self.device

    def clean(self) -> None:
        """Leave the link as a fresh test wants it: nothing pending, the device answering."""
        dev = self.need_device()
        dev.drain(quiet=0.05, limit=5.0)
        try:
            self.hello = dev.hello(timeout=min(self.timeout, 30.0))
        except DeviceTimeout as exc:
            raise self.fail(f"the device did not answer HELLO between tests: {exc}") from None

    def reset(self) -> Hello:
        """RESET: the device answers OK and boots again (fresh HELLO)."""
        self.hello = self.need_device().reset(timeout=max(self.hello_timeout, 30.0))
        return self.hello

    # -- the raw stream, as pytest-embedded's DUT has it --

    def write(self, data: str | bytes) -> None:
        """Send bytes to the device as they are (no framing): noise, cut frames, raw commands."""
        self.need_device().send_raw(data.encode() if isinstance(data, str) else data)

    def expect(self, pattern: str | bytes | re.Pattern[str],
               timeout: float = 30.0) -> re.Match[str]:
        """Wait until a line from the device matches `pattern` (a regex; searched, not
        anchored) and return the match. Lines are text lines (the boot banner, FAULT reports)
        and frames as sent (`$3 ERROR code=BAD_FRAME ...`); each is looked at once, in order,
        so two expects find two lines. Fails with the lines seen and the transcript."""
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(
            pattern.decode() if isinstance(pattern, bytes) else pattern)
        dev = self.need_device()
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            if not self._unread:
                try:
                    ev = dev.next_event(max(0.0, deadline - time.monotonic()))
                except DeviceTimeout:
                    raise self.fail(f"expected a line matching {rx.pattern!r} within "
                                    f"{timeout:g} s; lines seen: {seen[-5:]}") from None
                self._unread.append(_line_of(ev))
            line = self._unread.pop(0)
            seen.append(line)
            m = rx.search(line)
            if m:
                return m

    def expect_exact(self, text: str, timeout: float = 30.0) -> re.Match[str]:
        """`expect` for a literal string."""
        return self.expect(re.escape(text), timeout)

    # -- requests --

    def ask(self, text: str | bytes) -> Answer:
        """CLASSIFY `text` and judge the answer; the reference runs while the device computes.
        Raises DeviceError, DeviceTimeout (the Device retried first) or LinkClosed."""
        dev = self.need_device()
        as_text = text if isinstance(text, str) else text.decode("utf-8", "replace")
        host_ids = self.oracle.ids(as_text)
        pool = self._pool or ThreadPoolExecutor(max_workers=1)
        ref = pool.submit(self.oracle.logits, host_ids)
        t0 = time.perf_counter()
        try:
            res = dev.classify(text, timeout=self.timeout)
        finally:
            host_ms = (time.perf_counter() - t0) * 1e3
            if pool is not self._pool:
                pool.shutdown(wait=False)
        if dev.info is not None and dev.info is not self.hello:
            self.hello = dev.info  # the device reset during the request (fresh HELLO)
        self.last = self._judge(as_text, res, host_ids, ref.result(), host_ms)
        if self.on_answer is not None:
            self.on_answer(self.last)
        return self.last

    def _judge(self, text: str, res: Any, host_ids: list[int], ref: list[int],
               host_ms: float) -> Answer:
        cls = self.target_cls
        device_unit = self.hello.unit if self.hello else "dwt"
        clock = int((self.hello.clock if self.hello else 0) or self.board.clock_hz)

        def conv(raw: int) -> int:
            return cls.to_cycles(int(raw), device_unit, clock)

        cycles = conv(res.cycles or 0)
        logits = [int(v) for v in res.logits]
        return Answer(
            text=text, label=int(res.label), label_name=self.label_name(int(res.label)),
            logits=logits, ref_logits=ref, agree=logits == ref,
            ids=None if res.ids is None else [int(i) for i in res.ids], host_ids=host_ids,
            ids_match=None if res.ids is None else [int(i) for i in res.ids] == host_ids,
            tokens=int(res.tokens or 0), cycles=cycles, cycles_raw=int(res.cycles or 0),
            device_unit=device_unit, unit=cls.cycle_unit(device_unit),
            layers=[conv(v) for v in res.layers or []],
            tokenizer_cycles=None if res.tokcycles is None else conv(res.tokcycles),
            stack=int(res.stack or 0), arena=int(res.arena or 0), host_ms=host_ms,
            latency_ms=cls.latency_ms(cycles, device_unit, clock, self.cpi),
            emulated=cls.emulated, probs=softmax(logits, self.oracle.logit_scale))

    def classify(self, text: str | bytes) -> Answer:
        """`ask`, failing with board, target and log on a device ERROR or a timeout."""
        try:
            return self.ask(text)
        except DeviceError as exc:
            raise self.fail(f"expected a RESULT for {_short(text)}, the device answered ERROR "
                            f"code={exc.code} reason={exc.reason!r}") from None
        except DeviceTimeout as exc:
            raise self.fail(f"expected a RESULT for {_short(text)}: {exc}") from None

    def refused(self, text: str | bytes) -> tuple[str, str]:
        """CLASSIFY that must be refused: returns (code, reason); fails when a RESULT comes."""
        dev = self.need_device()
        try:
            res = dev.classify(text, timeout=self.timeout)
        except DeviceError as exc:
            return exc.code, exc.reason
        except DeviceTimeout as exc:
            raise self.fail(f"expected an ERROR for {_short(text)}: {exc}") from None
        raise self.fail(f"expected an ERROR for {_short(text)}, got RESULT label={res.label}")

    def reference(self, text: str) -> tuple[list[int], list[int]]:
        """(host token ids, reference logits) for `text`."""
        ids = self.oracle.ids(text)
        return ids, self.oracle.logits(ids)

    def check_agrees(self, answer: Answer | None = None) -> None:
        """The device's ids and logits equal the host tokenizer's and the reference's."""
        ans = answer or self.last
        if ans is None:
            raise SessionError(f"{self.where} nothing classified yet")
        if ans.ids is not None and not ans.ids_match:
            raise self.fail(f"token ids differ for {_short(ans.text)}: host {ans.host_ids}, "
                            f"device {ans.ids}")
        if not ans.agree:
            diff = [i for i, (a, b) in enumerate(zip(ans.logits, ans.ref_logits, strict=False))
                    if a != b]
            raise self.fail(f"logits differ from the integer reference for {_short(ans.text)} "
                            f"at {diff or 'length'}: expected {ans.ref_logits}, device "
                            f"{ans.logits}")


def target_unavailable(board: str, target: str | None = None) -> str | None:
    """Why `board` cannot run on `target` here (None = it can). No process is started."""
    try:
        return BoardSession(board, target).unavailable()
    except HilError as exc:
        return str(exc)


def _line_of(ev: Any) -> str:
    """A protocol event as the line the device sent."""
    from hil.protocol import Frame, TextLine

    if isinstance(ev, TextLine):
        return ev.text
    if isinstance(ev, Frame):
        return ev.encode().decode("ascii", "replace").rstrip("\n")
    return f"<damaged frame: {ev.reason}: {ev.raw!r}>"


def _short(text: str | bytes, n: int = 60) -> str:
    return repr(text if len(text) <= n else text[:n] + ("..." if isinstance(text, str) else b"..."))
