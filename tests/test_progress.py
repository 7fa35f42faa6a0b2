"""Progress (hil.progress) is drawn on a terminal's stderr and nowhere else.

Why these tests: the commands' stdout and piped stderr are compared byte for byte by other
tests and read by scripts, so progress must appear only when stderr is a terminal, and a
command run on a pty must really show it (a helper that is never drawn would pass every
pipe-only test).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hil import progress

ROOT = Path(__file__).resolve().parents[1]


class _Tty(io.StringIO):
    """A stderr that says it is a terminal, so rich draws into a string."""

    def isatty(self) -> bool:
        return True


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    assert not progress.is_terminal()
    with progress.status("building x"):
        pass
    with progress.Bar("calibrating", 3) as bar:
        bar.advance(3)
    assert capsys.readouterr() == ("", "")


def test_spinner_and_bar_draw_on_a_terminal_and_nest_without_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.setenv("TERM", "xterm")
    assert progress.is_terminal()
    with progress.status("building native for demo"):
        with progress.Bar("inner", 2) as inner:  # a second live display: drawn as nothing
            inner.advance(2)
    with progress.Bar("calibrating", 4) as bar:
        bar.advance(4)
    assert "building native for demo" in fake.getvalue()
    assert "calibrating" in fake.getvalue()
    assert "inner" not in fake.getvalue()
    assert progress._live == 0


def test_training_bar_on_a_terminal_keeps_the_log_lines_of_a_piped_stdout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from hil.model.loop import Progress

    fake, lines = _Tty(), []
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.setenv("TERM", "xterm")
    bar = Progress(2, "finetune", lines.append, every=0.0)
    bar.update(1, "loss 0.50")
    bar.log("dev acc 90.0")
    bar.update(2, "loss 0.25")
    bar.close()
    assert "finetune" in fake.getvalue() and "loss 0.25" in fake.getvalue()
    assert lines == ["finetune step 1/2 loss 0.50", "dev acc 90.0",
                     "finetune step 2/2 loss 0.25"]  # stdout (pytest's capture) is no terminal


def test_int8_predictions_in_chunks_under_a_bar_are_the_reference_s(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    import numpy as np

    from hil.quant import reference
    from hil.quant.quantize import predict_int8, random_quant_model

    qm = random_quant_model(n_layers=1, calib=8, max_len=32)
    rng = np.random.default_rng(1)
    seqs = [[2, *map(int, rng.integers(5, 8000, int(rng.integers(1, 30))))] for _ in range(37)]
    fake = _Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.setenv("TERM", "xterm")
    got = predict_int8(qm, seqs, desc="int8 on test")
    assert (got == reference.predict(qm, seqs)).all()
    assert "int8 on test" in fake.getvalue()


def _build(stderr_pty: bool, cache: Path) -> tuple[int, str, str]:
    """`hil build --board native` with stderr a pty (read through its master) or a pipe."""
    env = {**os.environ, "HIL_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT), "TERM": "xterm"}
    argv = [sys.executable, "-m", "hil.cli", "build", "--board", "native",
            "--model", "nlu_scenario"]
    if not stderr_pty:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        return proc.returncode, proc.stdout, proc.stderr
    master, slave = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # keep the pty from filling while make runs
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=slave,
                             stdin=subprocess.DEVNULL, text=True)
        os.close(slave)
        out, _ = p.communicate(timeout=600)
        reader.join(timeout=10)
    finally:
        os.close(master)
    return p.returncode, out, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                    reason="native build needs gcc and make")
def test_build_shows_a_spinner_on_a_pty_and_nothing_when_piped(tmp_path: Path) -> None:
    if not (ROOT / "hil" / "models" / "nlu_scenario" / "model.bin").is_file():
        pytest.skip("no shipped nlu_scenario model")
    cache = tmp_path / "cache"
    code, out_tty, err_tty = _build(True, cache)
    assert code == 0, (out_tty, err_tty)
    assert "building native for nlu_scenario" in err_tty
    assert "\x1b[" in err_tty  # rich's cursor control: a live spinner, not a plain line
    code, out_pipe, err_pipe = _build(False, cache)  # same cache: same ELF path on stdout
    assert code == 0, (out_pipe, err_pipe)
    assert err_pipe == ""
    assert out_pipe == out_tty  # progress never touches stdout
