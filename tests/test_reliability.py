"""Reliability of a whole `hil run` on real firmware: faults on the link, targets killed mid-run,
runs interrupted and resumed, signals to the host. The promise under test (issue #7): every
sentence ends answered correctly or marked failed with a reason, none is lost, agreement of the
answered ones stays 1.0, and no emulator or firmware process outlives `hil`.

The same paths at scale (thousands of sentences) are measured by benchmarks/reliability.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.boards import BOARDS
from hil.results import read_results
from hil.runner import RunConfig, run
from hil.scenario import load_scenario
from hil.targets import NativeTarget
from hil.targets.faulty import Faults, FaultyLink, parse_faults

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
HAVE_QEMU = bool(shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"))
needs_native = pytest.mark.skipif(shutil.which("gcc") is None or not MODEL.is_file(),
                                  reason="gcc and the shipped nlu_scenario model needed")
needs_qemu = pytest.mark.skipif(not HAVE_QEMU or not MODEL.is_file(),
                                reason="qemu-system-arm + arm-none-eabi-gcc needed")


def config(out: Path, board: str = "native", **kw) -> RunConfig:
    target = "native" if board == "native" else "qemu"
    return RunConfig(board=BOARDS[board], target=target, scenario=load_scenario("nlu_scenario"),
                     model_path=MODEL, out_dir=out, **kw)


def check_nothing_lost(out: Path, n: int) -> list[dict]:
    """Every sentence has a record; answered ones agree bit for bit; the rest say why."""
    recs = read_results(out / "results.jsonl")
    assert sorted(r["index"] for r in recs) == list(range(n))
    for r in recs:
        if r["status"] == "ok":
            assert r["agree"] is True, r
        else:
            assert r["error"]["code"] and r["error"]["reason"], r
    return recs


# ---- the fault model itself --------------------------------------------------------------------


def test_parse_faults_spec() -> None:
    f = parse_faults("drop=0.01, corrupt=0.02,dup=0.003,delay=0.1,delay_s=0.2,split=0.5,"
                     "reset=0.04,kill=0.001,seed=7")
    assert (f.byte_drop, f.byte_corrupt, f.byte_dup, f.delay, f.delay_s, f.split, f.reset,
            f.kill, f.seed) == (0.01, 0.02, 0.003, 0.1, 0.2, 0.5, 0.04, 0.001, 7)
    assert f.active() and not Faults().active()
    for bad in ("drop", "drop=x", "drop=2", "noise=0.1", "deaf_from=3"):
        with pytest.raises(ValueError, match="--faults"):
            parse_faults(bad)


class _Sink:
    """A stand-in StreamLink: records writes, replays canned reads."""

    def __init__(self) -> None:
        self.sent = bytearray()
        self.notes: list[str] = []
        self.transcript = self
        self.log_path = Path("/dev/null")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def write(self, data: bytes) -> None:
        self.sent += data

    def read(self, timeout: float) -> bytes:
        return b"$0 HELLO*00000000\n" * 50


def test_faulty_link_is_seeded_and_counts_every_fault() -> None:
    """Same seed, same faults; each fault is counted and noted in the transcript."""
    def once() -> tuple[bytes, bytes, dict[str, int], int]:
        sink = _Sink()
        link = FaultyLink(sink, parse_faults("drop=0.05,corrupt=0.05,dup=0.05,split=0.5,"
                                             "reset=0.2,seed=11"))  # type: ignore[arg-type]
        for i in range(50):
            link.write(b"$%d CLASSIFY hello world*00000000\n" % (i + 1))
        got = link.read(0.1)
        return bytes(sink.sent), got, link.stats.as_dict(), len(sink.notes)

    a, b = once(), once()
    assert a == b
    sent, got, counts, notes = a
    assert set(counts) >= {"drop", "corrupt", "dup", "split", "reset"}
    assert sum(counts.values()) == notes
    assert b"$0 RESET*" in sent and got != b"$0 HELLO*00000000\n" * 50


# ---- whole runs on native ------------------------------------------------------------------------


@needs_native
def test_run_under_faults_loses_nothing(tmp_path: Path) -> None:
    """Bytes dropped, flipped, doubled and late, writes split, the device reset mid-sentence and
    its process killed: all 40 sentences end with a record, every answer is bit-exact."""
    out = tmp_path / "run"
    # Which request draws a reset or a kill depends on how reads and writes are chunked (one
    # seeded stream for every draw), so the rates are high enough that the 40 sentences' 50 or
    # more requests draw both with near certainty (P(no kill) = 0.85^50 < 0.1%). How many kills
    # is timing too: 8 to 26 in 30 runs on a loaded machine here (CI once drew 21 and hit a cap
    # of 20). The cap is not what this test is about (the next-but-one test stops a run at its
    # cap), so it is far above any count these rates draw. 5 retries, not 3: a reset or a kill
    # spends an attempt, so with 3 up to 4 of the 40 went unanswered (the floor of 36 below);
    # with 5, 28 of those 30 runs answered all 40.
    spec = ("drop=0.0003,corrupt=0.0003,dup=0.0003,delay=0.02,delay_s=0.02,split=0.3,reset=0.2,"
            "kill=0.15,seed=3")
    code, s = run(config(out, limit=40, faults=spec, timeout_s=1.0, retries=5, max_restarts=200))
    recs = check_nothing_lost(out, 40)
    rel = s["reliability"]
    assert rel["missing"] == []
    # Link damage that outlived the retries is unanswered, not final: the verdict says so (3)
    # and nothing else is wrong with the run.
    assert (code, s["error"] is None) == ((3, False) if rel["unanswered"] else (0, True))
    assert sum(rel["faults_injected"].values()) >= 20
    assert {"reset", "kill"} <= set(rel["faults_injected"])
    assert rel["restarts"] == rel["faults_injected"]["kill"]
    assert sum(r["status"] == "ok" for r in recs) >= 36
    assert s["summary"]["agreement"] == 1.0


@needs_native
def test_killed_target_is_restarted_and_the_run_equals_a_clean_one(
        tmp_path: Path, recording_factory) -> None:
    """kill -9 the firmware twice mid-run: the runner notices (link closed), restarts it, asks
    the sentence in flight again; predictions and logits equal an undisturbed run's."""
    clean = tmp_path / "clean"
    run(config(clean, limit=16))
    out = tmp_path / "killed"
    factory = recording_factory(NativeTarget)
    started = factory.started

    def kill_some(rec: dict) -> None:
        if rec["index"] in (4, 9):
            os.kill(started[-1].proc.pid, signal.SIGKILL)

    t0 = time.monotonic()
    code, s = run(config(out, limit=16, target_factory=factory, progress=kill_some))
    assert time.monotonic() - t0 < 60  # noticed at once, not after a timeout
    assert code == 0 and s["error"] is None
    assert s["reliability"]["restarts"] == 2 and len(started) == 3
    assert not any(t.alive() for t in started)
    want = {r["index"]: (r["pred"], r["logits"]) for r in read_results(clean / "results.jsonl")}
    got = {r["index"]: (r["pred"], r["logits"]) for r in check_nothing_lost(out, 16)}
    assert got == want


@needs_qemu
def test_killed_qemu_is_restarted_within_bounded_time(tmp_path: Path, recording_factory) -> None:
    """kill -9 the whole QEMU process group mid-run: the socket closes, the runner notices at
    once, boots a fresh QEMU and finishes with every answer bit-exact."""
    from hil.targets import QemuTarget

    out = tmp_path / "run"
    factory = recording_factory(QemuTarget)
    started = factory.started

    def kill_once(rec: dict) -> None:
        if rec["index"] == 3:
            os.killpg(started[-1].proc.pid, signal.SIGKILL)

    t0 = time.monotonic()
    code, s = run(config(out, board="netduinoplus2", limit=8, target_factory=factory,
                         progress=kill_once, timeout_s=10))
    assert time.monotonic() - t0 < 60  # well under the 10 s x 2 attempts a timeout would cost
    assert code == 0 and s["reliability"]["restarts"] == 1 and len(started) == 2
    assert "killed by SIGKILL" in s["reliability"]["restart_reasons"][0]
    assert all(r["status"] == "ok" for r in check_nothing_lost(out, 8))
    assert not any(t.alive() for t in started)


@needs_native
def test_restarts_exhausted_stop_with_a_clear_message(tmp_path: Path, recording_factory) -> None:
    out = tmp_path / "run"
    factory = recording_factory(NativeTarget)
    started = factory.started

    def kill_always(rec: dict) -> None:
        os.kill(started[-1].proc.pid, signal.SIGKILL)

    code, s = run(config(out, limit=10, target_factory=factory, progress=kill_always,
                         max_restarts=2))
    assert code == 3
    assert "more than --max-restarts 2" in s["error"] and f"--resume {out}" in s["error"]
    assert "killed by SIGKILL" in s["error"]
    assert len(read_results(out / "results.jsonl")) == 3  # one answer per life, all kept
    assert not any(t.alive() for t in started)


# ---- `hil run` as a process: interrupted, resumed, signalled ----------------------------------


def _default_sigint() -> None:
    """A preexec hook: SIGINT as a user's terminal has it. A shell's `cmd &` without job control
    (how a CI job may start the suite) leaves SIGINT ignored, and an ignored disposition
    survives exec, so `hil` would never see the Ctrl-C these tests send."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def hil_run(out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hil.cli", "run", "--quiet", "--out", str(out),
                             *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=_default_sigint)


def children_of(pid: int) -> list[int]:
    """Direct children of pid, from /proc (no psutil)."""
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for_results(out: Path, n: int, host: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while len(read_results(out / "results.jsonl")) < n:
        assert host.poll() is None, host.stderr.read().decode() if host.stderr else ""
        assert time.monotonic() < deadline, "no results in time"
        time.sleep(0.05)


def firmware_children(host: subprocess.Popen[bytes]) -> list[int]:
    kids = [k for k in children_of(host.pid) if alive(k)]
    names = {k: Path(f"/proc/{k}/comm").read_text().strip() for k in kids}
    return [k for k, n in names.items() if n.startswith(("firmware", "qemu"))]


@needs_native
@pytest.mark.parametrize("sig", [None, signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_no_firmware_outlives_hil(tmp_path: Path, sig: signal.Signals | None) -> None:
    """Normal exit, Ctrl-C, SIGTERM, SIGHUP: the firmware process is gone when `hil` is."""
    out = tmp_path / "run"
    # 300 sentences in every case: a short run could end before its firmware child is seen.
    # With a signal to send, every link read/write also waits 10 ms (an injected delay fault),
    # so the run lasts seconds: 300 native sentences take ~1 s and could otherwise finish
    # before the signal arrives, and the test would check a normal exit instead.
    slow = ["--faults", "delay=1,delay_s=0.01,seed=1"] if sig is not None else []
    host = hil_run(out, "--board", "native", "--limit", "300", *slow)
    wait_for_results(out, 3, host, 60)
    kids = firmware_children(host)
    assert kids, "no firmware child found"
    if sig is not None:
        host.send_signal(sig)
    code = host.wait(30)
    deadline = time.monotonic() + 5
    while any(alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(k) for k in kids), f"firmware {kids} outlived hil (exit {code})"
    if sig == signal.SIGINT:
        assert code == 130
        assert b"--resume" in (host.stderr.read() if host.stderr else b"")
    assert len(read_results(out / "results.jsonl")) >= 3  # what was finished is kept


@needs_qemu
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_no_qemu_outlives_hil(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "run"
    host = hil_run(out, "--board", "netduinoplus2", "--limit", "300")
    wait_for_results(out, 3, host, 120)
    kids = firmware_children(host)
    assert kids
    host.send_signal(sig)
    host.wait(30)
    deadline = time.monotonic() + 5
    while any(alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(k) for k in kids), "QEMU outlived hil"


@needs_native
def test_host_killed_resume_equals_uninterrupted(tmp_path: Path) -> None:
    """kill -9 `hil run` itself mid-run, `--resume` the directory: no sentence is asked twice
    and the merged records equal an uninterrupted run's (predictions and logits)."""
    clean = tmp_path / "clean"
    code, _ = run(config(clean, limit=40))
    out = tmp_path / "run"
    host = hil_run(out, "--board", "native", "--limit", "40")
    wait_for_results(out, 10, host, 60)
    host.kill()
    host.wait(10)
    first = {r["index"] for r in read_results(out / "results.jsonl")}
    assert 10 <= len(first) < 40
    res = subprocess.run([sys.executable, "-m", "hil.cli", "run", "--quiet", "--resume", str(out)],
                         cwd=ROOT, capture_output=True, timeout=300)
    assert res.returncode in (0, 1), res.stderr.decode()
    recs = read_results(out / "results.jsonl")
    assert [r["index"] for r in recs] == list(range(40))  # one record each: none repeated
    resumed = {r["index"] for r in recs if r["job"] == 0} - first
    assert resumed.isdisjoint(first)
    want = {r["index"]: (r["pred"], r["logits"]) for r in read_results(clean / "results.jsonl")}
    assert {r["index"]: (r["pred"], r["logits"]) for r in recs} == want


# ---- one clear message, nothing half-written ------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "flipped", "not a blob"])
def test_corrupt_model_blob_one_message_nothing_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    from hil import cli

    data = bytearray(MODEL.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 3]
    elif damage == "flipped":
        data[len(data) // 2] ^= 0x40
    else:
        data = bytearray(b"hello, I am a text file\n" * 10)
    bad = tmp_path / "model.bin"
    bad.write_bytes(bytes(data))
    out = tmp_path / "run"
    code = cli.main(["run", "--board", "native", "--model", str(bad), "--out", str(out),
                     "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"model blob {bad} is not a valid EmbBERT-Q blob" in err and "Traceback" not in err
    assert not out.exists()  # nothing half-written


@needs_native
def test_protocol_version_mismatch_is_one_clear_error(tmp_path: Path) -> None:
    """A device that speaks another protocol version is refused at HELLO, before any request."""
    from hil.protocol import encode_frame

    hello = encode_frame(0, "HELLO", "proto=2 fw=9.9.9 board=native model=1C201747 labels=18 "
                         "maxlen=64 maxtext=2048 maxframe=2600 clock=1000000000 unit=ns flash=0 "
                         "ram=0 arena=1").decode()
    script = f"import sys,time; sys.stdout.write({hello!r}); sys.stdout.flush(); time.sleep(30)"

    def factory(board, run_dir, elf, name):
        return NativeTarget(board, run_dir, command=[sys.executable, "-c", script], name=name)

    code, s = run(config(tmp_path / "run", limit=3, elf=Path(sys.executable),
                         target_factory=factory))
    assert code == 3
    assert "protocol version 2, this host speaks 1 (firmware 9.9.9)" in s["error"]
    assert "full log:" in s["error"]
    assert read_results(tmp_path / "run" / "results.jsonl") == []


def test_bad_faults_spec_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from hil import cli

    code = cli.main(["run", "--board", "native", "--faults", "drop=lots", "--out",
                     str(tmp_path / "run")])
    assert code == 2 and "--faults: drop='lots' is not a number" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_serial_permission_denied_is_one_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No permission on the port (not in the dialout group): one message with the fix, exit 3,
    no traceback. (Simulated: the tests run as root, where chmod does not stop an open.)"""
    serial = pytest.importorskip("serial")
    from hil import cli

    def denied(port: str, *a: object, **kw: object) -> None:
        raise serial.SerialException(f"[Errno 13] could not open port {port}: [Errno 13] "
                                     f"Permission denied: '{port}'")

    monkeypatch.setattr(serial, "Serial", denied)
    code = cli.main(["run", "--board", "stm32f4", "--target", "serial", "--port", "/dev/ttyACM7",
                     "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err
    assert "cannot open /dev/ttyACM7" in err and "Permission denied" in err
    assert "dialout group" in err


@needs_native
def test_link_damage_is_retryable_and_resume_equals_a_clean_run(tmp_path: Path) -> None:
    """B5: a request damaged in transit past its retries used to be a final BAD_FRAME error
    (never asked again, exit 0). Now it is unanswered (exit 3), and --resume finishes the run
    with every answer equal to an undisturbed run's."""
    clean = tmp_path / "clean"
    run(config(clean, limit=30))
    out = tmp_path / "run"
    code, s = run(config(out, limit=30, faults="corrupt=0.002,seed=5", timeout_s=2.0))
    damaged = [r for r in read_results(out / "results.jsonl") if r["status"] != "ok"]
    assert damaged, "the fault rate should damage some requests"
    assert all(r["status"] == "timeout" for r in damaged), damaged  # never final
    assert {r["error"]["code"] for r in damaged} <= {"BAD_FRAME", "CRC"}  # damage, not a hang
    assert code == 3 and s["reliability"]["unanswered"] == sorted(r["index"] for r in damaged)
    code, s = run(config(out, limit=30, resume=True))
    assert code == 0 and s["complete"] and s["reliability"]["unanswered"] == []
    want = {r["index"]: (r["pred"], r["logits"]) for r in read_results(clean / "results.jsonl")}
    got = {r["index"]: (r["pred"], r["logits"]) for r in check_nothing_lost(out, 30)}
    assert got == want


@needs_native
def test_frame_faults_resumed_with_faults_on_equal_a_clean_run(tmp_path: Path) -> None:
    """Issue #17 item 1 at small scale: 5% of frames lost and 5% damaged, both ways, and the
    faults still on for every --resume: the boots are spared, so sentences get answered, and
    the finished file equals an undisturbed run's (the benchmark does 1,000 on netduinoplus2)."""
    clean, out = tmp_path / "clean", tmp_path / "run"
    run(config(clean, limit=40))
    spec = "drop_frame=0.05,corrupt_frame=0.05,seed=9"
    code, s = run(config(out, limit=40, faults=spec, timeout_s=0.5, retries=2))
    injected = s["reliability"]["faults_injected"]
    assert injected.get("drop_frame") and injected.get("corrupt_frame"), injected
    passes = 1
    while code == 3 and passes < 5:
        code, s = run(config(out, limit=40, resume=True, faults=spec, timeout_s=0.5,
                             retries=2))
        passes += 1
    assert code == 0 and s["complete"], (passes, s["error"])
    want = {r["index"]: (r["pred"], r["logits"]) for r in read_results(clean / "results.jsonl")}
    got = {r["index"]: (r["pred"], r["logits"]) for r in check_nothing_lost(out, 40)}
    assert got == want


# ---- issue #17: the text limit, not the escaped frame's --------------------------------------


def _texts_at_the_limit() -> list[tuple[str, str]]:
    """2,000 and 2,048 bytes of `$` (3 bytes each on the wire) and of multi-byte UTF-8 (each byte
    %XX on the wire): the worst cases for a limit that would count escaped bytes."""
    euro, e_acute = "\u20ac", "\u00e9"  # 3 and 2 bytes in UTF-8
    return [("$ x2000", "$" * 2000), ("$ x2048", "$" * 2048),
            ("utf8 2000 B", euro * 666 + e_acute), ("utf8 2048 B", euro * 682 + e_acute)]


@pytest.mark.parametrize("board", [
    pytest.param("native", marks=needs_native),
    pytest.param("netduinoplus2", marks=needs_qemu)])
def test_text_limit_is_on_the_text_not_the_escaped_frame(tmp_path: Path, board: str) -> None:
    """Up to MAX_TEXT bytes of any content are answered bit-exactly; one byte more is TOO_LONG."""
    from hil import firmware as fw
    from hil.oracle import Oracle
    from hil.protocol import MAX_TEXT, Device, DeviceError
    from hil.targets import QemuTarget

    b = BOARDS[board]
    elf = fw.build(b, MODEL, log_path=tmp_path / "build.log", dest=tmp_path / "firmware.elf")
    target = (NativeTarget(b, tmp_path, elf=elf) if board == "native"
              else QemuTarget(b, tmp_path, elf=elf))
    oracle = Oracle(MODEL)
    try:
        dev = Device(target.start(), timeout=30.0, retries=0)
        assert dev.wait_hello(60).maxtext == MAX_TEXT
        for name, text in _texts_at_the_limit():
            assert len(text.encode()) in (2000, MAX_TEXT), name
            res = dev.classify(text)
            ids = oracle.ids(text)
            assert (res.ids, res.logits) == (ids, oracle.logits(ids)), name
        for text in ("$" * (MAX_TEXT + 1), "\u20ac" * 683):  # 2,049 bytes
            with pytest.raises(DeviceError) as err:
                dev.classify(text)
            assert err.value.code == "TOO_LONG"
        res = dev.classify("wake me up at seven")  # and the device is still right afterwards
        assert res.logits == oracle.logits(oracle.ids("wake me up at seven"))
    finally:
        target.stop()
