/*
 * dsp/attention_rows_s8.c - Cortex-M4 twin of ../attention_rows_s8.c (same bits).
 *
 * Scores: the block's queries are widened to int16 once; each key word (4 int8 of y_j, two
 * SXTB16) then feeds 8 SMLADs (4 queries x 2 pairs). Weighted sum: e_j is Q14 <= 2^14, so it fits
 * int16; pairs of keys (j, j+1) are packed channel-wise with PKHBT/PKHTB so that one SMLAD adds
 * e_j y_jc + e_j+1 y_j+1,c. Masked keys get e = 0 (no branch in the inner loop).
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
        if (nq == EBQ_BLOCK && dim % 8 == 0) {
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
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [yp] "+r"(yp),
                  [ep] "+r"(ep), [ya] "=&r"(ya), [yb] "=&r"(yb), [t0] "=&r"(t0), [ev] "=&r"(ev)
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

/* The 4-query, D = 128 path: scores stored key-major (sc[4j + q]) so that the exp values can be
 * written in place as int16 pairs interleaved per key pair: [q0: e_2p e_2p+1][q1..][q2..][q3..]
 * at byte 16p (each write lands below every score still to be read). The weighted sum then
 * takes 2 channels x 2 keys per step for all 4 queries: LDRH x2 + ORR + 2 SXTB16 + 4 LDR +
 * 8 SMLAD + 2 = 19 instructions for 16 MACs. */
static void attention4_128(uint32_t n, const int8_t *q, const int8_t *y, const uint16_t *ids,
                           const ebq_rq_params *sm, const int16_t *hi, const int16_t *lo,
                           int32_t *sc, int16_t *wide, int32_t *attn)
{
    const uint32_t dim = 128;
    ebq_widen_rows(EBQ_BLOCK, dim, q, wide);
    int32_t smax[4] = {INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
    for (uint32_t j = 0; j < n; j++) {
        int32_t a[4] = {0, 0, 0, 0};
        ebq_dot4_s8(dim, y + (size_t)j * dim, wide, a);
        for (uint32_t r = 0; r < 4; r++) {
            sc[4 * j + r] = a[r];
            if (ids[j] != 0 && a[r] > smax[r])
                smax[r] = a[r];
        }
    }
    const int32_t mult = sm->m[0], shift = sm->sh[0];
    int32_t big_e[4] = {0, 0, 0, 0};
    uint8_t *e = (uint8_t *)sc;
    for (uint32_t j = 0; j < n; j++) {
        int32_t s4[4];
        __builtin_memcpy(s4, sc + 4 * j, 16); /* read the key's 4 scores before overwriting */
        for (uint32_t r = 0; r < 4; r++) {
            int32_t ej = 0;
            if (ids[j] != 0) {
                int64_t z = ebq_rq(s4[r] - smax[r], mult, shift);
                z = z < EBQ_EXP_ZMIN ? EBQ_EXP_ZMIN : (z > 0 ? 0 : z);
                ej = ebq_exp_q14_inline((int32_t)z, hi, lo);
            }
            const int16_t e16 = (int16_t)ej;
            __builtin_memcpy(e + 16 * (j / 2) + 4 * r + 2 * (j & 1u), &e16, 2);
            big_e[r] += ej;
        }
    }
    const uint32_t pairs = n / 2;
    for (uint32_t c = 0; c < dim; c += 2) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
        if (pairs > 0) {
            const int8_t *yp = y + c;
            const uint8_t *ep = e, *end = e + 16 * pairs;
            uint32_t t, u, ev;
            __asm volatile(
                "1:\n"
                "ldrh   %[t], [%[yp]], #128\n"
                "ldrh   %[u], [%[yp]], #128\n"
                "orr    %[t], %[t], %[u], lsl #16\n"
                "sxtb16 %[u], %[t]\n"
                "sxtb16 %[t], %[t], ror #8\n"
                "ldr    %[ev], [%[ep]], #4\n"
                "smlad  %[a0], %[u], %[ev], %[a0]\n"
                "smlad  %[a1], %[t], %[ev], %[a1]\n"
                "ldr    %[ev], [%[ep]], #4\n"
                "smlad  %[a2], %[u], %[ev], %[a2]\n"
                "smlad  %[a3], %[t], %[ev], %[a3]\n"
                "ldr    %[ev], [%[ep]], #4\n"
                "smlad  %[a4], %[u], %[ev], %[a4]\n"
                "smlad  %[a5], %[t], %[ev], %[a5]\n"
                "ldr    %[ev], [%[ep]], #4\n"
                "smlad  %[a6], %[u], %[ev], %[a6]\n"
                "smlad  %[a7], %[t], %[ev], %[a7]\n"
                "cmp    %[ep], %[end]\n"
                "bne    1b\n"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [a4] "+r"(a4),
                  [a5] "+r"(a5), [a6] "+r"(a6), [a7] "+r"(a7), [yp] "+r"(yp), [ep] "+r"(ep),
                  [t] "=&r"(t), [u] "=&r"(u), [ev] "=&r"(ev)
                : [end] "r"(end)
                : "cc", "memory");
        }
        int32_t acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        if (n & 1u) { /* odd n: the last key alone */
            const int8_t *yl = y + (size_t)(n - 1) * dim + c;
            for (uint32_t r = 0; r < 4; r++) {
                int16_t ej;
                __builtin_memcpy(&ej, e + 16 * pairs + 4 * r, 2);
                acc[2 * r] += ej * yl[0];
                acc[2 * r + 1] += ej * yl[1];
            }
        }
        for (uint32_t r = 0; r < 4; r++) {
            attn[r * dim + c] = acc[2 * r];
            attn[r * dim + c + 1] = acc[2 * r + 1];
        }
    }
    for (uint32_t r = 0; r < 4; r++) {
        int32_t *ar = attn + (size_t)r * dim;
        const int64_t inv = big_e[r] ? ((int64_t)1 << 46) / big_e[r] : 0;
        for (uint32_t c = 0; c < dim; c++)
            ar[c] = (int32_t)((ar[c] * inv + ((int64_t)1 << 29)) >> 30);
    }
}

void ebq_attention_rows_s8(uint32_t nq, uint32_t n, uint32_t dim, const int8_t *q,
                           const int8_t *y, const uint16_t *ids, const ebq_rq_params *sm,
                           const int16_t *exp_hi, const int16_t *exp_lo, int32_t *scores,
                           int16_t *wide, int32_t *attn)
{
    if (nq == EBQ_BLOCK && dim == 128) {
        attention4_128(n, q, y, ids, sm, exp_hi, exp_lo, scores, wide, attn);
        return;
    }
    ebq_widen_rows(nq, dim, q, wide);
    scores_block(nq, n, dim, wide, y, scores);
    int32_t big_e[EBQ_BLOCK];
    for (uint32_t r = 0; r < nq; r++)
        big_e[r] = softmax_exp(n, scores + (size_t)r * n, ids, sm, exp_hi, exp_lo);
    for (uint32_t r = 0; r < nq; r++)
        weighted_sum(n, dim, y, (const int16_t *)(scores + (size_t)r * n),
                     attn + (size_t)r * dim);
    for (uint32_t r = 0; r < nq; r++) {
        int32_t *a = attn + (size_t)r * dim;
        /* attn_c = acc_c / E in Q16; no real key -> 0 (then every e_j was 0 and acc = 0). */
        const int64_t inv = big_e[r] ? ((int64_t)1 << 46) / big_e[r] : 0;
        for (uint32_t c = 0; c < dim; c++)
            a[c] = (int32_t)((a[c] * inv + ((int64_t)1 << 29)) >> 30);
    }
}
#else
#include "../attention_rows_s8.c"
#endif
