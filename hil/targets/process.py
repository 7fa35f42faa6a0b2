"""Processes that never outlive the host: an emulator or a native firmware in its own process
group, killed hard on stop, on exit, on a fatal signal, and (through PR_SET_PDEATHSIG) when the
host itself is killed with SIGKILL. Why: a leftover QEMU or Renode holds a port, a pty and a CPU
core, and the next run then meets it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import weakref
from pathlib import Path
from typing import Any

# ---- processes that never outlive the host ---------------------------------------------------

_LIVE: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()
_HANDLERS_INSTALLED = False
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the child if the host dies without running atexit (kill -9)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def kill_all_children() -> None:
    """SIGKILL every live managed process group (atexit and fatal-signal path)."""
    for proc in list(_LIVE):
        proc.kill()


def _on_fatal_signal(signum: int, frame: object) -> None:
    kill_all_children()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    global _HANDLERS_INSTALLED
    if not _HANDLERS_INSTALLED:
        _HANDLERS_INSTALLED = True
        atexit.register(kill_all_children)
    install_signal_handlers()


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP kill every managed child, then the host dies of the signal as usual.

    Only the main thread may set signal handlers, and the runner starts targets from job
    threads, so it calls this from the main thread before starting them; a no-op elsewhere.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        # Only take over the default disposition: never replace a handler someone else installed.
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _on_fatal_signal)


class ManagedProcess:
    """A child in its own process group, killed hard (SIGKILL to the group) on stop or exit.

    SIGKILL, not SIGTERM: a hung QEMU ignores SIGTERM, and an emulator's own children (Renode's
    mono) must go too, hence the group.
    """

    def __init__(self, argv: list[str], **popen: Any) -> None:
        _install_handlers()
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, start_new_session=True, preexec_fn=_die_with_parent, **popen
        )
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def returncode(self) -> int | None:
        return self.proc.poll()

    def describe(self) -> str:
        code = self.proc.poll()
        if code is None:
            return f"{Path(self.argv[0]).name} (pid {self.pid}) still running"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"{Path(self.argv[0]).name} killed by {signal.Signals(-code).name}"
        return f"{Path(self.argv[0]).name} exited with code {code}"

    def exit_reason(self) -> str:
        """Why the stream ended: the pty/socket closes a moment before the exit is reaped, so
        give the process a second to be reaped before describing it."""
        self.wait(1.0)
        return self.describe()

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5.0)
        _LIVE.discard(self)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
