"""The labgrid target against real labgrid processes on loopback (docs/farm.md).

A module fixture starts a `labgrid-coordinator` on a free 127.0.0.1 port, two native boards (the
native firmware on a pty each), one `labgrid-exporter` exporting both ptys as `RawSerialPort`s,
and two places that match them. `hil run --target labgrid` then goes through the whole chain:
coordinator (acquire/release), exporter (ser2net, RFC 2217), pty, firmware. After every test no
place may be left acquired. Skips, saying why, only where labgrid or ser2net is not installed
(`bash scripts/install-labgrid.sh`, which CI runs).

Why the firmware sits on the pty *master*: ser2net opens a device path, i.e. the slave; with the
firmware on the slave too (as hil.targets.native does) nobody would hold the other end. The
board helper keeps its own slave fd open, so ser2net closing and reopening the port (a release, a
lost exporter) never hangs the firmware up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.boards import get_board
from hil.targets import TargetOptions
from hil.targets.labgrid import LabgridTarget, find_client, match_places, parse_show

pytestmark = pytest.mark.labgrid

REPO = Path(__file__).resolve().parent.parent
LIMIT = 20
TOOLS = ("labgrid-coordinator", "labgrid-exporter", "labgrid-client")

BOARD_HELPER = r"""
import os, sys, tty, subprocess
master, slave = os.openpty()
tty.setraw(slave)
print(os.ttyname(slave), flush=True)
proc = subprocess.Popen([sys.argv[1]], stdin=master, stdout=master, stderr=subprocess.DEVNULL)
os.close(master)
sys.exit(proc.wait())  # the slave fd stays open here as long as the firmware runs
"""


def tool(name: str) -> str | None:
    """A labgrid program: beside the client hil finds (the venv), else on PATH."""
    client = find_client()
    if client:
        beside = Path(client).resolve().parent / name
        if os.access(beside, os.X_OK):
            return str(beside)
    return shutil.which(name)


def why_not_here() -> str | None:
    gone = [t for t in TOOLS if tool(t) is None]
    if shutil.which("ser2net") is None and not os.access("/usr/sbin/ser2net", os.X_OK):
        gone.append("ser2net")
    return f"{', '.join(gone)} not installed; run `bash scripts/install-labgrid.sh`" if gone \
        else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kill_group(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


class Lab:
    """A coordinator, two native boards on ptys, an exporter and two places, on loopback."""

    def __init__(self, root: Path, elf: Path) -> None:
        self.root = root
        self.elf = elf
        self.addr = f"127.0.0.1:{free_port()}"
        self.prefix = f"hil-lab-{os.getpid()}"
        self.places = [f"{self.prefix}-0", f"{self.prefix}-1"]
        self.procs: list[subprocess.Popen[Any]] = []
        self.exporter: subprocess.Popen[Any] | None = None
        self.config = root / "exporter.yaml"

    def spawn(self, argv: list[str], log: str, **kw: Any) -> subprocess.Popen[Any]:
        with open(self.root / log, "ab") as out:
            # cwd: the coordinator keeps places.yaml and resources.yaml in its working folder
            proc = subprocess.Popen(argv, stdout=kw.pop("stdout", out), stderr=out,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=self.root, **kw)
        self.procs.append(proc)
        return proc

    def client(self, *args: str, user: str | None = None,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **({"LG_USERNAME": user} if user else {})}
        proc = subprocess.run([str(tool("labgrid-client")), "-x", self.addr, *args],
                              capture_output=True, text=True, timeout=60, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"labgrid-client {' '.join(args)}: {proc.stderr}")
        return proc

    def start(self) -> None:
        self.spawn([str(tool("labgrid-coordinator")), "-l", self.addr], "coordinator.log")
        ports = []
        for i in range(2):
            board = self.spawn([sys.executable, "-c", BOARD_HELPER, str(self.elf)],
                               f"board{i}.log", stdout=subprocess.PIPE)
            assert board.stdout is not None
            ports.append(board.stdout.readline().decode().strip())
        self.config.write_text("".join(
            f"{self.prefix}-g{i}:\n  RawSerialPort:\n    port: {p}\n    speed: 115200\n"
            for i, p in enumerate(ports)))
        self._wait(lambda: self.client("places", check=False).returncode == 0, "coordinator")
        self.start_exporter()
        for i, place in enumerate(self.places):
            self.client("-p", place, "create")
            self.client("-p", place, "add-match", f"{self.prefix}-exp/{self.prefix}-g{i}/*")
            self.client("-p", place, "set-tags", "board=native")

    def start_exporter(self) -> None:
        """The exporter in its own process group: killing the group takes its ser2nets along,
        as a stopped exporter service would (SIGKILL of the exporter alone orphans them)."""
        self.exporter = self.spawn([str(tool("labgrid-exporter")), "-c", self.addr, "-n",
                                    f"{self.prefix}-exp", "--hostname", "127.0.0.1",
                                    str(self.config)], "exporter.log")
        self._wait(lambda: f"{self.prefix}-g1" in self.client("resources").stdout, "exporter")

    def kill_exporter(self) -> None:
        assert self.exporter is not None
        kill_group(self.exporter)
        self._wait(lambda: f"{self.prefix}-g0" not in self.client("resources").stdout,
                   "exporter gone from the coordinator")

    def acquired(self) -> list[str]:
        """The lab's places someone holds now (labgrid-client who)."""
        out = self.client("who").stdout
        return [p for p in self.places if p in out.split()]

    def _wait(self, ok: Any, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok():
                return
            time.sleep(0.3)
        raise AssertionError(f"{what} not ready in {timeout:g} s; logs in {self.root}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            kill_group(proc)


@pytest.fixture(scope="module")
def native_elf() -> Path:
    """The native firmware (`hil build --board native`), built once."""
    proc = subprocess.run([sys.executable, "-m", "hil.cli", "build", "--board", "native"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=hil_env())
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip().splitlines()[0])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, native_elf: Path) -> Iterator[Lab]:
    why = why_not_here()
    if why:
        pytest.skip(f"labgrid lab not available: {why}")
    lab = Lab(tmp_path_factory.mktemp("lab"), native_elf)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    """The lab, checked after the test: no place left acquired, the exporter running."""
    yield lab
    held = lab.acquired()
    for place in held:
        lab.client("-p", place, "release", "--kick", check=False)
    assert not held, f"places left acquired: {held}"


def hil_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def hil_run(lab: Lab, out: Path, *args: str, place: str | None = None,
            env: dict[str, str] | None = None, wait: bool = True) -> Any:
    """`hil run --board native` with the lab's coordinator and places (LG_COORDINATOR,
    LG_PLACE: what `--place` would say, and works before the CLI has `--place`)."""
    argv = [sys.executable, "-m", "hil.cli", "run", "--board", "native", "--elf", str(lab.elf),
            "--out", str(out), *args]
    extra = {"LG_COORDINATOR": lab.addr, "LG_PLACE": place or f"{lab.prefix}-*", **(env or {})}
    if not wait:
        return subprocess.Popen(argv, cwd=REPO, env=hil_env(**extra), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(argv, cwd=REPO, env=hil_env(**extra), capture_output=True, text=True,
                          timeout=600)


def answers(out: Path) -> dict[int, tuple[Any, ...]]:
    """What the device said per sentence: label, logits, token ids, agreement."""
    recs = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines() if ln]
    return {int(r["index"]): (r.get("status"), r.get("pred"), r.get("logits"),
                              r.get("ids_match"), r.get("agree")) for r in recs}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory, lab: Lab) -> dict[int, tuple[Any, ...]]:
    """The reference: the same sentences on `--target native`, on this machine."""
    out = tmp_path_factory.mktemp("local")
    proc = hil_run(lab, out, "--target", "native", "--limit", str(LIMIT))
    assert proc.returncode == 0, proc.stderr
    got = answers(out)
    assert len(got) == LIMIT and all(a[0] == "ok" and a[4] for a in got.values())
    return got


def summary_of(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "summary.json").read_text()))


# ---- the chain, end to end ---------------------------------------------------------------------


def test_two_places_agree_with_local_native(clean_lab: Lab, local_run: dict[int, Any],
                                            tmp_path: Path) -> None:
    """--jobs 2 over the two places: the same answers as the local run, agreement 1.0, both
    places used and released."""
    out = tmp_path / "farm"
    t0 = time.monotonic()
    proc = hil_run(clean_lab, out, "--target", "labgrid", "--jobs", "2", "--limit", str(LIMIT))
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert answers(out) == local_run
    summary = summary_of(out)
    assert summary["summary"]["agreement"] == 1.0
    used = {t.get("place") for t in summary.get("targets", [])}
    assert used == set(clean_lab.places), summary.get("targets")
    print(f"labgrid --jobs 2, {LIMIT} sentences: {took:.2f} s wall including start-up")


def test_lost_exporter_keeps_results_and_resume_completes(clean_lab: Lab,
                                                          local_run: dict[int, Any],
                                                          tmp_path: Path) -> None:
    """The exporter dies mid-run: exit 3 naming the lost place, every finished result kept;
    after the exporter is back, --resume finishes with the local run's answers."""
    out = tmp_path / "lost"
    run = hil_run(clean_lab, out, "--target", "labgrid", "--limit", str(LIMIT),
                  "--timeout", "5", wait=False)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        if results.exists() and len(results.read_text().splitlines()) >= 3:
            break
        time.sleep(0.01)
    clean_lab.kill_exporter()
    _, stderr = run.communicate(timeout=300)
    try:
        kept = answers(out)
        assert run.returncode == 3, stderr
        assert f"place {clean_lab.places[0]}" in stderr and "lost" in stderr, stderr
        assert 3 <= len(kept) < LIMIT, f"{len(kept)} kept; the run was not cut mid-way"
        assert all(local_run[i] == a for i, a in kept.items())
        print(f"exporter killed: {len(kept)}/{LIMIT} kept; hil said:\n{stderr[-600:]}")
    finally:
        clean_lab.start_exporter()
    proc = hil_run(clean_lab, out, "--target", "labgrid", "--resume", str(out))
    assert proc.returncode == 0, proc.stderr
    assert answers(out) == local_run
    assert summary_of(out)["summary"]["agreement"] == 1.0


# ---- bad input: one line, the right exit code --------------------------------------------------


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("labgrid:")]
    assert lines, proc.stderr
    return lines[0]


def test_unknown_place_is_a_usage_error(clean_lab: Lab, tmp_path: Path) -> None:
    proc = hil_run(clean_lab, tmp_path / "o", "--target", "labgrid", "--limit", "2",
                   place="no-such-place")
    assert proc.returncode == 2, proc.stderr
    assert "no place matches 'no-such-place'" in error_line(proc)


def test_place_locked_by_someone_else(clean_lab: Lab, tmp_path: Path) -> None:
    place = clean_lab.places[0]
    clean_lab.client("-p", place, "acquire", user="alice")
    try:
        proc = hil_run(clean_lab, tmp_path / "o", "--target", "labgrid", "--limit", "2",
                       place=place)
    finally:
        clean_lab.client("-p", place, "release", user="alice")
    assert proc.returncode == 2, proc.stderr
    assert "held by someone else" in error_line(proc) and "alice" in error_line(proc)


def test_coordinator_down(clean_lab: Lab, tmp_path: Path) -> None:
    proc = hil_run(clean_lab, tmp_path / "o", "--target", "labgrid", "--limit", "2",
                   env={"LG_COORDINATOR": f"127.0.0.1:{free_port()}"})
    assert proc.returncode == 3, proc.stderr
    assert "coordinator" in error_line(proc) and "not reachable" in error_line(proc)


# ---- a place is never left locked ---------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_place_released_when_hil_is_interrupted_or_killed(clean_lab: Lab, tmp_path: Path,
                                                          sig: signal.Signals) -> None:
    """Ctrl-C stops the run and releases; SIGKILL gives hil no chance, so the guard does."""
    place = clean_lab.places[1]
    run = hil_run(clean_lab, tmp_path / "o", "--target", "labgrid", place=place, wait=False)
    try:
        clean_lab._wait(lambda: place in clean_lab.acquired(), "hil acquiring the place")
        run.send_signal(sig)
        _, said = run.communicate(timeout=60)
        clean_lab._wait(lambda: not clean_lab.acquired(), f"the place released (hil said: "
                        f"{said[-1500:]})", timeout=15)
    finally:
        kill_group(run)


# ---- pieces, without a lab ---------------------------------------------------------------------


SHOW = """Place 'dk-1':
  tags: board=nrf52840
  matches:
    rack1/dk-1/*
  acquired: ci/hil
  acquired resources:
    rack1/dk-1/NetworkSerialPort/console
    rack1/dk-1/NetworkUSBDebugger/jlink
  created: 2026-01-01 00:00:00
  changed: 2026-01-01 00:00:00
Acquired resource 'console' (rack1/dk-1/NetworkSerialPort/console):
  {'acquired': 'dk-1',
   'avail': True,
   'cls': 'NetworkSerialPort',
   'params': {'extra': {'path': '/dev/ttyACM0'},
              'host': 'rack1',
              'port': 40123,
              'speed': 115200}}
Orphaned resource 'jlink' (rack1/dk-1/NetworkUSBDebugger/jlink)
"""


def test_parse_show_reads_owner_and_resources() -> None:
    owner, res = parse_show(SHOW)
    assert owner == "ci/hil"
    assert [(r.name, r.cls, r.avail) for r in res] == [
        ("console", "NetworkSerialPort", True), ("jlink", "NetworkUSBDebugger", False)]
    assert res[0].params["port"] == 40123 and res[0].params["host"] == "rack1"


def test_match_places_names_and_patterns() -> None:
    places = ["dk-2", "dk-1", "disco-1", "other"]
    assert match_places("dk-*", places) == ["dk-1", "dk-2"]
    assert match_places("disco-1, dk-2,dk-*", places) == ["disco-1", "dk-2", "dk-1"]
    assert match_places("nope", places) == []


def test_place_option_beats_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_PLACE", "from-env")
    board = get_board("native")
    assert LabgridTarget(board, tmp_path, options=TargetOptions(place="dk-1")).patterns == "dk-1"
    assert LabgridTarget(board, tmp_path).patterns == "from-env"
    monkeypatch.delenv("LG_PLACE")
    assert LabgridTarget(board, tmp_path).board_missing() is not None


class FakeClient:
    """Stands in for labgrid-client in the flashing decision: records the calls."""

    coordinator = "test"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def run(self, place: str | None, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((place, args, kw.get("env")))
        return subprocess.CompletedProcess([], 0, "", "")


def test_flash_only_with_a_debugger_and_an_environment(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """No debugger: not flashed, said so. Debugger and LG_ENV: `bootstrap ELF` with LG_PLACE
    set to the acquired place."""
    from hil.targets.base import Transcript
    from hil.targets.labgrid import Resource

    elf = tmp_path / "firmware.elf"
    target = LabgridTarget(get_board("nrf52840"), tmp_path, elf=elf)
    client: Any = FakeClient()
    notes = Transcript(tmp_path / "t.log")
    port = Resource("console", "r/dk-1/NetworkSerialPort/console", "NetworkSerialPort", True, {})
    probe = Resource("jlink", "r/dk-1/NetworkUSBDebugger/jlink", "NetworkUSBDebugger", True, {})
    monkeypatch.delenv("LG_ENV", raising=False)
    assert target._flash(client, "dk-1", [port], notes).startswith("no")
    assert target._flash(client, "dk-1", [port, probe], notes) == "no (LG_ENV not set)"
    assert client.calls == []
    monkeypatch.setenv("LG_ENV", "env.yaml")
    assert target._flash(client, "dk-1", [port, probe], notes).startswith("yes")
    assert client.calls == [("dk-1", ("-c", "env.yaml", "bootstrap", str(elf)),
                             {"LG_PLACE": "dk-1"})]
    notes.close()
    assert "not flashed" in (tmp_path / "t.log").read_text()
