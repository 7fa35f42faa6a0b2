/*
 * dsp/fully_connected_s8.c - Cortex-M4 twin of ../fully_connected_s8.c (same bits).
 *
 * Inputs are widened to int16 once per block of 4 rows; then every weight word (4 int8, unpacked
 * by two SXTB16) feeds 8 SMLADs: 4 rows x 2 pairs, with the rows' int16 pairs loaded by LDRD
 * (ebq_dot4_s8: 31 instructions per 32 MACs). Cores without the DSP extension compile the
 * portable file.
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

/* One block of nb <= 4 rows: int32 accumulators (nb, out_dim) into acc. */
static void block(uint32_t nb, uint32_t in_dim, uint32_t out_dim, const int8_t *x,
                  const int8_t *w, const int32_t *b, int16_t *wide, int32_t *acc)
{
    ebq_widen_rows(nb, in_dim, x, wide);
    for (uint32_t o = 0; o < out_dim; o++) {
        const int8_t *wo = w + (size_t)o * in_dim;
        const int32_t bias = b ? b[o] : 0;
        if (nb == EBQ_BLOCK && in_dim % 8 == 0) {
            int32_t a[4] = {bias, bias, bias, bias};
            ebq_dot4_s8(in_dim, wo, wide, a);
            for (uint32_t r = 0; r < 4; r++)
                acc[(size_t)r * out_dim + o] = a[r];
        } else {
            for (uint32_t r = 0; r < nb; r++)
                acc[(size_t)r * out_dim + o] = ebq_dot1_s8(in_dim, wo, wide, nb, r, bias);
        }
    }
}

void ebq_fully_connected_s32(uint32_t rows, uint32_t in_dim, uint32_t out_dim, const int8_t *x,
                             const int8_t *w, const int32_t *b, int16_t *wide, int32_t *acc)
{
    for (uint32_t r = 0; r < rows; r += EBQ_BLOCK) {
        const uint32_t nb = rows - r < EBQ_BLOCK ? rows - r : EBQ_BLOCK;
        block(nb, in_dim, out_dim, x + (size_t)r * in_dim, w, b, wide, acc + (size_t)r * out_dim);
    }
}

void ebq_fully_connected_s8(uint32_t rows, uint32_t in_dim, uint32_t out_dim, const int8_t *x,
                            const int8_t *w, const int32_t *b, const ebq_rq_params *rq,
                            int16_t *wide, int8_t *out)
{
    for (uint32_t r0 = 0; r0 < rows; r0 += EBQ_BLOCK) {
        const uint32_t nb = rows - r0 < EBQ_BLOCK ? rows - r0 : EBQ_BLOCK;
        ebq_widen_rows(nb, in_dim, x + (size_t)r0 * in_dim, wide);
        int8_t *o_rows = out + (size_t)r0 * out_dim;
        for (uint32_t o = 0; o < out_dim; o++) {
            const int8_t *wo = w + (size_t)o * in_dim;
            int32_t a[4] = {b[o], b[o], b[o], b[o]};
            if (nb == EBQ_BLOCK && in_dim % 8 == 0)
                ebq_dot4_s8(in_dim, wo, wide, a);
            else
                for (uint32_t r = 0; r < nb; r++)
                    a[r] = ebq_dot1_s8(in_dim, wo, wide, nb, r, a[r]);
            for (uint32_t r = 0; r < nb; r++)
                o_rows[(size_t)r * out_dim + o] = ebq_rq_sat8(a[r], rq->m[o], rq->sh[o]);
        }
    }
}
#else
#include "../fully_connected_s8.c"
#endif
