"""Robot Framework keywords for embbert-hil: boot a board, classify, judge against the reference.

Use it as ``Library    hil.robot`` (Robot takes the class named like the module's last part,
`robot` below, an alias of HilLibrary; Robot 6.1 and 7 alike). Render this documentation with
``python -m robot.libdoc hil.robot docs/robot-keywords.html``.

The work is done by hil.session.BoardSession, which ``hil run``, ``hil console`` and the pytest
plugin share, so a Robot suite, a pytest test and a run boot and judge a board the same way; this
module only turns its answers into keywords.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robot.api import SkipExecution
from robot.api.deco import keyword, library
from robot.utils import DotDict

from hil.errors import HilError
from hil.protocol import LinkClosed
from hil.session import BoardSession, SessionError, TargetUnavailable, target_unavailable

__all__ = ["HilLibrary"]

_SIZE_RE = re.compile(r"^\s*(\d+)\s*(b|bytes?|kib|kb|k|mib|mb|m)?\s*$", re.I)
_SCALE = {"": 1, "b": 1, "byte": 1, "bytes": 1, "k": 1024, "kb": 1024, "kib": 1024,
          "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}


def _bytes(value: Any) -> int:
    """`65536`, `64 KiB`, `1 MiB` -> bytes."""
    m = _SIZE_RE.match(str(value))
    if m is None:
        raise ValueError(f"expected a size like 65536, `64 KiB` or `1 MiB`, got {value!r}")
    return int(m.group(1)) * _SCALE[(m.group(2) or "").lower()]


@library(scope="SUITE", auto_keywords=False)
class HilLibrary:
    """Keywords to test EmbBERT-Q firmware on a board, emulated or real, bit for bit.

    A suite starts one board in its setup and stops it in its teardown:

    | *** Settings ***
    | Library           hil.robot
    | Suite Setup       Start Board    mps2-an386    target=qemu
    | Suite Teardown    Stop Board
    |
    | *** Test Cases ***
    | Alarm Request
    |     ${r}=    Classify    wake me up at seven tomorrow
    |     Prediction Should Be    alarm
    |     Device Should Agree With Reference
    |     Cycles Should Be Below    50000000
    |     Should Be True    ${r.stack} > 0

    Boards: ``native``, ``netduinoplus2``, ``mps2-an386``, ``nrf52840``, ``stm32f4`` (see
    ``hil boards``). Targets: ``native``, ``qemu``, ``renode``, ``serial``. When the target cannot
    run on this machine (Renode or QEMU not installed) `Start Board` *skips* the test or suite
    with the reason instead of failing it.

    Every failure says what was expected, what came, which board on which target, and where
    the full transcript of the link is.

    Inside ``renode-test``, whose Robot runs in Renode's venv without hil's dependencies, the
    same keywords come from ``python3 -m hil.robot.remote`` through Robot's ``Remote`` library,
    and `Attach Board` works on the machine Renode's ``Execute Command`` created
    (``renode/tests/nrf52840-hil.robot``, ``stm32f4-hil.robot``).

    Cycle counts are in the unit the target gives (``instructions (renode)``, ``instructions
    (qemu icount)``, ``ns (host)`` on native, ``cycles (dwt, board)`` on a real board);
    `Classify` returns the unit with the count.
    """

    def __init__(self) -> None:
        self.session: BoardSession | None = None

    # ---- boot -----------------------------------------------------------------------------

    @keyword
    def target_unavailable_reason(self, board: str, target: str | None = None) -> str:
        """Why ``board`` cannot run on ``target`` here, or an empty string when it can.

        Starts nothing. For Robot's own ``Skip If``:
        | ${why}=    Target Unavailable Reason    nrf52840    renode
        | Skip If    $why    ${why}
        """
        return target_unavailable(board, target) or ""

    @keyword
    def start_board(self, board: str, target: str | None = None, model: str = "nlu_scenario",
                    elf: str | None = None, run_dir: str | None = None, port: str | None = None,
                    timeout: float | None = None) -> DotDict:
        """Build the firmware for ``board`` (unless ``elf`` is given), boot it on ``target`` and
        wait for its HELLO; returns the HELLO fields.

        ``target`` defaults to the board's first target (``hil boards``); ``model`` is a shipped
        model name or a blob path; ``run_dir`` (default ``${OUTPUT DIR}/hil/<board>-<target>``)
        receives the build log and the link transcript; ``port`` is the serial port for
        ``target=serial``; ``timeout`` is the per-request timeout in seconds.

        Fails when the device runs another model than ``model``; skips when the target is
        not installed here.
        | Start Board    nrf52840    target=renode
        | Start Board    native    elf=${ELF}    # the path `hil build --board native` prints
        """
        return self._open(board, target, model=model, elf=elf, port=port, timeout=timeout,
                          run_dir=run_dir, default_dir=f"{board}-{target or 'default'}")

    @keyword
    def attach_board(self, board: str, elf: str, uart: str, model: str = "nlu_scenario",
                     run_dir: str | None = None, timeout: float | None = None) -> DotDict:
        """Attach to ``board`` running in a Renode someone else started (``renode-test``: the
        machine its ``Execute Command`` created from ``elf``) and wait for its HELLO, or ask for
        it; returns the HELLO fields. Every other keyword then works on that machine, next to
        Renode's own (``Wait For Line On Uart`` sees the same UART).

        ``uart`` is where that Renode exposes the board's UART: ``127.0.0.1:PORT`` (or ``PORT``)
        of a server socket terminal, made with ``emulation CreateServerSocketTerminal PORT
        "hil" false`` and ``connector Connect sysbus.usart2 hil``; or a pty path (not under
        renode-test, whose ``Reset Emulation`` kills Renode 1.15.1 with a pty terminal).
        `Stop Board` only lets go of the UART; Renode and its machine stay.
        | Attach Board    stm32f4    ${ELF}    127.0.0.1:${port}
        """
        from hil.targets.renode import RenodeTarget

        return self._open(board, RenodeTarget.kind, model=model, elf=elf, port=uart,
                          timeout=timeout, run_dir=run_dir, default_dir=f"{board}-attached",
                          attach=True)

    def _open(self, board: str, target: str | None, *, model: str, elf: str | None,
              port: str | None, timeout: float | None, run_dir: str | None, default_dir: str,
              attach: bool = False) -> DotDict:
        """Start (or, with ``attach``, attach) a session; the run dir defaults to
        ``${OUTPUT DIR}/hil-runs/<default_dir>``."""
        if self.session is not None:
            self.stop_board()
        if run_dir is None:
            run_dir = str(Path(_output_dir()) / "hil-runs" / default_dir)
        try:
            session = BoardSession(board, target, model=model, elf=elf, run_dir=run_dir,
                                   port=port, timeout=float(timeout) if timeout else None)
        except HilError as exc:
            raise SessionError(str(exc)) from None
        try:
            if attach:  # no Renode of ours to find or start: only the link to check
                session.start()
                session.clean()  # past the HELLO the target asked for on attaching
            else:
                session.boot()
        except TargetUnavailable as exc:
            session.stop()
            raise SkipExecution(str(exc)) from None
        except (HilError, LinkClosed) as exc:  # attach only: boot() says these itself
            session.stop()
            raise session.fail(f"could not attach: {exc}") from None
        except BaseException:
            session.stop()
            raise
        self.session = session
        hello = self._hello_dict()
        _log(f"{session.where} HELLO: firmware {hello.get('fw')}, model {hello.get('model')}, "
             f"{hello.get('clock')} Hz, unit {hello.get('unit')}, arena {hello.get('arena')} B; "
             f"transcript {session.log_path}")
        warning = session.arena_warning
        if warning:  # in the log's warnings section too, where a CI reader looks first
            _log(f"{session.where}: {warning}", "WARN")
        return hello

    @keyword
    def stop_board(self) -> None:
        """Stop the board's target (kills the emulator or process, closes the port). Safe to
        call when nothing was started."""
        if self.session is not None:
            self.session.stop()
            self.session = None

    # ---- hello and versions ---------------------------------------------------------------

    @keyword
    def hello_should_report(self, **fields: str) -> DotDict:
        """Ask HELLO again and check the named fields; returns all HELLO fields.

        ``model`` may be a model name (compared by its blob CRC) or 8 hex digits.
        | Hello Should Report    board=native    proto=1    unit=ns
        | Hello Should Report    model=nlu_scenario
        """
        s = self._need()
        try:
            s.hello = s.need_device().hello()
        except Exception as exc:
            raise s.fail(f"expected an answer to HELLO: {exc}") from None
        got = self._hello_dict()
        wrong = []
        for key, want in fields.items():
            if key not in got:
                wrong.append(f"{key}: expected {want!r}, HELLO has no such field")
                continue
            have = str(got[key])
            if key == "model" and not re.fullmatch(r"[0-9A-Fa-f]{8}", str(want)):
                from hil.quant.blob import read_blob
                from hil.scenario import resolve_model

                want = f"{int(read_blob(resolve_model(str(want)).read_bytes()).model_id):08X}"
            if have.upper() != str(want).upper():
                wrong.append(f"{key}: expected {want!r}, got {have!r}")
        if wrong:
            raise s.fail("HELLO does not report what was expected: " + "; ".join(wrong))
        return got

    @keyword
    def versions_should_match_host(self) -> None:
        """The device speaks this host's protocol version, runs firmware of this package's
        version, and carries the model blob the host has (by CRC)."""
        import hil
        from hil.protocol import PROTO_VERSION

        s = self._need()
        self.hello_should_report(proto=str(PROTO_VERSION), fw=hil.__version__,
                                 model=f"{s.oracle.model_id:08X}", board=s.board.name)

    # ---- classify ---------------------------------------------------------------------------

    @keyword
    def classify(self, text: str) -> DotDict:
        """Classify ``text`` on the device; returns ``label`` (id), ``label_name``, ``logits``,
        ``ids``, ``tokens``, ``cycles`` (in ``unit``), ``cycles_raw``, ``stack`` and ``arena``
        (peak bytes), ``layers``. Fails on an ERROR answer or a timeout.
        | ${r}=    Classify    set an alarm for six
        | Should Be Equal    ${r.label_name}    alarm
        """
        s = self._need()
        ans = s.classify(text)
        top = max(ans.probs) if ans.probs else 0.0
        _log(f"{s.where} {text!r} -> {ans.label_name} (p={top:.3f}, host softmax), "
             f"{ans.tokens} tokens, {ans.cycles:,} {ans.unit} "
             f"({_ms_text(ans)}), "
             f"stack {ans.stack} B, arena {ans.arena} B, "
             f"{'bit-exact with' if ans.agree else 'DIFFERS from'} the reference")
        return DotDict(ans.as_dict())

    @keyword
    def prediction_should_be(self, label: str) -> None:
        """The last `Classify` predicted ``label`` (a name from the model's label list, or its
        number)."""
        s = self._need()
        ans = self._last()
        want = s.label_id(label)
        if ans.label != want:
            raise s.fail(f"expected label {s.label_name(want)} ({want}) for {ans.text!r}, the "
                         f"device said {ans.label_name} ({ans.label}); logits {ans.logits}")

    @keyword
    def device_should_agree_with_reference(self, text: str | None = None) -> None:
        """The device's token ids and logits equal the host tokenizer's and the numpy integer
        reference's, bit for bit. With ``text``, classifies it first; else checks the last
        `Classify`."""
        s = self._need()
        if text is not None:
            s.classify(text)
        self._last()
        s.check_agrees()

    @keyword
    def cycles_should_be_below(self, limit: int) -> None:
        """The last `Classify` took fewer than ``limit`` cycles (in the target's unit)."""
        s, ans = self._need(), self._last()
        if not ans.cycles < int(limit):
            raise s.fail(f"expected fewer than {int(limit)} {ans.unit} for {ans.text!r}, "
                         f"took {ans.cycles}")

    @keyword
    def stack_peak_should_be_below(self, limit: str) -> None:
        """The last `Classify`'s stack high-water mark is below ``limit`` (``8192``, ``8 KiB``)."""
        s, ans = self._need(), self._last()
        if not ans.stack < _bytes(limit):
            raise s.fail(f"expected a stack peak below {_bytes(limit)} B for {ans.text!r}, "
                         f"got {ans.stack} B")

    @keyword
    def arena_peak_should_be_below(self, limit: str) -> None:
        """The last `Classify`'s arena high-water mark is below ``limit`` (``65536``,
        ``64 KiB``)."""
        s, ans = self._need(), self._last()
        if not ans.arena < _bytes(limit):
            raise s.fail(f"expected an arena peak below {_bytes(limit)} B for {ans.text!r}, "
                         f"got {ans.arena} B")

    @keyword
    def memory_should_fit_the_board(self) -> DotDict:
        """The firmware's flash and static RAM (from the ELF) fit the real chip's limits, and the
        last `Classify`'s stack and arena peaks fit the stack region and the arena the device
        announced. Returns the numbers. (``native`` has no chip limits: only the peaks count.)
        """
        from hil import firmware as fw

        s, ans = self._need(), self._last()
        out: dict[str, Any] = {"stack_peak": ans.stack, "arena_peak": ans.arena,
                               "arena": s.hello.arena}
        problems = []
        if s.board.is_chip and s.elf is not None:
            sizes = fw.elf_sizes(s.elf)
            out.update(sizes.as_dict())
            try:
                fw.check_fits(s.board, sizes)
            except fw.DoesNotFit as exc:
                problems.append(str(exc))
            if sizes.stack and ans.stack > sizes.stack:
                problems.append(f"stack peak {ans.stack} B over the stack region "
                                f"{sizes.stack} B")
        if s.hello.arena and ans.arena > s.hello.arena:
            problems.append(f"arena peak {ans.arena} B over the arena {s.hello.arena} B")
        if problems:
            raise s.fail("expected the firmware to fit the board: " + "; ".join(problems))
        return DotDict(out)

    # ---- bad input ----------------------------------------------------------------------------

    @keyword
    def classify_should_be_refused(self, text: str, code: str,
                                   encoding: str = "utf-8") -> str:
        """CLASSIFY ``text`` must be answered ``ERROR code=<code>``; returns the reason.

        ``encoding=latin-1`` sends each character as one byte, to send invalid UTF-8:
        | Classify Should Be Refused    caf\\xc3    BAD_UTF8    encoding=latin-1
        """
        s = self._need()
        got, reason = s.refused(text.encode(encoding))
        if got != code:
            raise s.fail(f"expected ERROR code={code} for {text[:60]!r}, got code={got} "
                         f"({reason})")
        return reason

    @keyword
    def send_raw_bytes(self, data: str, encoding: str = "latin-1") -> None:
        """Write ``data`` to the link as it is (each character one byte with the default
        ``latin-1``): noise, cut frames, bad CRCs. Follow with `Last Error Should Be`.
        | Send Raw Bytes    \\x00\\xffgarbage$$ \\n
        """
        self._need().need_device().send_raw(data.encode(encoding))

    @keyword
    def last_error_should_be(self, code: str, timeout: float = 30.0) -> DotDict:
        """The next frame from the device is ``ERROR code=<code>``; returns its seq, code and
        reason. Frames the device had already sent before are read in order."""
        from hil.protocol import DeviceTimeout, ErrorFrame, parse_message

        s = self._need()
        try:
            msg = parse_message(s.need_device().next_frame(float(timeout)))
        except DeviceTimeout as exc:
            raise s.fail(f"expected ERROR code={code}: {exc}") from None
        if not isinstance(msg, ErrorFrame):
            raise s.fail(f"expected ERROR code={code}, got {type(msg).__name__}: {msg}")
        if msg.code != code:
            raise s.fail(f"expected ERROR code={code}, got code={msg.code} ({msg.reason})")
        return DotDict(seq=msg.seq, code=msg.code, reason=msg.reason)

    @keyword
    def drain_link(self, quiet: float = 0.5) -> int:
        """Drop everything the device still sends until the link is quiet for ``quiet`` s (after
        deliberate noise: each ``$`` in it gets its own ERROR); returns how many events."""
        return int(self._need().need_device().drain(quiet=float(quiet)))

    @keyword
    def get_stats(self) -> DotDict:
        """STATS: ``requests``, ``errors``, ``uptime`` since boot."""
        s = self._need()
        st = s.need_device().stats()
        return DotDict(requests=st.requests, errors=st.errors, uptime=st.uptime)

    # ---- reset ----------------------------------------------------------------------------

    @keyword
    def device_should_recover_after_reset(self, text: str = "wake me up at seven am") -> None:
        """RESET the device: it must answer OK, boot again (a fresh HELLO with the same model),
        restart its counters, and classify ``text`` bit-exact with the reference."""
        from hil.protocol import DeviceError, DeviceTimeout

        s = self._need()
        before = s.hello.model
        try:
            s.hello = s.need_device().reset(timeout=max(s.timeout, 30.0))
        except (DeviceTimeout, DeviceError) as exc:
            raise s.fail(f"expected OK and a fresh boot HELLO after RESET: {exc}") from None
        if s.hello.model != before:
            raise s.fail(f"expected model {before:08X} after RESET, got {s.hello.model_hex}")
        stats = s.need_device().stats()
        if stats.requests > 1 or stats.errors:
            raise s.fail(f"expected counters restarted by the reset, STATS says "
                         f"requests={stats.requests} errors={stats.errors}")
        s.classify(text)
        s.check_agrees()

    # ---- every shipped model ------------------------------------------------------------------

    @keyword
    def other_shipped_models_should_predict_known_sentences(self, known_dir: str) -> list[str]:
        """Each shipped model (``hil/models/*/model.bin``) other than the started board's gets
        its own firmware build and boot on the same board and target, and must predict its
        known sentences (``<known_dir>/<model>.yaml``, made by ``python3 -m hil.robot.known
        <model>``; computed from the reference when the file is missing) bit-exact with the
        reference. A model too big for the board is logged and left out. The started board
        stays as it is. Returns the models checked.
        """
        from hil.robot.known import check_other_models

        return check_other_models(self._need(), Path(known_dir), _log)

    # ---- scenarios --------------------------------------------------------------------------

    @keyword
    def run_scenario(self, scenario: str, limit: int | None = None, jobs: int = 1,
                     out: str | None = None) -> DotDict:
        """Stream a scenario (``scenarios/x.yaml`` or its name) through ``hil run`` on the
        started board's target and firmware, and fail unless its ``expect:`` block holds
        (agreement with the reference, accuracy, cycles, RAM). Returns the summary's numbers.

        ``limit`` takes the first N sentences. The run boots its own instance of the target
        (``jobs`` of them); results and summary go to ``out`` (default under the run dir). On
        a board from `Attach Board` the run streams through that same UART (one job): the
        keyword lets go of it for the run and attaches again after.
        | ${s}=    Run Scenario    scenarios/nlu_smoke.yaml    limit=10
        | Should Be Equal As Numbers    ${s.agreement}    1.0
        """
        from hil.robot.scenario import run_scenario

        return DotDict(run_scenario(self._need(), scenario, limit=int(limit) if limit else None,
                                    jobs=int(jobs), out=out, log=_log))

    # ---- internals ----------------------------------------------------------------------

    def _need(self) -> BoardSession:
        if self.session is None:
            raise SessionError("no board started: use `Start Board    <board>` first")
        return self.session

    def _last(self) -> Any:
        s = self._need()
        if s.last is None:
            raise SessionError(f"{s.where} nothing classified yet: use `Classify` first")
        return s.last

    def _hello_dict(self) -> DotDict:
        return DotDict(self._need().hello.as_dict())


def _ms_text(ans: Any) -> str:
    if ans.latency_ms is None:
        return "no time estimate"
    return f"{'emulated ' if ans.emulated else ''}{ans.latency_ms:.3f} ms"


#: Set by hil.robot.remote, which serves these keywords from a process that is not Robot's:
#: where `_log` writes instead of Robot's logger (which would drop every message there), and
#: the folder that stands for Robot's ${OUTPUT DIR} (which that process cannot ask Robot for).
LOG_SINK: Callable[[str, str, bool], None] | None = None
OUTPUT_DIR: str | None = None


def _log(message: str, level: str = "INFO", html: bool = False) -> None:
    if LOG_SINK is not None:
        LOG_SINK(message, level, html)
        return
    from robot.api import logger

    logger.write(message, level, html=html)


#: `Library    hil.robot` imports the class named like the module's last component.
robot = HilLibrary


def _output_dir() -> str:
    """Robot's ${OUTPUT DIR} when running under Robot (or as the remote server was told),
    else ./runs/robot."""
    if OUTPUT_DIR is not None:
        return OUTPUT_DIR
    try:
        from robot.libraries.BuiltIn import BuiltIn

        return str(BuiltIn().get_variable_value("${OUTPUT DIR}"))
    except Exception:  # not inside a Robot run (libdoc, plain Python)
        from hil.paths import runs_dir

        return str(runs_dir() / "robot")
