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

from hil.boards import BOARDS, Board, KiB, MiB, get_board


def _mem(n: int) -> str:
    if n == 0:
        return "-"
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n // KiB} KiB"


def cmd_boards(args: argparse.Namespace) -> int:
    """The boards table and which of each board's targets can run on this machine."""
    from hil.doctor import runnable_targets

    here = runnable_targets()
    rows = [("board", "cpu", "clock", "flash", "ram", "targets (here)")]
    for b in BOARDS.values():
        targets = ", ".join(
            f"{t}{'*' if i == 0 else ''} ({'yes' if here[t] == 'yes' else 'no'})"
            if t != "serial" else f"{t} (needs board)" for i, t in enumerate(b.targets))
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
    from hil.scenario import ScenarioError, resolve_model

    try:
        board = get_board(args.board)
        model = resolve_model(args.model)
        elf = fw.build(board, model, log_path=Path(args.out) / f"build-{board.name}.log"
                       if args.out else None)
    except (KeyError, ScenarioError) as exc:
        print(f"hil build: {exc}", file=sys.stderr)
        return 2
    except fw.BuildError as exc:
        print(f"hil build: {exc}", file=sys.stderr)
        return exc.exit_code
    sizes = fw.elf_sizes(elf)
    print(f"{elf}")
    print(f"  flash {sizes.flash} B (text+rodata {sizes.text}, data {sizes.data})"
          f"{f' of {board.flash_bytes} B' if board.flash_bytes else ''}")
    print(f"  static RAM {sizes.static_ram} B (data {sizes.data}, bss incl. arena {sizes.bss}, "
          f"stack {sizes.stack}){f' of {board.ram_bytes} B' if board.ram_bytes else ''}")
    return 0


def _no_renode_message(board: Board) -> str:
    from hil.targets.renode import RENODE_INSTALL

    qemu_boards = [b for b in BOARDS.values() if "qemu" in b.targets]
    alt = "; ".join(f"{b.name} ({b.cpu}, {b.clock_hz / 1e6:g} MHz)" for b in qemu_boards)
    return (f"hil run: board {board.name} runs on Renode, which is not installed here "
            f"(looked at $RENODE, PATH and ~/.config/renode).\n  {RENODE_INSTALL}\n"
            f"  Boards that run here on QEMU instead: {alt}; e.g. "
            f"`hil run --board netduinoplus2` (same Cortex-M4F at 168 MHz as stm32f4).")


def cmd_run(args: argparse.Namespace) -> int:
    """Boot, stream, check, summarise (see hil.runner)."""
    from hil.runner import RunConfig, RunError, load_run_meta, parse_shard, print_progress, run
    from hil.scenario import DEFAULT_SCENARIO, ScenarioError, load_scenario, resolve_model
    from hil.summary import render_text
    from hil.targets.qemu import QEMU_INSTALL, find_qemu
    from hil.targets.renode import find_renode

    meta: dict = {}
    if args.resume:
        try:
            meta = load_run_meta(Path(args.resume))
        except RunError as exc:
            print(f"hil run: {exc}", file=sys.stderr)
            return 2
    try:
        shard = parse_shard(args.shard) if args.shard else (
            tuple(meta["shard"]) if meta.get("shard") else None)
    except ValueError as exc:
        print(f"hil run: {exc}", file=sys.stderr)
        return 2
    board_name = args.board or meta.get("board")
    if not board_name:
        print("hil run: --board is required (see `hil boards`)", file=sys.stderr)
        return 2
    try:
        board = get_board(board_name)
        target = args.target or meta.get("target") or board.default_target
        if target not in board.targets:
            print(f"hil run: board {board.name} does not run on {target}; it runs on "
                  f"{', '.join(board.targets)}", file=sys.stderr)
            return 2
        scen_ref = args.scenario or (meta.get("scenario") or {}).get("path") or DEFAULT_SCENARIO
        scenario = load_scenario(scen_ref)
        model_path = resolve_model(args.model or meta.get("model") or scenario.model,
                                   scenario.path.parent if scenario.path else None)
    except (KeyError, ScenarioError, ValueError) as exc:
        print(f"hil run: {exc}", file=sys.stderr)
        return 2
    if target == "renode" and find_renode() is None:
        print(_no_renode_message(board), file=sys.stderr)
        return 2
    if target == "qemu" and find_qemu() is None:
        print(f"hil run: qemu-system-arm not found; install: {QEMU_INSTALL}", file=sys.stderr)
        return 2
    if args.faults:
        from hil.targets.faulty import parse_faults

        try:
            parse_faults(args.faults)
        except ValueError as exc:
            print(f"hil run: {exc}", file=sys.stderr)
            return 2
    out_dir = Path(args.resume or args.out or
                   Path("out") / f"{board.name}-{target}-{scenario.name}")
    limit = args.limit if args.limit is not None else meta.get("limit")
    cfg = RunConfig(
        board=board, target=target, scenario=scenario, model_path=model_path, out_dir=out_dir,
        limit=limit, jobs=args.jobs, shard=shard,  # type: ignore[arg-type]
        resume=bool(args.resume), elf=Path(args.elf) if args.elf else None, port=args.port,
        serial_number=args.serial_number, timeout_s=args.timeout,
        retries=args.retries, hello_timeout_s=args.hello_timeout, faults=args.faults,
        max_restarts=args.max_restarts, json_path=Path(args.json) if args.json else None,
    )
    total = len(scenario.load_sentences()[:limit] if limit else scenario.load_sentences())
    cfg.progress = None if args.quiet else print_progress(total)
    live = contextlib.nullcontext()
    if args.live:  # hil.console: rich dashboard on a terminal, plain lines elsewhere
        from hil.console import LiveDashboard

        live = LiveDashboard(total, f"hil run {board.name} on {target}: {scenario.name}",
                             clock_hz=board.clock_hz, emulated=target in ("qemu", "renode"),
                             labels=scenario.labels)
        cfg.progress = live.on_result
    print(f"hil run: {board.name} on {target}, scenario {scenario.name}, model {model_path}, "
          f"out {out_dir}", file=sys.stderr)
    try:
        with live:
            code, summary = run(cfg)
    except RunError as exc:
        print(f"hil run: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # the runner already killed the targets and kept the results
        print(f"hil run: interrupted; every finished result is in {out_dir / 'results.jsonl'}; "
              f"continue with `hil run --resume {out_dir}`", file=sys.stderr)
        return 130
    from hil.report import write_run_reports  # report.html, junit.xml, summary.md beside results

    try:
        written = write_run_reports(out_dir)
        print(f"hil run: reports {', '.join(map(str, written))}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - a report problem must not hide the run's verdict
        print(f"hil run: reports not written: {type(exc).__name__}: {exc}", file=sys.stderr)
    if not args.out and not args.resume:  # default layout: out/summary.json = the latest run
        shutil.copyfile(out_dir / "summary.json", Path("out") / "summary.json")
    print(render_text(summary))
    if code == 1:
        print(f"hil run: expectations failed: {'; '.join(summary['failed'])}", file=sys.stderr)
    elif code:
        print(f"hil run: run failed (results so far kept in {summary['results']}):\n"
              f"{summary['error']}", file=sys.stderr)
    return code


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register the host subcommands on the `hil` parser (called from hil/cli.py)."""
    p = sub.add_parser("boards", help="list boards, their memory and where they run")
    p.set_defaults(func=cmd_boards)

    p = sub.add_parser("doctor", help="check toolchain, QEMU, Renode, serial ports")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("build", help="build the firmware for a board and model")
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--model", default="nlu_scenario",
                   help="shipped model name (hil/models/<name>) or path to a blob")
    p.add_argument("--out", help="folder for the build log")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="boot a target, stream a scenario, check every answer")
    p.add_argument("--board", choices=sorted(BOARDS))
    p.add_argument("--target", choices=["native", "qemu", "renode", "serial"],
                   help="default: the board's first target (see `hil boards`)")
    p.add_argument("--scenario", help="scenarios/<name>.yaml or a path (default nlu_scenario)")
    p.add_argument("--model", help="override the scenario's model (name or blob path)")
    p.add_argument("--limit", type=int, help="only the first N sentences")
    p.add_argument("--jobs", type=int, default=1, help="N target instances in parallel")
    p.add_argument("--shard", help="K/N: run the K-th of N blocks of the sentences")
    p.add_argument("--out", help="run directory (default out/<board>-<target>-<scenario>)")
    p.add_argument("--json", help="also write the summary JSON here")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR")
    p.add_argument("--elf", help="use this firmware instead of building it")
    p.add_argument("--port", help="serial port (serial target); default: auto-detect")
    p.add_argument("--serial-number", help="pick the board by its probe's USB serial number")
    p.add_argument("--timeout", type=float, help="seconds per sentence (default: scenario's)")
    p.add_argument("--hello-timeout", type=float,
                   help="seconds to wait for the boot HELLO (default: native 10, qemu 30, "
                        "renode 120, serial 10)")
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
    p.add_argument("--live", action="store_true",
                   help="live dashboard while streaming (plain lines without a terminal)")
    p.set_defaults(func=cmd_run)
