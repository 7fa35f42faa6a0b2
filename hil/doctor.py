"""`hil doctor`: what this machine can run, what is missing, and the exact command to install it.

Checks are plain functions returning Check records, so `hil boards` reuses them to say which
targets are runnable here, and tests can call them with a modified PATH.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hil.boards import BOARDS
from hil.firmware import NATIVE_INSTALL, TOOLCHAIN_INSTALL
from hil.paths import datasets_dir
from hil.targets import TARGETS, emulated_kinds


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # version or path when ok, what is missing otherwise
    fix: str = ""  # the install command (empty when ok)
    required: bool = True  # False: only some features need it


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.strip().splitlines()[0] if out.strip() else "?"


def check_arm_gcc() -> Check:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        return Check("arm-none-eabi-gcc", False, "not on PATH (builds for Cortex-M boards)",
                     TOOLCHAIN_INSTALL)
    return Check("arm-none-eabi-gcc", True, _version([gcc, "--version"]))


def check_newlib() -> Check:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        return Check("newlib (nano)", False, "needs arm-none-eabi-gcc first", TOOLCHAIN_INSTALL)
    path = _version([gcc, "-mcpu=cortex-m4", "-mthumb", "-print-file-name=libc_nano.a"])
    if path in ("?", "libc_nano.a") or not Path(path).is_file():
        return Check("newlib (nano)", False, "libc_nano.a not found",
                     "sudo apt-get install -y --no-install-recommends libnewlib-arm-none-eabi")
    return Check("newlib (nano)", True, path)


def check_host_cc() -> Check:
    missing = [t for t in ("gcc", "make") if shutil.which(t) is None]
    if missing:
        return Check("gcc + make", False, f"missing {', '.join(missing)} (native board)",
                     NATIVE_INSTALL)
    return Check("gcc + make", True, _version(["gcc", "--version"]))


def check_backend(kind: str) -> Check:
    """The program an emulated target kind runs (QEMU, Renode): where it is, or how to get it.
    The facts (how to find it, how to install it) are the target class's."""
    cls = TARGETS[kind]
    why = cls.missing()
    boards = ", ".join(b.name for b in BOARDS.values() if kind in b.targets)
    name = f"{cls.backend or kind} ({kind} target)"
    if why is not None:
        return Check(name, False, f"{why.split(';')[0]} (boards {boards})", cls.install_hint)
    where = cls.locate() or "found"
    return Check(name, True, f"{_version([where, '--version']) if cls.locate() else where} at "
                 f"{where} (boards {boards})")


def check_serial_ports() -> Check:
    try:
        from hil.targets.serial import describe_port, list_ports

        ports = list_ports()
    except Exception as exc:  # pyserial missing or no /dev access
        return Check("serial ports", False, f"cannot list ports: {exc}",
                     "python3 -m pip install pyserial", required=False)
    if not ports:
        return Check("serial ports", True, "none (plug a board in for the serial target)",
                     required=False)
    return Check("serial ports", True, "; ".join(describe_port(p) for p in ports),
                 required=False)


def check_python(module: str, package: str, required: bool = True, why: str = "") -> Check:
    if importlib.util.find_spec(module) is None:
        return Check(f"python: {package}", False, f"not installed{' (' + why + ')' if why else ''}",
                     f"python3 -m pip install '{package}'", required=required)
    return Check(f"python: {package}", True, "installed", required=required)


def check_datasets() -> Check:
    DATASETS = datasets_dir()  # noqa: N806
    if (DATASETS / "README.md").is_file():
        return Check("datasets", True, str(DATASETS), required=False)
    return Check("datasets", False, f"{DATASETS} missing (training and benchmarks only; the "
                 "scenarios ship their own sentences)", "", required=False)


def all_checks() -> list[Check]:
    return [
        check_host_cc(), check_arm_gcc(), check_newlib(),
        *(check_backend(kind) for kind in emulated_kinds()), check_serial_ports(),
        check_python("numpy", "numpy"), check_python("serial", "pyserial"),
        check_python("yaml", "PyYAML"), check_python("elftools", "pyelftools"),
        check_python("tokenizers", "tokenizers"),
        check_python("torch", "torch==2.13.0", required=False, why="training only"),
        check_datasets(),
    ]


def runnable_targets() -> dict[str, str]:
    """target kind -> "yes" or why not, for `hil boards`."""
    arm = check_arm_gcc().ok and check_newlib().ok
    out = {}
    for kind, cls in TARGETS.items():
        why = cls.missing()
        if not cls.builds_firmware:
            out[kind] = "needs a board plugged in" + ("" if arm else " and the Arm toolchain")
        elif why:
            out[kind] = f"no: {why.split(';')[0]}"
        else:
            out[kind] = "yes" if arm or not cls.emulated else "no: needs the Arm toolchain"
    return out


def doctor(args: object = None) -> int:
    """Print every check (or, with --json, the checks as JSON on stdout); exit 2 if something
    required is missing (the exit code's meaning for every command: missing here)."""
    checks = all_checks()
    missing = [c for c in checks if c.required and not c.ok]
    if getattr(args, "json", False):
        import dataclasses
        import json

        print(json.dumps({"ok": not missing, "checks": [dataclasses.asdict(c) for c in checks]},
                         indent=2))
        return 2 if missing else 0
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok  " if c.ok else ("MISS" if c.required else "opt ")
        print(f"  [{mark}] {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            print(f"  {'':6} {'':<{width}}  install: {c.fix}")
    if missing:
        print(f"hil doctor: {len(missing)} required item(s) missing: "
              f"{', '.join(c.name for c in missing)}")
        return 2
    print("hil doctor: everything required is here")
    return 0
