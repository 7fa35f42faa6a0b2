"""Small inline-SVG charts for the HTML report, drawn by hand.

Why not matplotlib or a JS chart library: the report must open offline from a CI artifact, stay a
single file, and not pull a plotting stack into `hil run`. Each function returns one `<svg>` with
`data-plot="<name>"` (the tests look for it), axis labels that carry units, and `<title>` tooltips
instead of scripts. Empty inputs draw an explicit "no data" panel rather than an empty frame.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

W, H = 640, 300
ML, MR, MT, MB = 64, 16, 28, 48  # margins: left (y labels), right, top (title), bottom (x labels)
COLORS = ("#2f6fdf", "#e07b1a", "#2a9d5b", "#c23b4e", "#7a4fc9")
INK = "#333"
GRID = "#e4e4e4"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 5 x 10^k steps)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 12))
        t += step
    return ticks


def fmt(v: float) -> str:
    """Compact tick label: 1.2k, 3.4M, 0.25."""
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:g}G"
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    if a >= 1 or a == 0:
        return f"{v:g}"
    return f"{v:.3g}"


def _open(name: str, title: str, w: int = W, h: int = H) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-plot="{_e(name)}" '
            f'viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            f'aria-label="{_e(title)}">',
            f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600" '
            f'fill="{INK}">{_e(title)}</text>']


def empty(name: str, title: str, why: str = "no data") -> str:
    """A panel that says why there is nothing to draw."""
    parts = _open(name, title, W, 120)
    parts.append(f'<rect x="1" y="30" width="{W - 2}" height="88" fill="#fafafa" '
                 f'stroke="{GRID}"/><text x="{W / 2}" y="80" text-anchor="middle" '
                 f'font-size="13" fill="#888">{_e(why)}</text></svg>')
    return "".join(parts)


class _Axes:
    """Linear x/y scales onto the plot area, plus grid, ticks and axis labels."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, w: int = W, h: int = H,
                 ml: int = ML) -> None:
        self.x0, self.x1 = x0, (x1 if x1 > x0 else x0 + 1)
        self.y0, self.y1 = y0, (y1 if y1 > y0 else y0 + 1)
        self.w, self.h, self.ml = w, h, ml

    def x(self, v: float) -> float:
        return self.ml + (v - self.x0) / (self.x1 - self.x0) * (self.w - self.ml - MR)

    def y(self, v: float) -> float:
        return self.h - MB - (v - self.y0) / (self.y1 - self.y0) * (self.h - MT - MB)

    def frame(self, xlabel: str, ylabel: str, xticks: bool = True) -> list[str]:
        out = []
        for t in nice_ticks(self.y0, self.y1):
            yy = self.y(t)
            out.append(f'<line x1="{self.ml}" x2="{self.w - MR}" y1="{yy:.1f}" y2="{yy:.1f}" '
                       f'stroke="{GRID}"/><text x="{self.ml - 6}" y="{yy + 4:.1f}" '
                       f'text-anchor="end" font-size="11" fill="{INK}">{fmt(t)}</text>')
        if xticks:
            for t in nice_ticks(self.x0, self.x1, 6):
                xx = self.x(t)
                out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{self.h - MB}" '
                           f'y2="{self.h - MB + 4}" stroke="{INK}"/><text x="{xx:.1f}" '
                           f'y="{self.h - MB + 16}" text-anchor="middle" font-size="11" '
                           f'fill="{INK}">{fmt(t)}</text>')
        out.append(f'<line x1="{self.ml}" x2="{self.w - MR}" y1="{self.h - MB}" '
                   f'y2="{self.h - MB}" stroke="{INK}"/>'
                   f'<line x1="{self.ml}" x2="{self.ml}" y1="{MT}" y2="{self.h - MB}" '
                   f'stroke="{INK}"/>')
        out.append(f'<text x="{(self.ml + self.w - MR) / 2}" y="{self.h - 8}" '
                   f'text-anchor="middle" font-size="12" fill="{INK}">{_e(xlabel)}</text>')
        out.append(f'<text transform="translate(14 {(MT + self.h - MB) / 2}) rotate(-90)" '
                   f'text-anchor="middle" font-size="12" fill="{INK}">{_e(ylabel)}</text>')
        return out


def histogram(series: list[tuple[str, list[float]]], *, name: str, title: str, xlabel: str,
              bins: int = 30) -> str:
    """One or more distributions over shared bins (overlaid, translucent, with a legend)."""
    allv = [v for _, vals in series for v in vals]
    if not allv:
        return empty(name, title, "no answered sentences: nothing to draw")
    lo, hi = min(allv), max(allv)
    if hi <= lo:
        lo, hi = lo - 0.5 * (abs(lo) or 1), hi + 0.5 * (abs(hi) or 1)
    width = (hi - lo) / bins
    counts = []
    for _, vals in series:
        c = [0] * bins
        for v in vals:
            c[min(bins - 1, int((v - lo) / width))] += 1
        counts.append(c)
    ymax = max(max(c) for c in counts)
    ax = _Axes(lo, hi, 0, ymax * 1.08)
    parts = _open(name, title)
    parts += ax.frame(xlabel, "sentences")
    for k, ((label, _), c) in enumerate(zip(series, counts, strict=True)):
        color = COLORS[k % len(COLORS)]
        for i, n in enumerate(c):
            if n == 0:
                continue
            x0, x1 = ax.x(lo + i * width), ax.x(lo + (i + 1) * width)
            y = ax.y(n)
            parts.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(0.5, x1 - x0 - 1):.1f}" '
                         f'height="{ax.y(0) - y:.1f}" fill="{color}" fill-opacity="'
                         f'{0.85 if len(series) == 1 else 0.5}"><title>{_e(label)}: {n} in '
                         f'[{fmt(lo + i * width)}, {fmt(lo + (i + 1) * width)})</title></rect>')
    parts += _legend([s[0] for s in series]) if len(series) > 1 else []
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: list[str]) -> list[str]:
    out = []
    for k, label in enumerate(names):
        y = MT + 6 + 16 * k
        out.append(f'<rect x="{W - MR - 160}" y="{y}" width="10" height="10" '
                   f'fill="{COLORS[k % len(COLORS)]}"/><text x="{W - MR - 145}" y="{y + 9}" '
                   f'font-size="11" fill="{INK}">{_e(label[:24])}</text>')
    return out


def scatter(series: list[tuple[str, list[tuple[float, float]]]], *, name: str, title: str,
            xlabel: str, ylabel: str, max_marks: int = 2500) -> str:
    """x/y points; past `max_marks` per series, points are merged into a grid of cells whose
    marks grow with their count (a 10,000-sentence run stays a small file) and the title says so."""
    allp = [p for _, pts in series for p in pts]
    if not allp:
        return empty(name, title, "no answered sentences: nothing to draw")
    xs, ys = [p[0] for p in allp], [p[1] for p in allp]
    ax = _Axes(min(0.0, min(xs)), max(xs) * 1.05 or 1, 0, max(ys) * 1.08 or 1)
    merged = any(len(pts) > max_marks for _, pts in series)
    parts = _open(name, title + (" (dense: points merged per cell)" if merged else ""))
    parts += ax.frame(xlabel, ylabel)
    for k, (label, pts) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        if len(pts) > max_marks:
            cells: dict[tuple[int, int], int] = {}
            for x, y in pts:
                key = (round(ax.x(x) / 4), round(ax.y(y) / 4))
                cells[key] = cells.get(key, 0) + 1
            for (cx, cy), n in cells.items():
                r = min(6.0, 1.5 + math.log2(n))
                parts.append(f'<circle cx="{cx * 4}" cy="{cy * 4}" r="{r:.1f}" fill="{color}" '
                             f'fill-opacity="0.55"><title>{n} sentences</title></circle>')
        else:
            for x, y in pts:
                parts.append(f'<circle cx="{ax.x(x):.1f}" cy="{ax.y(y):.1f}" r="2.5" '
                             f'fill="{color}" fill-opacity="0.55"><title>{_e(label)}: '
                             f'{fmt(x)} tokens, {fmt(y)}</title></circle>')
    parts += _legend([s[0] for s in series]) if len(series) > 1 else []
    parts.append("</svg>")
    return "".join(parts)


def bars(categories: list[str], series: list[tuple[str, list[float]]], *, name: str, title: str,
         ylabel: str) -> str:
    """Vertical bars per category, grouped when there are several series."""
    if not categories or not any(vals for _, vals in series):
        return empty(name, title, "the device reported no per-layer counts")
    ymax = max(v for _, vals in series for v in vals) or 1
    ax = _Axes(0, len(categories), 0, ymax * 1.1)
    parts = _open(name, title)
    parts += ax.frame("stage", ylabel, xticks=False)
    slot = (ax.x(1) - ax.x(0))
    bw = slot * 0.8 / len(series)
    for i, cat in enumerate(categories):
        parts.append(f'<text x="{ax.x(i + 0.5):.1f}" y="{H - MB + 16}" text-anchor="middle" '
                     f'font-size="11" fill="{INK}">{_e(cat)}</text>')
        for k, (label, vals) in enumerate(series):
            if i >= len(vals):
                continue
            v = vals[i]
            x = ax.x(i) + slot * 0.1 + k * bw
            y = ax.y(v)
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 1:.1f}" '
                         f'height="{ax.y(0) - y:.1f}" fill="{COLORS[k % len(COLORS)]}">'
                         f'<title>{_e(label)} {_e(cat)}: {fmt(v)}</title></rect>')
    parts += _legend([s[0] for s in series]) if len(series) > 1 else []
    parts.append("</svg>")
    return "".join(parts)


def heatmap(matrix: list[list[int]], labels: list[str], *, name: str, title: str,
            max_classes: int = 40) -> str:
    """Confusion matrix: rows = true label, columns = predicted; cells shaded by row share."""
    n = len(matrix)
    if n == 0 or not any(any(row) for row in matrix):
        return empty(name, title, "no labelled answers: no confusion matrix")
    if n > max_classes:
        return empty(name, title, f"{n} classes: too many to draw (limit {max_classes}); "
                                  f"see the worst-cases table")
    cell = max(12, min(28, 440 // n))
    left, top = 130, 40
    w = left + cell * n + 20
    h = top + cell * n + 110
    parts = _open(name, title, w, h)
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        lab = labels[i] if i < len(labels) else str(i)
        parts.append(f'<text x="{left - 6}" y="{top + cell * i + cell * 0.68:.1f}" '
                     f'text-anchor="end" font-size="11" fill="{INK}">{_e(lab[:18])}</text>')
        for j, v in enumerate(row):
            share = v / total
            if i == j:
                fill = f"rgba(42,157,91,{0.12 + 0.88 * share:.3f})"
            elif v:
                fill = f"rgba(194,59,78,{0.2 + 0.8 * share:.3f})"
            else:
                fill = "#fafafa"
            pl = labels[j] if j < len(labels) else str(j)
            parts.append(f'<rect x="{left + cell * j}" y="{top + cell * i}" width="{cell - 1}" '
                         f'height="{cell - 1}" fill="{fill}"><title>true {_e(lab)}, predicted '
                         f'{_e(pl)}: {v}</title></rect>')
            if v and cell >= 18:
                parts.append(f'<text x="{left + cell * j + cell / 2:.1f}" '
                             f'y="{top + cell * i + cell * 0.68:.1f}" text-anchor="middle" '
                             f'font-size="10" fill="#111">{v}</text>')
    for j in range(n):
        lab = labels[j] if j < len(labels) else str(j)
        x = left + cell * j + cell * 0.6
        y = top + cell * n + 6
        parts.append(f'<text transform="translate({x:.1f} {y}) rotate(60)" font-size="11" '
                     f'fill="{INK}">{_e(lab[:18])}</text>')
    parts.append(f'<text x="{left + cell * n / 2}" y="{h - 4}" text-anchor="middle" '
                 f'font-size="12" fill="{INK}">predicted label (rows: true label)</text></svg>')
    return "".join(parts)


def meters(items: list[tuple[str, float | None, float | None, str]], *, name: str,
           title: str, rate: bool = False) -> str:
    """Horizontal bars of used vs limit: (name, used, limit or None, caption). For memory
    (`rate=False`) bars past 80% of the limit turn orange and past it red; for rates where more
    is better (`rate=True`) a full bar is green. A missing value is drawn as "not measured", never
    as zero."""
    row = 34
    h = MT + 12 + row * len(items) + 8
    left, right = 190, W - 20
    parts = _open(name, title, W, h)
    scale_max = max([v for _, u, lim, _ in items for v in (u, lim) if v] or [1])
    for k, (label, used, limit, caption) in enumerate(items):
        y = MT + 12 + row * k
        parts.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-size="12" '
                     f'fill="{INK}">{_e(label)}</text>')
        full = limit if limit else scale_max
        parts.append(f'<rect x="{left}" y="{y}" width="{right - left}" height="18" '
                     f'fill="#f1f1f1" stroke="{GRID}"/>')
        if used is None:
            parts.append(f'<text x="{left + 6}" y="{y + 13}" font-size="11" fill="#888">'
                         f'not measured</text>')
            continue
        frac = min(1.0, used / full) if full else 0
        over = limit is not None and used > limit
        if rate:
            color = "#2a9d5b" if frac >= 0.999 else ("#e07b1a" if frac >= 0.5 else "#c23b4e")
        else:
            color = "#c23b4e" if over else ("#e07b1a" if limit and used > 0.8 * limit
                                            else "#2f6fdf")
        parts.append(f'<rect x="{left}" y="{y}" width="{(right - left) * frac:.1f}" height="18" '
                     f'fill="{color}" fill-opacity="0.45"><title>{_e(label)}: {_e(caption)}</title>'
                     f'</rect><text x="{left + 6}" y="{y + 13}" font-size="11" fill="#111">'
                     f'{_e(caption)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def hbars(items: list[tuple[str, float]], *, name: str, title: str, unit: str,
          total: float | None = None) -> str:
    """Horizontal bars, biggest first (an opcode histogram): long category names fit on the
    left, and each bar says its count and, given `total`, its share."""
    if not items or not any(v for _, v in items):
        return empty(name, title)
    row, left, right = 20, 220, W - 120
    h = MT + 14 + row * len(items) + 24
    parts = _open(name, title, W, h)
    vmax = max(v for _, v in items) or 1
    for k, (label, v) in enumerate(items):
        y = MT + 10 + row * k
        share = f" ({100 * v / total:.1f}%)" if total else ""
        parts.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end" font-size="11" '
                     f'fill="{INK}">{_e(label[:36])}</text>'
                     f'<rect x="{left}" y="{y}" width="{max(1.0, (right - left) * v / vmax):.1f}" '
                     f'height="{row - 5}" fill="{COLORS[0]}" fill-opacity="0.75"><title>'
                     f'{_e(label)}: {v:,.0f} {_e(unit)}{share}</title></rect>'
                     f'<text x="{left + (right - left) * v / vmax + 4:.1f}" y="{y + 12}" '
                     f'font-size="10" fill="{INK}">{fmt(v)}{share}</text>')
    parts.append(f'<text x="{(left + right) / 2}" y="{h - 6}" text-anchor="middle" '
                 f'font-size="12" fill="{INK}">{_e(unit)}</text></svg>')
    return "".join(parts)


def _flame_tree(stacks: dict[str, int]) -> dict[str, Any]:
    """Folded stacks -> nested {"n": count, "c": {frame: subtree}} (the root has no frame)."""
    root: dict[str, Any] = {"n": 0, "c": {}}
    for stack, n in stacks.items():
        node = root
        node["n"] += n
        for frame in stack.split(";"):
            node = node["c"].setdefault(frame, {"n": 0, "c": {}})
            node["n"] += n
    return root


def _flame_color(frame: str) -> str:
    """A warm colour fixed by the name (the same function looks the same in every report)."""
    h = sum((i + 1) * ord(c) for i, c in enumerate(frame))
    return f"hsl({10 + h % 40},{70 + h % 20}%,{55 + h % 12}%)"


def flame(stacks: dict[str, int], *, name: str, title: str, unit: str = "instructions",
          width: int = 1200, row: int = 17) -> str:
    """A flame graph from folded stacks ("a;b;c" -> count): callers below, callees stacked on
    top, widths proportional to the count, sorted by name like flamegraph.pl. Frames too narrow
    to see (< 0.5 px) are dropped; labels only where they fit; <title> tooltips give exact
    counts and the share of the total. Static SVG: no script, so no zoom."""
    root = _flame_tree({s: n for s, n in stacks.items() if n > 0})
    total = root["n"]
    if not total:
        return empty(name, title, "no profile samples")

    def depth(node: dict[str, Any]) -> int:
        return 1 + max((depth(c) for c in node["c"].values()), default=0)

    levels = depth(root) - 1
    left, top = 8, 30
    h = top + levels * row + 24
    parts = _open(name, title, width, h)
    scale = (width - 2 * left) / total
    todo: list[tuple[dict[str, Any], float, int]] = [(root, float(left), -1)]
    while todo:
        node, x, level = todo.pop()
        for frame in sorted(node["c"]):
            child = node["c"][frame]
            w = child["n"] * scale
            if w >= 0.5:
                y = top + (levels - level - 2) * row
                label = frame if len(frame) * 6.5 < w - 6 else (
                    frame[:int((w - 6) / 6.5) - 1] + ".." if w > 30 else "")
                parts.append(
                    f'<g><title>{_e(frame)}: {child["n"]:,} {_e(unit)} '
                    f'({100 * child["n"] / total:.2f}%)</title><rect x="{x:.1f}" y="{y}" '
                    f'width="{w:.1f}" height="{row - 1}" fill="{_flame_color(frame)}" rx="1"/>'
                    + (f'<text x="{x + 3:.1f}" y="{y + row - 5}" font-size="11" '
                       f'fill="#111">{_e(label)}</text>' if label else "") + "</g>")
                todo.append((child, x, level + 1))
            x += w
    parts.append(f'<text x="{width / 2}" y="{h - 6}" text-anchor="middle" font-size="12" '
                 f'fill="{INK}">width = share of {total:,} {_e(unit)}; callers below, callees '
                 f'above</text></svg>')
    return "".join(parts)
