"""pytest plugin for embbert-hil (entry point `pytest11`): options, the `hil_device` fixture and
the `needs_target(name)` marker.

    pytest --hil-board netduinoplus2 --hil-target qemu tests/test_x.py

    def test_alarm(hil_device):
        answer = hil_device.classify("wake me up at seven")
        hil_device.check_agrees(answer)          # bit-exact with the integer reference

    @pytest.mark.needs_target("renode")
    def test_only_where_renode_is(): ...

`hil_device` is a hil.session.BoardSession (the same session `hil run` and Robot use): the firmware
is built and the board booted once per pytest session (on first use), and before every test the link
is drained and the device must answer HELLO, so one test's noise never leaks into the next.
`hil_device.device` is the hil.protocol.Device for raw exchanges.

The plugin is loaded by every pytest run of this repository (and of any project that installs
embbert-hil), so this module imports only pytest at import time and does nothing until an option
is read, a marker is met or the fixture is used.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

_MARKERS = (
    "needs_target(name): skip unless the named target (see `hil boards`) can run here",
)


_CACHE = pytest.StashKey[dict]()  # "target/board" -> why it cannot run here (None = it can)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "embbert-hil boards")
    from hil.boards import DEFAULT_TEST_BOARD

    group.addoption("--hil-board", default=DEFAULT_TEST_BOARD,
                    help=f"board the hil_device fixture boots (default: {DEFAULT_TEST_BOARD})")
    group.addoption("--hil-target", default=None,
                    help="target for --hil-board (default: the board's first target)")
    group.addoption("--hil-model", default="nlu_scenario",
                    help="shipped model name or blob path the firmware carries")
    group.addoption("--hil-elf", default=None,
                    help="prebuilt firmware for --hil-board (default: build it)")
    group.addoption("--hil-port", default=None, help="serial port for --hil-target serial")


def pytest_configure(config: pytest.Config) -> None:
    for line in _MARKERS:
        config.addinivalue_line("markers", line)


def _unavailable(target: str, board: str | None) -> str | None:
    from hil.boards import BOARDS
    from hil.session import target_unavailable

    if board is None:  # any board that runs on this target
        board = next((b.name for b in BOARDS.values() if target in b.targets), None)
        if board is None:
            return f"no board runs on target {target!r}"
    return target_unavailable(board, target)


def pytest_runtest_setup(item: pytest.Item) -> None:
    marks = list(item.iter_markers(name="needs_target"))
    if not marks:
        return
    cache: dict[str, str | None] = item.config.stash.setdefault(_CACHE, {})
    for mark in marks:
        if not mark.args:
            raise pytest.UsageError(f"{item.nodeid}: needs_target needs a target name, e.g. "
                                    "@pytest.mark.needs_target('qemu')")
        target = str(mark.args[0])
        board = mark.kwargs.get("board")
        key = f"{target}/{board}"
        if key not in cache:
            cache[key] = _unavailable(target, board)
        if cache[key]:
            # Reported at the test's own location, not this plugin's line.
            raise pytest.skip.Exception(f"needs target {target}: {cache[key]}",
                                        _use_item_location=True)


def _board_of(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(board, target) for the session: an indirect parameter (`"netduinoplus2"` or
    `"stm32f4@renode"`) when the test gives one, else --hil-board/--hil-target."""
    param = getattr(request, "param", None)
    if param is None:
        return request.config.getoption("--hil-board"), request.config.getoption("--hil-target")
    if not isinstance(param, str):
        raise pytest.UsageError(f"hil_board_session parameters are board names, optionally "
                                f"with @target (e.g. 'stm32f4@renode'); got {param!r}")
    board, _, target = param.partition("@")
    return board, target or None


class HilBoardWarning(UserWarning):
    """What a booted board warned of (today: an arena too small for some input lengths)."""


@pytest.fixture(scope="session")
def hil_board_session(request: pytest.FixtureRequest,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The booted board for the whole pytest session (see `hil_device`).

    Several boards in one session, as pytest-embedded's indirect targets:
    `@pytest.mark.parametrize("hil_board_session", ["native", "netduinoplus2"], indirect=True)`
    boots one session per board (each once, shared by the tests that name it)."""
    from hil.errors import HilError
    from hil.session import BoardSession, TargetUnavailable

    opt = request.config.getoption
    board, target = _board_of(request)
    try:
        session = BoardSession(board, target, model=opt("--hil-model"), elf=opt("--hil-elf"),
                               run_dir=tmp_path_factory.mktemp(f"hil-{board}"),
                               port=opt("--hil-port"))
    except HilError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        session.boot()
    except TargetUnavailable as exc:
        session.stop()
        pytest.skip(str(exc))
    except BaseException:
        session.stop()
        raise
    if session.arena_warning:
        # In pytest's warnings summary: the NO_MEMORY answers some tests may then meet are the
        # board's size, not the link or the model.
        warnings.warn(f"{session.where}: {session.arena_warning}", HilBoardWarning, stacklevel=1)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture()
def hil_device(hil_board_session: Any, record_property: Any) -> Iterator[Any]:
    """The session's booted board, clean: link drained and HELLO answered before the test.

    If an earlier test left the device dead (crash, fault), it is booted again first. Every
    answer in the test is recorded into the JUnit report (`record_property`): board, target,
    label, cycles with their unit, latency, stack and arena peaks."""
    s = hil_board_session
    if not s.alive():
        s.stop()
        s.boot()
    s.clean()
    s.last = None
    s.on_answer = lambda ans: _record(record_property, s, ans)
    yield s
    s.on_answer = None
    if s.alive() and s.device is not None:
        s.device.drain(quiet=0.05, limit=5.0)


def _record(record_property: Any, s: Any, ans: Any) -> None:
    for key, value in (("board", s.board.name), ("target", s.target_kind),
                       ("label", ans.label_name), ("cycles", ans.cycles), ("unit", ans.unit),
                       ("latency_ms", ans.latency_ms and round(ans.latency_ms, 6)),
                       ("stack", ans.stack), ("arena", ans.arena), ("agree", ans.agree)):
        record_property(key, value)
