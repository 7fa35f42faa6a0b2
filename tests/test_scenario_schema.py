"""Scenario files and run arguments are checked before anything boots (issue #17): unknown keys,
wrong types and impossible values are refused with the file, the key and what is allowed (exit 2,
one line, no traceback); a sentence that cannot be sent is found at load time and carries why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hil import cli
from hil.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "scenarios" / "data" / "nlu_scenario_test.jsonl"


def scenario(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"model: nlu_scenario\nsentences: {DATA}\n{body}")
    return path


@pytest.mark.parametrize("body, words", [
    ("timeout: 3\n", "top level: Additional properties are not allowed ('timeout' was"),
    ("retries: -1\n", "key retries: -1 is less than the minimum of 0; allowed: re-sends"),
    ("retries: two\n", "key retries: 'two' is not of type 'integer'"),
    ("timeout_s: 0\n", "key timeout_s: 0 is less than or equal to the minimum of 0"),
    ("expect:\n  min_acc: 0.5\n", "key expect: Additional properties are not allowed"),
    ("expect:\n  min_accuracy: 1.5\n", "key expect.min_accuracy: 1.5 is greater than"),
    ("name: [\n", "not valid YAML"),
])
def test_bad_scenario_is_refused_naming_file_and_key(tmp_path: Path, body: str,
                                                      words: str) -> None:
    path = scenario(tmp_path, body)
    with pytest.raises(ScenarioError) as err:
        load_scenario(str(path))
    assert str(err.value).startswith(f"{path}: ") and words in str(err.value), err.value


def test_missing_required_key(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("model: nlu_scenario\n")
    with pytest.raises(ScenarioError, match="'sentences' is a required property"):
        load_scenario(str(path))


def test_shipped_scenarios_pass_the_schema() -> None:
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        assert load_scenario(str(path)).name


def test_unsendable_text_is_found_at_load(tmp_path: Path) -> None:
    data = tmp_path / "s.jsonl"
    data.write_text('{"text": "fine"}\n{"text": "bad \\ud800 one", "label": 1}\n')
    txt = tmp_path / "t.txt"
    txt.write_bytes(b"ok line\n\xff\xfe not utf-8\n")
    for path, n in ((data, 2), (txt, 2)):
        (tmp_path / "x.yaml").write_text(f"model: nlu_scenario\nsentences: {path}\n")
        sents = load_scenario(str(tmp_path / "x.yaml")).load_sentences()
        assert len(sents) == n and sents[0].problem is None
        assert sents[1].problem and f"{path}:2: text is not valid Unicode" in sents[1].problem


@pytest.mark.parametrize("args, words", [
    (["--limit", "-5"], "--limit must be >= 1, got -5"),
    (["--timeout", "0"], "--timeout must be > 0 seconds, got 0"),
    (["--hello-timeout", "0"], "--hello-timeout must be > 0 seconds, got 0"),
    (["--retries", "-1"], "--retries must be >= 0, got -1"),
    (["--jobs", "0"], "--jobs must be >= 1"),
])
def test_impossible_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     args: list[str], words: str) -> None:
    code = cli.main(["run", "--board", "native", "--out", str(tmp_path / "r"), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_bad_scenario_file_on_the_command_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, "retries: -1\n")
    code = cli.main(["run", "--board", "native", "--scenario", str(path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and f"{path}: key retries" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
