"""Targets: where firmware runs (native process, QEMU, Renode, a real board over serial).

`TARGETS` is the plain name -> class table (no registry magic): `hil run --target qemu` looks the
class up here and nothing else.
"""

from __future__ import annotations

from hil.targets.base import MissingTool, Target, TargetError
from hil.targets.native import NativeTarget
from hil.targets.qemu import QemuTarget
from hil.targets.renode import RenodeTarget
from hil.targets.serial import SerialTarget

TARGETS: dict[str, type[Target]] = {
    "native": NativeTarget,
    "qemu": QemuTarget,
    "renode": RenodeTarget,
    "serial": SerialTarget,
}

__all__ = ["TARGETS", "MissingTool", "Target", "TargetError", "NativeTarget", "QemuTarget",
           "RenodeTarget", "SerialTarget"]
