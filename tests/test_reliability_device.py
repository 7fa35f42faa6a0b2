"""The device after bad bytes: each bad sequence gets an error frame or silence, and the next good
request still gets the *right* answer (token ids and logits bit-exact with the host reference),
on native and on both QEMU boards.

What tests/test_firmware_native.py and test_firmware_qemu.py already cover is not repeated (error
codes for each malformed frame, a cut frame then a good one on native, noise floods): this file
adds the check that matters for a long run, that no bad input leaves state behind that spoils a
later answer, plus the cases not yet run on the emulated UARTs (cut frame, empty text, over-long
text and frame, invalid UTF-8) and an empty CLASSIFY, which the protocol says gets a RESULT.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil import firmware as fw
from hil.boards import BOARDS
from hil.oracle import Oracle
from hil.protocol import MAX_FRAME, Device, DeviceError, encode_frame
from hil.targets import NativeTarget, QemuTarget
from hil.targets.base import Target

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
GOOD = "set an alarm for seven tomorrow morning"
HAVE_QEMU = bool(shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"))
BOARD_PARAMS = [
    pytest.param("native", marks=pytest.mark.skipif(shutil.which("gcc") is None,
                                                    reason="gcc needed")),
    pytest.param("netduinoplus2", marks=pytest.mark.skipif(not HAVE_QEMU, reason="no QEMU")),
    pytest.param("mps2-an386", marks=pytest.mark.skipif(not HAVE_QEMU, reason="no QEMU")),
]
SLOW_ON_QEMU = [pytest.param(p.values[0], marks=[*p.marks, *(
    [pytest.mark.slow] if p.values[0] != "native" else [])]) for p in BOARD_PARAMS]
pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason="no shipped nlu_scenario model")


@pytest.fixture(scope="module")
def oracle() -> Oracle:
    return Oracle(MODEL)


@pytest.fixture
def device(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Device, str]]:
    board = BOARDS[request.param]
    run_dir = tmp_path_factory.mktemp(board.name)
    elf = fw.build(board, MODEL, log_path=run_dir / "build.log", dest=run_dir / "firmware.elf")
    target: Target = (NativeTarget(board, run_dir, elf=elf) if board.name == "native"
                      else QemuTarget(board, run_dir, elf=elf))
    try:
        link = target.start()
        dev = Device(link, timeout=20.0, retries=0)
        dev.wait_hello(60)
        yield dev, board.name
    finally:
        target.stop()


def good_answer_is_exact(dev: Device, oracle: Oracle, text: str = GOOD) -> None:
    res = dev.classify(text)
    ids = oracle.ids(text)
    assert res.ids == ids
    assert res.logits == oracle.logits(ids)


@pytest.mark.parametrize("device", SLOW_ON_QEMU, indirect=True)
def test_bad_sequences_never_spoil_a_later_answer(device: tuple[Device, str],
                                                  oracle: Oracle) -> None:
    """(On QEMU ~20 s per board, floods at UART speed: marked slow there.)"""
    dev, board = device
    good_answer_is_exact(dev, oracle)
    frame = encode_frame(40, "CLASSIFY", GOOD)
    # QEMU's UART moves ~30 kB/s: keep the floods small there (native has its own 250 kB one).
    flood = 200_000 if board == "native" else 20_000
    rng = random.Random(7)
    cases: list[tuple[str, bytes, str | None]] = [
        ("frame cut in half", frame[: len(frame) // 2], None),
        ("frame cut, then newline", frame[: len(frame) // 2] + b"\n", "BAD_FRAME"),
        ("over-long text", encode_frame(41, "CLASSIFY", "ab " * 700), "TOO_LONG"),
        ("over-long frame", b"$42 CLASSIFY " + b"x" * (MAX_FRAME + 10) + b"*0\n", "TOO_LONG"),
        ("invalid UTF-8", encode_frame(43, "CLASSIFY", "caf%C3%28 %FF"), "BAD_UTF8"),
        ("lone continuation byte", encode_frame(44, "CLASSIFY", "%80"), "BAD_UTF8"),
        ("garbage flood", bytes(rng.getrandbits(8) for _ in range(flood)) + b"\n", "any"),
        ("NUL and CR only", b"\x00\r" * 500, None),
    ]
    for what, raw, code in cases:
        dev.send_raw(raw)
        dev.drain(quiet=0.5 if board == "native" else 2.0)
        # whatever the device said (error frames or nothing), the next good request is exact
        good_answer_is_exact(dev, oracle)
        if code not in (None, "any"):
            dev.send_raw(raw)
            answer = dev.next_frame(20)
            assert answer.type == "ERROR" and f"code={code}" in answer.payload, (what, answer)
            dev.drain(quiet=0.3)
    assert dev.stats().extra.get("overruns", "0") == "0"


@pytest.mark.parametrize("device", BOARD_PARAMS, indirect=True)
def test_empty_and_blank_text_get_a_result(device: tuple[Device, str], oracle: Oracle) -> None:
    """An empty (or all-whitespace) CLASSIFY tokenizes to [CLS] alone and gets a RESULT."""
    dev, _ = device
    for text in ("", "   ", "\t"):
        good_answer_is_exact(dev, oracle, text)
    with pytest.raises(DeviceError) as err:
        dev.classify_ids([])
    assert err.value.code == "EMPTY"
    good_answer_is_exact(dev, oracle)
