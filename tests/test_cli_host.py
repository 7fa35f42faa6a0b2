"""The host subcommands as a user types them: `hil boards`, `hil doctor`, `hil build`, scenario
and argument errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hil import cli
from hil.scenario import EXPECT_KEYS, load_scenario, load_sentences

ROOT = Path(__file__).resolve().parents[1]


def test_boards_lists_every_board(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["boards"]) == 0
    out = capsys.readouterr().out
    for name, clock, mem in (("nrf52840", "64 MHz", "256 KiB"), ("stm32f4", "168 MHz", "128 KiB"),
                             ("netduinoplus2", "168 MHz", "1 MiB"), ("mps2-an386", "25 MHz",
                                                                     "4 MiB"), ("native", "", "")):
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert clock in line and mem in line


def test_doctor_names_install_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert code in (0, 2)  # 2: something required is missing here
    assert "arm-none-eabi-gcc" in out and "qemu-system-arm" in out and "renode" in out
    if shutil.which("renode") is None:
        assert "linux-portable" in out  # how to get Renode, even though it is optional


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no Arm toolchain")
def test_build_prints_sizes_against_the_chip(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    model = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
    if not model.is_file():
        torch = pytest.importorskip("torch", reason="no shipped model and no torch")
        del torch
        from hil.quant.quantize import blob_bytes, random_quant_model

        model = tmp_path / "m.bin"
        model.write_bytes(blob_bytes(random_quant_model(num_labels=18, seed=0)))
    assert cli.main(["build", "--board", "mps2-an386", "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "firmware.elf" in out and "of 4194304 B" in out


def test_run_rejects_a_target_the_board_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--board", "mps2-an386", "--target", "renode"]) == 2
    assert "does not run on renode; it runs on qemu" in capsys.readouterr().err


def test_run_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--board", "native", "--scenario", "nope"]) == 2
    err = capsys.readouterr().err
    assert "scenario 'nope' not found" in err and "nlu_scenario" in err


def test_run_bad_shard(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--board", "native", "--shard", "3/2"]) == 2
    assert "1 <= K <= N" in capsys.readouterr().err


def test_resume_needs_a_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--resume", str(tmp_path)]) == 2
    assert "no run.json" in capsys.readouterr().err


@pytest.mark.parametrize("name, count, labelled", [
    ("nlu_scenario", 300, True), ("sms_spam", 200, True), ("imdb", 100, True),
    ("nlu_smoke", 20, False)])
def test_shipped_scenarios_load(name: str, count: int, labelled: bool) -> None:
    sc = load_scenario(name)
    sentences = sc.load_sentences()
    assert len(sentences) == count
    assert all(s.text for s in sentences)
    assert all((s.label is not None) == labelled for s in sentences)
    assert set(sc.expect) <= set(EXPECT_KEYS) and sc.expect["min_agreement"] == 1.0
    if sc.labels is not None:
        assert max(s.label for s in sentences) < len(sc.labels)


def test_sentences_file_errors_point_at_the_line(tmp_path: Path) -> None:
    from hil.scenario import ScenarioError

    bad = tmp_path / "s.jsonl"
    bad.write_text('{"text": "ok", "label": 1}\n{"txt": "oops"}\n')
    with pytest.raises(ScenarioError, match=r"s\.jsonl:2"):
        load_sentences(bad)


def test_boards_doctor_and_run_speak_json(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    """`hil boards --json`, `hil doctor --json`, and `hil run --json -` on stdout (not a file
    named `-`)."""
    import json

    assert cli.main(["boards", "--json"]) == 0
    boards = {b["board"]: b for b in json.loads(capsys.readouterr().out)}
    assert boards["stm32f4"]["clock_hz"] == 168_000_000 and "renode" in boards["stm32f4"]["targets"]
    code = cli.main(["doctor", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == (0 if doc["ok"] else 2) and {c["name"] for c in doc["checks"]} >= {"gcc + make"}
    if shutil.which("gcc"):
        assert cli.main(["run", "--board", "native", "--limit", "3", "--json", "-", "--out",
                         str(tmp_path / "r"), "--quiet"]) == 0
        out = capsys.readouterr().out
        assert json.loads(out)["summary"]["sentences"] == 3 and not Path("-").exists()


def test_every_model_command_takes_model_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    """--model NAME for blob info too (a shipped model's name, not only a path)."""
    assert cli.main(["blob", "info", "--model", "sms_spam"]) == 0
    assert "meta.model: sms_spam" in capsys.readouterr().out
    assert cli.main(["blob", "info", "--model", "no-such-model"]) == 2
    assert "shipped models:" in capsys.readouterr().err


def test_quantize_refuses_to_overwrite_a_shipped_blob(capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped blobs are what the firmware and the tests use: replacing one takes --force."""
    pytest.importorskip("torch", reason="hil quantize needs torch")
    before = (ROOT / "hil" / "models" / "nlu_scenario" / "model.bin").read_bytes()
    assert cli.main(["quantize", "--model", "nlu_scenario"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (ROOT / "hil" / "models" / "nlu_scenario" / "model.bin").read_bytes() == before
