/* isqrt64.c - floor(sqrt(v)) for the RMSNorm scale; shared by the portable and DSP RMSNorm. */
#include "ebq_ops.h"

uint32_t ebq_isqrt64(uint64_t v)
{
    /* Bit-by-bit square root (two result bits per step): exact floor, no division. It starts at
     * the highest power of 4 <= v (found by CLZ where the compiler has it). */
    uint64_t r = 0, bit = (uint64_t)1 << 62;
#if defined(__GNUC__)
    if (v != 0)
        bit = (uint64_t)1 << ((63 - __builtin_clzll(v)) & ~1);
#endif
    while (bit > v)
        bit >>= 2;
    while (bit != 0) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)r;
}
