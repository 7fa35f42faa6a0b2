"""The `renode` target: Renode with the board's platform, a DWT overlay and the UART on a pty.

How it boots (docs/design.md, "Emulator facts"; checked on Renode 1.15.1):
1. a generated .resc creates the machine and loads the board platform through an overlay given to
   `machine LoadPlatformDescriptionFromString`: `using` the shipped platform, then
   `cpu: PerformanceInMips: <MHz>`, `nvic: systickFrequency: <Hz>` and a DWT at 0xE0001000
   (Renode's nRF52840/STM32F4 platforms have none): a Python peripheral (DWT_SCRIPT) whose
   CYCCNT is the CPU's executed-instruction count, exact to one instruction;
2. `sysbus LoadELF $bin`, and a macro `uart_pty` holding
   `emulation CreateUartPtyTerminal "term" "<pty>" true` + `connector Connect <uart> term`, which
   the host runs (`runMacro $uart_pty` on the monitor); renode-test suites run the script without
   it (a pty terminal disposed by `Reset Emulation` dies with EIO and takes Renode down);
3. no `start`: the host opens the pty first, then types `start` on the
   monitor (Renode runs with `--console`, stdin is the monitor), because bytes written before
   the pty is open are lost.

Offline: both shipped platforms begin `sysbus: init:` with `ApplySVD @https://...`, which fails
without network. A later `init:` on the same entry replaces the earlier one (Renode's own
platform-description unit test ShouldReplaceInit), so the overlay restates that block without the
ApplySVD line (only the `Tag` lines, from hil.boards). Renode deletes every `$TMPDIR/renode-*`
folder not named after a live process at start and exit, so it gets its own TMPDIR.

Attached (`port` given: `Attach Board` in hil.robot, `hil run --port`): no Renode of its own;
the target connects to the UART of a Renode someone else started, renode-test above all
(hil/targets/renode_attach.py), and stopping it only lets go of that UART.

When it fails (renode/README.md, "When something fails"): Renode's console is read while booting,
so a monitor command that fails ends `start()` with Renode's own line in seconds; and a target
given up keeps Renode's log and a `Save`d snapshot (`post_mortem`), as renode-test does.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import time
import tty
from pathlib import Path
from typing import Any

from hil.boards import Board
from hil.targets import renode_attach, renode_metrics
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
from hil.targets.renode_scripts import (  # noqa: F401 - re-exported
    DWT_SCRIPT,
    platform_overlay,
    resc_script,
    write_templates,
)

UNIT_RENODE = "instructions (renode)"  # CYCCNT = executed instructions (DWT_SCRIPT)

RENODE_INSTALL = (
    "Renode is not packaged for Debian or PyPI. Install Antmicro's portable package: "
    "download renode-<version>.linux-portable.tar.gz from https://github.com/renode/renode/"
    "releases, `mkdir renode && tar xf renode-*.linux-portable.tar.gz -C renode "
    "--strip-components=1` and put that folder on PATH (or set RENODE=/path/to/renode); or "
    "`pipx install git+https://github.com/antmicro/renode-run && renode-run download`."
)
BOOT_TIMEOUT = 60.0  # Renode with Mono takes ~4 s to start; slow CI machines much longer
START_CONFIRM_S = 15.0  # `start` typed -> "Starting emulation..." on the console
SAVE_TIMEOUT_S = 30.0  # a post-mortem `Save` (about 1 s for these boards); then Renode is killed
REASON_WAIT_S = 5.0  # a failed monitor command's reason line, printed after its echo
#: Lines Renode's console prints when a monitor command fails (Renode 1.15.1, --hide-log): the
#: first names the command, the next says why.
MONITOR_ERRORS = ("There was an error executing command", "Could not find file",
                  "Failed to load", "Error while loading", "No such command or device",
                  "FATAL UNHANDLED EXCEPTION", "Fatal error:")


def monitor_error(console: str) -> str | None:
    """Renode's error in `console` text as one line (the failing command and its reason)."""
    found = monitor_error_parts(console)
    return None if found is None else ": ".join(found)


def monitor_error_parts(console: str) -> list[str] | None:
    """[the failing command, its reason] (the reason is missing while Renode has not printed
    it yet), or None when `console` holds no monitor error."""
    lines = [ln.strip() for ln in console.replace("\r", "\n").splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if any(marker in line for marker in MONITOR_ERRORS):
            end = i
            if line.count("'") % 2:  # a multi-line command (a platform string): skip its echo
                close = '"""\'' if '"""' in line else "'"
                end = next((k for k in range(i + 1, len(lines)) if lines[k].endswith(close)), i)
                line += " ...'" if end > i else ""
            return [line, *(ln for ln in lines[end + 1:end + 2] if not ln.startswith("("))]
    return None


def reload_command(snapshot: Path) -> str:
    """The command that reopens a saved machine for inspection (checked on Renode 1.15.1: the
    CPU, memory and peripherals come back; `start` runs it on)."""
    return f"renode --console -e 'Load @{snapshot}; mach set 0'"


def _wait_file(path: Path, timeout: float) -> bool:
    """True once `path` exists and its size held still for 0.5 s."""
    deadline, last, still = time.monotonic() + timeout, -1, 0
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else -1
        still = still + 1 if size == last and size > 0 else 0
        if still >= 5:
            return True
        last = size
        time.sleep(0.1)
    return False


class RenodeLink(FdLink):
    """The UART pty, remembering whether a HELLO ever came (a board that never said it gets a
    snapshot when it is stopped)."""

    hello_seen = False
    _carry = b""

    def _recv(self, timeout: float) -> bytes | None:
        data = super()._recv(timeout)
        if data and not self.hello_seen:
            seen = self._carry + data
            self.hello_seen = b"HELLO" in seen
            self._carry = seen[-8:]
        return data


def find_renode() -> str | None:
    """$RENODE, `renode` on PATH, then the portable folders renode-run and users leave behind."""
    env = os.environ.get("RENODE")
    if env:
        return env if os.access(env, os.X_OK) else None
    found = shutil.which("renode")
    if found:
        return found
    home = Path.home()
    pointer = home / ".config" / "renode" / "renode-run.path"
    candidates = []
    if pointer.is_file():
        candidates.append(Path(pointer.read_text().strip()) / "renode")
    for pattern in (".config/renode/renode-run.download/renode_*/renode", ".renode*/renode",
                    ".renode*/*/renode", "renode_portable/renode"):
        candidates += [Path(p) for p in sorted(glob.glob(str(home / pattern)))]
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


def renode_argv(renode: str, script: Path, monitor_port: int | None = None) -> list[str]:
    """Headless, no log flood on a pipe, the script `include`d. The monitor is on stdin/stdout
    (`--console`, the default) or, with `monitor_port`, on a telnet port (`--port`): the way
    other tools drive Renode, for a Renode whose console does not read a piped stdin. The port
    listens on every interface, which is why it is not the default."""
    monitor = ["--port", str(monitor_port)] if monitor_port else ["--console"]
    return [renode, "--disable-xwt", *monitor, "--hide-log", "--plain",
            "-e", f"include @{script}"]


class RenodeTarget(ProcessTarget):
    """One Renode process with one machine."""

    kind = "renode"
    emulated = True
    hello_timeout_s = 120.0
    request_timeout_s = 300.0
    backend = "renode"
    install_hint = RENODE_INSTALL
    unit = UNIT_RENODE
    latency_wording = ("Renode executed instructions / board clock "
                       "(1 cycle per instruction assumed)")

    def __init__(self, board: Board, run_dir: Path, *, elf: Path | None = None,
                 name: str | None = None, options: TargetOptions | None = None,
                 monitor: str | None = None) -> None:
        super().__init__(board, run_dir, elf=elf, name=name, options=options)
        if elf is None:
            raise TargetError("renode: needs the firmware ELF to boot")
        # "console" (stdin) or "port" (telnet on a free port); $HIL_RENODE_MONITOR overrides.
        self.monitor = monitor or os.environ.get("HIL_RENODE_MONITOR", "console")
        self._monitor_sock: socket.socket | None = None
        self._monitor_port: int | None = None
        if board.renode is None:
            raise TargetError(f"board {board.name} does not run on Renode; it runs on "
                              f"{', '.join(board.targets)}")
        self.elf = Path(elf).resolve()
        # Absolute: Renode runs with the run directory as its cwd, the host may not.
        self.run_dir = self.run_dir.resolve()
        self.script_path = self.run_dir / f"{self.name}.resc"
        self.pty_path = self.run_dir / f"{self.name}.uart"
        self.tmpdir = self.run_dir / f"{self.name}.tmpdir"  # Renode's TMPDIR, nothing else in it
        self._started = False  # `start` typed and confirmed: a machine worth a snapshot
        self._log_start = 0
        self.evidence: list[str] = []  # post-mortem lines, once taken
        # The UART of a Renode someone else started (renode-test): attach, start nothing.
        self.attach_to = self.options.port

    def start(self) -> StreamLink:
        """Renode up, the UART pty open, `start` typed and confirmed; a monitor command that
        fails (bad platform, ELF that does not load) ends this at once with Renode's own line.
        With `port` (self.attach_to), only the link to that Renode's UART (hil.targets.
        renode_attach): its machine is its owner's, already loaded and started."""
        if self.attach_to:
            self.link = renode_attach.attach(self.attach_to, self.name,
                                             Transcript(self.log_path), self.board.renode.uart)
            return self.link
        renode = find_renode()
        if renode is None:
            raise MissingTool(self.missing() or "renode not found")
        if not self.elf.is_file():
            raise TargetError(f"renode: firmware {self.elf} does not exist")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.script_path.write_text(resc_script(self.board, str(self.elf), str(self.pty_path)))
        self.tmpdir.mkdir(exist_ok=True)
        self._started, self.evidence = False, []
        env = {**os.environ, "TMPDIR": str(self.tmpdir)}
        if self.monitor == "port":
            with socket.socket() as probe:  # a free port; Renode binds it a moment later
                probe.bind(("127.0.0.1", 0))
                self._monitor_port = probe.getsockname()[1]
        with open(self.monitor_log, "ab") as out:
            self._log_start = out.tell()
            self.proc = ManagedProcess(renode_argv(renode, self.script_path.resolve(),
                                                   self._monitor_port),
                                       stdin=subprocess.PIPE, stdout=out, stderr=out, env=env,
                                       cwd=self.run_dir, close_fds=True)
        transcript = Transcript(self.log_path)
        transcript.note(f"started renode pid {self.proc.pid} script {self.script_path}")
        self._monitor("runMacro $uart_pty")
        fd = self._open_pty()
        self.link = RenodeLink(self.name, transcript, fd)
        self.link.describe_exit = self.proc.exit_reason
        self.link.start()
        for cmd in renode_metrics.setup_commands(self.run_dir, self.name, self.options.profile,
                                                 execution_metrics=self.options.execution_metrics):
            self._monitor(cmd)
        mark = self._log_size()
        self._monitor("start")
        transcript.note("monitor: start")
        self._await_monitor(mark, "Starting emulation", START_CONFIRM_S)
        self._started = True
        return self.link

    @property
    def monitor_log(self) -> Path:
        """Renode's console (monitor echo, command errors), kept next to the transcript."""
        return self.run_dir / f"{self.name}.monitor.log"

    def _log_size(self) -> int:
        try:
            return self.monitor_log.stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.monitor_log, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _fail(self, message: str) -> TargetError:
        """Kill Renode and say what failed in one line naming Renode's log."""
        if self.proc is not None:
            self.proc.kill()
        return TargetError(f"renode: {message} (Renode's log: {self.monitor_log})")

    def _check_monitor(self, offset: int) -> None:
        """Raise when Renode printed a monitor error since `offset` (console mode). Renode
        prints the failing command first and its reason a moment later: the reason is waited
        for (up to REASON_WAIT_S), since a message without it says nothing a user can act on."""
        parts = None if self._monitor_port is not None else \
            monitor_error_parts(self._log_since(offset))
        if parts is None:
            return
        deadline = time.monotonic() + REASON_WAIT_S
        while len(parts) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            parts = monitor_error_parts(self._log_since(offset)) or parts
        raise self._fail(f"a monitor command failed: {': '.join(parts)}")

    def _await_monitor(self, offset: int, pattern: str, timeout: float) -> bool:
        """Wait for `pattern` (a regex) in the monitor log after `offset`; an error line raises.
        Without the console (port mode) there is nothing to read: True at once."""
        if self._monitor_port is not None:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_monitor(offset)
            if re.search(pattern, self._log_since(offset), re.S):
                return True
            if self.proc is None or not self.proc.alive():
                raise self._fail(f"Renode exited ({self.proc.describe() if self.proc else '?'})")
            time.sleep(0.05)
        return False

    def _open_pty(self) -> int:
        """Wait for the pty `runMacro $uart_pty` makes, watching the log for Renode's errors."""
        assert self.proc is not None
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            self._check_monitor(self._log_start)
            if self.pty_path.exists():
                self._check_monitor(self._log_start)
                fd = os.open(self.pty_path, os.O_RDWR | os.O_NOCTTY)
                tty.setraw(fd)
                return fd
            if not self.proc.alive():
                break
            time.sleep(0.1)
        self._check_monitor(self._log_start)
        raise self._fail(f"Renode did not create the UART pty {self.pty_path} within "
                         f"{BOOT_TIMEOUT:.0f} s ({self.proc.describe()})")

    def _monitor(self, command: str) -> None:
        """Type one command on Renode's monitor (its stdin, or its telnet port)."""
        assert self.proc is not None and self.proc.proc.stdin is not None
        if self._monitor_port is None:
            self.proc.proc.stdin.write(command.encode() + b"\n")
            self.proc.proc.stdin.flush()
            return
        deadline = time.monotonic() + BOOT_TIMEOUT
        while self._monitor_sock is None:  # the port listens once Renode is up
            try:
                self._monitor_sock = socket.create_connection(("127.0.0.1", self._monitor_port),
                                                              10)
            except ConnectionRefusedError:
                if time.monotonic() > deadline or not self.proc.alive():
                    raise
                time.sleep(0.2)
        self._monitor_sock.sendall(command.encode() + b"\n")

    def post_mortem(self, why: str) -> list[str]:
        """What renode-test keeps for a failed test: Renode's log and, while Renode still runs,
        a snapshot of the machine (`Save`) with the command that reloads it. Taken before the
        target is stopped; `stop()` takes one itself when the board never said HELLO."""
        if self.proc is None:
            return []
        if not self.evidence and self._started and self.alive():
            self.evidence = self._snapshot(why)
        return [f"Renode's log: {self.monitor_log}", *self.evidence]

    def _snapshot(self, why: str) -> list[str]:
        """`Save @<run_dir>/<name>.snapshot.save` within SAVE_TIMEOUT_S; lines for the user."""
        path = self.run_dir / f"{self.name}.snapshot.save"
        path.unlink(missing_ok=True)
        if self.link is not None:
            self.link.transcript.note(f"post-mortem ({why.splitlines()[0][:200]}): Save @{path}")
        mark = self._log_size()
        try:
            self._monitor(f"Save @{path}")
            # done when the next prompt ("\r(<machine>) ") follows the command's echo
            done = self._await_monitor(mark, r"Save @[^\n]*\n.*\r\(", SAVE_TIMEOUT_S)
        except (OSError, TargetError) as exc:
            return [f"no snapshot: {exc}"]
        if self._monitor_port is not None:  # no console to read: wait for the file to settle
            done = _wait_file(path, SAVE_TIMEOUT_S)
        if not done or not path.is_file():
            return [f"no snapshot: Renode did not save one within {SAVE_TIMEOUT_S:.0f} s"]
        return [f"snapshot: {path}",
                f"reload it: {reload_command(path)}"]

    def alive(self) -> bool:
        """Renode runs (attached: the UART link is open; that Renode is not ours to watch)."""
        if self.attach_to:
            return self.link is not None and not self.link.closed
        return super().alive()

    def stop(self) -> None:
        """`quit` on the monitor first (Renode cleans up its TMPDIR), then the hard stop. A board
        that was started but never said HELLO gets its snapshot first (the session stops a
        target that failed to boot before anyone else can ask for one). An attached target
        only lets go of the UART: that Renode and its machine are not hil's to stop."""
        link = self.link
        if self.attach_to:
            if link is not None:
                link.transcript.note("detached (Renode left running)")
                link.close()
            return
        if (self._started and not self.evidence and self.alive()
                and isinstance(link, RenodeLink) and not link.hello_seen):
            self.evidence = self._snapshot("no HELLO")
        if self.proc is not None and self.proc.alive():
            try:
                for cmd in renode_metrics.collect_commands(self.run_dir, self.name,
                                                           self.options.profile):
                    self._monitor(cmd)
                renode_metrics.wait_written(self.run_dir, self.name)
                self._monitor("quit")
                self.proc.wait(3.0)
            except OSError:
                pass
        if self._monitor_sock is not None:
            self._monitor_sock.close()
            self._monitor_sock = None
        self._started = False
        super().stop()
        renode_metrics.collect(self.run_dir, self.name)

    @classmethod
    def run_metrics(cls, run_dir: Path) -> dict[str, Any]:
        """Every instance's metrics of the run added up (`--jobs`, restarts): the opcode
        histogram always, the guest profile with --profile, accesses with
        --execution-metrics (hil.targets.renode_metrics)."""
        return renode_metrics.merge(run_dir)

    @classmethod
    def locate(cls) -> str | None:
        return find_renode()

    @classmethod
    def missing(cls) -> str | None:
        if find_renode() is not None:
            return None
        return (f"Renode is not installed (renode not found on PATH, $RENODE or "
                f"~/.config/renode). {RENODE_INSTALL}")

    def info(self) -> dict[str, Any]:
        assert self.board.renode is not None
        return {**super().info(), "platform": self.board.renode.repl,
                "uart": self.board.renode.uart, "script": str(self.script_path)}


if __name__ == "__main__":
    import sys

    for p in write_templates(Path(sys.argv[1] if len(sys.argv) > 1 else "renode")):
        print(p)
