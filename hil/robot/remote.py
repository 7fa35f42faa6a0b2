"""hil.robot's keywords as a Robot Framework remote library, for a Robot that cannot import hil.

    python3 -m hil.robot.remote [--port 8270] [--port-file FILE] [--output-dir DIR]
    # in the suite:  Import Library    Remote    http://127.0.0.1:8270    WITH NAME    hil

Why: `renode-test` runs Robot from Renode's own venv (robotframework 6.1 and Renode's helpers,
nothing else), which has none of hil's dependencies (numpy, tokenizers, pyserial, ...), may be
read-only (/opt) and should not be changed for one project. Robot's standard answer for a library
that lives in another Python is its remote library interface: the suite imports Robot's own
`Remote` library (standard library, in every Robot) and hil's keywords run here, in the Python
hil is installed in. renode/tests/stm32f4-hil.robot starts this server itself with the Process
library, so `renode-test renode/tests/stm32f4-hil.robot` works on a fresh machine.

This is the remote protocol of Robot's `Remote` library (robot/libraries/Remote.py:
`get_library_information`, `run_keyword` returning status/output/return/error/traceback) over
the standard library's XML-RPC server, so it needs no package beyond hil's own. What it does
that XML-RPC does not: arguments come as strings and are converted here by the keyword's type
hints; return values become what XML-RPC carries (None -> "", big ints -> strings, dicts keep
their keys, so Robot's `${r.label}` works on the DotDict its Remote client makes); hil.robot's log
lines go into the keyword's output (`*INFO*` / `*HTML*`), which Robot logs as the keyword's own.
One keyword at a time, in this process's main thread, as Robot would call them.

The server stops on SIGTERM or SIGINT (Robot's `Terminate Process`), and by itself when the
process that started it is gone, so a killed renode-test leaves no server behind.
"""

from __future__ import annotations

import argparse
import inspect
import io
import os
import signal
import sys
import traceback
import typing
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import hil.robot as hil_robot
from hil.robot import HilLibrary

XMLRPC_INT = 2**31 - 1
#: Exceptions Robot shows by message alone (robot/running/statusreporter.py does the same).
GENERIC_ERRORS = {"AssertionError", "Exception", "Error", "RuntimeError", "SessionError"}


class _QuietHandler(SimpleXMLRPCRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr: one line per keyword call is noise in the suite's log."""


class RemoteLibrary:
    """The XML-RPC methods Robot's `Remote` client calls, over one HilLibrary instance."""

    def __init__(self, library: Any | None = None) -> None:
        self.library = library if library is not None else HilLibrary()
        self.keywords = {name: getattr(self.library, name) for name in dir(self.library)
                         if callable(getattr(self.library, name, None))
                         and hasattr(getattr(self.library, name), "robot_name")}
        self.stopped = False

    def _find(self, name: str) -> Any:
        key = name.lower().replace(" ", "").replace("_", "")
        for method_name, method in self.keywords.items():
            if method_name.replace("_", "") == key:
                return method
        raise AttributeError(f"no keyword {name!r} in hil.robot")

    # -- what Robot asks before it runs anything --

    def get_library_information(self) -> dict[str, Any]:
        info = {_robot_name(n): {"args": _arg_spec(m), "doc": inspect.getdoc(m) or "",
                                 "tags": list(getattr(m, "robot_tags", ()) or ())}
                for n, m in self.keywords.items()}
        info["__intro__"] = {"doc": inspect.getdoc(type(self.library)) or ""}
        info["__init__"] = {"doc": ""}
        return info

    def get_keyword_names(self) -> list[str]:
        return [_robot_name(n) for n in self.keywords]

    def get_keyword_arguments(self, name: str) -> list[str]:
        return _arg_spec(self._find(name))

    def get_keyword_documentation(self, name: str) -> str:
        if name == "__intro__":
            return inspect.getdoc(type(self.library)) or ""
        return "" if name.startswith("__") else inspect.getdoc(self._find(name)) or ""

    def get_keyword_tags(self, name: str) -> list[str]:
        return list(getattr(self._find(name), "robot_tags", ()) or ())

    def get_keyword_types(self, name: str) -> list[str]:
        return []  # converted here, by the type hints (see the module docstring)

    # -- running one --

    def run_keyword(self, name: str, args: list[Any],
                    kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Robot's remote result: PASS with the return value, or FAIL with the error; either
        way with what the keyword logged."""
        out = io.StringIO()

        def sink(message: str, level: str = "INFO", html: bool = False) -> None:
            out.write(f"*{'HTML' if html else level.upper()}* {message}\n")

        hil_robot.LOG_SINK = sink
        try:
            with redirect_stdout(out):
                method = self._find(name)
                positional, named = _convert(method, list(args), dict(kwargs or {}))
                value = method(*positional, **named)
            return {"status": "PASS", "return": _xmlrpc_value(value), "output": out.getvalue()}
        except Exception as exc:
            return {"status": "FAIL", "error": _error_message(exc), "output": out.getvalue(),
                    "traceback": traceback.format_exc(),
                    "continuable": bool(getattr(exc, "ROBOT_CONTINUE_ON_FAILURE", False)),
                    "fatal": bool(getattr(exc, "ROBOT_EXIT_ON_FAILURE", False))}
        finally:
            hil_robot.LOG_SINK = None


def _robot_name(method_name: str) -> str:
    return " ".join(part.capitalize() for part in method_name.split("_"))


def _arg_spec(method: Any) -> list[str]:
    """Robot's remote argument spec: `name`, `name=default`, `*args`, `**kwargs`."""
    spec = []
    for p in inspect.signature(method).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            spec.append(f"*{p.name}")
        elif p.kind is p.VAR_KEYWORD:
            spec.append(f"**{p.name}")
        elif p.default is p.empty:
            spec.append(p.name)
        else:
            spec.append(f"{p.name}={'' if p.default is None else p.default}")
    return spec


def _convert(method: Any, args: list[Any], kwargs: dict[str, Any]
             ) -> tuple[list[Any], dict[str, Any]]:
    """Strings to what the keyword's type hints say (int, float, bool; "" or "None" to None
    where None is allowed), as Robot converts arguments for a library it imports itself."""
    hints = typing.get_type_hints(method)
    names = [p for p in inspect.signature(method).parameters]
    positional = [_to(hints.get(names[i]) if i < len(names) else None, v)
                  for i, v in enumerate(args)]
    return positional, {k: _to(hints.get(k), v) for k, v in kwargs.items()}


def _to(hint: Any, value: Any) -> Any:
    if hint is None or not isinstance(value, str):
        return value
    options = typing.get_args(hint) or (hint,)
    if value in ("", "None") and type(None) in options:
        return None
    for kind in (bool, int, float):
        if kind in options:
            if kind is bool:
                return value.strip().lower() in ("true", "yes", "on", "1")
            try:
                return kind(value)
            except ValueError:
                continue
    return value


def _xmlrpc_value(value: Any) -> Any:
    """`value` as XML-RPC can carry it (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        return value if -XMLRPC_INT - 1 <= value <= XMLRPC_INT else str(value)
    if isinstance(value, bytes):
        from xmlrpc.client import Binary

        return Binary(value)
    if isinstance(value, dict):
        return {str(k): _xmlrpc_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_xmlrpc_value(v) for v in value]
    return str(value)


def _error_message(exc: BaseException) -> str:
    name = type(exc).__name__
    message = str(exc)
    if getattr(exc, "ROBOT_SUPPRESS_NAME", False) or name in GENERIC_ERRORS:
        return message or name
    return f"{name}: {message}" if message else name


def serve(host: str = "127.0.0.1", port: int = 8270, port_file: Path | None = None,
          watch_parent: bool = True, output_dir: Path | None = None) -> None:
    """Serve until SIGTERM/SIGINT or, with `watch_parent`, until the parent process is gone; the
    board a suite left started is stopped on the way out. `output_dir` stands for the suite's
    ${OUTPUT DIR}: the keywords' run folders (transcripts, scenario reports) go under it."""
    if output_dir is not None:
        hil_robot.OUTPUT_DIR = str(output_dir.resolve())
    remote = RemoteLibrary()
    server = SimpleXMLRPCServer((host, port), requestHandler=_QuietHandler, allow_none=False,
                                logRequests=False)
    server.register_introspection_functions()
    server.register_instance(remote)
    server.timeout = 1.0  # handle_request returns every second to check the parent
    parent = os.getppid()

    def stop(*_: Any) -> None:
        remote.stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound = server.server_address[1]
    if port_file is not None:  # written once listening: the suite waits for the file
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(f"{bound}\n")
        tmp.replace(port_file)
    print(f"hil.robot remote library on http://{host}:{bound} (pid {os.getpid()})", flush=True)
    try:
        while not remote.stopped and not (watch_parent and os.getppid() != parent):
            server.handle_request()
    finally:
        remote.library.stop_board()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    """`python3 -m hil.robot.remote`: see the module docstring."""
    p = argparse.ArgumentParser(prog="python3 -m hil.robot.remote",
                                description="Serve hil.robot's keywords to Robot's Remote "
                                            "library (e.g. inside renode-test).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                   "127.0.0.1; the keywords start processes and open ports: keep it local)")
    p.add_argument("--port", type=int, default=8270,
                   help="port (default 8270, Robot's Remote default; 0: any free port)")
    p.add_argument("--port-file", type=Path, help="write the port here once listening")
    p.add_argument("--output-dir", type=Path,
                   help="the suite's ${OUTPUT DIR}: run folders go under it (default: "
                        "hil-runs/robot)")
    p.add_argument("--no-watch-parent", action="store_true",
                   help="keep serving when the process that started this one exits")
    args = p.parse_args(argv)
    serve(args.host, args.port, args.port_file, watch_parent=not args.no_watch_parent,
          output_dir=args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
