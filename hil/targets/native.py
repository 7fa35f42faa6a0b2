"""The `native` target: the firmware built as a host program, its stdin/stdout on a pty.

A pty (not pipes) so the program sees a terminal like a UART, gets no stdio buffering surprises,
and the host reads exactly the bytes a board would send. The slave side is put in raw mode: a
cooked pty would echo the host's requests back and turn `\\n` into `\\r\\n`.
"""

from __future__ import annotations

import os
import shutil
import tty
from pathlib import Path
from typing import Any

from hil.boards import Board
from hil.targets.base import (
    UNIT_NS,
    FdLink,
    ManagedProcess,
    ProcessTarget,
    StreamLink,
    TargetError,
    TargetOptions,
    Transcript,
)

NATIVE_INSTALL = "sudo apt-get install -y --no-install-recommends gcc make"


class NativeTarget(ProcessTarget):
    """Runs `command` (default: the native firmware executable) on a raw pty."""

    kind = "native"
    emulated = False
    hello_timeout_s = 20.0
    request_timeout_s = 20.0
    install_hint = NATIVE_INSTALL
    unit = UNIT_NS
    latency_wording = "host nanoseconds (native process)"

    def __init__(self, board: Board, run_dir: Path, *, elf: Path | None = None,
                 name: str | None = None, options: TargetOptions | None = None,
                 command: list[str] | None = None) -> None:
        super().__init__(board, run_dir, elf=elf, name=name, options=options)
        if command is None:
            if elf is None:
                raise ValueError("NativeTarget needs the firmware executable or a command")
            command = [str(elf)]
        self.command = command

    def start(self) -> StreamLink:
        exe = self.command[0]
        if shutil.which(exe) is None and not os.access(exe, os.X_OK):
            raise TargetError(f"native: {exe} is not an executable (build it with `hil build "
                              f"--board native`)")
        master, slave = os.openpty()
        tty.setraw(slave)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        stderr = open(self.run_dir / f"{self.name}.stderr.log", "ab")  # noqa: SIM115
        try:
            self.proc = ManagedProcess(self.command, stdin=slave, stdout=slave, stderr=stderr,
                                       close_fds=True)
        finally:
            os.close(slave)  # only the child holds the slave: its exit then reads as EOF here
            stderr.close()
        transcript = Transcript(self.log_path)
        transcript.note(f"started {' '.join(self.command)} pid {self.proc.pid}")
        self.link = FdLink(self.name, transcript, master)
        self.link.describe_exit = self.proc.exit_reason
        self.link.start()
        return self.link

    @classmethod
    def missing(cls) -> str | None:
        gone = [t for t in ("gcc", "make") if shutil.which(t) is None]
        return f"{', '.join(gone)} not found; install: {NATIVE_INSTALL}" if gone else None

    def info(self) -> dict[str, Any]:
        return {**super().info(), "command": self.command}
