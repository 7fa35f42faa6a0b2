"""Targets: the Link contract on real ptys and sockets, the transcript, process cleanup (no
orphans), QEMU's command line, serial port discovery and the busy-port error.

No board is plugged in here, so serial discovery is fed ListPortInfo-like records (the only mock),
and the busy-port test opens a real pty twice through pyserial.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from hil.boards import BOARDS
from hil.protocol import LinkClosed
from hil.targets import TARGETS, NativeTarget, QemuTarget, TargetError
from hil.targets.base import MissingTool, TargetOptions, kill_all_children
from hil.targets.qemu import qemu_argv
from hil.targets.serial import SerialTarget, find_port

NATIVE = BOARDS["native"]


def read_until(link, needle: bytes, timeout: float = 5.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while needle not in got and time.monotonic() < deadline:
        got += link.read(0.2)
    return got


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); count it as dead.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_native_link_round_trip_and_transcript(tmp_path: Path) -> None:
    t = NativeTarget(NATIVE, tmp_path, command=["cat"])
    link = t.start()
    try:
        link.write(b"$1 HELLO*00000000\n")
        assert read_until(link, b"\n") == b"$1 HELLO*00000000\n"  # raw pty: no echo, no \r
        assert link.read(0.1) == b""  # timeout -> b""
    finally:
        t.stop()
    log = t.log_path.read_text()
    assert "> $1 HELLO*00000000" in log and "< $1 HELLO*00000000" in log


def test_link_closed_shows_exit_tail_and_log(tmp_path: Path) -> None:
    t = NativeTarget(NATIVE, tmp_path, command=[
        sys.executable, "-c", "print('FAULT HardFault pc=0x0800beef', flush=True); raise "
        "SystemExit(3)"])
    link = t.start()
    try:
        with pytest.raises(LinkClosed) as err:
            while True:
                link.read(1.0)
    finally:
        t.stop()
    msg = str(err.value)
    assert "exited with code 3" in msg and "FAULT HardFault" in msg
    assert f"full log: {t.log_path}" in msg


def test_stop_kills_the_process_group(tmp_path: Path) -> None:
    """A child that spawned its own child: stop() takes both (SIGKILL to the group)."""
    t = NativeTarget(NATIVE, tmp_path, command=["sh", "-c", "sleep 300 & echo $!; wait"])
    link = t.start()
    grandchild = int(read_until(link, b"\n").strip())
    pid = t.proc.pid
    t.stop()
    time.sleep(0.2)
    assert not pid_alive(pid) and not pid_alive(grandchild)


def test_kill_all_children_at_exit(tmp_path: Path) -> None:
    t = NativeTarget(NATIVE, tmp_path, command=["sleep", "300"])
    t.start()
    pid = t.proc.pid
    kill_all_children()  # what atexit and the SIGTERM handler run
    assert not pid_alive(pid)
    t.stop()


def test_no_orphans_when_the_host_is_terminated(tmp_path: Path) -> None:
    """SIGTERM (and SIGKILL) to the host process: its emulator-like child dies with it."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from hil.boards import BOARDS
        from hil.targets import NativeTarget
        t = NativeTarget(BOARDS["native"], Path({str(tmp_path)!r}), command=["sleep", "300"])
        t.start()
        print(t.proc.pid, flush=True)
        time.sleep(300)
    """)
    for how in ("terminate", "kill"):
        host = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        child = int(host.stdout.readline())
        assert pid_alive(child)
        getattr(host, how)()
        host.wait(10)
        deadline = time.monotonic() + 5
        while pid_alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(child), f"child survived host {how}"


def test_native_missing_executable(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="hil build --board native"):
        NativeTarget(NATIVE, tmp_path, elf=tmp_path / "nope.elf").start()


def test_qemu_command_line() -> None:
    argv = qemu_argv("qemu-system-arm", "netduinoplus2", Path("/f.elf"), 4242)
    assert "-nographic" not in argv  # it would eat byte 0x01 as an escape
    assert argv[argv.index("-display") + 1] == "none"
    assert argv[argv.index("-monitor") + 1] == "none"
    assert argv[argv.index("-icount") + 1] == "shift=0"
    serial = argv[argv.index("-serial") + 1]
    assert serial.startswith("tcp:127.0.0.1:4242") and "nodelay=on" in serial  # loopback only
    assert argv[argv.index("-kernel") + 1] == "/f.elf"


def test_qemu_missing_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setenv("QEMU", str(tmp_path / "no-qemu"))
    t = QemuTarget(BOARDS["netduinoplus2"], tmp_path, elf=tmp_path / "x.elf")
    with pytest.raises(MissingTool, match="apt-get install -y --no-install-recommends "
                                          "qemu-system-arm"):
        t.start()


def test_qemu_rejects_a_board_it_cannot_run(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="runs on renode, serial"):
        QemuTarget(BOARDS["stm32f4"], tmp_path, elf=tmp_path / "x.elf")


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm missing")
def test_qemu_running_wrong_firmware_says_why_it_died(tmp_path: Path) -> None:
    """A host (x86) executable given to the Cortex-M machine: QEMU locks up and aborts; the link
    error carries the exit status and QEMU's own last words from its stderr log."""
    t = QemuTarget(BOARDS["mps2-an386"], tmp_path, elf=Path(sys.executable).resolve())
    link = t.start()
    try:
        with pytest.raises(LinkClosed) as err:
            while True:
                link.read(5.0)
    finally:
        t.stop()
    msg = str(err.value)
    assert "SIGABRT" in msg and "Lockup" in msg and "full log:" in msg
    assert not t.alive()


def _port(device: str, vid: int | None, pid: int | None, sn: str | None = None):
    return SimpleNamespace(device=device, vid=vid, pid=pid, serial_number=sn,
                           description="test")


def test_serial_autodetect_by_usb_id() -> None:
    ports = [_port("/dev/ttyS0", None, None), _port("/dev/ttyACM0", 0x1366, 0x1015, "683")]
    assert find_port(BOARDS["nrf52840"], ports=ports) == "/dev/ttyACM0"
    assert find_port(BOARDS["nrf52840"], "683", ports=ports) == "/dev/ttyACM0"


def test_serial_autodetect_lists_what_it_found() -> None:
    ports = [_port("/dev/ttyS0", None, None), _port("/dev/ttyUSB3", 0x10C4, 0xEA60)]
    with pytest.raises(TargetError) as err:
        find_port(BOARDS["stm32f4"], ports=ports)
    msg = str(err.value)
    assert "/dev/ttyS0" in msg and "/dev/ttyUSB3 (10c4:ea60" in msg and "--port" in msg
    two = [_port("/dev/ttyACM0", 0x0483, 0x374B), _port("/dev/ttyACM1", 0x0483, 0x374B)]
    with pytest.raises(TargetError, match="2 ports match"):
        find_port(BOARDS["stm32f4"], ports=two)


def test_serial_busy_port(tmp_path: Path) -> None:
    """A real pty opened twice (exclusive lock): the second user gets a clear error."""
    master, slave = os.openpty()
    name = os.ttyname(slave)
    opts = TargetOptions(port=name)
    first = SerialTarget(BOARDS["stm32f4"], tmp_path, name="first", options=opts)
    first.start()
    try:
        second = SerialTarget(BOARDS["stm32f4"], tmp_path, name="second", options=opts)
        with pytest.raises(TargetError, match=f"cannot open {name}.*busy"):
            second.start()
        os.write(master, b"embbert-hil fw 0.1.0\n")  # and the first one still works
        assert read_until(first.link, b"\n") == b"embbert-hil fw 0.1.0\n"
    finally:
        first.stop()
        os.close(master)
        os.close(slave)


def test_cycle_units() -> None:
    assert TARGETS["qemu"].cycle_unit("systick") == "instructions (qemu icount)"
    assert TARGETS["renode"].cycle_unit("dwt") == "instructions (renode)"
    assert TARGETS["serial"].cycle_unit("dwt") == "cycles (dwt, board)"
    assert TARGETS["native"].cycle_unit("ns") == "ns (host)"
    # 168 SysTick ticks at 168 MHz under -icount shift=0 = 1000 instructions.
    assert TARGETS["qemu"].to_cycles(168, "systick", 168_000_000) == 1000
    assert TARGETS["renode"].to_cycles(168, "dwt", 168_000_000) == 168


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc/make needed (native board)")
def test_serial_target_end_to_end_on_a_pty(tmp_path: Path) -> None:
    """The serial target through pyserial on a real tty (/dev/pts/N), with the native firmware
    on the other side of it standing in for a board on USB: it booted before the port was
    opened, as real boards do, and the run still gets its HELLO and bit-exact answers."""
    import dataclasses

    from hil import firmware as fw
    from hil.runner import RunConfig, run
    from hil.scenario import load_scenario
    from hil.targets.base import ManagedProcess

    model = Path(__file__).resolve().parents[1] / "hil" / "models" / "nlu_scenario" / "model.bin"
    if not model.is_file():
        pytest.skip("no shipped nlu_scenario model")
    elf = fw.build(NATIVE, model, dest=tmp_path / "native.elf")
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    board_proc = ManagedProcess([str(elf)], stdin=master, stdout=master, close_fds=True)
    try:
        time.sleep(0.3)  # the "board" boots and prints its HELLO before anyone listens
        board = dataclasses.replace(BOARDS["stm32f4"], flash_bytes=0, ram_bytes=0)
        cfg = RunConfig(board=board, target="serial", scenario=load_scenario("nlu_scenario"),
                        model_path=model, out_dir=tmp_path / "run", limit=6,
                        port=os.ttyname(slave))
        code, s = run(cfg)
    finally:
        board_proc.kill()
        os.close(master)
        os.close(slave)
    assert s["error"] is None and s["summary"]["sentences"] == 6
    assert s["summary"]["agreement"] == 1.0 and s["emulated"] is False
    assert s["targets"][0]["target"] == "serial" and s["targets"][0]["port"].startswith("/dev/")
