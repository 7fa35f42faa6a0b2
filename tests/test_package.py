"""Packaging promises (issue #16): outputs go to one run folder, builds to the per-user cache,
and an installed wheel carries what `hil run` needs (firmware sources, scenarios, models).

Why these tests exist: each guards a way the tool used to write into the checkout or the
package (firmware/build/, output.xml at the root, run folders inside hil/), or to depend on
files that only a development checkout has.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hil import paths

ROOT = Path(__file__).resolve().parents[1]


def test_runs_dir_is_one_folder_outside_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIL_RUNS_DIR", raising=False)
    assert paths.runs_dir() == Path("hil-runs")
    assert not paths.runs_dir().resolve().is_relative_to(paths.PACKAGE_DIR)
    monkeypatch.setenv("HIL_RUNS_DIR", "/tmp/elsewhere")
    assert paths.runs_dir() == Path("/tmp/elsewhere")


def test_cache_dir_is_overridable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path))
    assert paths.cache_dir() == tmp_path
    monkeypatch.delenv("HIL_CACHE_DIR")
    assert not paths.cache_dir().is_relative_to(ROOT)


def test_gitignore_covers_run_outputs() -> None:
    """Whatever a default run leaves in the checkout is ignored, not committed by accident."""
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in ("/hil-runs/", "/output.xml", "/log.html", "/report.html"):
        assert entry in ignored


def test_wheel_carries_firmware_scenarios_and_models(tmp_path: Path) -> None:
    """The wheel maps the top-level firmware/ and scenarios/ to hil/_data/ (setup.py) and ships
    the models, so an installed `hil build` / `hil run` finds them (hil.paths); the firmware's
    own C tests and any build output stay out. (.ci/run's `wheel` part installs and runs it.)"""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"  # a copy, so setuptools' build/ and egg-info stay out of the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "hil-runs", ".ci-artifacts", "__pycache__",
        ".pytest_cache", ".ruff_cache"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for tracked in ("firmware/Makefile", "firmware/src/forward.c", "firmware/ports/native/native.c",
                    "scenarios/nlu_scenario.yaml", "scenarios/data/nlu_scenario_test.jsonl"):
        assert f"hil/_data/{tracked}" in names, tracked
    for model in ("nlu_scenario", "sms_spam", "imdb"):
        assert f"hil/models/{model}/model.bin" in names
    assert not [n for n in names if n.startswith(("hil/_data/firmware/tests/",
                                                  "hil/_data/firmware/build/"))]
    assert not [n for n in names if n.endswith((".o", ".elf"))]
