"""Issue #17's chaos cases: `python benchmarks/reliability.py chaos` (the section lives here so
benchmarks/reliability.py stays under 500 lines).

Two parts (`--chaos-part cases|big|all`):

- cases: each lie of issue #17 (lost sentences, a pass with sentences unanswered) tried as a
  user would, with `hil` as its own process, on native and netduinoplus2 (20 sentences each);
- big: 1,000 distinct sentences on netduinoplus2 (QEMU) under link faults, `--resume`d with the
  faults still on until complete or `--passes` runs, compared record by record (pred and
  logits) with an undisturbed run of the same 1,000. The faults are per frame
  (`corrupt_frame=0.01,drop_frame=0.01`: 1% of frames damaged, 1% lost, both directions) and
  start after the boot handshake (hil/targets/faulty.py says why). A short contrast run with the
  issue's literal per-byte spec (`corrupt=0.01,drop=0.01`) shows why per byte is the wrong unit
  for that rate: an exchange is ~340 bytes, so 0.98^340 = 0.1% of exchanges arrive whole.

Why a generated scenario: the largest shipped one (nlu_scenario) has 300 sentences, and 1,000
copies of 300 would ask the same texts again; the big run builds 1,000 distinct texts from
scenarios/data/ (every nlu_scenario, sms_spam and imdb test text up to the 2,048-byte limit, then
nlu_scenario texts with a fixed prefix or suffix, some non-ASCII) in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hil.paths import SCENARIO_DIR  # noqa: E402
from hil.results import finished, read_results  # noqa: E402
from hil.scenario import load_scenario  # noqa: E402

MODEL = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
DATA = SCENARIO_DIR / "data"
PREFIXES = ("please ", "hey ", "can you ", "i want to ", "quickly ", "ok so ", "caf\u00e9 talk: ",
            "\u20ac5 question: ")
SUFFIXES = (" now", " please", " thanks", " for me", " today", " asap", " $$", " \u2014 ok")


def _hil(*argv: str) -> int:
    """`hil` as its own process (as a user runs it); returns the exit code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "hil.cli", *argv], cwd=ROOT, env=env,
                          capture_output=True, timeout=7200).returncode


def _judge(out: Path, n: int, code: int) -> dict[str, Any]:
    """Lost = a selected sentence with no record at all; passed-incomplete = exit 0 while a
    selected sentence has no final answer (the two lies issue #17 is about)."""
    recs = {r["index"]: r for r in read_results(out / "results.jsonl")}
    final = [i for i, r in recs.items() if r["status"] == "ok" or r["status"] == "error"]
    return {"code": code, "lost": n - len(set(recs) & set(range(n))),
            "passed_incomplete": int(code == 0 and len(final) < n)}


def _complete(out: Path) -> bool:
    return bool(json.loads((out / "summary.json").read_text()).get("complete"))


def thousand_scenario(work: Path, n: int = 1000) -> Path:
    """A scenario of `n` distinct texts from scenarios/data/ (see the module docstring); labels
    kept where the text is an nlu_scenario one (accuracy is not the point, agreement is)."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(text: str, label: int | None) -> None:
        if text not in seen and len(text.encode()) <= 2048 and len(rows) < n:
            seen.add(text)
            rows.append({"text": text} if label is None else {"text": text, "label": label})

    nlu = [json.loads(x) for x in (DATA / "nlu_scenario_test.jsonl").read_text().splitlines()]
    for r in nlu:
        add(r["text"], r["label"])
    for name in ("sms_spam_test.jsonl", "imdb_test.jsonl"):
        for x in (DATA / name).read_text().splitlines():
            add(json.loads(x)["text"], None)
    for k, r in enumerate(nlu * len(PREFIXES)):
        add(PREFIXES[k // len(nlu)] + r["text"] + SUFFIXES[k % len(SUFFIXES)], r["label"])
    assert len(rows) == n, f"only {len(rows)} distinct texts"
    sent = work / "chaos1000.jsonl"
    sent.write_text("".join(json.dumps(r) + "\n" for r in rows))
    yaml_path = work / "chaos1000.yaml"
    yaml_path.write_text(f"name: chaos1000\nmodel: nlu_scenario\nsentences: {sent}\n"
                         f"labels: {DATA / 'nlu_scenario_labels.json'}\ntimeout_s: 2\n"
                         "retries: 3\n")
    return yaml_path


def _chaos_board(board: str, work: Path, n: int) -> list[dict[str, Any]]:
    """Each case of issue #17 as `hil` runs on one board: (case, exit codes, lost, passed)."""
    base = ["run", "--board", board, "--quiet", "--limit", str(n)]
    rows: list[dict[str, Any]] = []

    def case(name: str, out: Path, code: int, want: set[int]) -> None:
        rows.append({"board": board, "case": name, **_judge(out, n, code),
                     "expected_code": code in want})

    texts = [json.loads(x)["text"] for x in
             load_scenario("nlu_scenario").sentences_path.read_text().splitlines()[:n - 2]]
    data = work / f"{board}-bad.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n"
                            for t in [*texts[:3], "bad \ud800", "x" * 2049, *texts[3:]]))
    scen = work / f"{board}-bad.yaml"
    scen.write_text(f"name: bad\nmodel: nlu_scenario\nsentences: {data}\ntimeout_s: 10\n")
    out = work / f"{board}-badtext"
    case("B1 lone surrogate + TOO_LONG, --resume", out, max(
        _hil(*base, "--scenario", str(scen), "--out", str(out)),
        _hil("run", "--resume", str(out), "--quiet")), {1})
    out = work / f"{board}-torn"
    _hil(*base, "--out", str(out))
    path = out / "results.jsonl"
    path.write_bytes(path.read_bytes()[:-40])
    case("B2 torn last line, --resume", out, _hil("run", "--resume", str(out), "--quiet"), {0})
    out = work / f"{board}-twice"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "hil.cli", *base, "--out", str(out)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(2)]
    codes = sorted(p.wait(3600) for p in procs)
    case("B3 two runs into one --out", out, codes[0], {0})
    rows[-1]["expected_code"] = codes in ([0, 2], [0, 0])  # [0, 0]: the first ended first
    case("B4 --resume with another scenario", out,
         _hil("run", "--resume", str(out), "--quiet", "--scenario", "nlu_smoke"), {2})
    rows[-1]["passed_incomplete"] = 0  # refused: the folder's own run is complete
    out = work / f"{board}-corrupt"
    code = _hil(*base, "--out", str(out), "--faults", "corrupt=0.002,seed=3")
    case("B5 --faults corrupt=0.002 (before resume)", out, code, {0, 3})
    while code == 3 and _judge(out, n, code)["lost"] == 0 and len(rows) < 40:
        code = _hil("run", "--resume", str(out), "--quiet")
    case("B5 ... after --resume", out, code, {0})
    out = work / f"{board}-timeout"
    case("B6 every request times out", out,
         _hil(*base, "--out", str(out), "--timeout", "0.000001", "--retries", "0",
              "--max-restarts", "0", "--hello-timeout", "60"), {3})
    rows[-1]["expected_code"] |= rows[-1]["code"] == 0 and _complete(out)  # a 1 us answer
    crc = bytearray(MODEL.read_bytes())
    crc[len(crc) // 2] ^= 0x01
    for damage, data_ in (("empty", b""), ("crc", bytes(crc))):
        blob = work / f"{damage}.bin"
        blob.write_bytes(data_)
        rows.append({"board": board, "case": f"B8 hil build, {damage} blob", "lost": 0,
                     "code": (c := _hil("build", "--board", board, "--model", str(blob))),
                     "passed_incomplete": int(c == 0), "expected_code": c == 2})
    return rows




def _records(out: Path) -> dict[int, tuple[Any, Any]]:
    return {r["index"]: (r.get("pred"), r.get("logits"))
            for r in read_results(out / "results.jsonl") if r["status"] == "ok"}


def _faulty_passes(scen: Path, out: Path, n: int, spec: str, passes: int,
                   board: str = "netduinoplus2") -> dict[str, Any]:
    """A run under `spec`, then `--resume` with the same faults until exit 0 or `passes` runs:
    exit codes, finally answered after each pass, faults injected over all passes."""
    faults = ["--faults", spec, "--max-restarts", "1000"]
    codes = [_hil("run", "--board", board, "--scenario", str(scen), "--limit", str(n),
                  "--out", str(out), "--quiet", *faults)]
    injected: dict[str, int] = {}
    answered: list[int] = []
    while True:
        rel = json.loads((out / "summary.json").read_text()).get("reliability", {})
        for k, v in (rel.get("faults_injected") or {}).items():
            injected[k] = injected.get(k, 0) + v
        answered.append(len(finished(read_results(out / "results.jsonl"))))
        if codes[-1] != 3 or len(codes) >= passes:
            break
        codes.append(_hil("run", "--resume", str(out), "--quiet", *faults))
    return {"faults": spec, "exit_codes": codes, "passes": len(codes),
            "final_after_each_pass": answered, "faults_injected": injected}


def big_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Issue #17 item 1: 1,000 sentences on netduinoplus2 under faults, resumed with the faults on,
    equal to an undisturbed run; plus the per-byte contrast run (a few sentences, one pass)."""
    n = args.sentences
    scen = thousand_scenario(work, n)
    clean, faulty = work / "clean", work / "faulty"
    t0 = time.time()
    clean_code = _hil("run", "--board", "netduinoplus2", "--scenario", str(scen), "--limit",
                      str(n), "--out", str(clean), "--quiet")
    t_clean = time.time() - t0
    res = _faulty_passes(scen, faulty, n, args.big_faults, args.passes)
    t_faulty = time.time() - t0 - t_clean
    want, got = _records(clean), _records(faulty)
    indices = {r["index"] for r in read_results(faulty / "results.jsonl")}
    res.update(sentences=n, clean_exit_code=clean_code, clean_answered=len(want),
               answered=len(got), lost=n - len(indices & set(range(n))),
               equal=sum(got.get(i) == v for i, v in want.items()),
               equal_to_clean=got == want and len(want) == n,
               clean_seconds=round(t_clean, 1), faulty_seconds=round(t_faulty, 1))
    per_byte = _faulty_passes(scen, work / "per-byte", args.byte_sentences, args.byte_faults, 1)
    per_byte["sentences"] = args.byte_sentences
    per_byte["answered"] = len(_records(work / "per-byte"))
    res["per_byte_contrast"] = per_byte
    return res


def section_chaos(args: argparse.Namespace) -> dict[str, Any]:
    """Issue #17's cases on native and netduinoplus2, then 1,000 sentences on netduinoplus2
    under per-frame faults resumed to the end and compared with an undisturbed run."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hil-chaos-") as tmp:
        work = Path(tmp)
        if args.chaos_part in ("all", "cases"):
            rows = [r for b in ("native", "netduinoplus2") for r in _chaos_board(b, work, 20)]
            out.update(rows=rows, runs=len(rows), lost=sum(r["lost"] for r in rows),
                       passed_incomplete=sum(r["passed_incomplete"] for r in rows),
                       unexpected_codes=sum(not r["expected_code"] for r in rows))
        if args.chaos_part in ("all", "big"):
            out["big"] = big_run(args, work)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The chaos section's options (benchmarks/reliability.py's parser)."""
    p.add_argument("--chaos-part", choices=("all", "cases", "big"), default="all")
    p.add_argument("--sentences", type=int, default=1000, help="chaos: the big faulty run")
    p.add_argument("--big-faults", default="corrupt_frame=0.01,drop_frame=0.01,seed=1",
                   help="chaos: --faults of the big run, kept on every --resume pass")
    p.add_argument("--passes", type=int, default=5, help="chaos: big run + resumes, at most")
    p.add_argument("--byte-faults", default="corrupt=0.01,drop=0.01,seed=1",
                   help="chaos: the per-byte contrast run's --faults")
    p.add_argument("--byte-sentences", type=int, default=10)


def _cases_md(c: dict[str, Any]) -> list[str]:
    if "rows" not in c:
        return []
    md = [f"Runs tried {c['runs']}, sentences lost **{c['lost']}**, runs that passed while "
          f"incomplete **{c['passed_incomplete']}**, exit codes other than expected "
          f"{c['unexpected_codes']}; {c.get('seconds')} s for the whole section. 20 sentences "
          "per run; `lost` = a selected sentence with no record; `passed incomplete` = exit 0 "
          "with a selected sentence not finally answered.", "",
          "| board | case | exit code | expected | lost | passed incomplete |",
          "|---|---|---|---|---|---|"]
    md += [f"| {r['board']} | {r['case']} | {r['code']} | {'yes' if r['expected_code'] else 'NO'}"
           f" | {r['lost']} | {r['passed_incomplete']} |" for r in c["rows"]]
    return [*md, ""]


def chaos_md(c: dict[str, Any]) -> list[str]:
    """The issue #17 section of reliability.md: the case table and the big faulty run."""
    if not c:
        return []
    md = ["## Chaos: issue #17 (`python benchmarks/reliability.py chaos`)", "", *_cases_md(c)]
    b = c.get("big")
    if b:
        pb = b["per_byte_contrast"]
        md += [f"{b['sentences']} distinct sentences on netduinoplus2 (QEMU), `--faults "
               f"{b['faults']}` (per frame, both directions, after the boot handshake) on the "
               f"run and on every `--resume` pass: **passes needed {b['passes']}** (exit codes "
               f"{b['exit_codes']}), finally answered after each pass "
               f"{b['final_after_each_pass']}, **lost {b['lost']}**, answered {b['answered']}/"
               f"{b['sentences']}, **equal to the undisturbed run (pred + logits): "
               f"{b['equal']}/{b['sentences']}** (undisturbed run: exit "
               f"{b['clean_exit_code']}, {b['clean_answered']} answered). Faults injected over "
               f"all passes: {b['faults_injected']}. Undisturbed run {b['clean_seconds']} s, "
               f"faulty run + resumes {b['faulty_seconds']} s.", "",
               f"Contrast, the issue's literal per-byte spec `--faults {pb['faults']}` "
               f"(boot spared): {pb['sentences']} sentences, one pass, exit codes "
               f"{pb['exit_codes']}, answered {pb['answered']}/{pb['sentences']}; faults "
               f"{pb['faults_injected']}. A request is ~50 bytes and a RESULT ~290, so at 2% per "
               "byte 0.98^340 = 0.1% of exchanges arrive whole: per byte, that rate measures "
               "only the retry limit.", ""]
    return md
