"""Fixtures shared by the run and reliability tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


class RecordingFactory:
    """A RunConfig.target_factory that builds the real target class and remembers every
    instance, so a test can kill the one in use (the runner builds a new one per restart)."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.started: list[Any] = []

    def __call__(self, board: Any, run_dir: Path, elf: Path, name: str) -> Any:
        t = self.cls(board, run_dir, elf=elf, name=name)
        self.started.append(t)
        return t


@pytest.fixture
def recording_factory() -> type[RecordingFactory]:
    """RecordingFactory itself: call it with NativeTarget or QemuTarget."""
    return RecordingFactory
