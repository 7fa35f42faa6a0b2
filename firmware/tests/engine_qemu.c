/*
 * engine_qemu.c - bare-metal engine test and benchmark for mps2-an386 under QEMU.
 *
 * Links the engine, the shared Cortex-M startup (ports/cortex-m) and the mps2-an386 board file,
 * the model blob (app/model_blob.S) and a generated header of token-id sequences
 * (engine_qemu_ids.h: EBQ_N_SEQ, ebq_seq_off[EBQ_N_SEQ + 1], ebq_seq_ids[]). For each sequence
 * it prints, through semihosting,  "R <i> <ticks> <logit 0> ..." and "A <i> <painted bytes>
 * <ebq_arena_bytes>" (the arena is painted before each call; the painted high-water mark is the
 * offset past the last byte the engine wrote), then "ENGINE-QEMU PASS" and
 * exits with status 0 (semihosting SYS_EXIT_EXTENDED); a load error exits 1.
 *
 * Timing (benchmarks/quant_speed.py): run QEMU with -icount shift=0, so one guest instruction
 * is one ns of virtual time and SysTick (25 MHz core clock) ticks once per 40 instructions.
 * A calibration loop of known instruction count ("CAL <instructions> <ticks>") checks that.
 */
#include <stddef.h>
#include <stdint.h>

#include "ebq.h"
#include "ebq_model.h"
#include "engine_qemu_ids.h"
#include "ops/ebq_ops.h"
#include "port.h"

extern const uint8_t ebq_blob_start[], ebq_blob_end[];

static ebq_model g_model;
static uint8_t g_arena[96 * 1024] __attribute__((aligned(8)));
#define EBQ_PAINT 0xA5u /* the arena's paint: bytes never written keep it */

static void semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}

static void put(const char *s)
{
    semihost(0x04u, s); /* SYS_WRITE0 */
}

static void put_int(int64_t v)
{
    char buf[24];
    char *p = buf + sizeof(buf) - 1;
    *p = 0;
    const int neg = v < 0;
    uint64_t u = neg ? (uint64_t)(-v) : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg)
        *--p = '-';
    put(p);
}

static void finish(uint32_t code)
{
    const uint32_t block[2] = {0x20026u, code}; /* ADP_Stopped_ApplicationExit, status */
    semihost(0x20u, block);                      /* SYS_EXIT_EXTENDED */
    for (;;) {
    }
}

/* Markers around each measured ebq_forward for benchmarks/cycle_model.py (its QEMU plugin
 * counts from the start of ebq_mark_begin to the start of ebq_mark_end); distinct bodies so
 * that no optimisation folds them into one. */
volatile uint32_t ebq_mark_count;
__attribute__((noinline, noipa)) void ebq_mark_begin(void)
{
    ebq_mark_count += 1u;
}
__attribute__((noinline, noipa)) void ebq_mark_end(void)
{
    ebq_mark_count += 2u;
}

/* 4 instructions per iteration (subs, bne + 2 nops): calibrates ticks -> instructions. */
static void calibrate(uint32_t iters)
{
    __asm volatile("1: nop\n nop\n subs %0, %0, #1\n bne 1b" : "+r"(iters)::"cc");
}

#ifdef EBQ_PROFILE
/* Per-kernel instruction counts on layer 0 of the loaded model at EBQ_PROFILE tokens:
 * "P <kernel> <ticks> <macs>" (ticks x 40 = instructions under -icount shift=0). */
static void prof_line(const char *name, uint64_t ticks, uint64_t macs)
{
    put("P ");
    put(name);
    put(" ");
    put_int((int64_t)ticks);
    put(" ");
    put_int((int64_t)macs);
    put("\n");
}

static void profile(const ebq_model *m)
{
    const uint32_t n = EBQ_PROFILE, d = m->dim;
    static uint16_t ids[EBQ_PROFILE];
    for (uint32_t t = 0; t < n; t++)
        ids[t] = (uint16_t)(5u + (t * 37u) % (m->vocab_size - 5u));
    /* The arena as ebq_forward lays it out (forward.c arena_sizes; EBQ_PROFILE is a multiple of
     * 8, so no padding): x, y, then work = the kernels' scratch. */
    int8_t *x = (int8_t *)g_arena, *y = x + n * d;
    const size_t work_bytes = ebq_arena_bytes(m, n) - 2u * n * d;
    const ebq_context work = {y + n * d, work_bytes};
    const ebq_layer *w = &m->layers[0];
    const ebq_fc_params q = {d, d, w->q_w, w->q_b, &w->q_rq};
    const ebq_layer_rows_params lr = {
        {n, d, y, ids, &w->sm_rq, m->exp_hi, m->exp_lo},
        {d, m->kernel, w->conv_w, w->conv_b, &w->conv_rq, w->silu},
        {{d, d, w->proj_w, w->proj_b, NULL}, &w->out_a, &w->out_b},
        {{d, d, w->ao_w, w->ao_b, NULL}, &w->ctx_rq}};
    uint64_t t0 = port_cycles();
    for (uint32_t t = 0; t < n; t += EBQ_MICRO)
        ebq_embedding_s8(&work, m, ids, t, EBQ_MICRO, x + t * d);
    uint64_t t1 = port_cycles();
    prof_line("embedding", t1 - t0, (uint64_t)n * d * m->emb_dim * 2);
    ebq_rmsnorm_s8(n, d, x, w->norm_rq.m, w->norm_rq.sh, y);
    t0 = port_cycles();
    prof_line("rmsnorm", t0 - t1, (uint64_t)n * d);
    ebq_fully_connected_s8(&work, &q, n, y, x);
    t1 = port_cycles();
    prof_line("fully_connected_s8(q)", t1 - t0, (uint64_t)n * d * d);
    ebq_layer_rows_s8(&work, &lr, n, x);
    t0 = port_cycles();
    uint64_t taps = 0; /* exact: row t has min(t + 1, K) taps (rows before 0 are padding) */
    for (uint32_t t = 0; t < n; t++)
        taps += t + 1 < m->kernel ? t + 1 : m->kernel;
    /* spec 2 (w->ao_w set): the attention output projection, n x D x D more MACs */
    prof_line("layer_rows_s8(att+conv+proj)", t0 - t1,
              2ull * n * n * d + taps * d + (uint64_t)n * d * d * (w->ao_w != NULL ? 2u : 1u));
}
#endif

int main(void)
{
    port_init();
    calibrate(1000u); /* SysTick's first reload happens here, not inside the measurement */
    const uint64_t c0 = port_cycles();
    calibrate(250000u);
    const uint64_t c1 = port_cycles();
    put("CAL 1000000 ");
    put_int((int64_t)(c1 - c0));
    put("\n");

    const int rc = ebq_model_load(&g_model, ebq_blob_start,
                                  (size_t)(ebq_blob_end - ebq_blob_start));
    if (rc != EBQ_OK) {
        put("LOAD ");
        put(ebq_strerror(rc));
        put("\n");
        finish(1);
    }
#ifdef EBQ_PROFILE
    profile(&g_model);
#endif
    int32_t logits[256];
    for (uint32_t i = 0; i < EBQ_N_SEQ; i++) {
        const uint32_t n = ebq_seq_off[i + 1] - ebq_seq_off[i];
        ebq_arena arena;
        for (uint32_t k = 0; k < sizeof(g_arena); k++) /* paint: the high-water mark below */
            g_arena[k] = EBQ_PAINT;
        ebq_arena_init(&arena, g_arena, sizeof(g_arena));
        ebq_mark_begin();
        const uint64_t t0 = port_cycles();
        const int st = ebq_forward(&g_model, &arena, ebq_seq_ids + ebq_seq_off[i], n, logits,
                                   NULL);
        const uint64_t t1 = port_cycles();
        ebq_mark_end();
        put("R ");
        put_int(i);
        put(" ");
        put_int(st == EBQ_OK ? (int64_t)(t1 - t0) : st);
        for (uint32_t c = 0; st == EBQ_OK && c < ebq_model_num_labels(&g_model); c++) {
            put(" ");
            put_int(logits[c]);
        }
        put("\n");
        uint32_t top = sizeof(g_arena); /* the arena's painted high-water mark */
        while (top > 0 && g_arena[top - 1] == EBQ_PAINT)
            top--;
        put("A ");
        put_int(i);
        put(" ");
        put_int(top);
        put(" ");
        put_int((int64_t)ebq_arena_bytes(&g_model, n));
        put("\n");
    }
    put("ENGINE-QEMU PASS\n");
    finish(0);
    return 0;
}
