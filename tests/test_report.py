"""`hil report`: HTML, JUnit and Markdown from real and synthesised results.

One real run (the `native` board, 40 sentences, every answer checked bit for bit by the runner)
feeds the "looks right" tests; synthesised records (said so in each test's name) cover what a
healthy run never produces: an empty file, a run where every sentence failed, a disagreement,
and a 10,000-sentence run. The JUnit file is validated against hil/report_junit.xsd with lxml, and
a broken document is shown to fail the same validator, so a pass means something. The HTML is
opened in headless Chromium (skipped with the reason where none is installed): every plot must be
in the DOM the browser built, and the browser must log nothing to its console.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hil import cli
from hil.boards import BOARDS
from hil.report import JUNIT_XSD, WORST_ROWS, analyse, load_run, render_junit
from hil.report_cli import write_reports

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
HAVE_GCC = shutil.which("gcc") is not None and shutil.which("make") is not None
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)
PLOTS = ("rates", "latency", "cycles_tokens", "layers", "confusion", "memory")
LABELS = ["alarm", "audio", "calendar", "cooking", "datetime", "email"]

# ---- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 40-sentence native run (hil run writes its reports beside the results)."""
    if not HAVE_GCC:
        pytest.skip("gcc/make not installed (native board)")
    if not SHIPPED.is_file():
        pytest.skip("no shipped nlu_scenario model.bin")
    out = tmp_path_factory.mktemp("real") / "native40"
    code = cli.main(["run", "--board", "native", "--limit", "40", "--out", str(out), "--quiet"])
    assert code in (0, 1)
    return out


def synth_record(i: int, rng: random.Random, kind: str = "ok") -> dict:
    """A results.jsonl record shaped like hil.runner's (synthesised, not from a device)."""
    label = i % len(LABELS)
    rec = {"index": i, "text": f"synthetic sentence number {i} <b>&amp;", "label": label,
           "job": 0, "host_ids": [2, 100 + i % 50]}
    if kind in ("error", "timeout"):
        rec.update(status=kind, error={"code": "TOO_LONG" if kind == "error" else "TIMEOUT",
                                       "reason": "synthesised failure \x01 with a control byte"})
        return rec
    tokens = 2 + rng.randrange(30)
    pred = label if rng.random() < 0.8 else (label + 1) % len(LABELS)
    logits = [rng.randrange(-30000, 30000) for _ in LABELS]
    logits[pred] = 90000
    ref = list(logits)
    if kind == "disagree":
        ref[0] += 1
    rec.update(status="ok", pred=pred, logits=logits, ref_logits=ref, agree=logits == ref,
               ids_match=True, correct=pred == label, tokens=tokens,
               cycles=5_000_000 + 200_000 * tokens + rng.randrange(50_000), cycles_raw=0,
               device_unit="systick", unit="instructions (qemu icount)",
               layers=[400_000, 1_500_000, 1_400_000, 90_000], stack=600 + tokens,
               arena=6000 + 100 * tokens, host_ms=3.0)
    return rec


def write_synth(folder: Path, records: list[dict], board: str = "netduinoplus2",
                target: str = "qemu") -> Path:
    """results.jsonl + a run.json like hil.runner writes (no summary.json: as after a kill)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    (folder / "run.json").write_text(json.dumps({
        "board": board, "target": target, "model": "/nonexistent/model.bin",
        "scenario": {"name": "synthetic", "path": None,
                     "expect": {"min_agreement": 1.0, "min_accuracy": 0.6}}}))
    return folder


def lxml_etree():  # noqa: ANN201 - the lxml.etree module
    """lxml, the XSD validator (a dev extra); the tests that validate skip without it."""
    return pytest.importorskip("lxml.etree", reason="lxml validates JUnit XML against its XSD "
                                                    "(pip install lxml; dev extra)")


def validate_junit(path: Path) -> object:
    etree = lxml_etree()
    schema = etree.XMLSchema(etree.parse(str(JUNIT_XSD)))
    doc = etree.parse(str(path))
    assert schema.validate(doc), schema.error_log
    return doc


def svgs_well_formed(html: str) -> list[str]:
    """Every inline <svg> parses as XML on its own; returns their data-plot names."""
    names = []
    for m in re.finditer(r"<svg\b.*?</svg>", html, re.S):
        el = ET.fromstring(m.group(0))
        names.append(el.get("data-plot"))
    return names


def no_network(html: str) -> None:
    """Self-contained: no src or url() to anywhere; the only URL is the SVG namespace. The one
    kind of href allowed is a plain relative link to a file in the run folder (the ELF, the
    results, the logs): no scheme, no host, no climbing out."""
    assert not re.search(r"\bsrc\s*=", html, re.I)
    for href in re.findall(r"\bhref\s*=\s*\"([^\"]*)\"", html, re.I):
        assert re.fullmatch(r"[A-Za-z0-9._%-]+(/[A-Za-z0-9._%-]+)*", href) and ".." not in href
    assert len(re.findall(r"\bhref\s*=", html, re.I)) == len(re.findall(r'\bhref="', html))
    assert "url(" not in html and "@import" not in html
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}


def chromium(url_path: Path, *extra: str) -> tuple[str, list[str]]:
    """Open a file in headless Chromium; returns (DOM after load, console messages)."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             *extra, "--dump-dom", url_path.resolve().as_uri()],
            capture_output=True, text=True, timeout=60)
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    return proc.stdout, console


# ---- a real run ------------------------------------------------------------------------------


def test_real_run_reports(real_run: Path, tmp_path: Path) -> None:
    summary = json.loads((real_run / "summary.json").read_text())
    # hil run wrote all three beside the results
    for name in ("report.html", "junit.xml", "summary.md"):
        assert (real_run / name).stat().st_size > 0
    code = cli.main(["report", str(real_run), "--html", str(tmp_path / "r.html"), "--junit",
                     str(tmp_path / "j.xml"), "--markdown", str(tmp_path / "s.md")])
    assert code == 0
    html = (tmp_path / "r.html").read_text()
    no_network(html)
    assert sorted(svgs_well_formed(html)) == sorted(PLOTS)
    assert "ns (host)" in html and "host nanoseconds (native process)" in html
    assert 'data-table="worst"' in html or "No errors, no disagreements" in html

    doc = validate_junit(tmp_path / "j.xml")
    sentences = doc.find("testsuite[@name='sentences']")
    assert len(sentences.findall("testcase")) == 40
    assert sentences.get("failures") == "0" and sentences.get("errors") == "0"
    exp = doc.find("testsuite[@name='expectations']")
    assert {c.get("name") for c in exp.findall("testcase")} == set(summary["expectations"])

    md = (tmp_path / "s.md").read_text()
    acc = summary["summary"]["accuracy"]
    assert f"{100 * acc:.1f}% of 40 labelled" in md
    assert "100.0% (0 disagree)" in md and "| min_agreement | 1 | 1 | pass |" in md
    assert md.startswith("## hil run native40: ")

    # the headline numbers agree with hil.summary's
    a = analyse(load_run(real_run))
    assert a.accuracy == pytest.approx(acc) and a.agreement == summary["summary"]["agreement"]
    assert a.latency["median"] == pytest.approx(summary["summary"]["latency_ms"]["median"])
    assert a.memory["stack"] == summary["summary"]["stack_peak_bytes"]


def test_markdown_to_stdout_for_a_step_summary(real_run: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(real_run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## hil run native40:") and "| measure | value |" in out


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install -y "
                                             "--no-install-recommends chromium)")
def test_html_in_headless_chromium(real_run: Path, tmp_path: Path) -> None:
    # control: the console check sees a page that does log
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom')</script></body></html>")
    _, console = chromium(bad)
    assert any("boom" in ln for ln in console)

    dom, console = chromium(real_run / "report.html")
    assert console == []
    names = re.findall(r'<svg[^>]*data-plot="([a-z_]+)"', dom)
    assert sorted(names) == sorted(PLOTS)
    assert "PASS" in dom or "FAIL" in dom


# ---- synthesised runs --------------------------------------------------------------------------


def test_junit_validator_rejects_a_broken_document(tmp_path: Path) -> None:
    etree = lxml_etree()
    schema = etree.XMLSchema(etree.parse(str(JUNIT_XSD)))
    broken = etree.fromstring(b'<testsuites><testsuite name="x" failures="0" errors="0">'
                              b'<testcase name="a"/></testsuite></testsuites>')  # no tests=
    assert not schema.validate(broken)
    wrong_child = etree.fromstring(b'<testsuites><testsuite name="x" tests="1" failures="0" '
                                   b'errors="0"><testcase name="a"><oops/></testcase>'
                                   b'</testsuite></testsuites>')
    assert not schema.validate(wrong_child)


def test_empty_results_file(tmp_path: Path) -> None:
    run = write_synth(tmp_path / "empty", [])
    written = write_reports([run], html=tmp_path / "e.html", junit=tmp_path / "e.xml",
                            markdown=tmp_path / "e.md")
    assert len(written) == 3
    html = (tmp_path / "e.html").read_text()
    no_network(html)
    assert sorted(svgs_well_formed(html)) == sorted(PLOTS)  # every panel, each says why empty
    assert "no answered sentences: nothing to draw" in html and "not measured" in html
    doc = validate_junit(tmp_path / "e.xml")
    assert doc.find("testsuite[@name='sentences']").get("tests") == "0"
    md = (tmp_path / "e.md").read_text()
    assert "| sentences | 0 (0 answered, 0 errors) |" in md and ": FAIL" in md  # not measured


def test_all_error_results(tmp_path: Path) -> None:
    rng = random.Random(1)
    recs = [synth_record(i, rng, "error" if i % 3 else "timeout") for i in range(30)]
    run = write_synth(tmp_path / "allerr", recs)
    write_reports([run], html=tmp_path / "a.html", junit=tmp_path / "a.xml",
                  markdown=tmp_path / "a.md")
    doc = validate_junit(tmp_path / "a.xml")
    suite = doc.find("testsuite[@name='sentences']")
    assert suite.get("errors") == "30" and len(suite.findall("testcase/error")) == 30
    assert "\x01" not in (tmp_path / "a.xml").read_text()  # control bytes cannot go in XML
    html = (tmp_path / "a.html").read_text()
    for name in ("worst", "sentences"):  # the worst cases and the all-sentences table
        table = html.split(f'data-table="{name}"', 1)[1].split("</table>", 1)[0]
        assert table.count('<tr class="error">') == 20
        assert table.count('<tr class="timeout">') == 10
    assert "&lt;b&gt;&amp;amp;" in html  # sentence text is escaped, never markup
    md = (tmp_path / "a.md").read_text()
    assert ": FAIL" in md and "TIMEOUT x10" in md and "TOO_LONG x20" in md


def test_disagreement_is_a_junit_failure_and_tops_the_worst_cases(tmp_path: Path) -> None:
    rng = random.Random(2)
    recs = [synth_record(i, rng) for i in range(20)]
    recs[5] = synth_record(5, rng, "disagree")
    a = analyse(load_run(write_synth(tmp_path / "d", recs)))
    assert a.disagree == 1 and a.worst[0]["kind"] == "disagree" and a.worst[0]["index"] == 5
    (tmp_path / "d.xml").write_text(render_junit(a))
    doc = validate_junit(tmp_path / "d.xml")
    fails = doc.findall(".//failure[@type='disagreement']")
    assert len(fails) == 1 and "#5 " in fails[0].getparent().get("name")
    assert a.expectations["min_agreement"]["ok"] is False  # from run.json, not a summary


def test_huge_synthesised_run(tmp_path: Path) -> None:
    rng = random.Random(3)
    recs = [synth_record(i, rng, "error" if i % 997 == 0 else "ok") for i in range(10_000)]
    run = write_synth(tmp_path / "huge", recs)
    # No wall-clock threshold (timings on this machine are noisy); what keeps 10,000 sentences
    # cheap is structural and checked: the page stays small because dense points are merged.
    write_reports([run], html=tmp_path / "h.html", junit=tmp_path / "h.xml",
                  markdown=tmp_path / "h.md")
    html = (tmp_path / "h.html").read_text()
    assert len(html) < 3_000_000  # dense scatter is merged into cells
    assert "(dense: points merged per cell)" in html
    worst = html.split('data-table="worst"', 1)[1].split("</table>", 1)[0]
    assert worst.count("<tr class=") == WORST_ROWS
    assert sorted(svgs_well_formed(html)) == sorted(PLOTS)
    doc = validate_junit(tmp_path / "h.xml")
    assert len(doc.find("testsuite[@name='sentences']").findall("testcase")) == 10_000
    assert "emulated" in html and "instructions (qemu icount)" in html


def test_compare_two_runs(tmp_path: Path) -> None:
    rng = random.Random(4)
    a_recs = [synth_record(i, rng) for i in range(50)]
    b_recs = [dict(r) for r in a_recs]
    for r in b_recs:
        r["cycles"] = int(r["cycles"] * 1.5)
        r["stack"] = r["stack"] + 100
    b_recs[3]["pred"] = (b_recs[3]["pred"] + 2) % len(LABELS)
    b_recs[3]["correct"] = b_recs[3]["pred"] == b_recs[3]["label"]
    a = write_synth(tmp_path / "old", a_recs)
    b = write_synth(tmp_path / "new", b_recs)
    assert cli.main(["report", str(a), str(b), "--html", str(tmp_path / "c.html"),
                     "--markdown", str(tmp_path / "c.md"), "--junit",
                     str(tmp_path / "c.xml")]) == 0
    html = (tmp_path / "c.html").read_text()
    no_network(html)
    assert 'data-table="compare"' in html and 'data-table="changed"' in html
    plots = svgs_well_formed(html)
    assert {"latency", "cycles_tokens", "layers", "memory_a", "memory_b"} <= set(plots)
    md = (tmp_path / "c.md").read_text()
    assert "| measure | A | B | B - A |" in md
    assert re.search(r"\| stack peak \(B\) \| [\d,]+ \| [\d,]+ \| \+100 \|", md)
    assert "1 sentence(s) changed their predicted label." in md
    validate_junit(tmp_path / "c.xml")  # JUnit describes B

    # different count units (host ns vs QEMU instructions) never share an axis
    ns_recs = [dict(r, unit="ns (host)", device_unit="ns") for r in a_recs]
    native = write_synth(tmp_path / "native", ns_recs, board="native", target="native")
    write_reports([native, b], html=tmp_path / "u.html")
    plots = set(svgs_well_formed((tmp_path / "u.html").read_text()))
    assert {"cycles_tokens_a", "cycles_tokens_b", "layers_a", "layers_b", "latency"} <= plots
    assert "cycles_tokens" not in plots and "layers" not in plots


def test_bare_results_file_and_bad_paths(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(5)
    path = tmp_path / "loose.jsonl"
    path.write_text("".join(json.dumps(synth_record(i, rng)) + "\n" for i in range(5))
                    + '{"index": 99, "text": "torn')  # a killed run's last line
    a = analyse(load_run(path))
    assert a.n == 5 and a.run.name == "loose" and a.memory["flash"] is None
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    assert "expected a run directory" in capsys.readouterr().err


def test_memory_against_board_limits(tmp_path: Path) -> None:
    """A summary with ELF sizes draws flash and RAM against the board's real limits."""
    rng = random.Random(6)
    run = write_synth(tmp_path / "mem", [synth_record(i, rng) for i in range(5)])
    board = BOARDS["netduinoplus2"]
    (run / "summary.json").write_text(json.dumps({
        "board": board.name, "target": "qemu", "model_id": "1C201747", "scenario": "s",
        "summary": {"flash_bytes": 300_000, "static_ram_bytes": 120_000,
                    "ram_peak_bytes": 140_000, "board_flash_bytes": board.flash_bytes,
                    "board_ram_bytes": board.ram_bytes},
        "hello": {"clock": board.clock_hz, "arena": 65536}, "firmware": {"stack": 8192},
        "expectations": {"max_ram_bytes": {"limit": 131072, "value": 140000, "ok": False}}}))
    write_reports([run], html=tmp_path / "m.html", markdown=tmp_path / "m.md")
    html = (tmp_path / "m.html").read_text()
    assert "136.7 KiB of 128.0 KiB" in html  # RAM peak over the STM32F405's 128 KiB
    assert 'fill="#c23b4e"' in html  # drawn red
    assert "| max_ram_bytes | 131,072 | 140,000 | **FAIL** |" in (tmp_path / "m.md").read_text()
