"""The host's recovery paths on real firmware (native) behind a fault-injecting link: a lost
request and a damaged request are re-sent (the device answers the damaged one with BAD_FRAME), a
device that stops listening is timed out, rebooted and the run goes on, and `--resume` retries
the sentences that timed out. Then the fault model of issue #17: the boot handshake is spared
unless `boot=1`, and per-frame rates hit whole lines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_reliability import _Sink

from hil.boards import BOARDS
from hil.results import read_results
from hil.runner import RunConfig, run
from hil.scenario import load_scenario
from hil.targets import NativeTarget
from hil.targets.faulty import Faults, FaultyLink, FaultyTarget, parse_faults

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
needs_native = pytest.mark.skipif(shutil.which("gcc") is None or not MODEL.is_file(),
                                  reason="gcc/make and the shipped nlu_scenario model needed")


def config(out: Path, faults: Faults, **kw) -> RunConfig:
    def factory(board, run_dir, elf, name):
        return FaultyTarget(NativeTarget(board, run_dir, elf=elf, name=name), faults)

    return RunConfig(board=BOARDS["native"], target="native",
                     scenario=load_scenario("nlu_scenario"), model_path=MODEL, out_dir=out,
                     limit=8, target_factory=factory, **kw)


@needs_native
def test_lost_and_damaged_requests_are_resent(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, s = run(config(out, Faults(drop={3}, corrupt={5}), timeout_s=1.0, retries=2))
    assert s["error"] is None and s["summary"]["errors"] == 0
    assert s["summary"]["sentences"] == 8 and s["summary"]["agreement"] == 1.0
    log = (out / "native-native-job0.log").read_text()
    assert "fault: request 3 dropped" in log and "fault: request 5 corrupted" in log
    assert "ERROR code=BAD_FRAME" in log  # the device saw the damage and said so


@needs_native
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


# ---- issue #17: faults after the boot handshake, per-frame rates ------------------------------


def test_parse_frame_rates_and_boot() -> None:
    f = parse_faults("corrupt_frame=0.01,drop_frame=0.02,boot=1")
    assert (f.frame_corrupt, f.frame_drop, f.boot, f.byte_corrupt) == (0.01, 0.02, 1, 0.0)
    assert f.active() and parse_faults("drop_frame=0.5").active()
    for bad in ("boot=2", "drop_frame=1.5", "byte_drop=0.1", "frame_drop=0.1"):
        with pytest.raises(ValueError, match="--faults"):
            parse_faults(bad)


def test_boot_handshake_is_clean_unless_boot_1() -> None:
    """Issue #17: the boot greeting is read undamaged (the link arms at the first request that is
    not a HELLO); `boot=1` damages it too."""
    hello = b"$0 HELLO*00000000\n" * 50
    for spec, clean in (("corrupt=0.05,drop=0.05,seed=2", True),
                        ("corrupt=0.05,drop=0.05,seed=2,boot=1", False)):
        sink = _Sink()
        link = FaultyLink(sink, parse_faults(spec))  # type: ignore[arg-type]
        assert (link.read(0.1) == hello) is clean
        link.write(b"$1 HELLO*00000000\n")  # a HELLO request does not arm it
        assert (link.read(0.1) == hello) is clean
        link.write(b"$2 CLASSIFY hi*00000000\n")  # the first sentence does
        assert link.read(0.1) != hello


def test_frame_faults_hit_whole_lines_and_wait_for_a_line_end() -> None:
    """drop_frame loses whole lines, corrupt_frame flips one bit in a line; a partial line is
    held until its end comes (or a read comes back empty)."""
    sink = _Sink()
    link = FaultyLink(sink, parse_faults("drop_frame=0.3,corrupt_frame=0.3,seed=4")
                      )  # type: ignore[arg-type]
    link.armed = True
    lines = [b"$7 RESULT pred=1 logits=1,2,3*00000000\n"] * 200
    got = bytearray()
    for ln in lines:  # each frame arrives in two reads
        sink.read = lambda _t, _b=ln[:10]: _b  # type: ignore[method-assign]
        assert link.read(0.1) == b""
        sink.read = lambda _t, _b=ln[10:]: _b  # type: ignore[method-assign]
        got += link.read(0.1)
    c, size = link.stats.as_dict(), len(lines[0])  # a bit flip keeps the length
    out = [bytes(got[i:i + size]) for i in range(0, len(got), size)]
    assert len(got) == size * len(out) and len(out) == 200 - c["drop_frame"]
    assert 40 < c["drop_frame"] < 80 and 30 < c["corrupt_frame"] < 70
    assert sum(x != lines[0] for x in out) == c["corrupt_frame"]
    sink.read = lambda _t: b"$9 RESULT no end"  # type: ignore[method-assign]
    assert link.read(0.1) == b""
    sink.read = lambda _t: b""  # type: ignore[method-assign]
    assert link.read(0.1) == b"$9 RESULT no end"
