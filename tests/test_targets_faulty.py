"""The host's recovery paths on real firmware (native) behind a fault-injecting link: a lost
request and a damaged request are re-sent (the device answers the damaged one with BAD_FRAME), a
device that stops listening is timed out, rebooted and the run goes on, and `--resume` retries
the sentences that timed out."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hil.boards import BOARDS
from hil.results import read_results
from hil.runner import RunConfig, run
from hil.scenario import load_scenario
from hil.targets import NativeTarget
from hil.targets.faulty import Faults, FaultyTarget

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
pytestmark = [
    pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc/make needed (native board)"),
    pytest.mark.skipif(not MODEL.is_file(), reason="no shipped nlu_scenario model"),
]


def config(out: Path, faults: Faults, **kw) -> RunConfig:
    def factory(board, run_dir, elf, name):
        return FaultyTarget(NativeTarget(board, run_dir, elf=elf, name=name), faults)

    return RunConfig(board=BOARDS["native"], target="native",
                     scenario=load_scenario("nlu_scenario"), model_path=MODEL, out_dir=out,
                     limit=8, target_factory=factory, **kw)


def test_lost_and_damaged_requests_are_resent(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, s = run(config(out, Faults(drop={3}, corrupt={5}), timeout_s=1.0, retries=2))
    assert s["error"] is None and s["summary"]["errors"] == 0
    assert s["summary"]["sentences"] == 8 and s["summary"]["agreement"] == 1.0
    log = (out / "native-native-job0.log").read_text()
    assert "fault: request 3 dropped" in log and "fault: request 5 corrupted" in log
    assert "ERROR code=BAD_FRAME" in log  # the device saw the damage and said so


def test_deaf_device_is_rebooted_and_resume_retries(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, s = run(config(out, Faults(deaf_from=4), timeout_s=0.5, retries=1))
    records = read_results(out / "results.jsonl")
    assert [r["status"] for r in records] == ["ok"] * 3 + ["timeout"] + ["ok"] * 3 + ["timeout"]
    assert records[3]["error"]["code"] == "TIMEOUT"
    assert "no answer within 0.5 s" in records[3]["error"]["reason"]
    # Unanswered sentences are not a pass (exit 3), and the summary says how to resume them.
    assert code == 3 and s["summary"]["errors"] == 2
    assert "2 selected sentence(s) unanswered" in s["error"] and "--resume" in s["error"]
    assert s["summary"]["agreement"] == 1.0  # every answer that came is bit-exact
    assert (out / "native-native-job0-reboot3.log").is_file()  # a fresh boot after the timeout
    code, s = run(config(out, Faults(), resume=True))
    assert s["throughput"]["processed_this_run"] == 2  # only the two that timed out
    assert [r["status"] for r in read_results(out / "results.jsonl")] == ["ok"] * 8
    assert code == 0 and s["summary"]["errors"] == 0 and s["complete"]
