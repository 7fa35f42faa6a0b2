"""`hil report merge SHARD_DIR... --out DIR`: the shards of one run, made into one run folder.

Why: a large scenario is spread over machines or CI matrix jobs with `hil run --shard K/N`; a
lab wants one results.jsonl, one summary.json and one report at the end, the same as if one
machine had run it all. The merge refuses what would make that a lie (docs/design.md,
contract 6): shards of different models, scenarios, boards, targets or limits, a shard given
twice, a shard missing, two shards answering the same sentence, or a shard that did not finish
every sentence of its block (re-run it with `hil run --resume` first).

The merged folder's summary is recomputed from the merged records by the same analysis every
report uses (hil.results via hil.summary); throughput figures add up the shards' own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.boards import get_board
from hil.errors import UsageError
from hil.firmware import ElfSizes
from hil.results import latest_in_order, read_results
from hil.scenario import load_scenario
from hil.summary import check_expectations, summarize, write_summary

#: run.json keys that must agree across the shards of one run (`shard` and `jobs` may differ).
IDENTITY = ("board", "target", "model", "limit", "scenario")


@dataclass
class Shard:
    """One shard's folder as found on disk."""

    path: Path
    meta: dict[str, Any]
    summary: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def k_of_n(self) -> tuple[int, int]:
        shard = self.meta.get("shard")
        if not shard:
            raise UsageError(f"{self.path}: not a shard (its run.json has no `shard`); give the "
                             f"folders of `hil run --shard K/N`")
        return int(shard[0]), int(shard[1])


def load_shard(path: Path) -> Shard:
    """A shard folder: run.json, summary.json and results.jsonl, or a UsageError naming what is
    missing."""
    for name in ("run.json", "summary.json", "results.jsonl"):
        if not (path / name).is_file():
            raise UsageError(f"{path}: no {name} there; a shard folder is the --out of "
                             f"`hil run --shard K/N`")
    return Shard(path=path, meta=json.loads((path / "run.json").read_text()),
                 summary=json.loads((path / "summary.json").read_text()),
                 records=latest_in_order(read_results(path / "results.jsonl")))


def _identity(shard: Shard) -> dict[str, Any]:
    """What must agree across shards. Paths are left out (the same scenario or blob sits in
    another checkout on another machine): the model counts by the id the device reported."""
    out = {k: shard.meta.get(k) for k in IDENTITY}
    scen = dict(out.get("scenario") or {})
    for key in ("path", "sentences"):
        scen.pop(key, None)
    out["scenario"] = scen
    out["model"] = shard.summary.get("model_id") or shard.meta.get("model_id")
    return out


def check_shards(shards: list[Shard]) -> int:
    """Refuse shards that are not the complete, disjoint parts of one run; returns N."""
    if not shards:
        raise UsageError("give the shard folders to merge")
    first = _identity(shards[0])
    for s in shards[1:]:
        other = _identity(s)
        diff = [k for k in IDENTITY if other[k] != first[k]]
        if diff:
            raise UsageError(f"{s.path} is not a shard of the same run as {shards[0].path}: "
                             f"{', '.join(f'{k} {other[k]!r} vs {first[k]!r}' for k in diff)}")
    ns = {s.k_of_n[1] for s in shards}
    if len(ns) != 1:
        raise UsageError(f"the shards split the run differently: N = {sorted(ns)}")
    n = ns.pop()
    ks = [s.k_of_n[0] for s in shards]
    twice = sorted({k for k in ks if ks.count(k) > 1})
    missing = sorted(set(range(1, n + 1)) - set(ks))
    if twice:
        raise UsageError(f"shard(s) {twice} of {n} given more than once")
    if missing:
        raise UsageError(f"shard(s) {missing} of {n} missing; run `hil run --shard K/{n}` for "
                         f"each and give every folder")
    seen: dict[int, Path] = {}
    for s in shards:
        for r in s.records:
            idx = int(r["index"])
            if idx in seen:
                raise UsageError(f"sentence #{idx} is in both {seen[idx]} and {s.path}: the "
                                 f"shards overlap")
            seen[idx] = s.path
        summ = s.summary.get("summary", {})
        if not s.summary.get("complete") or summ.get("sentences") != summ.get("selected"):
            raise UsageError(f"{s.path} did not finish its block ({summ.get('sentences')}/"
                             f"{summ.get('selected')} sentences); complete it with "
                             f"`hil run --resume {s.path}` first")
    return n


class _MergedConfig:
    """What hil.summary.summarize reads of a RunConfig, for the merged run."""

    def __init__(self, meta: dict[str, Any], out: Path, jobs: int) -> None:
        self.board = get_board(str(meta["board"]))
        self.target = str(meta["target"])
        scen_path = (meta.get("scenario") or {}).get("path")
        self.scenario = load_scenario(scen_path) if scen_path and Path(scen_path).is_file() \
            else _NamedScenario(meta)
        self.model_path = Path(str(meta["model"]))
        self.out_dir = out
        self.jobs = jobs


class _NamedScenario:
    """The scenario as run.json recorded it, when its file is not on this machine."""

    def __init__(self, meta: dict[str, Any]) -> None:
        scen = meta.get("scenario") or {}
        self.name = str(scen.get("name", "?"))
        self.expect = dict(scen.get("expect") or {})


def merge(shard_dirs: list[Path], out: Path) -> tuple[int, dict[str, Any]]:
    """Write the merged run into `out`; returns (exit code of the merged verdict, summary)."""
    shards = sorted((load_shard(Path(p)) for p in shard_dirs), key=lambda s: s.k_of_n[0])
    n = check_shards(shards)
    out.mkdir(parents=True, exist_ok=True)
    records = sorted((r for s in shards for r in s.records), key=lambda r: int(r["index"]))
    tmp = out / "results.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out / "results.jsonl")
    meta = {**shards[0].meta, "shard": None, "merged_from": [str(s.path) for s in shards],
            "jobs": sum(int(s.meta.get("jobs") or 1) for s in shards),
            "identity": None}  # a shard's identity names its own block of sentences
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    first = shards[0].summary
    fw = first.get("firmware")
    sizes = None if not fw else ElfSizes(text=fw["text"], data=fw["data"], bss=fw["bss"],
                                         stack=fw["stack"])
    cfg = _MergedConfig(meta, out, meta["jobs"])
    tps = [s.summary.get("throughput") or {} for s in shards]
    summary = summarize(cfg, records, sizes=sizes, hello=first.get("hello") or {},
                        targets=[t for s in shards for t in s.summary.get("targets") or []],
                        wall_s=max(float(t.get("wall_s") or 0) for t in tps),
                        processed=sum(int(t.get("processed_this_run") or 0) for t in tps),
                        skipped=sum(int(t.get("skipped_resumed") or 0) for t in tps),
                        total=sum(int(s.summary["summary"]["selected"]) for s in shards),
                        error=None)
    summary["throughput"]["note"] = (f"merged from {n} shards run in parallel: wall = the "
                                     f"slowest shard, sentences/s = all answers / that wall")
    summary["merged_from"] = meta["merged_from"]
    failed = check_expectations(summary, cfg.scenario.expect)
    write_summary(summary, out / "summary.json")
    return (1 if failed else 0), summary
