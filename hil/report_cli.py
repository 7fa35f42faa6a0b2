"""`hil report` and `hil console`: argument parsing, and writing the report files (the analysis is
hil.results, the renderings hil.report and hil.report_html; this module sits above all three).

`hil report RESULTS [B] [--html F] [--junit F] [--markdown F]`: RESULTS is a run directory or a
results .jsonl file; with a second run the HTML and Markdown compare the two (B - A deltas) and the
JUnit file describes B. With no output option, the Markdown summary goes to stdout, so
`hil report out/run >> "$GITHUB_STEP_SUMMARY"` works as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hil.boards import BOARDS
from hil.report import analyse, load_run, render_compare_markdown, render_junit, render_markdown
from hil.report_html import render_compare_html, render_html
from hil.targets import TARGETS


def cmd_report(args: argparse.Namespace) -> int:
    """`hil report RUN [RUN_B]`: Markdown to stdout, or the files asked for; with two runs and
    `--fail-on`, exit 1 when B crossed a threshold against A (a CI gate)."""
    from hil.report import check_thresholds
    from hil.results import ReportError

    if args.results[0] == "merge":
        return _merge(args.results[1:], args.out)
    if len(args.results) > 2 or (args.fail_on and len(args.results) != 2):
        print("hil report: give one run, or two to compare (--fail-on needs two)",
              file=sys.stderr)
        return 2
    try:
        runs = [analyse(load_run(p)) for p in args.results]
        crossed = check_thresholds(runs[0], runs[1], args.fail_on) if args.fail_on else []
        if not (args.html or args.junit or args.markdown):
            print(render_markdown(runs[0]) if len(runs) == 1
                  else render_compare_markdown(runs[0], runs[1]))
        written = write_reports(args.results, html=Path(args.html) if args.html else None,
                                junit=Path(args.junit) if args.junit else None,
                                markdown=Path(args.markdown) if args.markdown else None,
                                misclassified_fail=args.junit_misclassified_fail,
                                crossed=crossed)
    except (ReportError, ValueError) as exc:
        print(f"hil report: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    for line in crossed:
        print(f"hil report: threshold crossed: {line}", file=sys.stderr)
    return 1 if crossed else 0


def _merge(shard_dirs: list[str], out: str | None) -> int:
    """`hil report merge SHARD... --out DIR`: one run folder and its reports from the shards."""
    from hil.errors import HilError, exit_code_of
    from hil.merge import merge
    from hil.summary import render_text

    if not out:
        print("hil report merge: --out DIR is required (where the merged run goes)",
              file=sys.stderr)
        return 2
    try:
        code, summary = merge([Path(p) for p in shard_dirs], Path(out))
    except HilError as exc:
        print(f"hil report merge: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    written = write_run_reports(Path(out))
    print(render_text(summary))
    print(f"hil report merge: {len(shard_dirs)} shards -> {out}; reports "
          f"{', '.join(map(str, written))}", file=sys.stderr)
    return code


def cmd_console(args: argparse.Namespace) -> int:
    from hil.console import cmd_console as run

    return run(args)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `report` and `console` on the `hil` parser (called from hil/cli.py)."""
    p = sub.add_parser("report", help="HTML / JUnit / Markdown report of a run (or compare two)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  hil report hil-runs/nrf52840-renode-nlu_scenario >> "$GITHUB_STEP_SUMMARY"
  hil report OLD NEW --html compare.html --fail-on "accuracy<-0.5pt, cycles.p95>+5%"
  hil report merge shard1 shard2 shard3 --out merged

exit codes: 0 written (and no rule crossed); 1 B crossed a --fail-on rule; 2 not a run folder,
or a rule that does not parse""")
    p.add_argument("results", nargs="+", metavar="RESULTS",
                   help="run directory or results .jsonl; give two to compare (A then B); "
                        "`merge SHARD_DIR... --out DIR` merges the shards of one run")
    p.add_argument("--out", help="with `merge`: the folder for the merged run")
    p.add_argument("--html", help="write a self-contained HTML report here")
    p.add_argument("--junit", help="write JUnit XML here (one testcase per sentence and per "
                                   "expectation)")
    p.add_argument("--markdown", help="write a Markdown summary here (GitHub step summary)")
    p.add_argument("--fail-on", metavar="RULES",
                   help="with two runs: exit 1 when B crossed a rule against A, e.g. "
                        "\"accuracy<-0.5pt, cycles.p95>+5%%, errors>0\" (pt: percentage points, "
                        "%%: percent of A, none: the measure's unit)")
    p.add_argument("--junit-misclassified-fail", action="store_true",
                   help="a misclassified sentence is a failing JUnit case (default: noted only; "
                        "the accuracy expectation judges the model)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("console", help="type sentences, watch the device classify them",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  hil console --board native                    type; :help lists the commands
  hil console --board nrf52840                  on Renode
  printf 'wake me up at seven\n' | hil console --board netduinoplus2   one plain line each""")
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--target", choices=sorted(TARGETS),
                   help="default: the board's first target")
    p.add_argument("--model", default="nlu_scenario",
                   help="shipped model name (hil/models/<name>) or path to a blob")
    p.add_argument("--elf", help="boot this firmware instead of building it")
    p.add_argument("--port", help="serial port (serial target)")
    p.add_argument("--out", help="folder for logs (default hil-runs/console-<board>-<target>)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per sentence")
    p.add_argument("--plain", action="store_true",
                   help="one line per sentence even on a terminal (automatic without one)")
    p.add_argument("--min-confidence", type=float, default=0.8, metavar="P",
                   help="flag an answer whose top probability (host-computed) is below P "
                        "(default 0.8: on nlu_scenario it flags 23 of 37 wrong answers and "
                        "14 of 263 right ones)")
    p.add_argument("--history", metavar="FILE",
                   help="where typed sentences are kept for Up/Down, across runs (default "
                        "$HIL_RUNS_DIR/console-history, else ./hil-runs/console-history; "
                        "'' keeps none)")
    p.set_defaults(func=cmd_console)


# ---- writing -----------------------------------------------------------------------------------


def write_reports(run_paths: list[str | Path], *, html: Path | None = None,
                  junit: Path | None = None, markdown: Path | None = None,
                  misclassified_fail: bool = False,
                  crossed: list[str] | None = None) -> list[Path]:
    """Write the requested files for one run (or a comparison of two); returns what was written.
    JUnit describes one run (the last given: the new one in `hil report OLD NEW`)."""
    runs = [analyse(load_run(p)) for p in run_paths]
    written = []
    if html is not None:
        text = (render_html(runs[0]) if len(runs) == 1
                else render_compare_html(runs[0], runs[1], crossed))
        _write(html, text)
        written.append(html)
    if junit is not None:
        _write(junit, render_junit(runs[-1], misclassified_fail))
        written.append(junit)
    if markdown is not None:
        text = render_markdown(runs[0]) if len(runs) == 1 else render_compare_markdown(*runs[:2])
        _write(markdown, text)
        written.append(markdown)
    return written


def write_run_reports(out_dir: Path) -> list[Path]:
    """The three reports beside a run's results (what `hil run` writes when it ends)."""
    return write_reports([out_dir], html=out_dir / "report.html", junit=out_dir / "junit.xml",
                         markdown=out_dir / "summary.md")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
