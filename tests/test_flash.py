"""`hil flash`: the OpenOCD command it builds, and its failure paths with the real OpenOCD.

There is no board on this machine (a mock could only assert what it was told), so what is
tested is what can be true here: the command line per board, and OpenOCD itself failing to
find a probe, which must be exit 2 with what to do, never a traceback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hil import cli
from hil.boards import BOARDS
from hil.errors import UsageError
from hil.flash import flash_command


def test_the_command_writes_verifies_and_resets(tmp_path: Path) -> None:
    elf = tmp_path / "fw.elf"
    assert flash_command("openocd", BOARDS["stm32f4"], elf) == [
        "openocd", "-f", "board/stm32f4discovery.cfg", "-c", f"program {elf} verify reset exit"]
    argv = flash_command("openocd", BOARDS["nrf52840"], elf, probe="000683512345")
    assert argv[1:3] == ["-f", "board/nordic_nrf52_dk.cfg"]
    assert ["-c", "adapter serial 000683512345"] == argv[3:5]


def test_a_board_without_a_debugger_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no on-board debugger"):
        flash_command("openocd", BOARDS["netduinoplus2"], tmp_path / "fw.elf")


def test_without_openocd_it_says_how_to_install(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENOCD", str(tmp_path / "no-openocd"))
    elf = tmp_path / "fw.elf"
    elf.write_bytes(b"\x7fELF")
    assert cli.main(["flash", "--board", "stm32f4", "--elf", str(elf)]) == 2
    assert "apt-get install" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("openocd") is None, reason="openocd not installed")
@pytest.mark.parametrize("board", ["stm32f4", "nrf52840"])
def test_no_probe_is_exit_2_with_what_to_do(board: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    """The real OpenOCD, no board plugged in (none exists here)."""
    elf = tmp_path / "fw.elf"
    elf.write_bytes(b"\x7fELF")
    assert cli.main(["flash", "--board", board, "--elf", str(elf)]) == 2
    err = capsys.readouterr().err
    assert "no debug probe" in err and "plug the board in" in err
    assert (tmp_path / "fw.flash.log").read_text().startswith("$ ")


@pytest.mark.skipif(shutil.which("openocd") is None, reason="openocd not installed")
def test_run_flash_first_without_a_probe_is_exit_2(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    """`hil run --target serial --flash` builds, then OpenOCD finds no probe: exit 2 before any
    port is opened, with the flash log in the run folder."""
    out = tmp_path / "run"
    assert cli.main(["run", "--board", "stm32f4", "--target", "serial", "--port", "/dev/null",
                     "--flash", "--limit", "2", "--out", str(out)]) == 2
    assert "no debug probe found for stm32f4" in capsys.readouterr().err
    assert (out / "flash.log").is_file() and (out / "firmware.elf").is_file()


def test_run_flash_on_an_emulator_is_refused(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["run", "--board", "netduinoplus2", "--flash", "--limit", "2", "--out",
                     str(tmp_path / "r")]) == 2
    assert "--flash is for a real board" in capsys.readouterr().err
