/*
 * ebq_dsp.h - Cortex-M4 DSP-extension helpers shared by the optimised kernels in this folder.
 *
 * SXTB16 sign-extends bytes 0 and 2 of a word into two int16 halves; with the word rotated by 8
 * it gives bytes 1 and 3. SMLAD adds two 16x16 products to an int32 accumulator in one
 * instruction. Integer sums are exact in any order (the ranges in ebq_ops.h keep every int32
 * accumulator far from overflow), so these kernels give the portable kernels' bits.
 * The out-of-line micro-kernels declared here (ebq_mm4_s8*, ebq_mm22_s16_128: naked assembly)
 * are defined in support/mat_mult_s8.c, apart from the twins that use them.
 */
#ifndef EBQ_DSP_H
#define EBQ_DSP_H

#include <arm_acle.h>
#include <stdint.h>
#include <string.h>

#include "../ebq_ops.h"

/* Unaligned-safe word load (compiles to one LDR; the callers' rows are 4-aligned anyway). */
static inline uint32_t ebq_ld32(const void *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

/* Bytes (0,2) and (1,3) of w as int16 pairs. */
static inline int32_t ebq_lo02(uint32_t w)
{
    return __sxtb16((int32_t)w);
}

static inline int32_t ebq_hi13(uint32_t w)
{
    int32_t r; /* SXTB16 with its own rotation: GCC does not fold a ROR into __sxtb16 */
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}

/* (lo half of a, lo half of b) and (hi half of a, hi half of b): PKHBT / PKHTB, which GCC's
 * arm_acle.h does not offer and the compiler does not always find by itself. */
static inline int32_t ebq_pair_lo(int32_t a, int32_t b)
{
    int32_t r;
    __asm("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline int32_t ebq_pair_hi(int32_t a, int32_t b)
{
    int32_t r;
    __asm("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
    return r;
}

/* Widen `rows` rows of `len` int8 (len % 4 == 0) into int16 in SXTB16 order, interleaved by
 * groups of 4 inputs: group g of row r is the two words (b0,b2) (b1,b3) at word (g*rows + r)*2.
 * A kernel then walks all rows of a group with consecutive LDRDs. */
static inline void ebq_widen_rows(uint32_t rows, uint32_t len, const int8_t *x, int16_t *wide)
{
    int32_t *out = (int32_t *)wide;
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t i = 0; i < len; i += 4) {
            const uint32_t v = ebq_ld32(x + (size_t)r * len + i);
            int32_t *o = out + ((i / 4) * rows + r) * 2;
            o[0] = ebq_lo02(v);
            o[1] = ebq_hi13(v);
        }
}

/* Widen nb <= 4 rows into the 4-row layout of ebq_widen_rows, rows nb..3 zero. */
static inline void ebq_widen4(uint32_t nb, uint32_t len, const int8_t *x, int16_t *wide)
{
    if (nb == 4) {
        ebq_widen_rows(4, len, x, wide);
        return;
    }
    int32_t *out = (int32_t *)wide;
    for (uint32_t i = 0; i < len; i += 4)
        for (uint32_t r = 0; r < 4; r++) {
            const uint32_t v = r < nb ? ebq_ld32(x + (size_t)r * len + i) : 0;
            int32_t *o = out + ((i / 4) * 4 + r) * 2;
            o[0] = ebq_lo02(v);
            o[1] = ebq_hi13(v);
        }
}

/* acc[r] += w . x_r for 4 widened rows (ebq_widen_rows with rows = 4), len % 8 == 0.
 * Per 8 weights: 1 LDRD of weights, 4 SXTB16, 8 LDRD of activations, 16 SMLAD, 2 loop
 * instructions = 31 instructions for 32 MACs. */
static inline void ebq_dot4_s8(uint32_t len, const int8_t *w, const int16_t *wide, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int32_t *p = (const int32_t *)wide;
    const int8_t *end = w + len;
    uint32_t w0, w1, t, x0, x1;
    __asm volatile(
        "1:\n"
        "ldrd   %[w0], %[w1], [%[w]], #8\n"
        "sxtb16 %[t], %[w0]\n"
        "sxtb16 %[w0], %[w0], ror #8\n"
        "ldrd   %[x0], %[x1], [%[p]], #8\n"
        "smlad  %[a0], %[t], %[x0], %[a0]\n"
        "smlad  %[a0], %[w0], %[x1], %[a0]\n"
        "ldrd   %[x0], %[x1], [%[p]], #8\n"
        "smlad  %[a1], %[t], %[x0], %[a1]\n"
        "smlad  %[a1], %[w0], %[x1], %[a1]\n"
        "ldrd   %[x0], %[x1], [%[p]], #8\n"
        "smlad  %[a2], %[t], %[x0], %[a2]\n"
        "smlad  %[a2], %[w0], %[x1], %[a2]\n"
        "ldrd   %[x0], %[x1], [%[p]], #8\n"
        "smlad  %[a3], %[t], %[x0], %[a3]\n"
        "smlad  %[a3], %[w0], %[x1], %[a3]\n"
        "sxtb16 %[t], %[w1]\n"
        "sxtb16 %[w1], %[w1], ror #8\n"
        "ldrd   %[x0], %[x1], [%[p]], #8\n"
        "smlad  %[a0], %[t], %[x0], %[a0]\n"
        "smlad  %[a0], %[w1], %[x1], %[a0]\n"
        "ldrd   %[x0], %[x1], [%[p]], #8\n"
        "smlad  %[a1], %[t], %[x0], %[a1]\n"
        "smlad  %[a1], %[w1], %[x1], %[a1]\n"
        "ldrd   %[x0], %[x1], [%[p]], #8\n"
        "smlad  %[a2], %[t], %[x0], %[a2]\n"
        "smlad  %[a2], %[w1], %[x1], %[a2]\n"
        "ldrd   %[x0], %[x1], [%[p]], #8\n"
        "smlad  %[a3], %[t], %[x0], %[a3]\n"
        "smlad  %[a3], %[w1], %[x1], %[a3]\n"
        "cmp    %[w], %[end]\n"
        "bne    1b\n"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+&r"(w),
          [p] "+&r"(p),
          [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1)
        : [end] "r"(end)
        : "cc", "memory");
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

/* acc += w . x_r for row r of `rows` widened rows (any len % 4 == 0). */
static inline int32_t ebq_dot1_s8(uint32_t len, const int8_t *w, const int16_t *wide,
                                  uint32_t rows, uint32_t r, int32_t acc)
{
    const int32_t *p = (const int32_t *)wide + r * 2;
    for (uint32_t i = 0; i < len; i += 4, p += 2 * rows) {
        const uint32_t v = ebq_ld32(w + i);
        acc = __smlad(ebq_lo02(v), p[0], acc);
        acc = __smlad(ebq_hi13(v), p[1], acc);
    }
    return acc;
}

/* raw[4o + r] = w_o . x_r for o < out_dim and the 4 rows widened in `wide` (ebq_widen_rows
 * with rows = 4): w is out_dim rows of in_dim int8 (in_dim % 16 == 0, rows 4-aligned), raw is
 * 4 * out_dim int32 (output-major: one STM per output). Per 16 inputs: 2 LDRD of weights,
 * 8 SXTB16, 8 LDM of 4 activation words (2 rows' pairs), 32 SMLAD, 2 loop = 52 instructions
 * for 64 MACs. */
void ebq_mm4_s8(const int8_t *w, const int16_t *wide, uint32_t in_dim, uint32_t out_dim,
                int32_t *raw);

/* ebq_mm4_s8 for in_dim = 128 (D of the shipped models): fully unrolled (no loop end to
 * keep), the first SMLADs of each output are SMUADs (no zeroing), 5 instructions per output
 * around the 400 of the 512 MACs. */
void ebq_mm4_s8_128(const int8_t *w, const int16_t *wide, uint32_t out_dim, int32_t *raw);

/* ebq_mm4_s8 for in_dim = 16 (E of the shipped models' embedding projections). */
void ebq_mm4_s8_16(const int8_t *w, const int16_t *wide, uint32_t out_dim, int32_t *raw);

/* raw[4o + r] = w_o . x_r: the unrolled 128- or 16-input kernel when it applies. */
static inline void ebq_mm4(const int8_t *w, const int16_t *wide, uint32_t in_dim,
                           uint32_t out_dim, int32_t *raw)
{
    if (in_dim == 128)
        ebq_mm4_s8_128(w, wide, out_dim, raw);
    else if (in_dim == 16)
        ebq_mm4_s8_16(w, wide, out_dim, raw);
    else
        ebq_mm4_s8(w, wide, in_dim, out_dim, raw);
}

/* acc = (x_r . w_o, x_r . w_o+1, x_r+1 . w_o, x_r+1 . w_o+1), 128 inputs, x a row pair and w
 * an output pair both widened by ebq_widen_rows(2, ...). */
void ebq_mm22_s16_128(const int32_t *x, const int32_t *w, int32_t *acc);

/* raw[8p + r] = w_2p . x_r, raw[8p + 4 + r] = w_2p+1 . x_r for 3 rows x widened by
 * ebq_widen_rows(3, 128, ...) and `pairs` pairs of 128-byte weight rows (raw[8p + 3] and
 * raw[8p + 7] are junk): 0.875 instructions, 1.17 cycles per MAC in the inner run
 * (support/mat_mult_s8.c). */
void ebq_mm32_s8_128(const int8_t *w, const int32_t *x, uint32_t pairs, int32_t *raw);

/* acc[6p + 3k + i] = x_2p+k . w_o+i for `pairs` row pairs widened by ebq_widen2 (128 inputs,
 * 128 words per pair, consecutive) and an output triple widened by ebq_widen3_128: 0.67
 * instructions and 1.08 est. cycles per MAC in the inner run (support/mat_mult_s8.c). */
void ebq_mm23_s16_128(const int32_t *x, const int32_t *w, uint32_t pairs, int32_t *acc);

/* ebq_widen_rows(3, 128, x, out) for the 3 rows x, x + 128, x + 256. */
void ebq_widen3_128(const int8_t *x, int32_t *out);

/* acc[0..3] = the 4 weight rows w, w + in_dim, ... times one widened row (in_dim % 8 == 0). */
void ebq_mv4_s8(const int8_t *w, const int32_t *xw, uint32_t in_dim, int32_t *acc);

/* ebq_widen2 for len = 128, unrolled (support/mat_mult_s8.c). */
void ebq_widen2_128(const int8_t *x0, const int8_t *x1, int32_t *out);

/* ebq_widen_rows(2, len, ...) for the rows x0 and x1 (word aligned, len % 8 == 0): per 8
 * inputs 2 LDRD, 8 SXTB16, 4 STRD. */
static inline void ebq_widen2(uint32_t len, const int8_t *x0, const int8_t *x1, int32_t *out)
{
    if (len == 128) {
        ebq_widen2_128(x0, x1, out);
        return;
    }
    const int8_t *end = x0 + len;
    uint32_t a0, a1, b0, b1, t0, t1;
    __asm volatile("1:\n"
                   "ldrd   %[a0], %[a1], [%[x0]], #8\n"
                   "ldrd   %[b0], %[b1], [%[x1]], #8\n"
                   "sxtb16 %[t0], %[a0]\n"
                   "sxtb16 %[a0], %[a0], ror #8\n"
                   "sxtb16 %[t1], %[b0]\n"
                   "sxtb16 %[b0], %[b0], ror #8\n"
                   "strd   %[t0], %[a0], [%[o]]\n"
                   "strd   %[t1], %[b0], [%[o], #8]\n"
                   "sxtb16 %[t0], %[a1]\n"
                   "sxtb16 %[a1], %[a1], ror #8\n"
                   "sxtb16 %[t1], %[b1]\n"
                   "sxtb16 %[b1], %[b1], ror #8\n"
                   "strd   %[t0], %[a1], [%[o], #16]\n"
                   "strd   %[t1], %[b1], [%[o], #24]\n"
                   "adds   %[o], %[o], #32\n"
                   "cmp    %[x0], %[end]\n"
                   "bne    1b\n"
                   : [x0] "+&r"(x0), [x1] "+&r"(x1), [o] "+&r"(out), [a0] "=&r"(a0), [a1] "=&r"(a1),
                     [b0] "=&r"(b0), [b1] "=&r"(b1), [t0] "=&r"(t0), [t1] "=&r"(t1)
                   : [end] "r"(end)
                   : "cc", "memory");
}

/* Bias, M, rounding constant and shift - 1 of an output pair (sh >= 2). */
typedef struct {
    int32_t b[2], m[2], rnd[2], s1[2];
} ebq_pair_rq;

static inline void ebq_pair_rq_load(ebq_pair_rq *p, uint32_t o, const int32_t *b,
                                    const int32_t *m, const int8_t *sh)
{
    for (uint32_t k = 0; k < 2; k++) {
        p->b[k] = b[o + k], p->m[k] = m[o + k], p->s1[k] = sh[o + k] - 1;
        p->rnd[k] = (int32_t)1 << (p->s1[k] - 1);
    }
}

/* 128 zero bytes: the partner of an odd last row (support/mat_mult_s8.c). */
extern const int8_t ebq_zero_row128[128];

/* out_dim x 128 weights w over `rows` rows of x (row stride 128) by ebq_mm22_s16_128 (an odd
 * last row is paired with a zero row: `tile` must not store row r + 1 when it is `rows`):
 * rows widened in chunks of `chunk` (even) row pairs' worth, each output pair widened once per
 * chunk; `tile` gets the 4 sums of row pair r and output pair o with that pair's parameters.
 * wide: 4 * 128 + 2 * 128 * chunk bytes. Inlined with `tile` so the call disappears. */
static inline __attribute__((always_inline)) void ebq_mm22_rows(
    uint32_t rows, uint32_t chunk, uint32_t out_dim, const int8_t *x, const int8_t *w,
    const int32_t *b, const int32_t *m, const int8_t *sh, int16_t *wide,
    void (*tile)(const int32_t a[4], const ebq_pair_rq *p, uint32_t r, uint32_t o,
                 const void *ctx),
    const void *ctx)
{
    const uint32_t d = 128;
    int32_t *ww = (int32_t *)(void *)wide, *xw = ww + d; /* output pair, then the row pairs */
    for (uint32_t r0 = 0; r0 < rows; r0 += chunk) {
        const uint32_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        for (uint32_t r = 0; r < nr; r += 2) /* an odd last row is paired with zeros */
            ebq_widen2(d, x + (size_t)(r0 + r) * d,
                       r0 + r + 1 < rows ? x + (size_t)(r0 + r + 1) * d : ebq_zero_row128,
                       xw + r / 2 * d);
        for (uint32_t o = 0; o < out_dim; o += 2) {
            ebq_widen2(d, w + (size_t)o * d, w + (size_t)(o + 1) * d, ww);
            ebq_pair_rq p;
            ebq_pair_rq_load(&p, o, b, m, sh);
            const int32_t *xp = xw;
            for (uint32_t r = r0; r < r0 + nr; r += 2, xp += d) {
                int32_t a[4];
                ebq_mm22_s16_128(xp, ww, a);
                tile(a, &p, r, o, ctx);
            }
        }
    }
}

/* The frame of the naked 4-accumulator kernels (ebq_mm4_s8, the attention's weighted sum):
 * arguments (w, x, len_bytes, outputs, raw) in r0-r3 and on the stack (AAPCS). Per output the
 * inner loop runs w from its row start to r2 = row end, with x restarting at the same block;
 * the 4 accumulators r4-r7 start at 0 and leave with one STM to raw. The inner loop between
 * the two may use r3, r8-r12 and lr. */
#define EBQ_MM4_PROLOGUE                                                                         \
    "push   {r4-r11, lr}\n"                                                                  \
    "ldr    r12, [sp, #36]\n"    /* raw (5th argument) */                                    \
    "push   {r1, r2, r3, r12}\n" /* [sp] x, [sp+4] len, [sp+8] outputs left, [sp+12] raw */  \
    "1:\n"                                                                                   \
    "ldr    r1, [sp]\n"                                                                      \
    "ldr    r2, [sp, #4]\n"                                                                  \
    "add    r2, r0, r2\n"                                                                    \
    "movs   r4, #0\n"                                                                        \
    "movs   r5, #0\n"                                                                        \
    "movs   r6, #0\n"                                                                        \
    "movs   r7, #0\n"                                                                        \
    "2:\n"
#define EBQ_MM4_EPILOGUE                                                                         \
    "cmp    r0, r2\n"                                                                        \
    "bne    2b\n"                                                                            \
    "ldr    r12, [sp, #12]\n"                                                                \
    "stm    r12!, {r4-r7}\n"                                                                 \
    "str    r12, [sp, #12]\n"                                                                \
    "ldr    r3, [sp, #8]\n"                                                                  \
    "subs   r3, r3, #1\n"                                                                    \
    "str    r3, [sp, #8]\n"                                                                  \
    "bne    1b\n"                                                                            \
    "add    sp, sp, #16\n"                                                                   \
    "pop    {r4-r11, pc}\n"

/* rq(acc, M, sh) for sh >= 2 with rnd = 2^(sh-2), s1 = sh - 1: SMMLA (high word of acc*M
 * plus rnd, the same floor as ebq_rq32), ASR. */
static inline int32_t ebq_rq32_fast(int32_t acc, int32_t m, int32_t rnd, int32_t s1)
{
    int32_t v;
    __asm("smmla %0, %1, %2, %3" : "=r"(v) : "r"(acc), "r"(m), "r"(rnd));
    return v >> s1;
}

/* sat8(rq(acc, M, sh)) for sh >= 2: ebq_rq32_fast, SSAT. */
static inline int8_t ebq_rq_sat8_fast(int32_t acc, int32_t m, int32_t rnd, int32_t s1)
{
    return (int8_t)__ssat(ebq_rq32_fast(acc, m, rnd, s1), 8);
}

/* The blocked attention of dsp/attention_rows_s8.c in two phases, for the fused layer rows
 * (dsp/layer_rows_s8.c); dim % 16 == 0, nq <= EBQ_BLOCK. */
typedef struct {
    int32_t lo[EBQ_BLOCK]; /* low word of 2^46 // E per query (0: no real key) */
    uint32_t big[EBQ_BLOCK]; /* 2^46 // E >= 2^31 */
} ebq_dsp_inv;

/* Phase 1: the e rows (nq rows of EBQ_KEYS_PAD(n) int16, zero for masked and padding keys,
 * stored by query pairs: nk = EBQ_KEYS_PAD(n) keys of pair r / 2 at e + 2 nk (r / 2), by
 * groups of 4 keys, the even query's 4 then the odd one's; so e holds nq rounded up to even
 * rows) and 1/E of nq queries q (nq,D). wide: 4 widened rows (8 D bytes); sc: 4 n int32. */
void ebq_dsp_attention_exp(const ebq_attention_params *p, uint32_t nq, const int8_t *q,
                           int16_t *wide, int32_t *sc, int16_t *e, ebq_dsp_inv *inv);

/* Phase 2, channels c..c+3: out[r * stride + k] = attn of query r, channel c + k (Q16).
 * col: 2 EBQ_KEYS_PAD(n) words (the transposed columns). */
void ebq_dsp_attention_cols(const ebq_attention_params *p, uint32_t nq, uint32_t c,
                            const int16_t *e, int32_t *col, const ebq_dsp_inv *inv, int32_t *out,
                            uint32_t stride);

#endif /* EBQ_DSP_H */
