"""A stand-in for the Renode keywords renode/tests/*.robot use, with Renode 1.15's signatures
(src/Renode/RobotFrameworkEngine/RenodeKeywords.cs and UartKeywords.cs in renode/renode), whose
"UART" is the native firmware on a pty. tests/test_plugin_renode_suites.py runs the Renode-native
suites through it, so their frames, CRCs and regexes meet a real device where Renode is absent.

Like Renode's TerminalTester: Write Line To Uart sends the text and a carriage return only, lines
end at \\n with \\r dropped, and a matched line is consumed with every line before it.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from hil.boards import get_board
from hil.targets.native import NativeTarget

ROBOT_LIBRARY_SCOPE = "SUITE"
_state: dict = {}


def execute_command(command, machine=None):
    m = re.fullmatch(r"\$bin=@(.+)", command)
    if m is None:
        raise AssertionError(f"the stub knows only `$bin=@path`, got {command!r}")
    _state["bin"] = m.group(1)
    return ""


def execute_script(path):
    if not Path(path).is_file():
        raise AssertionError(f"Could not execute script: {path} does not exist")
    return ""


def reset_emulation():
    stop()


def create_terminal_tester(uart, timeout=None, machine=None, endLineOption=None,
                           defaultPauseEmulation=None, defaultMatchNextLine=None):
    _state["uart"] = uart
    _state["timeout"] = float(timeout or 8)
    return 1


def start_emulation():
    elf = os.environ["RENODE_STUB_ELF"]  # the native firmware stands in for $bin
    run = Path(tempfile.mkdtemp(prefix="hil-stub-"))
    target = NativeTarget(get_board("native"), run, elf=Path(elf))
    _state.update(target=target, link=target.start(), buf=b"", lines=[])


def stop():
    if _state.get("target") is not None:
        _state["target"].stop()
        _state["target"] = None


def write_line_to_uart(content="", testerId=None, waitForEcho=True, pauseEmulation=None):
    if str(waitForEcho).lower() != "false":
        raise AssertionError("the firmware does not echo: pass waitForEcho=false")
    _state["link"].write(content.encode("latin-1") + b"\r")


def send_key_to_uart(c, testerId=None):
    _state["link"].write(bytes([int(str(c), 0)]))


def wait_for_line_on_uart(content, timeout=None, testerId=None, treatAsRegex=False,
                          includeUnfinishedLine=False, pauseEmulation=None, matchNextLine=None):
    regex = str(treatAsRegex).lower() == "true"
    deadline = time.monotonic() + float(timeout or _state["timeout"])
    while True:
        lines = _state["lines"]
        for i, line in enumerate(lines):
            if (re.search(content, line) if regex else content in line):
                del lines[: i + 1]
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"Terminal tester failed: no line containing{' regex' * regex}"
                                 f" >>{content}<<; lines: {lines}")
        data = _state["buf"] + _state["link"].read(0.2)
        *done, rest = data.split(b"\n")
        _state["buf"] = rest
        lines += [d.rstrip(b"\r").decode("utf-8", "replace") for d in done]
