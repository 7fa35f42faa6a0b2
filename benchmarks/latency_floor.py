"""How low one inference can go on a Cortex-M4: lower bounds on its cycles beside today's estimate.

Why: issue targets such as "a 32-token sentence on the nRF52840 at 64 MHz in <= 100 ms" are
only worth chasing if the chip can reach them with the model's multiply-accumulates. This tool
splits the estimated cycles of one inference (benchmarks/cycle_model.py: the Cortex-M4 timing
model applied to a QEMU run of the DSP engine, windowed on the inference) into

* dense MAC kernels (`ebq_mm*`, `wsum*`, `ebq_mv*`: projections, scores, weighted sums),
* the depthwise causal convolution (`conv_groups`, `ebq_depthwise_conv_causal_s8`),
* everything else (embedding, RMSNorm, softmax, requantization, widening, glue),

and sets them against two floors:

1. **SMLAD floor:** the M4's widest MAC is SMLAD, 2 MACs in 1 cycle: cycles >= MACs / 2.
2. **Register-tile floor** for the dense MACs: a kernel keeping an a x b tile of int32 sums in
   registers must, per 2 inputs (one SMLAD per sum), load a words of rows and b words of weights
   (int16 pairs; int8 words unpacked by SXTB16 cost more) at >= 1 cycle per word (LDM is 1 + N
   cycles for N words; a single LDR 2). With 14 usable registers (r0-r12, lr) and at least one
   pointer: a*b + a + b <= 13, so a*b <= 6 (2 x 3 or 1 x 6) and a + b >= 5: per 12 MACs
   >= 6 + 5 cycles, i.e. >= 11/12 = 0.917 cycles/MAC. (The engine's 2 x 3 kernel, two
   pointers and LDRD for the weights, is 26/24 = 1.083 by the same count.) The convolution
   keeps its SMLAD floor (a generous bound); the rest keeps its estimated cycles as today.
3. **Instruction floor** for the dense MACs (the issue's instructions-per-MAC goal): per step of
   2k inputs an a x b tile takes a*b*k SMLADs and at least one load instruction (one LDM of
   both operands' words, were they interleaved in one buffer), with a*b sums and (a + b)*k
   operand words in 13 registers (one pointer): a*b + (a + b)*k <= 13 allows at most
   a*b*k = 8 (2 x 2, k = 2), so >= 0.5 + 1/16 = 0.5625 instructions per MAC. (The engine's 2 x 2
   kernel, two pointers and two LDMs, is 0.625; its 2 x 3, 0.667.) The convolution keeps 0.5
   (SMLAD alone), the rest its instructions as today.

The floors are bounds on kernels nobody has written, not targets met: they say how much of a gap
kernel work could close at best. Estimates, not measurements (docs/design.md contract 4).

    python benchmarks/latency_floor.py                        # shipped nlu_scenario, 32 tokens
    python benchmarks/latency_floor.py --blob random --n 32 128 --board stm32f4
    python benchmarks/latency_floor.py --blob random --no-att-output     # the spec-1 variant
    python benchmarks/latency_floor.py --write                # results/latency_floor.{md,json}
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cycle_model as cm  # noqa: E402
import quant_speed as qs  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TILE_FLOOR = 11 / 12  # cycles per dense MAC (module docstring, floor 2)
INSTR_FLOOR = 0.5 + 1 / 16  # instructions per dense MAC (module docstring, floor 3)
DENSE = ("ebq_mm", "wsum", "ebq_mv")
CONV = ("conv_groups", "conv_channel", "conv_direct", "conv_direct_rows", "conv_short",
        "series4", "ebq_depthwise_conv_causal_s8")


def conv_macs(dims: dict, n: int) -> int:
    """The causal depthwise convolution's MACs (taps over the zero padding skipped), every layer
    but the last (only its [CLS] row, the first: one tap per channel), as quant_speed.macs."""
    d, k = dims["dim"], dims["kernel"]
    return d * sum(min(t + 1, k) for t in range(n)) * (dims["n_layers"] - 1) + d


def split(profile: dict[str, list[int]], column: int = 1) -> dict[str, int]:
    """Estimated cycles (column 1) or instructions (column 0) of the window by kind of work."""
    out = {"dense": 0, "conv": 0, "rest": 0}
    for name, counts in profile.items():
        kind = "dense" if name.startswith(DENSE) else "conv" if name in CONV else "rest"
        out[kind] += counts[column]
    return out


def floors(blob: Path, lengths: list[int], board: str, parsed: Any = None) -> list[dict]:
    """One row per length: MACs, estimated cycles by kind, and the two floors (cycles, ms).
    `parsed`: the blob already read (hil.quant.blob.read_blob), if the caller has it."""
    from hil.quant.blob import read_blob
    from hil.quant.reference import has_att_output

    parsed = parsed or read_blob(blob.read_bytes())
    dims, att_output = parsed.meta["dims"], has_att_output(parsed, 0)
    clock = cm.BOARDS[board]["clock_hz"]
    if max(lengths) > dims["max_len"]:
        raise SystemExit(f"{blob.name}: max_len {dims['max_len']} < {max(lengths)} tokens")
    rows = []
    for n in lengths:  # one QEMU run per length: the profile is summed over its windows
        seqs = qs.random_seqs(dims["vocab_size"], [n])
        res = cm.estimate(blob, seqs, [board], profile=True)[board]
        ins, cycles = res["windows"][0][0], res["windows"][0][1]
        kinds = split(res["profile"])
        kinds["rest"] += cycles - sum(kinds.values())  # data-read waits are not per function
        macs = qs.macs(dims, n, att_output)
        cmacs = conv_macs(dims, n)
        tile = TILE_FLOOR * (macs - cmacs) + cmacs / 2 + kinds["rest"]
        ikinds = split(res["profile"], 0)
        ifloor = INSTR_FLOOR * (macs - cmacs) + cmacs / 2 + ins - ikinds["dense"] - ikinds["conv"]
        rows.append({"n": n, "macs": macs, "conv_macs": cmacs, "instructions": ins,
                     "cycles_est": cycles, **{f"{k}_cycles": v for k, v in kinds.items()},
                     "smlad_floor": macs // 2, "tile_floor_with_rest": round(tile),
                     "ms_est": cycles / clock * 1e3, "ms_smlad_floor": macs / 2 / clock * 1e3,
                     "ms_tile_floor_with_rest": tile / clock * 1e3,
                     "ms_tile_floor_dense_only": TILE_FLOOR * (macs - cmacs) / clock * 1e3,
                     **{f"{k}_instructions": v for k, v in ikinds.items()},
                     "instr_per_mac": ins / macs, "instr_floor_with_rest_per_mac": ifloor / macs,
                     "cycles_per_mac": cycles / macs,
                     "tile_floor_with_rest_per_mac": tile / macs})
    return rows


def markdown(result: dict) -> str:
    lines = ["# Lower bounds on one inference's cycles (Cortex-M4)", "",
             f"`{result['command']}` ({result['board']}: "
             f"{cm.BOARDS[result['board']]['what']}; model `{result['model']}`, "
             f"{'spec 2 (att_output)' if result['att_output'] else 'spec 1'}; DSP engine on "
             "QEMU mps2-an386, random token ids). Estimated cycles by kind of work, then the "
             "floors of the module docstring: SMLAD = MACs / 2 cycles; tile = dense MACs x "
             "11/12 + convolution MACs / 2 + the rest as estimated today. Estimates, not "
             "measurements.", "",
             "| n | MACs | est. cycles | dense | conv | rest | est. ms | SMLAD floor ms | "
             "dense at tile floor ms | tile floor + rest ms |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['n']} | {r['macs']:,} | {r['cycles_est']:,} | "
                     f"{r['dense_cycles']:,} | {r['conv_cycles']:,} | {r['rest_cycles']:,} | "
                     f"{r['ms_est']:.1f} | {r['ms_smlad_floor']:.1f} | "
                     f"{r['ms_tile_floor_dense_only']:.1f} | {r['ms_tile_floor_with_rest']:.1f} |")
    lines += ["", "Per MAC, today and at the floors with today's rest (floor 3 for instructions: "
              "dense MACs x 0.5625 + convolution MACs x 0.5 + the rest's instructions):", "",
              "| n | instructions | dense | conv | rest | instr/MAC | instr floor + rest /MAC | "
              "est. cycles/MAC | tile floor + rest /MAC |", "|---:" * 9 + "|"]
    for r in result["rows"]:
        lines.append(f"| {r['n']} | {r['instructions']:,} | {r['dense_instructions']:,} | "
                     f"{r['conv_instructions']:,} | "
                     f"{r['instructions'] - r['dense_instructions'] - r['conv_instructions']:,} | "
                     f"{r['instr_per_mac']:.3f} | {r['instr_floor_with_rest_per_mac']:.3f} | "
                     f"{r['cycles_per_mac']:.3f} | {r['tile_floor_with_rest_per_mac']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blob", type=Path, default=ROOT / "hil" / "models" / "nlu_scenario" /
                    "model.bin", help="model blob, or 'random': a seeded random spec-2 model "
                                      "(max_len 256)")
    ap.add_argument("--no-att-output", action="store_true",
                    help="with --blob random: the variant without att_output (spec 1)")
    ap.add_argument("--n", type=int, nargs="+", default=[32])
    ap.add_argument("--board", default="nrf52840", choices=sorted(cm.BOARDS))
    ap.add_argument("--write", action="store_true", help="benchmarks/results/latency_floor.*")
    args = ap.parse_args(argv)
    if not cm.have_tools():
        print("needs arm-none-eabi-gcc, qemu-system-arm (with plugins) and gcc", file=sys.stderr)
        return 2
    from hil.quant.blob import read_blob
    from hil.quant.reference import has_att_output

    with tempfile.TemporaryDirectory() as tmp:
        blob = args.blob
        if str(blob) == "random":
            from hil.quant.quantize import blob_bytes, random_quant_model

            noatt = args.no_att_output
            blob = Path(tmp) / ("random-seed0" + ("-no-att-output" if noatt else ""))
            blob.write_bytes(blob_bytes(random_quant_model(
                num_labels=5, seed=0, att_output=not noatt, segments=0 if noatt else 3)))
        parsed = read_blob(blob.read_bytes())
        rows = floors(blob, args.n, args.board, parsed)
        att = has_att_output(parsed, 0)
    model = blob.parent.name if blob.name == "model.bin" else blob.name
    command = ("python benchmarks/latency_floor.py " + " ".join(
        argv if argv is not None else sys.argv[1:])).strip()
    result = {"command": command, "board": args.board, "model": model, "att_output": att,
              "rows": rows}
    text = markdown(result)
    print(text)
    if args.write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "latency_floor.md").write_text(text)
        (RESULTS / "latency_floor.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
