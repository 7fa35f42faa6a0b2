/*
 * dsp/layer_rows_s8.c - Cortex-M4 twin of ../layer_rows_s8.c (same bits): attention, causal
 * conv + SiLU, the conv branch's projection and the combination fused per block of
 * B = EBQ_BLOCK_ROWS(n) rows, with no (B,D) int32 attention buffer:
 *
 * 1. the block's e rows and 1/E (ebq_dsp_attention_exp: scores by the micro-kernel, softmax);
 * 2. the causal conv + SiLU into the block's query rows (used by now), widened by row pairs;
 * 3. per 4 channels: the attention of those channels for all B queries (one transpose of y's
 *    columns, ebq_dsp_attention_cols), then the projection of output pairs (c, c+1) and
 *    (c+2, c+3) by the 2x2 kernel, combined with that attention straight from the
 *    accumulators into the output rows.
 *
 * The fused path takes D = 128 with every combination shift >= 2 (the shipped models); other
 * shapes run the unfused kernels (ebq_layer_rows_generic_s8). An odd last row is paired with a
 * zero row in the 2x2 kernel.
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

/* The fused block's buffer: e rows (B x nk int16), columns (2 nk words), then a region that
 * holds in phase 1 the 4 widened queries and their scores, and afterwards an odd row's
 * attention (D int32), a widened output pair (D words) and the widened conv rows (B/2 row
 * pairs of D words), or after the channel loop the odd row's projection scratch. */
static size_t fused_bytes(uint32_t n, uint32_t dim)
{
    const size_t b = EBQ_BLOCK_ROWS(n), nk = EBQ_KEYS_PAD(n), d = dim;
    const size_t p1 = 8 * d + 16 * (size_t)n;
    const size_t pc = ebq_project_combine_s8_get_buffer_size(dim);
    const size_t p2 = 4 * d + (2 * b * d + 4 * d > pc ? 2 * b * d + 4 * d : pc);
    return ebq_a8(2 * b * nk) + ebq_a8(8 * nk) + ebq_a8(p1 > p2 ? p1 : p2);
}

size_t ebq_layer_rows_s8_get_buffer_size(uint32_t n, uint32_t dim)
{
    const size_t f = fused_bytes(n, dim), g = ebq_layer_rows_generic_s8_get_buffer_size(n, dim);
    return f > g ? f : g;
}

typedef struct {
    const int32_t *at; /* nq x 4: the attention of channels c..c+3 */
    int8_t *out;       /* the block's rows, row stride 128 */
    int32_t ma, rnda, s1a;
} tile_ctx;

static inline __attribute__((always_inline)) int8_t comb(int32_t at, int32_t acc, const tile_ctx *t,
                                                         const ebq_pair_rq *p, uint32_t q)
{
    return (int8_t)__ssat(ebq_rq32_fast(at, t->ma, t->rnda, t->s1a) -
                              ebq_rq32_fast(acc + p->b[q], p->m[q], p->rnd[q], p->s1[q]),
                          8);
}

static void block_fused(const ebq_layer_rows_params *p, uint32_t t0, uint32_t nq, int8_t *xt,
                        uint8_t *buf)
{
    const uint32_t n = p->att.n, d = 128, nk = EBQ_KEYS_PAD(n), blk = EBQ_BLOCK_ROWS(n);
    int16_t *e = (int16_t *)(void *)buf;
    int32_t *col = (int32_t *)(void *)(buf + ebq_a8(2 * (size_t)blk * nk));
    uint8_t *region = (uint8_t *)col + ebq_a8(8 * (size_t)nk);
    ebq_dsp_inv inv;
    /* 1. e rows and 1/E of the block's queries. */
    ebq_dsp_attention_exp(&p->att, nq, xt, (int16_t *)(void *)region,
                          (int32_t *)(void *)(region + 8 * d), e, &inv);
    /* 2. conv + SiLU into the query rows, widened by row pairs after the odd row's attention
     * and the output pair. */
    ebq_depthwise_conv_causal_s8(&p->conv, t0, nq, p->att.y, xt);
    int32_t *ww = (int32_t *)(void *)region + d, *cw = ww + d; /* after a spare D words */
    for (uint32_t r = 0; r < nq; r += 2) /* an odd last row is paired with zeros */
        ebq_widen2(d, xt + (size_t)r * d, r + 1 < nq ? xt + (size_t)(r + 1) * d : ebq_zero_row128,
                   cw + r / 2 * d);
    /* 3. per 4 channels: attention, then the 2 output pairs' projection and combination. */
    const ebq_fc_params *pr = &p->pc.proj;
    const int32_t sha = p->pc.out_a->sh[0];
    int32_t at[4 * EBQ_BLOCK];
    tile_ctx t = {at, xt, p->pc.out_a->m[0], (int32_t)1 << (sha - 2), sha - 1};
    for (uint32_t c = 0; c < d; c += 4) {
        ebq_dsp_attention_cols(&p->att, nq, c, e, col, &inv, at, 4);
        for (uint32_t o = c; o < c + 4; o += 2) {
            ebq_widen2(d, pr->w + (size_t)o * d, pr->w + (size_t)(o + 1) * d, ww);
            ebq_pair_rq pq;
            ebq_pair_rq_load(&pq, o, pr->b, p->pc.out_b->m, p->pc.out_b->sh);
            const int32_t *xp = cw;
            const uint32_t k = o - c;
            for (uint32_t r = 0; r < nq; r += 2, xp += d) {
                int32_t a[4];
                ebq_mm22_s16_128(xp, ww, a);
                int8_t *oo = xt + (size_t)r * d + o;
                const int32_t *ar = at + 4 * r + k;
                oo[0] = comb(ar[0], a[0], &t, &pq, 0);
                oo[1] = comb(ar[1], a[1], &t, &pq, 1);
                if (r + 1 == nq) /* an odd last row's zero partner */
                    break;
                oo[d] = comb(ar[4], a[2], &t, &pq, 0);
                oo[d + 1] = comb(ar[5], a[3], &t, &pq, 1);
            }
        }
    }
}

void ebq_layer_rows_s8(const ebq_context *ctx, const ebq_layer_rows_params *p, uint32_t rows,
                       int8_t *x)
{
    const uint32_t n = p->att.n, dim = p->att.dim;
    int fast = dim == 128 && p->pc.proj.out_dim == 128 && p->pc.out_a->sh[0] >= 2 &&
               ctx->size >= fused_bytes(n, dim);
    for (uint32_t o = 0; fast && o < dim; o++)
        fast = p->pc.out_b->sh[o] >= 2;
    if (!fast || rows == 1 || p->ao.fc.w != NULL) { /* one row: the 1-row projection */
        ebq_layer_rows_generic_s8(ctx, p, 0, rows, x);
        return;
    }
    const uint32_t blk = EBQ_BLOCK_ROWS(n);
    for (uint32_t t0 = 0; t0 < rows; t0 += blk) {
        const uint32_t nq = rows - t0 < blk ? rows - t0 : blk;
        block_fused(p, t0, nq, x + (size_t)t0 * dim, ctx->buf);
    }
}
#else
#include "../layer_rows_s8.c"
#endif
