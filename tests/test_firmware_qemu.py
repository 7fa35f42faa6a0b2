"""The Arm firmware in QEMU (-icount shift=0): boot banner, HELLO, error frames, classification
bit-exact against the integer reference, RESET.

mps2-an386 and netduinoplus2 are the boards QEMU models. The stm32f4 image (USART2) also boots
on QEMU's netduinoplus2 (same STM32F4 USART block and memory map, serial1 = USART2): a smoke
test of that port's startup and UART; its DWT reads 0 in QEMU, so its cycle counts are not
checked there (Renode with the DWT overlay is where that board's time is measured).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_firmware_helpers import NEED_QEMU, PumpLink, make_firmware, start_qemu, test_blob

from hil.protocol import Device, DeviceError, DeviceFault, ErrorFrame, parse_message

pytestmark = [NEED_QEMU, pytest.mark.qemu]

# (board, QEMU machine, serial index, unit, clock, make arguments)
CASES = [
    ("mps2-an386", "mps2-an386", 0, "systick", 25_000_000, []),
    ("mps2-an386", "mps2-an386", 0, "systick", 25_000_000, ["DSP=0"]),  # portable kernels
    ("netduinoplus2", "netduinoplus2", 0, "systick", 168_000_000, []),
    ("stm32f4", "netduinoplus2", 1, "dwt", 168_000_000, []),
]
SENTENCES = ["hello world, this is a test", "Ünïcödé façade — naïve café", ""]


@pytest.fixture(scope="module")
def blob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return test_blob(tmp_path_factory.mktemp("blob"))


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build")


@pytest.fixture(params=CASES, ids=["-".join([c[0], *c[5]]) for c in CASES])
def qemu(request: pytest.FixtureRequest, blob: Path, build_dir: Path, tmp_path: Path
         ) -> Iterator[tuple[Device, PumpLink, tuple]]:
    board, machine, serial, _, _, extra = request.param
    elf = make_firmware(board, build_dir / "-".join(["b", *extra]), blob, extra=extra)
    device, link = start_qemu(machine, elf, tmp_path, serial)
    try:
        yield device, link, request.param
    finally:
        link.close()  # SIGKILL: a hung QEMU ignores SIGTERM


def test_boot_hello_errors_classify(qemu: tuple[Device, PumpLink, tuple], blob: Path) -> None:
    from hil.quant.blob import read_blob
    from hil.quant.reference import dims_of, forward
    from hil.quant.tokenizer import Tokenizer

    device, link, (board, _, _, unit, clock, _) = qemu
    hello = device.wait_hello(60)
    assert (hello.board, hello.unit, hello.clock) == (board, unit, clock)
    assert hello.model == zlib.crc32(blob.read_bytes())
    assert 0 < hello.flash <= 1 << 20 and 0 < hello.ram
    assert device.lines and device.lines[0].startswith(f"embbert-hil fw 0.1.0 board={board}")

    device.send_raw(b"\x00\xffgarbage$$ \x01x\n")  # 0x01 'x' would quit a -nographic QEMU
    msg = parse_message(device.next_frame(30))
    assert isinstance(msg, ErrorFrame) and msg.code == "BAD_FRAME"
    with pytest.raises(DeviceError) as err:
        device.classify(b"\xc3(")
    assert err.value.code == "BAD_UTF8"

    model = read_blob(blob.read_bytes())
    max_len = dims_of(model)["max_len"]
    tok = Tokenizer.from_file()
    for text in SENTENCES:
        res = device.classify(text)
        ids = [int(i) for i in tok.encode(text, max_len=max_len)]
        assert res.ids == ids
        assert res.logits == [int(v) for v in forward(model, ids)]
        assert res.stack > 0 and res.arena > 0
        if unit == "systick":  # QEMU's SysTick follows the instruction count
            assert res.cycles > 0 and sum(res.layers) <= res.cycles
    st = device.stats()
    assert st.requests == 3 + len(SENTENCES) and st.errors == 2  # STATS counts itself

    again = device.reset(timeout=60)
    assert again.model == hello.model
    assert link.received.count(b"embbert-hil fw ") == 2


def test_repeatable_cycles_under_icount(blob: Path, build_dir: Path, tmp_path: Path) -> None:
    """-icount shift=0 makes SysTick counts follow the instructions executed, not host load."""
    elf = make_firmware("mps2-an386", build_dir, blob)
    counts = []
    for _ in range(2):
        device, link = start_qemu("mps2-an386", elf, tmp_path)
        try:
            device.wait_hello(60)
            counts.append(device.classify("the same sentence twice").cycles)
        finally:
            link.close()
    # equal up to the tick quantum: SysTick at 25 MHz ticks every 40 instructions, and the
    # phase at which a request arrives depends on host timing
    assert counts[0] > 0 and abs(counts[0] - counts[1]) <= 2, counts


def test_fault_handler_prints_fault_line(blob: Path, tmp_path: Path) -> None:
    """A test-hooks build executes UDF on a magic text: the UsageFault handler reports it."""
    elf = make_firmware("mps2-an386", tmp_path / "hooks", blob, extra=["TEST_HOOKS=1"])
    device, link = start_qemu("mps2-an386", elf, tmp_path)
    try:
        device.wait_hello(60)
        with pytest.raises(DeviceFault) as err:
            device.classify("\x01FAULT!", timeout=30)
        line = [ln for ln in device.lines if ln.startswith("FAULT ")][0]
        assert re.fullmatch(r"FAULT UsageFault pc=0x[0-9A-F]{8} lr=0x[0-9A-F]{8} "
                            r"cfsr=0x00010000 .*", line), line  # UNDEFINSTR
        assert "FAULT UsageFault" in str(err.value)
    finally:
        link.close()


def test_noise_flood_then_good_frame(blob: Path, build_dir: Path, tmp_path: Path) -> None:
    """40 kB of noise (with `$` in it) through the emulated UART (QEMU moves ~30 kB/s): the
    ring never wedges, the device answers the noise it framed, drops the rest, and serves the
    next request."""
    import random

    elf = make_firmware("netduinoplus2", build_dir / "b", blob)
    device, link = start_qemu("netduinoplus2", elf, tmp_path)
    try:
        device.wait_hello(60)
        rng = random.Random(2)
        device.send_raw(bytes(rng.choice(b"ab \x00\xff\r*%09") for _ in range(30_000)))
        device.send_raw(b"\n" + bytes(rng.getrandbits(8) for _ in range(10_000)) + b"\n")
        assert device.drain(quiet=5.0) > 0
        assert device.hello().board == "netduinoplus2"
        assert device.classify("still alive?").tokens >= 2
        assert int(device.stats().extra.get("overruns", "0")) == 0
    finally:
        link.close()


def test_arena_warning_covers_every_length_up_to_maxlen(tmp_path: Path) -> None:
    """Blocks shrink from 28 to 16 rows past 128 tokens, so a spec-2 model with maxlen 140
    needs 46,720 B at 140 tokens but 49,152 B at 128 (benchmarks/quant_memory.py's mirror of
    ebq_arena_bytes). A DSP board sized for maxlen alone must say at boot that it cannot take
    every length (ebq_arena_bytes_upto): here 140 tokens fit and 128 get NO_MEMORY."""
    pytest.importorskip("torch", reason="the random spec-2 model with maxlen 140 needs torch")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import quant_memory as qm

    from hil.quant.quantize import blob_bytes, random_quant_model

    need = {n: qm.arena_bytes(128, n, True, 16, att_output=True, segment=True) for n in (128, 140)}
    assert need[140] < need[128]
    path = tmp_path / "maxlen140.bin"
    path.write_bytes(blob_bytes(random_quant_model(num_labels=3, seed=3, max_len=140, n_layers=2,
                                                   calib=8)))
    elf = make_firmware("mps2-an386", tmp_path / "b", path, extra=[f"ARENA={need[140]}"])
    device, link = start_qemu("mps2-an386", elf, tmp_path)
    try:
        hello = device.wait_hello(60)
        assert (hello.arena, hello.maxlen, hello.need) == (need[140], 140, need[128])
        assert hello.arena_warning and f"{need[128]:,} B" in hello.arena_warning
        assert f"WARN arena {need[140]} bytes < {need[128]} needed up to maxlen: some inputs " \
               "get NO_MEMORY" in device.lines, device.lines
        assert device.classify_ids([2] + [7] * 139, timeout=120).tokens == 140
        with pytest.raises(DeviceError) as err:
            device.classify_ids([2] + [7] * 127, timeout=120)
        assert err.value.code == "NO_MEMORY"
    finally:
        link.close()
