"""Reliability report: soak, fault injection, kill-and-resume, plus the fuzz numbers.

Why a script and not only tests: the numbers that say "nothing is lost" only mean something at
scale (thousands of sentences, hundreds of injected faults, real emulators under CPU load), which
is too slow for pytest. Every number in docs/reliability.md comes from here:

    python benchmarks/reliability.py soak     # 1,200 sentences on each QEMU board under load
    python benchmarks/reliability.py faults   # >= 1,000 sentences under faults (native), 200 (QEMU)
    python benchmarks/reliability.py kill     # emulator kill -9 mid-run, host kill + --resume
    python benchmarks/reliability.py report   # benchmarks/results/reliability.{json,md}
    python benchmarks/reliability.py chaos    # issue #17's cases on native + netduinoplus2, and
                                              # 1,000 sentences under faults, resumed
                                              # (benchmarks/reliability_chaos.py)

Each section writes benchmarks/results/reliability_<section>.json; `report` merges them with
reliability_fuzz.json (benchmarks/reliability_fuzz.py) into one markdown table.
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

from reliability_chaos import add_arguments, chaos_md, section_chaos  # noqa: E402

from hil.boards import BOARDS  # noqa: E402
from hil.paths import SCENARIO_DIR  # noqa: E402
from hil.results import read_results  # noqa: E402
from hil.runner import RunConfig, run  # noqa: E402
from hil.scenario import load_scenario  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MODEL = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"


def soak_scenario(work: Path, copies: int) -> Path:
    """A scenario of the 300 nlu_scenario test sentences repeated `copies` times (the soak needs
    more sentences than the test split has; repeats still exercise the link as new requests)."""
    base = load_scenario("nlu_scenario")
    lines = base.sentences_path.read_text().splitlines()
    sent = work / "soak.jsonl"
    sent.write_text("\n".join(lines * copies) + "\n")
    yaml_path = work / "soak.yaml"
    yaml_path.write_text(
        f"name: soak\nmodel: nlu_scenario\nsentences: {sent}\n"
        f"labels: {SCENARIO_DIR / 'data' / 'nlu_scenario_labels.json'}\n"
        "timeout_s: 10\nretries: 1\n")
    return yaml_path


def cpu_load(n: int) -> list[subprocess.Popen[bytes]]:
    """`n` busy-loop processes at normal priority: the emulator competes for the cores."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def outcome(out: Path, summary: dict[str, Any], total: int) -> dict[str, Any]:
    """What a run lost and recovered, read from results.jsonl and the target logs."""
    recs = read_results(out / "results.jsonl")
    by_status: dict[str, int] = {}
    for r in recs:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    answered = [r for r in recs if r["status"] == "ok"]
    logs = sorted(p.name for p in out.glob("*.log") if not p.name.endswith("stderr.log"))
    return {
        "sentences": total, "records": len(recs), "lost": total - len({r["index"] for r in recs}),
        "status": by_status, "answered": len(answered),
        "agreement": (sum(bool(r.get("agree")) for r in answered) / len(answered)
                      if answered else None),
        "target_boots": len([n for n in logs if n != "build.log"]),
        "error": summary.get("error"), "wall_s": summary.get("throughput", {}).get("wall_s"),
        "restarts": summary.get("restarts"), "faults": summary.get("faults"),
    }


def section_soak(args: argparse.Namespace) -> dict[str, Any]:
    """1,200 sentences per QEMU board with `--load` busy loops beside QEMU (incident: an
    mps2-an386 that said HELLO then went silent under load, before the 02:46 UART RX fix)."""
    work = Path(tempfile.mkdtemp(prefix="rel-soak-"))
    scen = load_scenario(str(soak_scenario(work, args.copies)))
    out: dict[str, Any] = {"copies": args.copies, "load_processes": args.load,
                           "jobs": args.jobs, "elf": args.elf, "boards": {}}
    for board in args.boards:
        run_dir = work / board
        hogs = cpu_load(args.load)
        load0 = os.getloadavg()[0]
        try:
            cfg = RunConfig(board=BOARDS[board], target="qemu", scenario=scen, model_path=MODEL,
                            out_dir=run_dir, jobs=args.jobs,
                            elf=Path(args.elf) if args.elf else None)
            code, summary = run(cfg)
        finally:
            for h in hogs:
                h.kill()
                h.wait()
        res = outcome(run_dir, summary, len(scen.load_sentences()))
        res.update(exit_code=code, loadavg_1m_start=load0, loadavg_1m_end=os.getloadavg()[0],
                   run_dir=str(run_dir))
        out["boards"][board] = res
        print(board, json.dumps(res), file=sys.stderr, flush=True)
    return out


def requests_sent(out: Path) -> int:
    """CLASSIFY frames the host wrote, from every target transcript of the run."""
    n = 0
    for log in out.glob("*.log"):
        if log.name.endswith("stderr.log") or log.name == "build.log":
            continue
        n += sum(1 for ln in log.read_text(errors="replace").splitlines()
                 if " > $" in ln and " CLASSIFY" in ln)
    return n


def section_faults(args: argparse.Namespace) -> dict[str, Any]:
    """`hil run --faults SPEC` at scale: native (1,200 sentences) and a QEMU board (240), then
    `--resume` without faults to finish what was marked failed."""
    work = Path(tempfile.mkdtemp(prefix="rel-faults-"))
    scen = load_scenario(str(soak_scenario(work, args.copies)))
    plans = [("native", "native", None, args.spec, 1.0), ("netduinoplus2", "qemu", 240,
                                                             args.spec, 5.0)]
    out: dict[str, Any] = {"spec": args.spec, "runs": {}}
    for board, target, limit, spec, timeout in plans:
        run_dir = work / board
        cfg = RunConfig(board=BOARDS[board], target=target, scenario=scen, model_path=MODEL,
                        out_dir=run_dir, limit=limit, faults=spec, timeout_s=timeout, retries=3,
                        max_restarts=args.max_restarts)
        code, summary = run(cfg)
        n = limit or len(scen.load_sentences())
        res = outcome(run_dir, summary, n)
        rel = summary.get("reliability", {})
        injected = rel.get("faults_injected") or {}
        res.update(exit_code=code, faults_injected=injected,
                   faults_injected_total=sum(injected.values()),
                   restarts=rel.get("restarts"), requests_sent=requests_sent(run_dir),
                   run_dir=str(run_dir))
        res["resends"] = res["requests_sent"] - n
        # Every sentence not answered is marked with a reason; --resume (clean link) does them.
        cfg2 = RunConfig(board=BOARDS[board], target=target, scenario=scen, model_path=MODEL,
                         out_dir=run_dir, limit=limit, resume=True, timeout_s=timeout)
        code2, summary2 = run(cfg2)
        res["after_resume"] = outcome(run_dir, summary2, n)
        out["runs"][f"{board} ({target})"] = res
        print(board, json.dumps(res), file=sys.stderr, flush=True)
    return out


def section_kill(args: argparse.Namespace) -> dict[str, Any]:
    """The emulator or firmware killed (SIGKILL) every `--kill-every` answers: the runner
    restarts it and goes on; then `hil run` itself killed at random moments and resumed until
    done. Both must equal an undisturbed run (predictions and logits) with nothing lost."""
    import random
    import signal

    from hil.targets import NativeTarget, QemuTarget

    work = Path(tempfile.mkdtemp(prefix="rel-kill-"))
    scen = load_scenario(str(soak_scenario(work, args.copies)))
    out: dict[str, Any] = {"kill_every": args.kill_every, "runs": {}}
    for board, target, limit in (("native", "native", 1000), ("netduinoplus2", "qemu", 240)):
        clean_dir = work / f"{board}-clean"
        run(RunConfig(board=BOARDS[board], target=target, scenario=scen, model_path=MODEL,
                      out_dir=clean_dir, limit=limit))
        want = {r["index"]: (r["pred"], r["logits"])
                for r in read_results(clean_dir / "results.jsonl")}
        started: list[Any] = []

        def factory(b, run_dir, elf, name, _t=target, _started=started):  # type: ignore
            cls = NativeTarget if _t == "native" else QemuTarget
            t = cls(b, run_dir, elf=elf, name=name)
            _started.append(t)
            return t

        count = {"n": 0, "kills": 0}

        def killer(rec: dict[str, Any], _count: dict[str, int] = count,
                   _started: list[Any] = started) -> None:
            _count["n"] += 1
            if _count["n"] % args.kill_every == 0:
                os.killpg(_started[-1].proc.pid, signal.SIGKILL)
                _count["kills"] += 1

        kill_dir = work / f"{board}-killed"
        code, summary = run(RunConfig(
            board=BOARDS[board], target=target, scenario=scen, model_path=MODEL,
            out_dir=kill_dir, limit=limit, target_factory=factory, progress=killer,
            max_restarts=limit))
        got = {r["index"]: (r.get("pred"), r.get("logits"))
               for r in read_results(kill_dir / "results.jsonl")}
        res = outcome(kill_dir, summary, limit)
        res.update(kills=count["kills"], restarts=summary["reliability"]["restarts"],
                   equal_to_clean=got == want, exit_code=code)
        # Now kill the host process itself, 3 times at random moments, and resume each time.
        host_dir = work / f"{board}-host-killed"
        rng = random.Random(5)
        base = [sys.executable, "-m", "hil.cli", "run", "--quiet"]
        argv = [*base, "--board", board, "--target", target, "--scenario", str(scen.path),
                "--limit", str(limit), "--out", str(host_dir)]
        host_kills = 0
        for attempt in range(10):
            proc = subprocess.Popen(argv if attempt == 0 else [*base, "--resume", str(host_dir)],
                                    cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            if host_kills < 3:
                time.sleep(rng.uniform(3.0, 8.0))
                if proc.poll() is None:
                    proc.kill()
                    host_kills += 1
            proc.wait()
            if proc.returncode in (0, 1):
                break
        recs = read_results(host_dir / "results.jsonl")
        res["host_killed"] = {
            "host_kills": host_kills, "records": len(recs),
            "lost": limit - len({r["index"] for r in recs}),
            "duplicates": len(recs) - len({r["index"] for r in recs}),
            "equal_to_clean": {r["index"]: (r.get("pred"), r.get("logits")) for r in recs}
            == want,
        }
        out["runs"][f"{board} ({target})"] = res
        print(board, json.dumps(res), file=sys.stderr, flush=True)
    return out

SECTIONS = {"soak": section_soak, "faults": section_faults, "kill": section_kill,
            "chaos": section_chaos}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("section", choices=[*SECTIONS, "report"])
    p.add_argument("--boards", nargs="+", default=["mps2-an386", "netduinoplus2"])
    p.add_argument("--copies", type=int, default=4)
    p.add_argument("--load", type=int, default=2, help="busy-loop processes during the soak")
    p.add_argument("--spec", default="drop=0.0002,corrupt=0.0002,dup=0.0002,delay=0.01,"
                   "delay_s=0.02,split=0.2,reset=0.01,kill=0.002,seed=1",
                   help="--faults SPEC for the faults section")
    p.add_argument("--max-restarts", type=int, default=100)
    p.add_argument("--jobs", type=int, default=1, help="QEMU instances at once (soak)")
    p.add_argument("--elf", help="soak this prebuilt firmware (e.g. an old one) instead")
    p.add_argument("--tag", default="", help="suffix of the section's JSON (several soaks)")
    p.add_argument("--kill-every", type=int, default=97, help="answers between kills")
    add_arguments(p)
    args = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.section == "report":
        return report()
    t0 = time.time()
    data = SECTIONS[args.section](args)
    data["command"] = "python benchmarks/reliability.py " + " ".join(sys.argv[1:])
    data["seconds"] = round(time.time() - t0, 1)
    path = RESULTS / f"reliability_{args.section}{args.tag}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return 0


def _load(name: str) -> dict[str, Any]:
    path = RESULTS / f"reliability_{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def report() -> int:
    """Merge the section JSONs into reliability.json and a markdown report."""
    fuzz, faults, kill = (_load(n) for n in ("fuzz", "faults", "kill"))
    soaks = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("reliability_soak*.json"))]
    md = ["# Reliability report", "",
          "Produced by `benchmarks/reliability_fuzz.py` and `benchmarks/reliability.py "
          "{soak,faults,kill,report}` on 2 shared CPU cores (other jobs running). "
          "`lost` = sentences with no record in results.jsonl; `agreement` = answered sentences "
          "whose logits equal the host's integer reference bit for bit.", ""]
    md += chaos_md(_load("chaos"))
    if fuzz:
        md += ["## Fuzzing (libFuzzer, clang 14, ASan + UBSan, leak detection on)", "",
               "Commands: `python benchmarks/reliability_fuzz.py` (all four targets at their "
               "default budgets), then fuzz_blob (with valid-blob seeds) and fuzz_tokenizer "
               "re-run as "
               f"`{fuzz.get('command')}`; {fuzz.get('seed_frames')} seed frames "
               "(firmware/tests/corpus/seed/). A run ends at `-runs` or `-max_total_time`, "
               "whichever comes first (libFuzzer flags per target below).", "",
               "| target | libFuzzer run | executions | seconds | coverage (cov/ft) | findings | "
               "sanitizer reports | regression corpus files |",
               "|---|---|---|---|---|---|---|---|"]
        for t, r in fuzz.get("targets", {}).items():
            cov = r.get("coverage") or {}
            flags = " ".join(r["command"].split()[1:3])
            md.append(f"| {t} | `{flags}` | {r['executions']:,} | {r['seconds']} | "
                      f"{cov.get('cov')}/"
                      f"{cov.get('ft')} | {', '.join(r['findings']) or 'none'} (exit "
                      f"{r['exit_code']}) | {r['sanitizer_reports']} | "
                      f"{r['regression_corpus_files']} |")
        md.append("")
    if faults:
        md += ["## Fault injection (`hil run --faults SPEC`)", "",
               f"Command: `{faults.get('command')}`; SPEC `{faults.get('spec')}` (per byte both "
               "directions: drop, corrupt = one bit flipped, dup; per read/write: delay; per "
               "write: split; per request: reset = half the request then a RESET frame, kill = "
               "SIGKILL of the target process).", "",
               "| run | sentences | faults injected | requests re-sent | restarts (kills) | "
               "answered ok | marked failed (reason) | lost | agreement | after `--resume` |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in faults.get("runs", {}).items():
            failed = {k: v for k, v in r["status"].items() if k != "ok"}
            after = r.get("after_resume", {})
            inj = ", ".join(f"{k} {v}" for k, v in r["faults_injected"].items())
            md.append(f"| {name} | {r['sentences']} | {r['faults_injected_total']} ({inj}) | "
                      f"{r['resends']} | {r['restarts']} | {r['answered']} | "
                      f"{sum(failed.values())} {failed or ''} | {r['lost']} | {r['agreement']} | "
                      f"{after.get('answered')} ok, lost {after.get('lost')}, agreement "
                      f"{after.get('agreement')} |")
        md.append("")
    if kill:
        md += ["## Kill and resume", "",
               f"Command: `{kill.get('command')}`. Target process SIGKILLed every "
               f"{kill.get('kill_every')} answers (runner restarts it, `--max-restarts`); then "
               "`hil run` itself SIGKILLed at random moments and `--resume`d until done. "
               "`equal` = predictions and logits equal an undisturbed run's, sentence by "
               "sentence.", "",
               "| run | sentences | target kills | restarts | lost | equal | host kills | "
               "lost after resume | duplicates | equal after resume |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in kill.get("runs", {}).items():
            h = r["host_killed"]
            md.append(f"| {name} | {r['sentences']} | {r['kills']} | {r['restarts']} | "
                      f"{r['lost']} | {r['equal_to_clean']} | {h['host_kills']} | {h['lost']} | "
                      f"{h['duplicates']} | {h['equal_to_clean']} |")
        md.append("")
    if soaks:
        md += ["## Soak under CPU load (QEMU)", "",
               "The 300 nlu_scenario test sentences repeated, extra busy-loop processes beside "
               "QEMU on a machine already loaded by other jobs.", "",
               "| command | board | sentences | ok | timeouts / reboots | lost | agreement | "
               "load avg (1 min) start-end | wall s |", "|---|---|---|---|---|---|---|---|---|"]
    for soak in soaks:
        for b, r in soak.get("boards", {}).items():
            md.append(f"| `{soak.get('command')}` | {b} | {r['sentences']} | "
                      f"{r['status'].get('ok', 0)} | "
                      f"{r['status'].get('timeout', 0)} / "
                      f"{r['target_boots'] - soak.get('jobs', 1)} | {r['lost']} "
                      f"| {r['agreement']} | {r['loadavg_1m_start']:.1f}-{r['loadavg_1m_end']:.1f}"
                      f" | {r['wall_s']} |")
    md.append("")
    (RESULTS / "reliability.md").write_text("\n".join(md))
    (RESULTS / "reliability.json").write_text(json.dumps(
        {"fuzz": fuzz, "faults": faults, "kill": kill, "soak": soaks}, indent=2) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
