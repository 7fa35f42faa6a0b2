"""One booted board for a test: firmware built, target started, HELLO checked, reference at hand.

Shared by the Robot keyword library (hil.robot) and the pytest plugin (hil.pytest_plugin), so
both boot a board the same way `hil run` does (hil.firmware.build, the TARGETS table, a protocol
Device) and both judge answers against the same numpy integer reference (hil.runner.Oracle).

Every failure names the board, the target and the transcript: "[stm32f4 on renode] ...
full log: <path>" (style.md: what was expected, what came, where the full log is).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.boards import Board, cycle_unit, get_board, to_cycles

ROOT = Path(__file__).resolve().parents[2]
HELLO_TIMEOUT = {"native": 20.0, "qemu": 60.0, "renode": 120.0, "serial": 10.0}
REQUEST_TIMEOUT = {"native": 20.0, "qemu": 20.0, "renode": 300.0, "serial": 60.0}


class SessionError(AssertionError):
    """A check or a step failed; the message already names board, target and log."""


class TargetUnavailable(Exception):
    """The target cannot run on this machine (tool missing): tests skip, they do not fail."""


def target_unavailable(board: str, target: str | None = None) -> str | None:
    """Why `board` cannot run on `target` here (None = it can). No process is started."""
    from hil import firmware as fw

    try:
        b = get_board(board)
    except KeyError as exc:
        return str(exc)
    target = target or b.default_target
    if target not in b.targets:
        return f"board {b.name} does not run on {target} (it runs on {', '.join(b.targets)})"
    if target == "native":
        return fw.missing_toolchain(b)
    if target in ("qemu", "renode"):
        why = fw.missing_toolchain(b)
        if why:
            return why
    if target == "qemu":
        from hil.targets.qemu import QEMU_INSTALL, find_qemu

        return None if find_qemu() else f"qemu-system-arm not found; install: {QEMU_INSTALL}"
    if target == "renode":
        from hil.targets.renode import find_renode

        return None if find_renode() else ("Renode is not installed (not on PATH, $RENODE "
                                           "unset); see `hil doctor` for how to install it")
    if target == "serial":
        if os.environ.get("HIL_SERIAL_PORT"):
            return None
        from hil.targets.serial import find_port

        try:
            find_port(b)
        except Exception as exc:  # no pyserial, no port, two ports
            return f"{exc} (or set HIL_SERIAL_PORT)"
    return None


def labels_for(model: str) -> list[str] | None:
    """Label names of a shipped model: from the scenario that streams it (scenarios/*.yaml)."""
    import yaml

    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        if data.get("model") == model and data.get("labels"):
            names = json.loads((path.parent / data["labels"]).read_text())
            return [str(n) for n in names]
    return None


@dataclass
class Answer:
    """The last classification, judged: what came and what the reference says."""

    text: str
    label: int
    label_name: str
    logits: list[int]
    ids: list[int] | None
    tokens: int
    cycles: int  # in `unit` (converted as hil.boards.to_cycles says)
    cycles_raw: int
    unit: str
    stack: int
    arena: int
    layers: list[int]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class BoardSession:
    """Build, boot and talk to one board; `stop()` always cleans up (also after a failure)."""

    def __init__(self, board: str, target: str | None = None, *, model: str = "nlu_scenario",
                 elf: str | Path | None = None, run_dir: str | Path | None = None,
                 port: str | None = None, timeout: float | None = None) -> None:
        self.board: Board = get_board(board)
        self.target_kind = target or self.board.default_target
        if self.target_kind not in self.board.targets:
            raise SessionError(f"board {self.board.name} does not run on {self.target_kind}; "
                               f"it runs on {', '.join(self.board.targets)}")
        self.model_name = model
        self.elf = Path(elf) if elf else None
        self.run_dir = Path(run_dir or ROOT / "runs" / "test" / f"{board}-{self.target_kind}")
        self.port = port or os.environ.get("HIL_SERIAL_PORT")
        self.timeout = timeout or REQUEST_TIMEOUT.get(self.target_kind, 60.0)
        self.target: Any = None
        self.device: Any = None
        self.hello: Any = None
        self.last: Answer | None = None
        self._oracle: Any = None
        self._labels: list[str] | None = None

    # -- naming, for every message --

    @property
    def where(self) -> str:
        return f"[{self.board.name} on {self.target_kind}]"

    @property
    def log_path(self) -> str:
        link = getattr(self.target, "link", None)
        return str(link.log_path) if link is not None else str(self.run_dir)

    def fail(self, message: str) -> SessionError:
        tail = b""
        link = getattr(self.target, "link", None)
        if link is not None:
            tail = link.tail()[-300:]
        text = f"{self.where} {message}"
        if tail:
            text += f"\n  last bytes received: {tail!r}"
        text += f"\n  full log: {self.log_path}"
        return SessionError(text)

    # -- the model on the host --

    @property
    def model_path(self) -> Path:
        from hil.scenario import resolve_model

        return resolve_model(self.model_name)

    @property
    def oracle(self) -> Any:
        if self._oracle is None:
            from hil.runner import Oracle

            self._oracle = Oracle(self.model_path)
        return self._oracle

    @property
    def labels(self) -> list[str] | None:
        if self._labels is None:
            self._labels = labels_for(self.model_name)
        return self._labels

    def label_id(self, label: str | int) -> int:
        """A label given as its name or its number."""
        text = str(label).strip()
        if text.lstrip("-").isdigit():
            return int(text)
        names = self.labels or []
        if text not in names:
            raise SessionError(f"{self.where} unknown label {text!r} for model "
                               f"{self.model_name}; labels: {', '.join(names) or 'unknown'}")
        return names.index(text)

    def label_name(self, label: int) -> str:
        names = self.labels or []
        return names[label] if 0 <= label < len(names) else str(label)

    # -- life cycle --

    def build(self) -> Path:
        """The firmware ELF: the one given, else `hil build` into the run directory."""
        if self.elf is not None:
            if not self.elf.is_file():
                raise SessionError(f"{self.where} firmware {self.elf} does not exist")
            return self.elf
        from hil import firmware as fw

        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.elf = fw.build(self.board, self.model_path, log_path=self.run_dir / "build.log",
                                dest=self.run_dir / "firmware.elf")
        except fw.BuildError as exc:
            raise SessionError(f"{self.where} firmware build failed: {exc}") from None
        return self.elf

    def start(self) -> Any:
        """Build if needed, start the target, wait for the boot HELLO, check the model id."""
        from hil.protocol import Device, DeviceTimeout
        from hil.targets import TARGETS
        from hil.targets.base import MissingTool, TargetError

        why = target_unavailable(self.board.name, self.target_kind)
        if why and self.target_kind != "serial":
            raise TargetUnavailable(f"{self.where} cannot run here: {why}")
        elf = self.build() if self.target_kind != "serial" else self.elf
        self.run_dir.mkdir(parents=True, exist_ok=True)
        name = f"{self.target_kind}-{self.board.name}"
        if self.target_kind == "serial":
            from hil.targets.serial import SerialTarget

            self.target = SerialTarget(self.board, self.run_dir, port=self.port, name=name)
        else:
            cls = TARGETS[self.target_kind]
            self.target = cls(self.board, self.run_dir, elf=elf, name=name)  # type: ignore
        try:
            link = self.target.start()
        except MissingTool as exc:
            raise TargetUnavailable(f"{self.where} {exc}") from None
        except TargetError as exc:
            raise SessionError(f"{self.where} the target did not start: {exc}") from None
        self.device = Device(link, timeout=self.timeout, retries=1)
        wait = HELLO_TIMEOUT.get(self.target_kind, 30.0)
        try:
            try:
                self.hello = self.device.wait_hello(wait)
            except DeviceTimeout:
                if self.target_kind != "serial":
                    raise
                self.hello = self.device.hello(timeout=5.0)  # a board booted before we opened
        except DeviceTimeout:
            self.stop()
            raise self.fail(f"expected a boot HELLO (`$0 HELLO proto=1 ...`) within {wait:g} s, "
                            "none came") from None
        if self.hello.model != self.oracle.model_id:
            got = self.hello.model_hex
            self.stop()
            raise self.fail(f"expected model {self.oracle.model_id:08X} ({self.model_path}), "
                            f"the device runs {got}: rebuild the firmware")
        return self.hello

    def stop(self) -> None:
        if self.target is not None:
            self.target.stop()
        self.device = None

    def alive(self) -> bool:
        return self.target is not None and self.device is not None and self.target.alive()

    def clean(self) -> None:
        """Leave the link as a fresh test wants it: nothing pending, the device answering."""
        from hil.protocol import DeviceTimeout

        self.need_device()
        self.device.drain(quiet=0.05, limit=5.0)
        try:
            self.hello = self.device.hello(timeout=min(self.timeout, 30.0))
        except DeviceTimeout as exc:
            raise self.fail(f"the device did not answer HELLO between tests: {exc}") from None

    def need_device(self) -> Any:
        if self.device is None:
            raise SessionError(f"{self.where} the board is not started (use Start Board first)")
        return self.device

    # -- requests --

    def classify(self, text: str | bytes) -> Answer:
        """CLASSIFY `text`; a device ERROR or a timeout fails with board, target and log."""
        from hil.protocol import DeviceError, DeviceTimeout

        dev = self.need_device()
        try:
            res = dev.classify(text, timeout=self.timeout)
        except DeviceError as exc:
            raise self.fail(f"expected a RESULT for {_short(text)}, the device answered ERROR "
                            f"code={exc.code} reason={exc.reason!r}") from None
        except DeviceTimeout as exc:
            raise self.fail(f"expected a RESULT for {_short(text)}: {exc}") from None
        unit_dev = self.hello.unit if self.hello else "dwt"
        clock = self.hello.clock if self.hello else self.board.clock_hz
        self.last = Answer(
            text=text if isinstance(text, str) else text.decode("utf-8", "replace"),
            label=res.label, label_name=self.label_name(res.label), logits=list(res.logits),
            ids=None if res.ids is None else list(res.ids), tokens=res.tokens,
            cycles=to_cycles(res.cycles, self.target_kind, unit_dev, clock),
            cycles_raw=res.cycles, unit=cycle_unit(self.target_kind, unit_dev),
            stack=res.stack, arena=res.arena, layers=list(res.layers))
        return self.last

    def refused(self, text: str | bytes) -> tuple[str, str]:
        """CLASSIFY that must be refused: returns (code, reason); fails when a RESULT comes."""
        from hil.protocol import DeviceError, DeviceTimeout

        dev = self.need_device()
        try:
            res = dev.classify(text, timeout=self.timeout)
        except DeviceError as exc:
            return exc.code, exc.reason
        except DeviceTimeout as exc:
            raise self.fail(f"expected an ERROR for {_short(text)}: {exc}") from None
        raise self.fail(f"expected an ERROR for {_short(text)}, got RESULT label={res.label}")

    def reference(self, text: str) -> tuple[list[int], list[int]]:
        """(host token ids, reference logits) for `text`."""
        ids = self.oracle.ids(text)
        return ids, self.oracle.logits(ids)

    def check_agrees(self, answer: Answer | None = None) -> None:
        """The device's ids and logits equal the host tokenizer's and the reference's."""
        ans = answer or self.last
        if ans is None:
            raise SessionError(f"{self.where} nothing classified yet")
        ids, ref = self.reference(ans.text)
        if ans.ids is not None and ans.ids != ids:
            raise self.fail(f"token ids differ for {_short(ans.text)}: host {ids}, "
                            f"device {ans.ids}")
        if ans.logits != ref:
            diff = [i for i, (a, b) in enumerate(zip(ans.logits, ref, strict=False)) if a != b]
            raise self.fail(f"logits differ from the integer reference for {_short(ans.text)} "
                            f"at {diff or 'length'}: expected {ref}, device {ans.logits}")


def _short(text: str | bytes, n: int = 60) -> str:
    return repr(text if len(text) <= n else text[:n] + ("..." if isinstance(text, str) else b"..."))
