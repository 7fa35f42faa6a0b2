"""The `labgrid` target: a board in a labgrid farm, reached through the place that holds it.

`hil run --target labgrid --place NAME` acquires the place through the labgrid coordinator, talks
over the place's exported serial port, and releases the place whatever happens (docs/farm.md).

Why the `labgrid-client` program and not `import labgrid`: labgrid pins its own pyserial fork and
a gRPC stack, so it lives in a venv of its own (scripts/install-labgrid.sh) and the default
install stays untouched. hil only needs four sub-commands (places, acquire, show, release), whose
output is stable and readable, and the exported port itself: labgrid's exporter serves a serial
port through ser2net as telnet with RFC 2217 (`accepter: telnet(rfc2217,mode=server)`), which
pyserial's `rfc2217://` client opens (with `ign_set_control`, as labgrid's own driver does).

Why a guard process: a place left locked blocks the whole lab. Each place is acquired by a tiny
`sh` in its own session (`GUARD`) that runs `labgrid-client acquire`, then blocks reading a pipe
only hil holds, then runs `labgrid-client release`. `stop()` closes the pipe (normal end, errors,
Ctrl-C: the runner stops every session); when hil dies without cleaning up (SIGKILL, a crashed
interpreter, an interrupt while labgrid-client is still acquiring) the pipe closes all the same.

Places: `--place` takes names or shell patterns, comma-separated (`hil-*`, `dk-1,dk-2`); each
target instance takes the first matching place it can acquire, so `--jobs N` spreads N jobs over
N places with no bookkeeping in the runner. The coordinator is `$LG_COORDINATOR` (labgrid's own
variable), the place defaults to `$LG_PLACE`.
"""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import importlib.util
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.boards import Board
from hil.errors import EXIT_ENVIRONMENT, UsageError
from hil.protocol import MAX_SEQ, encode_frame
from hil.targets.base import StreamLink, Target, TargetError, TargetOptions, Transcript
from hil.targets.serial import SerialLink

LABGRID_INSTALL = "bash scripts/install-labgrid.sh (labgrid 26 in /opt/labgrid, and ser2net)"
VENV_CLIENT = "/opt/labgrid/bin/labgrid-client"
DEFAULT_COORDINATOR = "127.0.0.1:20408"
CLIENT_TIMEOUT_S = 30.0
FLASH_TIMEOUT_S = 300.0
#: Seconds to wait after acquiring for the exporter to publish the serial port's TCP port.
PORT_WAIT_S = 10.0
#: Resource classes a labgrid flash driver (OpenOCDDriver) binds to: a place with one of them
#: is flashed with `labgrid-client bootstrap` before hil connects.
FLASHABLE = ("NetworkUSBDebugger", "USBDebugger")
SERIAL_CLASSES = ("NetworkSerialPort",)


class CoordinatorDown(TargetError):
    """The coordinator did not answer: the lab is out of reach (exit 3, like a dead board)."""


class PlaceLocked(TargetError):
    """Every place asked for is held by someone else: nothing ran, ask them or wait (exit 2)."""

    exit_code = EXIT_ENVIRONMENT


class PlaceLost(TargetError):
    """The place exists but its board is gone (exporter down, resource unavailable): exit 3."""


def find_client() -> str | None:
    """$LABGRID_CLIENT, else labgrid-client on PATH, else the venv install-labgrid.sh makes."""
    env = os.environ.get("LABGRID_CLIENT")
    if env:
        return shutil.which(env)
    return shutil.which("labgrid-client") or (VENV_CLIENT if os.access(VENV_CLIENT, os.X_OK)
                                              else None)


@dataclass(frozen=True)
class Resource:
    """One acquired resource of a place, as `labgrid-client show` prints it."""

    name: str
    path: str  # exporter/group/class/name
    cls: str
    avail: bool
    params: dict[str, Any]


def parse_show(text: str) -> tuple[str | None, list[Resource]]:
    """(who holds the place, its acquired resources) from `labgrid-client -p P show`.

    The resources follow the place as `Acquired resource 'NAME' (PATH):` and a Python literal
    (pprint of a dict), indented; an exporter that vanished leaves `Orphaned resource` lines with
    no dict, which are kept as unavailable."""
    owner: str | None = None
    resources: list[Resource] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.strip().startswith("acquired:") and line.startswith("  ") and owner is None:
            value = line.split(":", 1)[1].strip()
            owner = None if value in ("", "None") else value
        elif line.startswith(("Acquired resource ", "Orphaned resource ")):
            name = line.split("'")[1] if "'" in line else "?"
            path = line[line.find("(") + 1:line.rfind(")")] if "(" in line else "?"
            body = []
            while i < len(lines) and lines[i].startswith(" "):
                body.append(lines[i].strip())
                i += 1
            try:
                data = ast.literal_eval(" ".join(body)) if body else {}
            except (ValueError, SyntaxError):
                data = {}
            cls = str(data.get("cls") or (path.split("/")[2] if path.count("/") >= 3 else "?"))
            resources.append(Resource(name, path, cls, bool(data.get("avail")) and
                                      line.startswith("Acquired"), dict(data.get("params") or {})))
    return owner, resources


class LabgridClient:
    """`labgrid-client` as a subprocess: the few sub-commands hil needs, errors sorted by kind."""

    def __init__(self, exe: str) -> None:
        self.exe = exe
        self.coordinator = os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR

    def argv(self, place: str | None, *args: str) -> list[str]:
        head = [self.exe, "-x", self.coordinator]
        return head + (["-p", place] if place else []) + list(args)

    def run(self, place: str | None, *args: str, timeout: float = CLIENT_TIMEOUT_S,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run one sub-command; CoordinatorDown when the coordinator is out of reach."""
        try:
            proc = subprocess.run(self.argv(place, *args), capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL,
                                  env={**os.environ, **env} if env else None)
        except subprocess.TimeoutExpired:
            raise CoordinatorDown(f"labgrid: `labgrid-client {' '.join(args)}` did not finish "
                                  f"in {timeout:g} s (coordinator {self.coordinator})") from None
        said = (proc.stderr + proc.stdout).lower()
        if proc.returncode != 0 and ("coordinator is unavailable" in said
                                     or "could not connect to coordinator" in said):
            raise CoordinatorDown(f"labgrid: the coordinator at {self.coordinator} is not "
                                  f"reachable (start labgrid-coordinator or set LG_COORDINATOR)")
        return proc

    def places(self) -> list[str]:
        proc = self.run(None, "places")
        if proc.returncode != 0:
            raise TargetError(f"labgrid: cannot list places: {last_line(proc)}")
        return [ln.split()[0] for ln in proc.stdout.splitlines() if ln.strip()]

    def show(self, place: str) -> tuple[str | None, list[Resource]]:
        proc = self.run(place, "show")
        if proc.returncode != 0:
            raise PlaceLost(f"labgrid: cannot show place {place}: {last_line(proc)}")
        return parse_show(proc.stdout)

    def acquire(self, place: str) -> tuple[str | None, subprocess.Popen[bytes] | None]:
        """(None, the guard holding the place) when acquired, else (why not: 'mine: ...',
        'other: ...' or 'lost: ...', None). The guard itself runs `acquire`, so a hil that dies
        while labgrid-client is still acquiring leaves no place behind (see the module doc)."""
        fd, out = tempfile.mkstemp(prefix="hil-labgrid-", suffix=".txt")
        os.close(fd)
        try:
            guard = subprocess.Popen(["sh", "-c", GUARD, "hil-labgrid-guard", out,
                                      *self.argv(place)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
            rc = guard_verdict(guard, CLIENT_TIMEOUT_S)
            said = Path(out).read_text(errors="replace")
        finally:
            os.unlink(out)
        if rc is None:
            guard.kill()
            raise CoordinatorDown(f"labgrid: `labgrid-client acquire` did not finish in "
                                  f"{CLIENT_TIMEOUT_S:g} s (coordinator {self.coordinator})")
        if rc == 0:
            return None, guard
        guard.wait(5.0)
        proc = subprocess.CompletedProcess(guard.args, rc, "", said)
        if "coordinator is unavailable" in said or "Could not connect to coordinator" in said:
            raise CoordinatorDown(f"labgrid: the coordinator at {self.coordinator} is not "
                                  f"reachable (start labgrid-coordinator or set LG_COORDINATOR)")
        why = last_line(proc)
        if "you have already acquired" in why.lower():
            return f"mine: {why}", None
        if "already acquired by" in why.lower() or "acquired by a different user" in why.lower():
            return f"other: {why}", None
        return f"lost: {why}", None

#: The guard: acquire (output to a file, so a hil that died cannot break the pipe under it),
#: report the exit code, then wait for hil's pipe to close (hil stops, or dies) and release.
GUARD = ('trap "" PIPE INT; out=$1; shift; "$@" acquire >"$out" 2>&1; rc=$?; echo "rc=$rc"; '
         '[ "$rc" -eq 0 ] || exit 0; read -r _; exec "$@" release >/dev/null 2>&1')


def guard_verdict(guard: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The exit code of the guard's `acquire` (its `rc=N` line), None on timeout."""
    assert guard.stdout is not None
    fd, data = guard.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 64)
        if not chunk:
            return None
        data += chunk
    text = data.split(b"\n")[0].decode(errors="replace")
    return int(text[3:]) if text.startswith("rc=") and text[3:].lstrip("-").isdigit() else None


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    """labgrid-client's own one-line verdict (its last stderr line), without the prefix."""
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    text = lines[-1] if lines else f"exit code {proc.returncode}"
    return text.removeprefix("labgrid-client: ").removeprefix("Error: ")


def match_places(patterns: str, places: list[str]) -> list[str]:
    """The places named by comma-separated names or shell patterns, in the order asked."""
    out: list[str] = []
    for pat in (p.strip() for p in patterns.split(",")):
        for name in sorted(places):
            if pat and fnmatch.fnmatchcase(name, pat) and name not in out:
                out.append(name)
    return out


def release_through(guard: subprocess.Popen[bytes]) -> str | None:
    """Let the guard release the place (close its pipe); None when released, else why not."""
    with contextlib.suppress(OSError):
        assert guard.stdin is not None
        guard.stdin.close()
    try:
        rc = guard.wait(CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        guard.kill()
        return f"`labgrid-client release` did not finish in {CLIENT_TIMEOUT_S:g} s"
    finally:
        if guard.stdout is not None:
            guard.stdout.close()
    return None if rc == 0 else f"`labgrid-client release` exited with code {rc}"


class RFC2217Link(SerialLink):
    """SerialLink over pyserial's rfc2217 client. The read timeout is set once at open: setting
    it per read, as SerialLink does, would renegotiate the port settings over the network."""

    def _recv(self, timeout: float) -> bytes | None:
        import serial

        try:
            return bytes(self.port.read(max(1, self.port.in_waiting)))
        except (serial.SerialException, OSError, AttributeError):  # ser2net or exporter gone
            return None


class LabgridTarget(Target):
    """One board in a labgrid place: acquired on start, released on stop (and by the guard)."""

    kind = "labgrid"
    emulated = False
    hello_timeout_s = 10.0
    request_timeout_s = 60.0
    builds_firmware = True  # flashed when the place has a debugger; the HELLO check either way
    parallel = True  # one place per job
    backend = "labgrid-client"
    install_hint = LABGRID_INSTALL
    unit = "cycles (dwt, board)"
    latency_wording = "DWT cycles / board clock"

    def __init__(self, board: Board, run_dir: Path, *, elf: Path | None = None,
                 name: str | None = None, options: TargetOptions | None = None) -> None:
        super().__init__(board, run_dir, elf=elf, name=name, options=options)
        self.patterns = self.options.place or os.environ.get("LG_PLACE")
        self.place: str | None = None
        self.url: str | None = None
        self.flashed: str = "no"
        self._client: LabgridClient | None = None
        self._guard: subprocess.Popen[bytes] | None = None
        self._port: Any = None
        self._released: str | None = None  # the place this instance held, for info()

    @classmethod
    def locate(cls) -> str | None:
        return find_client()

    @classmethod
    def missing(cls) -> str | None:
        if find_client() is None:
            return f"labgrid-client not found (PATH, $LABGRID_CLIENT or {VENV_CLIENT}); " \
                   f"install: {LABGRID_INSTALL}"
        if importlib.util.find_spec("serial") is None:
            return "pyserial is not installed (hil opens the place's port with its rfc2217 " \
                   "client); install: python3 -m pip install pyserial"
        return None

    def board_missing(self) -> str | None:
        """Why no place can be asked for (none named), or None; starts nothing."""
        return None if self.patterns else "no place named: pass --place NAME (or set LG_PLACE)"

    # -- life cycle --

    def start(self) -> StreamLink:
        why = self.missing()
        if why:
            from hil.targets.base import MissingTool

            raise MissingTool(why)
        if not self.patterns:
            raise UsageError("labgrid: which place? pass --place NAME (or set LG_PLACE)")
        self._client = LabgridClient(find_client() or VENV_CLIENT)
        self.place = self._acquire(self._client, self.patterns)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        transcript = Transcript(self.log_path)
        transcript.note(f"acquired place {self.place} (coordinator {self._client.coordinator})")
        try:
            serial_res, resources = self._wait_serial(self._client, self.place)
            self.flashed = self._flash(self._client, self.place, resources, transcript)
            self.link = self._connect(serial_res, transcript)
        except BaseException:
            transcript.close()
            self.stop()
            raise
        return self.link

    def _acquire(self, client: LabgridClient, patterns: str) -> str:
        """The first matching place this instance can acquire, or the error that says why none:
        UsageError (no such place), PlaceLocked (all held by others), PlaceLost (the rest)."""
        names = client.places()
        candidates = match_places(patterns, names)
        if not candidates:
            raise UsageError(f"labgrid: no place matches {patterns!r}; places at "
                             f"{client.coordinator}: {', '.join(names) or 'none'}")
        reasons: list[str] = []
        for place in candidates:
            why, guard = client.acquire(place)
            if why is None:
                self._guard = guard
                return place
            reasons.append(f"{place}: {why}")
        said = "; ".join(r.replace(": other: ", ": ").replace(": mine: ", ": ")
                         .replace(": lost: ", ": ") for r in reasons)
        if all(": other: " in r for r in reasons):
            raise PlaceLocked(f"labgrid: every place matching {patterns!r} is held by someone "
                              f"else: {said}")
        if all(": lost: " not in r for r in reasons):
            raise PlaceLocked(f"labgrid: no free place matching {patterns!r} for this job "
                              f"(--jobs needs one place each): {said}")
        lost = [r.split(": ", 1)[0] for r in reasons if ": lost: " in r]
        raise PlaceLost(f"labgrid: place {', '.join(lost)} lost (its exporter is gone or its "
                        f"board unavailable): {said}")

    def _wait_serial(self, client: LabgridClient,
                     place: str) -> tuple[Resource, list[Resource]]:
        """The place's serial port once its exporter publishes the TCP port (ser2net starts on
        acquire), first by name; PlaceLost when it has none or it stays unavailable."""
        deadline = time.monotonic() + PORT_WAIT_S
        while True:
            _, resources = client.show(place)
            ports = sorted((r for r in resources if r.cls in SERIAL_CLASSES), key=lambda r: r.name)
            ready = [r for r in ports if r.avail and r.params.get("port")]
            if ready:
                return ready[0], resources
            if time.monotonic() > deadline:
                what = ", ".join(f"{r.path} ({'available' if r.avail else 'unavailable'})"
                                 for r in resources) or "no resources"
                raise PlaceLost(f"labgrid: place {place} has no usable serial port after "
                                f"{PORT_WAIT_S:g} s: {what} (is its exporter running?)")
            time.sleep(0.3)

    def _flash(self, client: LabgridClient, place: str, resources: list[Resource],
               transcript: Transcript) -> str:
        """Flash the ELF through the place's debugger when it has one and $LG_ENV names the
        driver (labgrid's `bootstrap`); otherwise the board runs what it was flashed with, and
        the HELLO model check refuses a board that runs another model."""
        debuggers = [r for r in resources if r.cls in FLASHABLE and r.avail]
        if not debuggers:
            transcript.note(f"not flashed: place {place} has no debugger resource "
                            f"({', '.join(FLASHABLE)})")
            return "no (no debugger resource)"
        if self.elf is None or not os.environ.get("LG_ENV"):
            transcript.note(f"not flashed: {debuggers[0].path} found, but no "
                            f"{'ELF' if self.elf is None else 'LG_ENV driver config'}")
            return "no (LG_ENV not set)" if self.elf is not None else "no (no ELF)"
        # LG_PLACE = this place, so an environment naming `RemotePlace: !template $LG_PLACE`
        # serves every place of a `--place 'dk-*' --jobs N` run.
        proc = client.run(place, "-c", os.environ["LG_ENV"], "bootstrap", str(self.elf),
                          timeout=FLASH_TIMEOUT_S, env={"LG_PLACE": place})
        if proc.returncode != 0:
            raise TargetError(f"labgrid: flashing {self.elf} on place {place} failed: "
                              f"{last_line(proc)}", (proc.stdout + proc.stderr).encode()[-800:])
        transcript.note(f"flashed {self.elf} through {debuggers[0].path}")
        return f"yes ({debuggers[0].path})"

    def _connect(self, res: Resource, transcript: Transcript) -> StreamLink:
        """Open the exported port (RFC 2217) and nudge the board for a HELLO: a board that
        booted before anyone listened said its boot HELLO to nobody."""
        import serial

        host, port = res.params.get("host") or "127.0.0.1", int(res.params["port"])
        speed = int(res.params.get("speed") or 115200)
        self.url = f"rfc2217://{host}:{port}?ign_set_control&timeout=5"
        try:
            self._port = serial.serial_for_url(self.url, baudrate=speed, timeout=0.05)
        except (serial.SerialException, OSError) as exc:
            raise PlaceLost(f"labgrid: place {self.place}: cannot open its serial port "
                            f"{host}:{port} ({exc})") from exc
        transcript.note(f"opened {self.url} ({res.path}) at {speed} baud")
        link = RFC2217Link(self.name, transcript, self._port)
        place, url = self.place, self.url
        link.describe_exit = lambda: f"place {place} lost: its serial port {url} closed " \
                                     f"(exporter or ser2net gone?)"
        link.start()
        link.write(b"\n" + encode_frame(MAX_SEQ, "HELLO"))
        return link

    def alive(self) -> bool:
        return self._port is not None and bool(getattr(self._port, "is_open", False))

    def stop(self) -> None:
        """Close the port, then have the guard release the place. Never raises: it runs on
        every error path."""
        if self.link is not None:
            self.link.transcript.note(f"closing; releasing place {self.place}")
            self.link.close()
        elif self._port is not None:
            with contextlib.suppress(Exception):
                self._port.close()
        self._port = None
        if self._guard is not None and self.place is not None:
            place, guard, self.place, self._guard = self.place, self._guard, None, None
            why = release_through(guard)
            if why is not None:
                print(f"hil: labgrid: place {place} may still be acquired ({why}); release it "
                      f"with `labgrid-client -p {place} release`", file=sys.stderr)
            self._released = place

    def info(self) -> dict[str, Any]:
        return {**super().info(), "place": self.place or self._released,
                "serial": self.url, "flashed": self.flashed}
