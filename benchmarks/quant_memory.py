"""Flash and RAM of the int8 engine: blob bytes by kind, engine code, arena per sequence length.

Flash = the model blob (weights, quantization parameters, tables, tokenizer vocab, metadata) +
the engine's code and constants (model.c, forward.c, ops, blob.c, tokenizer.c compiled for
Cortex-M4 at -Os with the DSP kernels, from arm-none-eabi-size). RAM = the arena the forward
pass needs for n tokens + the model view (sizeof(struct ebq_model)).

The arena is measured, not only computed: firmware/tests/engine_qemu.c paints its arena (0xA5)
before each inference under QEMU (mps2-an386, the same harness as benchmarks/quant_speed.py) and
reports the offset past the last byte the engine wrote (the painted high-water mark); this is
printed next to the formula (ebq_arena_bytes, docs/int8-spec.md section 4, mirrored by
arena_bytes() below), for the DSP kernels (the Arm boards' default) and the portable ones. The
painted mark can be below the formula (a buffer sized for the worst case is not always filled)
but never above it; the script fails if it is. Targets (issue #20, DSP): <= 12 KiB for n <= 16,
<= 48 KiB at n = 128, <= 80 KiB at n = 256; flash + peak RAM <= 600 kB.

    python benchmarks/quant_memory.py [--blob hil/models/nlu_scenario/model.bin] [--no-qemu]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
sys.path.insert(0, str(ROOT))

from hil.quant.blob import read_blob  # noqa: E402

LENGTHS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
MICRO = 4  # EBQ_MICRO in firmware/src/ops/ebq_ops.h


def block_rows(n: int) -> int:
    """EBQ_BLOCK_ROWS(n) in firmware/src/ops/ebq_ops.h."""
    return min((n + 3) // 4 * 4, 28) if n <= 128 else 16


def a8(v: int) -> int:
    return (v + 7) // 8 * 8


def arena_bytes(dim: int, n: int, dsp: bool = True, emb_dim: int = 16,
                att_output: bool = False, segment: bool = False) -> int:
    """firmware/src/forward.c ebq_arena_bytes (docs/int8-spec.md section 4): x and y, then the
    largest kernel buffer, ebq_layer_rows_s8_get_buffer_size of the kernel set (spec 2:
    att_output's phase 3 in the DSP block, the segment embedding's buffer)."""
    d, u, nk = dim, MICRO, (n + 7) // 8 * 8  # EBQ_KEYS_PAD
    pc = 4 * u * d + 2 * u * d  # ebq_project_combine_s8_get_buffer_size
    att = 2 * u * d + 16 * n + 2 * (u + 4) * nk  # the attention's, for U queries
    work = a8(4 * u * d) + a8(max(att, pc))  # ebq_layer_rows_generic_s8 (portable)
    if dsp:  # dsp/layer_rows_s8.c fused_bytes
        b = block_rows(n)
        p1, p2 = 8 * d + 16 * n, 4 * d + max(2 * b * d + 4 * d, pc)
        fused = a8(2 * b * nk) + a8(8 * nk) + a8(max(p1, p2))
        chunk = 8 if n <= 16 and b > 8 else b  # dsp/layer_rows_s8.c ao_chunk
        work = max(work, fused, 12 * d + 4 * chunk * d if att_output else 0)  # ao_bytes
    emb = (a8(u * emb_dim) + 2 * u * d * 4 + 2 * u * emb_dim if segment  # ebq_embedding_seg_s8
           else 2 * u * emb_dim * 2 + u * d)
    work = max(work, 2 * u * d, emb)  # the fc and embedding buffers
    return 2 * a8(n * d) + a8(work)


def spec_parts(blob: Any) -> dict[str, bool]:
    """arena_bytes' spec-2 switches for a parsed blob, by the reference's own rules: a segment
    bias in every spec-2 model, att_output where layer 0 has it."""
    from hil.quant.reference import dims_of, has_att_output

    return {"att_output": has_att_output(blob, 0), "segment": dims_of(blob)["version"] >= 2}


def painted_arena(blob_path: Path, lengths: list[int]) -> dict[str, dict[int, int]] | None:
    """The arena's painted high-water mark per n under QEMU, {"dsp": {n: bytes}, "portable"};
    also checks that ebq_arena_bytes on the device equals arena_bytes() here."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import quant_speed as qs

    if not qs.have_tools():
        return None
    blob = read_blob(blob_path.read_bytes())
    dims, spec2 = blob.meta["dims"], spec_parts(blob)
    seqs = qs.random_seqs(dims["vocab_size"], lengths, seed=3)
    out: dict[str, dict[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dsp in (True, False):
            kind = "dsp" if dsp else "portable"
            res = qs.run(qs.build(blob_path, seqs, Path(tmp) / kind, dsp))
            out[kind] = {}
            for n, (painted, formula) in zip(lengths, res["arena"], strict=True):
                want = arena_bytes(dims["dim"], n, dsp, dims["emb_dim"], **spec2)
                if formula != want or painted > formula:
                    raise SystemExit(f"{kind} n={n}: device ebq_arena_bytes {formula}, formula "
                                     f"{want}, painted {painted}")
                out[kind][n] = painted
    return out


def blob_breakdown(blob_path: Path) -> dict[str, int]:
    b = read_blob(blob_path.read_bytes())
    kinds = {"weights": 0, "quant_params": 0, "tables": 0, "vocab": 0, "meta": 0}
    for name, t in b.tensors.items():
        n = int(t.nbytes)
        if name.startswith("tok."):
            kinds["vocab"] += n
        elif name == "meta.json" or name.startswith("cfg."):
            kinds["meta"] += n
        elif name.startswith("exp.") or name.endswith(".silu"):
            kinds["tables"] += n
        elif name.endswith((".w",)) or name in ("emb.tok", "emb.pos"):
            kinds["weights"] += n
        else:
            kinds["quant_params"] += n
    kinds["container"] = blob_path.stat().st_size - sum(kinds.values())  # table, padding
    kinds["total"] = blob_path.stat().st_size
    return kinds


def engine_code_bytes() -> dict[str, int] | None:
    """.text + .rodata + .data of the engine for Cortex-M4 -Os (DSP kernels), and the model view."""
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        return None
    srcs = [FW / "src" / f for f in ("model.c", "forward.c", "blob.c", "tokenizer.c")]
    for p in sorted((FW / "src" / "ops").glob("*.c")):
        twin = FW / "src" / "ops" / "dsp" / p.name
        srcs.append(twin if twin.exists() else p)
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.c"
        probe.write_text('#include "ebq_model.h"\nstruct ebq_model ebq_probe_model;\n')
        objs = []
        for i, s in enumerate([*srcs, probe]):
            o = Path(tmp) / f"{i}.o"
            subprocess.run([cc, "-std=c11", "-mcpu=cortex-m4", "-mthumb", "-Os",
                            "-ffunction-sections", "-ffreestanding", f"-I{FW / 'include'}",
                            f"-I{FW / 'src'}", "-c", str(s), "-o", str(o)], check=True)
            objs.append(o)
        out = subprocess.run(["arm-none-eabi-size", "-t", *map(str, objs[:-1])], check=True,
                             capture_output=True, text=True).stdout.splitlines()[-1].split()
        nm = subprocess.run(["arm-none-eabi-nm", "-S", str(objs[-1])], check=True,
                            capture_output=True, text=True).stdout
        model = next(int(line.split()[1], 16) for line in nm.splitlines()
                     if line.endswith("ebq_probe_model"))
    return {"text_rodata": int(out[0]), "data": int(out[1]), "bss": int(out[2]),
            "model_view": model}


def write_results(report: list[dict]) -> None:
    """benchmarks/results/quant_memory.{json,md}: the arena per n, formula and painted."""
    out = ROOT / "benchmarks" / "results"
    (out / "quant_memory.json").write_text(json.dumps(report, indent=1) + "\n")
    r = report[0]
    lens = list(r["arena"])
    painted = r["arena_painted"] or {}
    lines = ["# Engine memory: the arena per sequence length", "",
             "Measured with `python benchmarks/quant_memory.py --write`: the formula is "
             "`ebq_arena_bytes` (docs/int8-spec.md section 4); *painted* is the high-water mark "
             "of the arena painted with 0xA5 before each inference under QEMU (mps2-an386, "
             "firmware/tests/engine_qemu.c). Targets (DSP kernels): <= 12 KiB for n <= 16, "
             "<= 48 KiB (49,152) at 128, <= 80 KiB (81,920) at 256.", "",
             f"Model `{r['blob']}` (D = 128; the arena depends on D and n only).", "",
             "| n | DSP formula | DSP painted | portable formula | portable painted |",
             "|---:|---:|---:|---:|---:|"]
    for n in lens:
        dp = painted.get("dsp", {}).get(n)
        pp = painted.get("portable", {}).get(n)
        lines.append(f"| {n} | {r['arena'][n]:,} | {'' if dp is None else f'{dp:,}'} | "
                     f"{r['arena_portable'][n]:,} | {'' if pp is None else f'{pp:,}'} |")
    c = r["engine_code"]
    if c:
        lines += ["", f"Engine code (Cortex-M4 -Os, DSP kernels): {c['text_rodata']:,} B text + "
                  f"rodata; model view {c['model_view']:,} B RAM."]
    (out / "quant_memory.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blob", type=Path, action="append",
                    help="model blob(s) (default: every hil/models/*/model.bin)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-qemu", action="store_true", help="skip painting the arena on QEMU")
    ap.add_argument("--write", action="store_true",
                    help="also write benchmarks/results/quant_memory.{json,md}")
    args = ap.parse_args(argv)
    blobs = args.blob or sorted((ROOT / "hil" / "models").glob("*/model.bin"))
    code = engine_code_bytes()
    report = []
    for bp in blobs:
        b = read_blob(bp.read_bytes())
        dims = b.meta["dims"]
        flash = blob_breakdown(bp)
        code_flash = (code["text_rodata"] + code["data"]) if code else 0
        lens = sorted(set(LENGTHS + [dims["max_len"]]))
        spec2 = spec_parts(b)
        arena = {n: arena_bytes(dims["dim"], n, True, dims["emb_dim"], **spec2) for n in lens}
        arena_portable = {n: arena_bytes(dims["dim"], n, False, dims["emb_dim"], **spec2)
                          for n in lens}
        painted = None if args.no_qemu else painted_arena(bp, [n for n in lens
                                                               if n <= dims["max_len"]])
        view = code["model_view"] if code else 0
        ram_peak = arena[256] + view  # a 256-token model's worst case
        ram_model = arena[dims["max_len"]] + view  # this model's worst case
        report.append({"blob": str(bp.relative_to(ROOT) if bp.is_relative_to(ROOT) else bp),
                       "max_len": dims["max_len"], "flash_blob": flash, "engine_code": code,
                       "arena": arena, "arena_portable": arena_portable,
                       "arena_painted": painted, "flash_total": flash["total"] + code_flash,
                       "ram_peak_at_256": ram_peak, "ram_peak_at_max_len": ram_model,
                       "flash_plus_ram": flash["total"] + code_flash + ram_peak})
    if args.write:
        write_results(report)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    for r in report:
        f = r["flash_blob"]
        print(f"{r['blob']} (max_len {r['max_len']})")
        print("  blob: " + ", ".join(f"{k} {v:,}" for k, v in f.items()) + " bytes")
        if r["engine_code"]:
            c = r["engine_code"]
            print(f"  engine code (Cortex-M4 -Os, DSP kernels): {c['text_rodata']:,} B text+rodata,"
                  f" {c['data']:,} B data; model view {c['model_view']:,} B RAM")
        print("  arena bytes (formula, DSP kernels): " + ", ".join(
            f"n={n}: {v:,}" for n, v in r["arena"].items()))
        print("  arena bytes (formula, portable):    " + ", ".join(
            f"n={n}: {v:,}" for n, v in r["arena_portable"].items()))
        for kind, marks in (r["arena_painted"] or {}).items():
            print(f"  arena painted on QEMU ({kind}): " + ", ".join(
                f"n={n}: {v:,}" for n, v in marks.items()))
        print(f"  peak RAM of this model (arena at max_len {r['max_len']} + view): "
              f"{r['ram_peak_at_max_len']:,} B")
        print(f"  flash total {r['flash_total']:,} B; peak RAM (arena n=256 + view) "
              f"{r['ram_peak_at_256']:,} B; flash + RAM {r['flash_plus_ram']:,} B "
              f"(target <= 600,000; arena at 256 {r['arena'][256]:,} <= 81,920)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
