/*
 * ebq_model.h - the model view: dims plus a pointer to every tensor of the blob (llama2.c style,
 * one shape comment per field). Filled and validated by ebq_model_load (firmware/src/model.c);
 * tensor names and meanings are in docs/int8-spec.md. Nothing here is copied: the pointers point
 * into the blob (flash).
 *
 * Shapes: D model dim, E embedding dim, K conv kernel, V vocab, T max_len, C classes.
 */
#ifndef EBQ_MODEL_H
#define EBQ_MODEL_H

#include <stdint.h>

#include "ebq.h"
#include "ebq_blob.h"
#include "ebq_tokenizer.h"

/* cfg.dims[0]: the integer specs this engine computes (docs/int8-spec.md). 1: the model before
 * issue #18 (the shipped blobs until they are retrained); 2: + the segment bias and, in each
 * layer with "l<i>.ao.w", the attention output projection. */
#define EBQ_SPEC_LEGACY 1u
#define EBQ_SPEC_VERSION 2u
#define EBQ_MAX_LAYERS 8u
#define EBQ_MAX_DIM 512u    /* D; D must also be a multiple of 4 */
#define EBQ_ARENA_ALIGN 8u  /* every arena buffer starts 8-aligned (LDRD on Cortex-M) */

/* cfg.dims (i32 x 8), the same order as hil/quant/reference.py DIMS_FIELDS. */
enum {
    EBQ_DIMS_VERSION, EBQ_DIMS_VOCAB, EBQ_DIMS_MAX_LEN, EBQ_DIMS_EMB, EBQ_DIMS_DIM,
    EBQ_DIMS_LAYERS, EBQ_DIMS_KERNEL, EBQ_DIMS_LABELS, EBQ_DIMS_COUNT
};

/* Requantization parameters of one output: multiplier(s) and shift(s), per channel or scalar. */
typedef struct {
    const int32_t *m; /* (O,) or (1,) signed multipliers */
    const int8_t *sh; /* (O,) or (1,) shifts in [-30, 31] */
} ebq_rq_params;

typedef struct {
    ebq_rq_params norm_rq; /* (D,) RMSNorm (gain, sqrt(D), 2^-24 and 1/s_y folded in M) */
    const int8_t *q_w;     /* (D,D) query projection, row o = output channel o */
    const int32_t *q_b;    /* (D,) */
    ebq_rq_params q_rq;    /* (D,) */
    ebq_rq_params sm_rq;   /* (1,) scores -> softmax argument in Q8 */
    const int8_t *conv_w;  /* (D,K) depthwise causal conv */
    const int32_t *conv_b; /* (D,) */
    ebq_rq_params conv_rq; /* (D,) */
    const int8_t *silu;    /* (256,) SiLU table, index c + 128 */
    const int8_t *proj_w;  /* (D,D) */
    const int32_t *proj_b; /* (D,) */
    ebq_rq_params ctx_rq;  /* (1,) spec 2: attention context (Q16 of y) -> int8 */
    const int8_t *ao_w;    /* (D,D) spec 2: attention output projection, or NULL (none) */
    const int32_t *ao_b;   /* (D,) */
    ebq_rq_params out_a;   /* (1,), or (D,) with ao_w: attention branch -> output (a folded) */
    ebq_rq_params out_b;   /* (D,) conv branch -> layer output (b folded) */
} ebq_layer;

struct ebq_model {
    uint32_t vocab_size; /* V */
    uint32_t max_len;    /* T, [CLS] included */
    uint32_t emb_dim;    /* E */
    uint32_t dim;        /* D */
    uint32_t n_layers;
    uint32_t kernel;     /* K */
    uint32_t num_labels; /* C */
    uint32_t spec;       /* cfg.dims[0]: EBQ_SPEC_LEGACY or EBQ_SPEC_VERSION */
    const int8_t *tok;         /* (V,E) token table */
    const int8_t *pos;         /* (T,E) position table */
    const int8_t *tok_proj_w;  /* (D,E) */
    ebq_rq_params tok_proj_rq; /* (D,) */
    const int8_t *pos_proj_w;  /* (D,E) */
    ebq_rq_params pos_proj_rq; /* (D,) */
    const int32_t *seg_b;      /* (D,) spec 2: segment 0 as a bias of the position acc, or NULL */
    const int16_t *exp_hi;     /* (17,) 2^14 e^-k */
    const int16_t *exp_lo;     /* (256,) 2^14 e^(-r/256) */
    ebq_layer layers[EBQ_MAX_LAYERS];
    const int8_t *cls_w;       /* (C,D) one weight scale for all classes */
    const int32_t *cls_b;      /* (C,) */
    ebq_blob blob;             /* the parsed container */
    ebq_vocab vocab;           /* the tokenizer's view of the vocab tensors */
};

#endif /* EBQ_MODEL_H */
