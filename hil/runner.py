"""Stream a scenario's sentences to a target, check every answer, keep every result on disk.

For each sentence the runner tokenizes on the host, asks the device to classify the text, and
judges the answer twice: against the numpy integer reference run on the host's token ids (logits
equal bit for bit -> `agree`; design contract 1) and against the label (`correct`). Each result is
appended to results.jsonl and fsync'd as it arrives (contract 6), so a crash or a killed emulator
keeps every finished sentence and `--resume DIR` continues where it stopped.

`--jobs N` starts N target instances (threads; each owns one process) over interleaved parts of
the pending sentences; results arrive in any order and results.jsonl is rewritten in sentence order
at the end (atomically). `--shard K/N` selects the K-th of N contiguous blocks, for spreading one
scenario over machines.

Data flows one way: this module imports targets, protocol, quant reference and the tokenizer,
never torch.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hil import firmware as fw
from hil.boards import Board, cycle_unit, to_cycles
from hil.scenario import Scenario, Sentence
from hil.targets import TARGETS, Target, TargetError
from hil.targets.base import MissingTool, install_signal_handlers, kill_all_children

HELLO_TIMEOUT = {"native": 10.0, "qemu": 30.0, "renode": 120.0, "serial": 10.0}

EXIT_OK = 0
EXIT_EXPECTATIONS = 1
EXIT_ENVIRONMENT = 2
EXIT_RUN_ERROR = 3


class RunError(RuntimeError):
    """The run could not go on (target died, never said hello, wrong model); results are kept."""

    def __init__(self, message: str, exit_code: int = EXIT_RUN_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class NoHello(RunError):
    """The target started but no HELLO came: fatal on the first boot (wrong firmware, wrong
    port), worth another restart when a target that answered before is rebooted under faults."""


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
    port: str | None = None  # serial target
    serial_number: str | None = None
    timeout_s: float | None = None  # None = the scenario's
    retries: int | None = None
    hello_timeout_s: float | None = None
    faults: str | None = None  # hil.targets.faulty.parse_faults spec; None = a clean link
    max_restarts: int = 3  # target deaths survived (restart + same sentence again), whole run
    json_path: Path | None = None
    target_factory: TargetFactory | None = None  # tests: a target that cannot exist here
    progress: Callable[[dict[str, Any]], None] | None = None


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


# ---- results.jsonl ---------------------------------------------------------------------------


def read_results(path: Path) -> list[dict[str, Any]]:
    """All complete records; a torn last line (killed mid-write) is skipped, not fatal."""
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "index" in rec:
                out.append(rec)
    return out


def finished(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """index -> last final record (ok or device error). Timeouts are not final: resume retries."""
    done: dict[int, dict[str, Any]] = {}
    for rec in records:
        if rec.get("status") in ("ok", "error"):
            done[int(rec["index"])] = rec
    return done


class ResultsWriter:
    """Append-only, one JSON line per result, flushed and fsync'd before the next request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            self._file.close()


def latest_in_order(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per sentence (the last one), sorted by sentence index. A final answer (ok or
    device error) beats a later timeout record for the same sentence."""
    latest: dict[int, dict[str, Any]] = {}
    for rec in records:
        idx = int(rec["index"])
        if idx in latest and latest[idx].get("status") in ("ok", "error") \
                and rec.get("status") == "timeout":
            continue
        latest[idx] = rec
    return [latest[i] for i in sorted(latest)]


def merge_in_order(path: Path) -> list[dict[str, Any]]:
    """Rewrite results.jsonl sorted by sentence index, one record per index, via a temporary
    file and rename, so a crash here still leaves a valid file."""
    ordered = latest_in_order(read_results(path))
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for rec in ordered:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return ordered


# ---- the host side of the check ----------------------------------------------------------------


class Oracle:
    """Host tokenizer + integer reference for one blob; caches per sentence index."""

    def __init__(self, model_path: Path) -> None:
        from hil.quant.tokenizer import Tokenizer
        from hil.quant.blob import read_blob
        from hil.quant.reference import dims_of

        self.blob_bytes = model_path.read_bytes()
        self.blob = read_blob(self.blob_bytes)
        self.model_id = int(self.blob.model_id)
        self.dims = dims_of(self.blob)
        # A model ships with the tokenizer it was trained with; fall back to the shared one.
        own = model_path.parent / "tokenizer.json"
        self.tokenizer = Tokenizer.from_file(own) if own.is_file() else Tokenizer.from_file()
        self._lock = threading.Lock()

    def ids(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer.encode(text, max_len=self.dims["max_len"])]

    def logits(self, ids: list[int]) -> list[int]:
        from hil.quant.reference import forward

        return [int(v) for v in np.asarray(forward(self.blob, ids)).tolist()]


def load_oracle(model_path: Path) -> Oracle:
    """The Oracle, or one clear RunError (exit 2) for a missing, corrupt or foreign blob."""
    from hil.quant.blob import BlobError

    try:
        return Oracle(model_path)
    except FileNotFoundError:
        raise RunError(f"model blob {model_path} does not exist", EXIT_ENVIRONMENT) from None
    except (BlobError, ValueError, KeyError) as exc:
        raise RunError(f"model blob {model_path} is not a valid EmbBERT-Q blob: {exc}",
                       EXIT_ENVIRONMENT) from None


def _field(obj: Any, name: str, default: Any = None) -> Any:
    """Read a field of a protocol object whether it is a dataclass or a dict."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _as_id(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 16)
    except ValueError:
        return None


def _hello_dict(hello: Any) -> dict[str, Any]:
    keys = ("proto", "fw", "board", "model", "labels", "maxlen", "maxtext", "maxframe", "clock",
            "unit", "flash", "ram", "arena")
    out = {k: _field(hello, k) for k in keys}
    if isinstance(hello, dict):
        out.update(hello)
    if isinstance(out.get("model"), int):
        out["model"] = f"{out['model']:08X}"
    return {k: v for k, v in out.items() if v is not None}


# ---- one job: one target instance over a list of sentences ------------------------------------


@dataclass
class JobContext:
    cfg: RunConfig
    elf: Path
    oracle: Oracle
    writer: ResultsWriter
    timeout_s: float
    retries: int
    hello: dict[str, Any] = field(default_factory=dict)
    infos: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    restarts: list[str] = field(default_factory=list)  # why each dead target was restarted
    fault_stats: Any = None  # hil.targets.faulty.FaultStats, made on the first faulty start
    boots: int = 0  # target starts, for seeding each one's faults differently


class TargetDied(RuntimeError):
    """The target's link closed mid-run (process killed, emulator crashed)."""


def make_target(cfg: RunConfig, elf: Path, name: str, ctx: JobContext | None = None) -> Target:
    """The plain TARGETS table, plus the per-kind arguments; wrapped in a FaultyTarget when
    --faults is on (fault counts then add up in ctx.fault_stats)."""
    target = _make_plain_target(cfg, elf, name)
    if not cfg.faults:
        return target
    import random

    from hil.targets.faulty import FaultStats, FaultyTarget, parse_faults

    faults = parse_faults(cfg.faults)
    if ctx is None:
        return FaultyTarget(target, faults)
    with ctx.lock:
        if ctx.fault_stats is None:
            ctx.fault_stats = FaultStats()
        boot = ctx.boots
        ctx.boots += 1
    # One RNG per target start, seeded by (seed, start number): reproducible for a given run,
    # and a restarted target does not meet the same faults at the same requests again.
    return FaultyTarget(target, faults, ctx.fault_stats,
                        random.Random(faults.seed * 1_000_003 + boot))


def _make_plain_target(cfg: RunConfig, elf: Path, name: str) -> Target:
    run_dir = cfg.out_dir
    if cfg.target_factory is not None:
        return cfg.target_factory(cfg.board, run_dir, elf, name)
    cls = TARGETS.get(cfg.target)
    if cls is None:
        raise RunError(f"unknown target {cfg.target!r}; targets: {', '.join(TARGETS)}")
    if cfg.target not in cfg.board.targets:
        raise RunError(f"board {cfg.board.name} does not run on {cfg.target}; it runs on "
                       f"{', '.join(cfg.board.targets)}")
    if cfg.target == "serial":
        from hil.targets.serial import SerialTarget

        return SerialTarget(cfg.board, run_dir, port=cfg.port, serial_number=cfg.serial_number,
                            name=name)
    return cls(cfg.board, run_dir, elf=elf, name=name)  # type: ignore[call-arg]


class Session:
    """A started target with a protocol Device on it, HELLO checked."""

    def __init__(self, ctx: JobContext, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.target = make_target(ctx.cfg, ctx.elf, name, ctx)
        self.device: Any = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ref-{name}")

    def open(self) -> None:
        from hil.protocol import Device, DeviceTimeout

        link = self.target.start()
        self.device = Device(link, timeout=self.ctx.timeout_s, retries=self.ctx.retries)
        cfg = self.ctx.cfg
        timeout = cfg.hello_timeout_s or HELLO_TIMEOUT.get(cfg.target, 30.0)
        try:
            hello = self._hello(timeout)
        except (DeviceTimeout, ValueError) as exc:  # ValueError: a frame that is no HELLO
            why = "" if isinstance(exc, DeviceTimeout) else f"; the answer was not a HELLO: {exc}"
            raise NoHello(str(TargetError(
                f"{self.name}: the board never said HELLO within {timeout:g} s, nor answered "
                f"a HELLO request (expected a line starting with `$0 HELLO proto=1`){why}",
                link.tail(), link.log_path))) from None
        info = _hello_dict(hello)
        from hil.protocol import PROTO_VERSION

        if str(info.get("proto")) != str(PROTO_VERSION):
            raise RunError(str(TargetError(
                f"{self.name}: the device speaks protocol version {info.get('proto')}, this host "
                f"speaks {PROTO_VERSION} (firmware {info.get('fw', '?')}): rebuild the firmware "
                f"from this checkout (`hil build --board {cfg.board.name}`) or use the matching "
                f"hil", link.tail(), link.log_path)))
        got = _as_id(info.get("model"))
        if got != self.ctx.oracle.model_id:
            raise RunError(str(TargetError(
                f"{self.name}: the device runs model {got or 0:08X}, the host's blob "
                f"{cfg.model_path} is {self.ctx.oracle.model_id:08X}: rebuild the firmware "
                f"(`hil build --board {cfg.board.name} --model {cfg.model_path}`)",
                link.tail(), link.log_path)))
        with self.ctx.lock:
            self.ctx.hello = info
            self.ctx.infos.append(self.target.info())

    def _hello(self, timeout: float) -> Any:
        from hil.protocol import DeviceTimeout

        try:
            return self.device.wait_hello(timeout)
        except DeviceTimeout:
            # A real board may have booted before the port was opened: ask once.
            return self.device.hello(timeout=min(timeout, 5.0))

    def close(self) -> None:
        self.target.stop()
        self.pool.shutdown(wait=True)


def _unit_of(ctx: JobContext) -> tuple[str, str, int]:
    device_unit = str(ctx.hello.get("unit", "dwt"))
    clock = int(ctx.hello.get("clock") or ctx.cfg.board.clock_hz)
    return device_unit, cycle_unit(ctx.cfg.target, device_unit), clock


def classify_one(ctx: JobContext, session: Session, s: Sentence, job: int) -> dict[str, Any]:
    """Ask (the Device retries), judge; returns the record (status ok | error | timeout)."""
    from hil.protocol import DeviceError, DeviceTimeout

    host_ids = ctx.oracle.ids(s.text)
    rec: dict[str, Any] = {"index": s.index, "text": s.text, "label": s.label, "job": job,
                           "host_ids": host_ids}
    # The reference runs while the device computes (the link thread and numpy release the GIL).
    ref_future = session.pool.submit(ctx.oracle.logits, host_ids)
    t0 = time.perf_counter()
    try:  # the Device re-sends after a timeout or a damaged frame (ctx.retries times)
        res = session.device.classify(s.text, timeout=ctx.timeout_s)
    except DeviceTimeout as exc:
        fault = type(exc).__name__ == "DeviceFault"
        rec.update(status="timeout", error={"code": "FAULT" if fault else "TIMEOUT",
                                            "reason": str(exc)})
        return rec
    except DeviceError as exc:
        rec.update(status="error", error={"code": str(exc.code), "reason": str(exc.reason)})
        return rec
    host_ms = (time.perf_counter() - t0) * 1e3
    device_unit, unit, clock = _unit_of(ctx)
    logits = [int(v) for v in _field(res, "logits", [])]
    dev_ids = _field(res, "ids")
    ref = ref_future.result()
    label = int(_field(res, "label"))
    raw = int(_field(res, "cycles", 0) or 0)
    layers = [to_cycles(int(v), ctx.cfg.target, device_unit, clock)
              for v in (_field(res, "layers") or [])]
    rec.update(
        status="ok", pred=label, logits=logits, ref_logits=ref,
        agree=logits == ref,
        ids_match=None if dev_ids is None else [int(i) for i in dev_ids] == host_ids,
        correct=None if s.label is None else label == s.label,
        tokens=int(_field(res, "tokens", len(host_ids)) or 0),
        cycles=to_cycles(raw, ctx.cfg.target, device_unit, clock), cycles_raw=raw,
        device_unit=device_unit, unit=unit, layers=layers,
        stack=int(_field(res, "stack", 0) or 0), arena=int(_field(res, "arena", 0) or 0),
        tokenizer_cycles=None if _field(res, "tokcycles") is None else to_cycles(
            int(_field(res, "tokcycles")), ctx.cfg.target, device_unit, clock),
        host_ms=round(host_ms, 3),
    )
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


def _boot(ctx: JobContext, name: str, first: bool = False) -> Session:
    """A started session; a target that dies while booting is restarted (within the budget),
    and so is a reboot that brings no HELLO (the first boot without HELLO is fatal: that is a
    wrong firmware or port, not a transient)."""
    from hil.protocol import LinkClosed

    attempt = 0
    while True:
        session = Session(ctx, name if attempt == 0 else f"{name}-boot{attempt}")
        try:
            session.open()
            return session
        except LinkClosed as exc:
            session.close()
            _restart_allowed(ctx, name, f"died while booting: {exc}")
        except NoHello as exc:
            session.close()
            if first:
                raise
            _restart_allowed(ctx, name, f"no HELLO after a reboot: {exc}")
        attempt += 1


def run_job(ctx: JobContext, job: int, sentences: list[Sentence]) -> None:
    """One target instance. A timeout that outlives its retries reboots the target; a target
    that dies (link closed: killed, crashed) is restarted and the sentence in flight asked
    again, at most --max-restarts times per run. Finished results are on disk either way."""
    from hil.protocol import LinkClosed

    name = f"{ctx.cfg.target}-{ctx.cfg.board.name}-job{job}"
    session: Session | None = None
    deaths = 0
    try:
        session = _boot(ctx, name, first=True)
        i = 0
        while i < len(sentences):
            s = sentences[i]
            if ctx.stop.is_set():
                return
            try:
                rec = classify_one(ctx, session, s, job)
            except LinkClosed as exc:
                session.close()
                session = None
                _restart_allowed(ctx, name, f"sentence #{s.index}: {exc}")
                deaths += 1
                session = _boot(ctx, f"{name}-restart{deaths}")
                continue  # the same sentence again on the fresh target
            ctx.writer.append(rec)
            if ctx.cfg.progress is not None:
                ctx.cfg.progress(rec)
            i += 1
            if rec["status"] == "timeout":
                session.close()  # a device that stopped answering gets a fresh boot
                session = None
                session = _boot(ctx, f"{name}-reboot{s.index}")
    except RunError as exc:
        ctx.errors.append(str(exc))
        ctx.stop.set()
    except MissingTool as exc:
        ctx.errors.append(str(exc))
        ctx.stop.set()
    except TargetError as exc:
        ctx.errors.append(str(exc))
        ctx.stop.set()
    except Exception as exc:  # LinkClosed and anything unexpected: keep what we have
        from hil.protocol import LinkClosed

        what = "the target died mid-run" if isinstance(exc, LinkClosed) else \
            f"unexpected {type(exc).__name__}"
        ctx.errors.append(f"{name}: {what}: {exc}")
        ctx.stop.set()
    finally:
        if session is not None:
            session.close()


# ---- the run ---------------------------------------------------------------------------------


def save_run_meta(cfg: RunConfig) -> None:
    meta = {"board": cfg.board.name, "target": cfg.target, "scenario": cfg.scenario.as_dict(),
            "model": str(cfg.model_path), "limit": cfg.limit,
            "shard": list(cfg.shard) if cfg.shard else None, "jobs": cfg.jobs}
    (cfg.out_dir / "run.json").write_text(json.dumps(meta, indent=2) + "\n")


def load_run_meta(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "run.json"
    if not path.is_file():
        raise RunError(f"--resume {out_dir}: no run.json there (not a run directory)", 2)
    return json.loads(path.read_text())


def prepare_firmware(cfg: RunConfig) -> tuple[Path, fw.ElfSizes | None]:
    if cfg.target == "serial":
        return cfg.elf or Path("-"), fw.elf_sizes(cfg.elf) if cfg.elf else None
    if cfg.elf is not None:
        elf = cfg.elf
    else:
        try:
            elf = fw.build(cfg.board, cfg.model_path, log_path=cfg.out_dir / "build.log",
                           dest=cfg.out_dir / "firmware.elf")
        except fw.BuildError as exc:
            raise RunError(str(exc), exc.exit_code) from None
    if cfg.board.name == "native":
        return elf, None  # a host executable: its sizes say nothing about a chip
    sizes = fw.elf_sizes(elf)
    try:
        fw.check_fits(cfg.board, sizes)
    except fw.DoesNotFit as exc:
        raise RunError(str(exc), 1) from None
    return elf, sizes


def run(cfg: RunConfig) -> tuple[int, dict[str, Any]]:
    """Run the scenario; returns (exit code, summary). Never raises for target failures: they
    become `summary["error"]` and exit code 3, with every finished result on disk."""
    from hil.summary import check_expectations, summarize, write_summary

    if cfg.target == "serial" and cfg.jobs > 1:
        raise RunError("--jobs > 1 needs one board per job; the serial target has one", 2)
    oracle = load_oracle(cfg.model_path)  # a bad blob stops here, before anything is written
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    save_run_meta(cfg)
    elf, sizes = prepare_firmware(cfg)
    results_path = cfg.out_dir / "results.jsonl"
    chosen = select(cfg.scenario.load_sentences(), cfg.limit, cfg.shard)
    done = finished(read_results(results_path)) if cfg.resume else {}
    if not cfg.resume and results_path.exists():
        results_path.unlink()  # a fresh run in an old directory starts clean
    pending = [s for s in chosen if s.index not in done]
    jobs = max(1, min(cfg.jobs, len(pending) or 1))
    parts = [pending[j::jobs] for j in range(jobs)]
    writer = ResultsWriter(results_path)
    ctx = JobContext(cfg=cfg, elf=elf, oracle=oracle, writer=writer,
                     timeout_s=cfg.timeout_s or cfg.scenario.timeout_s,
                     retries=cfg.retries if cfg.retries is not None else cfg.scenario.retries)
    t0 = time.perf_counter()
    if pending:
        threads = [threading.Thread(target=run_job, args=(ctx, j, part), name=f"job{j}")
                   for j, part in enumerate(parts)]
        install_signal_handlers()  # from the main thread: SIGTERM/SIGHUP kill the emulators
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():  # a bare join() would not let Ctrl-C through
                    t.join(0.2)
        except KeyboardInterrupt:
            # Stop the jobs and their emulators now, keep every finished record, and let the
            # caller say how to resume. Jobs see ctx.stop and do not restart the killed targets.
            ctx.stop.set()
            kill_all_children()
            for t in threads:
                t.join(10.0)
            writer.close()
            merge_in_order(results_path)
            raise
    wall = time.perf_counter() - t0
    writer.close()
    records = merge_in_order(results_path)
    wanted = {s.index for s in chosen}
    records = [r for r in records if int(r["index"]) in wanted]
    summary = summarize(cfg, records, sizes=sizes, hello=ctx.hello, targets=ctx.infos,
                        wall_s=wall, processed=len(pending), skipped=len(done),
                        total=len(chosen), error="\n".join(ctx.errors) or None)
    summary["reliability"] = {
        "restarts": len(ctx.restarts), "max_restarts": cfg.max_restarts,
        "restart_reasons": ctx.restarts[:20], "faults": cfg.faults,
        "faults_injected": ctx.fault_stats.as_dict() if ctx.fault_stats is not None else None,
        "missing": sorted({s.index for s in chosen} - {int(r["index"]) for r in records})[:50],
    }
    failed = check_expectations(summary, cfg.scenario.expect)
    write_summary(summary, cfg.out_dir / "summary.json", cfg.json_path)
    if ctx.errors:
        code = EXIT_ENVIRONMENT if any("not found" in e and "install" in e
                                       for e in ctx.errors) else EXIT_RUN_ERROR
        return code, summary
    return (EXIT_EXPECTATIONS if failed else EXIT_OK), summary


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
