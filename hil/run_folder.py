"""A run folder: its lock, what its results belong to (run.json), and reading that back.

Why its own module: these are the rules that keep a folder's results.jsonl honest across
processes (docs/design.md, contract 6): one writer at a time (a flock the kernel drops when the
writer dies), and `--resume` only over results of the same model, board, target, scenario and
sentences.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.errors import UsageError
from hil.scenario import selection_digest

# `cfg` below is a hil.runner.RunConfig; typed Any so this module does not import its caller.

if TYPE_CHECKING:
    from hil.oracle import Oracle
    from hil.scenario import Sentence


@contextlib.contextmanager
def folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive flock on <out>/run.lock while a run writes there: two runs appending to
    one results.jsonl (and one deleting it) lost records; the second now refuses (exit 2). The
    kernel drops the lock when the process dies, so a killed run never leaves the folder stuck."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(out_dir / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UsageError(f"cannot use run folder {out_dir}: {exc.strerror} ({exc.filename}); "
                         f"pick another --out") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 100, 0).decode("utf-8", "replace").strip() or "another process"
            raise UsageError(f"run folder {out_dir} is in use by another `hil run` ({holder}; "
                             f"lock {out_dir / 'run.lock'}); wait for it to finish or pick "
                             f"another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def run_identity(cfg: Any, oracle: Oracle, chosen: list[Sentence]) -> dict[str, Any]:
    """What a folder's results belong to; --resume refuses a folder whose identity differs."""
    return {"model_id": f"{oracle.model_id:08X}", "board": cfg.board.name, "target": cfg.target,
            "scenario": cfg.scenario.name, "sentences_sha256": selection_digest(chosen)}


def check_identity(out_dir: Path, identity: dict[str, Any]) -> None:
    """UsageError naming each mismatch between the folder's run.json and this run. A run.json
    from before identities is checked on the fields it has (board, target, scenario name)."""
    meta = load_run_meta(out_dir)
    old = meta.get("identity") or {"board": meta.get("board"), "target": meta.get("target"),
                                   "scenario": (meta.get("scenario") or {}).get("name")}
    diffs = [f"{k} {old[k]} there, {v} now" for k, v in identity.items()
             if old.get(k) is not None and old[k] != v]
    if diffs:
        raise UsageError(f"--resume {out_dir}: its results belong to another run ("
                         f"{'; '.join(diffs)}); resume with the same model, board, target, "
                         f"scenario, sentences, --limit and --shard, or start a fresh --out")


def save_run_meta(cfg: Any, identity: dict[str, Any] | None = None) -> None:
    """run.json: how to resume (the arguments) and what the results belong to (identity)."""
    meta = {"board": cfg.board.name, "target": cfg.target, "scenario": cfg.scenario.as_dict(),
            "model": str(cfg.model_path), "limit": cfg.limit,
            "shard": list(cfg.shard) if cfg.shard else None, "jobs": cfg.jobs,
            "place": cfg.place, "identity": identity}
    tmp = cfg.out_dir / "run.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, cfg.out_dir / "run.json")


def load_run_meta(out_dir: Path) -> dict[str, Any]:
    """run.json of a run folder, or UsageError (exit 2) naming the file."""
    path = out_dir / "run.json"
    if not path.is_file():
        raise UsageError(f"--resume {out_dir}: no run.json there (not a run directory)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume {out_dir}: {path} is unreadable ({exc}); start a fresh "
                         f"--out") from None
    if not isinstance(meta, dict):
        raise UsageError(f"--resume {out_dir}: {path} is not a JSON object; start a fresh --out")
    return meta
