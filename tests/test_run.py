"""End-to-end `hil run`: real firmware, real pty/socket bytes, real QEMU; plus one test per
failure a user meets (no toolchain, no emulator, model too big, emulator killed mid-run, no HELLO).

Skips say why: the Arm toolchain or QEMU not installed, or no model (neither a shipped
hil/models/nlu_scenario/model.bin nor torch to make a seeded random one). Mocked here, and only
here: a board that never says hello is a host program (`cat`, a junk printer) on the native pty,
because a broken board cannot exist on this machine on purpose.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hil import cli
from hil.boards import BOARDS
from hil.results import read_results
from hil.runner import RunConfig, run
from hil.scenario import load_scenario
from hil.targets import NativeTarget, QemuTarget
from hil.targets.base import UNIT_NS
from hil.targets.qemu import UNIT_QEMU

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = shutil.which("qemu-system-arm") is not None
HAVE_GCC = shutil.which("gcc") is not None and shutil.which("make") is not None
needs_native = pytest.mark.skipif(not HAVE_GCC, reason="gcc/make not installed (native board)")
needs_qemu = pytest.mark.skipif(not (HAVE_ARM and HAVE_QEMU), reason=(
    "needs arm-none-eabi-gcc and qemu-system-arm: sudo apt-get install -y "
    "--no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"))


@pytest.fixture(scope="session")
def model_blob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped NLU model, or a seeded random 18-label model when none is shipped yet."""
    if SHIPPED.is_file():
        return SHIPPED
    pytest.importorskip("torch", reason="no shipped nlu_scenario model and no torch to make one")
    from hil.quant.quantize import blob_bytes, random_quant_model

    path = tmp_path_factory.mktemp("model") / "random18.bin"
    path.write_bytes(blob_bytes(random_quant_model(num_labels=18, seed=0)))
    return path


def hil(*argv: str) -> int:
    return cli.main(list(argv))


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@needs_native
def test_native_end_to_end(model_blob: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = hil("run", "--board", "native", "--model", str(model_blob), "--limit", "40",
               "--out", str(out), "--json", str(tmp_path / "s.json"), "--quiet")
    s = summary_of(out)
    assert json.loads((tmp_path / "s.json").read_text()) == s
    assert s["summary"]["sentences"] == 40 and s["summary"]["errors"] == 0
    assert s["summary"]["agreement"] == 1.0  # bit for bit, every sentence
    assert s["summary"]["tokenizer_agreement"] == 1.0
    assert s["summary"]["cycles"]["unit"] == UNIT_NS
    assert s["emulated"] is False and s["summary"]["latency_ms"]["emulated"] is False
    assert s["summary"]["stack_peak_bytes"] > 0 and s["summary"]["arena_peak_bytes"] > 0
    assert s["throughput"]["sentences_per_s"] > 0
    assert code in (0, 1)  # 1 only if the random stand-in model misses min_accuracy
    if code == 1:
        assert all(f.startswith("min_accuracy") for f in s["failed"])
    records = read_results(out / "results.jsonl")
    assert [r["index"] for r in records] == list(range(40))
    assert all(r["agree"] and r["logits"] == r["ref_logits"] for r in records)


@needs_qemu
def test_qemu_end_to_end(model_blob: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    hil("run", "--board", "netduinoplus2", "--model", str(model_blob), "--limit", "36",
        "--out", str(out), "--quiet")
    s = summary_of(out)
    assert s["target"] == "qemu" and s["emulated"] is True
    assert s["summary"]["sentences"] == 36 and s["summary"]["errors"] == 0
    assert s["summary"]["agreement"] == 1.0
    cyc = s["summary"]["cycles"]
    assert cyc["unit"] == UNIT_QEMU and cyc["median"] > 0
    # SysTick ticks at 168 MHz were converted to instructions: ticks * 1e9 / f.
    rec = read_results(out / "results.jsonl")[0]
    assert rec["device_unit"] == "systick"
    assert rec["cycles"] == round(rec["cycles_raw"] * 1e9 / 168e6)
    assert s["summary"]["latency_ms"]["emulated"] is True
    board = BOARDS["netduinoplus2"]
    assert 0 < s["summary"]["ram_peak_bytes"] <= board.ram_bytes
    assert 0 < s["summary"]["flash_bytes"] <= board.flash_bytes


@needs_native
def test_jobs_2_merges_in_sentence_order(model_blob: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    hil("run", "--board", "native", "--model", str(model_blob), "--limit", "30", "--jobs", "2",
        "--out", str(out), "--quiet")
    records = read_results(out / "results.jsonl")
    assert [r["index"] for r in records] == list(range(30))
    assert {r["job"] for r in records} == {0, 1}  # both instances really worked
    assert summary_of(out)["summary"]["agreement"] == 1.0
    # Each job had its own target, with its own transcript.
    assert (out / "native-native-job0.log").is_file() and (out / "native-native-job1.log").is_file()
    sentences = load_scenario("nlu_scenario").load_sentences()
    assert [r["text"] for r in records] == [s.text for s in sentences[:30]]


@needs_native
def test_shard_selects_one_block(model_blob: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    hil("run", "--board", "native", "--model", str(model_blob), "--limit", "30",
        "--shard", "2/3", "--out", str(out), "--quiet")
    assert [r["index"] for r in read_results(out / "results.jsonl")] == list(range(10, 20))


@needs_native
def test_resume_after_interrupted_run(model_blob: Path, tmp_path: Path,
                                      recording_factory) -> None:
    """Interrupt a real run after 7 answers (the target dies), then --resume finishes it."""
    out = tmp_path / "run"
    factory = recording_factory(NativeTarget)
    started = factory.started

    def kill_after_7(rec: dict) -> None:
        if len(read_results(out / "results.jsonl")) == 7:
            started[0].proc.kill()  # the process dies between two requests

    cfg = RunConfig(board=BOARDS["native"], target="native",
                    scenario=load_scenario("nlu_scenario"), model_path=model_blob, out_dir=out,
                    limit=20, target_factory=factory, progress=kill_after_7,
                    max_restarts=0)  # no restart: the run stops, --resume finishes it
    code, s = run(cfg)
    assert code == 3 and s["complete"] is False
    assert len(read_results(out / "results.jsonl")) == 7
    code = hil("run", "--resume", str(out), "--quiet")
    s = summary_of(out)
    assert s["complete"] is True and s["summary"]["sentences"] == 20
    assert s["throughput"]["skipped_resumed"] == 7 and s["throughput"]["processed_this_run"] == 13
    assert [r["index"] for r in read_results(out / "results.jsonl")] == list(range(20))


@needs_qemu
def test_emulator_killed_mid_run_keeps_results(model_blob: Path, tmp_path: Path,
                                                recording_factory) -> None:
    """SIGKILL the real QEMU after 5 answers: exit 3, the 5 results on disk, a clear error."""
    out = tmp_path / "run"
    factory = recording_factory(QemuTarget)
    started = factory.started

    def kill_qemu(rec: dict) -> None:
        if len(read_results(out / "results.jsonl")) == 5:
            os.killpg(started[0].proc.pid, signal.SIGKILL)

    cfg = RunConfig(board=BOARDS["netduinoplus2"], target="qemu",
                    scenario=load_scenario("nlu_scenario"), model_path=model_blob, out_dir=out,
                    limit=12, target_factory=factory, progress=kill_qemu, timeout_s=10,
                    max_restarts=0)  # no restart: the run stops with a clear message
    code, s = run(cfg)
    assert code == 3
    assert len(read_results(out / "results.jsonl")) == 5
    assert "died" in s["error"] and "SIGKILL" in s["error"]
    assert "full log:" in s["error"] and str(out) in s["error"]
    assert summary_of(out)["summary"]["sentences"] == 5
    assert not started[0].alive()


def _never_hello(command: list[str]):
    def factory(board, run_dir, elf, name):
        return NativeTarget(board, run_dir, command=command, name=name)
    return factory


@needs_native
@pytest.mark.parametrize("command, shows", [
    # A board that prints junk and never a HELLO frame (wrong baud rate, other firmware).
    ([sys.executable, "-c", "import sys,time; sys.stdout.write('garbage \\x01 boot loop\\n');"
      "sys.stdout.flush(); time.sleep(60)"], "garbage"),
    # A looped-back port (`cat`): our own HELLO request comes back, never a device HELLO.
    (["cat"], "1 HELLO*"),
])
def test_board_never_says_hello(model_blob: Path, tmp_path: Path, command: list[str],
                                shows: str) -> None:
    out = tmp_path / "run"
    cfg = RunConfig(board=BOARDS["native"], target="native",
                    scenario=load_scenario("nlu_scenario"), model_path=model_blob, out_dir=out,
                    limit=3, elf=Path(shutil.which(command[0]) or command[0]),
                    target_factory=_never_hello(command),
                    hello_timeout_s=1.0, timeout_s=0.5, retries=0)
    code, s = run(cfg)
    assert code == 3
    assert "HELLO" in s["error"] and shows in s["error"]
    assert "full log:" in s["error"]
    assert s["summary"]["sentences"] == 0


@needs_native
def test_wrong_model_on_device(model_blob: Path, tmp_path: Path) -> None:
    """Firmware built for another blob: the HELLO model id check stops the run and says so."""
    from hil import firmware as fw

    elf = fw.build(BOARDS["native"], model_blob, dest=tmp_path / "fw.elf")
    other = tmp_path / "other.bin"
    data = bytearray(model_blob.read_bytes())
    other.write_bytes(data)  # same bytes first: must pass
    cfg = RunConfig(board=BOARDS["native"], target="native",
                    scenario=load_scenario("nlu_scenario"), model_path=other,
                    out_dir=tmp_path / "ok", limit=2, elf=elf)
    assert run(cfg)[1]["summary"]["sentences"] == 2
    pytest.importorskip("torch", reason="needs torch to make a second, different model")
    from hil.quant.quantize import blob_bytes, random_quant_model

    other.write_bytes(blob_bytes(random_quant_model(num_labels=18, seed=7, calib=4)))
    cfg.model_path, cfg.out_dir = other, tmp_path / "bad"
    code, s = run(cfg)
    assert code == 3 and "rebuild the firmware" in s["error"]


def _hil_subprocess(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hil.cli", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


def test_no_toolchain(model_blob: Path, tmp_path: Path) -> None:
    """PATH without arm-none-eabi-gcc: one clear message naming the apt command, exit 2."""
    env = {**os.environ, "PATH": str(tmp_path)}  # nothing on PATH at all
    p = _hil_subprocess(["build", "--board", "netduinoplus2", "--model", str(model_blob)], env)
    assert p.returncode == 2, p.stderr
    assert "arm-none-eabi-gcc" in p.stderr
    assert "apt-get install -y --no-install-recommends gcc-arm-none-eabi" in p.stderr
    assert "libnewlib-arm-none-eabi" in p.stderr


def test_no_emulator(model_blob: Path, tmp_path: Path) -> None:
    """QEMU missing: exit 2 with the install command, before anything is built."""
    env = {**os.environ, "QEMU": str(tmp_path / "no-such-qemu")}
    p = _hil_subprocess(["run", "--board", "netduinoplus2", "--model", str(model_blob),
                         "--out", str(tmp_path / "r")], env)
    assert p.returncode == 2, p.stderr
    assert "qemu-system-arm not found" in p.stderr
    assert "apt-get install -y --no-install-recommends qemu-system-arm" in p.stderr


def test_no_renode_says_where_to_go(model_blob: Path, tmp_path: Path) -> None:
    env = {**os.environ, "RENODE": str(tmp_path / "no-such-renode")}
    p = _hil_subprocess(["run", "--board", "nrf52840", "--model", str(model_blob),
                         "--out", str(tmp_path / "r")], env)
    assert p.returncode == 2, p.stderr
    assert "runs on renode, which is not installed" in p.stderr
    assert "linux-portable" in p.stderr and "renode-run" in p.stderr
    assert "netduinoplus2" in p.stderr  # the board that runs on QEMU instead


@needs_qemu
def test_model_too_big_for_the_board(tmp_path: Path) -> None:
    """A real (random) 24-layer blob of > 1 MiB: `hil build` refuses with the numbers."""
    pytest.importorskip("torch", reason="needs torch to make an oversized model")
    from hil.quant.quantize import blob_bytes, random_quant_model

    big = tmp_path / "big.bin"
    big.write_bytes(blob_bytes(random_quant_model(num_labels=2, seed=1, n_layers=24, calib=4)))
    size = big.stat().st_size
    assert size > BOARDS["netduinoplus2"].flash_bytes
    out = tmp_path / "out"
    code = hil("build", "--board", "netduinoplus2", "--model", str(big))
    assert code == 1
    code = hil("run", "--board", "netduinoplus2", "--model", str(big), "--out", str(out),
               "--quiet")
    assert code == 1
    # The run never started a target: no results, and the message was the fit check's.
    assert not (out / "results.jsonl").exists()


def test_model_too_big_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The wording the user sees, checked on a file the size of the problem (no build needed)."""
    from hil import firmware as fw

    blob = tmp_path / "huge.bin"
    blob.write_bytes(b"\0" * (1024 * 1024 + 1))
    with pytest.raises(fw.DoesNotFit) as err:
        fw.check_blob_fits(BOARDS["stm32f4"], blob)
    assert str(err.value) == ("model does not fit: needs 1048577 bytes of flash for the model "
                              "blob huge.bin alone, board stm32f4 has 1048576")
    sizes = fw.ElfSizes(text=500_000, data=1_000, bss=120_000, stack=16_384)
    with pytest.raises(fw.DoesNotFit, match="needs 137384 bytes of RAM.*board stm32f4 has 131072"):
        fw.check_fits(BOARDS["stm32f4"], sizes)


@needs_qemu
def test_host_killed_then_resume(model_blob: Path, tmp_path: Path) -> None:
    """SIGKILL the `hil run` process itself mid-run: every finished result is on disk, QEMU does
    not outlive it (PR_SET_PDEATHSIG), and `--resume` finishes the rest bit-exact."""
    import re
    import time

    out = tmp_path / "run"
    host = subprocess.Popen([sys.executable, "-m", "hil.cli", "run", "--board", "netduinoplus2",
                             "--model", str(model_blob), "--limit", "30", "--out", str(out),
                             "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(read_results(results)) < 5:
        time.sleep(0.05)
    host.kill()
    host.wait(10)
    done = read_results(results)
    assert 5 <= len(done) < 30
    qemu_pid = int(re.search(r"pid (\d+)", (out / "qemu-netduinoplus2-job0.log").read_text())[1])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{qemu_pid}").exists():
        if open(f"/proc/{qemu_pid}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        assert not Path(f"/proc/{qemu_pid}").exists(), "QEMU outlived the killed host"
    assert hil("run", "--resume", str(out), "--quiet") in (0, 1)
    s = summary_of(out)
    assert s["complete"] and s["summary"]["sentences"] == 30 and s["summary"]["agreement"] == 1.0
    assert s["throughput"]["skipped_resumed"] == len(finished_ok(done))
    assert [r["index"] for r in read_results(results)] == list(range(30))


def finished_ok(records: list[dict]) -> list[dict]:
    return [r for r in records if r["status"] in ("ok", "error")]


@needs_native
def test_expectation_failures_exit_1_naming_which(model_blob: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "strict.yaml"
    data = ROOT / "scenarios" / "data" / "nlu_scenario_test.jsonl"
    scen.write_text(f"name: strict\nmodel: {model_blob}\nsentences: {data}\n"
                    "expect:\n  min_agreement: 1.0\n  max_cycles_p95: 1\n  max_ram_bytes: 1\n")
    out = tmp_path / "run"
    code = hil("run", "--board", "native", "--scenario", str(scen), "--limit", "5", "--out",
               str(out), "--quiet")
    assert code == 1
    err = capsys.readouterr().err
    assert "expectations failed: max_cycles_p95: expected <= 1, got" in err
    s = summary_of(out)
    assert s["expectations"]["min_agreement"]["ok"] is True
    assert s["expectations"]["max_cycles_p95"]["ok"] is False
    # native has no RAM limit: that expectation is reported as not applicable, not as failed
    assert s["expectations"]["max_ram_bytes"]["ok"] is None
    assert [f.split(":")[0] for f in s["failed"]] == ["max_cycles_p95"]


# ---- issue #17: the exit code is the verdict ---------------------------------------------------


def _scenario_with(tmp_path: Path, model: Path, texts: list[str]) -> Path:
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps({"text": t}, ensure_ascii=True) + "\n" for t in texts))
    scen = tmp_path / "s.yaml"
    scen.write_text(f"name: s\nmodel: {model}\nsentences: {data}\ntimeout_s: 10\nretries: 1\n")
    return scen


@needs_native
def test_bad_text_is_that_sentences_error_and_the_run_goes_on(
        model_blob: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """B1: a lone surrogate used to stop every job, and every --resume, on the same sentence."""
    texts = ["set an alarm", "bad \ud800 text", "play music", "x" * 2049, "what time is it"]
    scen = _scenario_with(tmp_path, model_blob, texts)
    out = tmp_path / "run"
    code = hil("run", "--board", "native", "--scenario", str(scen), "--jobs", "2", "--out",
               str(out), "--quiet")
    err = capsys.readouterr().err
    assert err.index("sentence #1 cannot be sent") < err.index("hil run: native on")  # at load
    assert code == 1  # refusals (BAD_TEXT by the host, TOO_LONG by the device) are not a pass
    recs = {r["index"]: r for r in read_results(out / "results.jsonl")}
    assert sorted(recs) == [0, 1, 2, 3, 4]
    assert recs[1]["status"] == "error" and recs[1]["error"]["code"] == "BAD_TEXT"
    assert "not valid Unicode" in recs[1]["error"]["reason"]
    assert recs[3]["error"]["code"] == "TOO_LONG"
    assert all(recs[i]["status"] == "ok" and recs[i]["agree"] for i in (0, 2, 4))
    s = summary_of(out)
    assert s["reliability"]["refused"] == [1, 3] and s["complete"] is True
    assert any(f.startswith("answered: 2 of 5 sentences refused") for f in s["failed"])
    assert hil("run", "--resume", str(out), "--quiet") == 1  # final: not asked again, same code
    assert summary_of(out)["throughput"]["processed_this_run"] == 0


_FAKE = """
import sys, time
sys.path.insert(0, sys.argv[3])
from hil.protocol import encode_frame
sys.stdout.buffer.write(encode_frame(0, "HELLO", sys.argv[1])); sys.stdout.flush()
line = sys.stdin.buffer.readline()
if sys.argv[2] == "fault":
    sys.stdout.write("FAULT HardFault pc=0x08001234\\n"); sys.stdout.flush()
time.sleep(120)
"""


@needs_native
@pytest.mark.parametrize("mode", ["hang", "fault"])
def test_unanswered_sentences_exit_3_and_claim_no_throughput(
        model_blob: Path, tmp_path: Path, mode: str) -> None:
    """B6: a device that stops answering (hung) or hard-faults: every sentence unanswered, so
    exit 3 (it used to be 0), a reason per sentence, and no sentences/s claimed."""
    from hil.session import Oracle

    oracle = Oracle.load(model_blob)
    hello = (f"proto=1 fw=0.1.0 board=native model={oracle.model_id:08X} labels=18 maxlen=64 "
             "maxtext=2048 maxframe=2600 clock=1000000000 unit=ns flash=0 ram=0 arena=1048576")
    fake = tmp_path / "fake.py"
    fake.write_text(_FAKE)
    cmd = [sys.executable, str(fake), hello, mode, str(ROOT)]

    def factory(board, run_dir, elf, name):
        return NativeTarget(board, run_dir, command=cmd, name=name)

    cfg = RunConfig(board=BOARDS["native"], target="native",
                    scenario=load_scenario("nlu_scenario"), model_path=model_blob,
                    out_dir=tmp_path / "run", limit=2, elf=Path(sys.executable),
                    target_factory=factory, timeout_s=0.5, retries=0)
    code, s = run(cfg)
    assert code == 3 and s["complete"] is False
    assert s["reliability"]["unanswered"] == [0, 1]
    assert "2 selected sentence(s) unanswered" in s["error"]
    assert ("FAULT 2" if mode == "fault" else "TIMEOUT 2") in s["error"]
    assert s["throughput"]["sentences_per_s"] is None
    assert all(r["status"] == "timeout" for r in read_results(tmp_path / "run" / "results.jsonl"))


@pytest.mark.parametrize("damage, words", [
    ("empty", "blob truncated"),
    ("truncated", "blob truncated"),
    ("crc", "blob checksum mismatch"),
    ("version2", "unsupported blob or spec version"),
    ("random", "not a model blob (bad magic)"),
])
def test_build_refuses_a_blob_the_device_would_refuse(
        model_blob: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str,
        words: str) -> None:
    """B8: `hil build` used to build any bytes (exit 0) and the device refused them at boot."""
    import random
    import struct

    data = bytearray(model_blob.read_bytes())
    if damage == "empty":
        data = bytearray()
    elif damage == "truncated":
        data = data[:1000]
    elif damage == "crc":
        data[-1] ^= 0x01
    elif damage == "version2":
        struct.pack_into("<I", data, 4, 2)
    else:
        data = bytearray(random.Random(1).randbytes(4096))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(data))
    code = hil("build", "--board", "native", "--model", str(bad))
    err = capsys.readouterr().err
    assert code == 2 and f"the device would refuse it at boot: {words}" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
