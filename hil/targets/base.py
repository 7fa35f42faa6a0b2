"""What every target shares: the Target interface, a byte-stream Link with a transcript, and a
process owner that never leaves an emulator running after the host is gone.

Why a reader thread per link: QEMU blocks when its serial output is not drained (a pty or socket
written without being read deadlocks the guest), so bytes are pumped off the stream continuously
into a buffer, and `read(timeout)` only takes from that buffer. The same thread writes every byte to
a transcript under the run directory, so an error can always show "what came" and "where the full
log is" (docs/design.md, "Error messages": the tail of the bytes and the log path).
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.boards import Board
from hil.errors import EXIT_ENVIRONMENT, RunError
from hil.protocol import LinkClosed

TAIL_BYTES = 800
#: Counts the native port reports: host nanoseconds (any target whose device says unit=ns).
UNIT_NS = "ns (host)"


class TargetError(RunError):
    """A target could not start or failed: says what was expected, what came, where the log is."""

    def __init__(self, message: str, tail: bytes = b"", log_path: Path | None = None) -> None:
        self.message = message
        self.tail = tail
        self.log_path = log_path
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = self.message
        if self.tail:
            text += f"\n  last bytes received ({len(self.tail)}): {format_tail(self.tail)}"
        elif self.log_path is not None:
            text += "\n  no bytes were received"
        if self.log_path is not None:
            text += f"\n  full log: {self.log_path}"
        return text


class MissingTool(TargetError):
    """A program the target needs (qemu, renode, ...) is not installed; carries the install hint."""

    exit_code = EXIT_ENVIRONMENT


def format_tail(data: bytes, limit: int = TAIL_BYTES) -> str:
    """Bytes as a printable Python literal, keeping the end (the part that explains a failure)."""
    data = data[-limit:]
    return repr(data)


# ---- the transcript --------------------------------------------------------------------------


class Transcript:
    """A line-oriented log of both directions: `<` device to host, `>` host to device.

    Partial lines are kept until their newline (or until close), so a banner split across reads
    still shows as one line. Non-UTF-8 bytes are escaped, never dropped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the link
        self._lock = threading.Lock()
        self._partial = {b"<": b"", b">": b""}
        self._t0 = time.monotonic()

    def _emit(self, direction: bytes, line: bytes) -> None:
        stamp = f"{time.monotonic() - self._t0:10.3f} ".encode()
        text = line.decode("utf-8", "backslashreplace").encode()
        self._file.write(stamp + direction + b" " + text + b"\n")

    def record(self, direction: bytes, data: bytes) -> None:
        with self._lock:
            if self._file.closed:
                return
            pending = self._partial[direction] + data
            *lines, rest = pending.split(b"\n")
            for line in lines:
                self._emit(direction, line.rstrip(b"\r"))
            self._partial[direction] = rest

    def note(self, text: str) -> None:
        """A host-side remark (target started, killed, ...), marked `#`."""
        with self._lock:
            if not self._file.closed:
                self._emit(b"#", text.encode())

    def close(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            for direction, rest in self._partial.items():
                if rest:
                    self._emit(direction, rest + b" [no newline]")
            self._file.close()


# ---- the link ----------------------------------------------------------------------------------


class StreamLink(ABC):
    """hil.protocol.Link over a byte stream, drained by a background thread.

    Subclasses supply `_recv(timeout)` (bytes, b"" when nothing came, None at end of stream) and
    `_send(data)`. `describe_exit` lets the owner add why the stream ended (exit code, signal).
    """

    def __init__(self, name: str, transcript: Transcript) -> None:
        self.name = name
        self.transcript = transcript
        self._buf = bytearray()
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_len = 0
        self._cond = threading.Condition()
        self._eof = False
        self._closing = False
        self.describe_exit: Any = None  # callable returning a short reason, set by the target
        self._thread = threading.Thread(target=self._pump, name=f"link-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @abstractmethod
    def _recv(self, timeout: float) -> bytes | None: ...

    @abstractmethod
    def _send(self, data: bytes) -> None: ...

    @abstractmethod
    def _close_stream(self) -> None:
        """Release the OS resource; called once, after the pump stopped."""

    def _pump(self) -> None:
        while not self._closing:
            try:
                data = self._recv(0.05)
            except OSError:
                data = None
            if data is None:
                break
            if data:
                self.transcript.record(b"<", data)
                with self._cond:
                    self._buf += data
                    self._tail.append(data)
                    self._tail_len += len(data)
                    while self._tail_len - len(self._tail[0]) >= TAIL_BYTES:
                        self._tail_len -= len(self._tail.popleft())
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """The stream ended or was closed (nothing more will come)."""
        with self._cond:
            return self._eof

    def tail(self) -> bytes:
        """The last bytes the device sent (at most TAIL_BYTES), for error messages."""
        with self._cond:
            return b"".join(self._tail)[-TAIL_BYTES:]

    @property
    def log_path(self) -> Path:
        return self.transcript.path

    def _closed_error(self) -> LinkClosed:
        why = self.describe_exit() if self.describe_exit else "stream ended"
        err = TargetError(f"{self.name}: the link closed ({why})", self.tail(), self.log_path)
        return LinkClosed(str(err))

    def read(self, timeout: float) -> bytes:
        """Everything received so far, waiting up to `timeout` s for at least one byte."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not self._buf and not self._eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self._cond.wait(left)
            if self._buf:
                data = bytes(self._buf)
                self._buf.clear()
                return data
        raise self._closed_error()

    def write(self, data: bytes) -> None:
        if self._eof:
            raise self._closed_error()
        self.transcript.record(b">", data)
        try:
            self._send(data)
        except OSError as exc:
            raise LinkClosed(f"{self.name}: write failed ({exc}); log: {self.log_path}") from exc

    def close(self) -> None:
        self._closing = True
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        with contextlib.suppress(OSError):
            self._close_stream()
        with self._cond:
            self._eof = True
            self._cond.notify_all()
        self.transcript.close()


class FdLink(StreamLink):
    """A link over a file descriptor: a pty master (native, Renode) or a connected socket (QEMU)."""

    def __init__(self, name: str, transcript: Transcript, fd: int) -> None:
        super().__init__(name, transcript)
        self.fd = fd

    def _recv(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        data = os.read(self.fd, 65536)  # EIO on a pty whose slave side is gone -> OSError
        return data or None

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self.fd], [], 5.0)
            if not ready:
                raise OSError("peer does not read (write blocked for 5 s)")
            view = view[os.write(self.fd, view):]

    def _close_stream(self) -> None:
        os.close(self.fd)


from hil.targets.process import (  # noqa: E402,F401 - re-exported: the targets' vocabulary
    ManagedProcess,
    install_signal_handlers,
    kill_all_children,
)

# ---- the interface ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetOptions:
    """What only some targets use, passed to every target the same way (the others ignore it):
    the serial port and the probe's USB serial number of a real board, the labgrid place (names
    or shell patterns, comma-separated) of a board in a farm."""

    port: str | None = None
    serial_number: str | None = None
    place: str | None = None  # labgrid: place names or patterns (docs/farm.md)
    profile: bool = False  # emulators: guest profiler (hil run --profile)
    execution_metrics: bool = False  # emulators: memory/peripheral/exception log (costly)


class Target(ABC):
    """Where firmware runs. `start()` boots it and returns a Link; `stop()` always cleans up.

    A target class owns every fact about its backend, so that adding a kind of target means its
    class and its line in `hil.targets.TARGETS` (docs/design.md, "Add a target"): how long a boot
    may take before HELLO, how to install what it needs, whether it can run here and why not,
    what its cycle counts are (unit label and conversion) and how a latency derived from them is
    worded. Every target is built the same way: `cls(board, run_dir, elf=..., name=...,
    options=...)`.
    """

    kind: str = "?"
    emulated: bool = False
    #: Seconds from start to the boot HELLO before the board is declared silent.
    hello_timeout_s: float = 30.0
    #: Seconds one request may take by default (an emulator on a loaded CI machine is slow).
    request_timeout_s: float = 60.0
    #: The host builds the firmware this target boots (False: the user flashed the board).
    builds_firmware: bool = True
    #: More than one instance can run at once (`hil run --jobs N`).
    parallel: bool = True
    #: The program this target runs (empty: none of its own), and how to install what it needs,
    #: for "not found" messages and `hil doctor`.
    backend: str = ""
    install_hint: str = ""
    #: The label of the counts this target's firmware reports (docs/design.md, contract 4).
    unit: str = "cycles (dwt, board)"
    #: How a latency in ms is derived from those counts.
    latency_wording: str = "DWT cycles / board clock"

    def __init__(self, board: Board, run_dir: Path, *, elf: Path | None = None,
                 name: str | None = None, options: TargetOptions | None = None) -> None:
        self.board = board
        self.run_dir = Path(run_dir)
        self.elf = None if elf is None else Path(elf)
        self.name = name or f"{self.kind}-{board.name}"
        self.options = options or TargetOptions()
        self.link: StreamLink | None = None

    # -- facts, asked before anything starts --

    @classmethod
    def missing(cls) -> str | None:
        """Why the backend program cannot run here (not installed: with the install hint), or
        None. Only the backend: the firmware toolchain is `hil.firmware`'s business."""
        return None

    @classmethod
    def run_metrics(cls, run_dir: Path) -> dict[str, Any]:
        """What the backend measured over a whole run, for summary.json (Renode: its opcode
        histogram, guest profile, memory and peripheral accesses); {} when it measures nothing
        of its own."""
        return {}

    @classmethod
    def locate(cls) -> str | None:
        """Where the backend program is (None: not found, or the target has none)."""
        return None

    @classmethod
    def cycle_unit(cls, device_unit: str) -> str:
        """The label for counts a device reports with `device_unit` (HELLO `unit=`)."""
        return UNIT_NS if device_unit == "ns" else cls.unit

    @classmethod
    def to_cycles(cls, raw: int, device_unit: str, clock_hz: int) -> int:
        """A raw device count in the unit `cycle_unit` names (only QEMU converts)."""
        return int(raw)

    @classmethod
    def latency_ms(cls, count: float, device_unit: str, clock_hz: int,
                   cpi: float | None) -> float | None:
        """A device count as milliseconds: host ns as they are, cycles at the board clock, and
        executed instructions only through an estimated cycles-per-instruction figure
        (hil.boards.estimated_cpi); None when there is none (docs/design.md, contract 4)."""
        if device_unit == "ns":
            return count / 1e6
        if cls.unit.startswith("instructions"):
            return None if cpi is None else count * cpi / clock_hz * 1e3
        return count / clock_hz * 1e3

    @classmethod
    def latency_source(cls, unit: str | None, cpi: float | None = None) -> str:
        """How `latency_ms` was derived from counts labelled `unit`, said where it is shown."""
        if unit and unit.startswith("ns") and cls.unit != UNIT_NS:
            return "host nanoseconds (a host build on this target)"
        if cls.unit.startswith("instructions") and not (unit or "").startswith("ns"):
            if cpi is None:
                return ("not estimated: the counts are executed instructions and no "
                        "cycles-per-instruction estimate exists for this board and model")
            return (f"{'emulated: ' if cls.emulated else ''}estimated: {cls.unit} x {cpi:.2f} "
                    f"cycles per instruction (Cortex-M4 timing model, benchmarks/cycle_model.py) "
                    f"/ board clock")
        return f"{'emulated: ' if cls.emulated else ''}{cls.latency_wording}"

    # -- life cycle --

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    @abstractmethod
    def start(self) -> StreamLink: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def alive(self) -> bool: ...

    def post_mortem(self, why: str) -> list[str]:
        """Evidence kept when the runner gives this target up (no HELLO, link closed, a timeout
        that reboots it, a run error): lines appended to the error message, e.g. where a log or
        a machine snapshot is. Asked before `stop()`, while the target may still be alive; most
        targets have nothing beyond their transcript, which every message names already."""
        return []

    def info(self) -> dict[str, Any]:
        """What this target is, for the summary and the console."""
        return {"target": self.kind, "board": self.board.name, "emulated": self.emulated,
                "log": str(self.log_path)}

    def __enter__(self) -> StreamLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProcessTarget(Target):
    """A target backed by one local process (native firmware, QEMU, Renode): alive while the
    process is, stopped by killing its process group hard and closing the link."""

    def __init__(self, board: Board, run_dir: Path, *, elf: Path | None = None,
                 name: str | None = None, options: TargetOptions | None = None) -> None:
        super().__init__(board, run_dir, elf=elf, name=name, options=options)
        self.proc: ManagedProcess | None = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
        if self.link is not None:
            self.link.transcript.note("stopped (SIGKILL)")
            self.link.close()

