"""The native firmware (ASan + UBSan build) on a real pty: the whole protocol, real bytes.

The process gets the pty slave as stdin/stdout exactly as `hil run --board native` does, so the
line discipline (raw mode set by the firmware), framing, error answers and the engine all run as
they will on a board. Classifications are compared with the integer reference bit for bit.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_firmware_helpers import NEED_HOST_CC, PumpLink, make_firmware, start_native, test_blob

from hil.protocol import (
    MAX_FRAME,
    Device,
    DeviceError,
    DeviceFault,
    ErrorFrame,
    Result,
    encode_frame,
    parse_message,
    percent_encode,
)
from hil.session import BoardSession

pytestmark = NEED_HOST_CC

SENTENCES = [
    "hello world, this is a test",
    "I want to transfer money to my savings account!",
    "Ünïcödé façade — naïve café ☕ 東京",
    "",
    "   ",
    "a" * 1500,
    "what's the weather like in Paris tomorrow?",
]


@pytest.fixture(scope="module")
def blob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return test_blob(tmp_path_factory.mktemp("blob"))


@pytest.fixture(scope="module")
def elf(tmp_path_factory: pytest.TempPathFactory, blob: Path) -> Path:
    return make_firmware("native", tmp_path_factory.mktemp("build"), blob, flavour="asan")


@pytest.fixture()
def dev(elf: Path) -> Iterator[tuple[Device, PumpLink]]:
    device, link = start_native(elf)
    try:
        device.wait_hello(60)
    except Exception as exc:  # say what the process printed on stderr, and its state
        code = link.proc.poll()
        link.close()
        err = link.proc.stderr.read().decode(errors="replace") if link.proc.stderr else ""
        raise AssertionError(f"{exc}\n  exit code: {code}\n  stderr: {err[-2000:]}") from exc
    yield device, link
    alive = link.proc.poll() is None
    link.close()
    stderr = link.proc.stderr.read().decode(errors="replace") if link.proc.stderr else ""
    assert alive, f"the firmware died: {stderr[-3000:]}; received {link.received[-500:]!r}"
    assert "runtime error" not in stderr and "AddressSanitizer" not in stderr, stderr


def answer(device: Device, timeout: float = 20) -> ErrorFrame | Result:
    msg = parse_message(device.next_frame(timeout))
    assert isinstance(msg, ErrorFrame | Result), msg
    return msg


def test_banner_and_hello(elf: Path, blob: Path) -> None:
    import zlib

    device, link = start_native(elf)
    try:
        hello = device.wait_hello(60)
        assert hello.proto == 1 and hello.board == "native" and hello.unit == "ns"
        assert hello.model == zlib.crc32(blob.read_bytes())
        assert hello.maxframe == MAX_FRAME and hello.labels > 0 and hello.maxlen > 0
        assert device.lines[0].startswith("embbert-hil fw 0.1.0 board=native model=")
        assert device.lines[0].endswith(hello.model_hex)
        again = device.hello()
        assert again.model == hello.model and again.seq != 0
    finally:
        link.close()


def test_classify_matches_reference(dev: tuple[Device, PumpLink], blob: Path) -> None:
    from hil.quant.blob import read_blob
    from hil.quant.reference import dims_of, forward
    from hil.quant.tokenizer import Tokenizer

    device, _ = dev
    model = read_blob(blob.read_bytes())
    max_len = dims_of(model)["max_len"]
    tok = Tokenizer.from_file()
    for text in SENTENCES:
        res = device.classify(text)
        ids = [int(i) for i in tok.encode(text, max_len=max_len)]
        assert res.ids == ids, text
        ref = [int(v) for v in forward(model, ids)]
        assert res.logits == ref, text
        assert res.label == max(range(len(ref)), key=lambda i: (ref[i], -i))
        assert res.tokens == len(ids) and res.cycles > 0 and res.arena > 0 and res.stack > 0
        assert len(res.layers) == dims_of(model)["n_layers"] + 2
        by_ids = device.classify_ids(ids)
        assert by_ids.logits == ref and by_ids.ids is None


def test_error_frames(dev: tuple[Device, PumpLink]) -> None:
    device, _ = dev
    cases: list[tuple[bytes, str]] = [
        (encode_frame(7, "HELLO")[:-9] + b"00000000\n", "BAD_FRAME"),  # bad CRC
        (b"$this is not a frame\n", "BAD_FRAME"),
        (b"$70000 HELLO*" + b"%08X\n" % 0, "BAD_FRAME"),
        (encode_frame(8, "NOPE"), "BAD_FRAME"),  # unknown type
        (encode_frame(9, "RESULT", "label=1"), "BAD_FRAME"),  # not a request
        (b"$10 CLASSIFY " + b"x" * MAX_FRAME + b"*00000000\n", "TOO_LONG"),
        (encode_frame(11, "CLASSIFY", "%FF%FEabc"), "BAD_UTF8"),
        (encode_frame(12, "CLASSIFY", "%C3"), "BAD_UTF8"),  # truncated sequence
        (encode_frame(13, "CLASSIFY", "%ED%A0%80"), "BAD_UTF8"),  # surrogate
        (encode_frame(14, "CLASSIFY", "%G1"), "BAD_FRAME"),
        (encode_frame(15, "IDS", "ids="), "EMPTY"),
        (encode_frame(16, "IDS", "ids=2,99999"), "BAD_IDS"),
        (encode_frame(17, "IDS", "ids=2,60000"), "BAD_IDS"),
        (encode_frame(18, "IDS", "ids=" + ",".join(["2"] * 600)), "BAD_IDS"),
        (encode_frame(19, "IDS", "ids=1,,2"), "BAD_FRAME"),
        (encode_frame(20, "IDS", "2,3"), "BAD_FRAME"),
        (encode_frame(21, "CLASSIFY", "%41" * 700 + "a" * 1349), "TOO_LONG"),  # 2049 bytes
    ]
    for raw, code in cases:
        device.send_raw(raw)
        msg = answer(device)
        assert isinstance(msg, ErrorFrame), (raw[:60], msg)
        assert msg.code == code, (raw[:60], msg)
    # seq is echoed when it could be read
    device.send_raw(encode_frame(11, "CLASSIFY", "%FF"))
    assert answer(device).seq == 11
    with pytest.raises(DeviceError) as err:
        device.classify(b"caf\xc3")
    assert err.value.code == "BAD_UTF8" and err.value.reason


def test_cut_frame_then_good_one(dev: tuple[Device, PumpLink]) -> None:
    device, _ = dev
    frame = encode_frame(5, "CLASSIFY", "hello there")
    device.send_raw(frame[: len(frame) // 2])
    time.sleep(0.2)
    res = device.classify("hello there")  # its `$` drops the half frame silently
    assert isinstance(res, Result)
    st = device.stats()
    assert st.errors == 0, st


def test_garbage_flood_then_good_frame(dev: tuple[Device, PumpLink]) -> None:
    device, _ = dev
    rng = random.Random(1)
    noise = bytes(rng.choice(b"abc \x00\xff\r\t*%=,0123456789") for _ in range(200_000))
    device.send_raw(noise)  # no `$`: dropped silently
    device.send_raw(b"\n" + bytes(rng.getrandbits(8) for _ in range(50_000)) + b"\n")
    assert device.drain(quiet=1.0) > 0  # the device answered each `$` in the noise
    hello = device.hello(timeout=30)
    assert hello.board == "native"
    res = device.classify("still alive?")
    assert res.tokens >= 2


def test_every_byte_value_in_text(hil_device: BoardSession) -> None:
    """On the plugin's board (`--hil-board`, default native): any board must take every byte."""
    text = bytes(range(1, 128)).decode("ascii")  # every ASCII byte, escaped or literal
    res = hil_device.classify(text)
    assert res.ids is not None and res.ids[0] == 2
    hil_device.check_agrees(res)  # token ids and logits bit-exact with the host


def test_stats_and_reset(dev: tuple[Device, PumpLink]) -> None:
    device, link = dev
    device.classify("one")
    with pytest.raises(DeviceError):
        device.classify_ids([])
    st = device.stats()
    assert st.requests >= 3 and st.errors == 1 and st.uptime > 0
    hello = device.reset(timeout=20)
    assert hello.seq == 0
    assert device.stats().requests == 1  # counters restart with the fresh boot
    assert link.received.count(b"embbert-hil fw ") == 2


def test_fault_report(tmp_path: Path, blob: Path) -> None:
    """A test-hooks build turns one magic text into SIGILL; the handler prints the FAULT line."""
    elf = make_firmware("native", tmp_path, blob, flavour="asan", extra=["TEST_HOOKS=1"])
    device, link = start_native(elf)
    try:
        device.wait_hello(60)
        with pytest.raises(DeviceFault, match=r"FAULT SIGILL pc=0x[0-9A-F]+"):
            device.classify("\x01FAULT!", timeout=10)
    finally:
        link.close()


def test_rejected_model_still_says_hello(tmp_path: Path, blob: Path) -> None:
    """A corrupted blob: banner says why, HELLO has model=00000000, requests get ERROR MODEL."""
    bad = bytearray(blob.read_bytes())
    bad[len(bad) // 2] ^= 0x40
    (tmp_path / "bad.bin").write_bytes(bytes(bad))
    elf = make_firmware("native", tmp_path, tmp_path / "bad.bin", flavour="asan")
    device, link = start_native(elf)
    try:
        hello = device.wait_hello(60)
        assert hello.model == 0 and hello.labels == 0
        assert any(line.startswith("MODEL rejected: ") for line in device.lines), device.lines
        for ask in (lambda: device.classify("hi"), lambda: device.classify_ids([2, 5])):
            with pytest.raises(DeviceError) as err:
                ask()
            assert err.value.code == "MODEL"
        assert device.hello().model == 0
    finally:
        link.close()


def test_small_arena_warns_and_refuses_long_inputs(tmp_path: Path, blob: Path) -> None:
    """ARENA too small for maxlen: the banner warns; short inputs work, long ones NO_MEMORY.

    32 KiB: above what 2 tokens need (about 25 KB: the engine's per-block buffers are sized for
    32 rows whenever n <= 128) and far below what maxlen needs (tens of KB more)."""
    elf = make_firmware("native", tmp_path, blob, flavour="asan", extra=["ARENA=32768"])
    device, link = start_native(elf)
    try:
        hello = device.wait_hello(60)
        assert hello.arena == 32768
        assert any(line.startswith("WARN arena 32768 bytes < ") for line in device.lines)
        assert device.classify_ids([2, 7]).tokens == 2
        with pytest.raises(DeviceError) as err:
            device.classify_ids([2] + [7] * (hello.maxlen - 1))
        assert err.value.code == "NO_MEMORY"
    finally:
        link.close()


def test_random_valid_frames_fuzz(dev: tuple[Device, PumpLink]) -> None:
    """Frames with good CRCs and random contents (random bytes as text, random id lists, odd
    payloads on every type): each gets exactly one answer, under ASan/UBSan, no crash."""
    device, _ = dev
    rng = random.Random(7)
    vocab = 8192
    for seq in range(1, 301):
        kind = rng.randrange(4)
        if kind == 0:
            raw = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
            frame = encode_frame(seq, "CLASSIFY", percent_encode(raw))
        elif kind == 1:
            text = "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(80)))
            frame = encode_frame(seq, "CLASSIFY", percent_encode(text))
        elif kind == 2:
            ids = [rng.randrange(0, vocab + 10) for _ in range(rng.randrange(0, 80))]
            frame = encode_frame(seq, "IDS", "ids=" + ",".join(map(str, ids)))
        else:
            junk = "".join(rng.choice("ab=,%20 9") for _ in range(rng.randrange(30)))
            frame = encode_frame(seq, rng.choice(["HELLO", "STATS", "IDS", "OK", "ERROR"]), junk)
        device.send_raw(frame)
        got = device.next_frame(20)
        assert got.seq == seq, (frame[:80], got)
        assert got.type in ("RESULT", "ERROR", "HELLO", "STATS"), got
