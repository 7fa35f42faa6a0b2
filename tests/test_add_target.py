"""docs/design.md, "Add a target", done for real: a new kind of target is its class, its line in
TARGETS and the kind in a board's `targets`, and then `hil run`, `hil boards`, `hil doctor`,
the session and the reports work with it, with nothing else changed.

The new kind here is `pipe`: the native firmware on plain pipes instead of a pty (a way a CI
sandbox without ptys could run it). It exists only in this test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hil import cli
from hil.boards import BOARDS
from hil.targets import TARGETS
from hil.targets.base import ManagedProcess, Transcript
from hil.targets.native import NativeTarget

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="gcc/make not installed (native board)")


class PipeLink:
    """Just enough of a StreamLink over the child's stdout/stdin pipes (hil.targets.base.FdLink
    reads one fd and writes the same one; pipes are two)."""


class PipeTarget(NativeTarget):
    """Step 1 of "Add a target": the class, with its facts."""

    kind = "pipe"
    hello_timeout_s = 20.0
    latency_wording = "host nanoseconds (native process on pipes)"

    def start(self):  # type: ignore[no-untyped-def]
        from hil.targets.base import FdLink

        r_host, w_child = os.pipe()
        r_child, w_host = os.pipe()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.proc = ManagedProcess(self.command, stdin=r_child, stdout=w_child,
                                   stderr=subprocess.DEVNULL, close_fds=True)
        os.close(r_child)
        os.close(w_child)

        class TwoFdLink(FdLink):
            def _send(self, data: bytes) -> None:
                view = memoryview(data)
                while view:
                    view = view[os.write(w_host, view):]

            def _close_stream(self) -> None:
                os.close(self.fd)
                os.close(w_host)

        self.link = TwoFdLink(self.name, Transcript(self.log_path), r_host)
        self.link.describe_exit = self.proc.exit_reason
        self.link.start()
        return self.link


@pytest.fixture
def pipe_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps 2 and 3: one line in TARGETS, the kind in the native board's targets."""
    monkeypatch.setitem(TARGETS, "pipe", PipeTarget)
    board = dataclasses.replace(BOARDS["native"], targets=("native", "pipe"))
    monkeypatch.setitem(BOARDS, "native", board)


def test_a_new_kind_runs_end_to_end(pipe_kind: None, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = cli.main(["run", "--board", "native", "--target", "pipe", "--limit", "12",
                     "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["target"] == "pipe" and summary["summary"]["agreement"] == 1.0
    assert summary["summary"]["latency_ms"]["source"] == PipeTarget.latency_wording
    assert "pipe" in (out / "report.html").read_text()
    assert cli.main(["boards"]) == 0
    assert "pipe (yes)" in capsys.readouterr().out


def test_a_new_kind_unknown_to_a_board_is_refused(pipe_kind: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--board", "mps2-an386", "--target", "pipe"]) == 2
    assert "does not run on pipe" in capsys.readouterr().err
