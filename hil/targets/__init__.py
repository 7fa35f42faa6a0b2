"""Targets: where firmware runs (native process, QEMU, Renode, a real board over serial).

`TARGETS` is the plain name -> class table (no registry magic): `hil run --target qemu` looks the
class up here and nothing else. Each class owns the facts about its backend (hil.targets.base.
Target), so no module outside this package names a kind of target (tests/test_structure.py).
"""

from __future__ import annotations

from pathlib import Path

from hil.boards import Board
from hil.errors import UsageError
from hil.targets.base import MissingTool, Target, TargetError, TargetOptions
from hil.targets.labgrid import LabgridTarget
from hil.targets.native import NativeTarget
from hil.targets.qemu import QemuTarget
from hil.targets.renode import RenodeTarget
from hil.targets.serial import SerialTarget

TARGETS: dict[str, type[Target]] = {
    "native": NativeTarget,
    "qemu": QemuTarget,
    "renode": RenodeTarget,
    "serial": SerialTarget,
    "labgrid": LabgridTarget,
}


def target_class(kind: str, board: Board | None = None) -> type[Target]:
    """The class of target `kind`; a UsageError that lists the kinds (and, given the board,
    the targets it runs on) when it does not exist or the board does not run on it."""
    cls = TARGETS.get(kind)
    if cls is None:
        raise UsageError(f"unknown target {kind!r}; targets: {', '.join(TARGETS)}")
    if board is not None and kind not in board.targets:
        raise UsageError(f"board {board.name} does not run on {kind}; it runs on "
                         f"{', '.join(board.targets)}")
    return cls


def make_target(kind: str, board: Board, run_dir: Path, *, elf: Path | None = None,
                name: str | None = None, options: TargetOptions | None = None) -> Target:
    """A target of `kind` for `board`, built the same way for every kind."""
    return target_class(kind, board)(board, run_dir, elf=elf, name=name, options=options)


def emulated_kinds() -> tuple[str, ...]:
    """The kinds whose counts come from an emulator (said as "emulated" wherever shown)."""
    return tuple(k for k, cls in TARGETS.items() if cls.emulated)


__all__ = ["TARGETS", "MissingTool", "Target", "TargetError", "TargetOptions", "NativeTarget",
           "QemuTarget", "RenodeTarget", "SerialTarget", "emulated_kinds", "make_target",
           "target_class"]
