"""Flash and RAM of the int8 engine: blob bytes by kind, engine code, arena per sequence length.

Flash = the model blob (weights, quantization parameters, tables, tokenizer vocab, metadata) +
the engine's code and constants (model.c, forward.c, ops, blob.c, tokenizer.c compiled for
Cortex-M4 at -Os with the DSP kernels, from arm-none-eabi-size). RAM = the arena the forward
pass needs for n tokens (ebq_arena_bytes, exact: the native test checks the arena's peak equals
it on every sentence) + the model view (sizeof(struct ebq_model)). Targets: arena <= 96 KiB at
n = 256; flash + peak RAM <= 600 kB.

    python benchmarks/quant_memory.py [--blob hil/models/nlu_scenario/model.bin]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
sys.path.insert(0, str(ROOT))

from hil.quant.blob import read_blob  # noqa: E402

LENGTHS = [16, 32, 64, 128, 256]
MICRO = 4  # EBQ_MICRO in firmware/src/ops/ebq_ops.h


def block_rows(n: int) -> int:
    """EBQ_BLOCK_ROWS(n) in firmware/src/ops/ebq_ops.h."""
    return 32 if n <= 128 else 16


def a8(v: int) -> int:
    return (v + 7) // 8 * 8


def arena_bytes(dim: int, n: int) -> int:
    """firmware/src/forward.c ebq_arena_bytes (docs/int8-spec.md section 4)."""
    nk, b = (n + 15) // 16 * 16, block_rows(n)  # EBQ_KEYS_PAD, EBQ_BLOCK_ROWS
    return 2 * a8(n * dim) + a8(16 * n + 2 * (b + 4) * nk) + a8(4 * b * dim) \
        + a8(4 * MICRO * dim) + a8(b * dim) + a8(2 * MICRO * dim)


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blob", type=Path, action="append",
                    help="model blob(s) (default: every hil/models/*/model.bin)")
    ap.add_argument("--json", action="store_true")
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
        arena = {n: arena_bytes(dims["dim"], n) for n in lens}
        view = code["model_view"] if code else 0
        ram_peak = arena[256] + view  # a 256-token model's worst case
        ram_model = arena[dims["max_len"]] + view  # this model's worst case
        report.append({"blob": str(bp.relative_to(ROOT) if bp.is_relative_to(ROOT) else bp),
                       "max_len": dims["max_len"], "flash_blob": flash, "engine_code": code,
                       "arena": arena, "flash_total": flash["total"] + code_flash,
                       "ram_peak_at_256": ram_peak, "ram_peak_at_max_len": ram_model,
                       "flash_plus_ram": flash["total"] + code_flash + ram_peak})
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
        print("  arena bytes: " + ", ".join(f"n={n}: {v:,}" for n, v in r["arena"].items()))
        print(f"  peak RAM of this model (arena at max_len {r['max_len']} + view): "
              f"{r['ram_peak_at_max_len']:,} B")
        print(f"  flash total {r['flash_total']:,} B; peak RAM (arena n=256 + view) "
              f"{r['ram_peak_at_256']:,} B; flash + RAM {r['flash_plus_ram']:,} B "
              f"(target <= 600,000; arena at 256 {r['arena'][256]:,} <= 98,304)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
