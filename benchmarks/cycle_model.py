"""Estimated Cortex-M4 cycles for QEMU runs: a documented timing model applied to the execution.

QEMU counts instructions, not cycles (docs/design.md, contract 4). This tool loads a TCG plugin
(benchmarks/cycle_model.c, compiled here with the host gcc; QEMU >= 7.2 with plugin support)
into `qemu-system-arm -icount shift=0` and prices every executed instruction:

* core (Arm Cortex-M4 Technical Reference Manual, instruction cycle table, zero wait states):
  data processing, MUL/MLA/long multiplies, the DSP MACs (SMLAD, SMLAL, SMMLA...), SXTB16, PKH,
  SSAT: 1 cycle; LDR 2, or 1 when it directly follows a single load/store (pipelined address and
  data phases); STR 1 (write buffer); LDRD/STRD 3 and LDM/STM/PUSH/POP 1 + N (N registers);
  SDIV/UDIV 2..12, taken as 7; a taken branch (B, BL, BX, CBZ/B<cond> taken, POP/LDR/MOV into
  PC) adds P = 2 cycles of pipeline refill (the TRM gives 1..3); a conditional branch that falls
  through costs 1; IT costs 1 (folding ignored). Not modelled: the one-cycle stall of an address
  that depends on the previous instruction, bus contention between fetch and data, interrupts.
* memory (per board, BOARDS below): code, constants and the model blob are in flash (addresses
  below 0x20000000 on the mps2-an386 image, as on the real chips), the arena and stack in SRAM
  with no wait state. Instruction fetches pass an instruction cache with sequential prefetch
  (a miss on the next line costs what the previous line's instructions did not hide of the
  wait states; any other miss the full wait states); data reads from flash pass a data cache.

STM32F405 at 168 MHz: 5 flash wait states (RM0090, 3.3-3.6 V), ART accelerator on: prefetch,
instruction cache 64 lines x 128 bits, data cache 8 lines x 128 bits (modelled fully
associative, LRU). nRF52840 at 64 MHz: flash modelled with 2 wait states and its cache
(NVMC ICACHECNF, enabled) as one 2-way 8 KiB cache of 16-byte lines for instruction and data
reads - these two numbers are assumptions (not checked against the product specification here).
The figures are estimates; on a board, the DWT cycle counter is the measurement.

    python benchmarks/cycle_model.py --lengths 8 16 128            # random model, both boards
    python benchmarks/cycle_model.py --blob hil/models/nlu_scenario/model.bin --profile 16
    python benchmarks/cycle_model.py --write-cpi                   # hil/models/cpi.json

cpi.json is {board: {model: cycles per instruction}} (board names as hil/boards.py, model names
as hil/models/<name>; netduinoplus2 copies stm32f4, the same chip and clock): the ratio of
estimated cycles to instructions over 40 real test sentences of the model (DSP kernels). A host
turns an instruction count into "~ N ms (estimated)" as instructions * cpi / clock_hz * 1000.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from bisect import bisect_right
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import quant_speed as qs  # noqa: E402

PLUGIN_SRC = ROOT / "benchmarks" / "cycle_model.c"

BOARDS = {
    "stm32f4": {"clock_hz": 168_000_000, "ws": 5, "icache": 64, "iways": 64, "dcache": 8,
                "prefetch": 1, "what": "STM32F405 168 MHz, 5 WS, ART (prefetch, I 64x16 B, "
                                       "D 8x16 B)"},
    "nrf52840": {"clock_hz": 64_000_000, "ws": 2, "icache": 512, "iways": 2, "dcache": 0,
                 "prefetch": 0, "what": "nRF52840 64 MHz, 2 WS (assumed), cache 8 KiB 2-way "
                                        "(assumed, code and data)"},
}
ALIASES = {"netduinoplus2": "stm32f4"}  # the same STM32F405 at 168 MHz (hil/boards.py)
REFILL, DIV = 2, 7


def have_tools() -> bool:
    return qs.have_tools() and shutil.which("gcc") is not None


def build_plugin(out_dir: Path) -> Path:
    so = out_dir / "cycle_model.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(so), str(PLUGIN_SRC)],
                   check=True, capture_output=True, text=True)
    return so


def symbols(elf: Path) -> tuple[list[int], list[str]]:
    out = subprocess.run(["arm-none-eabi-nm", "-n", "--defined-only", str(elf)], check=True,
                         capture_output=True, text=True).stdout
    addrs, names = [], []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "tTwW":
            addrs.append(int(f[0], 16) & ~1)
            names.append(f[2])
    return addrs, names


def run(elf: Path, board: str, plugin: Path, profile: bool = False,
        timeout: float = 900) -> dict:
    """Run the engine_qemu harness with the plugin: {"windows": [(instructions, cycles, base,
    refill, ifetch, dread)], "total": ..., "profile": {function: [instructions, cycles]}}."""
    b = BOARDS[board]
    addrs, names = symbols(elf)
    sym = dict(zip(names, addrs, strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cycles.txt"
        args = (f"{plugin},ws={b['ws']},icache={b['icache']},iways={b['iways']},"
                f"dcache={b['dcache']},prefetch={b['prefetch']},refill={REFILL},div={DIV},"
                f"flash_end=20000000,begin={sym['ebq_mark_begin']:x},"
                f"end={sym['ebq_mark_end']:x},profile={int(profile)},out={out}")
        cmd = [qs.QEMU, "-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial",
               "null", "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
               "-kernel", str(elf), "-plugin", args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0 or "ENGINE-QEMU PASS" not in p.stdout + p.stderr:
            said = (p.stdout + p.stderr)[-2000:]
            raise RuntimeError(f"QEMU with the cycle plugin failed: {said}")
        res: dict = {"windows": [], "total": None, "profile": {}}
        for line in out.read_text().splitlines():
            f = line.split()
            if f[0] == "W":
                res["windows"].append(tuple(int(v) for v in f[1:]))
            elif f[0] == "TOTAL":
                res["total"] = tuple(int(v) for v in f[1:])
            elif f[0] == "T":
                a = int(f[1], 16)
                i = bisect_right(addrs, a) - 1
                name = names[i] if i >= 0 else "?"
                acc = res["profile"].setdefault(name, [0, 0])
                acc[0] += int(f[2]) * int(f[3])
                acc[1] += int(f[4])
    return res


def estimate(blob: Path, seqs: list[list[int]], boards: list[str], dsp: bool = True,
             profile: bool = False) -> dict:
    """{board: plugin result} for one build of the harness with these sequences."""
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        elf = qs.build(blob, seqs, tmpd, dsp)
        plugin = build_plugin(tmpd)
        return {b: run(elf, b, plugin, profile) for b in boards}


def model_cpi(blob: Path, boards: list[str], n_sentences: int = 40) -> dict[str, float]:
    """Cycles per instruction over real test sentences of the model (random ids when the model
    has no dataset here), DSP kernels."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from test_engine import test_sentences

        seqs = test_sentences(blob, n_sentences)
    except Exception:  # no dataset: lengths spread over the model's range
        from hil.quant.blob import read_blob

        dims = read_blob(blob.read_bytes()).meta["dims"]
        seqs = qs.random_seqs(dims["vocab_size"], list(range(4, dims["max_len"] + 1, 6)))
    res = estimate(blob, seqs, boards)
    out = {}
    for b, r in res.items():
        ins = sum(w[0] for w in r["windows"])
        cyc = sum(w[1] for w in r["windows"])
        out[b] = round(cyc / ins, 4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blob", type=Path, help="model blob (default: seeded random model)")
    ap.add_argument("--lengths", type=int, nargs="*", default=[8, 16, 128])
    ap.add_argument("--board", action="append", choices=sorted(BOARDS))
    ap.add_argument("--portable", action="store_true", help="the portable kernels")
    ap.add_argument("--profile", type=int, help="per-function table at this one length")
    ap.add_argument("--write-cpi", action="store_true",
                    help="write hil/models/cpi.json (what hil run's estimated ms use) for "
                         "every shipped model")
    args = ap.parse_args(argv)
    if not have_tools():
        print("needs arm-none-eabi-gcc, qemu-system-arm (with plugins) and gcc", file=sys.stderr)
        return 2
    boards = args.board or list(BOARDS)
    if args.write_cpi:
        cpi: dict[str, dict[str, float]] = {b: {} for b in boards}
        for bp in sorted((ROOT / "hil" / "models").glob("*/model.bin")):
            for b, v in model_cpi(bp, boards).items():
                cpi[b][bp.parent.name] = v
        for alias, same in ALIASES.items():
            if same in cpi:
                cpi[alias] = dict(cpi[same])
        path = ROOT / "hil" / "models" / "cpi.json"  # package data: hil run's ms estimates
        path.write_text(json.dumps(cpi, indent=1, sort_keys=True) + "\n")
        print(json.dumps(cpi, indent=1, sort_keys=True))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        blob = args.blob
        if blob is None:
            from hil.quant.quantize import blob_bytes, random_quant_model

            blob = Path(tmp) / "random.bin"
            blob.write_bytes(blob_bytes(random_quant_model(num_labels=5, seed=0)))
        from hil.quant.blob import read_blob
        from hil.quant.reference import has_att_output

        parsed = read_blob(blob.read_bytes())
        dims, att_output = parsed.meta["dims"], has_att_output(parsed, 0)
        lengths = [args.profile] if args.profile else args.lengths
        seqs = qs.random_seqs(dims["vocab_size"], lengths)
        res = estimate(blob, seqs, boards, dsp=not args.portable, profile=bool(args.profile))
    for b, r in res.items():
        clk = BOARDS[b]["clock_hz"]
        print(f"{b}: {BOARDS[b]['what']}")
        print(f"  {'n':>4} {'instructions':>12} {'cycles':>12} {'CPI':>5} {'cyc/MAC':>7} "
              f"{'ms':>8}  base/refill/ifetch/dread")
        for n, w in zip(lengths, r["windows"], strict=True):
            mac = qs.macs(dims, n, att_output)
            print(f"  {n:>4} {w[0]:>12,} {w[1]:>12,} {w[1] / w[0]:>5.2f} {w[1] / mac:>7.2f} "
                  f"{w[1] / clk * 1e3:>8.2f}  {w[2]:,}/{w[3]:,}/{w[4]:,}/{w[5]:,}")
        if args.profile:
            rows = sorted(r["profile"].items(), key=lambda kv: -kv[1][1])[:25]
            print("  function                          instructions       cycles   CPI")
            for name, (ins, cyc) in rows:
                print(f"  {name:<32} {ins:>12,} {cyc:>12,} {cyc / max(ins, 1):>5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
