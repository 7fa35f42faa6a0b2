/*
 * dsp/attention_rows_s8.c - Cortex-M4 twin of ../attention_rows_s8.c (same bits).
 *
 * e_j is Q14 <= 2^14, so it fits int16 and one SMLAD adds e_j y_jc + e_j+1 y_j+1,c. Masked keys
 * get e = 0 (no branch in the inner loops). The blocked path (attention_blocked) is the fast
 * one; attention_any_dim (scores_block / softmax_exp / weighted_sum) serves dims that are not a
 * multiple of 16.
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

#define EBQ_EXP_ZMIN (-16 * 256)

/* scores[r*n + j] = q_r . y_j for the nq <= 4 widened queries and every key. */
static void scores_block(uint32_t nq, uint32_t n, uint32_t dim, const int16_t *wide,
                         const int8_t *y, int32_t *scores)
{
    for (uint32_t j = 0; j < n; j++) {
        const int8_t *yj = y + (size_t)j * dim;
        if (nq == 4 && dim % 8 == 0) {
            int32_t a[4] = {0, 0, 0, 0};
            ebq_dot4_s8(dim, yj, wide, a);
            scores[j] = a[0], scores[n + j] = a[1], scores[2 * n + j] = a[2];
            scores[3 * n + j] = a[3];
        } else {
            for (uint32_t r = 0; r < nq; r++)
                scores[(size_t)r * n + j] = ebq_dot1_s8(dim, yj, wide, nq, r, 0);
        }
    }
}

/* Scores of one query -> e_j as int16 written over the same memory (e[j] at byte 2j <= 4j, so
 * in place is safe; written with memcpy, which may alias anything). Masked keys get e = 0.
 * Returns E (0: no real key). */
static int32_t softmax_exp(uint32_t n, int32_t *s, const uint16_t *ids, const ebq_rq_params *sm,
                           const int16_t *hi, const int16_t *lo)
{
    int32_t smax = INT32_MIN;
    for (uint32_t j = 0; j < n; j++)
        if (ids[j] != 0 && s[j] > smax)
            smax = s[j];
    uint8_t *e = (uint8_t *)s;
    const int32_t mult = sm->m[0], shift = sm->sh[0]; /* locals: the e stores may alias sm */
    int32_t big_e = 0;
    for (uint32_t j = 0; j < n; j++) {
        int32_t ej = 0;
        if (ids[j] != 0) {
            int64_t z = ebq_rq(s[j] - smax, mult, shift);
            z = z < EBQ_EXP_ZMIN ? EBQ_EXP_ZMIN : (z > 0 ? 0 : z);
            ej = ebq_exp_q14_inline((int32_t)z, hi, lo);
        }
        const int16_t e16 = (int16_t)ej;
        __builtin_memcpy(e + 2 * j, &e16, 2);
        big_e += ej;
    }
    return smax == INT32_MIN ? 0 : big_e;
}

/* acc[c] = sum_j e[j] y_jc for one query, e int16. Per 2 keys x 4 channels: 2 LDR (y rows j,
 * j+1), PKHBT/PKHTB + 4 SXTB16 make the 4 pairs (y_jc, y_j+1,c), 1 LDR of (e_j, e_j+1), 4 SMLAD:
 * 15 instructions for 8 MACs with the loop. The y row stride must be 128 (post-index limit);
 * other dims use the C loop. */
static void weighted_sum(uint32_t n, uint32_t dim, const int8_t *y, const int16_t *e,
                         int32_t *acc)
{
    const uint32_t pairs = n / 2;
    for (uint32_t c = 0; c < dim; c += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        const int8_t *yp = y + c;
        const int16_t *ep = e;
        if (dim == 128 && pairs > 0) {
            const int16_t *end = e + 2 * pairs;
            uint32_t ya, yb, t0, ev;
            __asm volatile(
                "1:\n"
                "ldr    %[ya], [%[yp]], #128\n"
                "ldr    %[yb], [%[yp]], #128\n"
                "pkhbt  %[t0], %[ya], %[yb], lsl #16\n"
                "pkhtb  %[ya], %[yb], %[ya], asr #16\n"
                "sxtb16 %[yb], %[t0]\n"
                "sxtb16 %[t0], %[t0], ror #8\n"
                "ldr    %[ev], [%[ep]], #4\n"
                "smlad  %[a0], %[yb], %[ev], %[a0]\n"
                "smlad  %[a1], %[t0], %[ev], %[a1]\n"
                "sxtb16 %[yb], %[ya]\n"
                "sxtb16 %[ya], %[ya], ror #8\n"
                "smlad  %[a2], %[yb], %[ev], %[a2]\n"
                "smlad  %[a3], %[ya], %[ev], %[a3]\n"
                "cmp    %[ep], %[end]\n"
                "bne    1b\n"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [yp] "+&r"(yp),
                  [ep] "+&r"(ep), [ya] "=&r"(ya), [yb] "=&r"(yb), [t0] "=&r"(t0), [ev] "=&r"(ev)
                : [end] "r"(end)
                : "cc", "memory");
        } else {
            for (uint32_t j = 0; j < 2 * pairs; j++, yp += dim, ep++) {
                int16_t ej;
                __builtin_memcpy(&ej, ep, 2);
                a0 += ej * yp[0], a1 += ej * yp[1], a2 += ej * yp[2], a3 += ej * yp[3];
            }
        }
        if (n & 1u) { /* odd n: the last key alone */
            int16_t ej;
            __builtin_memcpy(&ej, e + n - 1, 2);
            const int8_t *yl = y + (size_t)(n - 1) * dim + c;
            a0 += ej * yl[0], a1 += ej * yl[1], a2 += ej * yl[2], a3 += ej * yl[3];
        }
        acc[c] = a0, acc[c + 1] = a1, acc[c + 2] = a2, acc[c + 3] = a3;
    }
}

/* The blocked path (dim % 16 == 0), for up to EBQ_BLOCK_ROWS(n) queries:
 * 1. per 4 queries: scores by ebq_mm4_s8 with the keys as the "weights" (sc[4j + r]), then the
 *    exp values as int16 (nk = n rounded up to 8, zero beyond n and for masked keys), stored
 *    by query pairs (E_AT below);
 * 2. per 4 channels: the channels' columns of y are widened once into int16 key pairs
 *    (y_j, y_j+1) (a 4x4 byte transpose: 4 LDR, 8 SXTB16, 8 PKH per 16 values), as two
 *    channel pairs; then a query pair times a channel pair is a 2x2 tile of int16 operands
 *    (wsum22): no unpacking in the inner loop, every loaded word feeds two SMLADs.
 * The column transpose is paid once per block of queries, i.e. 1/EBQ_BLOCK_ROWS(n) of it per MAC.
 *
 * The e layout: query pair p = r / 2 holds 2 nk int16 at e + 2 nk p, by groups of 4 keys g:
 * e_r(4g..4g+3), then e_r+1(4g..4g+3). An odd last query's partner is never written nor read
 * (that query has its own kernel, wsum14). */
#define E_AT(e, nk, r, j) ((e)[(size_t)((r) / 2u) * 2u * (nk) + ((j) / 4u) * 8u + ((r) & 1u) * 4u + \
                               ((j) & 3u)])

/* The 4 sums of every query pair (r, r+1) with the channel pair ca (channels c, c+1), then
 * with cb = ca + nk words (c+2, c+3): raw[4r + k] = the sum of query r, channel c + k. A pair's sums are a run of nk / 4 unrolled steps (LDM of the
 * 2 queries' e words, LDM of the 2 channels' pairs, 8 SMLAD: 10 instructions for 16 MACs)
 * entered past the steps the keys do not need (ADR + BX: no loop counter), nk <= 256, and one
 * 2 STRD. Registers: r0 e (it runs on into the next pair), r1 columns, r2/r3/r12/lr the sums,
 * r4-r11 the operands; on the stack the entry, the columns' start, the end of e, raw, the start
 * of e, cb (0 once taken) and raw's start. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
__attribute__((naked)) static void wsum22(const int16_t *e, const int32_t *ca, uint32_t nk,
                                          uint32_t pairs, int32_t *raw)
{
    __asm volatile("push   {r4-r11, lr}\n"
                   "ldr    r12, [sp, #36]\n" /* raw */
                   "adr.w  r4, 3f\n"
                   "lsrs   r5, r2, #2\n"     /* steps of 4 keys, 40 bytes of code each */
                   "sub    r4, r4, r5, lsl #5\n"
                   "sub    r4, r4, r5, lsl #3\n"
                   "orr    r4, r4, #1\n"     /* Thumb state */
                   "mul    r6, r3, r2\n"
                   "add    r6, r0, r6, lsl #2\n" /* end of e: 4 nk bytes per pair */
                   "add    r7, r1, r2, lsl #2\n" /* cb */
                   "push   {r0, r7, r12}\n"
                   "push   {r1, r6, r12}\n"
                   "push   {r4}\n" /* [sp] entry, col, end of e, raw, e, cb, raw */
                   "1:\n"
                   "movs   r2, #0\n"
                   "movs   r3, #0\n"
                   "mov    r12, #0\n"
                   "mov    lr, #0\n"
                   "ldr    r4, [sp]\n"
                   "bx     r4\n"
                   ".p2align 2\n"
                   ".rept 64\n"
                   "ldm.w  r0!, {r4-r7}\n"
                   "ldm.w  r1!, {r8-r11}\n"
                   "smlad  r2, r4, r8, r2\n"
                   "smlad  r2, r5, r9, r2\n"
                   "smlad  r3, r4, r10, r3\n"
                   "smlad  r3, r5, r11, r3\n"
                   "smlad  r12, r6, r8, r12\n"
                   "smlad  r12, r7, r9, r12\n"
                   "smlad  lr, r6, r10, lr\n"
                   "smlad  lr, r7, r11, lr\n"
                   ".endr\n"
                   "3:\n"
                   "ldr    r4, [sp, #12]\n"
                   "strd   r12, lr, [r4, #16]\n"
                   "strd   r2, r3, [r4], #32\n"
                   "str    r4, [sp, #12]\n"
                   "ldr    r1, [sp, #4]\n"   /* the columns again */
                   "ldr    r4, [sp, #8]\n"
                   "cmp    r0, r4\n"
                   "bne    1b\n"
                   "ldr    r1, [sp, #20]\n"  /* then cb, once */
                   "cbz    r1, 4f\n"
                   "movs   r4, #0\n"
                   "str    r4, [sp, #20]\n"
                   "str    r1, [sp, #4]\n"
                   "ldr    r0, [sp, #16]\n"
                   "ldr    r4, [sp, #24]\n" /* raw + 2 */
                   "adds   r4, r4, #8\n"
                   "str    r4, [sp, #12]\n"
                   "b      1b\n"
                   "4:\n"
                   "add    sp, sp, #28\n"
                   "pop    {r4-r11, pc}\n");
}
#pragma GCC diagnostic pop

/* raw[0..3] = the sums of one query (an odd last one; e its row in the pair layout, 16 bytes
 * per 4 keys) with channels c..c+3 (ca, then cb = ca + nk words): per 4 keys LDRD of e, 2 LDM
 * of the columns, 8 SMLAD; any nk % 8 == 0. Registers: r0 e, r1 ca, r12 cb, lr the end of e,
 * r2/r3 e words, r4-r7 the columns, r8-r11 the sums. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
__attribute__((naked)) static void wsum14(const int16_t *e, const int32_t *ca, uint32_t nk,
                                          int32_t *raw)
{
#define EBQ_WSUM14_STEP                                                                          \
    "ldrd   r2, r3, [r0], #16\n"                                                             \
    "ldm    r1!, {r4-r7}\n"                                                                  \
    "smlad  r8, r2, r4, r8\n"                                                                \
    "smlad  r8, r3, r5, r8\n"                                                                \
    "smlad  r9, r2, r6, r9\n"                                                                \
    "smlad  r9, r3, r7, r9\n"                                                                \
    "ldm    r12!, {r4-r7}\n"                                                                 \
    "smlad  r10, r2, r4, r10\n"                                                              \
    "smlad  r10, r3, r5, r10\n"                                                              \
    "smlad  r11, r2, r6, r11\n"                                                              \
    "smlad  r11, r3, r7, r11\n"
    __asm volatile("push   {r3-r11, lr}\n"
                   "add    r12, r1, r2, lsl #2\n"
                   "add    lr, r0, r2, lsl #2\n"
                   "mov    r8, #0\n"
                   "mov    r9, #0\n"
                   "mov    r10, #0\n"
                   "mov    r11, #0\n"
                   "1:\n" EBQ_WSUM14_STEP EBQ_WSUM14_STEP
                   "cmp    r0, lr\n"
                   "bne    1b\n"
                   "pop    {r3}\n"
                   "stm    r3, {r8-r11}\n"
                   "pop    {r4-r11, pc}\n");
#undef EBQ_WSUM14_STEP
}
#pragma GCC diagnostic pop

/* wsum22 in C (nk > 256). */
static void wsum22_any(const int16_t *e, const int32_t *ca, uint32_t nk, uint32_t pairs,
                       int32_t *raw)
{
    for (uint32_t h = 0; h < 2; h++) {
        const int16_t *c16 = (const int16_t *)(const void *)(ca + h * nk);
        for (uint32_t p = 0; p < pairs; p++) {
            int32_t a[4] = {0, 0, 0, 0};
            for (uint32_t j = 0; j < nk; j++) {
                const int32_t e0 = E_AT(e, nk, 2 * p, j), e1 = E_AT(e, nk, 2 * p + 1, j);
                const int32_t c0 = c16[(j / 4) * 8 + (j & 3)],
                              c1 = c16[(j / 4) * 8 + 4 + (j & 3)];
                a[0] += e0 * c0, a[1] += e0 * c1, a[2] += e1 * c0, a[3] += e1 * c1;
            }
            int32_t *o = raw + 8 * p + 2 * h;
            o[0] = a[0], o[1] = a[1], o[4] = a[2], o[5] = a[3];
        }
    }
}

/* Columns c..c+3 of 4 keys (a0..a3) as int16 key pairs: channels c, c+1 into ca (4 words:
 * c (j,j+1) (j+2,j+3), c+1 (j,j+1) (j+2,j+3)), channels c+2, c+3 into cb. */
static inline void col_group(uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, int32_t *ca,
                             int32_t *cb)
{
    const int32_t l0 = ebq_lo02(a0), l1 = ebq_lo02(a1), l2 = ebq_lo02(a2),
                  l3 = ebq_lo02(a3); /* (y_c, y_c+2) of each key */
    const int32_t h0 = ebq_hi13(a0), h1 = ebq_hi13(a1), h2 = ebq_hi13(a2),
                  h3 = ebq_hi13(a3); /* (y_c+1, y_c+3) */
    ca[0] = ebq_pair_lo(l0, l1), ca[1] = ebq_pair_lo(l2, l3);
    ca[2] = ebq_pair_lo(h0, h1), ca[3] = ebq_pair_lo(h2, h3);
    cb[0] = ebq_pair_hi(l0, l1), cb[1] = ebq_pair_hi(l2, l3);
    cb[2] = ebq_pair_hi(h0, h1), cb[3] = ebq_pair_hi(h2, h3);
}

/* col_group for keys yc, yc + 128, ... up to end (row stride 128, 4 keys per step): 4 LDR,
 * 8 SXTB16, 8 PKH, 2 STM = 24 instructions per 16 values, no spills. Registers: r0 keys, r1
 * and r3 the two channel pairs' columns, r2 end; l0 r4, l1 r9, l2 r5, l3 r10, h0 r6, h1 r11,
 * h2 r7, h3 r12, so that the outputs land in r4-r7 (ca) and r8-r11 (cb) for the two STMs. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
__attribute__((naked)) static void widen_cols128(const int8_t *yc, int32_t *ca,
                                                 const int8_t *end, int32_t *cb)
{
    __asm volatile("push   {r4-r11}\n"
                   "1:\n"
                   "ldr    r4, [r0], #128\n"
                   "ldr    r9, [r0], #128\n"
                   "ldr    r5, [r0], #128\n"
                   "ldr    r10, [r0], #128\n"
                   "sxtb16 r6, r4, ror #8\n"
                   "sxtb16 r4, r4\n"
                   "sxtb16 r11, r9, ror #8\n"
                   "sxtb16 r9, r9\n"
                   "sxtb16 r7, r5, ror #8\n"
                   "sxtb16 r5, r5\n"
                   "sxtb16 r12, r10, ror #8\n"
                   "sxtb16 r10, r10\n"
                   "pkhtb  r8, r9, r4, asr #16\n"
                   "pkhbt  r4, r4, r9, lsl #16\n"
                   "pkhtb  r9, r10, r5, asr #16\n"
                   "pkhbt  r5, r5, r10, lsl #16\n"
                   "pkhtb  r10, r11, r6, asr #16\n"
                   "pkhbt  r6, r6, r11, lsl #16\n"
                   "pkhtb  r11, r12, r7, asr #16\n"
                   "pkhbt  r7, r7, r12, lsl #16\n"
                   "stm    r1!, {r4-r7}\n"
                   "stm    r3!, {r8-r11}\n"
                   "cmp    r0, r2\n"
                   "bne    1b\n"
                   "pop    {r4-r11}\n"
                   "bx     lr\n");
}
#pragma GCC diagnostic pop

/* The columns of channels c..c+3 (yc = y + c) for wsum22: ca = channels c, c+1 and cb = c+2,
 * c+3, nk words each; keys n..n rounded up to 4 zero, the rest left as they are (their e
 * values are 0, so whatever the words hold adds 0). */
static void widen_cols(uint32_t n, uint32_t dim, const int8_t *yc, int32_t *ca, int32_t *cb)
{
    uint32_t j = 0;
    if (dim == 128 && n >= 4) {
        j = n & ~3u;
        widen_cols128(yc, ca, yc + (size_t)j * 128, cb);
        yc += (size_t)j * 128, ca += j, cb += j;
    }
    for (; j + 4 <= n; j += 4, yc += 4 * dim, ca += 4, cb += 4)
        col_group(ebq_ld32(yc), ebq_ld32(yc + dim), ebq_ld32(yc + 2 * dim),
                  ebq_ld32(yc + 3 * dim), ca, cb);
    if (j < n) { /* the last 1..3 keys */
        const uint32_t a0 = ebq_ld32(yc), a1 = j + 1 < n ? ebq_ld32(yc + dim) : 0,
                       a2 = j + 2 < n ? ebq_ld32(yc + 2 * dim) : 0;
        col_group(a0, a1, a2, 0, ca, cb);
    }
    /* Keys from n rounded up to 4 to nk: their e values are 0, any column value gives 0. */
}

/* One query's e value for sh >= 2, M > 0 and no masked key: z = rq(s - smax) is SMMLA + ASR
 * (the 32-bit form of ebq_rq); s - smax <= 0 and M > 0 make z <= 0, so the clamp to
 * [-4096, 0] is one SSAT #13; then the two tables. */
static inline __attribute__((always_inline)) int32_t exp_fast(int32_t s, int32_t smax,
                                                               int32_t mult, int32_t rnd,
                                                               int32_t s1, const int16_t *hi,
                                                               const int16_t *lo)
{
    int32_t z;
    __asm("smmla %0, %1, %2, %3" : "=r"(z) : "r"(s - smax), "r"(mult), "r"(rnd));
    const int32_t k = -__ssat(z >> s1, 13); /* [0, 4096] */
    return ((int32_t)hi[k >> 8] * lo[k & 255] + (1 << 13)) >> 14;
}

/* One query's e values by exp_fast, into its row of the pair layout (e: the row's first
 * group; 4 keys, then 4 of the partner). sc walks the query's scores (stride 4). Returns E. */
static int32_t exp_row_fast(uint32_t n, const int32_t *sc, int32_t smax, int32_t mult,
                            int32_t shift, const int16_t *hi, const int16_t *lo, int16_t *e)
{
    const int32_t rnd = (int32_t)1 << (shift - 2), s1 = shift - 1;
    int32_t sum = 0;
    for (const int32_t *end = sc + 4 * (n & ~3u); sc != end; sc += 16, e += 8) {
        const int32_t e0 = exp_fast(sc[0], smax, mult, rnd, s1, hi, lo),
                      e1 = exp_fast(sc[4], smax, mult, rnd, s1, hi, lo),
                      e2 = exp_fast(sc[8], smax, mult, rnd, s1, hi, lo),
                      e3 = exp_fast(sc[12], smax, mult, rnd, s1, hi, lo);
        e[0] = (int16_t)e0, e[1] = (int16_t)e1, e[2] = (int16_t)e2, e[3] = (int16_t)e3;
        sum += e0 + e1 + e2 + e3;
    }
    const uint32_t rem = n & 3u;
    if (rem != 0) { /* the last group, its keys past n zero */
        const int32_t e0 = exp_fast(sc[0], smax, mult, rnd, s1, hi, lo),
                      e1 = rem > 1 ? exp_fast(sc[4], smax, mult, rnd, s1, hi, lo) : 0,
                      e2 = rem > 2 ? exp_fast(sc[8], smax, mult, rnd, s1, hi, lo) : 0;
        e[0] = (int16_t)e0, e[1] = (int16_t)e1, e[2] = (int16_t)e2, e[3] = 0;
        sum += e0 + e1 + e2;
    }
    return sum;
}

/* Scores sc[4j + r] of nb <= 4 queries r0.. -> their e values (pair layout of the block's e;
 * 0 for masked and padding keys) and E per query (0: no real key). `pads`: some ids[j] == 0. */
static void exp_rows(uint32_t r0, uint32_t nb, uint32_t n, uint32_t nk, const int32_t *sc,
                     const uint16_t *ids, int pads, const ebq_rq_params *sm, const int16_t *hi,
                     const int16_t *lo, int16_t *e, int32_t *big_e)
{
    const int32_t mult = sm->m[0], shift = sm->sh[0];
    /* The 4 queries' maxima in one pass over the keys, in registers. */
    int32_t m0 = INT32_MIN, m1 = INT32_MIN, m2 = INT32_MIN, m3 = INT32_MIN;
    for (uint32_t j = 0; j < n; j++) {
        if (pads && ids[j] == 0)
            continue;
        const int32_t *s = sc + 4 * j;
        m0 = s[0] > m0 ? s[0] : m0, m1 = s[1] > m1 ? s[1] : m1;
        m2 = s[2] > m2 ? s[2] : m2, m3 = s[3] > m3 ? s[3] : m3;
    }
    const int32_t smax[4] = {m0, m1, m2, m3};
    for (uint32_t r = 0; r < nb; r++) {
        int32_t sum = 0;
        uint32_t j0 = n; /* the zero keys from here */
        if (!pads && shift >= 2 && mult > 0) { /* the usual case */
            sum = exp_row_fast(n, sc + r, smax[r], mult, shift, hi, lo,
                               &E_AT(e, nk, r0 + r, 0));
            j0 = (n + 3u) & ~3u;
        } else {
            for (uint32_t j = 0; j < n; j++) {
                int32_t ej = 0;
                if (ids[j] != 0) {
                    int64_t z = ebq_rq(sc[4 * j + r] - smax[r], mult, shift);
                    z = z < EBQ_EXP_ZMIN ? EBQ_EXP_ZMIN : (z > 0 ? 0 : z);
                    ej = ebq_exp_q14_inline((int32_t)z, hi, lo);
                }
                E_AT(e, nk, r0 + r, j) = (int16_t)ej;
                sum += ej;
            }
        }
        for (uint32_t j = j0; j < nk; j++)
            E_AT(e, nk, r0 + r, j) = 0;
        big_e[r] = smax[r] == INT32_MIN ? 0 : sum;
    }
}

/* attn_c = (acc_c * (2^46 // E) + 2^29) >> 30 with inv = 2^46 // E <= 2^32: one SMLAL by the
 * low word of inv (read as signed it is inv - 2^32 when inv >= 2^31, so the high word then
 * starts at acc), the rounding constant in the low word, and the >> 30 of the 64-bit sum. */
static inline int32_t normalise(int32_t acc, int32_t inv_lo, int32_t hi_start)
{
    uint32_t lo = (uint32_t)1 << 29;
    int32_t hi = hi_start;
    __asm("smlal %0, %1, %2, %3" : "+r"(lo), "+r"(hi) : "r"(acc), "r"(inv_lo));
    return (int32_t)((lo >> 30) | ((uint32_t)hi << 2));
}

void ebq_dsp_attention_exp(const ebq_attention_params *p, uint32_t nq, const int8_t *q,
                           int16_t *wide, int32_t *sc, int16_t *e, ebq_dsp_inv *inv)
{
    const uint32_t n = p->n, dim = p->dim, nk = EBQ_KEYS_PAD(n);
    const uint16_t *ids = p->ids;
    int32_t big_e[EBQ_BLOCK];
    int pads = 0;
    for (uint32_t j = 0; j < n; j++)
        pads |= ids[j] == 0;
    /* Scores of 3 queries at a time by ebq_mm32_s8_128 (D = 128): as many groups of 4 first
     * (ebq_mm4) as make the rest a multiple of 3, but 5 queries as 3 + 2; 1 or 2 queries
     * left: one group of 4. */
    for (uint32_t r0 = 0, nb; r0 < nq; r0 += nb) {
        const uint32_t rest = nq - r0;
        const int three = dim == 128 && (rest % 3 == 0 || rest == 5);
        nb = three ? 3 : (rest < 4 ? rest : 4);
        if (three) {
            const int32_t *xw = (const int32_t *)(const void *)wide;
            ebq_widen_rows(3, 128, q + (size_t)r0 * 128, wide);
            if (n >= 2)
                ebq_mm32_s8_128(p->y, xw, n / 2, sc);
            if (n >= 3 && (n & 1u)) { /* an odd last key: the pair (n-2, n-1), half kept */
                int32_t t[8];
                ebq_mm32_s8_128(p->y + (size_t)(n - 2) * 128, xw, 1, t);
                sc[4 * (n - 1)] = t[4], sc[4 * (n - 1) + 1] = t[5], sc[4 * (n - 1) + 2] = t[6];
            } else if (n == 1) {
                for (uint32_t r = 0; r < 3; r++)
                    sc[r] = ebq_dot1_s8(128, p->y, wide, 3, r, 0);
            }
        } else {
            ebq_widen4(nb, dim, q + (size_t)r0 * dim, wide);
            ebq_mm4(p->y, wide, dim, n, sc);
        }
        exp_rows(r0, nb, n, nk, sc, ids, pads, p->sm, p->exp_hi, p->exp_lo, e, big_e + r0);
    }
    for (uint32_t r = 0; r < nq; r++) {
        const int64_t v = big_e[r] ? ((int64_t)1 << 46) / big_e[r] : 0; /* <= 2^32 */
        inv->lo[r] = (int32_t)(uint32_t)v;
        inv->big[r] = v >= ((int64_t)1 << 31);
    }
}

void ebq_dsp_attention_cols(const ebq_attention_params *p, uint32_t nq, uint32_t c,
                            const int16_t *e, int32_t *col, const ebq_dsp_inv *inv, int32_t *out,
                            uint32_t stride)
{
    const uint32_t n = p->n, dim = p->dim, nk = EBQ_KEYS_PAD(n);
    int32_t raw[4 * EBQ_BLOCK];
    const uint32_t pairs = nq / 2;
    widen_cols(n, dim, p->y + c, col, col + nk);
    if (pairs > 0 && nk <= 256)
        wsum22(e, col, nk, pairs, raw);
    else if (pairs > 0)
        wsum22_any(e, col, nk, pairs, raw);
    if (nq & 1u) /* an odd last query alone */
        wsum14(&E_AT(e, nk, nq - 1, 0), col, nk, raw + 4 * (nq - 1));
    for (uint32_t r = 0; r < nq; r++, out += stride) {
        const int32_t *rr = raw + 4 * r;
        const int32_t il = inv->lo[r];
        if (inv->big[r]) {
            for (uint32_t k = 0; k < 4; k++)
                out[k] = normalise(rr[k], il, rr[k]);
        } else {
            out[0] = normalise(rr[0], il, 0), out[1] = normalise(rr[1], il, 0);
            out[2] = normalise(rr[2], il, 0), out[3] = normalise(rr[3], il, 0);
        }
    }
}

static void attention_blocked(const ebq_attention_params *p, uint32_t nq, const int8_t *q,
                              int32_t *scratch, int16_t *wide, int32_t *attn)
{
    const uint32_t n = p->n, dim = p->dim, nk = EBQ_KEYS_PAD(n);
    int32_t *sc = scratch;                             /* 4n int32 */
    int16_t *e = (int16_t *)(void *)(scratch + 4 * n); /* nq rows of nk int16, by pairs */
    int32_t *col = (int32_t *)(void *)(e + (size_t)((nq + 1u) & ~1u) * nk); /* 2 nk words */
    ebq_dsp_inv inv;
    ebq_dsp_attention_exp(p, nq, q, wide, sc, e, &inv);
    for (uint32_t c = 0; c < dim; c += 4)
        ebq_dsp_attention_cols(p, nq, c, e, col, &inv, attn + c, dim);
}

/* Dims that are not a multiple of 16: 4 queries at a time, one SMLAD loop per score. */
static void attention_any_dim(const ebq_attention_params *p, uint32_t nq, const int8_t *q,
                              int32_t *scratch, int16_t *wide, int32_t *attn)
{
    const uint32_t n = p->n, dim = p->dim;
    for (uint32_t r0 = 0; r0 < nq; r0 += 4) {
        const uint32_t nb = nq - r0 < 4 ? nq - r0 : 4;
        int32_t *a = attn + (size_t)r0 * dim;
        ebq_widen_rows(nb, dim, q + (size_t)r0 * dim, wide);
        scores_block(nb, n, dim, wide, p->y, scratch);
        int32_t big_e[4];
        for (uint32_t r = 0; r < nb; r++)
            big_e[r] = softmax_exp(n, scratch + (size_t)r * n, p->ids, p->sm, p->exp_hi,
                                   p->exp_lo);
        for (uint32_t r = 0; r < nb; r++)
            weighted_sum(n, dim, p->y, (const int16_t *)(scratch + (size_t)r * n),
                         a + (size_t)r * dim);
        for (uint32_t r = 0; r < nb; r++, a += dim) {
            /* attn_c = acc_c / E in Q16; no real key -> 0 (then every e_j was 0 and acc = 0). */
            const int64_t inv = big_e[r] ? ((int64_t)1 << 46) / big_e[r] : 0;
            for (uint32_t c = 0; c < dim; c++)
                a[c] = (int32_t)((a[c] * inv + ((int64_t)1 << 29)) >> 30);
        }
    }
}

void ebq_attention_rows_s8(const ebq_context *ctx, const ebq_attention_params *p, uint32_t nq,
                           const int8_t *q, int32_t *attn)
{
    /* The buffer: EBQ_MICRO widened query rows, then EBQ_ATT_SCRATCH_BYTES(n). */
    int16_t *wide = ctx->buf;
    int32_t *scratch = (int32_t *)(void *)((uint8_t *)ctx->buf +
                                           ebq_fully_connected_s8_get_buffer_size(p->dim));
    if (p->dim % 16 == 0)
        attention_blocked(p, nq, q, scratch, wide, attn);
    else
        attention_any_dim(p, nq, q, scratch, wide, attn);
}
#else
#include "../attention_rows_s8.c"
#endif
