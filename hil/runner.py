"""Stream a scenario's sentences to a target, check every answer, keep every result on disk.

Booting, asking and judging are hil.session's (the same for the console, Robot and pytest):
each answer is judged against the numpy integer reference (logits equal bit for bit -> `agree`;
docs/design.md, contract 1) and, here, against the label (`correct`). What the runner adds is
the run: jobs, shards, resume, restarts, retries and records. Each result is appended to
results.jsonl and fsync'd as it arrives (hil.results; contract 6), so a crash or a killed
emulator keeps every finished sentence and `--resume DIR` continues where it stopped.

`--jobs N` starts N target instances (threads; each owns one process) over interleaved parts of
the pending sentences; results arrive in any order and results.jsonl is rewritten in sentence order
at the end (atomically). `--shard K/N` selects the K-th of N contiguous blocks, for spreading one
scenario over machines.

Data flows one way: this module imports the session, results, targets and protocol, never
torch; the CLI, the Robot library and the benchmarks import it.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil import results as journal
from hil.boards import Board
from hil.errors import HilError, NoHello, RunError, UsageError
from hil.protocol import DeviceError, DeviceFault, DeviceTimeout, LinkClosed
from hil.quant.blob import refuse_like_device
from hil.results import LINK_DAMAGE_CODES, ResultsWriter, merge_in_order
from hil.run_folder import (  # noqa: F401 - load_run_meta: the CLI's
    check_identity,
    folder_lock,
    load_run_meta,
    run_identity,
    save_run_meta,
)
from hil.scenario import Scenario, Sentence
from hil.session import BoardSession, Oracle
from hil.targets import Target, target_class
from hil.targets.base import install_signal_handlers, kill_all_children

TargetFactory = Callable[[Board, Path, Path, str], Target]


@dataclass
class RunConfig:
    """Everything one `hil run` needs; the CLI fills it, tests build it directly."""

    board: Board
    target: str
    scenario: Scenario
    model_path: Path
    out_dir: Path
    limit: int | None = None
    jobs: int = 1
    shard: tuple[int, int] | None = None  # (K, N), K in 1..N
    resume: bool = False
    elf: Path | None = None  # prebuilt firmware; None = build it
    port: str | None = None  # serial target; renode: a running Renode's UART (attach)
    serial_number: str | None = None
    place: str | None = None  # labgrid target: place names or patterns (docs/farm.md)
    flash: bool = False  # a real board: flash the firmware first (hil.flash)
    timeout_s: float | None = None  # None = the scenario's
    retries: int | None = None
    hello_timeout_s: float | None = None
    faults: str | None = None  # hil.targets.faulty.parse_faults spec; None = a clean link
    max_restarts: int = 3  # target deaths survived (restart + same sentence again), whole run
    json_path: Path | None = None
    target_factory: TargetFactory | None = None  # tests: a target that cannot exist here
    progress: Callable[[dict[str, Any]], None] | None = None
    profile: bool = False  # hil run --profile: the emulator's guest profiler
    execution_metrics: bool = False  # hil run --execution-metrics: memory/peripheral/exceptions


# ---- selection -------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` -> (K, N) with 1 <= K <= N."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects K/N (e.g. 2/4), got {text!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text}: need 1 <= K <= N")
    return k, n


def select(sentences: list[Sentence], limit: int | None,
           shard: tuple[int, int] | None) -> list[Sentence]:
    """The first `limit` sentences, then the K-th of N contiguous blocks of those."""
    chosen = sentences[:limit] if limit is not None else list(sentences)
    if shard is not None:
        k, n = shard
        lo, hi = len(chosen) * (k - 1) // n, len(chosen) * k // n
        chosen = chosen[lo:hi]
    return chosen


# ---- one job: one target instance over a list of sentences ------------------------------------


@dataclass
class JobContext:
    """What the jobs of one run share: the config, the firmware, the reference, the writer, and
    what they report back (HELLO, target infos, errors, restarts, injected faults)."""

    cfg: RunConfig
    elf: Path | None
    oracle: Oracle
    writer: ResultsWriter
    timeout_s: float
    retries: int
    hello: dict[str, Any] = field(default_factory=dict)
    infos: list[dict[str, Any]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    restarts: list[str] = field(default_factory=list)  # why each dead target was restarted
    fault_stats: Any = None  # hil.targets.faulty.FaultStats, made on the first faulty start
    boots: int = 0  # target starts, for seeding each one's faults differently
    warnings: list[str] = field(default_factory=list)  # what the board warned of, once each


def _fault_wrapper(ctx: JobContext) -> Callable[[Target], Target] | None:
    """With --faults, a wrapper that puts a FaultyTarget around each target the job starts
    (fault counts add up in ctx.fault_stats); None for a clean link."""
    if not ctx.cfg.faults:
        return None
    import random

    from hil.targets.faulty import FaultStats, FaultyTarget, parse_faults

    faults = parse_faults(ctx.cfg.faults)

    def wrap(target: Target) -> Target:
        with ctx.lock:
            if ctx.fault_stats is None:
                ctx.fault_stats = FaultStats()
            boot = ctx.boots
            ctx.boots += 1
        # One RNG per target start, seeded by (seed, start number): reproducible for a given
        # run, and a restarted target does not meet the same faults at the same requests again.
        return FaultyTarget(target, faults, ctx.fault_stats,
                            random.Random(faults.seed * 1_000_003 + boot))

    return wrap


def open_session(ctx: JobContext, name: str) -> BoardSession:
    """A started session for one job (hil.session: HELLO, protocol and model checked)."""
    cfg = ctx.cfg
    session = BoardSession(cfg.board, cfg.target, elf=ctx.elf, run_dir=cfg.out_dir,
                           port=cfg.port, serial_number=cfg.serial_number, place=cfg.place,
                           timeout=ctx.timeout_s, retries=ctx.retries,
                           hello_timeout=cfg.hello_timeout_s, name=name, oracle=ctx.oracle,
                           profile=cfg.profile, execution_metrics=cfg.execution_metrics,
                           wrap=_fault_wrapper(ctx), factory=None if cfg.target_factory is None
                           else lambda n: cfg.target_factory(cfg.board, cfg.out_dir,  # type: ignore[misc]
                                                             ctx.elf or Path("-"), n))
    try:
        session.start()
    except (HilError, LinkClosed) as exc:
        _add_lines(exc, post_mortem(session, str(exc)))
        raise
    warning = session.arena_warning
    with ctx.lock:
        ctx.hello = session.hello.as_dict() if session.hello else {}
        assert session.target is not None
        ctx.infos.append(session.target.info())
        if warning and warning not in ctx.warnings:  # said once, not at every (re)start
            ctx.warnings.append(warning)
            print(f"hil run: warning: {warning}", file=sys.stderr)
    return session


def post_mortem(session: BoardSession | None, why: str) -> list[str]:
    """The evidence a target that is being given up keeps (Target.post_mortem: Renode saves its
    log and a snapshot); asked before the session is closed. Under --faults, the real target's."""
    target = getattr(session, "target", None)
    target = getattr(target, "inner", target)
    return target.post_mortem(why) if target is not None else []


def _add_lines(exc: BaseException, lines: list[str]) -> None:
    """Append post-mortem lines to an error's message (TargetError keeps it in `.message`)."""
    if not lines:
        return
    extra = "".join(f"\n  {line}" for line in lines)
    if isinstance(getattr(exc, "message", None), str):
        exc.message += extra  # type: ignore[attr-defined]
    exc.args = (f"{exc.args[0] if exc.args else ''}{extra}", *exc.args[1:])


def classify_one(ctx: JobContext, session: BoardSession, s: Sentence, job: int) -> dict[str, Any]:
    """Ask (the Device retries), judge; returns the record (status ok | error | timeout). A text
    that cannot be sent is recorded as its error without asking: it must not stop the run."""
    rec: dict[str, Any] = {"index": s.index, "text": s.text, "label": s.label, "job": job}
    if s.problem is not None:  # never sent: a final refusal by the host, with the reason
        rec.update(status="error", error={"code": "BAD_TEXT", "reason": s.problem})
        return rec
    received = session.need_device().bytes_received
    try:
        answer = session.ask(s.text)
    except DeviceFault as exc:
        rec.update(status="timeout", host_ids=ctx.oracle.ids(s.text),
                   error={"code": "FAULT", "reason": str(exc)})
        return rec
    except DeviceTimeout as exc:  # bytes came but no valid answer: damaged (CRC), not hung
        alive = session.need_device().bytes_received > received
        rec.update(status="timeout", host_ids=ctx.oracle.ids(s.text),
                   error={"code": "CRC" if alive else "TIMEOUT", "reason": str(exc)})
        return rec
    except DeviceError as exc:
        # Link damage that outlived the retries is not the device's answer: retryable, so that
        # --resume asks again. Only the device's own refusals (TOO_LONG, ...) are final.
        damaged = str(exc.code) in LINK_DAMAGE_CODES
        rec.update(status="timeout" if damaged else "error", host_ids=ctx.oracle.ids(s.text),
                   error={"code": str(exc.code), "reason": str(exc.reason)})
        return rec
    rec["host_ids"] = answer.host_ids
    rec.update(answer.record())
    rec["correct"] = None if s.label is None else answer.label == s.label
    return rec


def _restart_allowed(ctx: JobContext, name: str, why: str) -> None:
    """Count one target death; raise RunError when --max-restarts are used up (or the run is
    being stopped: then the death was ours)."""
    if ctx.stop.is_set():
        raise RunError(f"{name}: stopped")
    with ctx.lock:
        ctx.restarts.append(why)
        n = len(ctx.restarts)
    if n > ctx.cfg.max_restarts:
        raise RunError(f"{name}: the target died {n} times, more than --max-restarts "
                       f"{ctx.cfg.max_restarts}; every finished result is kept, continue with "
                       f"`hil run --resume {ctx.cfg.out_dir}`. Last death: {why}")


def _boot(ctx: JobContext, name: str, first: bool = False) -> BoardSession:
    """A started session; a target that dies while booting is restarted (within the budget),
    and so is a reboot that brings no HELLO (the first boot without HELLO is fatal: that is a
    wrong firmware or port, not a transient)."""
    attempt = 0
    while True:
        try:
            return open_session(ctx, name if attempt == 0 else f"{name}-boot{attempt}")
        except LinkClosed as exc:
            _restart_allowed(ctx, name, f"died while booting: {exc}")
        except NoHello as exc:
            if first:
                raise
            _restart_allowed(ctx, name, f"no HELLO after a reboot: {exc}")
        attempt += 1


def run_job(ctx: JobContext, job: int, sentences: list[Sentence]) -> None:
    """One target instance. A timeout that outlives its retries reboots the target; a target
    that dies (link closed: killed, crashed) is restarted and the sentence in flight asked
    again, at most --max-restarts times per run. Finished results are on disk either way."""
    name = f"{ctx.cfg.target}-{ctx.cfg.board.name}-job{job}"
    session: BoardSession | None = None
    deaths = 0
    try:
        session = _boot(ctx, name, first=True)
        i = 0
        while i < len(sentences) and not ctx.stop.is_set():
            s = sentences[i]
            try:
                rec = classify_one(ctx, session, s, job)
            except LinkClosed as exc:
                _add_lines(exc, post_mortem(session, str(exc)))
                session.close()
                session = None
                _restart_allowed(ctx, name, f"sentence #{s.index}: {exc}")
                deaths += 1
                session = _boot(ctx, f"{name}-restart{deaths}")
                continue  # the same sentence again on the fresh target
            if rec["status"] == "timeout":  # the target is rebooted below: keep its evidence
                rec["error"]["reason"] += "".join(
                    f"\n  {line}" for line in post_mortem(session, rec["error"]["reason"]))
            ctx.writer.append(rec)
            if ctx.cfg.progress is not None:
                ctx.cfg.progress(rec)
            i += 1
            if rec["status"] == "timeout" and rec["error"]["code"] in ("TIMEOUT", "FAULT"):
                session.close()  # a device that stopped answering gets a fresh boot
                session = None
                session = _boot(ctx, f"{name}-reboot{s.index}")
    except HilError as exc:  # RunError, NoHello, WrongFirmware, TargetError, MissingTool
        ctx.errors.append(exc)
        ctx.stop.set()
    except Exception as exc:  # LinkClosed and anything unexpected: keep what we have
        what = "the target died mid-run" if isinstance(exc, LinkClosed) else \
            f"unexpected {type(exc).__name__}"
        err = RunError(f"{name}: {what}: {exc}")
        _add_lines(err, post_mortem(session, str(exc)))
        ctx.errors.append(err)
        ctx.stop.set()
    finally:
        if session is not None:
            session.close()


# ---- the run ---------------------------------------------------------------------------------


def check_config(cfg: RunConfig) -> None:
    """Refuse numbers that cannot mean anything (UsageError, exit 2): a negative --limit used to
    slice from the end, and a zero timeout used to fall back to the scenario's silently."""
    bad = [f"{name} must be {rule}, got {value}" for name, value, rule, ok in (
        ("--limit", cfg.limit, ">= 1", cfg.limit is None or cfg.limit >= 1),
        ("--jobs", cfg.jobs, ">= 1", cfg.jobs >= 1),
        ("--timeout", cfg.timeout_s, "> 0 seconds", cfg.timeout_s is None or cfg.timeout_s > 0),
        ("--hello-timeout", cfg.hello_timeout_s, "> 0 seconds",
         cfg.hello_timeout_s is None or cfg.hello_timeout_s > 0),
        ("--retries", cfg.retries, ">= 0", cfg.retries is None or cfg.retries >= 0),
        ("--max-restarts", cfg.max_restarts, ">= 0", cfg.max_restarts >= 0)) if not ok]
    if bad:
        raise UsageError("; ".join(bad))


def run(cfg: RunConfig) -> tuple[int, dict[str, Any]]:
    """Run the scenario; returns (exit code, summary). Raises a HilError (with its exit code)
    only before anything ran: bad arguments, a bad blob, a locked or foreign run folder, a build
    that failed or does not fit. Target failures become `summary["error"]` and exit code 3 (2
    when a tool is missing), with every finished result on disk; the code is the verdict
    (hil.summary.verdict)."""
    check_config(cfg)
    if cfg.jobs > 1 and not target_class(cfg.target, cfg.board).parallel:
        raise UsageError(f"--jobs > 1 needs one board per job; the {cfg.target} target has one")
    if cfg.jobs > 1 and cfg.port:
        raise UsageError(f"--port {cfg.port} is one link (a serial port, or the UART of a running "
                         f"Renode): --jobs > 1 needs one board per job")
    refuse_like_device(cfg.model_path)  # a bad blob stops here, before anything is written
    oracle = Oracle.load(cfg.model_path)
    chosen = select(cfg.scenario.load_sentences(), cfg.limit, cfg.shard)
    identity = run_identity(cfg, oracle, chosen)
    with folder_lock(cfg.out_dir):
        if cfg.resume:
            check_identity(cfg.out_dir, identity)
        save_run_meta(cfg, identity)
        return _run_locked(cfg, oracle, chosen)


def _flash_first(cfg: RunConfig) -> Path | None:
    """--flash: build the firmware (or take --elf) and flash it to the real board through its
    debugger before the run (hil.flash); None without --flash. Only for a target that boots
    what the user flashed: an emulator loads the ELF itself."""
    if not cfg.flash:
        return None
    if target_class(cfg.target, cfg.board).builds_firmware:
        raise UsageError(f"--flash is for a real board; the {cfg.target} target loads the "
                         f"firmware itself")
    from hil import firmware as fw
    from hil.flash import flash

    elf = cfg.elf or fw.build(cfg.board, cfg.model_path, log_path=cfg.out_dir / "build.log",
                              dest=cfg.out_dir / "firmware.elf")
    flash(cfg.board, elf, probe=cfg.serial_number, log_path=cfg.out_dir / "flash.log")
    return elf


def _open_journal(cfg: RunConfig) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """(finished records, what the journal repair found). A fresh run starts a clean file; a
    resumed one first cuts a torn last line away (that sentence is then asked again)."""
    path = cfg.out_dir / "results.jsonl"
    if not cfg.resume:
        path.unlink(missing_ok=True)  # a fresh run in an old directory starts clean
        return {}, {}
    torn, bad = journal.repair_journal(path)
    note: dict[str, Any] = {}
    if torn:
        m = re.search(rb'"index":\s*(\d+)', torn)
        note = {"torn_bytes": len(torn), "torn_index": int(m[1]) if m else None}
        print(f"hil run: {path}: the last line was cut off ({len(torn)} bytes"
              f"{f', sentence #{m[1].decode()}' if m else ''}); removed, it is asked again",
              file=sys.stderr)
    if bad:
        note["unreadable_lines"] = bad
        print(f"hil run: {path}: {bad} unreadable line(s) ignored, asked again", file=sys.stderr)
    return journal.finished(journal.read_results(path)), note


def _run_locked(cfg: RunConfig, oracle: Oracle,
                chosen: list[Sentence]) -> tuple[int, dict[str, Any]]:
    """The run proper, with the folder locked and run.json written."""
    from hil import summary as sm

    elf, sizes = BoardSession(cfg.board, cfg.target, elf=_flash_first(cfg) or cfg.elf,
                              run_dir=cfg.out_dir, oracle=oracle).prepare()
    done, repaired = _open_journal(cfg)
    pending = [s for s in chosen if s.index not in done]
    ctx = JobContext(cfg=cfg, elf=elf, oracle=oracle,
                     writer=ResultsWriter(results_path := cfg.out_dir / "results.jsonl"),
                     timeout_s=cfg.timeout_s or cfg.scenario.timeout_s,
                     retries=cfg.retries if cfg.retries is not None else cfg.scenario.retries)
    t0 = time.perf_counter()
    _run_jobs(ctx, pending)
    wall = time.perf_counter() - t0
    ctx.writer.close()
    wanted = {s.index for s in chosen}
    records = [r for r in merge_in_order(results_path) if int(r["index"]) in wanted]
    unanswered, refused = sm.open_and_refused(records, wanted)
    errors = [*map(str, ctx.errors), *([sm.incomplete_text(cfg.out_dir, records, unanswered)]
                                       if unanswered else [])]
    summary = sm.summarize(cfg, records, sizes=sizes, hello=ctx.hello, targets=ctx.infos,
                        wall_s=wall, processed=len(pending), skipped=len(done),
                        total=len(chosen), error="\n".join(errors) or None,
                        answered=sum(r["status"] == "ok" and r["index"] not in done
                                     for r in records))
    summary["warnings"] = ctx.warnings
    summary["reliability"] = {
        "restarts": len(ctx.restarts), "max_restarts": cfg.max_restarts,
        "restart_reasons": ctx.restarts[:20], "faults": cfg.faults,
        "faults_injected": ctx.fault_stats.as_dict() if ctx.fault_stats is not None else None,
        "missing": sorted(wanted - {int(r["index"]) for r in records})[:50],
        "unanswered": unanswered[:50], "refused": [int(r["index"]) for r in refused][:50],
        "journal": repaired,
    }
    summary.update(target_class(cfg.target, cfg.board).run_metrics(cfg.out_dir))
    failed = sm.check_expectations(summary, cfg.scenario.expect)
    if refused:
        failed.append(sm.refused_text(refused, len(chosen)))
    sm.write_summary(summary, cfg.out_dir / "summary.json", cfg.json_path)
    return sm.verdict(ctx.errors, unanswered, failed), summary


def _run_jobs(ctx: JobContext, pending: list[Sentence]) -> None:
    """`--jobs N` threads over interleaved parts of the pending sentences, each with its own
    target. Ctrl-C stops the jobs and their emulators now and keeps every finished record; the
    caller says how to resume."""
    if not pending:
        return
    jobs = max(1, min(ctx.cfg.jobs, len(pending)))
    threads = [threading.Thread(target=run_job, args=(ctx, j, pending[j::jobs]), name=f"job{j}")
               for j in range(jobs)]
    install_signal_handlers()  # from the main thread: SIGTERM/SIGHUP kill the emulators
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():  # a bare join() would not let Ctrl-C through
                t.join(0.2)
    except KeyboardInterrupt:
        ctx.stop.set()  # jobs see it and do not restart the targets killed here
        kill_all_children()
        for t in threads:
            t.join(10.0)
        ctx.writer.close()
        merge_in_order(ctx.writer.path)
        raise


def print_progress(total: int) -> Callable[[dict[str, Any]], None]:
    """A compact progress printer: one line every ~5% (and on every problem)."""
    state = {"n": 0}
    lock = threading.Lock()
    step = max(1, total // 20)

    def show(rec: dict[str, Any]) -> None:
        with lock:
            state["n"] += 1
            n = state["n"]
            bad = rec["status"] != "ok" or not rec.get("agree", True)
            if bad or n % step == 0 or n == total:
                mark = rec["status"] if rec["status"] != "ok" else (
                    "agree" if rec.get("agree") else "DISAGREE")
                cyc = f" {rec['cycles']} {rec.get('unit', '')}" if rec.get("cycles") else ""
                print(f"  [{n}/{total}] #{rec['index']} {mark}{cyc}", file=sys.stderr,
                      flush=True)

    return show
