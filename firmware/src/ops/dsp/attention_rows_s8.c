/*
 * dsp/attention_rows_s8.c - Cortex-M4 twin of ../attention_rows_s8.c (same bits).
 *
 * Scores: the block's queries are widened to int16 once; each key word (4 int8 of y_j, two
 * SXTB16) then feeds 8 SMLADs (4 queries x 2 pairs). Weighted sum: e_j is Q14 <= 2^14, so it fits
 * int16; pairs of keys (j, j+1) are packed channel-wise with PKHBT/PKHTB so that one SMLAD adds
 * e_j y_jc + e_j+1 y_j+1,c for two queries. Masked keys get e = 0 (no branch in the inner loop).
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
    int32_t big_e = 0;
    for (uint32_t j = 0; j < n; j++) {
        int32_t ej = 0;
        if (ids[j] != 0) {
            int64_t z = ebq_rq(s[j] - smax, sm->m[0], sm->sh[0]);
            z = z < EBQ_EXP_ZMIN ? EBQ_EXP_ZMIN : (z > 0 ? 0 : z);
            ej = ebq_exp_q14((int32_t)z, hi, lo);
        }
        const int16_t e16 = (int16_t)ej;
        __builtin_memcpy(e + 2 * j, &e16, 2);
        big_e += ej;
    }
    return smax == INT32_MIN ? 0 : big_e;
}

/* Channel pairs of keys j, j+1: (y_j c, y_j+1 c) for the 4 channels of one word each. */
#define PAIR_LO(a, b) ((int32_t)(((uint32_t)(a) & 0xFFFFu) | ((uint32_t)(b) << 16)))
#define PAIR_HI(a, b) ((int32_t)(((uint32_t)(a) >> 16) | ((uint32_t)(b) & 0xFFFF0000u)))

/* acc[r][c] = sum_j e_r[j] y_jc for nr <= 2 queries (e rows int16, n padded to even). */
static void weighted_sum2(uint32_t nr, uint32_t n, uint32_t dim, const int8_t *y,
                          const int16_t *e0, const int16_t *e1, int32_t *acc0, int32_t *acc1)
{
    for (uint32_t c = 0; c < dim; c += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        const int8_t *yc = y + c;
        uint32_t j = 0;
        for (; j + 1 < n; j += 2, yc += 2 * dim) {
            const uint32_t ya = ebq_ld32(yc), yb = ebq_ld32(yc + dim);
            const int32_t a02 = ebq_lo02(ya), a13 = ebq_hi13(ya);
            const int32_t b02 = ebq_lo02(yb), b13 = ebq_hi13(yb);
            const int32_t p0 = PAIR_LO(a02, b02), p2 = PAIR_HI(a02, b02);
            const int32_t p1 = PAIR_LO(a13, b13), p3 = PAIR_HI(a13, b13);
            const int32_t ea = (int32_t)ebq_ld32(e0 + j);
            a0 = __smlad(p0, ea, a0);
            a1 = __smlad(p1, ea, a1);
            a2 = __smlad(p2, ea, a2);
            a3 = __smlad(p3, ea, a3);
            if (nr == 2) {
                const int32_t eb = (int32_t)ebq_ld32(e1 + j);
                b0 = __smlad(p0, eb, b0);
                b1 = __smlad(p1, eb, b1);
                b2 = __smlad(p2, eb, b2);
                b3 = __smlad(p3, eb, b3);
            }
        }
        if (j < n) { /* odd n: the last key alone */
            const int8_t *yl = y + (size_t)j * dim + c;
            int16_t ex, ey;
            __builtin_memcpy(&ex, e0 + j, 2);
            __builtin_memcpy(&ey, e1 + j, 2);
            a0 += ex * yl[0], a1 += ex * yl[1], a2 += ex * yl[2], a3 += ex * yl[3];
            if (nr == 2)
                b0 += ey * yl[0], b1 += ey * yl[1], b2 += ey * yl[2], b3 += ey * yl[3];
        }
        acc0[c] = a0, acc0[c + 1] = a1, acc0[c + 2] = a2, acc0[c + 3] = a3;
        if (nr == 2)
            acc1[c] = b0, acc1[c + 1] = b1, acc1[c + 2] = b2, acc1[c + 3] = b3;
    }
}

void ebq_attention_rows_s8(uint32_t nq, uint32_t n, uint32_t dim, const int8_t *q,
                           const int8_t *y, const uint16_t *ids, const ebq_rq_params *sm,
                           const int16_t *exp_hi, const int16_t *exp_lo, int32_t *scores,
                           int16_t *wide, int32_t *attn)
{
    ebq_widen_rows(nq, dim, q, wide);
    scores_block(nq, n, dim, wide, y, scores);
    int32_t big_e[EBQ_BLOCK];
    for (uint32_t r = 0; r < nq; r++)
        big_e[r] = softmax_exp(n, scores + (size_t)r * n, ids, sm, exp_hi, exp_lo);
    for (uint32_t r = 0; r < nq; r += 2) {
        const uint32_t nr = nq - r < 2 ? 1 : 2;
        weighted_sum2(nr, n, dim, y, (const int16_t *)(scores + (size_t)r * n),
                      (const int16_t *)(scores + (size_t)(r + nr - 1) * n),
                      attn + (size_t)r * dim, attn + (size_t)(r + nr - 1) * dim);
    }
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
