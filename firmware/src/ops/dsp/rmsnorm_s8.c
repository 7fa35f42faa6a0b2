/*
 * dsp/rmsnorm_s8.c - Cortex-M4 twin of ../rmsnorm_s8.c (same bits).
 *
 * Sum of squares with SMLAD on SXTB16 pairs (one LDR + 2 SXTB16 + 2 SMLAD per 4 values), the
 * shared ebq_isqrt64 (../isqrt64.c), then the per-channel requantization over 2 rows at a time,
 * so each channel's M and shift are loaded once per 2 values (SMMLA, ASR, SSAT).
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

/* y = rq(x R) for 2 rows, the channel's M and shift loaded once; inlined with dim constant
 * when it is 128 so the second row's offset is an immediate. */
static inline __attribute__((always_inline)) void scale2(uint32_t dim, const int8_t *x,
                                                         int32_t r0, int32_t r1,
                                                         const int32_t *m, const int8_t *sh,
                                                         int8_t *y)
{
    for (const int8_t *end = sh + dim; sh != end; x++, y++, m++, sh++) {
        const int32_t mi = *m, s = *sh;
        if (s < 2) {
            y[0] = ebq_rq_sat8((int32_t)x[0] * r0, mi, s);
            y[dim] = ebq_rq_sat8((int32_t)x[dim] * r1, mi, s);
            continue;
        }
        const int32_t rnd = (int32_t)1 << (s - 2), s1 = s - 1;
        y[0] = ebq_rq_sat8_fast((int32_t)x[0] * r0, mi, rnd, s1); /* |x R| <= 2^24 */
        y[dim] = ebq_rq_sat8_fast((int32_t)x[dim] * r1, mi, rnd, s1);
    }
}

void ebq_rmsnorm_s8(uint32_t rows, uint32_t dim, const int8_t *x, const int32_t *m,
                    const int8_t *sh, int8_t *y)
{
    uint32_t r = 0;
    for (; r + 2 <= rows; r += 2, x += 2 * dim, y += 2 * dim) {
        const int32_t r0 = row_scale(dim, x), r1 = row_scale(dim, x + dim);
        if (dim == 128)
            scale2(128, x, r0, r1, m, sh, y);
        else
            scale2(dim, x, r0, r1, m, sh, y);
    }
    if (r < rows) {
        const int32_t big_r = row_scale(dim, x);
        for (uint32_t i = 0; i < dim; i++)
            y[i] = ebq_rq_sat8((int32_t)x[i] * big_r, m[i], sh[i]);
    }
}
#else
#include "../rmsnorm_s8.c"
#endif
