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
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import time
import tty
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

UNIT_RENODE = "instructions (renode)"  # CYCCNT = executed instructions (DWT_SCRIPT)

RENODE_INSTALL = (
    "Renode is not packaged for Debian or PyPI. Install Antmicro's portable package: "
    "download renode-<version>.linux-portable.tar.gz from https://github.com/renode/renode/"
    "releases, `mkdir renode && tar xf renode-*.linux-portable.tar.gz -C renode "
    "--strip-components=1` and put that folder on PATH (or set RENODE=/path/to/renode); or "
    "`pipx install git+https://github.com/antmicro/renode-run && renode-run download`."
)
BOOT_TIMEOUT = 60.0  # Renode with Mono takes ~4 s to start; slow CI machines much longer


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


# CYCCNT for Renode: Renode 1.15.1's Miscellaneous.DWT reads a LimitTimer on the machine clock,
# which advances only at synchronisation points (every 100 us quantum by default), so every
# figure came out a multiple of 16,800 cycles at 168 MHz. This IronPython peripheral instead
# counts the CPU's executed instructions (`cpu.ExecutedInstructions`), exact to one instruction.
DWT_SCRIPT = """
if request.isInit:
    ctrl = 0
    cnt = 0
    mark = 0
    cpu = None
else:
    if cpu is None:
        from Antmicro.Renode.Core import EmulationManager
        ok, mach = EmulationManager.Instance.CurrentEmulation.TryGetMachineForPeripheral(self)
        cpu = list(mach.SystemBus.GetCPUs())[0]
    now = cpu.ExecutedInstructions
    if ctrl & 1:
        cnt = (cnt + (now - mark)) & 0xFFFFFFFF
    mark = now
    if request.offset == 0:
        if request.isRead:
            request.value = ctrl
        else:
            ctrl = request.value & 1
    elif request.offset == 4:
        if request.isRead:
            request.value = cnt
        else:
            cnt = request.value & 0xFFFFFFFF
    elif request.isRead:
        request.value = 0
"""


def platform_overlay(board: Board) -> str:
    """The .repl text layered on Renode's own platform for `board` (see the module docstring)."""
    if board.renode is None:
        raise TargetError(f"board {board.name} has no Renode platform")
    mhz = board.clock_hz // 1_000_000
    lines = [
        f'using "{board.renode.repl}"',
        "",
        "cpu:",
        f"    PerformanceInMips: {mhz}",
        "",
        "nvic:",
        f"    systickFrequency: {board.clock_hz}",
        "",
        "// DWT: CYCCNT counts executed instructions (DWT_SCRIPT in hil/targets/renode.py)",
        "dwt: Python.PythonPeripheral @ sysbus 0xE0001000",
        "    size: 0x1000",
        "    initable: true",
        "    script: '''",
        *DWT_SCRIPT.strip("\n").splitlines(),
        "'''",
        "",
        "// Replaces the platform's sysbus init, whose ApplySVD line downloads an SVD file.",
        "sysbus:",
        "    init:",
    ]
    lines += [f"        {cmd}" for cmd in board.renode.sysbus_init]
    return "\n".join(lines) + "\n"


def resc_script(board: Board, elf: str | None = None, pty: str | None = None) -> str:
    """A Renode script for `board`; `$bin` and `$pty` can be overridden (`$bin?=` convention).

    It does not `start`: whoever runs it opens the pty first, then types `start`.
    """
    if board.renode is None:
        raise TargetError(f"board {board.name} has no Renode platform")
    bin_default = f"@{elf}" if elf else f"@firmware/build/{board.name}/firmware.elf"
    pty_default = f'"{pty}"' if pty else f'"/tmp/hil-{board.name}-uart"'
    return "\n".join([
        f":name: embbert-hil {board.name}",
        f":description: EmbBERT-Q firmware on {board.description}, UART on a host pty",
        "",
        f'$name?="{board.name}"',
        f"$bin?={bin_default}",
        f"$pty?={pty_default}",
        "",
        "mach create $name",
        'machine LoadPlatformDescriptionFromString """',
        platform_overlay(board).rstrip("\n"),
        '"""',
        "",
        "# The UART on a host pty, for `hil run` and by hand: `runMacro $uart_pty`, open $pty,",
        "# then `start`. Not run here: renode-test suites use a terminal tester instead, and a pty",
        "# terminal dies with EIO (killing Renode) when `Reset Emulation` disposes of it.",
        "macro uart_pty",
        '"""',
        "    emulation CreateUartPtyTerminal \"term\" $pty true",
        f"    connector Connect {board.renode.uart} term",
        '"""',
        "",
        "macro reset",
        '"""',
        "    sysbus LoadELF $bin",
        '"""',
        "runMacro $reset",
        "",
        "# No `start` here: open $pty first (bytes sent before that are lost), then `start`.",
        "",
    ])


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

    def start(self) -> StreamLink:
        renode = find_renode()
        if renode is None:
            raise MissingTool(self.missing() or "renode not found")
        if not self.elf.is_file():
            raise TargetError(f"renode: firmware {self.elf} does not exist")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.script_path.write_text(resc_script(self.board, str(self.elf), str(self.pty_path)))
        self.tmpdir.mkdir(exist_ok=True)
        monitor_log = self.run_dir / f"{self.name}.monitor.log"
        env = {**os.environ, "TMPDIR": str(self.tmpdir)}
        import subprocess

        if self.monitor == "port":
            with socket.socket() as probe:  # a free port; Renode binds it a moment later
                probe.bind(("127.0.0.1", 0))
                self._monitor_port = probe.getsockname()[1]
        with open(monitor_log, "ab") as out:
            self.proc = ManagedProcess(renode_argv(renode, self.script_path.resolve(),
                                                   self._monitor_port),
                                       stdin=subprocess.PIPE, stdout=out, stderr=out, env=env,
                                       cwd=self.run_dir, close_fds=True)
        transcript = Transcript(self.log_path)
        transcript.note(f"started renode pid {self.proc.pid} script {self.script_path}")
        self._monitor("runMacro $uart_pty")
        fd = self._open_pty(monitor_log)
        self.link = FdLink(self.name, transcript, fd)
        self.link.describe_exit = self.proc.exit_reason
        self.link.start()
        self._monitor("start")
        transcript.note("monitor: start")
        return self.link

    def _open_pty(self, monitor_log: Path) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            if self.pty_path.exists():
                fd = os.open(self.pty_path, os.O_RDWR | os.O_NOCTTY)
                tty.setraw(fd)
                return fd
            if not self.proc.alive():
                break
            time.sleep(0.1)
        self.proc.kill()
        tail = monitor_log.read_bytes()[-800:] if monitor_log.exists() else b""
        raise TargetError(f"renode did not create the UART pty {self.pty_path} within "
                          f"{BOOT_TIMEOUT:.0f} s ({self.proc.describe()})", tail, monitor_log)

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

    def stop(self) -> None:
        """`quit` on the monitor first (Renode cleans up its TMPDIR), then the hard stop."""
        if self.proc is not None and self.proc.alive():
            try:
                self._monitor("quit")
                self.proc.wait(3.0)
            except OSError:
                pass
        if self._monitor_sock is not None:
            self._monitor_sock.close()
        super().stop()

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


def write_templates(folder: Path) -> list[Path]:
    """Write renode/<board>.resc and renode/<board>-hil.repl for every Renode board, so users
    (and renode-test suites) can run the same setup by hand: `renode renode/nrf52840.resc`,
    then `start` once the pty is open. tests/test_targets_renode.py checks they are current."""
    from hil.boards import BOARDS

    written = []
    for board in BOARDS.values():
        if board.renode is None:
            continue
        repl = folder / f"{board.name}-hil.repl"
        repl.write_text(f"// Generated by `python3 -m hil.targets.renode renode/`; do not edit.\n"
                        f"// Overlay for {board.description}: DWT, clocks, offline init.\n"
                        + platform_overlay(board))
        resc = folder / f"{board.name}.resc"
        resc.write_text("# Generated by `python3 -m hil.targets.renode renode/`; do not edit.\n"
                        + resc_script(board))
        written += [repl, resc]
    return written


if __name__ == "__main__":
    import sys

    for p in write_templates(Path(sys.argv[1] if len(sys.argv) > 1 else "renode")):
        print(p)
