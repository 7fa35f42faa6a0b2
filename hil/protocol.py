"""The host end of the wire protocol (docs/protocol.md): frames, typed messages, and `Device`.

Why this shape: the device side (firmware/src/proto.c) is a byte-at-a-time state machine that
must survive any input; the host side mirrors its rules (same CRC, same escapes, same limits,
constants checked against firmware/include/ebq_proto.h by a test) and adds what only a host can
do: timeouts, retries, matching answers to requests by sequence number, and error messages that
show what arrived. Pure Python and the standard library only (no numpy, no torch), so it runs
anywhere a serial port does.

Layers, bottom-up: `crc32` / `percent_encode` / `encode_frame` / `decode_frame` (one line),
`FrameReader` (a byte stream -> frames and plain text lines), messages (`Hello`, `Result`, ...)
and `Device` (requests over a `Link`).

Why one module over 500 lines: those layers are one contract with the C side, read together
when either side changes; split, a reader would hop between files to check one rule.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

PROTO_VERSION = 1
MAX_TEXT = 2048  # longest CLASSIFY text in bytes, announced in HELLO as maxtext
# Longest frame the device accepts ($ .. \n), announced in HELLO as maxframe: 3 x MAX_TEXT plus
# the header, because escaping can triple a text (`$`, non-ASCII), and the limit is the text's.
MAX_FRAME = 6176
MAX_SEQ = 65535
# Longest line the host accepts from a device: RESULT frames carry logits and ids, so they may
# be longer than what the device accepts (e.g. 150 labels x 11 chars + 256 ids x 6 chars).
MAX_LINE = 65536
MSG_TYPES = ("HELLO", "CLASSIFY", "IDS", "STATS", "RESET", "RESULT", "ERROR", "OK")
ERROR_CODES = ("TOO_LONG", "BAD_UTF8", "BAD_FRAME", "BAD_IDS", "EMPTY", "NO_MEMORY", "MODEL",
               "INTERNAL")
TAIL_BYTES = 600

_TYPE_RE = re.compile(rb"[A-Z_]+")
_HEX8_RE = re.compile(rb"[0-9A-F]{8}")


# ---- one frame ---------------------------------------------------------------------------------


def crc32(data: bytes) -> int:
    """CRC-32 of a frame body (IEEE 802.3, as the device's ebq_proto_crc32)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def _raw_ok(byte: int, space: bool) -> bool:
    return 0x20 <= byte <= 0x7E and byte not in b"$*%" and (space or byte != 0x20)


def percent_encode(data: bytes | str, *, space: bool = True) -> str:
    """Escape every byte that may not appear raw in a body as %XX.

    space=True keeps spaces literal (the CLASSIFY text payload); space=False escapes them too,
    for values inside key=value payloads, where a space separates pairs.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    return "".join(chr(b) if _raw_ok(b, space) else f"%{b:02X}" for b in data)


def percent_decode(text: str | bytes) -> bytes:
    """Inverse of percent_encode; raises FrameError on a malformed escape or a raw bad byte."""
    raw = text.encode("ascii", "surrogateescape") if isinstance(text, str) else bytes(text)
    out = bytearray()
    i = 0
    while i < len(raw):
        b = raw[i]
        if b == 0x25:  # %
            esc = raw[i + 1 : i + 3]
            if len(esc) != 2 or not all(c in b"0123456789ABCDEFabcdef" for c in esc):
                raise FrameError(f"bad percent escape at byte {i}: {raw[i:i + 3]!r}")
            out.append(int(esc, 16))
            i += 3
            continue
        if not (0x20 <= b <= 0x7E) or b in b"$*":
            raise FrameError(f"raw byte 0x{b:02X} at {i} may not appear in a frame body")
        out.append(b)
        i += 1
    return bytes(out)


class FrameError(ValueError):
    """A line that is not a valid frame (syntax, CRC, seq, type)."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame; payload is the raw (still percent-encoded) text after the type."""

    seq: int
    type: str
    payload: str = ""

    def fields(self) -> dict[str, str]:
        """The key=value pairs of the payload (values still percent-encoded where text)."""
        return parse_fields(self.payload)

    def encode(self) -> bytes:
        return encode_frame(self.seq, self.type, self.payload)


def encode_frame(seq: int, type_: str, payload: str | bytes = "") -> bytes:
    """`$<seq> <TYPE>[ <payload>]*<CRC>\\n`. The payload must already be escaped."""
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"seq {seq} outside 0..{MAX_SEQ}")
    if not _TYPE_RE.fullmatch(type_.encode("ascii")):
        raise ValueError(f"type {type_!r} is not [A-Z_]+")
    pay = payload.encode("ascii") if isinstance(payload, str) else bytes(payload)
    body = f"{seq} {type_}".encode("ascii") + (b" " + pay if pay else b"")
    return b"$" + body + b"*" + f"{crc32(body):08X}".encode("ascii") + b"\n"


def decode_frame(line: bytes) -> Frame:
    """Decode one frame line (with or without the leading `$` and the trailing `\\r\\n`)."""
    if line.startswith(b"$"):
        line = line[1:]
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    if len(line) < 9 or line[-9:-8] != b"*":
        raise FrameError("no *CRC at the end")
    body, crc_text = line[:-9], line[-8:]
    if not _HEX8_RE.fullmatch(crc_text):
        raise FrameError(f"CRC {crc_text!r} is not 8 upper-case hex digits")
    if int(crc_text, 16) != crc32(body):
        raise FrameError(f"CRC mismatch: frame says {crc_text.decode()}, body has "
                         f"{crc32(body):08X}")
    if any(not (0x20 <= b <= 0x7E) or b in b"$*" for b in body):
        raise FrameError("raw byte in body")
    m = re.fullmatch(rb"(\d{1,5}) ([A-Z_]+)(?: (.*))?", body, re.S)
    if m is None:
        raise FrameError(f"body {body[:40]!r} is not `<seq> <TYPE>[ <payload>]`")
    seq = int(m.group(1))
    if seq > MAX_SEQ:
        raise FrameError(f"seq {seq} over {MAX_SEQ}")
    type_ = m.group(2).decode("ascii")
    if type_ not in MSG_TYPES:
        raise FrameError(f"unknown type {type_}")
    return Frame(seq, type_, (m.group(3) or b"").decode("ascii"))


def parse_fields(payload: str) -> dict[str, str]:
    """`k=v k=v` -> dict; raises FrameError on a pair without `=`."""
    out: dict[str, str] = {}
    for pair in payload.split(" ") if payload else []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise FrameError(f"payload pair {pair!r} is not key=value")
        out[key] = value
    return out


def _int_list(value: str) -> list[int]:
    return [int(v) for v in value.split(",")] if value else []


# ---- a byte stream ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextLine:
    """A plain line that is not a frame: boot banner, FAULT dump, debug print, noise."""

    text: str


@dataclass(frozen=True)
class BadFrame:
    """Something that started like a frame but is not one; `raw` is what arrived."""

    raw: bytes
    reason: str


Event = Frame | TextLine | BadFrame


class FrameReader:
    """Splits a byte stream into frames and plain text lines, resynchronising after noise.

    Rules as the device's parser: a frame starts at `$` and ends at `\\n`; a `$` inside a line
    starts the frame again (what came before is reported as a text line, it is noise or a
    banner); a line longer than max_line is dropped up to the next `\\n` and reported as a
    BadFrame, so memory stays bounded whatever arrives.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[Event]:
        """Consume bytes; return the events they complete (partial lines are kept)."""
        events: list[Event] = []
        start = 0
        while start < len(data):
            nl = data.find(b"\n", start)
            chunk = data[start:] if nl < 0 else data[start : nl + 1]
            start += len(chunk)
            if self._discarding:
                if nl >= 0:
                    self._discarding = False
                continue
            self._buf += chunk
            if nl < 0:
                if len(self._buf) > self.max_line:
                    events.append(BadFrame(bytes(self._buf[:80]),
                                           f"line over {self.max_line} bytes dropped"))
                    self._buf.clear()
                    self._discarding = True
                continue
            line = bytes(self._buf)
            self._buf.clear()
            if len(line) > self.max_line:
                events.append(BadFrame(line[:80], f"line over {self.max_line} bytes dropped"))
                continue
            events.extend(self._line(line))
        return events

    @staticmethod
    def _line(line: bytes) -> list[Event]:
        dollar = line.rfind(b"$")
        if dollar < 0:
            text = line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
            return [TextLine(text)] if text else []
        out: list[Event] = []
        prefix = line[:dollar].strip(b"\r\n")
        if prefix.strip():
            out.append(TextLine(prefix.decode("utf-8", "backslashreplace")))
        try:
            out.append(decode_frame(line[dollar:]))
        except FrameError as exc:
            out.append(BadFrame(line[dollar:], str(exc)))
        return out


# ---- typed messages -----------------------------------------------------------------------------


def _req(f: dict[str, str], key: str, frame: Frame) -> str:
    if key not in f:
        raise FrameError(f"{frame.type} frame without {key}=: {frame.payload[:80]!r}")
    return f[key]


@dataclass(frozen=True)
class Hello:
    """What the device says at boot and on HELLO: who it is and its limits."""

    seq: int
    proto: int
    fw: str
    board: str
    model: int  # crc32 of the model blob; 0 = no model (rejected at boot)
    labels: int
    maxlen: int
    maxtext: int
    maxframe: int
    clock: int
    unit: str  # dwt | systick | ns
    flash: int
    ram: int
    arena: int
    need: int | None = None  # arena any input up to maxlen takes; None from older firmware
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def model_hex(self) -> str:
        return f"{self.model:08X}"

    @property
    def arena_warning(self) -> str | None:
        """What the boot banner's `WARN arena` line says, from HELLO so that it is known even
        when the banner was missed: the board's arena cannot take every input length, so some
        sentences will get NO_MEMORY (not a failure of the link, the firmware or the model)."""
        if not self.need or self.need <= self.arena:
            return None
        return (f"the board's arena is {self.arena:,} B but inputs up to maxlen {self.maxlen} "
                f"tokens need up to {self.need:,} B: some sentences will get NO_MEMORY "
                f"(firmware built with a larger ARENA=<bytes>, or a model with a smaller "
                f"maxlen or width, takes every length)")

    def as_dict(self) -> dict[str, Any]:
        """The fields as summary.json and Robot's `Start Board` give them (model in hex, the
        extra fields a board adds included)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in (
            "proto", "fw", "board", "labels", "maxlen", "maxtext", "maxframe", "clock", "unit",
            "flash", "ram", "arena", "need")}
        out["model"] = self.model_hex
        out.update(self.extra)
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_frame(cls, frame: Frame) -> Hello:
        f = frame.fields()
        ints = ("proto", "labels", "maxlen", "maxtext", "maxframe", "clock", "flash", "ram",
                "arena")
        known = {*ints, "fw", "board", "model", "unit", "need"}
        return cls(
            seq=frame.seq, fw=_req(f, "fw", frame), board=_req(f, "board", frame),
            model=int(_req(f, "model", frame), 16), unit=_req(f, "unit", frame),
            need=int(f["need"]) if "need" in f else None,
            extra={k: v for k, v in f.items() if k not in known},
            **{k: int(_req(f, k, frame)) for k in ints},
        )


@dataclass(frozen=True)
class Result:
    """One inference: the answer and what it cost (cycles in Hello.unit)."""

    seq: int
    label: int
    logits: list[int]
    tokens: int
    cycles: int
    layers: list[int]  # per stage: embedding, each layer, classifier
    stack: int  # peak stack bytes during the request
    arena: int  # peak arena bytes
    ids: list[int] | None = None  # token ids the device used (CLASSIFY only)
    tokcycles: int | None = None  # tokenizer cycles (CLASSIFY only)
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame: Frame) -> Result:
        f = frame.fields()
        known = {"label", "logits", "tokens", "cycles", "layers", "stack", "arena", "ids",
                 "tokcycles"}
        return cls(
            seq=frame.seq, label=int(_req(f, "label", frame)),
            logits=_int_list(_req(f, "logits", frame)), tokens=int(_req(f, "tokens", frame)),
            cycles=int(_req(f, "cycles", frame)), layers=_int_list(f.get("layers", "")),
            stack=int(f.get("stack", "0")), arena=int(f.get("arena", "0")),
            ids=_int_list(f["ids"]) if "ids" in f else None,
            tokcycles=int(f["tokcycles"]) if "tokcycles" in f else None,
            extra={k: v for k, v in f.items() if k not in known},
        )


@dataclass(frozen=True)
class ErrorFrame:
    """`ERROR code=<CODE> reason=<text>`: the device refused a request (or a frame)."""

    seq: int
    code: str
    reason: str

    @classmethod
    def from_frame(cls, frame: Frame) -> ErrorFrame:
        f = frame.fields()
        reason = percent_decode(f.get("reason", "")).decode("utf-8", "backslashreplace")
        return cls(frame.seq, _req(f, "code", frame), reason)


@dataclass(frozen=True)
class Stats:
    """Counters since boot; uptime in Hello.unit."""

    seq: int
    requests: int
    errors: int
    uptime: int
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame: Frame) -> Stats:
        f = frame.fields()
        known = {"requests", "errors", "uptime"}
        return cls(frame.seq, int(_req(f, "requests", frame)), int(_req(f, "errors", frame)),
                   int(_req(f, "uptime", frame)),
                   {k: v for k, v in f.items() if k not in known})


@dataclass(frozen=True)
class Ok:
    """`OK`: the device accepted a RESET and is about to reboot."""

    seq: int


Message = Hello | Result | ErrorFrame | Stats | Ok | Frame


def parse_message(frame: Frame) -> Message:
    """A device frame as its typed message (host-to-device types come back as the Frame)."""
    parsers: dict[str, Callable[[Frame], Message]] = {
        "HELLO": Hello.from_frame, "RESULT": Result.from_frame, "ERROR": ErrorFrame.from_frame,
        "STATS": Stats.from_frame, "OK": lambda fr: Ok(fr.seq),
    }
    parse = parsers.get(frame.type)
    if parse is None:
        return frame
    try:
        return parse(frame)
    except ValueError as exc:
        raise FrameError(f"{frame.type}: {exc}") from exc


def classify_payload(text: str | bytes) -> str:
    """CLASSIFY payload: the UTF-8 text percent-encoded, spaces literal (str or raw bytes)."""
    return percent_encode(text, space=True)


def ids_payload(ids: Iterable[int]) -> str:
    return "ids=" + ",".join(str(int(i)) for i in ids)


# ---- the device ----------------------------------------------------------------------------


class LinkClosed(Exception):
    """The other end of the link is gone (process exited, emulator died, port unplugged)."""


class Link(Protocol):
    """A byte stream to a device; hil/targets implement it (pty, TCP, serial port)."""

    def write(self, data: bytes) -> None:
        """Send all bytes (may block briefly)."""

    def read(self, timeout: float) -> bytes:
        """Bytes that arrived, waiting up to timeout s; b"" on timeout; LinkClosed when gone."""

    def close(self) -> None:
        """Release the link; idempotent."""


class DeviceError(Exception):
    """The device answered ERROR: `code` (ERROR_CODES), `reason`, the request's `seq`."""

    def __init__(self, code: str, reason: str, seq: int) -> None:
        self.code = code
        self.reason = reason
        self.seq = seq
        super().__init__(f"device error {code} (seq {seq}): {reason}")


class DeviceTimeout(Exception):
    """No (valid) answer in time; the message names the step, the timeout, what came, the log."""

    def __init__(self, step: str, timeout: float, tail: bytes, log_path: str | None = None,
                 detail: str = "") -> None:
        self.step = step
        self.timeout = timeout
        self.tail = tail
        self.log_path = log_path
        msg = f"{step}: {self._headline(timeout)}"
        if detail:
            msg += f" ({detail})"
        msg += (f"\n  last bytes received ({len(tail)}): {tail!r}" if tail
                else "\n  no bytes were received")
        if log_path:
            msg += f"\n  full log: {log_path}"
        super().__init__(msg)


    @staticmethod
    def _headline(timeout: float) -> str:
        return f"no answer within {timeout:g} s"


class DeviceFault(DeviceTimeout):
    """The device printed `FAULT ...` and stopped: no answer will come (a reboot is needed).

    A subclass of DeviceTimeout so that callers that reboot a silent device do the same here,
    without waiting out the timeout first.
    """

    @staticmethod
    def _headline(timeout: float) -> str:
        return "the device faulted, no answer will come"


LogFn = Callable[[str, str], None]


class Device:
    """Request/response over a Link, as docs/protocol.md's host rules say.

    One request at a time; each attempt gets a fresh sequence number, so a late answer to an
    earlier attempt is recognised as stale and ignored. A request whose answer does not come in
    `timeout` s, comes as ERROR code=BAD_FRAME (the request was damaged on the way) or comes
    damaged itself (bad CRC), is sent again up to `retries` times. `log(direction, line)` sees
    every line: ">" sent frames, "<" received frames and plain lines, "!" damaged frames.
    """

    def __init__(self, link: Link, *, timeout: float = 30.0, retries: int = 2,
                 log: LogFn | None = None, log_path: str | Path | None = None,
                 max_line: int = MAX_LINE) -> None:
        self.link = link
        self.timeout = timeout
        self.retries = retries
        self.log = log
        lp = log_path if log_path is not None else getattr(link, "log_path", None)
        self.log_path = str(lp) if lp is not None else None
        self.reader = FrameReader(max_line)
        self.info: Hello | None = None  # the last HELLO seen
        self.lines: list[str] = []  # plain text lines seen (banner, faults), most recent last
        self.bytes_sent = 0
        self.bytes_received = 0
        self.last_exchange: tuple[int, int] = (0, 0)  # bytes (sent, received) by the last request
        self._seq = 0
        self._tail = bytearray()
        self._pending: list[Event] = []

    # -- public API --

    def wait_hello(self, timeout: float) -> Hello:
        """Wait for the device's unsolicited boot HELLO (or any HELLO) and return it."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self._next_event(deadline, "waiting for the boot HELLO", timeout)
            if isinstance(ev, Frame) and ev.type == "HELLO":
                self.info = Hello.from_frame(ev)
                return self.info

    def hello(self, timeout: float | None = None) -> Hello:
        """Ask the device who it is."""
        msg = self._request("HELLO", "", timeout)
        assert isinstance(msg, Hello)
        self.info = msg
        return msg

    def classify(self, text: str | bytes, timeout: float | None = None) -> Result:
        """Classify a text (str as UTF-8, or raw bytes to test the device's UTF-8 checks)."""
        msg = self._request("CLASSIFY", classify_payload(text), timeout)
        assert isinstance(msg, Result)
        return msg

    def classify_ids(self, ids: Sequence[int], timeout: float | None = None) -> Result:
        """Run the model on token ids (the host adds [CLS] itself)."""
        msg = self._request("IDS", ids_payload(ids), timeout)
        assert isinstance(msg, Result)
        return msg

    def stats(self, timeout: float | None = None) -> Stats:
        msg = self._request("STATS", "", timeout)
        assert isinstance(msg, Stats)
        return msg

    def reset(self, timeout: float = 30.0) -> Hello:
        """RESET, wait for OK, then for the fresh boot HELLO."""
        deadline = time.monotonic() + timeout
        self._request("RESET", "", timeout)
        return self.wait_hello(max(0.1, deadline - time.monotonic()))

    def drain(self, quiet: float = 0.2, limit: float = 30.0) -> int:
        """Read and log (and otherwise drop) everything until the line is quiet for `quiet` s.

        For after a deliberate flood of noise: the device answers every `$` it saw, and those
        seq-0 BAD_FRAME answers would otherwise look like a damaged next request. Returns the
        number of events dropped.
        """
        dropped = len(self._pending)
        for ev in self._pending:
            self._note(ev)
        self._pending.clear()
        end = time.monotonic() + limit
        while time.monotonic() < end:
            data = self.link.read(quiet)
            if not data:
                break
            for ev in self._feed(data):
                self._note(ev)
                dropped += 1
        return dropped

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests: noise, cut frames, bad CRCs)."""
        self._write(data)

    def next_event(self, timeout: float) -> Event:
        """The next thing the device sent: a frame, a text line or a damaged frame, logged as
        every event is. For tests that watch the raw stream (hil.session's `expect`); raises
        DeviceTimeout when nothing comes within `timeout` s."""
        return self._next_event(time.monotonic() + timeout, "", timeout)

    def next_frame(self, timeout: float) -> Frame:
        """The next frame whatever its seq (tests of raw exchanges)."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self._next_event(deadline, "waiting for a frame", timeout)
            if isinstance(ev, Frame):
                return ev

    def close(self) -> None:
        self.link.close()

    # -- internals --

    def _next_seq(self) -> int:
        self._seq = self._seq % MAX_SEQ + 1  # 1..65535; 0 is the device's unsolicited seq
        return self._seq

    def _write(self, data: bytes) -> None:
        self.link.write(data)
        self.bytes_sent += len(data)

    def _request(self, type_: str, payload: str, timeout: float | None) -> Message:
        wait = self.timeout if timeout is None else timeout
        step = type_
        detail = ""
        damaged: ErrorFrame | None = None
        sent0, recv0 = self.bytes_sent, self.bytes_received
        for attempt in range(self.retries + 1):
            seq = self._next_seq()
            frame = encode_frame(seq, type_, payload)
            step = f"{type_} seq={seq} (attempt {attempt + 1}/{self.retries + 1})"
            self._log(">", frame.decode("ascii").rstrip("\n"))
            self._write(frame)
            deadline = time.monotonic() + wait
            try:
                msg = self._await(seq, deadline, step, wait)
            except _Retry as exc:
                detail = str(exc)
                damaged = exc.error
                continue
            except DeviceTimeout as exc:
                if isinstance(exc, DeviceFault):
                    raise
                detail = "timed out"
                damaged = None
                continue
            self.last_exchange = (self.bytes_sent - sent0, self.bytes_received - recv0)
            if isinstance(msg, ErrorFrame):
                raise DeviceError(msg.code, msg.reason, msg.seq)
            return msg
        if damaged is not None:  # every attempt was refused as damaged: that is an answer
            raise DeviceError(damaged.code, damaged.reason, damaged.seq)
        raise DeviceTimeout(step, wait, bytes(self._tail), self.log_path,
                            f"after {self.retries + 1} attempts, last: {detail}")

    def _await(self, seq: int, deadline: float, step: str, wait: float) -> Message:
        while True:
            ev = self._next_event(deadline, step, wait)
            if isinstance(ev, BadFrame):  # likely our answer, damaged on the way back
                raise _Retry(f"damaged answer: {ev.reason}")
            if not isinstance(ev, Frame):
                continue
            msg = parse_message(ev)
            if isinstance(msg, Hello) and msg.seq == 0 and seq != 0:
                self.info = msg  # the device rebooted under us: the request is lost
                raise _Retry("device rebooted (unsolicited HELLO)")
            if isinstance(msg, ErrorFrame) and msg.code == "BAD_FRAME" and msg.seq in (seq, 0):
                raise _Retry(f"device saw a damaged frame: {msg.reason}", msg)
            if ev.seq != seq:
                continue  # stale: an answer to an earlier attempt
            return msg

    def _next_event(self, deadline: float, step: str, wait: float) -> Event:
        while not self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceTimeout(step, wait, bytes(self._tail), self.log_path)
            data = self.link.read(min(remaining, 0.5))
            if data:
                self._pending.extend(self._feed(data))
        ev = self._pending.pop(0)
        self._note(ev, step, wait)
        return ev

    def _feed(self, data: bytes) -> list[Event]:
        self.bytes_received += len(data)
        self._tail += data
        del self._tail[:-TAIL_BYTES]
        return self.reader.feed(data)

    def _note(self, ev: Event, step: str = "", wait: float = 0.0) -> None:
        """Log one event; a FAULT line raises DeviceFault when a step is waiting."""
        if isinstance(ev, TextLine):
            self.lines.append(ev.text)
            del self.lines[:-100]
            self._log("<", ev.text)
            if ev.text.startswith("FAULT ") and step:
                raise DeviceFault(step, wait, bytes(self._tail), self.log_path,
                                  ev.text)
        elif isinstance(ev, Frame):
            self._log("<", ev.encode().decode("ascii").rstrip("\n"))
        else:
            self._log("!", f"{ev.reason}: {ev.raw!r}")

    def _log(self, direction: str, line: str) -> None:
        if self.log is not None:
            self.log(direction, line)


class _Retry(Exception):
    """Internal: the attempt failed in a way that a resend can fix."""

    def __init__(self, why: str, error: ErrorFrame | None = None) -> None:
        super().__init__(why)
        self.error = error
