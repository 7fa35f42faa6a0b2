"""The Renode-native suites (renode/tests/*.robot) run here without Renode: a stub library with
Renode 1.15's keyword signatures (tests/acceptance/stubs/RenodeUartStub.py) wires their UART to
the native firmware, so every frame they send (CRC included) and every line they wait for (regex
included) meets the real protocol. Renode itself runs them in CI (antmicro/renode-test-action).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# <board>-hil.robot suites use hil.robot itself next to Renode's keywords: attached to a socket
# that a real Renode serves, with Renode's own instruction counter. No stub stands in for that;
# they run on Renode only (renode-test, .ci/run's renode-test part), like the others there.
SUITES = sorted(s for s in (ROOT / "renode" / "tests").glob("*.robot")
                if not s.stem.endswith("-hil"))

# Marked `renode` so `pytest -m renode` checks the Renode suites' frames against a real device
# too; this module itself does not start Renode (renode-test runs the suites on Renode).
pytestmark = [pytest.mark.renode,
              pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                 reason="needs gcc and make for the native firmware")]


@pytest.fixture(scope="module")
def native_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hil import firmware as fw
    from hil.boards import get_board
    from hil.scenario import resolve_model

    return fw.build(get_board("native"), resolve_model("nlu_scenario"),
                    dest=tmp_path_factory.mktemp("native") / "firmware.elf")


@pytest.mark.parametrize("suite", SUITES, ids=[s.stem for s in SUITES])
def test_renode_suite_against_the_native_firmware(suite: Path, native_elf: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import robot
    from robot.api import SuiteVisitor

    class AddStub(SuiteVisitor):  # what renode-test does with renode-keywords.robot
        def start_suite(self, s: object) -> None:
            s.resource.imports.library("RenodeUartStub")  # type: ignore[attr-defined]
            for test in s.tests:  # type: ignore[attr-defined]
                test.teardown.config(name="RenodeUartStub.Stop")

    monkeypatch.setenv("RENODE_STUB_ELF", str(native_elf))
    rc = robot.run(str(suite), outputdir=str(tmp_path), variable=["BOARD:native"],
                   pythonpath=[str(ROOT / "tests" / "acceptance" / "stubs")],
                   prerunmodifier=[AddStub()], console="none", report="NONE", log="NONE")
    from robot.api import ExecutionResult

    result = ExecutionResult(str(tmp_path / "output.xml"))
    failed = [f"{t.name}: {t.message}" for t in result.suite.all_tests if t.status != "PASS"]
    assert rc == 0 and not failed, failed
    assert result.suite.statistics.passed == len(list(result.suite.all_tests)) >= 3
