/* rmsnorm_s8.c - integer RMSNorm: the input scale cancels, so only sum x^2 and one isqrt. */
#include "ebq_ops.h"

void ebq_rmsnorm_s8(uint32_t rows, uint32_t dim, const int8_t *x, const int32_t *m,
                    const int8_t *sh, int8_t *y)
{
    for (uint32_t r = 0; r < rows; r++, x += dim, y += dim) {
        uint32_t ms = 0; /* sum x^2 <= D * 2^14 */
        for (uint32_t i = 0; i < dim; i++)
            ms += (uint32_t)((int32_t)x[i] * x[i]);
        /* R ~ 2^24 / sqrt(ms); ms == 0 gives R = 0 and so y = 0. */
        const int32_t big_r = ms ? (int32_t)ebq_isqrt64(((uint64_t)1 << 48) / ms) : 0;
        for (uint32_t i = 0; i < dim; i++)
            y[i] = ebq_rq_sat8((int32_t)x[i] * big_r, m[i], sh[i]); /* |x R| <= 2^24 */
    }
}
