"""The `qemu` target: `qemu-system-arm -M <machine>` with the board's UART on a loopback socket.

Facts this follows (docs/design.md, "Emulator facts"): never `-nographic` (it eats byte 0x01 as an
escape), so `-display none -monitor none`; `-icount shift=0` so SysTick counts are deterministic
instruction counts; a hung QEMU ignores SIGTERM, so stop is SIGKILL; an undrained serial deadlocks
the guest, so the link's thread reads continuously.

The serial is a TCP *client* chardev with `nodelay=on` connecting to a socket the host already
listens on (127.0.0.1 only): QEMU connects before the guest runs its first instruction, so the
boot banner and HELLO are never lost, and there is no port race (the host picks the port first).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

from hil.boards import Board
from hil.targets.base import (
    FdLink,
    ManagedProcess,
    MissingTool,
    ProcessTarget,
    StreamLink,
    TargetError,
    TargetOptions,
    Transcript,
)

UNIT_QEMU = "instructions (qemu icount)"

QEMU_INSTALL = "sudo apt-get install -y --no-install-recommends qemu-system-arm"
CONNECT_TIMEOUT = 10.0


def find_qemu() -> str | None:
    """$QEMU, else qemu-system-arm on PATH."""
    env = os.environ.get("QEMU")
    if env:
        return env if shutil.which(env) else None
    return shutil.which("qemu-system-arm")


def qemu_argv(qemu: str, machine: str, elf: Path, port: int) -> list[str]:
    """The command line; kept separate so tests can check it without starting QEMU."""
    return [
        qemu, "-M", machine,
        "-display", "none", "-monitor", "none", "-nodefaults",
        "-serial", f"tcp:127.0.0.1:{port},nodelay=on",
        "-icount", "shift=0",
        "-semihosting-config", "enable=on,target=native",
        "-kernel", str(elf),
    ]


class SocketLink(FdLink):
    """FdLink over a connected socket; keeps the socket object alive with its fd."""

    def __init__(self, name: str, transcript: Transcript, sock: socket.socket) -> None:
        super().__init__(name, transcript, sock.fileno())
        self.sock = sock

    def _close_stream(self) -> None:
        self.sock.close()


class QemuTarget(ProcessTarget):
    """One QEMU instance running one ELF."""

    kind = "qemu"
    emulated = True
    hello_timeout_s = 60.0
    request_timeout_s = 20.0
    backend = "qemu-system-arm"
    install_hint = QEMU_INSTALL
    unit = UNIT_QEMU
    latency_wording = "QEMU icount instructions / board clock (1 cycle per instruction assumed)"

    def __init__(self, board: Board, run_dir: Path, *, elf: Path | None = None,
                 name: str | None = None, options: TargetOptions | None = None) -> None:
        super().__init__(board, run_dir, elf=elf, name=name, options=options)
        if board.qemu_machine is None:
            raise TargetError(f"board {board.name} has no QEMU machine; it runs on "
                              f"{', '.join(board.targets)}")
        if elf is None:
            raise TargetError("qemu: needs the firmware ELF to boot")
        self.elf = Path(elf)

    @classmethod
    def locate(cls) -> str | None:
        return find_qemu()

    @classmethod
    def missing(cls) -> str | None:
        return None if find_qemu() else f"qemu-system-arm not found (PATH or $QEMU); install: " \
            f"{QEMU_INSTALL}"

    @classmethod
    def to_cycles(cls, raw: int, device_unit: str, clock_hz: int) -> int:
        """QEMU has no DWT: the firmware reports SysTick ticks, and under `-icount shift=0` one
        instruction is one ns of virtual time, so a tick is 1e9/clock instructions."""
        if device_unit == "systick":
            return round(raw * 1_000_000_000 / clock_hz)
        return int(raw)

    def start(self) -> StreamLink:
        qemu = find_qemu()
        if qemu is None:
            raise MissingTool(self.missing() or "qemu-system-arm not found")
        if not self.elf.is_file():
            raise TargetError(f"qemu: firmware {self.elf} does not exist")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        argv = qemu_argv(qemu, self.board.qemu_machine or "", self.elf, port)
        stderr_path = self.run_dir / f"{self.name}.stderr.log"
        with open(stderr_path, "ab") as err:
            self.proc = ManagedProcess(argv, stdin=open(os.devnull, "rb"),  # noqa: SIM115
                                       stdout=err, stderr=err, close_fds=True)
        transcript = Transcript(self.log_path)
        transcript.note(f"started {' '.join(argv)} pid {self.proc.pid}")
        conn = self._accept(listener, stderr_path)
        listener.close()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.link = SocketLink(self.name, transcript, conn)
        self.link.describe_exit = lambda: self._why_exited(stderr_path)
        self.link.start()
        return self.link

    def _why_exited(self, stderr_path: Path) -> str:
        """Exit status plus QEMU's own last words (`qemu: fatal: Lockup ...`), which land in
        its stderr log, not on the UART."""
        assert self.proc is not None
        reason = self.proc.exit_reason()
        lines = [ln for ln in stderr_path.read_text(errors="replace").splitlines()
                 if ln.strip() and not ln.startswith(("R", "s", "d", "FPSCR", "XPSR"))]
        said = f"; qemu said: {' | '.join(lines[-2:])} (stderr: {stderr_path})" if lines else ""
        return reason + said

    def _accept(self, listener: socket.socket, stderr_path: Path) -> socket.socket:
        import time

        assert self.proc is not None
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
                conn.setblocking(True)
                return conn
            except TimeoutError:
                if not self.proc.alive():
                    break
        self.proc.kill()
        listener.close()
        raise TargetError(f"qemu never connected its serial port ({self.proc.describe()})",
                          stderr_path.read_bytes()[-800:], stderr_path)


    def info(self) -> dict[str, Any]:
        return {**super().info(), "machine": self.board.qemu_machine, "elf": str(self.elf),
                "icount": "shift=0"}
