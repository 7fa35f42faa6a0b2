"""`hil` command line: argument parsing only; each subcommand lives in the module that owns it.

Every owner module exposes `add_parsers(subparsers)`; each parser sets `func=handler`, and a
handler returns the exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from hil import __version__, data, flash, host_cli, report_cli
from hil.errors import EXIT_ENVIRONMENT, EXIT_RUN_ERROR, HilError, exit_code_of
from hil.model import cli as model_cli
from hil.quant import blob as quant_blob
from hil.quant import cli as quant_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hil", description="EmbBERT-Q on microcontrollers: train, quantize, build, run."
    )
    parser.add_argument("--version", action="version", version=f"hil {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error (default: one line)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # One line per owner module. Those modules import torch lazily, inside their handlers, so
    # that `hil run` and `hil build` work where torch is not installed.
    _ = sub
    model_cli.add_parsers(sub)
    quant_cli.add_parsers(sub)
    quant_blob.add_parsers(sub)
    host_cli.add_parsers(sub)
    report_cli.add_parsers(sub)
    flash.add_parsers(sub)
    data.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; its return value is the exit code. An error that escapes a handler
    still becomes one line and the code of its type (hil.errors): 2 for a file the system
    refused, 3 for anything unforeseen; the traceback only with --debug."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_ENVIRONMENT
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("hil: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hil boards | head`: the reader left; nothing to say about it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, typed code
        if args.debug:
            traceback.print_exc()
        name = f"hil {args.command}"
        if isinstance(exc, HilError):
            print(f"{name}: {exc}", file=sys.stderr)
            return exit_code_of(exc)
        if isinstance(exc, OSError):
            print(f"{name}: {exc.filename or 'a file'}: {exc.strerror or exc}; check that it "
                  f"exists and is readable/writable here", file=sys.stderr)
            return EXIT_ENVIRONMENT
        print(f"{name}: unexpected {type(exc).__name__}: {exc} (run `hil --debug "
              f"{args.command} ...` for the traceback)", file=sys.stderr)
        return EXIT_RUN_ERROR


if __name__ == "__main__":
    sys.exit(main())
