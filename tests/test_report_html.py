"""report.html and summary.json from real native runs (issue #19): why a run failed, the per-class
table, provenance, the per-sentence table and the links to the run's files.

No mocks: each test reads what `hil run --board native` wrote. The one failing run is a real run
whose journal is cut short afterwards, which is exactly what an interrupted run leaves behind (a
results.jsonl with fewer records than the summary selected); its reports are rewritten the way
`hil run` writes them.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import pytest

import hil
from hil import cli, provenance
from hil.report import analyse, check_thresholds, load_run
from hil.report_cli import write_run_reports
from hil.report_html import render_compare_html

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
N = 30


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 30-sentence native run."""
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc/make not installed (native board)")
    if not SHIPPED.is_file():
        pytest.skip("no shipped nlu_scenario model.bin")
    out = tmp_path_factory.mktemp("rhtml") / "native30"
    code = cli.main(["run", "--board", "native", "--limit", str(N), "--out", str(out), "--quiet"])
    assert code in (0, 1)
    return out


@pytest.fixture(scope="module")
def cut_short(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real run with only its first 20 records kept: an interrupted run's folder."""
    out = tmp_path_factory.mktemp("rhtml") / "cut"
    shutil.copytree(run, out)
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:20]) + "\n")
    write_run_reports(out)
    return out


def html(folder: Path) -> str:
    return (folder / "report.html").read_text()


def test_interrupted_run_says_why_it_failed_at_the_top(cut_short: Path) -> None:
    page = html(cut_short)
    assert ">FAIL<" in page
    why = re.search(r'<div class="why" data-section="verdict-reasons">(.*?)</div>', page, re.S)
    assert why, "no verdict reasons on a failed run"
    assert f"{N - 20} of {N} selected sentences have no record" in why.group(1)
    # at the top: before the headline cards and the expectations table
    assert why.start() < page.index('<div class="cards">') < page.index("<h2>Expectations</h2>")
    # the expectation rows may all pass: the reason is what tells the reader why
    assert "FAIL</td>" not in page


def test_passing_run_has_no_reasons_block(run: Path) -> None:
    page = html(run)
    assert ">PASS<" in page
    assert "verdict-reasons" not in page


def test_per_class_table(run: Path) -> None:
    page = html(run)
    table = re.search(r'<table data-table="per-class">(.*?)</table>', page, re.S)
    assert table, "no per-class table"
    rows = re.findall(r"<tr(?: class=avg)?><td>([^<]+)</td>((?:<td class=num>[^<]*</td>){4})",
                      table.group(1))
    labels = [r[0] for r in rows]
    assert labels[-2:] == ["macro avg", "weighted avg"]
    cells = [re.findall(r"<td class=num>([^<]*)</td>", r[1]) for r in rows]
    supports = [int(c[-1]) for c in cells]
    records = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    labelled = sum(1 for r in records if r["status"] == "ok" and r.get("label") is not None)
    assert sum(supports[:-2]) == labelled == supports[-1]
    for c in cells:
        for v in c[:3]:
            assert v == "-" or 0.0 <= float(v) <= 1.0


def test_provenance_in_summary_and_html(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    prov = summary["provenance"]
    git = prov["git"]
    if (ROOT / ".git").exists():
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        assert git["sha"] == sha and isinstance(git["dirty"], bool)
    # only the tools present, each with its `--version` first line
    found = {k for k, exe in provenance._tools().items() if exe}
    assert set(prov["tools"]) == found
    assert ("arm-none-eabi-gcc" in found) == (shutil.which("arm-none-eabi-gcc") is not None)
    assert all(v and "\n" not in v for v in prov["tools"].values())
    assert prov["python"] == platform.python_version() and prov["hil"] == hil.__version__
    assert prov["host"] == {"node": platform.node(), "platform": platform.platform(),
                            "cpus": os.cpu_count()}
    assert prov["model"]["id"] == summary["model_id"] and prov["model"]["id"]
    assert prov["model"]["card"] and Path(prov["model"]["card"]).name == "card.md"
    table = re.search(r'<table data-table="provenance">(.*?)</table>', html(run), re.S)
    assert table, "no provenance table"
    text = table.group(1)
    assert (git["sha"] if git else "not a checkout") in text
    for line in prov["tools"].values():
        assert escape(line) in text
    assert escape(platform.node()) in text and prov["model"]["card"] in text


def test_tool_versions_are_cached_per_process() -> None:
    """Asked once per process (gcc, QEMU and Renode each take a subprocess): the same object
    comes back, which no second round of subprocesses could give (no wall-clock threshold)."""
    first = provenance.tool_versions()
    assert provenance.tool_versions() is first


def _records(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]


def test_every_sentence_in_a_folded_table(run: Path) -> None:
    page = html(run)
    section = re.search(r'<details data-section="sentences">(.*?)</details>', page, re.S)
    assert section, "no collapsible per-sentence section"
    assert "<script" not in page
    head = re.search(r"<tr><th>#</th>(.*?)</tr>", section.group(1)).group(1)
    assert re.findall(r"<th>([^<]+)</th>", head) == [
        "text", "label", "predicted", "agree", "ns (host)", "tokens"]
    rows = re.findall(r"<tr(?: class=[^>]+)?><td class=num>(\d+)</td><td>(.*?)</td>"
                      r"<td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td class=num>(.*?)</td>"
                      r"<td class=num>(.*?)</td></tr>", section.group(1))
    records = _records(run)
    assert len(rows) == len(records) == N
    for row, rec in zip(rows, records, strict=True):
        assert int(row[0]) == rec["index"] and row[1] == escape(rec["text"])
        assert row[4] == ("yes" if rec["agree"] else "NO")
        assert row[5].replace(",", "") == str(rec["cycles"]) and row[6] == str(rec["tokens"])


def test_links_to_the_run_files(run: Path) -> None:
    page = html(run)
    section = re.search(r'<ul data-section="files">(.*?)</ul>', page, re.S)
    assert section, "no links to the run's files"
    hrefs = re.findall(r'<a href="([^"]+)">', section.group(1))
    summary = json.loads((run / "summary.json").read_text())
    uart = [Path(t["log"]).name for t in summary["targets"]]
    assert uart and set(uart) <= set(hrefs)
    assert {"firmware.elf", "results.jsonl", "build.log"} <= set(hrefs)
    for href in hrefs:  # relative, inside the run folder, and present
        assert "/" not in href and ":" not in href and (run / href).is_file()
    assert "flash.log" not in hrefs and not (run / "flash.log").exists()  # present ones only


def test_compare_page_shows_the_crossed_rules(run: Path, cut_short: Path) -> None:
    a, b = analyse(load_run(run)), analyse(load_run(cut_short))
    crossed = check_thresholds(a, b, "errors>-1, errors>0")  # errors: +0 > -1 is crossed
    assert len(crossed) == 1 and crossed[0].startswith("errors>-1")
    page = render_compare_html(a, b, crossed)
    block = re.search(r'<div class="why" data-section="thresholds">(.*?)</div>', page, re.S)
    assert block and escape(crossed[0]) in block.group(1)
    assert "No --fail-on threshold crossed" in render_compare_html(a, b, [])
    assert 'data-section="thresholds"' not in render_compare_html(a, b)
