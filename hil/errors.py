"""The error types every front end shares, each carrying the exit code it means.

Why typed: the verdict of a run is its exit code (0 pass, 1 an expectation failed or the model
does not fit, 2 something is missing here or the request is invalid, 3 the run failed), and a
code picked by reading an error's text breaks the day the text is reworded. So every error that
reaches a command line is one of these classes, and `exit_code_of` reads the class, never the
message (docs/design.md, "Errors and exit codes").

This module is the floor: it imports nothing from hil.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_EXPECTATIONS = 1  # an expectation failed, or the model does not fit the board
EXIT_ENVIRONMENT = 2  # a tool, file or argument is missing or wrong here
EXIT_RUN_ERROR = 3  # the run failed (target died, no HELLO, wrong model); results are kept


class HilError(Exception):
    """Base of every hil error; `exit_code` is what a command returns for it."""

    exit_code = EXIT_RUN_ERROR


class UsageError(HilError):
    """The request cannot be served as asked: unknown board, bad blob, not a run folder."""

    exit_code = EXIT_ENVIRONMENT


class EnvironmentMissing(HilError):
    """A program or file this machine needs is not installed; the message says how to get it."""

    exit_code = EXIT_ENVIRONMENT


class ExpectationFailed(HilError):
    """A measured value is outside what was asked (accuracy, cycles, memory, the board's size)."""

    exit_code = EXIT_EXPECTATIONS


class RunError(HilError):
    """The run could not go on (target died, never said hello, wrong model); results are kept."""

    exit_code = EXIT_RUN_ERROR


class NoHello(RunError):
    """The target started but no HELLO came: fatal on the first boot (wrong firmware, wrong
    port), worth another restart when a target that answered before is rebooted under faults."""


class WrongFirmware(RunError):
    """The device speaks another protocol version or runs another model than the host's blob."""


def exit_code_of(exc: BaseException) -> int:
    """The exit code an exception stands for (3 for anything that is not a HilError)."""
    return exc.exit_code if isinstance(exc, HilError) else EXIT_RUN_ERROR
