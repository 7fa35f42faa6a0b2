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
import hashlib
import os
import shutil
import subprocess
import zlib
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
from hil.paths import FIRMWARE_DIR, cache_dir
from hil.progress import status

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


#: What the firmware is built from: a change to any of these makes a new cache entry.
_SOURCE_GLOBS = ("Makefile", "src/**/*", "include/**/*", "app/**/*", "ports/**/*")


def source_hash(board: Board, extra: tuple[str, ...] = ()) -> str:
    """sha256 over the firmware sources (paths and bytes), the make variables and the compiler
    identity, so that a cached ELF is reused only when make would build the same bytes."""
    h = hashlib.sha256()
    files = sorted({p for g in _SOURCE_GLOBS for p in FIRMWARE_DIR.glob(g) if p.is_file()})
    for path in files:
        h.update(path.relative_to(FIRMWARE_DIR).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    cc = "arm-none-eabi-gcc" if board.is_chip else "gcc"
    h.update(f"{board.name}\0{cc}\0{shutil.which(cc)}\0{' '.join(extra)}\0".encode())
    return h.hexdigest()


def cache_entry(board: Board, model: Path, extra: tuple[str, ...] = ()) -> Path:
    """The folder one build lives in: <cache>/firmware/<board>-<model id>-<source hash>.

    The model id is the CRC the device reports in HELLO (zlib.crc32 of the whole blob), so a run
    can tell from the folder name which model an ELF carries."""
    model_id = zlib.crc32(Path(model).read_bytes())
    return (cache_dir() / "firmware"
            / f"{board.name}-{model_id:08x}-{source_hash(board, extra)[:16]}")


def elf_path(board: Board, model: Path) -> Path:
    """Where build() puts (or has put) the ELF of `board` with `model`, in the per-user cache."""
    return cache_entry(board, model) / board.name / "firmware.elf"


def embedded_model_id(elf: Path) -> int | None:
    """zlib.crc32 of the blob linked into `elf` (between ebq_blob_start and ebq_blob_end), the
    id the device will report; None when the ELF carries no blob. Reads the ELF, runs nothing."""
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as f:
        elffile = ELFFile(f)
        symtab = elffile.get_section_by_name(".symtab")
        if symtab is None:
            return None
        addr = {}
        for name in ("ebq_blob_start", "ebq_blob_end"):
            syms = symtab.get_symbol_by_name(name) or []
            if not syms:
                return None
            addr[name] = int(syms[0]["st_value"])
        start, end = addr["ebq_blob_start"], addr["ebq_blob_end"]
        if end <= start:
            return None
        for sec in elffile.iter_sections():
            lo = int(sec["sh_addr"])
            if sec["sh_type"] != "SHT_NOBITS" and lo <= start and end <= lo + sec["sh_size"]:
                data = sec.data()[start - lo:end - lo]
                return zlib.crc32(data)
    return None


def _make(argv: list[str], entry: Path, elf: Path) -> subprocess.CompletedProcess[str]:
    """Run make for one cache entry unless a finished build is there; under the entry's lock, so
    two processes building the same thing build it once and never read a half-written ELF."""
    entry.mkdir(parents=True, exist_ok=True)
    with open(entry / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = entry / ".done"
        if done.is_file() and elf.is_file():
            return subprocess.CompletedProcess(argv, 0, f"cached: {elf}\n", "")
        done.unlink(missing_ok=True)
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode == 0 and elf.is_file():
            done.write_text(" ".join(argv) + "\n")
        return proc


def build(board: Board, model: Path, log_path: Path | None = None,
          dest: Path | None = None) -> Path:
    """`make -C firmware BOARD=<b> MODEL=<blob> BUILD=<cache entry>`; returns the ELF (a copy
    at `dest` if given, else the cached one).

    Why a per-user cache keyed by board, model id and source hash: a build never writes into the
    checkout or the installed package, and two processes building different boards or models use
    different folders, so neither can boot the other's ELF. The same build is made once and then
    reused (make is not even started).
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
    entry = cache_entry(board, model)
    elf = entry / board.name / "firmware.elf"
    argv = ["make", "-C", str(FIRMWARE_DIR), f"BOARD={board.name}", f"MODEL={model}",
            f"BUILD={entry}", f"-j{os.cpu_count() or 1}"]
    label = model.parent.name if model.name == "model.bin" else model.name
    with status(f"building {board.name} for {label}"):  # make is silent for up to a minute
        proc = _make(argv, entry, elf)
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
    if dest is not None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.copy2(elf, tmp)
        os.replace(tmp, dest)
        return dest
    return elf
