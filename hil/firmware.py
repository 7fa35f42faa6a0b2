"""Build the firmware for a board (via firmware/Makefile) and judge whether it fits the real chip.

Sizes come from the ELF's section headers (pyelftools), classified by flags rather than names so
any linker script works: allocated, non-writable sections live in flash (.text, .rodata, vectors);
writable PROGBITS (.data) occupy flash (load image) *and* RAM; NOBITS (.bss, stack, heap) occupy RAM
only. A NOBITS section whose name mentions "stack" is reported separately as the stack region.
The limits are the chip's (hil.boards), not the emulator's, so "runs in QEMU" never hides "does not
fit on the board".
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from hil.boards import Board
from hil.errors import (
    EXIT_ENVIRONMENT,
    EXIT_EXPECTATIONS,
    EnvironmentMissing,
    ExpectationFailed,
    HilError,
    UsageError,
)
from hil.paths import FIRMWARE_DIR

TOOLCHAIN_INSTALL = ("sudo apt-get install -y --no-install-recommends gcc-arm-none-eabi "
                     "libnewlib-arm-none-eabi make")
NATIVE_INSTALL = "sudo apt-get install -y --no-install-recommends gcc make"


class BuildError(HilError):
    """The firmware could not be built (compiler error, missing blob or Makefile): exit 1."""

    exit_code = EXIT_EXPECTATIONS


class ToolchainMissing(BuildError, EnvironmentMissing):
    """The compiler or make for this board is not installed: exit 2, with the install command."""

    exit_code = EXIT_ENVIRONMENT


class DoesNotFit(BuildError, ExpectationFailed):
    """The model (or the whole image) is larger than the chip's flash or RAM: exit 1."""


@dataclass(frozen=True)
class ElfSizes:
    """Bytes per region, from the ELF section headers."""

    text: int  # code + read-only data + vectors (flash only)
    data: int  # initialised data (flash load image and RAM)
    bss: int  # zero-initialised RAM, without the stack region
    stack: int  # reserved stack region (NOBITS section named *stack*), 0 if none

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def static_ram(self) -> int:
        return self.data + self.bss + self.stack

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "flash": self.flash, "static_ram": self.static_ram}


def missing_toolchain(board: Board) -> str | None:
    """A one-line reason + install command if this board's compiler or make is absent."""
    tools = ["make", "arm-none-eabi-gcc"] if board.is_chip else ["make", "gcc"]
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return None
    cmd = TOOLCHAIN_INSTALL if board.is_chip else NATIVE_INSTALL
    return f"missing {', '.join(missing)} (needed to build for {board.name}); install: {cmd}"


def elf_sizes(elf: Path) -> ElfSizes:
    """Classify the allocated sections of `elf` (see the module docstring)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    text = data = bss = stack = 0
    with open(elf, "rb") as f:
        try:
            elffile = ELFFile(f)
        except ELFError as exc:
            raise UsageError(f"{elf} is not an ELF file ({exc}); give the firmware.elf that "
                             f"`hil build` printed") from None
        for sec in elffile.iter_sections():
            flags = sec["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC or sec["sh_size"] == 0:
                continue
            size = int(sec["sh_size"])
            if sec["sh_type"] == "SHT_NOBITS":
                if "stack" in sec.name.lower():
                    stack += size
                else:
                    bss += size
            elif flags & SH_FLAGS.SHF_WRITE:
                data += size
            else:
                text += size
        if stack == 0:
            stack = _stack_symbol(elffile)
    return ElfSizes(text=text, data=data, bss=bss, stack=stack)


def _stack_symbol(elffile: object) -> int:
    """The linker script's `__stack_size` (an absolute symbol): the stack that sits above .bss
    at the top of RAM without a section of its own (firmware/ports/cortex-m/sections.ld)."""
    symtab = elffile.get_section_by_name(".symtab")  # type: ignore[attr-defined]
    if symtab is None:
        return 0
    syms = symtab.get_symbol_by_name("__stack_size") or []
    return int(syms[0]["st_value"]) if syms else 0


def check_fits(board: Board, sizes: ElfSizes) -> None:
    """Raise DoesNotFit naming the region, what is needed and what the board has."""
    if board.flash_bytes and sizes.flash > board.flash_bytes:
        raise DoesNotFit(f"model does not fit: needs {sizes.flash} bytes of flash "
                         f"(text+rodata {sizes.text} + data {sizes.data}), board {board.name} has "
                         f"{board.flash_bytes}")
    if board.ram_bytes and sizes.static_ram > board.ram_bytes:
        raise DoesNotFit(f"model does not fit: needs {sizes.static_ram} bytes of RAM "
                         f"(data {sizes.data} + bss {sizes.bss} incl. arena + stack "
                         f"{sizes.stack}), board {board.name} has {board.ram_bytes}")


def check_blob_fits(board: Board, model: Path) -> None:
    """Cheap early check: the blob alone must fit in flash, before spending a build on it."""
    size = model.stat().st_size
    if board.flash_bytes and size > board.flash_bytes:
        raise DoesNotFit(f"model does not fit: needs {size} bytes of flash for the model blob "
                         f"{model.name} alone, board {board.name} has {board.flash_bytes}")


def elf_path(board: Board) -> Path:
    return FIRMWARE_DIR / "build" / board.name / "firmware.elf"


def build(board: Board, model: Path, log_path: Path | None = None,
          dest: Path | None = None) -> Path:
    """`make -C firmware BOARD=<b> MODEL=<blob>`; returns the ELF (copied to `dest` if given).

    Serialised by a file lock, because parallel runs share firmware/build/<board>/: the copy to
    `dest` happens under the lock, so a run never picks up an ELF another run built for another
    model.
    """
    model = Path(model).resolve()
    if not model.is_file():
        raise BuildError(f"model blob {model} does not exist")
    check_blob_fits(board, model)
    reason = missing_toolchain(board)
    if reason:
        raise ToolchainMissing(f"cannot build firmware: {reason}")
    if not (FIRMWARE_DIR / "Makefile").is_file():
        raise BuildError(f"{FIRMWARE_DIR / 'Makefile'} is missing")
    argv = ["make", "-C", str(FIRMWARE_DIR), f"BOARD={board.name}", f"MODEL={model}",
            f"-j{os.cpu_count() or 1}"]
    lock_path = FIRMWARE_DIR / "build" / ".hil-build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(argv, capture_output=True, text=True)
        elf = elf_path(board)
        if proc.returncode == 0 and dest is not None and elf.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(elf, dest)
            elf = dest
    output = proc.stdout + proc.stderr
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(f"$ {' '.join(argv)}\n{output}")
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        if any(m in output for m in ("overflowed by", "will not fit in region", "RAM overflow")):
            raise DoesNotFit(f"model does not fit on {board.name} (the linker says so; board has "
                             f"{board.flash_bytes} bytes flash, {board.ram_bytes} bytes RAM):\n"
                             f"{tail}")
        raise BuildError(f"firmware build failed ({' '.join(argv)}), last lines:\n{tail}")
    if not elf.is_file():
        raise BuildError(f"make succeeded but {elf} is missing")
    if board.is_chip:
        check_fits(board, elf_sizes(elf))
    return elf
