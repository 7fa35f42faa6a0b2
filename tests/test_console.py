"""`hil console`, against the real `native` board (the `hil run --live` view: tests/test_live.py).

The interactive console is driven the way a person drives it: `hil console --board native` runs
under a pseudo-terminal (so rich sees a terminal and Ctrl-C is a real SIGINT from the line
discipline), the test types sentences, reads the screen (the bytes after the last clear-screen,
escape codes stripped) and checks what is shown against the host's own tokenizer and integer
reference. Killing the firmware process stands in for a board that dies; the console must say so
and reboot it.
"""

from __future__ import annotations

import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_live import Tmux
from test_targets import pid_alive

from hil import cli
from hil.boards import BOARDS
from hil.oracle import softmax

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
HAVE_GCC = shutil.which("gcc") is not None and shutil.which("make") is not None
pytestmark = [
    pytest.mark.skipif(not HAVE_GCC, reason="gcc/make not installed (native board)"),
    pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped nlu_scenario model.bin"),
]
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]")
CLEAR = "\x1b[2J"  # what rich's Console.clear() writes before each redraw


@pytest.fixture(scope="module")
def native_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hil.firmware import build

    dest = tmp_path_factory.mktemp("fw") / "firmware.elf"
    return build(BOARDS["native"], SHIPPED, dest=dest)


@pytest.fixture(scope="module")
def oracle() -> object:
    from hil.oracle import Oracle

    return Oracle(SHIPPED)


def _labels() -> list[str]:
    from hil.quant.blob import read_blob

    return list(read_blob(SHIPPED.read_bytes()).meta["labels"])


class PtyConsole:
    """`hil console` on a pty: write keys, read what the screen shows."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.master, slave = os.openpty()
        os.set_blocking(self.master, False)
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "60"}
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                                     env=env, start_new_session=True,
                                     preexec_fn=self._controlling_tty(slave))
        os.close(slave)
        self.raw = ""

    @staticmethod
    def _controlling_tty(slave: int):  # noqa: ANN205 - a preexec hook
        def hook() -> None:
            import fcntl
            import termios

            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)  # Ctrl-C must reach us as SIGINT
            # ...and be acted on: a shell's `cmd &` (no job control) leaves SIGINT ignored,
            # and an ignored disposition survives exec; a user's terminal has the default.
            signal.signal(signal.SIGINT, signal.SIG_DFL)

        return hook

    def pump(self, timeout: float = 0.2) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                self.raw += os.read(self.master, 65536).decode("utf-8", "replace")
            except OSError:  # EIO: the console exited and closed the pty
                time.sleep(timeout)

    def screen(self) -> str:
        """The text of the latest full redraw (after the last clear), escapes removed."""
        return ANSI.sub("", self.raw.rsplit(CLEAR, 1)[-1]).replace("\r", "")

    def wait_for(self, pattern: str, timeout: float = 30.0, whole: bool = False) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump()
            text = ANSI.sub("", self.raw) if whole else self.screen()
            if re.search(pattern, text):
                return text
            if self.proc.poll() is not None:
                self.pump()
                text = ANSI.sub("", self.raw) if whole else self.screen()
                if re.search(pattern, text):
                    return text
                break
        raise AssertionError(f"{pattern!r} not shown within {timeout} s; screen:\n"
                             f"{self.screen()[-3000:]}\nexit: {self.proc.poll()}")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        os.close(self.master)


_alive = pid_alive  # a zombie counts as dead (tests/test_targets.py)


def test_console_on_a_pty_shows_the_answer_survives_a_dead_board_and_ctrl_c_stops_it(
        native_elf: Path, oracle: object, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "hil.cli", "console", "--board", "native", "--elf",
            str(native_elf), "--out", str(tmp_path / "logs")]
    con = PtyConsole(argv, ROOT)
    try:
        screen = con.wait_for(r"sentence>")
        first_pid = int(re.search(r"link up \(pid (\d+)\)", screen).group(1))  # type: ignore[union-attr]
        assert "board native" in screen and "target native" in screen
        assert "model 1C201747" in screen or re.search(r"model [0-9A-F]{8}", screen)

        text = "set an alarm for seven am tomorrow"
        con.type(text + "\r")
        screen = con.wait_for(r"reference .*\n(.|\n)*sentence>")
        ids = oracle.ids(text)  # type: ignore[attr-defined]
        ref = oracle.logits(ids)  # type: ignore[attr-defined]
        want = _labels()[max(range(len(ref)), key=lambda i: (ref[i], -i))]
        assert re.search(rf"label\s+{want}\s+\(\d+\.\d%\)", screen), screen
        assert "host-computed" in screen  # the probabilities say where they come from
        toks = " ".join(oracle.tokenizer.id_to_token(i) for i in ids)  # type: ignore[attr-defined]
        assert toks in screen  # device ids shown as host vocabulary strings
        assert f"token count  {len(ids)} " in screen and "same ids as the host" in screen
        assert re.search(r"[\d,]+ ns \(host\)\s+->\s+latency \d+\.\d{3} ms", screen)
        assert "emulated" not in screen.split("cost", 1)[1].split("\n", 1)[0]  # native: real
        assert re.search(r"stack high-water [\d.]+ (B|KiB)\s+arena high-water [\d.]+ (B|KiB)",
                         screen)  # 1024 B reads "1.0 KiB"
        assert "bit-exact with the host integer reference" in screen

        con.type("what is the weather like in paris\r")
        screen = con.wait_for(r"#2 +what is the weather(.|\n)*sentence>")
        assert re.search(r"│\s+1 │ set an alarm for seven am tomorrow", screen), screen  # history

        os.kill(first_pid, signal.SIGKILL)  # the board dies under the console
        time.sleep(0.3)
        con.type("play some music\r")
        screen = con.wait_for(r"#3 +play some music(.|\n)*sentence>")
        assert "link was down" in screen or "link lost" in screen
        assert "rebooted and reconnected" in screen
        second_pid = int(re.search(r"link up \(pid (\d+)\)", screen).group(1))  # type: ignore[union-attr]
        assert second_pid != first_pid and _alive(second_pid)
        assert "bit-exact with the host integer reference" in screen  # answered after reboot

        con.type(":reset\r")  # the device reboots on request: the screen says so
        screen = con.wait_for(r"device reset: fresh HELLO received(.|\n)*sentence>")
        con.type("wake me up at six\r")
        screen = con.wait_for(r"#4 +wake me up at six(.|\n)*sentence>")
        assert "bit-exact with the host integer reference" in screen

        con.type("\x03")  # Ctrl-C
        con.wait_for(rf"stopped native \(pid {second_pid}\)", timeout=15, whole=True)
        assert con.proc.wait(10) == 0
        assert not _alive(second_pid)  # the console stopped the board it started
    finally:
        con.close()


def test_console_plain_lines_from_a_pipe(native_elf: Path, oracle: object, tmp_path: Path
                                         ) -> None:
    sentences = ["show alarms", "", "turn the lights off in the kitchen", "x" * 3000,
                 "what's on my calendar for friday"]
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "console", "--board", "native", "--elf",
         str(native_elf), "--out", str(tmp_path)],
        input="\n".join(sentences) + "\n", capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr  # a refused sentence (TOO_LONG) is not a pass
    lines = proc.stdout.splitlines()
    assert len(lines) == 4, proc.stdout  # one line per sentence on stdout
    assert "# line 2: empty, nothing sent" in proc.stderr  # the blank line is answered
    assert "\x1b[" not in proc.stdout  # no escape codes without a terminal
    labels = _labels()
    for line, text in zip([lines[0], lines[1], lines[3]], [sentences[0], sentences[2],
                                                          sentences[4]], strict=True):
        ref = oracle.logits(oracle.ids(text))  # type: ignore[attr-defined]
        want = labels[max(range(len(ref)), key=lambda i: (ref[i], -i))]
        assert f"label={want} " in line and "ref=bit-exact" in line, line
        assert re.search(r"cycles=\d+\[ns \(host\)\]", line) and f"text={text!r}" in line
    assert "status=error" in lines[2] and "TOO_LONG" in lines[2]  # the device refused it
    assert re.search(r"stopped native \(pid \d+\)", proc.stderr)


def test_hil_console_rejects_a_board_target_mismatch(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["console", "--board", "native", "--target", "qemu"]) == 2
    assert "does not run on qemu" in capsys.readouterr().err


def test_console_survives_input_that_is_not_utf8(native_elf: Path, tmp_path: Path) -> None:
    """B1: invalid UTF-8 piped in used to crash the console with a traceback. Now that line is
    an error with the reason, the next line is answered, and the exit code says one was refused."""
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "console", "--board", "native", "--elf",
         str(native_elf), "--out", str(tmp_path)],
        input=b"show alarms\nbad \xff\xfe bytes\nplay music\n", capture_output=True,
        timeout=60, cwd=ROOT)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert "Traceback" not in err and proc.returncode == 1, err
    lines = out.splitlines()
    assert len(lines) == 3 and "ref=bit-exact" in lines[0] and "ref=bit-exact" in lines[2]
    assert "status=error" in lines[1] and "bad input, not sent" in lines[1]
    assert "not valid Unicode" in lines[1]


# ---- issue #19: line editing, history, commands, truncation, confidence, small terminals ----


def _console_in_tmux(elf: Path, tmp: Path, cols: int, rows: int, *extra: str) -> Tmux:
    return Tmux([sys.executable, "-m", "hil.cli", "console", "--board", "native", "--elf",
                 str(elf), "--out", str(tmp / "logs"), "--history", str(tmp / "history"),
                 *extra], cols, rows)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
@pytest.mark.parametrize("cols,rows", [(80, 24), (160, 45)])
def test_console_fits_the_terminal_status_and_label_stay_on_screen(
        native_elf: Path, oracle: object, tmp_path: Path, cols: int, rows: int) -> None:
    """At 80x24 the status bar and the label used to scroll off the top. tmux is the terminal:
    capture-pane is exactly what a person sees."""
    term = _console_in_tmux(native_elf, tmp_path, cols, rows)
    try:
        term.wait_for(r"sentence>")
        texts = ["set an alarm for seven am tomorrow", "what is the weather like in paris",
                 "play the next song by the beatles", "order a large pepperoni pizza",
                 "how many calories are in an avocado"]
        for n, text in enumerate(texts, 1):
            term.keys(text, "Enter")
            screen = term.wait_for(rf"#{n} +{text}(.|\n)*sentence>")
        lines = screen.rstrip("\n").split("\n")
        assert len(lines) <= rows
        assert lines[0].startswith("board native  target native"), screen  # the top row
        ref = oracle.logits(oracle.ids(texts[-1]))  # type: ignore[attr-defined]
        want = _labels()[max(range(len(ref)), key=lambda i: (ref[i], -i))]
        assert re.search(rf"label\s+{want}\s+\(\d+\.\d%\)", screen), screen
        assert "bit-exact with the host integer reference" in screen
        assert max(len(ln) for ln in lines) <= cols
        if rows >= 45:  # room for everything: full bars, the history of the first four
            assert "host-computed" in screen and "history" in screen
            for n, text in enumerate(texts[:4], 1):
                assert re.search(rf"│\s+{n} │ {text}", screen), screen
        assert re.search(r"sentence>\s*$", screen)  # the prompt is the last thing shown
    finally:
        term.close()


def test_console_line_editing_history_across_runs_and_commands(
        native_elf: Path, tmp_path: Path) -> None:
    """Up and Left used to print `^[[A^[[D`. Now: Left moves in the line, Up recalls earlier
    sentences, also those of an earlier run (a history file); `:` words are commands."""
    hist = tmp_path / "history"
    argv = [sys.executable, "-m", "hil.cli", "console", "--board", "native", "--elf",
            str(native_elf), "--out", str(tmp_path / "logs"), "--history", str(hist)]
    con = PtyConsole(argv, ROOT)
    try:
        con.wait_for(r"sentence>")
        con.type("play musc" + "\x1b[D" + "i\r")  # Left, then insert: "play music"
        screen = con.wait_for(r"#1 +play music\b(.|\n)*sentence>")
        assert "^[[" not in screen
        con.type("\x04")  # Ctrl-D leaves
        assert con.proc.wait(15) == 0
    finally:
        con.close()
    assert "play music" in hist.read_text()
    con = PtyConsole(argv, ROOT)  # a new run: Up recalls the last one's sentence
    try:
        con.wait_for(r"sentence>")
        con.type("\x1b[A\r")
        con.wait_for(r"#1 +play music\b(.|\n)*sentence>")
        con.type(":help\r")
        screen = con.wait_for(r":model(.|\n)*sentence>")
        assert all(c in screen for c in (":help", ":reset", ":quit", ":stats"))
        assert "#2" not in screen  # a command is not a sentence
        con.type(":model\r")
        screen = con.wait_for(r"labels: alarm(.|\n)*sentence>")
        assert re.search(r"model nlu_scenario .*id [0-9A-F]{8}", screen)
        assert "max 64 tokens" in screen.replace("\n", " ")
        con.type(":stats\r")
        screen = con.wait_for(r"device \(STATS(.|\n)*sentence>")
        assert re.search(r"requests \d+, errors 0, uptime \d+", screen)
        assert "session: 1 sentences, ok 1" in screen
        con.type("\r")  # an empty line is answered, not dropped silently
        con.wait_for(r"empty, nothing sent(.|\n)*sentence>")
        con.type(":frobnicate\r")
        con.wait_for(r"unknown command :frobnicate(.|\n)*sentence>")
        con.type(":quit\r")
        assert con.proc.wait(15) == 0
    finally:
        con.close()


def test_console_says_truncated_and_flags_low_confidence(native_elf: Path, oracle: object,
                                                        tmp_path: Path) -> None:
    """A 700-character sentence was cut to 64 tokens without a word, and nonsense was shown in
    green; percentages are floored, so 99.96% never shows as 100%."""
    long = " ".join(["please set an alarm for seven tomorrow morning"] * 15)
    argv = [sys.executable, "-m", "hil.cli", "console", "--board", "native", "--elf",
            str(native_elf), "--out", str(tmp_path / "logs"), "--history", ""]
    con = PtyConsole(argv, ROOT)
    try:
        con.wait_for(r"sentence>")
        con.type(long + "\r")
        screen = con.wait_for(r"reference(.|\n)*sentence>")
        full = len(oracle.tokenizer.encode(long, max_len=1 << 30))  # type: ignore[attr-defined]
        assert full > 64 and f"truncated to 64 of {full} tokens" in screen, screen
        assert not re.search(r"\b100\.0%", screen)
        con.type("xqzv blorp\r")
        screen = con.wait_for(r"#2 +xqzv blorp(.|\n)*sentence>")
        assert re.search(r"label\s+\w+\s+\(\d+\.\d%\)\s+LOW CONFIDENCE: below "
                         r"--min-confidence 80%", screen), screen
    finally:
        con.close()
    proc = subprocess.run(argv[:-2] + ["--min-confidence", "0.5"],
                          input=f"xqzv blorp\n{long}\nset an alarm for seven am tomorrow\n",
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    lines = proc.stdout.splitlines()
    assert "confidence=LOW" not in lines[0]  # 79.5% passes a 0.5 threshold
    assert f"truncated=64/{full}" in lines[1]
    # floored to 3 decimals, never rounded up to 1.000 (the model is sure of this one)
    probs = softmax(oracle.logits(oracle.ids("set an alarm for seven am tomorrow")),  # type: ignore[attr-defined]
                    oracle.logit_scale)  # type: ignore[attr-defined]
    shown = math.floor(max(probs) * 1000) / 1000
    assert max(probs) > 0.99 and f"p={shown:.3f}(host)" in lines[2], (max(probs), lines[2])
