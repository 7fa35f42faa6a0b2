"""`hil flash --board B [--model M] [--probe SERIAL]`: put the firmware on a real board.

Why OpenOCD: it is a Debian package (no vendor download), it drives both debuggers our boards
carry (the nRF52840-DK's J-Link OB and the STM32F4-Discovery's ST-LINK) from board scripts it
ships (`board/nordic_nrf52_dk.cfg`, `board/stm32f4discovery.cfg`), and its `program` command
writes, verifies and resets in one step. pyOCD would need the J-Link's proprietary library for
the nRF52840-DK. The board script is a board fact (hil.boards `openocd_config`); a board without
one has no debugger to flash through.

Failures are typed (docs/design.md, "Errors and exit codes"): no OpenOCD or no probe found is
"something is missing here" (exit 2, with what to do); a probe that fails while writing or
verifying is a run error (exit 3). OpenOCD's whole output goes to a log beside the ELF.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

from hil.boards import Board
from hil.errors import EnvironmentMissing, RunError, UsageError

OPENOCD_INSTALL = "sudo apt-get install -y --no-install-recommends openocd"
FLASH_TIMEOUT_S = 120.0
#: OpenOCD's words when no debugger answers: the board is not plugged in (or not ours).
NO_PROBE = ("open failed", "No J-Link device found", "unable to open", "no device found",
            "Can't find a device", "LIBUSB_ERROR_ACCESS")


def find_openocd() -> str | None:
    """$OPENOCD, else openocd on PATH."""
    env = os.environ.get("OPENOCD")
    if env:
        return env if shutil.which(env) else None
    return shutil.which("openocd")


def flash_command(openocd: str, board: Board, elf: Path, probe: str | None = None) -> list[str]:
    """The OpenOCD command line that writes `elf`, verifies it and resets the board; `probe`
    picks one debugger by its USB serial number when several are plugged in."""
    if board.openocd_config is None:
        raise UsageError(f"board {board.name} has no on-board debugger to flash through; boards "
                         f"that have one: nrf52840, stm32f4")
    argv = [openocd, "-f", board.openocd_config]
    if probe:
        argv += ["-c", f"adapter serial {probe}"]
    return argv + ["-c", f"program {elf} verify reset exit"]


def flash(board: Board, elf: Path, probe: str | None = None,
          log_path: Path | None = None) -> str:
    """Flash `elf` to the board; returns OpenOCD's last line. Raises EnvironmentMissing (no
    OpenOCD, no probe), UsageError (board without a debugger, no ELF) or RunError."""
    openocd = find_openocd()
    if openocd is None:
        raise EnvironmentMissing(f"openocd not found (PATH or $OPENOCD); install: "
                                 f"{OPENOCD_INSTALL}")
    if not Path(elf).is_file():
        raise UsageError(f"firmware {elf} does not exist (build it with `hil build --board "
                         f"{board.name}`)")
    argv = flash_command(openocd, board, Path(elf).resolve(), probe)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=FLASH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RunError(f"openocd did not finish within {FLASH_TIMEOUT_S:.0f} s: "
                       f"{' '.join(argv)}") from None
    output = proc.stdout + proc.stderr
    log = log_path or Path(elf).with_suffix(".flash.log")
    log.write_text(f"$ {' '.join(argv)}\n{output}")
    if proc.returncode == 0:
        return output.strip().splitlines()[-1] if output.strip() else "flashed"
    said = next((ln.strip() for ln in output.splitlines() if ln.startswith("Error")),
                f"exit code {proc.returncode}")
    if any(m in output for m in NO_PROBE):
        which = f" with serial {probe}" if probe else ""
        raise EnvironmentMissing(f"no debug probe{which} found for {board.name} (openocd: "
                                 f"{said}); plug the board in by its debugger USB port, check "
                                 f"`hil doctor`'s serial ports and the udev rules for your "
                                 f"user; log: {log}")
    raise RunError(f"flashing {board.name} failed (openocd: {said}); log: {log}")


def cmd_flash(args: argparse.Namespace) -> int:
    """`hil flash`: build the board's firmware for the model (or take --elf), then flash it.
    A failure is a typed error; hil.cli prints it in one line with its exit code."""
    from hil import firmware as fw
    from hil.boards import BOARDS
    from hil.session import resolve

    board = BOARDS[args.board]  # argparse already refused any other name
    elf = Path(args.elf) if args.elf else fw.build(board, resolve(args.model))
    last = flash(board, elf, probe=args.probe)
    print(f"hil flash: {elf} written, verified and the board reset ({last})")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `flash` on the `hil` parser (called from hil/cli.py)."""
    from hil.boards import BOARDS

    p = sub.add_parser("flash", help="build and flash the firmware to a real board (OpenOCD)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  hil flash --board nrf52840                     nRF52840-DK through its J-Link OB
  hil flash --board stm32f4 --probe 066DFF49     one of several ST-LINKs, by serial number

exit codes: 0 written, verified, reset; 2 no OpenOCD or no probe; 3 the probe failed""")
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--model", default="nlu_scenario",
                   help="shipped model name (hil/models/<name>) or path to a blob")
    p.add_argument("--elf", help="flash this firmware instead of building it")
    p.add_argument("--probe", help="the debugger's USB serial number (several boards plugged in)")
    p.set_defaults(func=cmd_flash)
