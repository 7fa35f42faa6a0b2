/*
 * dsp/combine_s8.c - Cortex-M4 twin of ../combine_s8.c (same bits).
 *
 * When both shifts are >= 2 (the usual case) each term is SMMLA + ASR in 32 bits (exactly the
 * int64 formula, see ebq_rq in ../ebq_ops.h), then one SUB and one SSAT. Channels outside,
 * rows inside: each channel's M and shift are loaded once for up to 4 rows.
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

#define rq32_fast ebq_rq32_fast

/* 4 rows, both shifts >= 2 for channel o (checked by the caller for a); inlined with dim
 * constant when it is 128 so the row offsets become immediates. */
static inline __attribute__((always_inline)) void combine4(uint32_t dim, const int32_t *attn,
                                                           const int32_t *h, int32_t ma,
                                                           int32_t rnda, int32_t s1a,
                                                           const int32_t *mb, const int8_t *shb,
                                                           int8_t *out)
{
    for (const int8_t *end = shb + dim; shb != end; attn++, h++, out++, mb++, shb++) {
        const int32_t m = *mb, sh = *shb;
        if (sh < 2) {
            for (uint32_t r = 0; r < 4; r++)
                out[r * dim] = ebq_rq2_sat8(attn[r * dim], ma, s1a + 1, h[r * dim], m, sh, -1);
            continue;
        }
        const int32_t rnd = (int32_t)1 << (sh - 2), s1 = sh - 1;
        out[0] = (int8_t)__ssat(rq32_fast(attn[0], ma, rnda, s1a) - rq32_fast(h[0], m, rnd, s1), 8);
        out[dim] = (int8_t)__ssat(rq32_fast(attn[dim], ma, rnda, s1a) -
                                  rq32_fast(h[dim], m, rnd, s1), 8);
        out[2 * dim] = (int8_t)__ssat(rq32_fast(attn[2 * dim], ma, rnda, s1a) -
                                      rq32_fast(h[2 * dim], m, rnd, s1), 8);
        out[3 * dim] = (int8_t)__ssat(rq32_fast(attn[3 * dim], ma, rnda, s1a) -
                                      rq32_fast(h[3 * dim], m, rnd, s1), 8);
    }
}

void ebq_combine_s8(uint32_t rows, uint32_t dim, const int32_t *attn, const int32_t *h,
                    const ebq_rq_params *a, const ebq_rq_params *b, int8_t *out)
{
    const int32_t ma = a->m[0], sha = a->sh[0];
    if (rows == 4 && sha >= 2) {
        const int32_t rnda = (int32_t)1 << (sha - 2), s1a = sha - 1;
        if (dim == 128)
            combine4(128, attn, h, ma, rnda, s1a, b->m, b->sh, out);
        else
            combine4(dim, attn, h, ma, rnda, s1a, b->m, b->sh, out);
        return;
    }
    for (uint32_t i = 0; i < rows * dim; i++)
        out[i] = ebq_rq2_sat8(attn[i], ma, sha, h[i], b->m[i % dim], b->sh[i % dim], -1);
}
#else
#include "../combine_s8.c"
#endif
