"""The host subcommands: `hil boards`, `hil doctor`, `hil build`, `hil run`.

Argument parsing and user-facing messages only; the work is in hil.runner, hil.firmware and
hil.targets. Exit codes: 0 pass, 1 expectation failed or model does not fit, 2 something is
missing here (toolchain, emulator, Renode) or the request is invalid, 3 the run failed (target
died, no HELLO, wrong model), with every finished result kept on disk.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.boards import BOARDS, Board, KiB, MiB, estimated_cpi, get_board
from hil.errors import (
    EXIT_ENVIRONMENT,
    EXIT_EXPECTATIONS,
    EnvironmentMissing,
    HilError,
    UsageError,
    exit_code_of,
)
from hil.paths import runs_dir
from hil.targets import TARGETS

if TYPE_CHECKING:
    from hil.runner import RunConfig


def _mem(n: int) -> str:
    if n == 0:
        return "-"
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n // KiB} KiB"


def cmd_boards(args: argparse.Namespace) -> int:
    """The boards table and which of each board's targets can run on this machine."""
    from hil.doctor import runnable_targets

    here = runnable_targets()
    if args.json:
        import json

        print(json.dumps([{"board": b.name, "description": b.description, "cpu": b.cpu,
                           "clock_hz": b.clock_hz, "flash_bytes": b.flash_bytes or None,
                           "ram_bytes": b.ram_bytes or None, "default_target": b.default_target,
                           "targets": {t: here[t] for t in b.targets}}
                          for b in BOARDS.values()], indent=2))
        return 0
    rows = [("board", "cpu", "clock", "flash", "ram", "targets (here)")]
    for b in BOARDS.values():
        targets = ", ".join(
            f"{t}{'*' if i == 0 else ''} ({'yes' if here[t] == 'yes' else 'no'})"
            if TARGETS[t].builds_firmware else f"{t} (needs board)"
            for i, t in enumerate(b.targets))
        rows.append((b.name, b.cpu, f"{b.clock_hz / 1e6:g} MHz", _mem(b.flash_bytes),
                     _mem(b.ram_bytes), targets))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print("* = default target. `hil doctor` says how to install what is missing.")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from hil.doctor import doctor

    return doctor(args)


def cmd_build(args: argparse.Namespace) -> int:
    """Build the firmware for one board and model; print its sizes against the chip's limits."""
    from hil import firmware as fw
    from hil.quant.blob import refuse_like_device
    from hil.session import Oracle, resolve

    try:
        board = get_board(args.board)
        model = resolve(args.model)
        refuse_like_device(model)  # size, CRC, version: the device's words, before the build
        Oracle.load(model)  # and the tensors the engine needs
        elf = fw.build(board, model, log_path=Path(args.out) / f"build-{board.name}.log"
                       if args.out else None)
    except (KeyError, HilError) as exc:
        print(f"hil build: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2 if isinstance(exc, KeyError) else exit_code_of(exc)
    sizes = fw.elf_sizes(elf)
    print(f"{elf}")
    print(f"  flash {sizes.flash} B (text+rodata {sizes.text}, data {sizes.data})"
          f"{f' of {board.flash_bytes} B' if board.flash_bytes else ''}")
    print(f"  RAM reserved {sizes.static_ram} B (data {sizes.data} + bss incl. arena {sizes.bss} "
          f"+ the whole stack region {sizes.stack})"
          f"{f' of {board.ram_bytes} B' if board.ram_bytes else ''}; `hil run` reports the RAM "
          f"peak instead: data + bss + the stack actually used")
    return 0


def _not_here_message(board: Board, target: str, why: str) -> str:
    """The backend of `target` is missing: how to install it, and which boards run here."""
    here = [b for b in BOARDS.values() if b.name != board.name and b.is_chip
            and TARGETS[b.default_target].missing() is None]
    alt = "; ".join(f"{b.name} ({b.cpu}, {b.clock_hz / 1e6:g} MHz, on {b.default_target})"
                    for b in here)
    return (f"hil run: board {board.name} runs on {target}, which is not installed here: {why}"
            + (f"\n  Boards that run here instead: {alt}." if alt else ""))


def _run_config(args: argparse.Namespace) -> RunConfig:
    """The RunConfig for `hil run` (from the arguments, and run.json on --resume); raises
    UsageError (exit 2) for anything that is asked wrongly or missing here."""
    from hil.runner import RunConfig, check_config, load_run_meta, parse_shard
    from hil.scenario import DEFAULT_SCENARIO, ScenarioError, load_scenario, resolve_model
    from hil.targets import target_class

    meta = load_run_meta(Path(args.resume)) if args.resume else {}
    try:
        shard = parse_shard(args.shard) if args.shard else (
            tuple(meta["shard"]) if meta.get("shard") else None)
        board_name = args.board or meta.get("board")
        if not board_name:
            raise UsageError("--board is required (see `hil boards`)")
        board = get_board(board_name)
        target = args.target or meta.get("target") or board.default_target
        cls = target_class(target, board)
        scen_ref = args.scenario or (meta.get("scenario") or {}).get("path") or DEFAULT_SCENARIO
        scenario = load_scenario(scen_ref)
        model_path = resolve_model(args.model or meta.get("model") or scenario.model,
                                   scenario.path.parent if scenario.path else None)
        if args.faults:
            from hil.targets.faulty import parse_faults

            parse_faults(args.faults)
    except (KeyError, ScenarioError, ValueError) as exc:
        raise UsageError(str(exc.args[0] if isinstance(exc, KeyError) else exc)) from None
    why = cls.missing()
    if why:
        raise EnvironmentMissing(_not_here_message(board, target, why))
    out_dir = Path(args.resume or args.out or
                   runs_dir() / f"{board.name}-{target}-{scenario.name}")
    cfg = RunConfig(
        board=board, target=target, scenario=scenario, model_path=model_path, out_dir=out_dir,
        limit=args.limit if args.limit is not None else meta.get("limit"), jobs=args.jobs,
        shard=shard, resume=bool(args.resume),  # type: ignore[arg-type]
        elf=Path(args.elf) if args.elf else None, port=args.port,
        serial_number=args.serial_number, place=args.place or meta.get("place"),
        flash=args.flash, timeout_s=args.timeout,
        retries=args.retries, hello_timeout_s=args.hello_timeout, faults=args.faults,
        max_restarts=args.max_restarts,
        json_path=Path(args.json) if args.json and args.json != "-" else None,
        profile=args.profile, execution_metrics=args.execution_metrics,
    )
    check_config(cfg)
    return cfg


def cmd_run(args: argparse.Namespace) -> int:
    """Boot, stream, check, summarise (see hil.runner); the exit code comes from the run's
    verdict or from the type of the error that stopped it (hil.errors)."""
    from hil.runner import print_progress, run
    from hil.summary import render_text

    try:
        cfg = _run_config(args)
    except HilError as exc:
        print(exc if str(exc).startswith("hil run:") else f"hil run: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    from hil.runner import select

    chosen = select(cfg.scenario.load_sentences(), cfg.limit, cfg.shard)
    total = len(chosen)
    for s in (s for s in chosen if s.problem):  # told before anything boots; the run goes on
        print(f"hil run: sentence #{s.index} cannot be sent: {s.problem}; it is recorded as "
              f"error BAD_TEXT and the run goes on", file=sys.stderr)
    cfg.progress = None if args.quiet else print_progress(total)
    live: Any = contextlib.nullcontext()
    if args.live:  # rich dashboard on a terminal, plain lines elsewhere
        from hil.live import LiveDashboard

        live = LiveDashboard(total, f"hil run {cfg.board.name} on {cfg.target}: "
                             f"{cfg.scenario.name}", clock_hz=cfg.board.clock_hz,
                             emulated=TARGETS[cfg.target].emulated, labels=cfg.scenario.labels,
                             ram_bytes=cfg.board.ram_bytes or None,
                             cpi=estimated_cpi(cfg.board.name, cfg.model_path.parent.name))
        cfg.progress = live.on_result
    print(f"hil run: {cfg.board.name} on {cfg.target}, scenario {cfg.scenario.name}, model "
          f"{cfg.model_path}, out {cfg.out_dir}", file=sys.stderr)
    try:
        with live:
            code, summary = run(cfg)
    except HilError as exc:
        print(f"hil run: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    except OSError as exc:  # the file system said no: one line naming the file and the fix
        print(f"hil run: cannot write {exc.filename or cfg.out_dir}: {exc.strerror}; free space "
              f"or permissions there, or pick another --out", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:  # the runner already killed the targets and kept the results
        print(f"hil run: interrupted; every finished result is in {cfg.out_dir / 'results.jsonl'}"
              f"; continue with `hil run --resume {cfg.out_dir}`", file=sys.stderr)
        return 130
    _finish(args, cfg.out_dir, code, summary, render_text(summary))
    return code


def _finish(args: argparse.Namespace, out_dir: Path, code: int, summary: dict[str, Any],
            text: str) -> None:
    """Reports beside the results, the latest summary at out/, the verdict on the terminal."""
    from hil.report_cli import write_run_reports

    try:
        written = write_run_reports(out_dir)
        print(f"hil run: reports {', '.join(map(str, written))}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - a report problem must not hide the run's verdict
        print(f"hil run: reports not written: {type(exc).__name__}: {exc}", file=sys.stderr)
    if not args.out and not args.resume:  # default layout: out/summary.json = the latest run
        runs_dir().mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out_dir / "summary.json", runs_dir() / "summary.json")
    if args.json == "-":  # the summary is the output; the text goes where the progress went
        import json

        print(json.dumps(summary, indent=2, ensure_ascii=False))
        print(text, file=sys.stderr)
    else:
        print(text)
    if code == EXIT_EXPECTATIONS:
        print(f"hil run: expectations failed: {'; '.join(summary['failed'])}", file=sys.stderr)
    elif code:
        print(f"hil run: run failed (results so far kept in {summary['results']}):\n"
              f"{summary['error']}", file=sys.stderr)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register the host subcommands on the `hil` parser (called from hil/cli.py)."""
    p = sub.add_parser("boards", help="list boards, their memory and where they run")
    p.add_argument("--json", action="store_true", help="the table as JSON on stdout")
    p.set_defaults(func=cmd_boards)

    p = sub.add_parser("doctor", help="check toolchain, QEMU, Renode, serial ports",
                       description="What this machine can run, what is missing and the command "
                                   "that installs it. Exit 0: everything required is here; 2: "
                                   "something required is missing.")
    p.add_argument("--json", action="store_true", help="the checks as JSON on stdout")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("build", help="build the firmware for a board and model",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  hil build --board nrf52840                     the shipped nlu_scenario model; prints the ELF
  hil build --board stm32f4 --model imdb         another shipped model
  hil build --board native --model my/model.bin  your own blob

exit codes: 0 built and fits; 1 does not fit the chip or does not compile; 2 a tool, the model
or a blob the device would refuse""")
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--model", default="nlu_scenario",
                   help="shipped model name (hil/models/<name>) or path to a blob")
    p.add_argument("--out", help="folder for the build log")
    p.set_defaults(func=cmd_build)

    _add_run_parser(sub)


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    """`hil run`'s options (add_parsers' longest part)."""
    p = sub.add_parser(
        "run", help="boot a target, stream a scenario, check every answer",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build the firmware for the board and model, boot it on the target, stream "
                    "the scenario's sentences,\ncheck every answer bit for bit against the host's "
                    "integer reference and against its label, and\nwrite results.jsonl (as "
                    "answers arrive), summary.json, report.html, junit.xml and summary.md.",
        epilog="""examples:
  hil run --board nrf52840                         the default scenario on Renode
  hil run --board netduinoplus2 --limit 50 --live  50 sentences on QEMU, live view
  hil run --board stm32f4 --jobs 2 --profile       two Renode instances, guest profile
  hil run --resume hil-runs/nrf52840-renode-nlu_scenario   ask what is unanswered again
  hil run --board native --json - | jq .summary    the summary as JSON on stdout

exit codes:
  0  every selected sentence answered and every expectation met
  1  an expectation failed, a sentence was refused for good, or the model does not fit
  2  something is missing or wrong here (tool, argument, scenario, blob, run folder)
  3  the run failed or is incomplete; finished results are kept, --resume continues""")
    p.add_argument("--board", choices=sorted(BOARDS))
    p.add_argument("--target", choices=sorted(TARGETS),
                   help="default: the board's first target (see `hil boards`)")
    p.add_argument("--scenario", help="scenarios/<name>.yaml or a path (default nlu_scenario)")
    p.add_argument("--model", help="override the scenario's model (name or blob path)")
    p.add_argument("--limit", type=int, help="only the first N sentences")
    p.add_argument("--jobs", type=int, default=1, help="N target instances in parallel")
    p.add_argument("--shard", help="K/N: run the K-th of N blocks of the sentences")
    p.add_argument("--out", help="run directory (default hil-runs/<board>-<target>-<scenario>; "
                                 "$HIL_RUNS_DIR moves hil-runs)")
    p.add_argument("--json", help="also write the summary JSON here (`-`: to stdout, the text "
                                  "summary then goes to stderr)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR")
    p.add_argument("--elf", help="use this firmware instead of building it")
    p.add_argument("--port", help="serial port (serial target; default: auto-detect); renode "
                   "target: the UART of a Renode already running, HOST:PORT of its server socket "
                   "terminal or a pty path (attach instead of starting one; with --elf)")
    p.add_argument("--serial-number", help="pick the board by its probe's USB serial number")
    p.add_argument("--place", help="labgrid place(s): names or shell patterns, comma-separated; "
                                   "default $LG_PLACE (docs/farm.md)")
    p.add_argument("--flash", action="store_true",
                   help="a real board (--target serial): build and flash the firmware first "
                        "through its on-board debugger (`hil flash`)")
    p.add_argument("--timeout", type=float, help="seconds per sentence (default: scenario's)")
    p.add_argument("--hello-timeout", type=float,
                   help="seconds to wait for the boot HELLO (default: the target's, "
                        + ", ".join(f"{k} {c.hello_timeout_s:g}" for k, c in TARGETS.items())
                        + ")")
    p.add_argument("--retries", type=int, help="re-sends per sentence (default: scenario's)")
    p.add_argument("--max-restarts", type=int, default=3,
                   help="target deaths (killed or crashed emulator) to survive by restarting "
                        "it and asking the sentence again (default 3)")
    p.add_argument("--faults", metavar="SPEC",
                   help="inject link faults, e.g. drop=0.001,corrupt=0.001,dup=0.001,"
                        "delay=0.01,split=0.2,reset=0.005,kill=0.001,seed=1 (per byte: drop "
                        "corrupt dup; per read/write: delay split; per request: reset kill); "
                        "see docs/reliability.md")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--profile", action="store_true",
                   help="emulators: run the guest profiler; report.html gets a flame graph "
                        "(Renode: ~16%% slower)")
    p.add_argument("--execution-metrics", action="store_true",
                   help="emulators: also log memory and peripheral accesses and exceptions "
                        "(Renode: ~5.6x slower)")
    p.add_argument("--live", action="store_true",
                   help="live dashboard while streaming (plain lines without a terminal)")
    p.set_defaults(func=cmd_run)
