"""Helpers shared by the firmware tests: build into a private dir, run natively on a pty or in
QEMU on a unix socket, and a Link that drains the stream continuously.

Why a private build dir: other runs (hil build, other tests) share firmware/build/<board>/ and
may build another model there at the same moment. Why a pump thread: a QEMU or a process whose
output is not read blocks, and a test that floods the device with noise would deadlock with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from hil.protocol import Device, LinkClosed

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
ARM_GCC = shutil.which("arm-none-eabi-gcc")
QEMU = shutil.which("qemu-system-arm")
HOST_CC = shutil.which("gcc")
NEED_ARM = pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed "
                              "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)")
NEED_QEMU = pytest.mark.skipif(ARM_GCC is None or QEMU is None,
                               reason="needs arm-none-eabi-gcc and qemu-system-arm "
                               "(apt-get install --no-install-recommends qemu-system-arm)")
NEED_HOST_CC = pytest.mark.skipif(HOST_CC is None, reason="no host gcc")


def make_firmware(board: str, build_dir: Path, model: Path | None = None,
                  flavour: str = "", extra: list[str] | None = None) -> Path:
    """`make -C firmware BOARD=.. BUILD=..`; returns the ELF, fails the test with make's output."""
    argv = ["make", "-C", str(FIRMWARE), f"BOARD={board}", f"BUILD={build_dir}", "-j2"]
    if model is not None:
        argv.append(f"MODEL={model}")
    if flavour:
        argv.append(f"FLAVOUR={flavour}")
    argv += extra or []
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return build_dir / (board + (f"-{flavour}" if flavour else "")) / "firmware.elf"


def test_blob(tmp_root: Path) -> Path:
    """A model blob: the first shipped model, else a seeded random EmbBERT (needs torch)."""
    shipped = sorted((ROOT / "hil" / "models").glob("*/model.bin"))
    if shipped:
        return shipped[0]
    pytest.importorskip("torch", reason="no shipped model and no torch to make a random one")
    from hil.quant.quantize import blob_bytes, random_quant_model

    path = tmp_root / "random-model.bin"
    if not path.exists():
        path.write_bytes(blob_bytes(random_quant_model(num_labels=5, seed=1)))
    return path


test_blob.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


class PumpLink:
    """hil.protocol.Link over a file descriptor (pty master or socket), drained by a thread."""

    def __init__(self, fd: int, proc: subprocess.Popen[bytes], sock: socket.socket | None = None
                 ) -> None:
        self.fd = fd
        self.proc = proc
        self.sock = sock
        self.received = bytearray()  # everything, for assertions on plain lines
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    self._closed = True
                    self._cond.notify_all()
                    return
                self._buf += data
                self.received += data
                self._cond.notify_all()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def read(self, timeout: float) -> bytes:
        with self._cond:
            if not self._buf and not self._closed:
                self._cond.wait(timeout)
            if self._buf:
                data = bytes(self._buf)
                self._buf.clear()
                return data
            if self._closed:
                raise LinkClosed("the device's end of the link is closed")
            return b""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # a hung QEMU ignores SIGTERM
        self.proc.wait(timeout=10)
        if self.sock is not None:
            self.sock.close()
        else:
            try:
                os.close(self.fd)
            except OSError:
                pass


def start_native(elf: Path) -> tuple[Device, PumpLink]:
    """The native firmware with a pty slave as stdin/stdout, as a serial port would be."""
    master, slave = os.openpty()
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    # its own session: the pty is never anyone's controlling terminal (no SIGTTOU/SIGHUP games)
    proc = subprocess.Popen([str(elf)], stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                            close_fds=True, env=env, start_new_session=True)
    os.close(slave)
    link = PumpLink(master, proc)
    return Device(link, timeout=60.0, retries=1), link


def start_qemu(machine: str, elf: Path, tmp: Path, serial_index: int = 0
               ) -> tuple[Device, PumpLink]:
    """QEMU with the board's UART on a unix socket (server, wait=on: no byte is lost before the
    test connects). Never -nographic (0x01 'x' would quit QEMU). -icount shift=0: deterministic
    instruction counts."""
    path = tmp / f"qemu-{machine}-{os.getpid()}-{time.monotonic_ns()}.sock"
    serial: list[str] = []
    for _ in range(serial_index):  # earlier UARTs go nowhere
        serial += ["-serial", "null"]
    serial += ["-serial", "chardev:s0"]
    argv = [str(QEMU), "-M", machine, "-display", "none", "-monitor", "none",
            "-chardev", f"socket,id=s0,path={path},server=on,wait=on", *serial,
            "-icount", "shift=0", "-kernel", str(elf)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    while True:  # the path appears at bind(), before listen(): retry until it accepts
        try:
            sock.connect(str(path))
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                sock.close()
                raise AssertionError(f"QEMU did not start: {proc.stderr.read()!r}") from None  # type: ignore[union-attr]
            time.sleep(0.02)
    link = PumpLink(sock.fileno(), proc, sock)
    return Device(link, timeout=60.0, retries=1), link
