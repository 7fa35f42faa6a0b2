"""results.jsonl as a journal that cannot lie (issue #17, B2-B4): whole lines, a torn tail cut
away and asked again, one run per folder at a time, and --resume only over the results of the
same model, board, target, scenario and sentences.

Real native firmware where a run is needed (small --limit); the journal functions directly
where the file alone is the point.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hil import cli
from hil.results import ResultsWriter, finished, read_results, repair_journal
from hil.runner import check_identity, folder_lock

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "hil" / "models"
needs_native = pytest.mark.skipif(shutil.which("gcc") is None or not
                                  (MODELS / "nlu_scenario" / "model.bin").is_file(),
                                  reason="gcc and the shipped nlu_scenario model needed")


def hil(*argv: str) -> int:
    return cli.main(list(argv))


def test_writer_writes_whole_lines_even_for_text_that_is_not_unicode(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    w = ResultsWriter(path)
    w.append({"index": 0, "text": "caf\u00e9", "status": "ok"})
    w.append({"index": 1, "text": "lone \ud800", "status": "error",
              "error": {"code": "BAD_TEXT", "reason": "r"}})
    w.close()
    recs = read_results(path)
    assert [r["text"] for r in recs] == ["caf\u00e9", "lone \ud800"]
    assert path.read_bytes().count(b"\n") == 2


@pytest.mark.parametrize("tail, torn", [
    (b'{"index": 2, "text": "half', True),  # killed mid-write: no newline
    (b'{"index": 2, "te\n', True),  # a newline, but not a record
    (b"", False),
])
def test_repair_journal_cuts_only_a_torn_tail(tmp_path: Path, tail: bytes, torn: bool) -> None:
    path = tmp_path / "results.jsonl"
    whole = b'{"index": 0, "status": "ok"}\n{"index": 1, "status": "ok"}\n'
    path.write_bytes(whole + tail)
    cut, bad = repair_journal(path)
    assert cut == (tail if torn else b"") and bad == 0
    assert path.read_bytes() == whole


def test_link_damage_is_not_final() -> None:
    recs = [{"index": 0, "status": "error", "error": {"code": "BAD_FRAME"}},  # older hil
            {"index": 1, "status": "timeout", "error": {"code": "BAD_FRAME"}},
            {"index": 2, "status": "error", "error": {"code": "TOO_LONG"}},
            {"index": 3, "status": "ok"}]
    assert sorted(finished(recs)) == [2, 3]


@needs_native
def test_torn_last_line_is_cut_reported_and_asked_again(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """B2: a cut-off last line used to swallow the next record (one sentence gone, exit 0)."""
    out = tmp_path / "run"
    assert hil("run", "--board", "native", "--limit", "6", "--out", str(out), "--quiet") in (0, 1)
    path = out / "results.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:5]) + lines[5][: len(lines[5]) // 2])  # killed mid-write
    capsys.readouterr()
    code = hil("run", "--resume", str(out), "--quiet")
    err = capsys.readouterr().err
    assert "last line was cut off" in err and "sentence #5" in err
    recs = read_results(path)
    assert [r["index"] for r in recs] == list(range(6)) and all(r["status"] == "ok" for r in recs)
    s = json.loads((out / "summary.json").read_text())
    assert s["complete"] and s["reliability"]["journal"]["torn_index"] == 5
    assert s["throughput"]["processed_this_run"] == 1 and code in (0, 1)


@needs_native
def test_second_run_into_a_locked_folder_is_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """B3: two runs into one --out lost records; the second now exits 2 and touches nothing."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.jsonl").write_text('{"index": 0, "status": "ok"}\n')
    with folder_lock(out):
        code = hil("run", "--board", "native", "--limit", "3", "--out", str(out), "--quiet")
    err = capsys.readouterr().err
    assert code == 2 and "is in use by another `hil run`" in err and "Traceback" not in err
    assert (out / "results.jsonl").read_text() == '{"index": 0, "status": "ok"}\n'
    assert hil("run", "--board", "native", "--limit", "3", "--out", str(out), "--quiet") in (0, 1)


@needs_native
def test_resume_refuses_results_of_another_run(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """B4: --resume over another model's, scenario's or selection's results is refused."""
    out = tmp_path / "run"
    assert hil("run", "--board", "native", "--limit", "4", "--out", str(out), "--quiet") in (0, 1)
    before = (out / "results.jsonl").read_bytes()
    cases = [(["--scenario", "nlu_smoke"], "scenario nlu_scenario there, nlu_smoke now"),
             (["--limit", "5"], "sentences_sha256"),
             (["--model", str(MODELS / "sms_spam" / "model.bin")], "model_id")]
    for extra, words in cases:
        capsys.readouterr()
        assert hil("run", "--resume", str(out), "--quiet", *extra) == 2, extra
        err = capsys.readouterr().err
        assert words in err and "belong to another run" in err, err
    assert (out / "results.jsonl").read_bytes() == before
    ident = json.loads((out / "run.json").read_text())["identity"]
    with pytest.raises(Exception, match="board native there, stm32f4 now"):
        check_identity(out, {**ident, "board": "stm32f4"})
