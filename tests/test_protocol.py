"""hil/protocol.py on its own: frames, escapes, the stream reader, messages and Device's host
rules (retry, stale seqs, timeouts that explain themselves), plus agreement with the C header.

Device is driven by a scripted in-process link, so its retry logic is tested with real bytes
but without a firmware; tests/test_firmware_*.py do the same against real devices.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from hil.protocol import (
    ERROR_CODES,
    MAX_FRAME,
    MAX_SEQ,
    MAX_TEXT,
    MSG_TYPES,
    PROTO_VERSION,
    BadFrame,
    Device,
    DeviceError,
    DeviceFault,
    DeviceTimeout,
    ErrorFrame,
    Frame,
    FrameError,
    FrameReader,
    Hello,
    LinkClosed,
    Result,
    Stats,
    TextLine,
    crc32,
    decode_frame,
    encode_frame,
    parse_message,
    percent_decode,
    percent_encode,
)

HEADER = Path(__file__).resolve().parents[1] / "firmware" / "include" / "ebq_proto.h"
HELLO_PAYLOAD = ("proto=1 fw=0.1.0 board=netduinoplus2 model=1A2B3C4D labels=18 maxlen=256 "
                 "maxtext=2048 maxframe=2600 clock=168000000 unit=systick flash=400000 "
                 "ram=124000 arena=98304")


# ---- agreement with firmware/include/ebq_proto.h ---------------------------------------------


def _x_list(name: str) -> tuple[str, ...]:
    text = HEADER.read_text()
    m = re.search(rf"#define {name}\(X\)((?:[^\n]*\\\n)+[^\n]*)", text)
    assert m, f"{name} not found in {HEADER}"
    return tuple(re.findall(r"X\(([A-Z0-9_]+)\)", m.group(1)))


def _define(name: str) -> int:
    m = re.search(rf"#define {name} (\d+)", HEADER.read_text())
    assert m, name
    return int(m.group(1))


def test_constants_agree_with_c_header() -> None:
    assert _x_list("EBQ_MSG_TYPES") == MSG_TYPES
    assert _x_list("EBQ_ERROR_CODES") == ERROR_CODES
    assert _define("EBQ_PROTO_VERSION") == PROTO_VERSION
    assert _define("EBQ_PROTO_MAXFRAME") == MAX_FRAME
    assert _define("EBQ_PROTO_MAXTEXT") == MAX_TEXT
    assert _define("EBQ_PROTO_MAXSEQ") == MAX_SEQ


def test_frame_limit_covers_the_worst_escaped_text() -> None:
    """Issue #17: the limit a user meets is MAX_TEXT bytes of text in any content, so a text of
    only `$` (or non-ASCII), every byte %XX, with the largest seq and a `\\r`, must fit a frame."""
    worst = encode_frame(MAX_SEQ, "CLASSIFY", percent_encode("$" * MAX_TEXT))
    assert len(worst) + 1 <= MAX_FRAME  # + the `\r` a terminal may add
    assert MAX_FRAME - (len(worst) + 1) < 16  # and not much more: every byte is RAM on a board


def test_protocol_doc_lists_every_code_and_type() -> None:
    doc = (HEADER.parents[2] / "docs" / "protocol.md").read_text()
    for name in (*MSG_TYPES, *ERROR_CODES):
        assert f"`{name}`" in doc, name


# ---- frames -----------------------------------------------------------------------------------


def test_crc_is_zlib_crc32() -> None:
    assert crc32(b"123456789") == 0xCBF43926 == zlib.crc32(b"123456789")
    assert encode_frame(0, "OK") == b"$0 OK*%08X\n" % zlib.crc32(b"0 OK")


@pytest.mark.parametrize("type_", MSG_TYPES)
@pytest.mark.parametrize("payload", ["", "a=1 b=2", "hello world %25 %2A"])
@pytest.mark.parametrize("seq", [0, 1, 65535])
def test_frame_round_trip(type_: str, payload: str, seq: int) -> None:
    raw = encode_frame(seq, type_, payload)
    assert raw.startswith(b"$") and raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert decode_frame(raw) == Frame(seq, type_, payload)
    assert decode_frame(raw[:-1] + b"\r\n") == Frame(seq, type_, payload)


@pytest.mark.parametrize("raw, why", [
    (b"$1 HELLO*00000000\n", "CRC mismatch"),
    (b"$1 HELLO\n", "no \\*CRC"),
    (encode_frame(1, "HELLO").lower(), "upper-case"),
    (b"$70000 OK*%08X\n" % zlib.crc32(b"70000 OK"), "seq"),
    (b"$1 NOPE*%08X\n" % zlib.crc32(b"1 NOPE"), "unknown type"),
    (b"$x OK*%08X\n" % zlib.crc32(b"x OK"), "is not"),
    (b"$1 OK a\x01*%08X\n" % zlib.crc32(b"1 OK a\x01"), "raw byte"),
])
def test_decode_rejects(raw: bytes, why: str) -> None:
    with pytest.raises(FrameError, match=why):
        decode_frame(raw)


def test_encode_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        encode_frame(65536, "OK")
    with pytest.raises(ValueError):
        encode_frame(1, "ok")


def test_percent_encoding_of_every_byte() -> None:
    every = bytes(range(256))
    text = percent_encode(every)
    assert all(0x20 <= ord(c) <= 0x7E and c not in "$*" for c in text)
    assert percent_decode(text) == every
    assert " " in text and "%20" not in text
    assert "%20" in percent_encode(every, space=False) and " " not in percent_encode(
        every, space=False)
    for b in every:
        enc = percent_encode(bytes([b]))
        raw_ok = 0x20 <= b <= 0x7E and b not in b"$*%"
        assert enc == (chr(b) if raw_ok else f"%{b:02X}")
    assert percent_encode("é") == "%C3%A9"
    assert percent_decode("%c3%a9") == "é".encode()


@pytest.mark.parametrize("bad", ["%", "%4", "%GG", "a$b", "a*b", "\x01"])
def test_percent_decode_rejects(bad: str) -> None:
    with pytest.raises(FrameError):
        percent_decode(bad)


# ---- the stream reader ----------------------------------------------------------------------


def test_reader_frames_and_text_lines_byte_by_byte() -> None:
    stream = (b"embbert-hil fw 0.1.0 board=x model=00000000\r\n" + encode_frame(0, "HELLO", "a=1")
              + b"FAULT HardFault pc=0x1 lr=0x2 cfsr=0x3\n")
    reader = FrameReader()
    events = [e for b in stream for e in reader.feed(bytes([b]))]
    assert events == [TextLine("embbert-hil fw 0.1.0 board=x model=00000000"),
                      Frame(0, "HELLO", "a=1"),
                      TextLine("FAULT HardFault pc=0x1 lr=0x2 cfsr=0x3")]


def test_reader_resyncs_after_garbage_and_cut_frames() -> None:
    good = encode_frame(3, "OK")
    stream = b"\x00\xff noise " + good[:7] + b"$$" + good + b"garbage\n" + good[:-1]
    reader = FrameReader()
    events = reader.feed(stream)
    assert Frame(3, "OK") in events
    assert any(isinstance(e, TextLine) and "noise" in e.text for e in events)
    assert events.count(Frame(3, "OK")) == 1
    assert reader.feed(b"\n") == [Frame(3, "OK")]  # the cut frame completes


def test_reader_bounded_line_length() -> None:
    reader = FrameReader(max_line=100)
    events = reader.feed(b"$" + b"x" * 500)
    assert len(events) == 1 and isinstance(events[0], BadFrame)
    assert reader.feed(b"y" * 10_000) == []  # still discarding, memory stays bounded
    assert reader.feed(b"\n" + encode_frame(1, "OK")) == [Frame(1, "OK")]


def test_reader_bad_frame_event() -> None:
    events = FrameReader().feed(b"$1 OK*DEADBEEF\n")
    assert len(events) == 1 and isinstance(events[0], BadFrame) and "CRC" in events[0].reason


# ---- messages -----------------------------------------------------------------------------


def test_hello_message() -> None:
    hello = parse_message(Frame(0, "HELLO", HELLO_PAYLOAD + " future=1"))
    assert isinstance(hello, Hello)
    assert hello.model == 0x1A2B3C4D and hello.model_hex == "1A2B3C4D"
    assert hello.clock == 168_000_000 and hello.unit == "systick" and hello.arena == 98304
    assert hello.extra == {"future": "1"}
    # Firmware older than `need=` (the arena inputs up to maxlen take): nothing to warn of.
    assert hello.need is None and hello.arena_warning is None and "need" not in hello.as_dict()


def test_hello_says_when_the_arena_cannot_take_every_length() -> None:
    """`need` > `arena`: the banner's `WARN arena` fact, from a frame the host can always ask
    for, worded for the user (which sentences fail, and what would fix it)."""
    fits = parse_message(Frame(0, "HELLO", HELLO_PAYLOAD + " need=98304"))
    assert isinstance(fits, Hello) and fits.need == 98304 and fits.arena_warning is None
    assert fits.as_dict()["need"] == 98304 and fits.extra == {}
    short = parse_message(Frame(0, "HELLO", HELLO_PAYLOAD + " need=98305"))
    assert isinstance(short, Hello)
    assert short.arena_warning == (
        "the board's arena is 98,304 B but inputs up to maxlen 256 tokens need up to 98,305 B: "
        "some sentences will get NO_MEMORY (firmware built with a larger ARENA=<bytes>, or a "
        "model with a smaller maxlen or width, takes every length)")
    no_model = parse_message(Frame(0, "HELLO", HELLO_PAYLOAD.replace("1A2B3C4D", "00000000")
                                   + " need=0"))
    assert isinstance(no_model, Hello) and no_model.arena_warning is None
    with pytest.raises(FrameError):
        parse_message(Frame(0, "HELLO", HELLO_PAYLOAD + " need=lots"))


def test_result_error_stats_messages() -> None:
    res = parse_message(Frame(4, "RESULT", "label=1 logits=-5,7,0 tokens=3 cycles=99 "
                                           "layers=1,2,3 stack=512 arena=4096 ids=2,10,11"))
    assert isinstance(res, Result)
    assert res.logits == [-5, 7, 0] and res.ids == [2, 10, 11] and res.layers == [1, 2, 3]
    err = parse_message(Frame(5, "ERROR", "code=BAD_UTF8 reason=invalid%20UTF-8"))
    assert err == ErrorFrame(5, "BAD_UTF8", "invalid UTF-8")
    st = parse_message(Frame(6, "STATS", "requests=3 errors=1 uptime=12345"))
    assert st == Stats(6, 3, 1, 12345)
    with pytest.raises(FrameError):
        parse_message(Frame(7, "RESULT", "label=1"))


# ---- Device over a scripted link ------------------------------------------------------------


class ScriptLink:
    """A fake device: `respond(frame)` returns the bytes the device sends back."""

    def __init__(self, respond: Callable[[Frame], bytes], boot: bytes = b"") -> None:
        self.respond = respond
        self.out = bytearray(boot)
        self.sent: list[Frame] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        frame = decode_frame(data)
        self.sent.append(frame)
        self.out += self.respond(frame)

    def read(self, timeout: float) -> bytes:
        if self.closed:
            raise LinkClosed("gone")
        data = bytes(self.out)
        self.out.clear()
        return data

    def close(self) -> None:
        self.closed = True


def _result(seq: int) -> bytes:
    return encode_frame(seq, "RESULT", "label=0 logits=1,0 tokens=2 cycles=5 layers=1,2 "
                                       "stack=8 arena=16 ids=2,7")


def test_device_wait_hello_and_classify() -> None:
    log: list[tuple[str, str]] = []
    boot = b"embbert-hil fw 0.1.0\n" + encode_frame(0, "HELLO", HELLO_PAYLOAD)
    link = ScriptLink(lambda f: _result(f.seq), boot)
    dev = Device(link, log=lambda d, line: log.append((d, line)))
    assert dev.wait_hello(1).board == "netduinoplus2"
    res = dev.classify("héllo wörld")
    assert res.ids == [2, 7]
    assert link.sent[-1].payload == "h%C3%A9llo w%C3%B6rld"
    assert ("<", "embbert-hil fw 0.1.0") in log and any(d == ">" for d, _ in log)
    assert dev.last_exchange[0] == len(encode_frame(link.sent[-1].seq, "CLASSIFY",
                                                    link.sent[-1].payload))


def test_device_ignores_stale_and_retries_bad_frame() -> None:
    calls: list[int] = []

    def respond(f: Frame) -> bytes:
        calls.append(f.seq)
        if len(calls) == 1:  # the request got damaged on the way
            return encode_frame(f.seq, "ERROR", "code=BAD_FRAME reason=crc%20mismatch")
        return _result(f.seq - 1) + b"noise\n" + _result(f.seq)  # a stale answer first

    dev = Device(ScriptLink(respond), timeout=0.5)
    res = dev.classify_ids([2, 7])
    assert res.seq == calls[-1] and len(calls) == 2 and calls[0] != calls[1]


def test_device_retries_a_damaged_answer() -> None:
    calls: list[int] = []

    def respond(f: Frame) -> bytes:
        calls.append(f.seq)
        answer = _result(f.seq)
        if len(calls) == 1:  # one bit flipped on the way back: the CRC catches it
            answer = answer[:10] + bytes([answer[10] ^ 1]) + answer[11:]
        return answer

    res = Device(ScriptLink(respond), timeout=5).classify("x")
    assert len(calls) == 2 and res.seq == calls[1]


def test_device_retries_after_silence_then_times_out_with_context() -> None:
    link = ScriptLink(lambda f: b"partial answer without newline")
    dev = Device(link, timeout=0.2, retries=2, log_path="/tmp/run/log.txt")
    with pytest.raises(DeviceTimeout) as err:
        dev.stats()
    msg = str(err.value)
    assert len(link.sent) == 3
    assert "STATS seq=3 (attempt 3/3)" in msg and "0.2 s" in msg
    assert "partial answer" in msg and "/tmp/run/log.txt" in msg


def test_device_error_and_bad_frame_exhausted() -> None:
    dev = Device(ScriptLink(lambda f: encode_frame(f.seq, "ERROR",
                                                   "code=TOO_LONG reason=text%20over%20maxtext")))
    with pytest.raises(DeviceError) as err:
        dev.classify("x")
    assert (err.value.code, err.value.reason) == ("TOO_LONG", "text over maxtext")
    dev = Device(ScriptLink(lambda f: encode_frame(f.seq, "ERROR", "code=BAD_FRAME reason=x")),
                 retries=1)
    with pytest.raises(DeviceError, match="BAD_FRAME"):
        dev.classify("x")


def test_device_fault_line_ends_wait_at_once() -> None:
    dev = Device(ScriptLink(lambda f: b"\nFAULT HardFault pc=0x0800 lr=0x1 cfsr=0x0\n"),
                 timeout=30)
    with pytest.raises(DeviceFault, match="FAULT HardFault"):
        dev.classify("x")


def test_device_link_closed_propagates() -> None:
    link = ScriptLink(lambda f: b"")
    link.closed = True
    with pytest.raises(LinkClosed):
        Device(link).hello(timeout=1)


def test_device_reset_waits_for_fresh_hello() -> None:
    def respond(f: Frame) -> bytes:
        return encode_frame(f.seq, "OK") + b"boot\n" + encode_frame(0, "HELLO", HELLO_PAYLOAD)

    assert Device(ScriptLink(respond)).reset(2).seq == 0


def test_seq_wraps_and_skips_zero() -> None:
    dev = Device(ScriptLink(lambda f: encode_frame(f.seq, "STATS",
                                                   "requests=1 errors=0 uptime=1")))
    dev._seq = MAX_SEQ - 1
    assert [dev.stats().seq for _ in range(3)] == [MAX_SEQ, 1, 2]
