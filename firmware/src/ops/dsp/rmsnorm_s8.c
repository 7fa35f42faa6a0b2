/*
 * dsp/rmsnorm_s8.c - Cortex-M4 twin of ../rmsnorm_s8.c (same bits).
 *
 * Sum of squares with SMLAD on SXTB16 pairs (one LDR + 2 SXTB16 + 2 SMLAD per 4 values), the
 * shared ebq_isqrt64 (../isqrt64.c), then the per-channel requantization over 4 rows at a time,
 * so each channel's M and shift are loaded once per 4 values (SMMLA, ASR, SSAT).
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

/* R of one row: isqrt(2^48 / sum x^2), 0 for an all-zero row. */
static int32_t row_scale(uint32_t dim, const int8_t *x)
{
    int32_t ms = 0; /* <= D * 2^14 */
    uint32_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        const uint32_t v = ebq_ld32(x + i);
        const int32_t lo = ebq_lo02(v), hi = ebq_hi13(v);
        ms = __smlad(lo, lo, ms);
        ms = __smlad(hi, hi, ms);
    }
    for (; i < dim; i++)
        ms += (int32_t)x[i] * x[i];
    return ms ? (int32_t)ebq_isqrt64(((uint64_t)1 << 48) / (uint32_t)ms) : 0;
}

/* y = rq(x R) for 4 rows, the channel's M and shift loaded once; inlined with dim constant
 * when it is 128 so the other rows' offsets are immediates. */
static inline __attribute__((always_inline)) void scale4(uint32_t dim, const int8_t *x,
                                                         const int32_t r[4], const int32_t *m,
                                                         const int8_t *sh, int8_t *y)
{
    const int32_t r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
    for (const int8_t *end = sh + dim; sh != end; x++, y++, m++, sh++) {
        const int32_t mi = *m, s = *sh;
        if (s < 2) {
            for (uint32_t k = 0; k < 4; k++)
                y[k * dim] = ebq_rq_sat8((int32_t)x[k * dim] * r[k], mi, s);
            continue;
        }
        const int32_t rnd = (int32_t)1 << (s - 2), s1 = s - 1;
        y[0] = ebq_rq_sat8_fast((int32_t)x[0] * r0, mi, rnd, s1); /* |x R| <= 2^24 */
        y[dim] = ebq_rq_sat8_fast((int32_t)x[dim] * r1, mi, rnd, s1);
        y[2 * dim] = ebq_rq_sat8_fast((int32_t)x[2 * dim] * r2, mi, rnd, s1);
        y[3 * dim] = ebq_rq_sat8_fast((int32_t)x[3 * dim] * r3, mi, rnd, s1);
    }
}

void ebq_rmsnorm_s8(uint32_t rows, uint32_t dim, const int8_t *x, const int32_t *m,
                    const int8_t *sh, int8_t *y)
{
    uint32_t r = 0;
    for (; r + 4 <= rows; r += 4, x += 4 * dim, y += 4 * dim) {
        int32_t big_r[4];
        for (uint32_t k = 0; k < 4; k++)
            big_r[k] = row_scale(dim, x + k * dim);
        if (dim == 128)
            scale4(128, x, big_r, m, sh, y);
        else
            scale4(dim, x, big_r, m, sh, y);
    }
    if (r < rows) { /* 1..3 rows: per channel, the rows inside */
        const uint32_t nb = rows - r;
        int32_t big_r[4];
        for (uint32_t k = 0; k < nb; k++)
            big_r[k] = row_scale(dim, x + k * dim);
        for (uint32_t i = 0; i < dim; i++) {
            const int32_t mi = m[i], s = sh[i];
            if (s < 2) {
                for (uint32_t k = 0; k < nb; k++)
                    y[k * dim + i] = ebq_rq_sat8((int32_t)x[k * dim + i] * big_r[k], mi, s);
                continue;
            }
            const int32_t rnd = (int32_t)1 << (s - 2), s1 = s - 1;
            for (uint32_t k = 0; k < nb; k++)
                y[k * dim + i] = ebq_rq_sat8_fast((int32_t)x[k * dim + i] * big_r[k], mi, rnd, s1);
        }
    }
}
#else
#include "../rmsnorm_s8.c"
#endif
