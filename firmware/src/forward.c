/*
 * forward.c - the EmbBERT-Q integer forward pass (docs/int8-spec.md), one comment per step.
 *
 * Memory: the arena holds x (n,D) int8 and y (n,D) int8 plus one block's buffers and the
 * kernels' scratch (arena_sizes). Each layer computes y = RMSNorm(x) for all rows, after which x
 * is dead: it first receives the queries of every row, then rows are processed in blocks of
 * EBQ_BLOCK_ROWS(n): the block's output overwrites its own queries once they are used. The last
 * layer computes row 0 ([CLS]) only.
 */
#include <string.h>

#include "ebq_model.h"
#include "ops/ebq_ops.h"

static size_t align_up(size_t n)
{
    return (n + EBQ_ARENA_ALIGN - 1) & ~(size_t)(EBQ_ARENA_ALIGN - 1);
}

/* Arena layout for n tokens: x, y, then `work`, which is free scratch while the queries are
 * computed and is then split into the block buffers below, in this order. Every size is
 * rounded up to EBQ_ARENA_ALIGN; ebq_arena_bytes is the sum. B = EBQ_BLOCK_ROWS(n) rows,
 * U = EBQ_MICRO rows. */
typedef struct {
    size_t xy;      /* (n,D) int8, each of x and y                                       */
    size_t scratch; /* every kernel's buffer: the attention's plus (U,D) int32, so that   */
                    /* it also holds ebq_project_combine_s8's (h + widened rows) at any n */
    size_t attn;    /* (B,D) int32                                                        */
    size_t c;       /* (B,D) int8                                                         */
    size_t work;    /* scratch + attn + c                                                 */
} arena_sizes;

static arena_sizes arena_sizes_of(uint32_t dim, uint32_t n)
{
    const size_t d = dim, b = EBQ_BLOCK_ROWS(n), u = EBQ_MICRO;
    arena_sizes z;
    z.xy = align_up((size_t)n * d);
    z.scratch = align_up(ebq_attention_rows_s8_get_buffer_size(n, dim)) + align_up(u * d * 4);
    z.attn = align_up(b * d * 4);
    z.c = align_up(b * d);
    z.work = z.scratch + z.attn + z.c;
    return z;
}

typedef struct {
    int8_t *x;        /* (n,D)  hidden states, then queries, then the next layer's input  */
    int8_t *y;        /* (n,D)  normalised hidden states = keys = values                  */
    uint8_t *work;    /* arena_sizes.work bytes: the block buffers below, or free scratch */
    void *scratch;    /* every kernel's buffer (ebq_context)                              */
    int32_t *attn;    /* (B,D)  attention output, Q16                                     */
    int8_t *c;        /* (B,D)  conv output, then SiLU output                              */
} ebq_run_state;

size_t ebq_arena_bytes(const ebq_model *m, uint32_t n)
{
    if (m == NULL)
        return 0;
    const arena_sizes z = arena_sizes_of(m->dim, n);
    return 2 * z.xy + z.work;
}

void ebq_arena_init(ebq_arena *a, void *mem, size_t size)
{
    /* Start at an 8-aligned address so the sizes ebq_arena_bytes adds up are the exact peak. */
    const uintptr_t p = (uintptr_t)mem;
    const size_t skip = (size_t)((EBQ_ARENA_ALIGN - (p & (EBQ_ARENA_ALIGN - 1))) &
                                 (EBQ_ARENA_ALIGN - 1));
    a->base = (uint8_t *)mem + (skip <= size ? skip : size);
    a->size = skip <= size ? size - skip : 0;
    a->used = 0;
    a->peak = 0;
}

static void *arena_alloc(ebq_arena *a, size_t bytes)
{
    void *p = a->base + a->used;
    a->used += align_up(bytes);
    if (a->used > a->peak)
        a->peak = a->used;
    return p;
}

/* The next `bytes` of a region being split (sizes already aligned). */
static void *take(uint8_t **p, size_t bytes)
{
    void *r = *p;
    *p += bytes;
    return r;
}

static void stage(const ebq_hooks *hooks, uint32_t s, int end)
{
    if (hooks != NULL && hooks->stage != NULL)
        hooks->stage(hooks->ctx, s, end);
}

int ebq_forward(const ebq_model *m, ebq_arena *arena, const uint16_t *ids, uint32_t n,
                int32_t *logits, const ebq_hooks *hooks)
{
    if (m == NULL || arena == NULL || ids == NULL || logits == NULL || arena->base == NULL)
        return EBQ_ERR_ARG;
    if (n == 0)
        return EBQ_ERR_EMPTY;
    if (n > m->max_len)
        return EBQ_ERR_TOO_LONG;
    for (uint32_t t = 0; t < n; t++)
        if (ids[t] >= m->vocab_size)
            return EBQ_ERR_BAD_IDS;
    if (arena->used > arena->size || arena->size - arena->used < ebq_arena_bytes(m, n))
        return EBQ_ERR_NO_MEMORY;

    const uint32_t d = m->dim, blk = EBQ_BLOCK_ROWS(n);
    const size_t start = arena->used;
    const arena_sizes z = arena_sizes_of(d, n);
    ebq_run_state s;
    s.x = arena_alloc(arena, z.xy);
    s.y = arena_alloc(arena, z.xy);
    s.work = arena_alloc(arena, z.work);
    uint8_t *p = s.work;
    s.scratch = take(&p, z.scratch);
    s.attn = take(&p, z.attn);
    s.c = take(&p, z.c);
    const ebq_context scratch = {s.scratch, z.scratch}, work = {s.work, z.work};

    /* Stage 0 - Nano Embedder: x[t] = sat8(rq(tok_proj tok[id_t]) + rq(pos_proj pos[t])). */
    stage(hooks, 0, 0);
    for (uint32_t t0 = 0; t0 < n; t0 += EBQ_MICRO)
        ebq_embedding_s8(&scratch, m, ids, t0, (n - t0 < EBQ_MICRO) ? n - t0 : EBQ_MICRO,
                         s.x + (size_t)t0 * d);
    stage(hooks, 0, 1);

    for (uint32_t l = 0; l < m->n_layers; l++) {
        const ebq_layer *w = &m->layers[l];
        const uint32_t rows = (l + 1 == m->n_layers) ? 1 : n; /* last layer: [CLS] only */
        const ebq_fc_params q = {d, d, w->q_w, w->q_b, &w->q_rq};
        const ebq_attention_params att = {n, d, s.y, ids, &w->sm_rq, m->exp_hi, m->exp_lo};
        const ebq_conv_params conv = {d, m->kernel, w->conv_w, w->conv_b, &w->conv_rq, w->silu};
        const ebq_project_combine_params pc = {{d, d, w->proj_w, w->proj_b, NULL}, &w->out_a,
                                               &w->out_b};
        stage(hooks, l + 1, 0);
        /* y = RMSNorm(x) for every row: y is the keys and values of every query. */
        ebq_rmsnorm_s8(n, d, s.x, w->norm_rq.m, w->norm_rq.sh, s.y);
        /* x <- q = sat8(rq(W_q y + b_q)) for the rows we output (x is dead now). Its scratch is
         * all of `work`, free until the first block (the DSP kernel widens many rows at once). */
        ebq_fully_connected_s8(&work, &q, rows, s.y, s.x);
        /* Blocks of B rows: the optimised kernels reuse every key load and every transposed
         * column of y for all B queries. */
        for (uint32_t t0 = 0; t0 < rows; t0 += blk) {
            const uint32_t nb = (rows - t0 < blk) ? rows - t0 : blk;
            int8_t *xt = s.x + (size_t)t0 * d;
            /* (a) attention of query rows t0.. over all real keys, Q16 in y's units. */
            ebq_attention_rows_s8(&scratch, &att, nb, xt, s.attn);
            /* (b) causal depthwise conv -> SiLU table (fused in the conv's stores). */
            ebq_depthwise_conv_causal_s8(&conv, t0, nb, s.y, s.c);
            /* (c) projection h = W c + b, then x[t] = sat8(rq(attn, a) - rq(h, b)), which
             * overwrites the block's queries, now used (the attention's scratch is free). */
            ebq_project_combine_s8(&scratch, &pc, nb, s.c, s.attn, xt);
        }
        stage(hooks, l + 1, 1);
    }

    /* Classifier on [CLS]: the raw int32 accumulators are the logits (one weight scale). */
    stage(hooks, m->n_layers + 1, 0);
    const ebq_fc_params cls = {d, m->num_labels, m->cls_w, m->cls_b, NULL};
    ebq_fully_connected_s32(&scratch, &cls, 1, s.x, logits);
    stage(hooks, m->n_layers + 1, 1);

    arena->used = start;
    return EBQ_OK;
}

uint32_t ebq_argmax(const int32_t *logits, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}
