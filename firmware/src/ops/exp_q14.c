/* exp_q14.c - exp of a non-positive Q8 argument by two tables: e^(-k - r/256) = HI[k] LO[r]. */
#include "ebq_ops.h"

int32_t ebq_exp_q14(int32_t z, const int16_t *hi, const int16_t *lo)
{
    const int32_t k = -z; /* [0, 4096] */
    return ((int32_t)hi[k >> 8] * lo[k & 255] + (1 << 13)) >> 14; /* [0, 2^14] */
}
