"""`hil` command line: argument parsing only; each subcommand lives in the module that owns it.

Every owner module exposes `add_parsers(subparsers)`; each parser sets `func=handler`, and a
handler returns the exit code.
"""

from __future__ import annotations

import argparse
import sys

from hil import __version__, data, flash, host_cli, report_cli
from hil.model import cli as model_cli
from hil.quant import blob as quant_blob
from hil.quant import cli as quant_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hil", description="EmbBERT-Q on microcontrollers: train, quantize, build, run."
    )
    parser.add_argument("--version", action="version", version=f"hil {__version__}")
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
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("hil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
