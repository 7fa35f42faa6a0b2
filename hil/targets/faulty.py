"""A fault-injecting wrapper around any target: lost, damaged and never-delivered requests.

Real links lose and damage bytes (noise on a UART, a USB hiccup, an emulator under load), and the
host's retry, resync and reboot paths only count if they are exercised on real firmware. This
wraps a real target's Link and, by request number (1-based, counting host writes that carry a
frame), drops a request, flips one byte in it, or swallows everything from some request on (a
device that stopped listening). Reads pass through untouched, so every answer that does come is
the firmware's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.targets.base import StreamLink, Target


@dataclass
class Faults:
    drop: set[int] = field(default_factory=set)  # requests never delivered
    corrupt: set[int] = field(default_factory=set)  # requests with one byte flipped (CRC fails)
    deaf_from: int | None = None  # from this request on, nothing is delivered


class FaultyLink:
    """hil.protocol.Link that applies `Faults` to the host's writes."""

    def __init__(self, inner: StreamLink, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults
        self.requests = 0

    def write(self, data: bytes) -> None:
        if data.startswith(b"$"):
            self.requests += 1
        n = self.requests
        f = self.faults
        if n in f.drop or (f.deaf_from is not None and n >= f.deaf_from):
            self.inner.transcript.note(f"fault: request {n} dropped")
            return
        if n in f.corrupt and len(data) > 4:
            self.inner.transcript.note(f"fault: request {n} corrupted")
            data = data[:3] + bytes([data[3] ^ 0x01]) + data[4:]
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        return self.inner.read(timeout)

    def close(self) -> None:
        self.inner.close()

    def tail(self) -> bytes:
        return self.inner.tail()

    @property
    def log_path(self) -> Path:
        return self.inner.log_path


class FaultyTarget(Target):
    """Any target, with `Faults` applied to its link (a fresh count on every start)."""

    def __init__(self, inner: Target, faults: Faults) -> None:
        super().__init__(inner.board, inner.run_dir, inner.name)
        self.inner = inner
        self.faults = faults
        self.kind = inner.kind
        self.emulated = inner.emulated

    @property
    def log_path(self) -> Path:
        return self.inner.log_path

    def start(self) -> Any:
        return FaultyLink(self.inner.start(), self.faults)

    def stop(self) -> None:
        self.inner.stop()

    def alive(self) -> bool:
        return self.inner.alive()

    def info(self) -> dict[str, Any]:
        return {**self.inner.info(), "faults": repr(self.faults)}
