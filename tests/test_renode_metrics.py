"""Renode's opcode counters, guest profile and execution metrics (hil.targets.renode_metrics),
and their section of report.html.

The parsers read real Renode 1.15.1 outputs committed under tests/data/renode_metrics (README
there says how each was made). One end-to-end test starts Renode for 2 sentences on stm32f4 with
the measuring target and checks that the inference function is in the profile and the opcode
histogram is not empty; it skips where Renode or the Arm toolchain is absent.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from hil.report import analyse, load_run
from hil.report_html import render_html
from hil.report_svg import flame, hbars
from hil.targets import renode_metrics as rm
from hil.targets.renode import find_renode

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "renode_metrics"
INFERENCE = "ebq_forward"  # firmware/src/forward.c: one sentence's inference


def test_patterns_are_16_bit_first_halfword_patterns_ending_in_a_catch_all() -> None:
    """Renode 1.15.1 shows a Thumb-2 instruction's first halfword only, first match wins: every
    pattern is 16 bits, and the last one catches whatever the others did not name."""
    assert all(re.fullmatch(r"[01x]{16}", p) for _, p in rm.THUMB_PATTERNS)
    assert rm.THUMB_PATTERNS[-1][1] == "x" * 16
    assert len(rm.THUMB_PATTERNS) < 100  # counter names c00..c99


def test_setup_and_collect_commands(tmp_path: Path) -> None:
    cheap = rm.setup_commands(tmp_path, "renode-stm32f4-job0", profile=False)
    assert cheap[0] == "sysbus.cpu EnableOpcodesCounting true"
    assert not any("Profiler" in c for c in cheap)
    prof = rm.setup_commands(tmp_path, "renode-stm32f4-job0", profile=True)
    assert f"sysbus.cpu EnableProfilerCollapsedStack @{tmp_path.resolve()}/" \
           f"renode-stm32f4-job0.profile.folded false" in prof
    assert not any(c.startswith("machine") for c in prof)  # the costly log is asked for apart
    assert any(c.startswith("machine EnableProfiler @") for c in rm.setup_commands(
        tmp_path, "x", profile=True, execution_metrics=True))
    collect = rm.collect_commands(tmp_path, "x", profile=True)
    assert collect[0] == "sysbus.cpu FlushProfiler" and "SaveAllOpcodesCounters" in collect[-1]


def test_parse_real_opcode_counters() -> None:
    ops = rm.parse_opcodes((DATA / "opcodes.txt").read_text())
    assert ops["counted"] == sum(ops["groups"].values()) == sum(ops["widths"].values())
    assert ops["counted"] > 8_000_000
    # the int8 kernels are SMLAD-bound: it must be one of the busiest groups
    assert "smlad/smuad" in list(ops["groups"])[:3]
    assert list(ops["groups"].values()) == sorted(ops["groups"].values(), reverse=True)
    assert rm.parse_opcodes("garbage\nc99999;5\n;\n")["counted"] == 0


def test_parse_real_collapsed_stacks() -> None:
    lines = (DATA / "raw.folded").read_text().splitlines()
    stacks = rm.parse_folded(lines)
    assert sum(stacks.values()) == sum(int(x.rsplit(" ", 1)[1]) for x in lines)
    assert len(stacks) < len(lines)  # equal stacks summed
    assert not any("(entry)" in s for s in stacks)
    assert any(s.split(";")[-1] == INFERENCE for s in stacks)
    table = {f["function"]: f for f in rm.function_table(stacks)}
    assert table["Reset_Handler"]["total"] == sum(n for s, n in stacks.items()
                                                  if s.startswith("Reset_Handler"))
    assert table[INFERENCE]["self"] <= table[INFERENCE]["total"]


def test_profile_summary_finds_interrupt_handlers() -> None:
    stacks = rm.parse_folded((DATA / "aggregated.folded").read_text().splitlines())
    prof = rm.profile_summary(stacks)
    assert prof["total"] == sum(stacks.values())
    assert "board_uart_irq" in prof["handlers"] and "Reset_Handler" not in prof["handlers"]
    assert prof["functions"][0]["function"] == "Reset_Handler"


def test_parse_real_metrics_log() -> None:
    ex = rm.parse_metrics((DATA / "metrics.bin").read_bytes())
    assert ex["memory"]["reads"] + ex["memory"]["writes"] == 300
    assert ex["exceptions"] == {"interrupt (IRQ)": 58}
    assert "usart2" in ex["peripherals"]  # the stm32f4 console UART, by its address
    assert ex["cpus"]["cpu"] > 0 and ex["virtual_time_ms"] > 0
    # truncated log: keeps what was read, does not raise
    cut = (DATA / "metrics.bin").read_bytes()[:-5]
    assert rm.parse_metrics(cut)["exceptions"]["interrupt (IRQ)"] == 57


def _fake_instance(run_dir: Path, name: str) -> None:
    shutil.copy(DATA / "opcodes.txt", run_dir / f"{name}{rm.OPCODES}")
    shutil.copy(DATA / "raw.folded", run_dir / f"{name}{rm.FOLDED}")
    shutil.copy(DATA / "metrics.bin", run_dir / f"{name}{rm.METRICS}")


def test_collect_and_merge_add_up_instances(tmp_path: Path) -> None:
    for name in ("a", "b"):
        _fake_instance(tmp_path, name)
        one = rm.collect(tmp_path, name)
        assert not (tmp_path / f"{name}{rm.METRICS}").exists()  # parsed, then deleted
    assert rm.collect(tmp_path, "b") == one  # a second stop() keeps what the first parsed
    merged = rm.merge(tmp_path)
    ops, prof = merged["renode_metrics"]["opcodes"], merged["profile"]
    assert ops["counted"] == 2 * one["renode_metrics"]["opcodes"]["counted"]
    assert prof["total"] == 2 * one["profile"]["total"]
    assert merged["renode_metrics"]["instances"] == 2
    assert merged["renode_metrics"]["execution"]["memory"]["reads"] == \
        2 * one["renode_metrics"]["execution"]["memory"]["reads"]
    # the folded file was rewritten aggregated and still parses to the same stacks
    again = rm.parse_folded((tmp_path / f"a{rm.FOLDED}").read_text().splitlines())
    assert sum(again.values()) == one["profile"]["total"]
    assert rm.merge(tmp_path / "nothing-here") == {}


def test_flame_and_hbars_svg() -> None:
    stacks = rm.parse_folded((DATA / "aggregated.folded").read_text().splitlines())
    svg = flame(dict(stacks), name="flame", title="profile")
    assert svg.startswith("<svg") and 'data-plot="flame"' in svg
    assert f">{INFERENCE}<" in svg and "<script" not in svg
    assert "no profile samples" in flame({}, name="flame", title="t")
    bars = hbars([("smlad/smuad", 10.0), ("ldr", 5.0)], name="opcodes", title="t",
                 unit="instructions", total=15.0)
    assert "66.7%" in bars and 'data-plot="opcodes"' in bars


def _write_run(out: Path, extra: dict) -> None:
    """A one-sentence run directory (synthesised) with `extra` merged into summary.json."""
    out.mkdir(parents=True, exist_ok=True)
    rec = {"index": 0, "text": "wake me up", "label": 0, "job": 0, "status": "ok", "agree": True,
           "pred": 0, "correct": True, "cycles": 1000, "host_ids": [2, 5], "ids_match": True}
    (out / "results.jsonl").write_text(json.dumps(rec) + "\n")
    summary = {"board": "stm32f4", "scenario": "nlu_scenario", **extra}
    (out / "summary.json").write_text(json.dumps(summary))


def test_report_section_renders_only_with_data(tmp_path: Path) -> None:
    for name in ("a",):
        _fake_instance(tmp_path, name)
        rm.collect(tmp_path, name)
    with_data = tmp_path / "with"
    _write_run(with_data, rm.merge(tmp_path))
    html = render_html(analyse(load_run(with_data)))
    assert "<h2>Emulator metrics</h2>" in html
    for plot in ('data-plot="flame"', 'data-plot="opcodes"', 'data-table="functions"',
                 'data-table="accesses"', "usart2", "interrupt (IRQ)", INFERENCE):
        assert plot in html, plot
    without = tmp_path / "without"
    _write_run(without, {})
    assert "Emulator metrics" not in render_html(analyse(load_run(without)))


@pytest.mark.renode
@pytest.mark.skipif(find_renode() is None, reason="Renode is not installed")
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no Arm toolchain")
def test_renode_profile_end_to_end(tmp_path: Path) -> None:
    """2 sentences on Renode stm32f4 with the measuring target: every answer still bit-exact,
    the inference function in the folded stacks, a non-empty opcode histogram."""
    from hil.boards import BOARDS
    from hil.runner import RunConfig, run
    from hil.scenario import load_scenario, resolve_model

    scenario = load_scenario("nlu_scenario")
    out = tmp_path / "run"
    cfg = RunConfig(
        board=BOARDS["stm32f4"], target="renode", scenario=scenario,
        model_path=resolve_model(scenario.model, scenario.path.parent if scenario.path else None),
        out_dir=out, limit=2, profile=True, execution_metrics=True)
    code, summary = run(cfg)
    assert code == 0 and summary["summary"]["agreement"] == 1.0
    merged = rm.merge(out)
    folded = next(out.glob(f"*{rm.FOLDED}")).read_text()
    assert re.search(rf"(^|;){INFERENCE}(;| )", folded, re.M)
    assert merged["renode_metrics"]["opcodes"]["counted"] > 0
    assert merged["renode_metrics"]["opcodes"]["groups"]
    assert merged["renode_metrics"]["execution"]["memory"]["reads"] > 0
    assert any(f["function"] == INFERENCE for f in merged["profile"]["functions"])
