"""Where a run's numbers came from: the checkout, the tools, the host and the model (issue #19).

Why: a report that says "p95 = 5.1 M instructions" is only comparable with another one if both
say which firmware source, which compiler and emulator, and which model produced it. `collect()`
gathers that once per run for summary.json (hil.summary) and report.html (hil.report_html).

Why caches: `renode --version` starts Mono and takes about two seconds, longer than a whole
native run. Tool versions are therefore cached per process (functools.cache) and on disk, keyed
by the executable's path, size and mtime, so a new install is noticed and an unchanged one costs
one stat. The git state is not cached: it changes between runs of one process (tests, sessions).
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import hil
from hil.paths import CHECKOUT_DIR, MODELS_DIR, cache_dir
from hil.targets.qemu import find_qemu
from hil.targets.renode import find_renode

VERSION_TIMEOUT_S = 15.0  # a hung `--version` must not hold up a run's summary for long
_CACHE_NAME = "tool-versions.json"


def _tools() -> dict[str, str | None]:
    """The tools whose versions shape the numbers, by product name, where found (the emulators
    through the targets' own lookup, so $QEMU and $RENODE are honoured)."""
    return {"arm-none-eabi-gcc": shutil.which("arm-none-eabi-gcc"),
            "QEMU": find_qemu(), "Renode": find_renode()}


def _first_line(exe: str) -> str | None:
    """`exe --version`'s first non-empty line, or None when it cannot say."""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                             timeout=VERSION_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return next((ln.strip() for ln in (out.stdout or out.stderr).splitlines() if ln.strip()),
                None)


def _stat_key(exe: str) -> str:
    st = os.stat(exe)
    return f"{os.path.realpath(exe)}:{st.st_size}:{st.st_mtime_ns}"


def _disk_cache() -> tuple[Path, dict[str, str]]:
    path = cache_dir() / _CACHE_NAME
    try:
        data = json.loads(path.read_text())
        return path, data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return path, {}


@functools.cache
def tool_versions() -> dict[str, str]:
    """{tool: first line of its --version} for the tools present (absent ones are left out).
    Asked in parallel, once per process, and remembered on disk per executable build."""
    found = {name: exe for name, exe in _tools().items() if exe}
    keys = {name: _stat_key(exe) for name, exe in found.items()}
    path, cached = _disk_cache()
    todo = [name for name in found if keys[name] not in cached]
    if todo:
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            for name, line in zip(todo, pool.map(lambda n: _first_line(found[n]), todo),
                                  strict=True):
                if line:
                    cached[keys[name]] = line
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached, indent=1, sort_keys=True))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs the next process the same few seconds
    return {name: cached[keys[name]] for name in found if keys[name] in cached}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(CHECKOUT_DIR), *args], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> dict[str, Any] | None:
    """{"sha", "dirty"} of the checkout hil runs from, or None when hil is installed (not a
    checkout) or git is missing. The top level must be CHECKOUT_DIR itself: an installed hil in
    a virtualenv inside some other repository must not report that repository's commit."""
    top = _git("rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() != CHECKOUT_DIR.resolve():
        return None
    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if not sha else {"sha": sha, "dirty": bool(status)}


def model_card(model: str | Path | None) -> str | None:
    """hil/models/<name>/card.md for a model path (a folder or its model.bin), when it exists."""
    if not model:
        return None
    p = Path(model)
    folder = p.parent if p.suffix == ".bin" else p
    for card in (folder / "card.md", MODELS_DIR / folder.name / "card.md"):
        if card.is_file():
            return str(card)
    return None


def collect(model: str | Path | None = None, model_id: str | None = None) -> dict[str, Any]:
    """The provenance document: git, tools, python and hil versions, host, model id and card."""
    return {
        "git": git_state(),
        "tools": tool_versions(),
        "python": platform.python_version(),
        "hil": hil.__version__,
        "host": {"node": platform.node(), "platform": platform.platform(),
                 "cpus": os.cpu_count()},
        "model": {"id": model_id, "path": None if model is None else str(model),
                  "card": model_card(model)},
    }
