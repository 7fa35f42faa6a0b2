"""Renode under failure (issue #15): a monitor command that fails ends the boot at once with
Renode's own line, a failed board leaves its log and a snapshot that reloads, a Renode killed
mid-run (or a `hil` killed under it) leaves no process behind and `--resume` finishes bit-exact,
and `--jobs 2` runs two Renodes that answer exactly as one does.

Every test here starts Renode, so each skips where Renode or the Arm toolchain is missing; each
keeps to a few sentences of the nlu_scenario model (a few seconds of Renode each).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil import firmware as fw
from hil.boards import BOARDS
from hil.results import read_results
from hil.runner import RunConfig, run
from hil.scenario import load_scenario
from hil.targets.base import TargetError
from hil.targets.renode import RenodeTarget, find_renode

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
KIND = RenodeTarget.kind
BOARD = BOARDS["stm32f4"]

pytestmark = [
    pytest.mark.renode,
    pytest.mark.skipif(find_renode() is None, reason="Renode is not installed"),
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no Arm toolchain"),
    pytest.mark.skipif(not MODEL.is_file(), reason="no shipped nlu_scenario model"),
]


@pytest.fixture(scope="module")
def elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stm32f4 firmware for the shipped model, built once for this module."""
    return fw.build(BOARD, MODEL, dest=tmp_path_factory.mktemp("fw") / "firmware.elf")


def renode_pids(folder: Path) -> list[int]:
    """Live Renode (mono Renode.exe) processes whose command line names a file under `folder`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"Renode.exe" in cmdline and str(folder).encode() in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


def wait_no_renode(folder: Path, seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while renode_pids(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    return renode_pids(folder)


def answers(out: Path) -> dict[int, tuple]:
    """index -> (pred, logits) of a run: what must not change whatever happened to Renode."""
    rows = read_results(out / "results.jsonl")
    return {r["index"]: (r.get("pred"), r.get("logits")) for r in rows}


def config(out: Path, elf: Path, **kw: object) -> RunConfig:
    return RunConfig(board=BOARD, target=KIND, scenario=load_scenario("nlu_scenario"),
                     model_path=MODEL, out_dir=out, elf=elf, **kw)  # type: ignore[arg-type]


def hil(*args: str) -> int:
    return subprocess.run([sys.executable, "-m", "hil.cli", *args], cwd=ROOT, timeout=120,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def _bad_platform(board):  # noqa: ANN001, ANN202 - a Board with a platform file that is not there
    return dataclasses.replace(board, renode=dataclasses.replace(
        board.renode, repl="platforms/boards/no-such-board.repl"))


def test_corrupt_elf_fails_in_seconds_naming_the_log(tmp_path: Path, elf: Path) -> None:
    bad = tmp_path / "bad.elf"
    bad.write_bytes(elf.read_bytes()[:3000])  # cut short: Renode's LoadELF fails
    target = RenodeTarget(BOARD, tmp_path / "run", elf=bad)
    t0 = time.monotonic()
    with pytest.raises(TargetError) as info:
        try:
            target.start()
        finally:
            target.stop()
    message = str(info.value)
    assert time.monotonic() - t0 < 30  # not the 120 s HELLO wait
    assert "\n" not in message
    assert "LoadELF" in message and "Error while loading ELF" in message
    assert str(target.monitor_log) in message and target.monitor_log.is_file()
    assert not target.alive() and wait_no_renode(tmp_path) == []


@pytest.mark.parametrize("broken", ["missing platform file", "bad overlay line"])
def test_broken_platform_fails_in_seconds(tmp_path: Path, elf: Path, broken: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    board = BOARD
    if broken == "missing platform file":
        board = _bad_platform(BOARD)
    else:
        from hil.targets import renode_scripts

        good = renode_scripts.platform_overlay
        monkeypatch.setattr(renode_scripts, "platform_overlay",
                            lambda b: good(b) + "\nbroken: NoSuch.Peripheral @ sysbus 0x4\n")
    target = RenodeTarget(board, tmp_path / "run", elf=elf)
    t0 = time.monotonic()
    with pytest.raises(TargetError, match="a monitor command failed") as info:
        try:
            target.start()
        finally:
            target.stop()
    assert time.monotonic() - t0 < 30
    assert "\n" not in str(info.value) and str(target.monitor_log) in str(info.value)
    assert "LoadPlatformDescriptionFromString" in str(info.value)
    assert re.search(r"\.\.\.': Error E\d+: ", str(info.value))  # Renode's reason, not the echo
    assert wait_no_renode(tmp_path) == []


def test_no_hello_keeps_log_and_a_snapshot_that_reloads(tmp_path: Path) -> None:
    """A firmware that never talks: the error names Renode's log, a snapshot saved while Renode
    ran, and the command that reloads it; that command (with `quit`) really loads it."""
    src = tmp_path / "loop.c"
    src.write_text("void reset(void) { for (;;) { } }\n"
                   "__attribute__((section(\".isr_vector\"))) const void *v[] = "
                   "{ (void *)0x20001000, (void *)reset };\n")
    silent = tmp_path / "loop.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib",
                    "-Wl,--section-start=.isr_vector=0x08000000", "-Wl,-Ttext=0x08000100",
                    "-Wl,-e,reset", "-o", str(silent), str(src)], check=True)
    out = tmp_path / "run"
    code, s = run(config(out, silent, limit=2, hello_timeout_s=2.0))
    assert code == 3 and "never said HELLO" in s["error"]
    snap = out / f"{KIND}-{BOARD.name}-job0.snapshot.save"
    assert f"snapshot: {snap}" in s["error"] and snap.stat().st_size > 100_000
    assert f"Renode's log: {out}" in s["error"]
    reload = re.search(r"reload it: (.*)", s["error"])[1]
    assert reload == f"renode --console -e 'Load @{snap}; mach set 0'"
    loaded = subprocess.run(["bash", "-c", reload.replace("mach set 0'", "mach set 0; "
                                                          "sysbus.cpu PC; quit' < /dev/null")],
                            capture_output=True, text=True, timeout=90, cwd=tmp_path,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    assert "There was an error" not in loaded.stdout, loaded.stdout
    assert re.search(r"0x0*8000[0-9A-Fa-f]{3}\b", loaded.stdout), loaded.stdout  # PC in loop
    assert wait_no_renode(tmp_path) == []


def _mono_of(target: RenodeTarget) -> int:
    """Renode's mono process: the launcher's (a bash script) child."""
    assert target.proc is not None
    pid = target.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0])


def test_renode_killed_mid_run_then_resume_is_bit_exact(tmp_path: Path, elf: Path,
                                                        recording_factory) -> None:
    """kill -9 of mono itself after 3 answers: exit 3 with Renode's log named, no Renode left;
    `--resume` finishes, and every pred/logit equals an undisturbed run's."""
    clean = tmp_path / "clean"
    assert run(config(clean, elf, limit=6))[0] == 0
    out = tmp_path / "run"
    factory = recording_factory(RenodeTarget)
    killed: list[int] = []

    def kill_mono(rec: dict) -> None:
        if len(read_results(out / "results.jsonl")) == 3 and not killed:
            killed.append(_mono_of(factory.started[0]))
            os.kill(killed[0], signal.SIGKILL)

    code, s = run(config(out, elf, limit=6, target_factory=factory, progress=kill_mono,
                         max_restarts=0))
    assert code == 3 and killed and len(read_results(out / "results.jsonl")) == 3
    assert "died" in s["error"] and "Renode's log:" in s["error"]
    assert wait_no_renode(tmp_path) == []
    assert hil("run", "--resume", str(out), "--quiet") == 0
    assert answers(out) == answers(clean) and len(answers(out)) == 6
    assert wait_no_renode(tmp_path) == []


def test_hil_killed_leaves_no_renode(tmp_path: Path, elf: Path) -> None:
    """kill -9 of `hil run` itself: the launcher dies with it (PR_SET_PDEATHSIG) and mono sees
    its monitor's stdin close and quits; nothing of Renode outlives hil."""
    out = tmp_path / "run"
    host = subprocess.Popen([sys.executable, "-m", "hil.cli", "run", "--board", BOARD.name,
                             "--model", str(MODEL), "--elf", str(elf), "--limit", "40",
                             "--out", str(out), "--quiet"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(read_results(out / "results.jsonl")) < 2:
        time.sleep(0.05)
    assert renode_pids(out), "Renode was not running"
    host.kill()
    host.wait(10)
    assert 2 <= len(read_results(out / "results.jsonl")) < 40
    assert wait_no_renode(out) == [], "Renode outlived the killed hil"


def test_two_jobs_run_two_renodes_with_the_same_answers(tmp_path: Path, elf: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert hil("run", "--board", BOARD.name, "--model", str(MODEL), "--elf", str(elf),
               "--limit", "6", "--out", str(one), "--quiet") == 0
    assert hil("run", "--board", BOARD.name, "--model", str(MODEL), "--elf", str(elf),
               "--limit", "6", "--jobs", "2", "--out", str(two), "--quiet") == 0
    assert answers(two) == answers(one) and len(answers(one)) == 6
    pids = {int(re.search(r"started renode pid (\d+)", (two / f"{KIND}-{BOARD.name}-job{j}.log")
                          .read_text())[1]) for j in (0, 1)}
    assert len(pids) == 2
    assert {r["job"] for r in read_results(two / "results.jsonl")} == {0, 1}
    assert wait_no_renode(tmp_path) == []
