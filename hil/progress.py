"""Progress for the long commands (`hil build`, `hil data fetch`, `hil quantize`, `hil train`).

Why one helper: every long step should show the same kind of rich spinner or bar, always on
stderr (stdout carries the results that scripts and tests read), and only when stderr is a
terminal. When stderr is a pipe or a file (CI, `2>log`, a test's capture) every function here
does nothing, so what those commands print is exactly what they printed before progress existed.

Floor 0 (docs/design.md): imports only rich (lazily), so any floor may use it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def is_terminal() -> bool:
    """True when stderr is an interactive terminal: the one test for whether to draw progress.

    Asked at call time, not import time, because pytest and callers swap sys.stderr."""
    try:
        return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def console() -> Any:
    """A rich Console writing to stderr (created per use: it follows sys.stderr swaps)."""
    from rich.console import Console

    return Console(stderr=True)


def step(text: str) -> None:
    """One line on a terminal's stderr naming the step that starts (e.g. the model `hil quantize
    --all` is on); nothing off a terminal. A plain line, not a live display, so the spinners
    and bars of the step itself still draw below it."""
    if is_terminal():
        console().print(text, highlight=False)


#: rich's live displays by default catch sys.stdout and print it through the display's console,
#: i.e. to stderr: that would move a command's results off stdout while a spinner runs.
_NO_REDIRECT = {"redirect_stdout": False, "redirect_stderr": False}

#: How many spinners or bars are on screen: rich allows one live display at a time, so a step
#: started inside another (a bar inside a spinner) draws nothing instead of raising LiveError.
_live = 0


def _drawing() -> bool:
    """Whether a new spinner or bar may draw: stderr is a terminal and nothing else is live."""
    return _live == 0 and is_terminal()


@contextmanager
def status(text: str) -> Iterator[None]:
    """A spinner with `text` while the block runs (e.g. while make builds); nothing when stderr
    is not a terminal. The spinner is transient: the terminal's scrollback keeps only results."""
    global _live
    if not _drawing():
        yield
        return
    from rich.live import Live
    from rich.spinner import Spinner

    _live += 1
    try:
        with Live(Spinner("dots", text), console=console(), transient=True,
                  refresh_per_second=12.5, **_NO_REDIRECT):
            yield
    finally:
        _live -= 1


class Bar:
    """A bar over a known number of units, advanced by the caller; inert off a terminal.

    Why a class with `advance` rather than wrapping an iterable: the loops it serves advance by
    batch sizes or by results arriving from worker processes, not by one item per iteration."""

    def __init__(self, desc: str, total: int | None) -> None:
        self._bar: Any = None
        self._task: Any = None
        if not _drawing():
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TimeElapsedColumn(),
                             console=console(), transient=True, **_NO_REDIRECT)
        global _live
        _live += 1
        self._bar.start()
        self._task = self._bar.add_task(desc, total=total)

    def advance(self, n: int = 1) -> None:
        """Count `n` more units done."""
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        """Remove the bar (transient): later output starts on a clean line."""
        global _live
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            _live -= 1

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
