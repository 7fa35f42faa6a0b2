"""`hil report merge`: the shards of one run (`hil run --shard K/N`), run for real on the native
board, merge into one run folder whose records equal an unsharded run's; every way the shards
can fail to be one run is refused with exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hil import cli

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="gcc/make not installed (native board)")

#: Fields that depend on when and where a sentence ran, not on what was answered.
TIMING = ("job", "host_ms", "cycles", "cycles_raw", "layers", "tokenizer_cycles")


def _run(out: Path, *extra: str) -> int:
    return cli.main(["run", "--board", "native", "--limit", "24", "--out", str(out), "--quiet",
                     *extra])


def _answers(folder: Path) -> list[dict]:
    lines = (folder / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in lines]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An unsharded run and its three shards (each shard's own verdict may be 1: 8 sentences
    can fall below the scenario's accuracy minimum; only the merged verdict counts)."""
    root = tmp_path_factory.mktemp("shards")
    out = {"full": root / "full"}
    assert _run(out["full"]) == 0
    for k in (1, 2, 3):
        out[f"s{k}"] = root / f"s{k}"
        assert _run(out[f"s{k}"], "--shard", f"{k}/3") in (0, 1)
    return out


def test_merged_shards_equal_the_unsharded_run(runs: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    merged = tmp_path / "merged"
    code = cli.main(["report", "merge", str(runs["s3"]), str(runs["s1"]), str(runs["s2"]),
                     "--out", str(merged)])
    assert code == 0, capsys.readouterr().err
    assert _answers(merged) == _answers(runs["full"])
    full = json.loads((runs["full"] / "summary.json").read_text())
    got = json.loads((merged / "summary.json").read_text())
    for key in ("sentences", "selected", "ok", "errors", "accuracy", "agreement"):
        assert got["summary"][key] == full["summary"][key], key
    assert got["complete"] and len(got["merged_from"]) == 3
    assert (merged / "report.html").is_file() and (merged / "junit.xml").is_file()


@pytest.mark.parametrize("pick, why", [
    (["s1", "s2"], "shard(s) [3] of 3 missing"),
    (["s1", "s1", "s2", "s3"], "shard(s) [1] of 3 given more than once"),
    (["s1", "full"], "not a shard"),
])
def test_merge_refuses_what_is_not_one_run(runs: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str], pick: list[str],
                                           why: str) -> None:
    code = cli.main(["report", "merge", *[str(runs[p]) for p in pick], "--out",
                     str(tmp_path / "m")])
    assert code == 2
    assert why in capsys.readouterr().err


def test_merge_refuses_another_model_and_an_unfinished_shard(
        runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other3"
    _run(other, "--shard", "3/3", "--model", "sms_spam")
    code = cli.main(["report", "merge", str(runs["s1"]), str(runs["s2"]), str(other),
                     "--out", str(tmp_path / "m")])
    assert code == 2 and "not a shard of the same run" in capsys.readouterr().err
    cut = tmp_path / "cut3"
    shutil.copytree(runs["s3"], cut)
    summary = json.loads((cut / "summary.json").read_text())
    summary["complete"] = False
    summary["summary"]["sentences"] -= 1
    (cut / "summary.json").write_text(json.dumps(summary))
    code = cli.main(["report", "merge", str(runs["s1"]), str(runs["s2"]), str(cut),
                     "--out", str(tmp_path / "m2")])
    assert code == 2 and "did not finish its block" in capsys.readouterr().err
