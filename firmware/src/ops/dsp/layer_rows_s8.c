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

static size_t ao_bytes(uint32_t n, uint32_t dim);

size_t ebq_layer_rows_s8_get_buffer_size(uint32_t n, uint32_t dim, int att_output)
{
    const size_t f = att_output ? ao_bytes(n, dim) : fused_bytes(n, dim),
                 g = ebq_layer_rows_generic_s8_get_buffer_size(n, dim);
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

/* A block's buffer (both specs): the e rows (B x keys, int16), a key column (int32), then a
 * region for the step's own use; and step 1, the e rows and 1/E of the block's queries. */
typedef struct {
    int16_t *e;
    int32_t *col;
    uint8_t *region;
    ebq_dsp_inv inv;
} block_exp;

static void block_exp_rows(const ebq_layer_rows_params *p, uint32_t nq, int8_t *xt, uint8_t *buf,
                           block_exp *b)
{
    const uint32_t n = p->att.n, nk = EBQ_KEYS_PAD(n), blk = EBQ_BLOCK_ROWS(n);
    b->e = (int16_t *)(void *)buf;
    b->col = (int32_t *)(void *)(buf + ebq_a8(2 * (size_t)blk * nk));
    b->region = (uint8_t *)b->col + ebq_a8(8 * (size_t)nk);
    ebq_dsp_attention_exp(&p->att, nq, xt, (int16_t *)(void *)b->region,
                          (int32_t *)(void *)(b->region + 8 * 128), b->e, &b->inv);
}

/* `rows` rows of 128 int8 (x) widened by row pairs into out (D words per pair); an odd last row
 * is paired with zeros. */
static void widen_pairs(uint32_t rows, const int8_t *x, int32_t *out)
{
    for (uint32_t r = 0; r < rows; r += 2)
        ebq_widen2(128, x + (size_t)r * 128, r + 1 < rows ? x + (size_t)(r + 1) * 128
                                                         : ebq_zero_row128, out + r / 2 * 128);
}

static void block_fused(const ebq_layer_rows_params *p, uint32_t t0, uint32_t nq, int8_t *xt,
                        uint8_t *buf)
{
    const uint32_t d = 128;
    block_exp b; /* 1. e rows and 1/E of the block's queries. */
    block_exp_rows(p, nq, xt, buf, &b);
    int16_t *e = b.e;
    int32_t *col = b.col;
    uint8_t *region = b.region;
    /* 2. conv + SiLU into the query rows, widened by row pairs after the odd row's attention
     * and the output pair. */
    ebq_depthwise_conv_causal_s8(&p->conv, t0, nq, p->att.y, xt);
    int32_t *ww = (int32_t *)(void *)region + d, *cw = ww + d; /* after a spare D words */
    widen_pairs(nq, xt, cw);
    /* 3. per 4 channels: attention, then the 2 output pairs' projection and combination. */
    const ebq_fc_params *pr = &p->pc.proj;
    const int32_t sha = p->pc.out_a->sh[0];
    int32_t at[4 * EBQ_BLOCK];
    tile_ctx t = {at, xt, p->pc.out_a->m[0], (int32_t)1 << (sha - 2), sha - 1};
    for (uint32_t c = 0; c < d; c += 4) {
        ebq_dsp_attention_cols(&p->att, nq, c, e, col, &b.inv, at, 4);
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

/* ---- spec 2: the attention output projection (att_output) ----------------------------------
 * Per block: 1. the e rows as above; 2. per 4 channels the attention of all B queries,
 * requantized straight into the int8 context in the block's query rows (used by then); 3. per
 * chunk of R rows: the context rows widened by row pairs, the conv + SiLU into the same rows
 * (their context is widened now), widened too, then per output triple o both weight triples
 * widened and, per 8 row pairs, both projections by the 2x3 kernel, combined from the sums
 * channel by channel, both multipliers per channel (the last 2 outputs: weight pairs and the
 * 2x2 kernel per row pair). R = ao_chunk(n) rows, the buffer ao_bytes(n). */

/* Rows per chunk of phase 3: the whole block (each weight triple widened once per block), but 8
 * for n <= 16, where the spec-1 buffer holds no more (the arena stays within 12 KiB). Not a
 * function of the buffer left: that grows with n in steps, and a chunk count that fell with n
 * would make a longer input cheaper than a shorter one. */
static uint32_t ao_chunk(uint32_t n)
{
    const uint32_t b = EBQ_BLOCK_ROWS(n);
    return n <= 16 && b > 8 ? 8 : b;
}

/* Phase 3 projects by output triples (ebq_mm23_s16_128 over up to EBQ_AO_PAIRS row pairs per
 * call: 26 est. cycles per 24 MACs and one call per 8 row pairs) rather than pairs
 * (ebq_mm22_s16_128: 18 per 16 and one call per row pair): 2.5-2.8% fewer estimated cycles at
 * 8, 16 and 128 tokens for 1.3-1.9% more instructions (1.13 / 1.09 per MAC at 8 / 16 tokens:
 * within issue #20's 1.2 / 1.1). The last 2 of the 128 outputs go by a pair. */
#define EBQ_AO_PAIRS 8u /* row pairs per ebq_mm23_s16_128 call: 2 x 192 bytes of sums */

/* The spec-2 block's buffer: phases 1-2 as fused_bytes, phase 3 the two weight triples (12 D)
 * and the chunk's rows of both inputs widened (4 R D). With the generic path's buffer beside
 * it, the arena is spec 1's for n <= 4, 13..16 and from n = 113 up (9,856 B at n = 16, 49,152
 * at 128, 80,896 at 256), larger in between (7,680 against 7,168 B at 8; phase 3 of a 28-row
 * block: 15,872 B). */
static size_t ao_bytes(uint32_t n, uint32_t dim)
{
    const size_t f = fused_bytes(n, dim), p3 = 12 * (size_t)dim + 4 * (size_t)ao_chunk(n) * dim;
    return f > p3 ? f : p3;
}

/* Phase 2: the attention of every channel, as the int8 context, into the query rows. */
static void context_rows(const ebq_layer_rows_params *p, uint32_t nq, const int16_t *e,
                         int32_t *col, const ebq_dsp_inv *inv, int8_t *xt)
{
    const uint32_t d = 128;
    const int32_t mc = p->ao.ctx->m[0], shc = p->ao.ctx->sh[0];
    const int32_t rnd = shc >= 2 ? (int32_t)1 << (shc - 2) : 0, s1 = shc - 1;
    int32_t at[4 * EBQ_BLOCK];
    for (uint32_t c = 0; c < d; c += 4) {
        ebq_dsp_attention_cols(&p->att, nq, c, e, col, inv, at, 4);
        const int32_t *a = at;
        int8_t *o = xt + c;
        if (shc >= 2)
            for (uint32_t r = 0; r < nq; r++, a += 4, o += d) {
                o[0] = ebq_rq_sat8_fast(a[0], mc, rnd, s1);
                o[1] = ebq_rq_sat8_fast(a[1], mc, rnd, s1);
                o[2] = ebq_rq_sat8_fast(a[2], mc, rnd, s1);
                o[3] = ebq_rq_sat8_fast(a[3], mc, rnd, s1);
            }
        else
            for (uint32_t r = 0; r < nq; r++, a += 4, o += d)
                for (uint32_t k = 0; k < 4; k++)
                    o[k] = ebq_rq_sat8(a[k], mc, shc);
    }
}

/* One output channel's combination constants (both shifts >= 2): bias, M, rounding constant
 * and shift - 1 of att_output (a) and of the conv branch's projection (h). */
typedef struct {
    int32_t ba, ma, ra, sa, bh, mh, rh, sh;
} chan_rq;

static chan_rq chan_rq_of(const ebq_layer_rows_params *p, uint32_t o)
{
    chan_rq c;
    c.ba = p->ao.fc.b[o], c.ma = p->pc.out_a->m[o], c.sa = p->pc.out_a->sh[o] - 1;
    c.bh = p->pc.proj.b[o], c.mh = p->pc.out_b->m[o], c.sh = p->pc.out_b->sh[o] - 1;
    c.ra = (int32_t)1 << (c.sa - 1), c.rh = (int32_t)1 << (c.sh - 1);
    return c;
}

/* One output channel of `rows` rows (out, row stride 128): sat8(rq(a + b_a) - rq(h + b_h)) from
 * the kernels' sums a, h, `step` words per row pair and the odd row's `odd` words on (the 2x3
 * kernel: 6 and 3; the 2x2: 4 and 2). Channel by channel, so that its 8 constants stay in
 * registers (about 14 instructions per output; row by row GCC reloaded some from the stack:
 * block_ao 1.67 M -> 1.62 M est. cycles at 128 tokens, the same instructions). */
static void comb_column(const int32_t *a, const int32_t *h, uint32_t rows, uint32_t step,
                        uint32_t odd, chan_rq c, int8_t *out)
{
    for (uint32_t r = 0; r < rows; r += 2, a += step, h += step, out += 256) {
        out[0] = (int8_t)__ssat(ebq_rq32_fast(a[0] + c.ba, c.ma, c.ra, c.sa) -
                                    ebq_rq32_fast(h[0] + c.bh, c.mh, c.rh, c.sh),
                                8);
        if (r + 1 == rows) /* an odd last row's zero partner */
            break;
        out[128] = (int8_t)__ssat(ebq_rq32_fast(a[odd] + c.ba, c.ma, c.ra, c.sa) -
                                      ebq_rq32_fast(h[odd] + c.bh, c.mh, c.rh, c.sh),
                                  8);
    }
}

/* Phase 3 for the outputs o..o+2 of a chunk's nr rows (xr; widened by row pairs: the context
 * xa, the conv xc): both weight triples widened into w (2 x 3 D words), both projections of up
 * to EBQ_AO_PAIRS row pairs per ebq_mm23_s16_128 call, combined from the sums. */
static void ao_triple(const ebq_layer_rows_params *p, uint32_t o, uint32_t nr, const int32_t *xa,
                      const int32_t *xc, int32_t *w, int8_t *xr)
{
    const uint32_t d = 128, np = (nr + 1) / 2;
    int32_t *wa = w, *wp = w + 3 * d / 2; /* 768 bytes each */
    ebq_widen3_128(p->ao.fc.w + (size_t)o * d, wa);
    ebq_widen3_128(p->pc.proj.w + (size_t)o * d, wp);
    const chan_rq c[3] = {chan_rq_of(p, o), chan_rq_of(p, o + 1), chan_rq_of(p, o + 2)};
    for (uint32_t p0 = 0; p0 < np; p0 += EBQ_AO_PAIRS) {
        const uint32_t k = np - p0 < EBQ_AO_PAIRS ? np - p0 : EBQ_AO_PAIRS;
        const uint32_t rows = nr - 2 * p0 < 2 * k ? nr - 2 * p0 : 2 * k;
        int32_t a[6 * EBQ_AO_PAIRS], h[6 * EBQ_AO_PAIRS];
        ebq_mm23_s16_128(xa + (size_t)p0 * d, wa, k, a);
        ebq_mm23_s16_128(xc + (size_t)p0 * d, wp, k, h);
        int8_t *oo = xr + (size_t)(2 * p0) * d + o;
        for (uint32_t q = 0; q < 3; q++)
            comb_column(a + q, h + q, rows, 6, 3, c[q], oo + q);
    }
}

/* The same for the outputs o, o + 1 (the last 2 of 128): weight pairs widened into w (2 x D
 * words), the 2x2 kernel per row pair. */
static void ao_pair(const ebq_layer_rows_params *p, uint32_t o, uint32_t nr, const int32_t *xa,
                    const int32_t *xc, int32_t *w, int8_t *xr)
{
    const uint32_t d = 128, np = (nr + 1) / 2;
    int32_t *wa = w, *wp = w + d;
    ebq_widen2(d, p->ao.fc.w + (size_t)o * d, p->ao.fc.w + (size_t)(o + 1) * d, wa);
    ebq_widen2(d, p->pc.proj.w + (size_t)o * d, p->pc.proj.w + (size_t)(o + 1) * d, wp);
    const chan_rq c[2] = {chan_rq_of(p, o), chan_rq_of(p, o + 1)};
    for (uint32_t p0 = 0; p0 < np; p0 += EBQ_AO_PAIRS) {
        const uint32_t k = np - p0 < EBQ_AO_PAIRS ? np - p0 : EBQ_AO_PAIRS;
        const uint32_t rows = nr - 2 * p0 < 2 * k ? nr - 2 * p0 : 2 * k;
        int32_t a[4 * EBQ_AO_PAIRS], h[4 * EBQ_AO_PAIRS];
        for (uint32_t i = 0; i < k; i++) {
            ebq_mm22_s16_128(xa + (size_t)(p0 + i) * d, wa, a + 4 * i);
            ebq_mm22_s16_128(xc + (size_t)(p0 + i) * d, wp, h + 4 * i);
        }
        int8_t *oo = xr + (size_t)(2 * p0) * d + o;
        for (uint32_t q = 0; q < 2; q++)
            comb_column(a + q, h + q, rows, 4, 2, c[q], oo + q);
    }
}

static void block_ao(const ebq_layer_rows_params *p, uint32_t t0, uint32_t nq, int8_t *xt,
                     uint8_t *buf)
{
    const uint32_t n = p->att.n, d = 128;
    block_exp b; /* 1. e rows and 1/E of the block's queries; 2. the context into the rows. */
    block_exp_rows(p, nq, xt, buf, &b);
    context_rows(p, nq, b.e, b.col, &b.inv, xt);
    /* 3. per chunk: both inputs widened, then per output triple (the last 2 outputs: a pair)
     * both projections + combination (the e rows are dead: the buffer is the weight triples or
     * pairs, then the widened rows). */
    const uint32_t chunk = ao_chunk(n), o3 = d - d % 3; /* 126 by triples, then a pair */
    int32_t *w = (int32_t *)(void *)buf; /* both weight triples, or both pairs */
    int32_t *xa = w + 3 * d, *xc = xa + (size_t)chunk / 2 * d;
    for (uint32_t r0 = 0; r0 < nq; r0 += chunk) {
        const uint32_t nr = nq - r0 < chunk ? nq - r0 : chunk;
        int8_t *xr = xt + (size_t)r0 * d;
        widen_pairs(nr, xr, xa);
        ebq_depthwise_conv_causal_s8(&p->conv, t0 + r0, nr, p->att.y, xr); /* context widened */
        widen_pairs(nr, xr, xc);
        for (uint32_t o = 0; o < o3; o += 3)
            ao_triple(p, o, nr, xa, xc, w, xr);
        ao_pair(p, o3, nr, xa, xc, w, xr);
    }
}

void ebq_layer_rows_s8(const ebq_context *ctx, const ebq_layer_rows_params *p, uint32_t rows,
                       int8_t *x)
{
    const uint32_t n = p->att.n, dim = p->att.dim;
    const int ao = p->ao.fc.w != NULL; /* spec 2: out_a per channel */
    int fast = dim == 128 && p->pc.proj.out_dim == 128 &&
               ctx->size >= (ao ? ao_bytes(n, dim) : fused_bytes(n, dim)) &&
               (ao || p->pc.out_a->sh[0] >= 2);
    for (uint32_t o = 0; fast && o < dim; o++)
        fast = p->pc.out_b->sh[o] >= 2 && (!ao || p->pc.out_a->sh[o] >= 2);
    if (!fast || rows == 1) { /* one row ([CLS] in the last layer): the 1-row projection */
        ebq_layer_rows_generic_s8(ctx, p, 0, rows, x);
        return;
    }
    const uint32_t blk = EBQ_BLOCK_ROWS(n);
    for (uint32_t t0 = 0; t0 < rows; t0 += blk) {
        const uint32_t nq = rows - t0 < blk ? rows - t0 : blk;
        if (ao)
            block_ao(p, t0, nq, x + (size_t)t0 * dim, ctx->buf);
        else
            block_fused(p, t0, nq, x + (size_t)t0 * dim, ctx->buf);
    }
}
#else
#include "../layer_rows_s8.c"
#endif
