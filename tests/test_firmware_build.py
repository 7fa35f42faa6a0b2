"""Every board builds with the model and fits the real chip: flash, RAM (data + bss + stack),
no malloc/_sbrk linked in, the blob byte-identical in the image, the vector table sane.

nrf52840 and stm32f4 run under Renode elsewhere; here they must at least build and fit.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from test_firmware_helpers import NEED_ARM, make_firmware, test_blob

pytestmark = NEED_ARM

# board -> UART interrupt number (Renode's .repl / QEMU's SoC wiring)
UART_IRQ = {"nrf52840": 2, "stm32f4": 38, "netduinoplus2": 37, "mps2-an386": 0}
# board -> (flash origin, flash bytes, RAM origin, RAM bytes) of the real chip
LIMITS = {
    "nrf52840": (0x0000_0000, 1 << 20, 0x2000_0000, 256 << 10),
    "stm32f4": (0x0800_0000, 1 << 20, 0x2000_0000, 128 << 10),
    "netduinoplus2": (0x0800_0000, 1 << 20, 0x2000_0000, 128 << 10),
    "mps2-an386": (0x0000_0000, 4 << 20, 0x2000_0000, 4 << 20),
}


@pytest.fixture(scope="module")
def blob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return test_blob(tmp_path_factory.mktemp("blob"))


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build")


def symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16)
    return syms


@pytest.mark.parametrize("board", sorted(LIMITS))
def test_builds_and_fits(board: str, blob: Path, build_dir: Path) -> None:
    elf = make_firmware(board, build_dir, blob)
    size = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True,
                          text=True, check=True).stdout
    sections = {m.group(1): (int(m.group(2)), int(m.group(3)))
                for m in re.finditer(r"^(\.\S+)\s+(\d+)\s+(\d+)", size, re.M)}
    flash0, flash_len, ram0, ram_len = LIMITS[board]
    syms = symbols(elf)
    for bad in ("malloc", "_malloc_r", "_sbrk", "_sbrk_r", "free", "printf"):
        assert bad not in syms, f"{board}: {bad} is linked in"
    # integer-only (contract 2): no soft-float helper may be linked in (-mfloat-abi=soft would
    # pull __aeabi_f*/__aeabi_d* for any float or double operation)
    floats = [s for s in syms if re.match(r"__aeabi_[fd]|__(add|sub|mul|div)[sd]f3|__float", s)]
    assert not floats, f"{board}: float helpers linked in: {floats}"
    # flash: every section placed in flash, plus .data's initialisers
    flash_end = max(addr + n for name, (n, addr) in sections.items()
                    if flash0 <= addr < flash0 + flash_len)
    flash_end += sections.get(".data", (0, 0))[0]
    assert flash_end <= flash0 + flash_len
    # RAM: .bss/.data below the stack, the stack inside the chip's RAM
    assert syms["_estack"] == ram0 + ram_len
    assert syms["_sstack"] >= syms["_ebss"] >= ram0
    # the model blob is in the image byte for byte
    data = blob.read_bytes()
    start, end = syms["ebq_blob_start"], syms["ebq_blob_end"]
    assert end - start == len(data) and start % 8 == 0
    objcopy = shutil.which("arm-none-eabi-objcopy")
    assert objcopy
    image = build_dir / f"{board}.bin"
    subprocess.run([objcopy, "-O", "binary", "-j", ".isr_vector", "-j", ".text", str(elf),
                    str(image)], check=True)
    raw = image.read_bytes()
    off = start - flash0
    assert zlib.crc32(raw[off : off + len(data)]) == zlib.crc32(data)
    # vector table: initial SP = top of RAM, reset vector is Thumb and inside flash
    sp = int.from_bytes(raw[0:4], "little")
    reset = int.from_bytes(raw[4:8], "little")
    assert sp == ram0 + ram_len and reset & 1 and flash0 <= reset < flash0 + flash_len
    slot = 16 + UART_IRQ[board]
    uart_vec = int.from_bytes(raw[4 * slot : 4 * slot + 4], "little")
    assert uart_vec == syms["board_uart_irq"] | 1, f"{board}: UART IRQ {UART_IRQ[board]} vector"
    systick = int.from_bytes(raw[60:64], "little")
    assert systick != int.from_bytes(raw[12:16], "little")  # not the fault handler


def test_builds_without_model(build_dir: Path) -> None:
    """No MODEL: the image still builds (it will answer ERROR code=MODEL)."""
    elf = make_firmware("netduinoplus2", build_dir / "nomodel")
    syms = symbols(elf)
    assert syms["ebq_blob_end"] == syms["ebq_blob_start"]


def test_unknown_board_is_refused() -> None:
    fw = Path(__file__).resolve().parents[1] / "firmware"
    proc = subprocess.run(["make", "-C", str(fw), "BOARD=esp32"], capture_output=True, text=True)
    assert proc.returncode != 0 and "not one of" in proc.stderr


def test_concurrent_builds_never_clobber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `hil build`s of the same board with different models, at the same moment, into one
    per-user cache: each ELF carries its own model (the CRC the device will report), nothing is
    written into the source tree, and a second build is a cache hit that does not start make."""
    import os
    import sys

    from hil import firmware as fw
    from hil.boards import BOARDS

    root = Path(__file__).resolve().parents[1]
    before = sorted(p for p in (root / "firmware").rglob("*"))
    env = {**os.environ, "HIL_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(root)}
    models = ("imdb", "nlu_scenario")
    procs = [subprocess.Popen([sys.executable, "-m", "hil.cli", "build", "--board", "stm32f4",
                               "--model", m], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for m in models]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    elfs = [Path(out.splitlines()[0]) for out, _ in outs]
    assert elfs[0] != elfs[1]
    for model, elf in zip(models, elfs, strict=True):
        assert elf.is_relative_to(tmp_path / "cache"), elf
        crc = zlib.crc32((root / "hil" / "models" / model / "model.bin").read_bytes())
        assert fw.embedded_model_id(elf) == crc, f"{elf} carries another model than {model}"
        assert f"{crc:08x}" in str(elf)
    assert sorted(p for p in (root / "firmware").rglob("*")) == before
    log = tmp_path / "again.log"
    monkeypatch.setenv("HIL_CACHE_DIR", env["HIL_CACHE_DIR"])
    again = fw.build(BOARDS["stm32f4"], root / "hil" / "models" / models[0] / "model.bin",
                     log_path=log)
    assert again == elfs[0] and "cached:" in log.read_text()
