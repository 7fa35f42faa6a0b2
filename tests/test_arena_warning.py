"""A board whose arena cannot take every input length: real native firmware built with a smaller
ARENA, the shipped nlu_scenario model, real pty bytes.

The device knows at boot (its banner's `WARN arena` line and HELLO's `need=`); the user must hear
it before the first NO_MEMORY, from every entry point: `hil run` (stderr, summary.json,
report.html), `hil console`, Robot's `Start Board` and the pytest fixture. And the answers must
be exactly those the arena predicts: every sentence whose arena need fits is answered bit for
bit, every other one is refused NO_MEMORY with its reason, and the exit code says so.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from test_firmware_helpers import make_firmware

from hil import cli
from hil.boards import BOARDS
from hil.results import read_results
from hil.runner import RunConfig, run
from hil.scenario import load_scenario

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or not MODEL.is_file(),
                                reason="gcc and the shipped nlu_scenario model needed")
N = 24  # sentences: short and long enough to fall on both sides of the arena chosen below


def _config(out: Path, elf: Path | None = None) -> RunConfig:
    return RunConfig(board=BOARDS["native"], target="native",
                     scenario=load_scenario("nlu_scenario"), model_path=MODEL, out_dir=out,
                     limit=N, elf=elf)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, dict[int, int]]:
    """A native ELF whose arena is the median of what the first N sentences need (as a clean
    run's devices reported their arena peaks), with those peaks by sentence index."""
    tmp = tmp_path_factory.mktemp("arena")
    code, clean = run(_config(tmp / "clean"))
    assert code == 0, clean["error"]
    peaks = {r["index"]: r["arena"] for r in read_results(tmp / "clean" / "results.jsonl")}
    assert clean["hello"]["need"] > max(peaks.values())  # maxlen needs more than any of these
    arena = sorted(peaks.values())[N // 2]
    assert min(peaks.values()) <= arena < max(peaks.values())
    elf = make_firmware("native", tmp / "build", MODEL, extra=[f"ARENA={arena}"])
    return elf, arena, peaks


def test_run_warns_first_and_refuses_exactly_what_does_not_fit(
        small: tuple[Path, int, dict[int, int]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    elf, arena, peaks = small
    out = tmp_path / "run"
    code = cli.main(["run", "--board", "native", "--limit", str(N), "--elf", str(elf),
                     "--out", str(out)])
    err = capsys.readouterr().err
    s = json.loads((out / "summary.json").read_text())
    assert code == 1  # sentences refused by the device: not a clean run, not a lost one
    (warning,) = s["warnings"]
    assert warning.startswith(f"the board's arena is {arena:,} B but inputs up to maxlen 64 "
                              f"tokens need up to {s['hello']['need']:,} B")
    assert err.count(f"hil run: warning: {warning}") == 1
    assert err.index("warning:") < err.index("NO_MEMORY")  # before the first refusal
    recs = {r["index"]: r for r in read_results(out / "results.jsonl")}
    assert sorted(recs) == list(range(N))
    for i, r in recs.items():
        if peaks[i] <= arena:
            assert r["status"] == "ok" and r["agree"] is True, r
        else:
            assert r["status"] == "error" and r["error"]["code"] == "NO_MEMORY", r
    assert cli.main(["report", str(out), "--html", str(tmp_path / "r.html"),
                     "--markdown", str(tmp_path / "r.md")]) == 0  # 0: written
    html = (tmp_path / "r.html").read_text()
    assert 'data-section="board-warnings"' in html and f"{arena:,} B" in html
    assert "Why this run FAILED" in html and "NO_MEMORY" in html
    assert f"- the board warned: {warning}" in (tmp_path / "r.md").read_text()


def test_a_board_that_fits_says_nothing(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, s = run(_config(tmp_path / "run"))
    assert code == 0 and s["warnings"] == [] and "warning" not in capsys.readouterr().err
    assert s["hello"]["need"] <= s["hello"]["arena"]


def test_console_warns_before_the_first_sentence(small: tuple[Path, int, dict[int, int]],
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from hil.console import ConsoleSession, run_console

    elf, arena, _ = small
    session = ConsoleSession(BOARDS["native"], "native", MODEL, tmp_path, elf=elf)
    stdout = io.StringIO()
    code = run_console(session, io.StringIO(":model\n"), stdout, interactive=False)
    err = capsys.readouterr().err
    assert code == 0 and f"hil console: warning: the board's arena is {arena:,} B" in err
    assert f"\n# warning: the board's arena is {arena:,} B" in stdout.getvalue()  # `:model`


def test_robot_start_board_logs_a_warning(small: tuple[Path, int, dict[int, int]],
                                          tmp_path: Path) -> None:
    import hil.robot as hr

    elf, arena, _ = small
    logged: list[tuple[str, str]] = []
    sink, out = hr.LOG_SINK, hr.OUTPUT_DIR
    hr.LOG_SINK, hr.OUTPUT_DIR = (lambda m, level, html: logged.append((level, m))), str(tmp_path)
    try:
        lib = hr.HilLibrary()
        lib.start_board("native", elf=str(elf))
        lib.stop_board()
    finally:
        hr.LOG_SINK, hr.OUTPUT_DIR = sink, out
    warns = [m for level, m in logged if level == "WARN"]
    assert len(warns) == 1 and f"the board's arena is {arena:,} B" in warns[0]


def test_pytest_fixture_warns(small: tuple[Path, int, dict[int, int]],
                              pytester: pytest.Pytester) -> None:
    """In pytest's warnings summary, where a test's NO_MEMORY then has its explanation (a
    pytester subprocess, as tests/test_plugin.py runs the plugin)."""
    elf, arena, _ = small
    pytester.makepyfile("""
        def test_short(hil_device):
            assert hil_device.classify("hello").label_name
    """)
    result = pytester.runpytest_subprocess("--hil-board", "native", "--hil-elf", str(elf),
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([f"*HilBoardWarning: *native*: the board's arena is {arena:,} B*"])
