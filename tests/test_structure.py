"""The shape of the code, as docs/design.md states it: floors that import only downward, no
import circle, target kinds named only in hil/targets/, and short functions and modules.

Read from the source with `ast` (nothing is imported or run), so a violation names the file and
line. These are the rules a new target, board or front end must keep, checked on every CI run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HIL = ROOT / "hil"

#: The floors, lowest first: a module may import its own floor or lower ones, never higher.
#: (docs/design.md, "Floors").
FLOORS: list[tuple[str, ...]] = [
    ("hil", "hil.errors", "hil.paths", "hil.boards", "hil.protocol", "hil.data",
     "hil.data_recipes", "hil.data_email", "hil.data_tweets", "hil.progress"),
    ("hil.quant",),
    ("hil.targets", "hil.firmware", "hil.scenario", "hil.oracle"),
    ("hil.session", "hil.results"),
    ("hil.model", "hil.quant.quantize", "hil.quant.cli"),  # torch: training and quantizing
    ("hil.runner", "hil.summary", "hil.provenance", "hil.report", "hil.report_svg",
     "hil.report_html", "hil.live", "hil.doctor", "hil.merge", "hil.flash", "hil.run_folder"),
    ("hil.console", "hil.console_view", "hil.robot", "hil.pytest_plugin", "hil.report_cli",
     "hil.host_cli", "hil.cli"),
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _floor(module: str) -> int:
    best, depth = -1, -1
    for i, names in enumerate(FLOORS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > depth:
                best, depth = i, len(name)
    return best


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every `hil` import, including those inside functions."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.startswith("hil") and (ROOT / (name.replace(".", "/") + ".py")).exists() \
                        or (ROOT / name.replace(".", "/") / "__init__.py").exists():
                    out.append((node.lineno, name))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("hil.")]
    return out


SOURCES = sorted(p for p in HIL.rglob("*.py"))


def test_every_module_has_a_floor() -> None:
    missing = [_module_name(p) for p in SOURCES if _floor(_module_name(p)) < 0]
    assert not missing, f"modules with no floor in FLOORS (docs/design.md): {missing}"


def test_no_import_from_a_lower_floor_back_up() -> None:
    bad = []
    for path in SOURCES:
        me = _module_name(path)
        for line, other in _imports(path):
            if _floor(other) > _floor(me):
                bad.append(f"{path.relative_to(ROOT)}:{line} ({me}, floor {_floor(me)}) imports "
                           f"{other} (floor {_floor(other)})")
    assert not bad, "imports that climb up a floor:\n" + "\n".join(bad)


def test_no_import_circle() -> None:
    graph: dict[str, set[str]] = {}
    names = {_module_name(p) for p in SOURCES}
    for path in SOURCES:
        me = _module_name(path)
        graph[me] = set()
        for _, other in _imports(path):
            while other not in names and "." in other:
                other = other.rsplit(".", 1)[0]
            if other in names and other != me and not me.startswith(other + "."):
                graph[me].add(other)
    seen: dict[str, int] = {}  # 1 = on the path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in seen and (found := visit(nxt, path + [node])):
                return found
        seen[node] = 2
        return None

    for start in sorted(graph):
        if start not in seen and (cycle := visit(start, [])):
            pytest.fail("import circle: " + " -> ".join(cycle))


def test_no_module_outside_targets_names_a_target_kind() -> None:
    """Adding a kind of target means its class and its line in TARGETS, nothing else: so no
    string constant outside hil/targets/ may be a target kind's name. (Board entries in
    hil/boards.py say where a board runs: they name kinds by design.)"""
    from hil.targets import TARGETS

    not_kinds = {("hil/doctor.py", "serial"): "pyserial's import name, not the serial target"}
    bad = []
    for path in SOURCES:
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("hil/targets/") or rel == "hil/boards.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value in TARGETS and (rel, node.value) not in not_kinds:
                bad.append(f"{rel}:{node.lineno} names target kind {node.value!r}")
    assert not bad, "\n".join(bad)


#: Modules allowed past 500 lines, each with the reason at its top (docs/design.md, "Sizes").
LONG_MODULES = {"hil/protocol.py", "hil/quant/quantize.py"}


def test_functions_and_modules_are_short() -> None:
    long_funcs, long_mods = [], []
    for path in SOURCES:
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 500 and rel not in LONG_MODULES:
            long_mods.append(f"{rel}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > 80:
                    long_funcs.append(f"{rel}:{node.lineno} {node.name}: {n} lines")
    assert not long_mods, "modules over 500 lines:\n" + "\n".join(long_mods)
    assert not long_funcs, "functions over 80 lines:\n" + "\n".join(long_funcs)


def test_long_modules_say_why_at_the_top() -> None:
    for rel in LONG_MODULES:
        head = (ROOT / rel).read_text(encoding="utf-8")[:3000]
        assert "over 500 lines" in head, f"{rel} is allowed to be long but does not say why"


def test_citations_point_at_files_that_exist() -> None:
    """Comments cite docs/design.md, never the design.md / style.md that were never written."""
    bad = []
    for path in [*SOURCES, *ROOT.glob("firmware/**/*.[ch]"), *ROOT.glob("firmware/**/*.ld"),
                 *ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py")]:
        if path.name == "test_structure.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace")
                                 .splitlines(), 1):
            if ("style.md" in line or "design contract" in line
                    or ("design.md" in line and "docs/design.md" not in line)):
                bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:90]}")
    assert (ROOT / "docs" / "design.md").is_file()
    assert not bad, "stale citations:\n" + "\n".join(bad)


def test_exit_codes_come_from_types_not_messages() -> None:
    """An exit code or a branch picked by reading an error's text breaks when the text is
    reworded (docs/design.md, "Errors and exit codes"): no `... in str(exc)` and no comparing
    an exception's class name."""
    bad = []
    for path in SOURCES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "in str(exc)" in line or "type(exc).__name__ ==" in line:
                bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_every_error_maps_to_its_exit_code() -> None:
    from hil import firmware as fw
    from hil.errors import (
        EXIT_ENVIRONMENT,
        EXIT_EXPECTATIONS,
        EXIT_RUN_ERROR,
        NoHello,
        UsageError,
        WrongFirmware,
        exit_code_of,
    )
    from hil.targets import MissingTool, TargetError

    assert exit_code_of(fw.DoesNotFit("x")) == EXIT_EXPECTATIONS
    assert exit_code_of(fw.ToolchainMissing("x")) == EXIT_ENVIRONMENT
    assert exit_code_of(MissingTool("x")) == EXIT_ENVIRONMENT
    assert exit_code_of(UsageError("x")) == EXIT_ENVIRONMENT
    for exc in (TargetError("x"), NoHello("x"), WrongFirmware("x"), RuntimeError("x")):
        assert exit_code_of(exc) == EXIT_RUN_ERROR
