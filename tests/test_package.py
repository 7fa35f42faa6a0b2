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
