/*
 * dsp/silu_s8.c - Cortex-M4 twin of ../silu_s8.c (same bits).
 *
 * Four values per word: SXTB with a rotation picks each byte (signed), the table is indexed
 * from its middle (table + 128), and the four results are stored with one STR.
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

void ebq_silu_s8(uint32_t dim, const int8_t *in, const int8_t *table, int8_t *out)
{
    const uint8_t *mid = (const uint8_t *)table + 128;
    uint32_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        const uint32_t v = ebq_ld32(in + i);
        const uint32_t r = (uint32_t)mid[(int8_t)v] | (uint32_t)mid[(int8_t)(v >> 8)] << 8 |
                           (uint32_t)mid[(int8_t)(v >> 16)] << 16 |
                           (uint32_t)mid[(int8_t)(v >> 24)] << 24;
        __builtin_memcpy(out + i, &r, 4);
    }
    for (; i < dim; i++)
        out[i] = table[(int32_t)in[i] + 128];
}
#else
#include "../silu_s8.c"
#endif
