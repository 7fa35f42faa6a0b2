"""Build hook: copy the top-level firmware/ and scenarios/ into the wheel as hil/_data/.

Why a hook and not package data: firmware/ and scenarios/ stay the source of truth at the top
of the checkout (the Makefile, the C tests and the docs point there), while an installed `hil`
needs them beside the package; hil/paths.py looks for hil/_data/<name> when the checkout folders
are absent. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: top-level folder -> what of it a user's `hil build` / `hil run` never needs
SHIPPED = {"firmware": ("build", "tests"), "scenarios": ()}


class BuildPyWithData(build_py):
    """build_py, then the firmware sources and scenarios under <build_lib>/hil/_data/."""

    def run(self) -> None:
        super().run()
        for name, skip in SHIPPED.items():
            src = HERE / name
            if not src.is_dir():  # building from an sdist that lacks them: nothing to map
                continue
            dest = Path(self.build_lib) / "hil" / "_data" / name
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns(
                *skip, "__pycache__", "*.o", "*.elf", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithData})
