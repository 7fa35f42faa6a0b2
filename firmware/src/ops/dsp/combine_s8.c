/*
 * dsp/combine_s8.c - Cortex-M4 twin of ../combine_s8.c (same bits).
 *
 * When both shifts are >= 2 (the usual case) each term is SMMLA + ASR in 32 bits (exactly the
 * int64 formula, see ebq_rq in ../ebq_ops.h), then one SUB and one SSAT.
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

/* hi32(acc * m) + rnd, >> s1: ebq_rq32 with rnd = 2^(sh-2), s1 = sh - 1. */
static inline int32_t rq32_fast(int32_t acc, int32_t m, int32_t rnd, int32_t s1)
{
    int32_t v;
    __asm("smmla %0, %1, %2, %3" : "=r"(v) : "r"(acc), "r"(m), "r"(rnd));
    return v >> s1;
}

void ebq_combine_s8(uint32_t dim, const int32_t *attn, const int32_t *h, const ebq_rq_params *a,
                    const ebq_rq_params *b, int8_t *out)
{
    const int32_t ma = a->m[0], sha = a->sh[0];
    if (sha < 2) {
        for (uint32_t o = 0; o < dim; o++)
            out[o] = ebq_rq2_sat8(attn[o], ma, sha, h[o], b->m[o], b->sh[o], -1);
        return;
    }
    const int32_t rnda = (int32_t)1 << (sha - 2), s1a = sha - 1;
    for (uint32_t o = 0; o < dim; o++) {
        const int32_t shb = b->sh[o];
        if (shb < 2) {
            out[o] = ebq_rq2_sat8(attn[o], ma, sha, h[o], b->m[o], shb, -1);
            continue;
        }
        const int32_t v = rq32_fast(attn[o], ma, rnda, s1a) -
                          rq32_fast(h[o], b->m[o], (int32_t)1 << (shb - 2), shb - 1);
        out[o] = (int8_t)__ssat(v, 8);
    }
}
#else
#include "../combine_s8.c"
#endif
