"""What `hil console` shows: one sentence's Turn, its plain `key=value` line, and the rich screen.

Its own module so the console's loop (hil.console) and its looks change apart. The rules it
keeps (issue #19):
- a percentage is floored, never rounded up: 99.96% is "99.9%", and "100.0%" means exactly 1;
- a prediction below the user's `--min-confidence` is flagged, not shown in reassuring green;
- a sentence cut to the model's max_len says so ("truncated to N of M tokens");
- the screen fits the terminal (80x24 and up): history rows go first, then the panel gets
  compact, so the status bar and the predicted label are never scrolled off the top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hil.live import clip
from hil.report import nbytes

HISTORY = 8  # sentences kept on screen under the current one (fewer when it does not fit)
TOP_K = 5  # probability bars shown (all when the model has fewer classes)
HELP = """commands (anything else is a sentence for the device):
  :help    this list
  :model   the model: name, id, labels, max tokens
  :stats   the device's STATS counters and this session's tallies
  :reset   reboot the device (RESET, fresh HELLO)
  :quit    leave (also :q, :exit, Ctrl-D; Ctrl-C stops)
keys: Left/Right edit the line, Up/Down recall earlier sentences (kept across runs)"""


def pct(p: float) -> str:
    """A probability as a percentage with one decimal, floored: 0.9996 -> "99.9%", never a
    "100.0%" that is not exactly 1 (a rounded-up certainty is a lie the model never told)."""
    return f"{math.floor(max(0.0, min(1.0, p)) * 1000) / 10:.1f}%"


def floor3(p: float) -> str:
    """A probability with three decimals, floored (the plain line's `p=`)."""
    return f"{math.floor(max(0.0, min(1.0, p)) * 1000) / 1000:.3f}"


@dataclass
class Turn:
    """What the console shows for one sentence (also the plain line's fields)."""

    n: int
    text: str
    status: str  # ok | error | lost
    label: str = ""
    probs: list[tuple[str, float]] = field(default_factory=list)  # top-k, host-computed
    tokens: list[str] = field(default_factory=list)  # device ids as host vocabulary strings
    cycles: int | None = None
    unit: str = ""
    latency_ms: float | None = None
    emulated: bool = False
    stack: int | None = None
    arena: int | None = None
    agree: bool | None = None  # logits bit-exact with the host reference
    ids_match: bool | None = None  # device ids == host tokenizer ids
    note: str = ""  # reset seen, reconnected, error text
    full_tokens: int | None = None  # the host tokenizer's count before the cut to max_len
    min_confidence: float = 0.0  # the user's threshold: below it the answer is flagged

    @property
    def top(self) -> float:
        return self.probs[0][1] if self.probs else 0.0

    @property
    def low(self) -> bool:
        """Below the user's threshold: the device answered, but do not trust the label."""
        return self.status == "ok" and self.top < self.min_confidence

    @property
    def truncated(self) -> str:
        """"truncated to N of M tokens", or "" when the whole sentence fit."""
        n = len(self.tokens)
        if self.full_tokens is None or self.full_tokens <= n:
            return ""
        return f"truncated to {n} of {self.full_tokens} tokens"

    def plain(self) -> str:
        """One line, `key=value` separated by two spaces; the text last, quoted."""
        if self.status != "ok":
            return f"#{self.n}  status={self.status}  {self.note}  text={self.text!r}"
        lat = "n/a" if self.latency_ms is None else f"{self.latency_ms:.3f}ms"
        parts = [f"#{self.n}", f"label={self.label}", f"p={floor3(self.top)}(host)",
                 f"tokens={len(self.tokens)}", f"cycles={self.cycles}[{self.unit}]",
                 f"latency={lat}{'(emulated)' if self.emulated else ''}",
                 f"stack={self.stack}B", f"arena={self.arena}B",
                 f"ref={'bit-exact' if self.agree else 'DIFFERS'}"]
        if self.low:
            parts.append(f"confidence=LOW(<{self.min_confidence:g})")
        if self.truncated:
            parts.append(f"truncated={len(self.tokens)}/{self.full_tokens}")
        if self.note:
            parts.append(f"note={self.note!r}")
        parts.append(f"text={self.text!r}")
        return "  ".join(parts)


# ---- the rich screen ----------------------------------------------------------------------------


def _bar(frac: float, width: int = 28) -> str:
    full = int(max(0.0, min(1.0, frac)) * width)  # floored, like the percentages
    return "█" * full + "·" * (width - full)


def render_screen(session: Any, turn: Turn | None, history: list[Turn], notice: str = "",
                  size: tuple[int, int] | None = None) -> Any:
    """The rich renderable for the console screen, fitted to `size` (columns, rows; the last
    row is the prompt's). `session`: a hil.console.ConsoleSession (status, scale, arena).

    Why measure rather than guess: the status bar and a long token list wrap differently at
    each width, so each candidate layout is rendered and counted, fullest first."""
    from rich.console import Console, Group

    if size is None:
        return Group(*_parts(session, turn, history, notice, 0, HISTORY))
    width, height = size
    probe = Console(width=width, file=_Null(), force_terminal=True)
    budget = max(4, height - 1)
    most = min(HISTORY, len(history))
    # full detail while a few history rows still fit, then compact, then tight
    candidates = [(level, rows) for level, least in ((0, min(3, most)), (1, min(2, most)),
                                                     (2, 0))
                  for rows in range(most, least - 1, -1)]
    for level, rows in candidates:
        group = Group(*_parts(session, turn, history, notice, level, rows))
        if len(probe.render_lines(group, probe.options, pad=False)) <= budget:
            return group
    return Group(*_parts(session, turn, history, notice, 2, 0))


class _Null:
    """A file that swallows what the measuring console writes."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


def _parts(session: Any, turn: Turn | None, history: list[Turn], notice: str, level: int,
           rows: int) -> list[Any]:
    """The screen's pieces at one density: level 0 full, 1 compact, 2 tight."""
    from rich.panel import Panel
    from rich.text import Text

    status = Text(session.status(), style="reverse")
    if session.errors:
        status.append(f"  last error: {clip(session.errors[-1], 80)}", style="reverse red")
    parts: list[Any] = [status]
    if notice:
        parts.append(Text(notice, style="bold yellow"))
    if turn is None:
        parts.append(Panel("Type a sentence and press Enter (Up recalls earlier ones). "
                           ":help lists the commands; :quit or Ctrl-D leaves, Ctrl-C stops.",
                           title="hil console"))
    elif turn.status != "ok":
        parts.append(Panel(Text(f"{turn.text}\n\n{turn.status.upper()}: {turn.note}",
                                style="bold red"), title=f"#{turn.n}"))
    else:
        parts.append(Panel(_answer(session, turn, level), title=f"#{turn.n}  {clip(turn.text, 70)}",
                           title_align="left"))
    if rows:
        parts.append(_history(history[-rows:][::-1]))
    return parts


def _answer(session: Any, turn: Turn, level: int) -> Any:
    """The current sentence's panel body; `level` trades detail for rows."""
    from rich.table import Table
    from rich.text import Text

    body = Table.grid(padding=(0, 2))
    body.add_column(justify="right", style="bold")
    body.add_column()
    label = Text(f"{turn.label}  ({pct(turn.top)})", style="bold yellow" if turn.low
                 else "bold green")
    if turn.low:
        label.append(f"  LOW CONFIDENCE: below --min-confidence {turn.min_confidence:.0%}",
                     style="bold yellow")
    body.add_row("label", label)
    scale = f"softmax(int32 logits x logit_scale {session.logit_scale:.3g})"
    if level == 2:
        body.add_row("p (host)", "  ".join(f"{n} {pct(p)}" for n, p in turn.probs[:3]))
    else:
        bars = Table.grid(padding=(0, 1))
        for name, p in turn.probs[: TOP_K if level == 0 else 3]:
            bars.add_row(Text(name, style="cyan"), Text(_bar(p), style="green"),
                         Text(f"{pct(p):>6}"))
        body.add_row("probabilities", bars)
        body.add_row("", Text(f"host-computed: {scale}; top {len(turn.probs)}", style="dim"))
    body.add_row("tokens", Text(" ".join(turn.tokens), style="magenta",
                                no_wrap=level > 0, overflow="ellipsis"))
    same = {True: "same ids as the host tokenizer", False: "ids DIFFER from the host's",
            None: "ids not reported"}[turn.ids_match]
    body.add_row("token count", f"{len(turn.tokens)} (as the device tokenized it; {same})")
    if turn.truncated:
        body.add_row("", Text(f"{turn.truncated} (the model's max_len): the rest was not "
                              "classified", style="bold yellow"))
    emu = "emulated " if turn.emulated else ""
    lat = "n/a" if turn.latency_ms is None else f"{turn.latency_ms:.3f} ms"
    cap = session.hello.arena if session.hello is not None else 0
    memory = (f"stack high-water {nbytes(turn.stack)}   arena high-water {nbytes(turn.arena)}"
              + (f" of {nbytes(cap)}" if cap else ""))
    body.add_row("cost", f"{turn.cycles:,} {turn.unit}  ->  {emu}latency {lat}")
    body.add_row("memory", memory)
    body.add_row("reference", Text("logits bit-exact with the host integer reference",
                                   style="green") if turn.agree else
                 Text("logits DIFFER from the host integer reference", style="bold red"))
    if turn.note:
        body.add_row("note", Text(turn.note, style="yellow"))
    return body


def _history(turns: list[Turn]) -> Any:
    from rich.table import Table
    from rich.text import Text

    hist = Table(title="history", title_justify="left", expand=True)
    for col, just in (("#", "right"), ("sentence", "left"), ("label", "left"),
                      ("p (host)", "right"), ("tok", "right"), ("latency", "right"),
                      ("ref", "left")):
        hist.add_column(col, justify=just, no_wrap=True,  # type: ignore[arg-type]
                        overflow="ellipsis", ratio=1 if col == "sentence" else None)
    for t in turns:
        if t.status != "ok":
            hist.add_row(str(t.n), t.text, Text(t.status, style="red"), "", "", "", "")
            continue
        hist.add_row(str(t.n), t.text, Text(t.label + ("?" if t.low else ""),
                                            style="yellow" if t.low else ""),
                     pct(t.top), str(len(t.tokens)) + ("+" if t.truncated else ""),
                     "n/a" if t.latency_ms is None else
                     f"{t.latency_ms:.3f} ms{' (emu)' if t.emulated else ''}",
                     Text("exact", style="green") if t.agree else Text("DIFF", style="red"))
    return hist
