"""The pytest plugin (hil.pytest_plugin, loaded through its pytest11 entry point): options, the
needs_target skip marker, and the hil_device fixture booting, classifying and shutting down a
real native board. Checked with pytester, as pytest-embedded tests its own plugin; each run in a
subprocess, because an in-process run drops the modules it imported (numpy cannot be imported
twice in one process, and re-imported hil classes would break isinstance checks elsewhere).
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest

pytest_plugins = ["pytester"]

NEED_HOST_CC = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                  reason="needs gcc and make to build the native firmware")


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    """Every pytest run loads the plugin: it must not pull numpy, the targets or Robot."""
    import subprocess

    code = ("import sys, hil.pytest_plugin; "
            "print(','.join(m for m in ('numpy', 'hil.targets', 'robot', 'hil.runner', "
            "'hil.robot') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"the plugin imported {out} at load time"


def test_options_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*embbert-hil boards*", "*--hil-board=HIL_BOARD*",
                                 "*--hil-target=HIL_TARGET*", "*--hil-elf=HIL_ELF*"])


def test_options_reach_the_config(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_opts(pytestconfig):
            assert pytestconfig.getoption("--hil-board") == "mps2-an386"
            assert pytestconfig.getoption("--hil-target") == "qemu"
            assert pytestconfig.getoption("--hil-model") == "nlu_scenario"
    """)
    result = pytester.runpytest_subprocess("--hil-board", "mps2-an386", "--hil-target", "qemu")
    result.assert_outcomes(passed=1)


def test_needs_target_skips_with_the_reason(pytester: pytest.Pytester,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENODE", "/nonexistent/renode")  # $RENODE that is not there: no Renode
    pytester.makepyfile("""
        import pytest

        @pytest.mark.needs_target("renode")
        def test_renode():
            raise AssertionError("must not run without Renode")

        @pytest.mark.needs_target("teleporter")
        def test_unknown():
            raise AssertionError("must not run")

        @pytest.mark.needs_target("renode", board="nrf52840")
        def test_renode_board():
            raise AssertionError("must not run")
    """)
    result = pytester.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*needs target renode: *Renode is not installed*",
                                 "*needs target teleporter: no board runs on target*"])


@NEED_HOST_CC
def test_needs_target_runs_when_available(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.needs_target("native")
        def test_native():
            pass
    """)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_needs_target_without_a_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.needs_target
        def test_x():
            pass
    """)
    result = pytester.runpytest_subprocess()
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*needs_target needs a target name*"])


def test_hil_device_skips_when_the_target_is_missing(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENODE", "/nonexistent/renode")
    pytester.makepyfile("""
        def test_uses_board(hil_device):
            raise AssertionError("must not run")
    """)
    result = pytester.runpytest_subprocess(
        "--hil-board", "nrf52840", "--hil-target", "renode", "-rs"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*nrf52840 on renode*cannot run here*"])


@NEED_HOST_CC
def test_hil_device_boots_classifies_and_shuts_down(pytester: pytest.Pytester,
                                                    tmp_path: os.PathLike) -> None:
    """A real native board: booted once for two tests, clean between them (noise from the
    first does not reach the second), bit-exact with the reference, and its process gone after
    the session."""
    pid_file = tmp_path / "pid"  # type: ignore[operator]
    pytester.makepyfile(f"""
        def test_first(hil_device):
            ans = hil_device.classify("wake me up at seven am")
            hil_device.check_agrees(ans)
            assert ans.label_name == "alarm" and ans.cycles > 0 and ans.stack > 0
            assert hil_device.hello.board == "native"
            hil_device.device.send_raw(b"$$noise without an end")  # left for the next test
            open({str(pid_file)!r}, "w").write(str(hil_device.target.proc.pid))

        def test_second_gets_a_clean_link(hil_device):
            open({str(pid_file)!r}, "a").write(" " + str(hil_device.target.proc.pid))
            ans = hil_device.classify("what is the weather like in paris")
            hil_device.check_agrees(ans)
    """)
    result = pytester.runpytest_subprocess("--hil-board", "native", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    first, second = pid_file.read_text().split()
    assert first == second, "the board must be booted once per session"
    with pytest.raises(ProcessLookupError):
        os.kill(int(first), 0)


def test_a_skip_points_at_the_test_not_the_plugin(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENODE", "/nonexistent/renode")
    pytester.makepyfile(test_where="""
        import pytest

        @pytest.mark.needs_target("renode")
        def test_renode():
            pass
    """)
    result = pytester.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_where.py:*: needs target renode*"])
    assert "pytest_plugin.py" not in result.stdout.str()


@NEED_HOST_CC
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or
                    shutil.which("arm-none-eabi-gcc") is None, reason="needs QEMU and the Arm GCC")
def test_several_boards_in_one_session_and_answers_in_junit(pytester: pytest.Pytester,
                                                            tmp_path: os.PathLike) -> None:
    """pytest-embedded-style indirect parametrization boots each board once, and every answer
    is recorded into the JUnit XML (board, cycles with their unit, latency)."""
    pytester.makepyfile("""
        import pytest

        BOARDS = pytest.mark.parametrize("hil_board_session", ["native", "netduinoplus2"],
                                         indirect=True)

        @BOARDS
        def test_alarm(hil_board_session, hil_device):
            ans = hil_device.classify("wake me up at seven am")
            hil_device.check_agrees(ans)
            assert hil_device.hello.board == hil_board_session.board.name
            assert abs(sum(ans.probs) - 1) < 1e-9 and ans.probs[ans.label] == max(ans.probs)
            assert ans.latency_ms > 0
    """)
    junit = tmp_path / "junit.xml"  # type: ignore[operator]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--junitxml={junit}")
    result.assert_outcomes(passed=2)
    xml = junit.read_text()
    assert '<property name="board" value="native"' in xml
    assert '<property name="board" value="netduinoplus2"' in xml
    assert '<property name="unit" value="instructions (qemu icount)"' in xml
    assert '<property name="unit" value="ns (host)"' in xml


@NEED_HOST_CC
def test_expect_and_write_on_the_raw_stream(pytester: pytest.Pytester) -> None:
    """pytest-embedded's DUT verbs on a real native board: the boot banner is there to expect,
    raw bytes go out as they are, and the device's answers to them come back in order."""
    pytester.makepyfile("""
        import pytest
        from hil.session import SessionError

        def test_raw(hil_device):
            m = hil_device.expect(r"embbert-hil fw (\\S+) board=native model=([0-9A-F]{8})")
            assert m.group(2) == hil_device.hello.model_hex
            hil_device.write(b"$$ no frame at all\\n")
            hil_device.expect_exact("ERROR", timeout=10)
            with pytest.raises(SessionError, match="expected a line matching 'never'"):
                hil_device.expect("never", timeout=0.5)
            hil_device.check_agrees(hil_device.classify("set an alarm for six"))
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
