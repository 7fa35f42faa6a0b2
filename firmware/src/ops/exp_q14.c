/* exp_q14.c - exp of a non-positive Q8 argument by two tables: e^(-k - r/256) = HI[k] LO[r]. */
#include "ebq_ops.h"

int32_t ebq_exp_q14(int32_t z, const int16_t *hi, const int16_t *lo)
{
    return ebq_exp_q14_inline(z, hi, lo);
}
