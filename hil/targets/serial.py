"""The `serial` target: a real board on a USB serial port (pyserial).

The board is flashed and powered by the user; this target only opens its virtual COM port. A port
given with --port is used as is; otherwise the ports are matched against the board's debug-probe
USB ids (and an optional serial number), and the error lists every port found, so a user with
two boards or an unknown adapter knows what to pass. The port is opened exclusively: a second
user (picocom, another run) gets a clear "busy" error instead of interleaved bytes.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from hil.boards import Board
from hil.targets.base import StreamLink, Target, TargetError, TargetOptions, Transcript

BAUD = 115200
UNIT_DWT_BOARD = "cycles (dwt, board)"


def list_ports() -> list[Any]:
    """The serial ports pyserial sees (ListPortInfo objects)."""
    from serial.tools import list_ports as lp

    return list(lp.comports())


def describe_port(p: Any) -> str:
    ids = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None else "no USB id"
    return f"{p.device} ({ids}, serial {p.serial_number or '-'}, {p.description})"


def find_port(board: Board, serial_number: str | None = None,
              ports: list[Any] | None = None) -> str:
    """The one port that matches `board`'s USB ids (and serial number), or a TargetError."""
    ports = list_ports() if ports is None else ports
    matches = [p for p in ports if p.vid is not None and (p.vid, p.pid) in board.usb_ids
               and (serial_number is None or p.serial_number == serial_number)]
    if len(matches) == 1:
        return str(matches[0].device)
    found = "; ".join(describe_port(p) for p in ports) or "no serial ports at all"
    wanted = ", ".join(f"{v:04x}:{p:04x}" for v, p in board.usb_ids) or "none known"
    if not matches:
        raise TargetError(f"serial: no port for board {board.name} (USB ids {wanted}"
                          f"{', serial ' + serial_number if serial_number else ''}). Found: "
                          f"{found}. Pass --port /dev/ttyACM0 (or the right one).")
    raise TargetError(f"serial: {len(matches)} ports match board {board.name}: "
                      f"{'; '.join(describe_port(p) for p in matches)}. Pick one with --port.")


class SerialLink(StreamLink):
    """StreamLink over a pyserial port."""

    def __init__(self, name: str, transcript: Transcript, port: Any) -> None:
        super().__init__(name, transcript)
        self.port = port

    def _recv(self, timeout: float) -> bytes | None:
        import serial

        self.port.timeout = timeout
        try:
            return bytes(self.port.read(max(1, self.port.in_waiting)))
        except serial.SerialException:  # unplugged
            return None

    def _send(self, data: bytes) -> None:
        import serial

        try:
            self.port.write(data)
            self.port.flush()
        except serial.SerialException as exc:
            raise OSError(str(exc)) from exc

    def _close_stream(self) -> None:
        self.port.close()


class SerialTarget(Target):
    """A board on a serial port. Not emulated: DWT cycles are the chip's own."""

    kind = "serial"
    emulated = False
    hello_timeout_s = 10.0
    request_timeout_s = 60.0
    builds_firmware = False  # the user flashed the board
    parallel = False  # one board, one port
    install_hint = "python3 -m pip install pyserial; plug the board in (see `hil doctor`)"
    unit = UNIT_DWT_BOARD
    latency_wording = "DWT cycles / board clock"

    def __init__(self, board: Board, run_dir: Path, *, elf: Path | None = None,
                 name: str | None = None, options: TargetOptions | None = None,
                 baud: int = BAUD) -> None:
        super().__init__(board, run_dir, elf=elf, name=name, options=options)
        # --port, else $HIL_SERIAL_PORT (what a CI runner with a board attached sets).
        self.port_name = self.options.port or os.environ.get("HIL_SERIAL_PORT")
        self.serial_number = self.options.serial_number
        self.baud = baud
        self._port: Any = None

    def start(self) -> StreamLink:
        import serial

        device = self.port_name or find_port(self.board, self.serial_number)
        try:
            self._port = serial.Serial(device, self.baud, timeout=0.05, exclusive=True)
        except serial.SerialException as exc:
            text = str(exc)
            hint = ("the port is busy: close picocom/screen or the other run using it"
                    if "busy" in text.lower() or "lock" in text.lower() else
                    "check the cable, the port name and that you are in the dialout group")
            raise TargetError(f"serial: cannot open {device}: {text} ({hint})") from exc
        self.port_name = device
        transcript = Transcript(self.log_path)
        transcript.note(f"opened {device} at {self.baud} baud")
        self.link = SerialLink(self.name, transcript, self._port)
        self.link.describe_exit = lambda: f"serial port {device} closed or unplugged"
        self.link.start()
        return self.link

    @classmethod
    def missing(cls) -> str | None:
        if importlib.util.find_spec("serial") is None:
            return f"pyserial is not installed; install: {cls.install_hint}"
        return None

    def board_missing(self) -> str | None:
        """Why no board can be opened here (no port given and none matches), or None."""
        if self.port_name:
            return None
        try:
            find_port(self.board, self.serial_number)
        except TargetError as exc:
            return f"{exc} (or set HIL_SERIAL_PORT)"
        return None

    def alive(self) -> bool:
        return self._port is not None and self._port.is_open

    def stop(self) -> None:
        if self.link is not None:
            self.link.transcript.note("closed")
            self.link.close()
        elif self._port is not None:
            self._port.close()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "port": self.port_name, "baud": self.baud}
