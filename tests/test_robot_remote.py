"""hil.robot inside renode-test, without Renode: the remote library server (hil/robot/remote.py)
against Robot's own `Remote` client, and attaching to a UART a running emulator serves on a
TCP socket (hil/targets/renode_attach.py) with the native firmware behind a stand-in for
Renode's server socket terminal. renode/tests/stm32f4-hil.robot runs both on Renode itself
(renode-test, .ci/run's renode-test part).
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.robot import remote

ROOT = Path(__file__).resolve().parents[1]
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="needs gcc and make for the native firmware")


def test_keywords_as_robotremoteserver_serves_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from robot.api.deco import keyword
    from robotremoteserver import RobotRemoteServer

    from hil import robot as hil_robot
    from hil.robot import HilLibrary

    class Lib:
        """Intro."""

        @keyword
        def typed(self, n: int, t: float | None = None, on: bool = False) -> dict:
            """Doc."""
            hil_robot._log("said <b>it</b>", html=True)
            return {"n": n, "t": t, "on": on, "big": [2**40, -(2**31)]}

        def helper(self) -> None:
            """Not a keyword."""

    monkeypatch.setattr(hil_robot, "LOG_SINK", remote._log_to_output)
    served = RobotRemoteServer(remote.remote_keywords(Lib()), port=0, serve=False)
    assert served.get_keyword_names() == ["typed", "stop_remote_server"]
    assert served.get_keyword_arguments("typed") == ["n", "t=None", "on=False"]
    assert served.get_keyword_documentation("__intro__") == "Intro."
    assert served.get_keyword_documentation("typed") == "Doc."
    r = served.run_keyword("typed", ["7"], {"t": "None", "on": "yes"})
    assert r["status"] == "PASS", r
    assert r["return"] == {"n": 7, "t": "", "on": True, "big": [str(2**40), -(2**31)]}
    assert r["output"] == "*HTML* said <b>it</b>\n"
    r = served.run_keyword("typed", ["seven"])
    assert r["status"] == "FAIL" and "cannot be converted to integer" in r["error"], r
    served = RobotRemoteServer(remote.remote_keywords(HilLibrary()), port=0, serve=False)
    assert served.get_keyword_arguments("attach_board") == [
        "board", "elf", "uart", "model=nlu_scenario", "run_dir=None", "timeout=None"]
    assert served.get_keyword_arguments("hello_should_report") == ["**fields"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port_file = tmp_path / "port"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "hil.robot.remote", "--port", "0",
                             "--port-file", str(port_file), "--output-dir", str(tmp_path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        proc.terminate()  # Robot's `Terminate Process`: SIGTERM, and the server stops
        assert proc.wait(timeout=10) == 0


def test_robots_remote_client_runs_hil_keywords(server: str) -> None:
    from robot.errors import RemoteError
    from robot.libraries.Remote import Remote

    client = Remote(server)
    names = client.get_keyword_names()
    # method names: Robot shows `attach_board` as `Attach Board`, and matches either
    assert {"attach_board", "start_board", "classify", "run_scenario"} <= set(names)
    assert client.get_keyword_arguments("attach_board")[:3] == ["board", "elf", "uart"]
    assert "renode-test" in client.get_keyword_documentation("attach_board")
    with pytest.raises(RemoteError, match="no board started"):
        client.run_keyword("classify", ["show alarms"], {})
    # a hil error comes back as a failure naming the problem, not as a broken connection
    with pytest.raises(RemoteError, match="unknown board|no-such-board"):
        client.run_keyword("attach_board", ["no-such-board", "x.elf", "1"], {})
    # the suite's strings are converted here, by the keyword's type hints
    with pytest.raises(RemoteError, match="'limit' got value 'four'"):
        client.run_keyword("run_scenario", ["nlu_smoke"], {"limit": "four"})


class SocketTerminal:
    """Renode's server socket terminal as hil sees it: a local TCP port carrying the UART of a
    board that runs whether or not anyone is connected (here the native firmware)."""

    def __init__(self, link: object) -> None:
        self.link = link
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped:
            ready, _, _ = select.select([self.listener], [], [], 0.1)
            if not ready:
                continue
            conn, _ = self.listener.accept()
            with conn:
                while not self.stopped:
                    data = self.link.read(0.02)  # type: ignore[attr-defined]
                    if data:
                        conn.sendall(data)
                    if select.select([conn], [], [], 0)[0]:
                        got = conn.recv(4096)
                        if not got:
                            break  # the client let go; the board runs on
                        self.link.write(got)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.stopped = True
        self.thread.join(timeout=5)
        self.listener.close()


@needs_gcc
def test_attach_board_talks_to_a_running_board_and_lets_go(tmp_path: Path) -> None:
    from hil import firmware as fw
    from hil.boards import get_board
    from hil.robot import HilLibrary
    from hil.scenario import resolve_model
    from hil.targets.native import NativeTarget

    elf = fw.build(get_board("native"), resolve_model("nlu_scenario"),
                   dest=tmp_path / "native.elf")
    board = NativeTarget(get_board("native"), tmp_path / "board", elf=elf)
    terminal = SocketTerminal(board.start())
    lib = HilLibrary()
    try:
        # stm32f4 is a board the attaching target knows; the firmware behind is the native one
        uart = f"127.0.0.1:{terminal.port}"
        hello = lib.attach_board("stm32f4", str(elf), uart, run_dir=str(tmp_path / "a"))
        assert hello["model"] == f"{lib._need().oracle.model_id:08X}"
        lib.classify("show alarms")
        lib.prediction_should_be("alarm")
        lib.device_should_agree_with_reference()
        lib.stop_board()
        assert board.alive(), "Stop Board on an attached board must leave the board running"
        # again: the boot HELLO is long gone, so attaching asks for one (at once, not after
        # the 120 s a Renode boot may take)
        t0 = time.monotonic()
        lib.attach_board("stm32f4", str(elf), str(terminal.port), run_dir=str(tmp_path / "b"))
        assert time.monotonic() - t0 < 20
        lib.send_raw_bytes("$7 HELLO*00000000\n")
        assert lib.last_error_should_be("BAD_FRAME")["seq"] == 7
        lib.device_should_agree_with_reference("wake me up at seven am")
    finally:
        lib.stop_board()
        terminal.close()
        board.stop()


def test_attach_says_what_renode_should_have_made(tmp_path: Path) -> None:
    from hil.targets.base import TargetError, Transcript
    from hil.targets.renode_attach import attach

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(TargetError, match="CreateServerSocketTerminal"):
        attach(f"127.0.0.1:{port}", "t", Transcript(tmp_path / "t.log"), "sysbus.usart2",
               timeout=0.5)
    with pytest.raises(TargetError, match="CreateUartPtyTerminal"):
        attach(str(tmp_path / "no-pty"), "t", Transcript(tmp_path / "t.log"))
