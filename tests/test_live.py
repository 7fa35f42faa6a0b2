"""`hil run --live` against the real `native` board, on a real terminal (tmux), and its view's
pieces on their own.

The screen checks go through tmux, not a byte stream: tmux is a terminal emulator, so
`capture-pane` shows what a person would see after rich's cursor moves, which is the only way to
catch a header drawn twice or a frame that vanishes. Each test uses its own tmux server socket,
so nothing here touches anyone's tmux.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hil.boards import BOARDS
from hil.live import LiveDashboard, clip, spark

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
HAVE_GCC = shutil.which("gcc") is not None and shutil.which("make") is not None
needs_native = pytest.mark.skipif(not HAVE_GCC or not SHIPPED.is_file(),
                                  reason="gcc/make or the shipped nlu_scenario model missing")
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


class Tmux:
    """One command in a detached tmux session of a fixed size, on a private server socket."""

    def __init__(self, command: list[str], cols: int, rows: int, cwd: Path = ROOT,
                 env: dict[str, str] | None = None) -> None:
        self.socket = f"hil-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={v}" for k, v in {"TERM": "xterm-256color",
                                                    "PYTHONPATH": str(ROOT),
                                                    **(env or {})}.items())
        # COLUMNS/LINES from the caller would beat the pane's real size in rich
        shell = (f"cd {cwd} && env -u COLUMNS -u LINES {exports} {' '.join(command)}; "
                 "echo EXIT=$?; sleep 600")
        self._tmux("new-session", "-d", "-s", "t", "-x", str(cols), "-y", str(rows), shell)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True,
                              capture_output=True, text=True).stdout

    def screen(self, colours: bool = False) -> str:
        return self._tmux("capture-pane", "-t", "t", "-p", *(["-e"] if colours else []))

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        end = time.monotonic() + timeout
        text = ""
        while time.monotonic() < end:
            text = self.screen()
            if re.search(pattern, text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not on screen within {timeout} s:\n{text}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture(scope="module")
def native_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hil.firmware import build

    dest = tmp_path_factory.mktemp("fw") / "firmware.elf"
    return build(BOARDS["native"], SHIPPED, dest=dest)


def _run_live(out: Path, elf: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hil.cli", "run", "--board", "native", "--elf", str(elf),
            "--out", str(out), "--live", *extra]


@needs_native
@needs_tmux
def test_live_keeps_a_final_frame_with_memory_tally_and_wrong_answers(
        tmp_path: Path, native_elf: Path) -> None:
    """A 20-sentence native run is over in well under a second: the final frame must stay on
    screen, with the peaks, the per-class tally, and a wrong answer marked WRONG, not ok."""
    term = Tmux(_run_live(tmp_path / "run", native_elf, "--limit", "20"), 110, 50)
    try:
        screen = term.wait_for(r"EXIT=\d")
    finally:
        term.close()
    recs = [json.loads(x) for x in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert re.search(r"finished after [\d.]+ s", screen) and "20/20" in screen, screen
    assert len(re.findall(r"hil run native on native", screen)) == 1, screen  # one frame
    stack, arena = max(r["stack"] for r in recs), max(r["arena"] for r in recs)
    assert f"stack peak {stack} B" in screen and "arena peak" in screen, screen
    assert f"{arena / 1024:.1f} KiB" in screen or f"{arena} B" in screen
    tally: dict[int, list[int]] = {}
    for r in recs:
        tally.setdefault(r["label"], [0, 0])[0] += r["correct"]
        tally[r["label"]][1] += 1
    from hil.quant.blob import read_blob

    labels = list(read_blob(SHIPPED.read_bytes()).meta["labels"])
    for lab, (c, t) in tally.items():
        assert re.search(rf"\b{labels[lab]} {c}/{t}\b", screen), (lab, c, t, screen)
    shown = screen.split("latency ms", 2)[-1]
    for r in recs[-5:]:  # the last five rows: agreement and correctness apart
        row = re.search(rf"│\s+{r['index']}\s+(\S+)\s+(\S+)\s", shown)
        assert row, (r["index"], shown)
        assert row.group(1) == ("exact" if r["agree"] else "DIFFERS")
        assert row.group(2) == ("correct" if r["correct"] else "WRONG")


@needs_native
@needs_tmux
def test_live_ctrl_c_draws_the_header_once_and_says_interrupted(
        tmp_path: Path, native_elf: Path) -> None:
    """Ctrl-C used to echo `^C` under a full-width panel: the redraw then landed one line low
    and the header showed twice. A slowed link (every read waits 20 ms) keeps the run going
    long enough to interrupt it."""
    term = Tmux(_run_live(tmp_path / "run", native_elf, "--faults", "delay=1,delay_s=0.02"),
                100, 40)
    try:
        term.wait_for(r"\b([1-9]\d)/300\b", 60)
        term.keys("C-c")
        screen = term.wait_for(r"EXIT=\d", 30)
    finally:
        term.close()
    assert "EXIT=130" in screen, screen
    assert len(re.findall(r"hil run native on native", screen)) == 1, screen
    assert re.search(r"interrupted after [\d.]+ s", screen), screen
    assert "^C" not in screen
    done = len((tmp_path / "run" / "results.jsonl").read_text().splitlines())
    assert re.search(rf"\b{done}/300\b", screen), (done, screen)  # the final frame is current


@needs_native
def test_hil_run_live_without_a_terminal_and_reports_written(tmp_path: Path,
                                                             native_elf: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(_run_live(out, native_elf, "--limit", "20"),
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stderr
    assert "\x1b[" not in proc.stderr  # a pipe gets plain lines
    assert re.search(r"\[20/20\] [\d.]+/s ETA 0s  agreement 100\.0%", proc.stderr)
    assert re.search(r"stack peak \d+ B  arena peak [\d.]+ (B|KiB)", proc.stderr)
    for name in ("report.html", "junit.xml", "summary.md"):
        assert (out / name).stat().st_size > 0
    assert "## hil run run:" in (out / "summary.md").read_text()
    assert json.loads((out / "summary.json").read_text())["summary"]["sentences"] == 20


def _ok(i: int, **kw: object) -> dict[str, object]:
    rec: dict[str, object] = {"index": i, "status": "ok", "agree": True, "correct": True,
                              "label": 1, "pred": 1, "cycles": 1_000_000 + i,
                              "unit": "ns (host)", "tokens": 5, "stack": 800, "arena": 2048}
    rec.update(kw)
    return rec


def _view(dash: LiveDashboard, width: int = 120) -> str:
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False).print(dash)
    return out.getvalue()


def test_live_dashboard_plain_lines_and_rich_view() -> None:
    out = io.StringIO()
    dash = LiveDashboard(40, "t", stream=out, labels=["alarm", "audio"])  # no tty: plain lines
    assert dash.plain
    with dash:
        for i in range(40):
            if i == 7:
                dash.on_result({"index": i, "status": "error",
                                "error": {"code": "TOO_LONG", "reason": "text over 2048"}})
                continue
            dash.on_result(_ok(i, agree=i != 9, correct=i % 4 != 0))
    lines = out.getvalue().splitlines()
    assert any("last #7 error" in ln and "errors 1" in ln for ln in lines)
    assert any("last #9 DISAGREE correct" in ln for ln in lines)
    assert any("last #8 agree WRONG" in ln for ln in lines)  # a wrong answer is a problem line
    assert re.search(r"\[40/40\] [\d.]+/s ETA 0s  agreement 97\.4%  accuracy 74\.4%", lines[-1])
    assert "\x1b[" not in out.getvalue()

    view = _view(dash)
    assert "40/40" in view and "sentences/s" in view and "agreement 97.4%" in view
    assert "#7 error TOO_LONG: text over 2048" in view  # errors so far, though long ago
    assert re.search(r"39 +exact +correct +audio +audio +5 +1\.000", view)  # newest first
    assert re.search(r"36 +exact +WRONG +audio +audio", view)  # agreement is not correctness
    assert "per class (correct/total): audio 29/39" in view
    table = view.split("answer", 1)[1].split("errors so far")[0]
    assert len(re.findall(r"│ +\d+ +(exact|DIFFERS|error)", table)) == 5  # only the last 5
    assert "median 1.000" in view
    assert spark(dash.latencies) in view


def test_live_dashboard_memory_peaks_and_board_ram() -> None:
    dash = LiveDashboard(3, "t", stream=io.StringIO(), ram_bytes=128 * 1024)
    for i, (stack, arena) in enumerate([(700, 30000), (912, 20000), (650, 33472)]):
        dash.on_result(_ok(i, stack=stack, arena=arena))
    assert dash.memory_line() == "stack peak 912 B  arena peak 32.7 KiB  board RAM 128.0 KiB"
    assert "stack peak 912 B" in _view(dash)
    assert "board RAM" not in LiveDashboard(1, "t", stream=io.StringIO()).memory_line()


def test_live_dashboard_cuts_text_with_an_ellipsis() -> None:
    long = "please set an alarm for half past six tomorrow morning and another at seven"
    dash = LiveDashboard(2, "t", stream=io.StringIO())
    dash.on_result(_ok(0, text=long))
    dash.on_result({"index": 1, "status": "error",
                    "error": {"code": "TIMEOUT", "reason": "no answer " + "x" * 200}})
    view = _view(dash, 140)
    assert long[:39] + "…" in view and long not in view
    assert re.search(r"#1 error TIMEOUT: no answer x+…", view)
    assert clip("short", 40) == "short" and clip("abcdef", 4) == "abc…"
    narrow = _view(dash, 80)  # the sentence column gives way, with an ellipsis
    assert "…" in narrow.split("sentence", 1)[1] and max(map(len, narrow.splitlines())) <= 80


def test_live_dashboard_instructions_become_estimated_milliseconds_only_with_a_cpi() -> None:
    """Instruction counts are a time only through the board's estimated cycles per
    instruction: with one, estimated ms, labelled so; without one, the counts as they are."""
    dash = LiveDashboard(2, "t", stream=io.StringIO(), clock_hz=168_000_000, emulated=True,
                         cpi=1.5)
    dash.on_result(_ok(0, cycles=1_680_000, unit="instructions (qemu icount)", tokens=3,
                       text="wake me up", correct=None))
    assert dash.latencies == [pytest.approx(15.0)]
    view = _view(dash, 140)
    assert "latency ms, estimated (instructions (qemu icount) x 1.50 CPI / 168 MHz)" in view
    assert re.search(r"0 +exact +- +wake me up +1 +1 +3 +15\.000", view)
    bare = LiveDashboard(2, "t", stream=io.StringIO(), clock_hz=168_000_000, emulated=True)
    bare.on_result(_ok(0, cycles=1_680_000, unit="instructions (qemu icount)", tokens=3,
                       text="wake me up", correct=None))
    assert bare.latencies == [1_680_000] and "latency ms" not in _view(bare, 140)


def test_spark_shape() -> None:
    assert spark([]) == ""
    s = spark([1, 1, 1, 1, 2], bins=4)
    assert len(s) == 4 and s[0] == "█" and s[1] == " " and s[-1] != " "
