"""Engine speed on a Cortex-M4 (QEMU mps2-an386): instructions per inference and per MAC.

Method (docs/design.md, contract 4 "Honest units"): firmware/tests/engine_qemu.c runs ebq_forward
under `qemu-system-arm -M mps2-an386 -icount shift=0`, where one guest instruction is 1 ns of
virtual time, and reads SysTick (core clock 25 MHz) around each call: instructions = ticks x 40. A
loop of exactly 1,000,000 instructions is timed first and must read 25,000 ticks (printed as `cal`).
Numbers are "instructions (qemu icount)", not board cycles: a real M4 adds wait states and multi-
cycle loads. Both kernel sets are measured on the same sequences, and their logits must be identical
to each other and to hil/quant/reference.py.

    python benchmarks/quant_speed.py                 # random model (max_len 256), n = 16..256
    python benchmarks/quant_speed.py --blob hil/models/nlu_scenario/model.bin --lengths 8 16 64
    python benchmarks/quant_speed.py --profile 128   # per-kernel instructions/MAC at n = 128
    python benchmarks/quant_speed.py --write         # + benchmarks/results/quant_speed.{json,md}

MACs (macs() below) count every multiply-accumulate of one inference exactly: embedding
2 n E D; per full layer the query and conv-branch projections 2 n D^2 (+ n D^2 for att_output,
spec 2), scores and weighted sum
2 n^2 D (every key, padding included), causal conv D sum_t min(t + 1, K) (taps that read real
rows); the last layer computes row 0 only (2 D^2 + 2 n D + D); classifier C D. Element-wise
steps (RMSNorm, softmax exp, SiLU, combination, requantization) count no MACs but their
instructions are in the totals.

This module is also the QEMU build/run helper of tests/test_engine_qemu.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
sys.path.insert(0, str(ROOT))

from hil.quant import reference as R  # noqa: E402
from hil.quant.blob import read_blob  # noqa: E402

CC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
INSTR_PER_TICK = 40  # 1e9 instructions/s (icount shift=0) / 25e6 SysTick ticks/s


def have_tools() -> bool:
    return shutil.which(CC) is not None and shutil.which(QEMU) is not None


def kernel_sources(dsp: bool) -> list[Path]:
    """ops/*.c, with each file replaced by its ops/dsp/ twin when dsp, plus the twins' shared
    micro-kernels ops/dsp/support/*.c (as the Makefile's DSP=1)."""
    out = []
    for p in sorted((FW / "src" / "ops").glob("*.c")):
        twin = FW / "src" / "ops" / "dsp" / p.name
        out.append(twin if dsp and twin.exists() else p)
    return out + (sorted((FW / "src" / "ops" / "dsp" / "support").glob("*.c")) if dsp else [])


def write_ids_header(path: Path, seqs: list[list[int]]) -> None:
    off = np.cumsum([0] + [len(s) for s in seqs])
    ids = [i for s in seqs for i in s] or [0]
    path.write_text(
        f"#define EBQ_N_SEQ {len(seqs)}u\n"
        f"static const uint32_t ebq_seq_off[] = {{{','.join(map(str, off))}}};\n"
        f"static const uint16_t ebq_seq_ids[] = {{{','.join(map(str, ids))}}};\n")


def build(blob: Path, seqs: list[list[int]], out_dir: Path, dsp: bool,
          profile: int | None = None) -> Path:
    """Build the bare-metal harness for mps2-an386 with these sequences; returns the ELF."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_ids_header(out_dir / "engine_qemu_ids.h", seqs)
    elf = out_dir / ("engine_dsp.elf" if dsp else "engine_portable.elf")
    srcs = [FW / "tests" / "engine_qemu.c", *(FW / "src" / f for f in
            ("model.c", "forward.c", "blob.c", "tokenizer.c")), *kernel_sources(dsp),
            FW / "ports" / "cortex-m" / "cortexm.c", FW / "ports" / "mps2-an386" / "board.c",
            FW / "app" / "model_blob.S"]
    cmd = [CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-mcpu=cortex-m4",
           "-mthumb", "-mfloat-abi=soft", "-O2", "-ffunction-sections", "-fdata-sections",
           "-ffreestanding", f"-I{FW / 'include'}", f"-I{FW / 'src'}",
           f"-I{FW / 'ports' / 'mps2-an386'}", f"-I{FW / 'ports' / 'cortex-m'}", f"-I{out_dir}",
           f"-DEBQ_MODEL_FILE=\"{blob.resolve()}\"",
           *([f"-DEBQ_PROFILE={profile}"] if profile else []),
           *map(str, srcs), "-nostartfiles", "-specs=nano.specs", "-Wl,--gc-sections",
           f"-L{FW / 'ports' / 'cortex-m'}", f"-T{FW / 'ports' / 'mps2-an386' / 'link.ld'}",
           "-Wl,--start-group", "-lc_nano", "-lgcc", "-Wl,--end-group", "-o", str(elf)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"build failed:\n{p.stderr[-4000:]}")
    return elf


def run(elf: Path, timeout: float = 600) -> dict:
    """Run the harness under QEMU; returns {"cal": ticks, "rows": [(ticks, logits)], "prof",
    "arena": [(painted high-water bytes, ebq_arena_bytes)]}."""
    cmd = [QEMU, "-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial", "null",
           "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
           "-kernel", str(elf)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    text = p.stdout + p.stderr
    if p.returncode != 0 or "ENGINE-QEMU PASS" not in text:
        raise RuntimeError(f"QEMU run failed (exit {p.returncode}); tail:\n{text[-2000:]}")
    out: dict = {"cal": None, "rows": [], "prof": [], "arena": []}
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "CAL":
            out["cal"] = int(f[2])
        elif f[0] == "R":
            out["rows"].append((int(f[2]), [int(v) for v in f[3:]]))
        elif f[0] == "A":  # painted high-water mark, ebq_arena_bytes
            out["arena"].append((int(f[2]), int(f[3])))
        elif f[0] == "P":
            out["prof"].append((f[1], int(f[2]), int(f[3])))
    return out


def macs(dims: dict, n: int, att_output: bool = False) -> int:
    """Multiply-accumulates of one inference of n real tokens (causal conv taps counted exactly);
    att_output (spec 2): one more D x D projection per row and layer."""
    d, e, k, c, layers = dims["dim"], dims["emb_dim"], dims["kernel"], dims["num_labels"], \
        dims["n_layers"]
    proj = 3 if att_output else 2  # query, conv branch (+ attention output) projections
    conv = d * sum(min(t + 1, k) for t in range(n))
    full = n * d * d * proj + 2 * n * n * d + conv
    last = d * d * proj + 2 * n * d + d
    return 2 * n * e * d + (layers - 1) * full + last + c * d


def random_seqs(vocab: int, lengths: list[int], seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[2] + [int(v) for v in rng.integers(5, vocab, n - 1)] for n in lengths]


def markdown(result: dict) -> str:
    """The results page (benchmarks/results/quant_speed.md)."""
    lines = ["# Engine speed: instructions per inference and per MAC", "",
             f"Measured with `python benchmarks/quant_speed.py --write` on {result['where']}: "
             "every guest instruction counts 1, so these are **instructions, not cycles** (a real "
             "M4 adds wait states and multi-cycle loads/MACs). Model: "
             f"`{result['model']}` (D = 128, E = 16, K = 32, 4 layers, seeded random weights; "
             "the count depends on the shape, not on the values). Logits of the portable and "
             "the DSP kernels are bit-identical to `hil/quant/reference.py` on these sequences. "
             "MACs are counted exactly (see the module docstring).", "",
             "| n | MACs | portable instructions | portable /MAC | DSP instructions | DSP /MAC |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['n']} | {r['macs']:,} | {r['portable_instructions']:,} | "
                     f"{r['portable_instr_per_mac']:.2f} | {r['dsp_instructions']:,} | "
                     f"{r['dsp_instr_per_mac']:.2f} |")
    boards = [b for b in ("stm32f4", "nrf52840") if f"{b}_cycles_est" in result["rows"][0]]
    if boards:
        import cycle_model as cm

        lines += ["", "Estimated cycles (DSP kernels) beside the instructions: "
                  "`benchmarks/cycle_model.py` prices every instruction QEMU executed by the "
                  "Cortex-M4 TRM's cycle classes (LDR 2, or 1 pipelined after a load/store; STR 1; "
                  "LDRD/STRD 3; LDM/STM/PUSH/POP 1 + N; multiplies and DSP MACs 1; SDIV/UDIV 7 of "
                  "2..12; a taken branch + 2 cycles of pipeline refill (1..3)) plus flash wait "
                  "states through the board's caches, and ms = cycles / clock. Boards: " +
                  "; ".join(f"**{b}** {cm.BOARDS[b]['what']}" for b in boards) +
                  ". Estimates, not measurements (the DWT counter on a board is the measurement); "
                  "not modelled: address-generation interlocks, bus contention, interrupts.", "",
                  "| n | DSP instructions | " + " | ".join(
                      f"{b} est. cycles | {b} cycles/MAC | {b} est. ms" for b in boards) + " |",
                  "|---:|---:|" + "---:|---:|---:|" * len(boards)]
        for r in result["rows"]:
            lines.append(f"| {r['n']} | {r['dsp_instructions']:,} | " + " | ".join(
                f"{r[b + '_cycles_est']:,} | {r[b + '_cycles_per_mac_est']:.2f} | "
                f"{r[b + '_ms_est']:.2f}" for b in boards) + " |")
    for kind, prof in result["profile"].items():
        if not prof:
            continue
        lines += ["", f"Per kernel, layer 0 at n = {result['profile_n']} ({kind}); the last "
                  "column is instructions per MAC, or per element for the element-wise steps:",
                  "", "| kernel | instructions | MACs / elements | per MAC / element |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {p['kernel']} | {p['instructions']:,} | {p['macs']:,} | "
                  f"{p['instr_per_mac']:.2f} |" for p in prof]
    lines += ["", "Before / after tables of each round of kernel work: "
              "[speed_history.md](speed_history.md) (kept by hand; `--write` does not touch it)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blob", type=Path, help="model blob (default: seeded random model)")
    ap.add_argument("--lengths", type=int, nargs="*", default=[1, 8, 16, 32, 64, 128, 256])
    ap.add_argument("--no-cycles", action="store_true",
                    help="skip the estimated cycles (benchmarks/cycle_model.py, DSP kernels)")
    ap.add_argument("--profile", type=int, help="per-kernel profile of layer 0 at this n")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write", action="store_true",
                    help="also write benchmarks/results/quant_speed.{json,md} (profile n = 128 "
                         "unless --profile)")
    args = ap.parse_args(argv)
    if args.write and args.profile is None:
        args.profile = 128
    if not have_tools():
        print(f"needs {CC} and {QEMU} on PATH", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        blob_path = args.blob
        if blob_path is None:
            from hil.quant.quantize import blob_bytes, random_quant_model

            blob_path = tmpd / "random.bin"
            blob_path.write_bytes(blob_bytes(random_quant_model(num_labels=5, seed=0)))
        blob = read_blob(blob_path.read_bytes())
        dims = blob.meta["dims"]
        lengths = [n for n in args.lengths if n <= dims["max_len"]]
        seqs = random_seqs(dims["vocab_size"], lengths)
        ref = [R.forward(blob, s).tolist() for s in seqs]
        results = {}
        cycles: dict = {}
        for dsp in (False, True):
            res = run(build(blob_path, seqs, tmpd, dsp, args.profile))
            if res["cal"] is None or abs(res["cal"] - 1_000_000 // INSTR_PER_TICK) > 1:
                print(f"warning: calibration read {res['cal']} ticks, expected 25000",
                      file=sys.stderr)
            for (_, logits), want in zip(res["rows"], ref, strict=True):
                if logits != want:
                    kind = "DSP" if dsp else "portable"
                    raise SystemExit(f"{kind} logits differ from the reference: not bit exact")
            results["dsp" if dsp else "portable"] = res
            if dsp and not args.no_cycles:
                import cycle_model as cm

                if cm.have_tools():
                    elf = tmpd / "engine_dsp.elf"
                    plugin = cm.build_plugin(tmpd)
                    cycles = {b: cm.run(elf, b, plugin)["windows"] for b in cm.BOARDS}
        rows = []
        for i, n in enumerate(lengths):
            mac = macs(dims, n, R.has_att_output(blob, 0))
            row = {"n": n, "macs": mac}
            for kind, res in results.items():
                ins = res["rows"][i][0] * INSTR_PER_TICK
                row[f"{kind}_instructions"] = ins
                row[f"{kind}_instr_per_mac"] = round(ins / mac, 3)
            for board, windows in cycles.items():  # estimated, DSP kernels
                import cycle_model as cm

                cyc = windows[i][1]
                row[f"{board}_cycles_est"] = cyc
                row[f"{board}_cycles_per_mac_est"] = round(cyc / mac, 3)
                row[f"{board}_ms_est"] = round(cyc / cm.BOARDS[board]["clock_hz"] * 1e3, 3)
            rows.append(row)
        prof = {kind: [{"kernel": k, "instructions": t * INSTR_PER_TICK, "macs": m,
                        "instr_per_mac": round(t * INSTR_PER_TICK / m, 2)}
                       for k, t, m in res["prof"]] for kind, res in results.items()}
    result = {"model": blob.meta.get("model"), "unit": "instructions (qemu icount)",
              "where": "QEMU mps2-an386 (Cortex-M4), -icount shift=0, engine_qemu.c, -O2",
              "cycles_unit": "cycles (estimated: benchmarks/cycle_model.py, DSP kernels)",
              "rows": rows, "profile_n": args.profile, "profile": prof}
    if args.write:
        out = ROOT / "benchmarks" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "quant_speed.json").write_text(json.dumps(result, indent=1) + "\n")
        (out / "quant_speed.md").write_text(markdown(result))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"model {blob.meta.get('model')}; instructions (qemu icount, mps2-an386 Cortex-M4); "
          "logits bit-exact: portable == DSP == reference")
    print(f"{'n':>5} {'MACs':>11} {'portable':>12} {'/MAC':>6} {'DSP':>12} {'/MAC':>6}")
    for r in rows:
        print(f"{r['n']:>5} {r['macs']:>11,} {r['portable_instructions']:>12,} "
              f"{r['portable_instr_per_mac']:>6.2f} {r['dsp_instructions']:>12,} "
              f"{r['dsp_instr_per_mac']:>6.2f}")
    for kind, lines in prof.items():
        if lines:
            print(f"\nper kernel, layer 0, n = {args.profile} ({kind}):")
            for p in lines:
                print(f"  {p['kernel']:<28} {p['instructions']:>11,} instr "
                      f"{p['macs']:>10,} MAC/elem  {p['instr_per_mac']:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
