"""The boards table: what each board is (CPU, clock, memory) and where its firmware can run.

A plain dict of frozen dataclasses, so `grep BOARDS` finds every use and a reader sees the whole
table at once. Memory limits are the real chip's, not the emulator's: Renode's STM32F4 maps
256 KiB of SRAM and QEMU's mps2 maps far more than the firmware may use, so a model that "runs in
the emulator" can still be too big for the board; hil.firmware checks against these numbers.

Cycle units (docs/design.md, contract 4) are the targets' business (hil.targets): a board only
says where it can run (`targets`), not what a count means there.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

KiB = 1024
MiB = 1024 * KiB

@dataclass(frozen=True)
class RenodePlatform:
    """How Renode models the board: the platform file it ships and the UART wired to the host."""

    repl: str  # path inside Renode's tree, e.g. platforms/cpus/nrf52840.repl
    uart: str  # peripheral name, e.g. sysbus.uart0
    # Non-SVD lines of the platform's `sysbus: init:` block. The shipped platforms start that block
    # with `ApplySVD @https://...`, which needs the network; a later `init:` entry *replaces* an
    # earlier one (Renode's ShouldReplaceInit unit test), so the offline overlay restates the rest.
    sysbus_init: tuple[str, ...] = ()


@dataclass(frozen=True)
class Board:
    """One board: enough to build for it, boot it and judge whether a model fits on the chip."""

    name: str
    description: str
    cpu: str
    clock_hz: int  # core clock the firmware runs at (and the emulators are told)
    flash_bytes: int  # 0 = no limit (native)
    ram_bytes: int  # 0 = no limit (native)
    targets: tuple[str, ...]  # where it can run; first = default
    qemu_machine: str | None = None
    renode: RenodePlatform | None = None
    # USB (VID, PID) pairs of the board's debug probe virtual COM port, for serial auto-detection.
    usb_ids: tuple[tuple[int, int], ...] = field(default=())
    # OpenOCD's board script for the on-board debugger (`hil flash`); None: no debugger on board.
    openocd_config: str | None = None

    @property
    def default_target(self) -> str:
        return self.targets[0]

    @property
    def is_chip(self) -> bool:
        """A microcontroller with flash and RAM limits; False for the host build (native), whose
        ELF sizes say nothing about any chip."""
        return self.flash_bytes > 0


BOARDS: dict[str, Board] = {
    "nrf52840": Board(
        name="nrf52840",
        description="Nordic nRF52840-DK",
        cpu="Cortex-M4F",
        clock_hz=64_000_000,
        flash_bytes=1 * MiB,
        ram_bytes=256 * KiB,
        targets=("renode", "serial", "labgrid"),
        renode=RenodePlatform(
            repl="platforms/cpus/nrf52840.repl",
            uart="sysbus.uart0",
            sysbus_init=(
                'Tag <0x10000000, 0x10000FFF> "FICR"',
                'Tag <0x100000a0, 0x100000a3> "DEVICEADDRTYPE" 0x1',
                'Tag <0x100000a4, 0x100000a7> "DEVICEADDR[0]" 0xAABBCCDD',
                'Tag <0x10001200, 0x10001203> "PSELRESET"',
            ),
        ),
        usb_ids=((0x1366, 0x1015), (0x1366, 0x1051), (0x1366, 0x0105)),  # SEGGER J-Link OB
        openocd_config="board/nordic_nrf52_dk.cfg",  # J-Link OB
    ),
    "stm32f4": Board(
        name="stm32f4",
        description="ST STM32F4-Discovery (STM32F407VG)",
        cpu="Cortex-M4F (STM32F407VG)",
        clock_hz=168_000_000,
        flash_bytes=1 * MiB,
        ram_bytes=128 * KiB,  # +64 KiB CCM, not modelled and not used
        targets=("renode", "serial", "labgrid"),
        renode=RenodePlatform(
            repl="platforms/boards/stm32f4_discovery-kit.repl",
            uart="sysbus.usart2",
            sysbus_init=(
                'Tag <0x40021000, 0x40021003> "GPIOE_MODER" 0xFFFFFFFF',
                'Tag <0x40021004, 0x40021007> "GPIOE_OTYPER" 0x00000008',
                'Tag <0x50000010, 0x5000003f> "USB:RESET" 0x80000000',
            ),
        ),
        usb_ids=((0x0483, 0x374B), (0x0483, 0x3748), (0x0483, 0x374E)),  # ST-LINK V2/V2-1/V3
        openocd_config="board/stm32f4discovery.cfg",  # ST-LINK/V2
    ),
    "netduinoplus2": Board(
        name="netduinoplus2",
        description="Netduino Plus 2 (STM32F405RG)",
        cpu="Cortex-M4F (STM32F405RG)",
        clock_hz=168_000_000,
        flash_bytes=1 * MiB,
        ram_bytes=128 * KiB,
        targets=("qemu", "serial", "labgrid"),
        qemu_machine="netduinoplus2",
        usb_ids=((0x0403, 0x6001), (0x0403, 0x6015)),  # FTDI USB-serial adapters
    ),
    "mps2-an386": Board(
        name="mps2-an386",
        description="Arm MPS2 FPGA image AN386 (Cortex-M4)",
        cpu="Cortex-M4",
        clock_hz=25_000_000,
        flash_bytes=4 * MiB,
        ram_bytes=4 * MiB,
        targets=("qemu",),
        qemu_machine="mps2-an386",
    ),
    "native": Board(
        name="native",
        description="host process on a pty (like Zephyr native_sim)",
        cpu="host CPU",
        clock_hz=1_000_000_000,  # the native port counts nanoseconds
        flash_bytes=0,
        ram_bytes=0,
        targets=("native", "labgrid"),
    ),
}


def estimated_cpi(board: str, model: str | None) -> float | None:
    """Cycles per executed instruction on `board` for a shipped `model`, estimated by
    benchmarks/cycle_model.py (a Cortex-M4 timing model with the board's flash wait states,
    applied to QEMU traces of real sentences) into hil/models/cpi.json; None where there is no
    estimate (another model, or a board nobody modelled). Instruction counts become an
    estimated time only through this, never as if one instruction took one cycle."""
    if not model:
        return None
    value = (_cpi_table().get(board) or {}).get(model)
    return float(value) if isinstance(value, int | float) else None


@functools.cache
def _cpi_table() -> dict[str, Any]:
    """hil/models/cpi.json, read once per process (a shipped file; {} where it is absent)."""
    import json

    from hil.paths import MODELS_DIR

    try:
        table = json.loads((MODELS_DIR / "cpi.json").read_text())
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


#: The board tests boot when none is named: the host build, which runs wherever gcc does.
DEFAULT_TEST_BOARD = "native"


def get_board(name: str) -> Board:
    """The board called `name`, or a KeyError that lists the boards that exist."""
    try:
        return BOARDS[name]
    except KeyError:
        raise KeyError(f"unknown board {name!r}; boards: {', '.join(BOARDS)}") from None
