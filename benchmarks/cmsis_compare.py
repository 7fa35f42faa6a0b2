"""The engine's DSP kernels beside CMSIS-NN's s8 kernels of the same shapes, on QEMU (Cortex-M4).

Builds one bare-metal image for mps2-an386 with the engine's fully-connected kernel
(ebq_fully_connected_s8, firmware/src/ops/dsp/) and CMSIS-NN's matching int8 kernels with
per-channel requantization: arm_fully_connected_per_channel_s8 (one row at a time, as TFLite
Micro's FULLY_CONNECTED) and arm_convolve_1x1_s8_fast (the same product over many rows, as a
1x1 convolution), for the shapes of the model: the query / conv-branch projections
(rows x 128 -> 128) at several row counts and the embedding projections (rows x 16 -> 128).
Both are compiled with the engine's flags (arm-none-eabi-gcc -std=c11 -O2 -mcpu=cortex-m4
-mthumb -mfloat-abi=soft, -Wall -Wextra; CMSIS-NN without -Werror and -ffreestanding) and timed
under `qemu-system-arm -icount shift=0` (instructions, SysTick x 40) and by the cycle model
(benchmarks/cycle_model.py: estimated STM32F405 cycles). Inputs are symmetric int8 (offsets 0),
multipliers in [2^30, 2^31), as in the engine.

CMSIS-NN is not in a package registry and is not part of this repository: pass a checkout.

    git clone https://github.com/ARM-software/CMSIS-NN /tmp/cmsis-nn
    python benchmarks/cmsis_compare.py --cmsis-nn /tmp/cmsis-nn
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
sys.path.insert(0, str(ROOT / "benchmarks"))

import quant_speed as qs  # noqa: E402

SHAPES = [(128, 128, 128), (32, 128, 128), (8, 128, 128), (1, 128, 128), (128, 16, 128)]
CMSIS_SOURCES = ["FullyConnectedFunctions/arm_fully_connected_per_channel_s8.c",
                 "FullyConnectedFunctions/arm_vector_sum_s8.c",
                 "ConvolutionFunctions/arm_convolve_1x1_s8_fast.c",
                 "ConvolutionFunctions/arm_convolve_get_buffer_sizes_s8.c",
                 "NNSupportFunctions/arm_nn_vec_mat_mult_t_per_ch_s8.c",
                 "NNSupportFunctions/arm_nn_mat_mult_nt_t_s8.c"]

HARNESS = r'''
#include <stdint.h>
#include "arm_nnfunctions.h"
#include "ebq_model.h"
#include "ops/ebq_ops.h"
#include "port.h"

static int8_t g_x[128 * 128], g_w[128 * 128], g_out[128 * 128];
static int32_t g_b[128], g_m[128], g_cm_shift[128], g_ksum[128];
static int8_t g_sh[128];
static uint8_t g_buf[24 * 1024] __attribute__((aligned(8)));

static void semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}
static void put(const char *s) { semihost(0x04u, s); }
static void put_u(uint64_t u)
{
    char buf[24], *p = buf + sizeof(buf) - 1;
    *p = 0;
    do { *--p = (char)('0' + u % 10); u /= 10; } while (u);
    put(p);
}
volatile uint32_t ebq_mark_count;
__attribute__((noinline, noipa)) void ebq_mark_begin(void) { ebq_mark_count += 1u; }
__attribute__((noinline, noipa)) void ebq_mark_end(void) { ebq_mark_count += 2u; }

static void line(const char *who, uint32_t rows, uint32_t in, uint32_t out, uint64_t ticks)
{
    put("K "); put(who); put(" "); put_u(rows); put(" "); put_u(in); put(" "); put_u(out);
    put(" "); put_u(ticks); put("\n");
}

static void run(uint32_t rows, uint32_t in, uint32_t out)
{
    const ebq_rq_params rq = {g_m, g_sh};
    const ebq_fc_params fc = {in, out, g_w, g_b, &rq};
    const ebq_context ctx = {g_buf, sizeof(g_buf)};
    ebq_mark_begin();
    uint64_t t0 = port_cycles();
    ebq_fully_connected_s8(&ctx, &fc, rows, g_x, g_out);
    uint64_t t1 = port_cycles();
    ebq_mark_end();
    line("ebq_fully_connected_s8", rows, in, out, t1 - t0);

    cmsis_nn_context cctx = {g_ksum, (int32_t)sizeof(g_ksum)};
    const cmsis_nn_fc_params fp = {0, 0, 0, {-128, 127}};
    const cmsis_nn_per_channel_quant_params qp = {g_m, g_cm_shift};
    const cmsis_nn_dims in_d = {(int32_t)rows, 1, 1, (int32_t)in};
    const cmsis_nn_dims f_d = {(int32_t)in, 1, 1, (int32_t)out};
    const cmsis_nn_dims b_d = {1, 1, 1, (int32_t)out};
    const cmsis_nn_dims o_d = {(int32_t)rows, 1, 1, (int32_t)out};
    arm_vector_sum_s8(g_ksum, (int32_t)in, (int32_t)out, g_w, 0, 0, g_b);
    ebq_mark_begin();
    t0 = port_cycles();
    arm_fully_connected_per_channel_s8(&cctx, &fp, &qp, &in_d, g_x, &f_d, g_w, &b_d, g_b, &o_d,
                                       g_out);
    t1 = port_cycles();
    ebq_mark_end();
    line("arm_fully_connected_per_channel_s8", rows, in, out, t1 - t0);

    const cmsis_nn_conv_params cp = {0, 0, {1, 1}, {0, 0}, {1, 1}, {-128, 127}};
    const cmsis_nn_dims ci = {1, 1, (int32_t)rows, (int32_t)in};
    const cmsis_nn_dims cf = {(int32_t)out, 1, 1, (int32_t)in};
    const cmsis_nn_dims co = {1, 1, (int32_t)rows, (int32_t)out};
    cmsis_nn_context c2 = {g_buf, (int32_t)sizeof(g_buf)};
    if (arm_convolve_1x1_s8_fast_get_buffer_size(&ci) <= (int32_t)sizeof(g_buf)) {
        ebq_mark_begin();
        t0 = port_cycles();
        arm_convolve_1x1_s8_fast(&c2, &cp, &qp, &ci, g_x, &cf, g_w, &b_d, g_b, &co, g_out);
        t1 = port_cycles();
        ebq_mark_end();
        line("arm_convolve_1x1_s8_fast", rows, in, out, t1 - t0);
    }
}

int main(void)
{
    port_init();
    uint32_t s = 12345u;
    for (uint32_t i = 0; i < sizeof(g_x); i++) {
        s = s * 1103515245u + 12345u;
        g_x[i] = (int8_t)(s >> 24);
        s = s * 1103515245u + 12345u;
        g_w[i] = (int8_t)((int32_t)(s >> 24) % 127);
    }
    for (uint32_t o = 0; o < 128; o++) {
        g_b[o] = (int32_t)(o * 977u) - 60000;
        g_m[o] = (int32_t)(0x40000000u + o * 1234567u);
        g_sh[o] = (int8_t)(8 + o % 4);        /* engine: >> (31 + sh) */
        g_cm_shift[o] = -(int32_t)(8 + o % 4); /* CMSIS-NN: << shift, negative = right */
    }
SHAPES
    put("ENGINE-QEMU PASS\n");
    const uint32_t block[2] = {0x20026u, 0};
    semihost(0x20u, block);
    for (;;) {
    }
}
'''


def build(cmsis: Path, out_dir: Path) -> Path:
    calls = "\n".join(f"    run({r}u, {i}u, {o}u);" for r, i, o in SHAPES)
    (out_dir / "cmsis_compare.c").write_text(HARNESS.replace("SHAPES", calls))
    base = ["-std=c11", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-O2",
            "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra",
            f"-I{FW / 'include'}", f"-I{FW / 'src'}", f"-I{FW / 'ports' / 'mps2-an386'}",
            f"-I{FW / 'ports' / 'cortex-m'}", f"-I{cmsis / 'Include'}"]
    objs = []
    engine = [out_dir / "cmsis_compare.c", *qs.kernel_sources(True),
              FW / "ports" / "cortex-m" / "cortexm.c", FW / "ports" / "mps2-an386" / "board.c"]
    for i, src in enumerate(engine + [cmsis / "Source" / s for s in CMSIS_SOURCES]):
        obj = out_dir / f"{i}.o"
        werror = ["-Werror", "-Wshadow"] if i < len(engine) else []
        p = subprocess.run(["arm-none-eabi-gcc", *base, *werror, "-c", str(src), "-o", str(obj)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"build failed for {src}:\n{p.stderr[-3000:]}")
        objs.append(str(obj))
    elf = out_dir / "cmsis_compare.elf"
    p = subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft",
                        *objs, "-nostartfiles", "-specs=nano.specs", "-Wl,--gc-sections",
                        f"-L{FW / 'ports' / 'cortex-m'}",
                        f"-T{FW / 'ports' / 'mps2-an386' / 'link.ld'}", "-Wl,--start-group",
                        "-lc_nano", "-lgcc", "-Wl,--end-group", "-o", str(elf)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"link failed:\n{p.stderr[-3000:]}")
    return elf


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cmsis-nn", type=Path, help="a CMSIS-NN checkout (Include/, Source/)")
    args = ap.parse_args(argv)
    if args.cmsis_nn is None or not (args.cmsis_nn / "Include" / "arm_nnfunctions.h").exists():
        print("CMSIS-NN not found: pass --cmsis-nn DIR, a checkout of "
              "https://github.com/ARM-software/CMSIS-NN (not in any package registry)",
              file=sys.stderr)
        return 2
    if not qs.have_tools():
        print(f"needs {qs.CC} and {qs.QEMU} on PATH", file=sys.stderr)
        return 2
    import cycle_model as cm

    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        elf = build(args.cmsis_nn.resolve(), tmpd)
        p = subprocess.run([qs.QEMU, "-M", "mps2-an386", "-display", "none", "-monitor", "none",
                            "-serial", "null", "-semihosting-config", "enable=on,target=native",
                            "-icount", "shift=0", "-kernel", str(elf)],
                           capture_output=True, text=True, timeout=300)
        rows = [line.split()[1:] for line in (p.stdout + p.stderr).splitlines()
                if line.startswith("K ")]
        cycles = cm.run(elf, "stm32f4", cm.build_plugin(tmpd))["windows"] \
            if cm.have_tools() else [None] * len(rows)
    print("instructions (qemu icount, Cortex-M4) and estimated STM32F405 cycles "
          "(benchmarks/cycle_model.py) per MAC, same shapes, -O2")
    print(f"{'kernel':<36} {'rows x in -> out':>17} {'instructions':>12} {'/MAC':>6} "
          f"{'est. cycles':>12} {'/MAC':>6}")
    for (name, r, i, o, ticks), cyc in zip(rows, cycles, strict=True):
        mac = int(r) * int(i) * int(o)
        ins = int(ticks) * qs.INSTR_PER_TICK
        c = cyc[1] if cyc else 0
        print(f"{name:<36} {r + ' x ' + i + ' -> ' + o:>17} {ins:>12,} {ins / mac:>6.2f} "
              f"{c:>12,} {c / mac:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
