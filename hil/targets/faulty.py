"""A fault-injecting wrapper around any target: lost, damaged, repeated and late bytes, split
writes, device resets and emulator deaths.

Real links lose and damage bytes (noise on a UART, a USB hiccup, an emulator under load), and the
host's retry, resync, reboot and restart paths only count if they are exercised on real firmware.
This wraps a real target's Link. Two kinds of faults, both deterministic:

- by request number (1-based, counting host writes that carry a frame): drop a request, flip one
  byte in it, or swallow everything from some request on (a device that stopped listening);
- by rate, from a seeded RNG (`hil run --faults SPEC`): per byte in both directions drop, corrupt
  (one bit flipped) and duplicate; per frame (line) in both directions drop and corrupt; per
  read/write a delay; per write a split into chunks written separately; per request an in-band
  reset of the device mid-sentence (half the request, then a RESET frame: the firmware answers OK
  and reboots through its own port_reset, SYSRESETREQ on a board, re-exec on native) and a hard
  kill of the target's process (as `kill -9` would).

Rate faults start after the boot handshake (issue #17): what is under test is the request/answer
stream, and a boot greeting (banner + HELLO, ~170 bytes) damaged at 1% per byte almost never
arrives whole, so every start would fail before the first sentence and a failed first boot is
fatal by design. The link is armed by the host's first request that is not a HELLO, i.e. once
the host has its HELLO; every (re)start of a target gets a clean boot again. `boot=1` arms it
from the first byte instead, to test the boot path itself.

Why per-frame rates too: a per-byte rate scales with frame length, and answers are long (a
RESULT carries every logit and token id, several hundred bytes), so 1% per byte leaves almost no
answer whole; `drop_frame=0.01` loses 1% of frames whatever their size, which is what "1% of
messages damaged" means to most users. The unit is in the key; the old keys keep their meaning.

Every fault is counted in `FaultStats` (shared by all links of one run) and noted in the target's
transcript, so a report can say how many were injected and that none cost a sentence.

Why answers stay right: a corrupted byte inside any frame fails its CRC-32 and the host re-asks;
a corruption that keeps the CRC valid needs a multi-bit error matching the CRC, which random
single-bit flips cannot produce for bodies this short (CRC-32 detects every error of up to 3 bits
in frames under 91,607 bits), and a random 32-bit match is a 2^-32 chance per damaged frame.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hil.protocol import encode_frame
from hil.targets.base import StreamLink, Target

RATE_KEYS = ("drop", "corrupt", "dup", "drop_frame", "corrupt_frame", "delay", "split", "reset",
             "kill")
_HELLO_RE = re.compile(rb"\$\d+ HELLO[ *]")  # a HELLO request: the boot handshake goes on
# spec key -> Faults attribute, where they differ (the unit is in the spec key)
_ATTR = {"drop": "byte_drop", "corrupt": "byte_corrupt", "dup": "byte_dup",
         "drop_frame": "frame_drop", "corrupt_frame": "frame_corrupt"}


@dataclass
class Faults:
    """What to inject. The sets pick request numbers; the rates are probabilities."""

    drop: set[int] = field(default_factory=set)  # requests never delivered
    corrupt: set[int] = field(default_factory=set)  # requests with one byte flipped (CRC fails)
    deaf_from: int | None = None  # from this request on, nothing is delivered
    seed: int = 0
    byte_drop: float = 0.0  # per byte, both directions
    byte_corrupt: float = 0.0  # per byte, both directions: one bit flipped
    byte_dup: float = 0.0  # per byte, both directions: sent twice
    frame_drop: float = 0.0  # per frame (line), both directions: the whole line lost
    frame_corrupt: float = 0.0  # per frame (line), both directions: one bit flipped in it
    boot: int = 0  # 1: rate faults from the first byte (the boot too), 0: after the handshake
    delay: float = 0.0  # per read/write: wait delay_s first
    delay_s: float = 0.05
    split: float = 0.0  # per write: written in 2-5 chunks with short pauses
    reset: float = 0.0  # per request: half of it, then a RESET frame (device reboots)
    kill: float = 0.0  # per request: SIGKILL the target's process (emulator death)

    def active(self) -> bool:
        return bool(self.drop or self.corrupt or self.deaf_from is not None or any(
            getattr(self, _ATTR.get(k, k)) > 0 for k in RATE_KEYS))


def parse_faults(spec: str) -> Faults:
    """`drop=0.001,corrupt=0.001,dup=0.001,delay=0.01,split=0.2,reset=0.005,kill=0,seed=1`.

    drop/corrupt/dup are per byte (both directions), drop_frame/corrupt_frame per frame (both
    directions), delay and split per read/write, reset and kill per request. `delay_s=` sets the
    delay, `boot=1` lets the faults hit the boot handshake too (default: they start after it).
    Unknown keys, rates outside 0..1 and boot other than 0/1 are errors.
    """
    f = Faults()
    names = {fl.name for fl in fields(Faults)}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        attr = _ATTR.get(key, key)
        if not sep or attr not in names or key in ("deaf_from", *_ATTR.values()):
            raise ValueError(f"--faults: {item!r} is not key=value with key in "
                             f"{', '.join((*RATE_KEYS, 'delay_s', 'seed', 'boot'))}")
        try:
            num = int(value) if key in ("seed", "boot") else float(value)
        except ValueError:
            raise ValueError(f"--faults: {key}={value!r} is not a number") from None
        if key in RATE_KEYS and not 0.0 <= num <= 1.0:
            raise ValueError(f"--faults: {key}={value} is not a probability (0..1)")
        if key == "boot" and num not in (0, 1):
            raise ValueError(f"--faults: boot={value} is not 0 or 1")
        setattr(f, attr, num)
    return f


class FaultStats:
    """Faults injected so far, by kind; thread-safe (one per run, shared by every job)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.counts.items()))


class FaultyLink:
    """hil.protocol.Link that applies `Faults` to the host's writes and the device's bytes."""

    def __init__(self, inner: StreamLink, faults: Faults, stats: FaultStats | None = None,
                 rng: random.Random | None = None, kill: Any = None) -> None:
        self.inner = inner
        self.faults = faults
        self.stats = stats or FaultStats()
        self.rng = rng or random.Random(faults.seed)
        self.kill = kill  # callable that SIGKILLs the target's process, or None
        self.requests = 0
        # Rate faults are off until the host's first non-HELLO request (the boot handshake is
        # over), unless `boot=1`; see the module docstring.
        self.armed = bool(faults.boot)
        self._line = bytearray()  # device bytes of a frame not yet complete (per-frame faults)

    def _note(self, kind: str, text: str) -> None:
        self.stats.add(kind)
        self.inner.transcript.note(f"fault: {text}")

    def _bytes(self, data: bytes, direction: str) -> bytes:
        """Per-byte drop / bit flip / duplicate, counted."""
        f, rng = self.faults, self.rng
        if not (f.byte_drop or f.byte_corrupt or f.byte_dup):
            return data
        out = bytearray()
        for b in data:
            r = rng.random()
            if r < f.byte_drop:
                self._note("drop", f"{direction} byte {bytes([b])!r} dropped")
                continue
            r -= f.byte_drop
            if r < f.byte_corrupt:
                flipped = b ^ (1 << rng.randrange(8))
                self._note("corrupt", f"{direction} byte {bytes([b])!r} -> {bytes([flipped])!r}")
                out.append(flipped)
                continue
            r -= f.byte_corrupt
            if r < f.byte_dup:
                self._note("dup", f"{direction} byte {bytes([b])!r} duplicated")
                out.append(b)
            out.append(b)
        return bytes(out)

    def _frame(self, line: bytes, direction: str) -> bytes:
        """Per-frame drop / one bit flipped, counted; `line` is one whole line, `\\n` included."""
        f, rng = self.faults, self.rng
        if not (f.frame_drop or f.frame_corrupt) or not line.startswith(b"$"):
            return line
        r = rng.random()
        if r < f.frame_drop:
            self._note("drop_frame", f"{direction} frame {line[:24]!r}... dropped")
            return b""
        if r - f.frame_drop < f.frame_corrupt:
            i, bit = rng.randrange(len(line)), rng.randrange(8)
            self._note("corrupt_frame", f"{direction} frame {line[:24]!r}... byte {i} "
                       f"bit {bit} flipped")
            return line[:i] + bytes([line[i] ^ (1 << bit)]) + line[i + 1:]
        return line

    def _read_frames(self, data: bytes) -> bytes:
        """Per-frame faults on the device's bytes: only whole lines are judged, so a partial
        frame waits here for its end (an empty read lets it through as it is, so a line the
        device never ends is not held back for ever)."""
        if not data:
            out, self._line = bytes(self._line), bytearray()
            return out
        self._line += data
        end = self._line.rfind(b"\n") + 1
        whole, self._line = bytes(self._line[:end]), self._line[end:]
        return b"".join(self._frame(ln, "<") for ln in whole.splitlines(keepends=True))

    def _maybe_delay(self, where: str) -> None:
        if self.faults.delay and self.rng.random() < self.faults.delay:
            self._note("delay", f"{where} delayed {self.faults.delay_s:g} s")
            time.sleep(self.faults.delay_s)

    def write(self, data: bytes) -> None:
        is_request = data.startswith(b"$")
        if is_request:
            self.requests += 1
            self.armed = self.armed or not _HELLO_RE.match(data)
        n = self.requests
        f, rng = self.faults, self.rng
        if n in f.drop or (f.deaf_from is not None and n >= f.deaf_from):
            self._note("request_drop", f"request {n} dropped")
            return
        if n in f.corrupt and len(data) > 4:
            self._note("request_corrupt", f"request {n} corrupted")
            data = data[:3] + bytes([data[3] ^ 0x01]) + data[4:]
        if not self.armed:
            self.inner.write(data)
            return
        if is_request and f.kill and self.kill is not None and rng.random() < f.kill:
            self._note("kill", f"request {n}: target process killed (SIGKILL)")
            self.inner.write(data[: len(data) // 2])
            self.kill()
            return
        if is_request and f.reset and rng.random() < f.reset:
            self._note("reset", f"request {n}: cut in half, device reset (RESET frame)")
            self.inner.write(data[: len(data) // 2] + encode_frame(0, "RESET"))
            return
        self._maybe_delay("write")
        data = self._bytes(self._frame(data, ">"), ">")
        if not data:
            return
        if f.split and len(data) > 1 and rng.random() < f.split:
            cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 4))))
            self._note("split", f"request {n} written in {len(cuts) + 1} pieces")
            for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
                self.inner.write(data[a:b])
                time.sleep(0.002)
            return
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        data = self.inner.read(timeout)
        if not self.armed:
            return data
        if self.faults.frame_drop or self.faults.frame_corrupt:
            data = self._read_frames(data)
        if data:
            self._maybe_delay("read")
            data = self._bytes(data, "<")
        return data

    def close(self) -> None:
        self.inner.close()

    def tail(self) -> bytes:
        return self.inner.tail()

    @property
    def log_path(self) -> Path:
        return self.inner.log_path

    @property
    def transcript(self) -> Any:
        return self.inner.transcript


class FaultyTarget(Target):
    """Any target, with `Faults` applied to its link (a fresh request count on every start; the
    RNG goes on, so a restarted target does not meet the same faults again)."""

    def __init__(self, inner: Target, faults: Faults, stats: FaultStats | None = None,
                 rng: random.Random | None = None) -> None:
        super().__init__(inner.board, inner.run_dir, elf=inner.elf, name=inner.name,
                         options=inner.options)
        self.inner = inner
        self.faults = faults
        self.stats = stats or FaultStats()
        self.rng = rng or random.Random(faults.seed)
        self.kind = inner.kind
        self.emulated = inner.emulated

    @property
    def log_path(self) -> Path:
        return self.inner.log_path

    def _kill(self) -> None:
        proc = getattr(self.inner, "proc", None)
        if proc is not None:
            proc.kill()

    def start(self) -> Any:
        return FaultyLink(self.inner.start(), self.faults, self.stats, self.rng, self._kill)

    def stop(self) -> None:
        self.inner.stop()

    def alive(self) -> bool:
        return self.inner.alive()

    def info(self) -> dict[str, Any]:
        return {**self.inner.info(), "faults": repr(self.faults)}
