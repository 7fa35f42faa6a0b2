"""Render docs/screenshots/*.png for real: the console in a terminal, the live dashboard, and the
HTML report, from actual runs on the QEMU-emulated netduinoplus2 (and the native board).

    python benchmarks/report_screenshots.py [--out docs/screenshots] [--board netduinoplus2]

Needs tmux, headless Chromium and QEMU (apt-get install -y --no-install-recommends chromium tmux
qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi).

How, so anyone can check the pictures are not mock-ups:
- console: `hil console --board B` runs inside a tmux session of fixed size; sentences are typed
  with `tmux send-keys`; `tmux capture-pane -e -p` gives the screen text with its ANSI colours;
  rich turns that into an SVG (Text.from_ansi + export_svg, no re-layout) and headless Chromium
  photographs the SVG.
- console at two sizes: 80x24 (the layout gets compact, the status bar and the label stay on
  screen) and 160x45 (everything, with history); the history file is a fresh one per picture.
- live dashboard: the same, for `hil run --live`, captured while it streams, and again once it
  has ended (the final frame it leaves on screen).
- HTML report: `hil run --board B --out DIR` writes DIR/report.html; Chromium photographs it as a
  browser shows it. The comparison is `hil report NATIVE QEMU --fail-on RULES` (checked to exit 1)
  rendered with the rules it crossed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HIL = [sys.executable, "-m", "hil.cli"]
CONSOLE_SIZES = ((80, 24), (160, 45))
LIVE_COLS, LIVE_ROWS = 118, 30
SENTENCES = ["set an alarm for seven am tomorrow", "what is the weather like in paris",
             "play the next song by the beatles", "order a large pepperoni pizza",
             "how many calories are in an avocado"]
# the CI gate the comparison picture fails: B (the emulated board) is far slower than A (the
# host), while accuracy and errors hold (the same model, bit-exact answers)
COMPARE_RULES = "accuracy<-0.5pt, errors>0, latency.p95>+10%"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("needs chromium: apt-get install -y --no-install-recommends chromium")


def shoot(url_file: Path, png: Path, width: int, height: int) -> None:
    """Headless Chromium screenshot of a local file at a fixed window size."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", "--hide-scrollbars",
                        f"--window-size={width},{height}", f"--screenshot={png}",
                        url_file.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
    print(f"wrote {png}")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True,
                          text=True).stdout


def terminal_png(ansi: str, png: Path, title: str, cols: int) -> None:
    """Captured terminal text (with ANSI colours) -> SVG via rich -> PNG via Chromium."""
    from rich.console import Console
    from rich.text import Text

    con = Console(record=True, width=cols, file=open("/dev/null", "w"),  # noqa: SIM115
                  force_terminal=True, color_system="truecolor")
    lines = ansi.rstrip("\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for line in lines:
        con.print(Text.from_ansi(line), no_wrap=True, overflow="crop")
    svg = con.export_svg(title=title)
    w, h = (float(x) for x in re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg).groups())
    page = png.with_suffix(".svg.html")
    page.write_text(f"<html><body style='margin:0;background:#fff'>{svg}</body></html>")
    try:
        shoot(page, png, int(w) + 2, int(h) + 2)
    finally:
        page.unlink()


def wait_screen(session: str, pattern: str, timeout: float = 120) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = tmux("capture-pane", "-t", session, "-p")
        if re.search(pattern, text):
            return text
        time.sleep(0.3)
    raise SystemExit(f"tmux {session}: {pattern!r} not on screen within {timeout} s:\n{text}")


def console_shot(board: str, out: Path, logs: Path, cols: int, rows: int) -> None:
    session = "hil-shot-console"
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    hist = logs / f"console-history-{cols}x{rows}"
    hist.unlink(missing_ok=True)
    cmd = " ".join([*HIL, "console", "--board", board, "--out", str(logs / "console"),
                    "--history", str(hist)])
    tmux("new-session", "-d", "-s", session, "-x", str(cols), "-y", str(rows),
         f"cd {ROOT} && env -u COLUMNS -u LINES TERM=xterm-256color {cmd}; sleep 60")
    try:
        wait_screen(session, r"sentence>")
        for n, text in enumerate(SENTENCES, 1):
            tmux("send-keys", "-t", session, text, "Enter")
            wait_screen(session, rf"#{n} +{re.escape(text[:20])}(.|\n)*sentence>")
        ansi = tmux("capture-pane", "-t", session, "-p", "-e")
        terminal_png(ansi, out / f"console-{cols}x{rows}.png",
                     f"hil console --board {board} ({cols}x{rows})", cols)
        tmux("send-keys", "-t", session, "C-c")
        wait_screen(session, r"stopped", 20)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def live_shot(board: str, out: Path, logs: Path) -> None:
    """`hil run --live` mid-run (100..299 of 300 done) and the frame it leaves at the end."""
    session = "hil-shot-live"
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    shutil.rmtree(logs / "live", ignore_errors=True)
    cmd = " ".join([*HIL, "run", "--board", board, "--out", str(logs / "live"), "--live"])
    tmux("new-session", "-d", "-s", session, "-x", str(LIVE_COLS), "-y", str(LIVE_ROWS),
         f"cd {ROOT} && env -u COLUMNS -u LINES TERM=xterm-256color {cmd}; echo EXIT=$?; "
         "sleep 60")
    title = f"hil run --board {board} --live"
    try:
        end = time.monotonic() + 300
        while True:
            ansi = tmux("capture-pane", "-t", session, "-p", "-e")
            m = re.search(r"\b(\d+)/300\b", re.sub(r"\x1b\[[0-9;]*m", "", ansi))
            if m and 100 <= int(m.group(1)) < 300:
                break
            if time.monotonic() > end or (m and int(m.group(1)) == 300):
                raise SystemExit(f"hil run --live: no mid-run screen to capture:\n{ansi}")
            time.sleep(0.2)
        terminal_png(ansi, out / "run-live.png", f"{title} (mid-run)", LIVE_COLS)
        wait_screen(session, r"EXIT=\d", 300)
        ansi = tmux("capture-pane", "-t", session, "-p", "-e")
        terminal_png(ansi, out / "run-live-end.png", f"{title} (ended)", LIVE_COLS)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def report_shots(board: str, out: Path, logs: Path) -> None:
    """report.png: the QEMU run's own report.html (verdict, files, per-class table and provenance
    in the first screen). report-compare.png: native (A) against the board (B) under a CI gate
    that fails: `hil report A B --fail-on RULES` must exit 1, and the page shows the crossed
    rules (render_compare_html with check_thresholds' answer, the same rules)."""
    qemu = logs / f"{board}-run"
    native = logs / "native-run"
    for b, d in ((board, qemu), ("native", native)):
        shutil.rmtree(d, ignore_errors=True)  # a fresh run, not a resumed old one
        code = subprocess.run([*HIL, "run", "--board", b, "--out", str(d), "--quiet"],
                              cwd=ROOT).returncode
        if code not in (0, 1):
            raise SystemExit(f"hil run --board {b} failed ({code})")
    shoot(qemu / "report.html", out / "report.png", 1360, 3000)
    gate = subprocess.run([*HIL, "report", str(native), str(qemu), "--fail-on", COMPARE_RULES,
                           "--html", str(logs / "compare-cli.html")], cwd=ROOT,
                          capture_output=True, text=True)
    if gate.returncode != 1:
        raise SystemExit(f"hil report --fail-on {COMPARE_RULES!r}: expected exit 1, got "
                         f"{gate.returncode}:\n{gate.stderr}")
    sys.path.insert(0, str(ROOT))
    from hil.report import analyse, check_thresholds, load_run
    from hil.report_html import render_compare_html

    a, b = analyse(load_run(native)), analyse(load_run(qemu))
    crossed = check_thresholds(a, b, COMPARE_RULES)
    (logs / "compare.html").write_text(render_compare_html(a, b, crossed))
    shoot(logs / "compare.html", out / "report-compare.png", 1360, 2000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--board", default="netduinoplus2")
    ap.add_argument("--logs", default=str(ROOT / "out" / "screenshots"))
    ap.add_argument("--only", default="report,console,live",
                    help="comma-separated subset of report,console,live")
    args = ap.parse_args()
    only = set(args.only.split(","))
    out, logs = Path(args.out), Path(args.logs)
    out.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    if shutil.which("tmux") is None:
        sys.exit("needs tmux: apt-get install -y --no-install-recommends tmux")
    if "report" in only:
        report_shots(args.board, out, logs)
    if "console" in only:
        for cols, rows in CONSOLE_SIZES:
            console_shot(args.board, out, logs, cols, rows)
    if "live" in only:
        live_shot(args.board, out, logs)


if __name__ == "__main__":
    main()
