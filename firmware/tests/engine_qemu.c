/*
 * engine_qemu.c - bare-metal engine test and benchmark for mps2-an386 under QEMU.
 *
 * Links the engine, the shared Cortex-M startup (ports/cortex-m) and the mps2-an386 board file,
 * the model blob (app/model_blob.S) and a generated header of token-id sequences
 * (engine_qemu_ids.h: EBQ_N_SEQ, ebq_seq_off[EBQ_N_SEQ + 1], ebq_seq_ids[]). For each sequence
 * it prints, through semihosting,  "R <i> <ticks> <logit 0> ...", then "ENGINE-QEMU PASS" and
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
#include "port.h"

extern const uint8_t ebq_blob_start[], ebq_blob_end[];

static ebq_model g_model;
static uint8_t g_arena[96 * 1024] __attribute__((aligned(8)));

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

/* 4 instructions per iteration (subs, bne + 2 nops): calibrates ticks -> instructions. */
static void calibrate(uint32_t iters)
{
    __asm volatile("1: nop\n nop\n subs %0, %0, #1\n bne 1b" : "+r"(iters)::"cc");
}

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
    int32_t logits[256];
    for (uint32_t i = 0; i < EBQ_N_SEQ; i++) {
        const uint32_t n = ebq_seq_off[i + 1] - ebq_seq_off[i];
        ebq_arena arena;
        ebq_arena_init(&arena, g_arena, sizeof(g_arena));
        const uint64_t t0 = port_cycles();
        const int st = ebq_forward(&g_model, &arena, ebq_seq_ids + ebq_seq_off[i], n, logits,
                                   NULL);
        const uint64_t t1 = port_cycles();
        put("R ");
        put_int(i);
        put(" ");
        put_int(st == EBQ_OK ? (int64_t)(t1 - t0) : st);
        for (uint32_t c = 0; st == EBQ_OK && c < ebq_model_num_labels(&g_model); c++) {
            put(" ");
            put_int(logits[c]);
        }
        put("\n");
    }
    put("ENGINE-QEMU PASS\n");
    finish(0);
    return 0;
}
