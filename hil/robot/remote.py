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

The protocol is Robot Framework's own remote server, `robotremoteserver` (keyword names,
arguments, documentation, running a keyword with its stdout as the keyword's log, errors,
SIGINT/SIGTERM). What hil adds, each because that server or Robot's `Remote` client does not
do it:
- arguments are converted by the keyword's type hints with Robot's own converter, as when the
  suite imports hil.robot itself: the `Remote` client sends the suite's strings as they are and
  asks the server for types, which robotremoteserver 1.1.1 does not serve;
- integers beyond XML-RPC's 32 bits (a DWT count, a count in ns) are returned as strings:
  robotremoteserver passes them on and the reply would fail to encode, failing a keyword
  that passed;
- hil.robot's log lines are printed with Robot's level prefixes, so they reach the keyword's
  output: outside a Robot run Robot's `logger` drops them;
- the port file is written atomically (the suite reads it as soon as it exists), the suite's
  ${OUTPUT DIR} is given on the command line, the board a suite left started is stopped on the
  way out, and the server stops by itself when the process that started it is gone, so a
  killed renode-test leaves no server behind.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import sys
import threading
import time
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robot.running.arguments import PythonArgumentParser
from robotremoteserver import RobotRemoteServer

import hil.robot as hil_robot
from hil.robot import HilLibrary

XMLRPC_INT = 2**31 - 1


def remote_keywords(library: Any) -> types.SimpleNamespace:
    """`library`'s keywords as robotremoteserver serves them: same names, signatures, docs and
    tags, with Robot's argument conversion before and XML-RPC's int limit after."""

    def served(method: Any) -> Any:
        spec = PythonArgumentParser().parse(method)

        @functools.wraps(method)
        def keyword(*args: Any, **kwargs: Any) -> Any:
            positional, named = spec.convert(list(args), list(kwargs.items()))
            return _xmlrpc_int(method(*positional, **dict(named)))

        keyword.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
        return keyword

    kws = {name: served(m) for name, m in inspect.getmembers(library, inspect.ismethod)
           if hasattr(m, "robot_name")}
    return types.SimpleNamespace(__doc__=inspect.getdoc(type(library)), **kws)


def _xmlrpc_int(value: Any) -> Any:
    if isinstance(value, int) and not -XMLRPC_INT - 1 <= value <= XMLRPC_INT:
        return str(value)
    if isinstance(value, Mapping):
        return {k: _xmlrpc_int(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_xmlrpc_int(v) for v in value]
    return value


def _log_to_output(message: str, level: str = "INFO", html: bool = False) -> None:
    print(f"*{'HTML' if html else level.upper()}* {message}")


def serve(host: str = "127.0.0.1", port: int = 8270, port_file: Path | None = None,
          watch_parent: bool = True, output_dir: Path | None = None) -> None:
    """Serve until SIGTERM/SIGINT or, with `watch_parent`, until the parent process is gone; the
    board a suite left started is stopped on the way out. `output_dir` stands for the suite's
    ${OUTPUT DIR}: the keywords' run folders (transcripts, scenario reports) go under it."""
    if output_dir is not None:
        hil_robot.OUTPUT_DIR = str(output_dir.resolve())
    hil_robot.LOG_SINK = _log_to_output
    library = HilLibrary()
    server = RobotRemoteServer(remote_keywords(library), host, port, serve=False)
    bound = server.activate()
    if port_file is not None:  # written once listening: the suite waits for the file
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(f"{bound}\n")
        tmp.replace(port_file)
    if watch_parent:
        parent = os.getppid()

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            server.stop()

        threading.Thread(target=watch, daemon=True).start()
    try:
        server.serve()  # keywords run in this thread, one at a time, as Robot would call them
    finally:
        library.stop_board()


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
