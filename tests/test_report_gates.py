"""What CI users of a report expect (issue: reports that gate): per-class precision/recall/F1,
a FAIL that says why at the top, readable numbers in JUnit, misclassified sentences as failures
on request, and `hil report A B --fail-on RULES` exiting 1 when B crossed a rule.

A real native run is the base; B is that run with answers changed on disk (the report reads
only the files), which is how a regression looks to `hil report`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hil import cli
from hil.report import (
    analyse,
    check_thresholds,
    fmt_value,
    load_run,
    per_class,
    render_junit,
    render_markdown,
    verdict_reasons,
)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="gcc/make not installed (native board)")


@pytest.fixture(scope="module")
def run_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gate") / "a"
    assert cli.main(["run", "--board", "native", "--limit", "30", "--out", str(out),
                     "--quiet"]) == 0
    return out


def _worse(run: Path, dest: Path, wrong: int) -> Path:
    """`run` with `wrong` more correct answers turned into mistakes (label kept, pred moved)."""
    shutil.copytree(run, dest)
    recs = [json.loads(x) for x in (dest / "results.jsonl").read_text().splitlines()]
    changed = 0
    for r in recs:
        if changed < wrong and r.get("correct"):
            r["pred"], r["correct"] = (r["pred"] + 1) % 18, False
            changed += 1
    (dest / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (dest / "summary.json").unlink()  # the report judges the records again
    return dest


def test_per_class_table_matches_the_confusion(run_a: Path) -> None:
    a = analyse(load_run(run_a))
    rows = {r["label"]: r for r in per_class(a)}
    assert sum(r["support"] for k, r in rows.items() if "avg" not in k) == a.labelled
    for i, name in enumerate(a.labels):
        if name in rows and rows[name]["support"]:
            tp = a.confusion[i][i]
            assert rows[name]["recall"] == pytest.approx(tp / sum(a.confusion[i]))
    assert "| class | precision | recall | F1 | support |" in render_markdown(a)


def test_a_failed_run_says_why_first(run_a: Path, tmp_path: Path) -> None:
    b = analyse(load_run(_worse(run_a, tmp_path / "b", wrong=12)))
    why = verdict_reasons(b)
    assert why and "min_accuracy" in why[0]
    md = render_markdown(b)
    assert md.splitlines()[0].endswith("FAIL") and "**expectation min_accuracy not met" in md


def test_junit_numbers_are_readable_and_misclassified_can_fail(run_a: Path) -> None:
    assert fmt_value(819885.3999999999) == "819,885.4" and fmt_value(0.86) == "0.86"
    a = analyse(load_run(run_a))
    wrong = a.labelled - a.correct
    assert 'type="misclassified"' not in render_junit(a)
    strict = render_junit(a, misclassified_fail=True)
    assert strict.count('type="misclassified"') == wrong > 0
    assert "99999999" not in strict


def test_fail_on_gates_a_comparison(run_a: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    b = _worse(run_a, tmp_path / "b", wrong=3)
    a_, b_ = analyse(load_run(run_a)), analyse(load_run(b))
    assert check_thresholds(a_, a_, "accuracy<-0.5pt, errors>0") == []
    crossed = check_thresholds(a_, b_, "accuracy<-0.5pt, errors>0")
    assert len(crossed) == 1 and crossed[0].startswith("accuracy<-0.5pt: accuracy changed -10.00")
    rule = "accuracy<-0.5pt"
    assert cli.main(["report", str(run_a), str(b), "--fail-on", rule]) == 1
    assert "threshold crossed" in capsys.readouterr().err
    assert cli.main(["report", str(run_a), str(run_a), "--fail-on", rule]) == 0
    assert cli.main(["report", str(run_a), str(b), "--fail-on", "speed>1"]) == 2
    assert "unknown measure 'speed'" in capsys.readouterr().err
