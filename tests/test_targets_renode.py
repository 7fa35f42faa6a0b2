"""Renode target: the generated platform overlay and script, checked against Renode's real syntax
(platform description format: 4-space indents, `using`, `name: Type @ sysbus addr`, later `init:`
replacing an earlier one; monitor scripts: `$var?=`, `mach create`, triple-quoted strings,
`emulation CreateUartPtyTerminal`, `connector Connect`), and an end-to-end run that needs Renode.

The end-to-end tests run against Renode 1.15.1, which scripts/setup.sh installs
(scripts/install-renode.sh); they skip with the reason only where Renode is absent, and .ci/run
fails a run in which a Renode test skipped on a machine that has Renode.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from hil import cli
from hil.boards import BOARDS
from hil.targets.renode import (
    DWT_SCRIPT,
    UNIT_RENODE,
    RenodeTarget,
    find_renode,
    platform_overlay,
    renode_argv,
    resc_script,
    write_templates,
)

# `pytest -m renode` selects this module: the Renode target's generated files and orchestration,
# and test_renode_end_to_end, the one test here that starts Renode (skipped where it is absent).
# Its nrf52840 case fails on Renode 1.15.1 until the nrf52840 port's UART says HELLO there.
pytestmark = pytest.mark.renode

ROOT = Path(__file__).resolve().parents[1]
RENODE_BOARDS = [b for b in BOARDS.values() if b.renode is not None]


@pytest.mark.parametrize("board", RENODE_BOARDS, ids=lambda b: b.name)
def test_overlay_adds_dwt_clock_and_drops_the_svd_download(board) -> None:
    repl = platform_overlay(board)
    lines = repl.splitlines()
    assert lines[0] == f'using "{board.renode.repl}"'
    code = [ln for ln in lines if not ln.lstrip().startswith("//")]
    assert not any("ApplySVD" in ln or "https://" in ln for ln in code)  # must work offline
    mhz = board.clock_hz // 1_000_000
    assert f"cpu:\n    PerformanceInMips: {mhz}\n" in repl
    assert f"nvic:\n    systickFrequency: {board.clock_hz}\n" in repl
    assert "dwt: Python.PythonPeripheral @ sysbus 0xE0001000\n    size: 0x1000\n" in repl
    assert "    script: '''\n" + DWT_SCRIPT.strip("\n") + "\n'''\n" in repl
    assert "sysbus:\n    init:\n        Tag <" in repl  # replaces, not `init add:`
    for line in lines:  # the format's rule: indentation is a multiple of four spaces
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 4 == 0 and "\t" not in line, line


class _Request:
    def __init__(self, offset: int = 0, value: int = 0, *, read: bool = False,
                 init: bool = False) -> None:
        self.offset, self.value, self.isRead, self.isWrite, self.isInit = (
            offset, value, read, not read and not init, init)


def test_dwt_script_counts_executed_instructions() -> None:
    """DWT_SCRIPT (IronPython in Renode) run here with a stand-in CPU and request: CYCCNT
    advances by executed instructions while CYCCNTENA is set, takes writes, wraps at 32 bits."""
    from types import SimpleNamespace

    cpu = SimpleNamespace(ExecutedInstructions=1000)
    scope: dict = {"self": None}
    code = compile(DWT_SCRIPT, "dwt", "exec")

    def access(req: _Request) -> int:
        scope["request"] = req
        exec(code, scope)
        return req.value

    access(_Request(init=True))
    scope["cpu"] = cpu  # Renode looks it up through the machine on first access
    access(_Request(4, 0))                       # CYCCNT = 0
    access(_Request(0, 1))                       # CYCCNTENA
    cpu.ExecutedInstructions += 12345
    assert access(_Request(4, read=True)) == 12345
    assert access(_Request(0, read=True)) == 1
    cpu.ExecutedInstructions += 7
    assert access(_Request(4, read=True)) == 12352
    access(_Request(0, 0))                       # disabled: holds
    cpu.ExecutedInstructions += 500
    assert access(_Request(4, read=True)) == 12352
    access(_Request(4, 0xFFFFFFFF))
    access(_Request(0, 1))
    cpu.ExecutedInstructions += 2
    assert access(_Request(4, read=True)) == 1   # wraps like the 32-bit register
    assert access(_Request(0x1C, read=True)) == 0


def test_nrf52840_overlay_keeps_the_platform_tags() -> None:
    """The replaced init block restates the Tag lines of platforms/cpus/nrf52840.repl."""
    repl = platform_overlay(BOARDS["nrf52840"])
    assert 'Tag <0x10000000, 0x10000FFF> "FICR"' in repl
    assert 'Tag <0x10001200, 0x10001203> "PSELRESET"' in repl


@pytest.mark.parametrize("board", RENODE_BOARDS, ids=lambda b: b.name)
def test_resc_script(board) -> None:
    resc = resc_script(board, "/x/firmware.elf", "/run/term.uart")
    assert "$bin?=@/x/firmware.elf" in resc and '$pty?="/run/term.uart"' in resc
    assert "mach create $name" in resc
    body = resc.split('machine LoadPlatformDescriptionFromString """\n', 1)[1].split('"""', 1)[0]
    assert body == platform_overlay(board)
    assert 'emulation CreateUartPtyTerminal "term" $pty true' in resc
    assert f"connector Connect {board.renode.uart} term" in resc
    assert "sysbus LoadELF $bin" in resc
    # The pty lives in a macro the host runs (`runMacro $uart_pty`): renode-test suites include
    # this script too, and a pty terminal disposed by `Reset Emulation` kills Renode (EIO).
    pty_macro = resc.split("macro uart_pty\n", 1)[1].split('"""')[1]
    assert 'emulation CreateUartPtyTerminal "term" $pty true' in pty_macro
    assert "CreateUartPtyTerminal" not in resc.replace(pty_macro, "")
    assert not any(ln.strip() == "runMacro $uart_pty" for ln in resc.splitlines())
    # `start` is typed by the host after it opened the pty; a script line would lose the HELLO.
    assert not any(line.strip() == "start" for line in resc.splitlines())
    # Order matters: machine, platform, terminal, connection, ELF.
    order = [resc.index(s) for s in ("mach create", "LoadPlatformDescriptionFromString",
                                     "CreateUartPtyTerminal", "connector Connect", "LoadELF")]
    assert order == sorted(order)


def test_uarts_match_the_platforms() -> None:
    assert BOARDS["nrf52840"].renode.uart == "sysbus.uart0"
    assert BOARDS["stm32f4"].renode.uart == "sysbus.usart2"
    assert BOARDS["stm32f4"].renode.repl == "platforms/boards/stm32f4_discovery-kit.repl"


def test_shipped_templates_are_current(tmp_path: Path) -> None:
    """renode/*.resc and renode/*-hil.repl are generated; regenerate them when boards change:
    `python3 -m hil.targets.renode renode/`."""
    for path in write_templates(tmp_path):
        shipped = ROOT / "renode" / path.name
        assert shipped.read_text() == path.read_text(), f"{shipped} is stale"
    assert "$bin?=" in (ROOT / "renode" / "nrf52840.resc").read_text()
    assert "$bin?=" in (ROOT / "renode" / "stm32f4.resc").read_text()


def test_renode_command_line(tmp_path: Path) -> None:
    argv = renode_argv("/opt/renode/renode", tmp_path / "s.resc")
    for flag in ("--disable-xwt", "--console", "--hide-log"):
        assert flag in argv
    assert argv[-2:] == ["-e", f"include @{tmp_path / 's.resc'}"]
    assert "--hide-monitor" not in argv  # Renode rejects it together with --console
    port = renode_argv("renode", tmp_path / "s.resc", monitor_port=4567)
    assert port[port.index("--port") + 1] == "4567" and "--console" not in port


# A stand-in for the `renode` executable, for the orchestration test below: Renode cannot be
# installed here. It does what the generated script asks of Renode (pty terminal at $pty, ELF at
# $bin), but "emulates" by running $bin as a host process on the pty, i.e. the native firmware.
FAKE_RENODE = r"""#!PYTHON
import os, re, subprocess, sys, threading, tty
args = sys.argv[1:]
script = args[args.index("-e") + 1].split("@", 1)[1]
text = open(script).read()
pty_path = re.search(r'^\$pty\?="(.*)"$', text, re.M)[1]
elf = re.search(r'^\$bin\?=@(.*)$', text, re.M)[1]
assert "CreateUartPtyTerminal" in text and "LoadPlatformDescriptionFromString" in text
log = open(os.path.join(os.path.dirname(script), "fake-renode.txt"), "w", buffering=1)
log.write(f"argv {args}\nTMPDIR {os.environ.get('TMPDIR')}\n")
master, slave = os.openpty()
tty.setraw(slave)
os.symlink(os.ttyname(slave), pty_path)
child = None


def pump(src, dst):  # the emulated UART: bytes between the pty master and the "board"
    while True:
        data = os.read(src, 4096)
        if not data:
            return
        os.write(dst, data)


for line in sys.stdin:
    cmd = line.strip()
    log.write(f"monitor {cmd} pty_present={os.path.exists(pty_path)}\n")
    if cmd == "start":
        child = subprocess.Popen([elf], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        threading.Thread(target=pump, args=(master, child.stdin.fileno()), daemon=True).start()
        threading.Thread(target=pump, args=(child.stdout.fileno(), master), daemon=True).start()
    elif cmd == "quit":
        break
if child:
    child.kill()
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc needed for the native firmware")
def test_renode_target_orchestration_with_a_stand_in(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The Renode target's own steps, for real: script written, Renode started with its own
    TMPDIR, pty opened before `start` is typed on the monitor, answers bit-exact, `quit` on
    stop. Only Renode is stood in for (see FAKE_RENODE)."""
    import dataclasses
    import sys

    from hil import firmware as fw
    from hil.runner import RunConfig, run
    from hil.scenario import load_scenario

    model = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
    if not model.is_file():
        pytest.skip("no shipped nlu_scenario model")
    fake = tmp_path / "renode"
    fake.write_text(FAKE_RENODE.replace("PYTHON", sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("RENODE", str(fake))
    elf = fw.build(BOARDS["native"], model, dest=tmp_path / "native.elf")
    out = tmp_path / "run"
    # The "firmware" is a host program, so the chip's memory limits are lifted for this test.
    board = dataclasses.replace(BOARDS["nrf52840"], flash_bytes=0, ram_bytes=0)
    cfg = RunConfig(board=board, target="renode",
                    scenario=load_scenario("nlu_scenario"), model_path=model, out_dir=out,
                    limit=8, elf=elf)
    code, s = run(cfg)
    assert s["error"] is None and s["summary"]["sentences"] == 8
    assert s["summary"]["agreement"] == 1.0
    trace = (out / "fake-renode.txt").read_text()
    assert "monitor runMacro $uart_pty" in trace and "monitor start pty_present=True" in trace
    assert trace.rstrip().endswith("monitor quit pty_present=True")
    assert f"TMPDIR {out / 'renode-nrf52840-job0.tmpdir'}" in trace
    resc = (out / "renode-nrf52840-job0.resc").read_text()
    assert "dwt: Python.PythonPeripheral @ sysbus 0xE0001000" in resc


def test_renode_missing_explains_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hil.targets.base import MissingTool

    monkeypatch.setenv("RENODE", str(tmp_path / "no-renode"))
    assert find_renode() is None
    t = RenodeTarget(BOARDS["nrf52840"], tmp_path, elf=tmp_path / "f.elf")
    with pytest.raises(MissingTool, match="linux-portable"):
        t.start()


def test_renode_gets_its_own_tmpdir(tmp_path: Path) -> None:
    """Renode deletes $TMPDIR/renode-* folders at start and exit: it gets a TMPDIR of its own,
    and none of our files (script, pty, logs) live inside it."""
    t = RenodeTarget(BOARDS["stm32f4"], tmp_path, elf=tmp_path / "f.elf")
    assert t.tmpdir.parent == tmp_path and t.tmpdir != tmp_path
    for ours in (t.pty_path, t.script_path, t.log_path):
        assert t.tmpdir not in ours.parents


@pytest.mark.skipif(find_renode() is None, reason=(
    "Renode is not installed (not packaged for Debian/PyPI): put the Antmicro portable "
    "package's `renode` on PATH or set RENODE to run this test"))
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no Arm toolchain")
@pytest.mark.parametrize("board", ["nrf52840", "stm32f4"])
def test_renode_end_to_end(board: str, tmp_path: Path) -> None:
    model = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
    if not model.is_file():
        pytest.skip("no shipped nlu_scenario model")
    out = tmp_path / "run"
    cli.main(["run", "--board", board, "--model", str(model), "--limit", "12", "--out",
              str(out), "--quiet"])
    s = json.loads((out / "summary.json").read_text())
    assert s["target"] == "renode" and s["summary"]["agreement"] == 1.0
    assert s["summary"]["cycles"]["unit"] == UNIT_RENODE and s["summary"]["cycles"]["median"] > 0
    resc = (out / f"renode-{board}-job0.resc").read_text()
    assert re.search(r"dwt: Python\.PythonPeripheral", resc)
    # CYCCNT counts executed instructions, not 100 us quanta (16,800 cycles at 168 MHz)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert any(r["cycles"] % 16800 for r in rows if r.get("cycles"))
