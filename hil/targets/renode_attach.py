"""Attaching hil to a Renode that someone else started: renode-test, or a user's own Renode.

Why: inside a `renode-test` run Renode already runs (renode-test starts it for `Execute Command`,
`Create Terminal Tester` and the other keywords of renode-keywords.robot), and the machine is
the one the suite created. hil must not start a second Renode; it talks to that machine's UART
where that Renode exposes it, given as the renode target's `port` (`Attach Board` in hil.robot,
`hil run --target renode --port ...`):

- `HOST:PORT` (or `PORT`, on 127.0.0.1): a server socket terminal,
  `emulation CreateServerSocketTerminal PORT "NAME" false` then `connector Connect UART NAME`.
  The one to use under renode-test. Checked on Renode 1.15.1: `Reset Emulation` disposes of it
  cleanly, even with hil still connected; the bytes the UART sent before hil connected (the
  banner and the boot HELLO) are delivered on connect; `false` means no telnet negotiation bytes.
- a path: a pty terminal, `emulation CreateUartPtyTerminal "NAME" "PATH" true`. Fine for a
  Renode you drive yourself, not under renode-test: a pty terminal disposed of by
  `Reset Emulation` dies with EIO and takes Renode 1.15.1 down.

A board that booted long before hil attached has no boot HELLO left to send, so `attach` asks
for one itself (seq NUDGE_SEQ, which hil.protocol.Device takes as any HELLO while it waits for
the boot HELLO, and ignores as stale afterwards): the session then starts at once either way.

A Renode terminal is one more listener on the UART: Renode's terminal tester sees the same bytes
(hil's requests' answers included), and `Write Line To Uart` writes into the same receiver.
"""

from __future__ import annotations

import os
import socket
import time
import tty
from pathlib import Path

from hil.protocol import MAX_SEQ, encode_frame
from hil.targets.base import FdLink, StreamLink, TargetError, Transcript
from hil.targets.qemu import SocketLink

CONNECT_TIMEOUT_S = 30.0  # the terminal exists once `emulation Create...Terminal` returned
NUDGE_SEQ = MAX_SEQ  # the HELLO request sent on attach: the last seq Device itself reaches


def parse_address(text: str) -> tuple[str, int] | Path:
    """`HOST:PORT` or `PORT` -> (host, port); anything else is a pty path."""
    host, _, port = text.strip().rpartition(":")
    if port.isdigit() and "/" not in text:
        return (host or "127.0.0.1", int(port))
    return Path(text)


def socket_commands(port: int | str, uart: str, name: str = "hil") -> list[str]:
    """The monitor commands that expose `uart` for `attach` on `port`, for messages and docs."""
    return [f'emulation CreateServerSocketTerminal {port} "{name}" false',
            f"connector Connect {uart} {name}"]


def attach(address: str, name: str, transcript: Transcript, uart: str = "<uart>",
           timeout: float = CONNECT_TIMEOUT_S) -> StreamLink:
    """A started link to the UART Renode exposes at `address` (see the module docstring); a
    TargetError naming the monitor commands when nothing is there within `timeout` s."""
    where = parse_address(address)
    if isinstance(where, Path):
        if not where.exists():
            raise TargetError(f"renode: no pty at {where}: expected a Renode pty terminal "
                              f"(emulation CreateUartPtyTerminal \"term\" \"{where}\" true; "
                              f"connector Connect {uart} term)")
        fd = os.open(where, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        link: StreamLink = FdLink(name, transcript, fd)
    else:
        link = SocketLink(name, transcript, _connect(where, uart, timeout))
    transcript.note(f"attached to the UART of a running Renode at {address}")
    link.describe_exit = lambda: f"the Renode terminal at {address} closed (emulation reset?)"
    link.start()
    link.write(encode_frame(NUDGE_SEQ, "HELLO"))
    return link


def _connect(where: tuple[str, int], uart: str, timeout: float) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection(where, timeout=5.0)
        except OSError as exc:
            if time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            commands = "; ".join(socket_commands(where[1], uart))
            raise TargetError(f"renode: nothing listens on {where[0]}:{where[1]} ({exc}) after "
                              f"{timeout:g} s: expected a Renode server socket terminal there, "
                              f"made with the monitor commands `{commands}`") from None
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
