"""Renode's own measurements of a run: opcode histogram, guest profile, execution metrics.

Why a separate module: hil/targets/renode.py boots the board; this one only knows which monitor
commands make Renode measure, and how to read what it wrote. RenodeTarget types
`setup_commands()` before `start` and `collect_commands()` before `quit`, then calls
`collect()`; the runner folds every instance's result into summary.json with `merge()`. The
HTML report draws `summary["renode_metrics"]` and `summary["profile"]` when present.

What Renode 1.15.1 offers here (each command checked on the real Renode with the stm32f4 ELF):
- `cpu EnableOpcodesCounting true` + `cpu InstallOpcodeCounterPattern "name" "<16 or 32 bits,
  x = any>"`, read back with `cpu SaveAllOpcodesCounters @file` ("name;count" lines). On
  Cortex-M two facts matter, both measured: the FIRST installed pattern that matches counts the
  instruction (the others do not), and a 32-bit Thumb-2 instruction is seen as its first
  halfword only (zero-extended: a 32-bit pattern's upper half never matches). So THUMB_PATTERNS
  are 16-bit patterns on the first halfword, most specific first, ending in catch-alls; a few
  encodings that share a first halfword are named together (e.g. "bl/b.w | dp #imm").
  Counting is decided at translation time, so it costs little (~1% wall time).
- `cpu EnableProfilerCollapsedStack @file flushInstantly`: the guest profiler writes
  "frame;frame;... count" lines with count = executed instructions, frames = ELF symbols
  ("name (entry)" when entered at the symbol's start). Lines are NOT aggregated (one per stack
  change), so `collect()` sums equal stacks and rewrites the file aggregated (lossless for a
  flame graph). `cpu FlushProfiler` before `quit` makes sure the tail is on disk.
- `machine EnableProfiler @file`: the binary execution-metrics log of Renode's
  tools/metrics_analyzer (instructions over time, every memory read/write, every peripheral
  access with its address, every exception). It logs each memory access, so it is the costly
  one (5.6x wall time, ~19 MB per sentence here): only with `execution_metrics=True`, and the
  raw log is deleted once parsed unless `keep_raw`.
The Perfetto profiler (`EnableProfilerPerfetto`) exists too but needs a trace viewer; the
collapsed stacks carry the same per-function totals.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import struct
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CPU = "sysbus.cpu"
FOLDED = ".profile.folded"
OPCODES = ".opcodes.txt"
METRICS = ".metrics.bin"
COLLECTED = ".renode-metrics.json"
MAX_STACKS = 3000  # distinct stacks kept in summary.json (this firmware has ~200)

# (name, first-halfword pattern), first match wins (see the module docstring). 16-bit Thumb
# encodings from the ARMv7-M Architecture Reference Manual, A5.2; 32-bit ones (first halfword
# 11101/11110/11111) from A5.3.
THUMB_PATTERNS: list[tuple[str, str]] = [
    # 32-bit: multiply and multiply-accumulate (A5.3.16, A5.3.17)
    ("smlad/smuad", "111110110010xxxx"), ("smlaxy/smulxy", "111110110001xxxx"),
    ("smlaw/smulw", "111110110011xxxx"), ("smlsd/smusd", "111110110100xxxx"),
    ("smmla/smmul", "111110110101xxxx"), ("smmls", "111110110110xxxx"),
    ("usad8/usada8", "111110110111xxxx"), ("mul/mla/mls", "111110110000xxxx"),
    ("smull", "111110111000xxxx"), ("sdiv", "111110111001xxxx"),
    ("umull", "111110111010xxxx"), ("udiv", "111110111011xxxx"),
    ("smlal/smlald", "111110111100xxxx"), ("smlsld", "111110111101xxxx"),
    ("umlal/umaal", "111110111110xxxx"),
    # 32-bit: extend (Rn = 1111) before register shifts and extend-and-add (A5.3.12)
    ("sxtb16", "1111101000101111"), ("uxtb16", "1111101000111111"),
    ("sxth", "1111101000001111"), ("uxth", "1111101000011111"),
    ("sxtb", "1111101001001111"), ("uxtb", "1111101001011111"),
    ("lsl/lsr/asr/ror.w reg | sxta*", "111110100xxxxxxx"),
    ("simd add/sub, qadd, rev, clz, sel", "111110101xxxxxxx"),
    # 32-bit: loads and stores (A5.3.7-A5.3.10, A5.3.5)
    ("ldr", "11111000x101xxxx"), ("str", "11111000x100xxxx"),
    ("ldrb/ldrsb", "1111100xx001xxxx"), ("strb", "11111000x000xxxx"),
    ("ldrh/ldrsh", "1111100xx011xxxx"), ("strh", "11111000x010xxxx"),
    ("load/store other", "1111100xxxxxxxxx"),
    ("ldrd", "11101001x1x1xxxx"), ("ldrd", "11101000x111xxxx"),
    ("strd", "11101001x1x0xxxx"), ("strd", "11101000x110xxxx"),
    ("tbb/tbh/ldrex/strex", "1110100001xxxxxx"),
    ("ldm/pop", "1110100010x1xxxx"), ("ldm/pop", "1110100100x1xxxx"),
    ("stm/push", "1110100010x0xxxx"), ("stm/push", "1110100100x0xxxx"),
    # 32-bit: data processing (A5.3.1, A5.3.3, A5.3.11), then what shares 11110 with branches
    ("pkhbt/pkhtb", "111010101100xxxx"), ("dp shifted reg (add.w, orr.w...)", "1110101xxxxxxxxx"),
    ("fpu/coprocessor", "111011xxxxxxxxxx"), ("fpu/coprocessor", "111111xxxxxxxxxx"),
    ("ssat", "1111001100x0xxxx"), ("usat", "1111001110x0xxxx"),
    ("sbfx", "111100110100xxxx"), ("ubfx", "111100111100xxxx"), ("bfi/bfc", "111100110110xxxx"),
    ("movw", "11110x100100xxxx"), ("movt", "11110x101100xxxx"),
    ("addw", "11110x100000xxxx"), ("subw", "11110x101010xxxx"),
    ("bl/b.w | dp #imm", "11110xxxxxxxxxxx"),
    # 16-bit (A5.2)
    ("add/sub", "00011xxxxxxxxxxx"), ("lsl/lsr/asr #imm", "000xxxxxxxxxxxxx"),
    ("mov #imm", "00100xxxxxxxxxxx"), ("cmp #imm", "00101xxxxxxxxxxx"),
    ("add/sub", "0011xxxxxxxxxxxx"), ("mul", "0100001101xxxxxx"),
    ("alu reg (and, orr, adc, tst...)", "010000xxxxxxxxxx"),
    ("bx/blx", "010001110xxxxxxx"), ("add/cmp/mov hi reg", "010001xxxxxxxxxx"),
    ("ldr", "01001xxxxxxxxxxx"), ("ldr", "0101100xxxxxxxxx"), ("ldr", "01101xxxxxxxxxxx"),
    ("ldr", "10011xxxxxxxxxxx"), ("str", "0101000xxxxxxxxx"), ("str", "01100xxxxxxxxxxx"),
    ("str", "10010xxxxxxxxxxx"), ("ldrb/ldrsb", "0101110xxxxxxxxx"),
    ("ldrb/ldrsb", "0101011xxxxxxxxx"), ("ldrb/ldrsb", "01111xxxxxxxxxxx"),
    ("strb", "0101010xxxxxxxxx"), ("strb", "01110xxxxxxxxxxx"),
    ("ldrh/ldrsh", "0101101xxxxxxxxx"), ("ldrh/ldrsh", "0101111xxxxxxxxx"),
    ("ldrh/ldrsh", "10001xxxxxxxxxxx"), ("strh", "0101001xxxxxxxxx"),
    ("strh", "10000xxxxxxxxxxx"), ("adr/add sp", "1010xxxxxxxxxxxx"),
    ("stm/push", "1011010xxxxxxxxx"), ("ldm/pop", "1011110xxxxxxxxx"),
    ("cbz/cbnz", "1011x0x1xxxxxxxx"), ("sxtb/uxtb/sxth/uxth", "10110010xxxxxxxx"),
    ("it/nop/hints", "10111111xxxxxxxx"), ("add/sub sp #imm", "10110000xxxxxxxx"),
    ("misc (rev, cps, bkpt)", "1011xxxxxxxxxxxx"),
    ("stm/push", "11000xxxxxxxxxxx"), ("ldm/pop", "11001xxxxxxxxxxx"),
    ("svc/udf", "1101111xxxxxxxxx"), ("b<cond>", "1101xxxxxxxxxxxx"),
    ("b", "11100xxxxxxxxxxx"),
    ("other 32-bit", "111xxxxxxxxxxxxx"), ("other", "xxxxxxxxxxxxxxxx"),
]

#: tlib's Arm exception indices as the metrics log records them (tlib arm cpu.h EXCP_*).
EXCEPTION_NAMES = {1: "undefined instruction", 2: "SVC", 3: "prefetch abort", 4: "data abort",
                   5: "interrupt (IRQ)", 6: "FIQ", 7: "breakpoint", 8: "exception exit"}


def _path(run_dir: Path, name: str, suffix: str) -> Path:
    return Path(run_dir).resolve() / f"{name}{suffix}"


def _is_32bit(pattern: str) -> bool:
    return pattern[:3] == "111" and pattern[3:5] != "00"


def setup_commands(run_dir: Path, name: str, profile: bool, *,
                   execution_metrics: bool = False, cpu: str = CPU) -> list[str]:
    """Monitor commands to type before `start`: opcode counting always (~1% slower, measured by
    benchmarks/renode_profile.py), the guest profiler with `profile` (~16%), the
    execution-metrics log only with `execution_metrics` (~5.6x: it logs every memory access)."""
    cmds = [f"{cpu} EnableOpcodesCounting true"]
    cmds += [f'{cpu} InstallOpcodeCounterPattern "c{i:02d}" "{pattern}"'
             for i, (_, pattern) in enumerate(THUMB_PATTERNS)]
    if profile:
        cmds.append(f"{cpu} EnableProfilerCollapsedStack @{_path(run_dir, name, FOLDED)} false")
    if execution_metrics:
        cmds.append(f"machine EnableProfiler @{_path(run_dir, name, METRICS)}")
    return cmds


def collect_commands(run_dir: Path, name: str, profile: bool, *, cpu: str = CPU) -> list[str]:
    """Monitor commands to type before `quit`: flush the profile, save the opcode counters.
    The counters file is written last, so `wait_written()` waits for it."""
    out = _path(run_dir, name, OPCODES)
    return ([f"{cpu} FlushProfiler"] if profile else []) + \
        [f"{cpu} SaveAllOpcodesCounters @{out}"]


def wait_written(run_dir: Path, name: str, timeout_s: float = 10.0) -> bool:
    """True once the opcode counters file exists (the monitor runs commands in order, so the
    profile was flushed before it). Renode must not be told to quit earlier: a killed Renode
    leaves half-written files."""
    path = _path(run_dir, name, OPCODES)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size > 0:
            return True
        time.sleep(0.05)
    return False


# ---- parsing ---------------------------------------------------------------------------------


def parse_opcodes(text: str) -> dict[str, Any]:
    """`SaveAllOpcodesCounters` lines ("c07;1234") -> counts per instruction group (patterns
    with the same name added), biggest first, plus 16-/32-bit totals."""
    groups: Counter[str] = Counter()
    widths = {"16-bit": 0, "32-bit": 0}
    for line in text.splitlines():
        key, _, count = line.strip().rpartition(";")
        m = re.fullmatch(r"c(\d+)", key)
        if not m or not count.isdigit() or int(m.group(1)) >= len(THUMB_PATTERNS):
            continue
        name, pattern = THUMB_PATTERNS[int(m.group(1))]
        groups[name] += int(count)
        widths["32-bit" if _is_32bit(pattern) else "16-bit"] += int(count)
    ordered = {k: v for k, v in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0])) if v}
    return {"counted": sum(groups.values()), "groups": ordered, "widths": widths}


def parse_folded(lines: Iterable[str]) -> Counter[str]:
    """Collapsed-stack lines -> {stack: instructions}, equal stacks summed (Renode writes one
    line per stack change). Frames lose Renode's " (entry)" mark and "+0x.." offsets."""
    stacks: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [re.sub(r"(\s*\(entry\)|\+0x[0-9a-fA-F]+)$", "", f) for f in stack.split(";")]
        stacks[";".join(frames)] += int(count)
    return stacks


def function_table(stacks: Counter[str] | dict[str, int]) -> list[dict[str, Any]]:
    """Per function: self (own instructions) and total (itself and its callees, counted once
    per stack even when recursive), biggest total first."""
    self_n: Counter[str] = Counter()
    total_n: Counter[str] = Counter()
    for stack, n in stacks.items():
        frames = stack.split(";")
        self_n[frames[-1]] += n
        for f in set(frames):
            total_n[f] += n
    return [{"function": f, "self": self_n[f], "total": t}
            for f, t in sorted(total_n.items(), key=lambda kv: (-kv[1], kv[0]))]


def profile_summary(stacks: Counter[str] | dict[str, int]) -> dict[str, Any]:
    """What summary.json keeps of a profile: the stacks (for the flame graph), the function
    table, and the interrupt handlers (stacks rooted elsewhere than the reset handler)."""
    items = sorted(stacks.items(), key=lambda kv: -kv[1])
    kept = dict(items[:MAX_STACKS])
    if len(items) > MAX_STACKS:
        kept["[other stacks]"] = sum(n for _, n in items[MAX_STACKS:])
    roots: Counter[str] = Counter()
    for stack, n in stacks.items():
        roots[stack.split(";")[0]] += n
    main_root = roots.most_common(1)[0][0] if roots else None
    return {"unit": "instructions", "total": sum(stacks.values()), "stacks": kept,
            "functions": function_table(stacks),
            "handlers": {r: n for r, n in roots.most_common() if r != main_root}}


def _peripheral_of(addr: int, ranges: list[tuple[int, int, str]]) -> str:
    """The smallest range holding `addr` (the header's ranges nest: a bank, then a device)."""
    best: tuple[int, str] | None = None
    for lo, hi, pname in ranges:
        if lo <= addr <= hi and (best is None or hi - lo < best[0]):
            best = (hi - lo, pname)
    return best[1] if best else f"0x{addr:08x}"


def _header(data: bytes | mmap.mmap) -> tuple[int, dict[int, str], list[tuple[int, int, str]]]:
    """The metrics log header: CPUs (id, name), peripherals (name, start, end)."""
    off = 0

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal off
        v = struct.unpack_from(fmt, data, off)
        off += struct.calcsize(fmt)
        return v

    cpus = {}
    for _ in range(take("<i")[0]):
        cid, n = take("<ii")
        cpus[cid] = data[off:off + n].decode(errors="replace")
        off += n
    ranges = []
    for _ in range(take("<i")[0]):
        (n,) = take("<i")
        pname = data[off:off + n].decode(errors="replace")
        off += n
        lo, hi = take("<QQ")
        ranges.append((lo, hi, pname))
    return off, cpus, ranges


def parse_metrics(data: bytes | mmap.mmap) -> dict[str, Any]:
    """Renode's execution-metrics log (the format of tools/metrics_analyzer/metrics_parser):
    entries of (real time q, virtual time ms d, type c) + payload: 0 = instructions (cpu c,
    cumulative count Q), 1 = memory access (c: 2 read, 3 write), 2 = peripheral access
    (c: 0 read, 1 write; address Q), 3 = exception (index Q). Totals, not time series."""
    off, cpus, ranges = _header(data)
    mem = Counter[int]()
    periph: Counter[tuple[int, int]] = Counter()
    exc: Counter[int] = Counter()
    instr: dict[int, int] = {}
    vt_end = 0.0
    size = len(data)
    unpack_entry = struct.Struct("<dc").unpack_from
    payload = {b"\x00": 9, b"\x01": 1, b"\x02": 9, b"\x03": 8}
    while off + 17 <= size:
        vt, kind = unpack_entry(data, off + 8)
        if off + 17 + payload.get(kind, 0) > size:
            break  # the last entry was cut short (Renode killed mid-write)
        off += 17
        if kind == b"\x01":
            mem[data[off]] += 1
            off += 1
        elif kind == b"\x00":
            cpu, n = struct.unpack_from("<cQ", data, off)
            instr[cpu[0]] = n
            off += 9
        elif kind == b"\x02":
            op, addr = struct.unpack_from("<cQ", data, off)
            periph[(op[0], addr)] += 1
            off += 9
        elif kind == b"\x03":
            exc[struct.unpack_from("<Q", data, off)[0]] += 1
            off += 8
        else:
            break  # a truncated or unknown entry: keep what was read
        vt_end = vt
    return {"cpus": {cpus.get(c, str(c)): n for c, n in instr.items()},
            "virtual_time_ms": round(vt_end, 3),
            "memory": {"reads": mem[2], "writes": mem[3]},
            "peripherals": _peripheral_table(periph, ranges),
            "exceptions": {EXCEPTION_NAMES.get(i, f"exception {i}"): n
                           for i, n in exc.most_common()}}


def _peripheral_table(periph: Counter[tuple[int, int]],
                      ranges: list[tuple[int, int, str]]) -> dict[str, dict[str, int]]:
    """Peripheral accesses per device: reads, writes, busiest first."""
    table: dict[str, dict[str, int]] = {}
    for (op, addr), n in periph.items():
        row = table.setdefault(_peripheral_of(addr, ranges), {"reads": 0, "writes": 0})
        row["writes" if op == 1 else "reads"] += n
    return dict(sorted(table.items(), key=lambda kv: -(kv[1]["reads"] + kv[1]["writes"])))


# ---- one target instance, then the whole run -------------------------------------------------


def collect(run_dir: Path, name: str, *, keep_raw: bool = False) -> dict[str, Any]:
    """Read what Renode wrote for target instance `name` and save it as <name>.renode-metrics.json
    (what `merge()` reads). Returns {"renode_metrics": {...}, "profile": {...}} with only the
    parts that were measured. The folded profile is rewritten aggregated (same flame graph, a
    hundredth of the size); the binary metrics log is deleted once parsed unless `keep_raw`."""
    saved = _path(run_dir, name, COLLECTED)
    # a second stop() must not lose what the first parsed (the metrics log is gone by then)
    out: dict[str, Any] = json.loads(saved.read_text()) if saved.is_file() else {}
    ops = _path(run_dir, name, OPCODES)
    if ops.is_file():
        out.setdefault("renode_metrics", {})["opcodes"] = parse_opcodes(ops.read_text())
    folded = _path(run_dir, name, FOLDED)
    if folded.is_file():
        with open(folded, encoding="utf-8", errors="replace") as fh:
            stacks = parse_folded(fh)
        tmp = folded.with_suffix(".tmp")
        tmp.write_text("".join(f"{s} {n}\n" for s, n in sorted(stacks.items())))
        os.replace(tmp, folded)
        out["profile"] = {**profile_summary(stacks), "files": [folded.name]}
    metrics = _path(run_dir, name, METRICS)
    if metrics.is_file() and metrics.stat().st_size > 0:
        with open(metrics, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            # mapped, not read: the log grows by ~19 MB per sentence
            out.setdefault("renode_metrics", {})["execution"] = parse_metrics(m)
        if not keep_raw:
            metrics.unlink()
    if out:
        saved.write_text(json.dumps(out, indent=1) + "\n")
    return out


def _add(into: dict[str, Any], more: dict[str, Any]) -> None:
    """Add `more`'s numbers into `into`, recursively (counts from several instances add up)."""
    for k, v in more.items():
        if isinstance(v, dict):
            _add(into.setdefault(k, {}), v)
        elif isinstance(v, bool) or not isinstance(v, int | float):
            into.setdefault(k, v)
        else:
            into[k] = into.get(k, 0) + v


def merge(out_dir: Path) -> dict[str, Any]:
    """Every instance's <name>.renode-metrics.json in a run directory, added up: the sections
    for summary.json ({} when Renode measured nothing). Several instances come from --jobs and
    from restarts; counts add, the function table is rebuilt from the added stacks."""
    found = sorted(Path(out_dir).glob(f"*{COLLECTED}"))
    if not found:
        return {}
    metrics: dict[str, Any] = {}
    stacks: Counter[str] = Counter()
    files: list[str] = []
    for path in found:
        part = json.loads(path.read_text())
        _add(metrics, part.get("renode_metrics") or {})
        prof = part.get("profile") or {}
        stacks.update(prof.get("stacks") or {})
        files += prof.get("files") or []
    if "opcodes" in metrics:  # re-sort after adding
        g = metrics["opcodes"]["groups"]
        metrics["opcodes"]["groups"] = dict(sorted(g.items(), key=lambda kv: (-kv[1], kv[0])))
    merged: dict[str, Any] = {}
    if metrics:
        merged["renode_metrics"] = {**metrics, "instances": len(found),
                                    "sources": [p.name for p in found]}
    if stacks:
        merged["profile"] = {**profile_summary(stacks), "files": files}
    return merged
