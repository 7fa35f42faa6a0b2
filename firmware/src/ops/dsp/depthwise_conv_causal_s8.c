/*
 * dsp/depthwise_conv_causal_s8.c - Cortex-M4 twin of ../depthwise_conv_causal_s8.c (same bits).
 *
 * Per 4 channels, the window of rows t0-K+1 .. t0+rows-1 is transposed once into one int16
 * time series per channel (rows before 0 are zero, as the padding), 2 rows x 4 channels per
 * step (2 LDR, 4 SXTB16, 4 PKH). The taps become int16 pairs (w_2m, w_2m+1), and output row t
 * takes one SMLAD per pair with the series word (v_t-K+1+2m, v_t-K+2+2m), a plain (for odd
 * offsets unaligned) LDR. Four consecutive output rows share each tap pair, and rows r and r+2
 * share series words one step apart, so each step is 1 tap load + 2 series loads + 4 SMLAD for
 * 8 MACs. The steps are one unrolled run entered past the pairs that read only the padding
 * (a short input's rows have few real taps), and the requantization stays in registers
 * (conv_groups, assembly). Blocks that end by row 12 (D = 128) skip the series: the taps become
 * pairs of channels instead and each row reads its real taps straight from y (conv_direct).
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

#define EBQ_CONV_PAIRS 16u                          /* tap pairs of the unrolled run: K <= 32 */
#define EBQ_CONV_SERIES (EBQ_BLOCK + 2u * EBQ_CONV_PAIRS + 4u) /* int16 per channel, even */

/* Rows a and b (4 channels each) -> word i/2 of the 4 channels' series: (v_a, v_b) pairs. */
static inline void put_pair(uint32_t a, uint32_t b, uint32_t i, int16_t s[4][EBQ_CONV_SERIES])
{
    const int32_t la = ebq_lo02(a), lb = ebq_lo02(b), ha = ebq_hi13(a), hb = ebq_hi13(b);
    const int32_t p0 = ebq_pair_lo(la, lb), p1 = ebq_pair_lo(ha, hb);
    const int32_t p2 = ebq_pair_hi(la, lb), p3 = ebq_pair_hi(ha, hb);
    __builtin_memcpy(&s[0][i], &p0, 4);
    __builtin_memcpy(&s[1][i], &p1, 4);
    __builtin_memcpy(&s[2][i], &p2, 4);
    __builtin_memcpy(&s[3][i], &p3, 4);
}

/* Series of channels c..c+3: s[k][i] = y[r0 + i][c + k] for from <= i < len (len even), zero
 * for rows < 0 or >= last. The pairs wholly inside [0, last) take the loop without bounds checks. */
static void series4(int32_t r0, uint32_t from, uint32_t len, uint32_t last, uint32_t dim,
                    const int8_t *yc, int16_t s[4][EBQ_CONV_SERIES])
{
    uint32_t i = from; /* even; the entries before it are never read (first_pair) */
    for (; i < len && r0 + (int32_t)i < 0; i += 2) { /* pairs that start before row 0 */
        const int32_t rb = r0 + (int32_t)i + 1;
        put_pair(0, (rb >= 0 && rb < (int32_t)last) ? ebq_ld32(yc + (size_t)rb * dim) : 0, i, s);
    }
    const int8_t *p = yc + (size_t)(r0 + (int32_t)i) * dim;
    for (; i < len && r0 + (int32_t)i + 1 < (int32_t)last; i += 2, p += 2 * dim)
        put_pair(ebq_ld32(p), ebq_ld32(p + dim), i, s);
    for (; i < len; i += 2) { /* pairs that end at or after `last` */
        const int32_t ra = r0 + (int32_t)i;
        put_pair(ra < (int32_t)last ? ebq_ld32(yc + (size_t)ra * dim) : 0, 0, i, s);
    }
}

/* 4 output rows r..r+3 of one channel, entering an unrolled run of EBQ_CONV_PAIRS tap pairs at
 * pair `first` (even): acc_k += wp[P] . (v[k + 2i], v[k + 2i + 1]) for P = first + i, the tap
 * pairs right-aligned in wp (a kernel of K < 32 starts at pair 16 - K/2) and v the series at the
 * group's first pair. Per pair: 3 LDR (tap pair, series words at v + 2i + 2 and the unaligned one
 * at v + 2i + 3) and 4 SMLAD, no loop counter: the pairs before `first` (padding before row 0,
 * or K < 32) are jumped over (ADR + BX into the run: every instruction is 32-bit, 56 bytes per 2
 * pairs), so a short input's row group costs its few real pairs only. */
static inline __attribute__((always_inline)) void conv4_pairs(const int16_t *v, const int32_t *wp,
                                                              uint32_t first, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    uint32_t x0 = ebq_ld32(v), x1 = ebq_ld32(v + 1), x2, x3, w;
    uint32_t off = first / 2 * 56u; /* bytes of the skipped pairs */
    const int16_t *vp = v + 2;
    const int32_t *wq = wp + first;
#define EBQ_CONV_PAIR(p, q, n0, n1)                                                              \
    "ldr.w  %[w], [%[wq]], #4\n"                                                             \
    "ldr.w  " n1 ", [%[vp], #2]\n"                                                           \
    "ldr.w  " n0 ", [%[vp]], #4\n"                                                           \
    "smlad  %[a0], %[w], " p ", %[a0]\n"                                                     \
    "smlad  %[a1], %[w], " q ", %[a1]\n"                                                     \
    "smlad  %[a2], %[w], " n0 ", %[a2]\n"                                                    \
    "smlad  %[a3], %[w], " n1 ", %[a3]\n"
    __asm volatile("adr    %[w], 1f\n"
                   "add    %[off], %[off], %[w]\n"
                   "orr    %[off], %[off], #1\n" /* Thumb state */
                   "bx     %[off]\n"
                   ".p2align 2\n"
                   "1:\n"
                   ".rept 8\n" EBQ_CONV_PAIR("%[x0]", "%[x1]", "%[x2]", "%[x3]")
                       EBQ_CONV_PAIR("%[x2]", "%[x3]", "%[x0]", "%[x1]") ".endr\n"
                   : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                     [x0] "+&r"(x0), [x1] "+&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3),
                     [w] "=&r"(w), [off] "+&r"(off), [vp] "+&r"(vp), [wq] "+&r"(wq)
                   :
                   : "cc", "memory");
#undef EBQ_CONV_PAIR
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

/* The first (even) tap pair of the run that row group r needs: the pairs that read only the
 * `zeros` padding entries of the series are skipped (rounded down to even: conv4_pairs enters
 * by 2 pairs, and the series is zero from `from` on, see ebq_depthwise_conv_causal_s8). */
static inline uint32_t first_pair(uint32_t r, uint32_t zeros, uint32_t shift)
{
    /* Pair p reads v[r + 2p .. r + 2p + 4]: all padding while r + 2p + 4 < zeros. */
    const uint32_t p0 = zeros > r + 4 ? (zeros - r - 3) / 2 : 0;
    return (shift + p0) & ~1u;
}

/* The state of conv_groups: one channel's row groups, sh >= 2. Offsets are in the asm. */
typedef struct {
    const int16_t *v;  /*  0: the series at the next group's first row */
    int32_t q;         /*  4: zeros - 3 - r of the next group (first_pair's p0 = max(q, 0) / 2) */
    const int32_t *wp; /*  8: the right-aligned tap pairs */
    uint32_t shift;    /* 12: EBQ_CONV_PAIRS - K/2 */
    int32_t bias;      /* 16 */
    int32_t m, rnd, s1; /* 20: ebq_rq_sat8_fast's M, rounding constant, shift - 1 */
    const int8_t *act; /* 32: the output table, from its middle */
    uint32_t stride;   /* 36: D, the row stride of out */
} conv_job;

/* Rows 0..rows-1 (rows > 0) of one channel into out (row stride j->stride), by groups of 4
 * (a last group of 1..3 rows is computed in full and stored in part): per group
 * first_pair, conv4_pairs' run, then SMMLA/ASR/SSAT and the table per output, all in
 * registers (in C the 12 registers of the run leave none for the requantization, and GCC
 * spills it to the stack: 42 instructions per 4 outputs, 24 here). Registers: r0-r3 the
 * accumulators, r4-r7 the series words, r8 the tap pair, r9 the series, r10 the taps, r11 the
 * job, r12 out, lr the rows left. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
__attribute__((naked)) static void conv_groups(conv_job *j, int8_t *out, uint32_t rows)
{
#define EBQ_CONV_PAIR_ASM(p, q, n0, n1)                                                          \
    "ldr.w  r8, [r10], #4\n"                                                                 \
    "ldr.w  " n1 ", [r9, #2]\n"                                                              \
    "ldr.w  " n0 ", [r9], #4\n"                                                              \
    "smlad  r0, r8, " p ", r0\n"                                                             \
    "smlad  r1, r8, " q ", r1\n"                                                             \
    "smlad  r2, r8, " n0 ", r2\n"                                                            \
    "smlad  r3, r8, " n1 ", r3\n"
#define EBQ_CONV_RQ(a)                                                                           \
    "smmla  " a ", " a ", r4, r5\n"                                                          \
    "asr.w  " a ", " a ", r6\n"                                                              \
    "ssat   " a ", #8, " a "\n"                                                              \
    "ldrsb  " a ", [r7, " a "]\n"
    __asm volatile("push   {r4-r11, lr}\n"
                   "mov    r11, r0\n"
                   "mov    r12, r1\n"
                   "mov    lr, r2\n"
                   "2:\n"
                   "ldr    r8, [r11, #4]\n" /* q */
                   "ldr    r9, [r11]\n"     /* v */
                   "cmp    r8, #0\n"
                   "it     lt\n"
                   "movlt  r8, #0\n"
                   "lsrs   r8, r8, #1\n"    /* p0 */
                   "ldr    r10, [r11, #12]\n"
                   "add    r8, r8, r10\n"
                   "bic    r8, r8, #1\n"    /* first */
                   "sub    r10, r8, r10\n"  /* first - shift: 4 bytes of series per pair */
                   "add    r9, r9, r10, lsl #2\n"
                   "ldr    r10, [r11, #8]\n"
                   "add    r10, r10, r8, lsl #2\n"
                   "ldr    r5, [r9, #2]\n"
                   "ldr    r4, [r9], #4\n"
                   "movs   r6, #28\n"       /* 56 bytes of code per 2 pairs */
                   "mul    r8, r8, r6\n"
                   "adr.w  r6, 1f\n"
                   "add    r8, r8, r6\n"
                   "orr    r8, r8, #1\n"    /* Thumb state */
                   "ldr    r0, [r11, #16]\n"
                   "mov    r1, r0\n"
                   "mov    r2, r0\n"
                   "mov    r3, r0\n"
                   "bx     r8\n"
                   ".p2align 2\n"
                   "1:\n"
                   ".rept 8\n" EBQ_CONV_PAIR_ASM("r4", "r5", "r6", "r7")
                       EBQ_CONV_PAIR_ASM("r6", "r7", "r4", "r5") ".endr\n"
                   "add    r9, r11, #20\n"
                   "ldm    r9, {r4-r8}\n"   /* m, rnd, s1, act, stride */
                   EBQ_CONV_RQ("r0") EBQ_CONV_RQ("r1") EBQ_CONV_RQ("r2") EBQ_CONV_RQ("r3")
                   "strb   r0, [r12]\n"
                   "cmp    lr, #4\n"
                   "blt    3f\n"           /* the last 1..3 rows */
                   "strb   r1, [r12, r8]\n"
                   "add    r12, r12, r8, lsl #1\n"
                   "strb   r2, [r12]\n"
                   "strb   r3, [r12, r8]\n"
                   "add    r12, r12, r8, lsl #1\n"
                   "ldr    r9, [r11]\n"
                   "adds   r9, r9, #8\n"    /* 4 rows on */
                   "str    r9, [r11]\n"
                   "ldr    r8, [r11, #4]\n"
                   "subs   r8, r8, #4\n"
                   "str    r8, [r11, #4]\n"
                   "subs   lr, lr, #4\n"
                   "bne    2b\n"
                   "pop    {r4-r11, pc}\n"
                   "3:\n"
                   "cmp    lr, #2\n"
                   "it     ge\n"
                   "strbge r1, [r12, r8]\n"
                   "add    r12, r12, r8, lsl #1\n"
                   "cmp    lr, #3\n"
                   "it     ge\n"
                   "strbge r2, [r12]\n"
                   "pop    {r4-r11, pc}\n");
#undef EBQ_CONV_RQ
#undef EBQ_CONV_PAIR_ASM
}
#pragma GCC diagnostic pop

/* Output rows 0..rows-1 of one channel from its series v and K taps wc (K % 4 == 0, K <= 32),
 * then the table `act` (indexed from its middle: the identity or the SiLU table). The first
 * `zeros` series entries are the padding before row 0. Full row groups go to conv_groups
 * when sh >= 2, sh < 2 to
 * conv4_pairs and C. */
static void conv_channel(uint32_t rows, uint32_t kernel, uint32_t zeros, const int16_t *v,
                         const int8_t *wc, int32_t bias, int32_t m, int32_t sh, uint32_t dim,
                         const int8_t *act, int8_t *out)
{
    int32_t wp[EBQ_CONV_PAIRS]; /* (w_2m, w_2m+1), right-aligned: pair m at shift + m */
    const uint32_t shift = EBQ_CONV_PAIRS - kernel / 2;
    /* The last row group starts at the lowest pair: the pairs before it are never read. */
    for (uint32_t g = 2 * (first_pair((rows - 1) & ~3u, zeros, shift) - shift); g < kernel;
         g += 4) {
        const uint32_t u = ebq_ld32(wc + g);
        const int32_t l = ebq_lo02(u), h = ebq_hi13(u); /* (w0, w2), (w1, w3) */
        wp[shift + g / 2] = ebq_pair_lo(l, h);
        wp[shift + g / 2 + 1] = ebq_pair_hi(l, h);
    }
    if (sh >= 2) {
        conv_job j = {v, (int32_t)zeros - 3, wp, shift, bias, m, (int32_t)1 << (sh - 2), sh - 1,
                      act, dim};
        conv_groups(&j, out, rows);
        return;
    }
    for (uint32_t r = 0; r < rows; r += 4, out += 4 * dim) { /* sh < 2: the 64-bit requantization */
        const uint32_t first = first_pair(r, zeros, shift);
        int32_t acc[4] = {bias, bias, bias, bias};
        conv4_pairs(v + r + 2 * (first - shift), wp, first, acc);
        for (uint32_t k = 0; k < 4 && r + k < rows; k++)
            out[(size_t)k * dim] = act[ebq_rq_sat8(acc[k], m, sh)];
    }
}

/* The state of conv_direct_rows: 4 channels, D = 128, every sh >= 2. Offsets are in the asm. */
typedef struct {
    int32_t b[4];        /*  0: the biases (the accumulators' start) */
    int32_t q[4][3];     /* 16: per channel M, rounding constant, shift - 1 */
    const int8_t *act;   /* 64: the output table, from its middle */
    const int32_t *wq;   /* 68: the tap pairs of channels, right-aligned: tap k at 2 (32 - K + k) */
    const int8_t *yc;    /* 72: y + c */
    uint32_t t;          /* 76: the next row */
    uint32_t kernel;     /* 80: K */
    uint32_t shift;      /* 84: 32 - K */
} conv_djob;

/* Output rows t.. (rows > 0) of 4 channels without the transposes (conv_direct): per row the
 * biases by one LDM, an unrolled run of 32 taps entered at the row's first real tap (ADR + BX),
 * per tap LDR of the 4 channels' inputs (row stride 128), LDRD of the channels' tap pairs
 * (w_c, w_c+2) (w_c+1, w_c+3), 2 SXTB16 and 4 SMLAxy (the pairs run along the channels: 8
 * instructions for 4 MACs, no loop counter), then SMMLA/ASR/SSAT and the table per output.
 * Registers: r0-r3 the accumulators, r4 the inputs, r5/r6 them unpacked, r7/r8 the tap pairs,
 * r9 y, r10 the taps, r11 the job, r12 out, lr the rows left. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
__attribute__((naked)) static void conv_direct_rows(conv_djob *j, int8_t *out, uint32_t rows)
{
#define EBQ_CONV_TAP                                                                             \
    "ldr.w  r4, [r9], #128\n"                                                                \
    "ldrd   r7, r8, [r10], #8\n"                                                             \
    "sxtb16 r5, r4\n"                                                                        \
    "sxtb16 r6, r4, ror #8\n"                                                                \
    "smlabb r0, r5, r7, r0\n"                                                                \
    "smlatt r2, r5, r7, r2\n"                                                                \
    "smlabb r1, r6, r8, r1\n"                                                                \
    "smlatt r3, r6, r8, r3\n"
#define EBQ_CONV_DRQ(a, mo, so, k)                                                               \
    "ldrd   r4, r5, [r11, #" mo "]\n"                                                        \
    "ldr    r6, [r11, #" so "]\n"                                                            \
    "smmla  " a ", " a ", r4, r5\n"                                                          \
    "asr.w  " a ", " a ", r6\n"                                                              \
    "ssat   " a ", #8, " a "\n"                                                              \
    "ldrsb  " a ", [r7, " a "]\n"                                                            \
    "strb   " a ", [r12, #" k "]\n"
    __asm volatile("push   {r4-r11, lr}\n"
                   "mov    r11, r0\n"
                   "mov    r12, r1\n"
                   "mov    lr, r2\n"
                   "2:\n"
                   "ldm    r11, {r0-r3}\n"
                   "ldr    r4, [r11, #76]\n"  /* t */
                   "rsb    r6, r4, #31\n"
                   "ldr    r5, [r11, #84]\n"
                   "cmp    r6, r5\n"
                   "it     lt\n"
                   "movlt  r6, r5\n"          /* the first tap: max(31 - t, 32 - K) */
                   "ldr    r5, [r11, #80]\n"
                   "subs   r7, r4, r5\n"
                   "adds   r7, r7, #1\n"      /* t + 1 - K: the row of tap 0 */
                   "ldr    r9, [r11, #72]\n"
                   "cmp    r7, #0\n"
                   "it     gt\n"
                   "addgt  r9, r9, r7, lsl #7\n"
                   "ldr    r10, [r11, #68]\n"
                   "add    r10, r10, r6, lsl #3\n"
                   "adr.w  r7, 1f\n"
                   "add    r7, r7, r6, lsl #5\n" /* 32 bytes of code per tap */
                   "orr    r7, r7, #1\n"      /* Thumb state */
                   "bx     r7\n"
                   ".p2align 2\n"
                   "1:\n"
                   ".rept 32\n" EBQ_CONV_TAP ".endr\n"
                   "ldr    r7, [r11, #64]\n"
                   EBQ_CONV_DRQ("r0", "16", "24", "0") EBQ_CONV_DRQ("r1", "28", "36", "1")
                   EBQ_CONV_DRQ("r2", "40", "48", "2") EBQ_CONV_DRQ("r3", "52", "60", "3")
                   "ldr    r4, [r11, #76]\n"
                   "adds   r4, r4, #1\n"
                   "str    r4, [r11, #76]\n"
                   "add    r12, r12, #128\n"
                   "subs   lr, lr, #1\n"
                   "bne    2b\n"
                   "pop    {r4-r11, pc}\n");
#undef EBQ_CONV_DRQ
#undef EBQ_CONV_TAP
}
#pragma GCC diagnostic pop

/* Rows t0..t0+rows-1 of a short input (D = 128, every sh >= 2), whose windows are mostly
 * padding: no series, per 4 channels their taps as pairs of channels (only the taps the last
 * row reads), then conv_direct_rows. */
static void conv_direct(const ebq_conv_params *p, uint32_t t0, uint32_t rows, const int8_t *y,
                        const int8_t *act, int8_t *out)
{
    const uint32_t kernel = p->kernel, shift = 32 - kernel, tl = t0 + rows - 1;
    const uint32_t kmin = tl + 1 >= kernel ? 0 : kernel - 1 - tl; /* the last row's first tap */
    int32_t wq[64] __attribute__((aligned(8)));
    conv_djob j;
    j.act = act, j.wq = wq, j.kernel = kernel, j.shift = shift;
    for (uint32_t c = 0; c < 128; c += 4) {
        const int8_t *wc = p->w + (size_t)c * kernel;
        for (uint32_t k = kmin; k < kernel; k++) {
            wq[2 * (shift + k)] = (int32_t)(uint16_t)(int16_t)wc[k] |
                                  (int32_t)((uint32_t)wc[2 * kernel + k] << 16);
            wq[2 * (shift + k) + 1] = (int32_t)(uint16_t)(int16_t)wc[kernel + k] |
                                      (int32_t)((uint32_t)wc[3 * kernel + k] << 16);
        }
        for (uint32_t i = 0; i < 4; i++) {
            const int32_t sh = p->rq->sh[c + i];
            j.b[i] = p->b[c + i];
            j.q[i][0] = p->rq->m[c + i], j.q[i][1] = (int32_t)1 << (sh - 2), j.q[i][2] = sh - 1;
        }
        j.yc = y + c, j.t = t0;
        conv_direct_rows(&j, out + c, rows);
    }
}

/* The output table from its middle: the SiLU's, or the identity. */
static const int8_t *conv_table(const int8_t *silu)
{
    static const int8_t identity[256] = {
#define EBQ_ID8(v) (int8_t)(v), (int8_t)(v + 1), (int8_t)(v + 2), (int8_t)(v + 3), \
                   (int8_t)(v + 4), (int8_t)(v + 5), (int8_t)(v + 6), (int8_t)(v + 7)
#define EBQ_ID32(v) EBQ_ID8(v), EBQ_ID8(v + 8), EBQ_ID8(v + 16), EBQ_ID8(v + 24)
        EBQ_ID32(-128), EBQ_ID32(-96), EBQ_ID32(-64), EBQ_ID32(-32),
        EBQ_ID32(0), EBQ_ID32(32), EBQ_ID32(64), EBQ_ID32(96)};
#undef EBQ_ID32
#undef EBQ_ID8
    return (silu ? silu : identity) + 128; /* the SiLU fused into the stores */
}

#ifndef EBQ_CONV_DIRECT
#define EBQ_CONV_DIRECT 12u
#endif

/* Rows whose windows are mostly padding (a short input; D = 128, K <= 32, every sh >= 2):
 * taps straight from y (conv_direct) cost less than the series and conv_groups' set-up, and
 * than the plain C of ebq_depthwise_conv_causal_s8 from 2 rows on. Returns 1 when done. */
__attribute__((noinline)) static int conv_short(const ebq_conv_params *p, uint32_t t0,
                                                uint32_t rows, const int8_t *y, int8_t *out)
{
    if (p->dim != 128 || p->kernel > 2 * EBQ_CONV_PAIRS || t0 + rows > EBQ_CONV_DIRECT ||
        t0 + rows < 2)
        return 0;
    for (uint32_t c = 0; c < 128; c++)
        if (p->rq->sh[c] < 2)
            return 0;
    conv_direct(p, t0, rows, y, conv_table(p->silu), out);
    return 1;
}

void ebq_depthwise_conv_causal_s8(const ebq_conv_params *p, uint32_t t0, uint32_t rows,
                                  const int8_t *y, int8_t *out)
{
    const uint32_t dim = p->dim, kernel = p->kernel;
    const int8_t *w = p->w, *silu = p->silu;
    const int32_t *b = p->b;
    const ebq_rq_params *rq = p->rq;
    if (conv_short(p, t0, rows, y, out))
        return;
#ifndef EBQ_CONV_SHORT
#define EBQ_CONV_SHORT 6u
#endif
    /* Otherwise rows whose windows are mostly padding: plain C over their few real taps costs
     * less than the transposes and the per-channel set-up. */
    if (kernel % 4 != 0 || kernel > 2 * EBQ_CONV_PAIRS || dim % 4 != 0 || rows > EBQ_BLOCK ||
        t0 + rows <= EBQ_CONV_SHORT) {
        for (uint32_t r = 0; r < rows; r++)
            ebq_depthwise_conv_causal_row_s8(p, t0 + r, y, out + (size_t)r * dim);
        return;
    }
    const int8_t *act = conv_table(silu);
    int16_t s[4][EBQ_CONV_SERIES] __attribute__((aligned(4)));
    const uint32_t len = ((rows + 3) & ~3u) + kernel + 4; /* every index conv_channel reads */
    const uint32_t zeros = t0 + 1 < kernel ? kernel - 1 - t0 : 0; /* series entries < row 0 */
    /* The first entry read: first_pair's rounding reads at most 2 entries below zeros - 4. */
    const uint32_t from = zeros > 6 ? (zeros - 6) & ~1u : 0;
    for (uint32_t c = 0; c < dim; c += 4) {
        series4((int32_t)t0 - (int32_t)kernel + 1, from, len, t0 + rows, dim, y + c, s);
        for (uint32_t k = 0; k < 4; k++)
            conv_channel(rows, kernel, zeros, s[k], w + (size_t)(c + k) * kernel, b[c + k],
                         rq->m[c + k], rq->sh[c + k], dim, act, out + c + k);
    }
}
#else
#include "../depthwise_conv_causal_s8.c"
#endif
