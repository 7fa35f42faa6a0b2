"""The text hil writes for Renode: the platform overlay (.repl), the monitor script (.resc) and
the DWT peripheral inside it; also what `python3 -m hil.targets.renode renode/` ships in renode/.

Kept apart from hil/targets/renode.py (which runs Renode) because these are pure text builders:
tests check them without Renode, and renode-test suites include the same files. How they boot
is described in hil/targets/renode.py's docstring.
"""

from __future__ import annotations

from pathlib import Path

from hil.boards import Board
from hil.targets.base import TargetError

# CYCCNT for Renode: Renode 1.15.1's Miscellaneous.DWT reads a LimitTimer on the machine clock,
# which advances only at synchronisation points (every 100 us quantum by default), so every
# figure came out a multiple of 16,800 cycles at 168 MHz. This IronPython peripheral instead
# counts the CPU's executed instructions (`cpu.ExecutedInstructions`), exact to one instruction.
# Snapshots (`Save @file`, hil's post-mortem): the imported EmulationManager left in the script's
# scope made Renode refuse to save ("Pointer or ThreadLocal or SpinLock encountered during
# serialization"), so the lookup's temporaries are deleted; and a snapshot loaded with `Load`
# comes back without the scope's variables, so a missing `cpu` starts the peripheral afresh.
DWT_SCRIPT = """
if request.isInit or 'cpu' not in globals():
    ctrl = 0
    cnt = 0
    mark = 0
    cpu = None
if not request.isInit:
    if cpu is None:
        from Antmicro.Renode.Core import EmulationManager
        ok, mach = EmulationManager.Instance.CurrentEmulation.TryGetMachineForPeripheral(self)
        cpu = list(mach.SystemBus.GetCPUs())[0]
        del EmulationManager, ok, mach
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
        "// DWT: CYCCNT counts executed instructions (DWT_SCRIPT in hil/targets/renode_scripts.py)",
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
    # No build folder to default to: builds live in the per-user cache (hil.firmware); set
    # $bin to the path `hil build --board <board>` prints.
    bin_default = f"@{elf}" if elf else "@firmware.elf"
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
