/*
 * ebq.h - the EmbBERT-Q integer inference engine: the one header firmware includes.
 *
 * The engine reads one model blob (docs/model-blob.md) in place, never allocates, never uses
 * float, and computes exactly what hil/quant/reference.py computes (bit for bit).
 * The caller owns every byte of memory: the blob (flash), the model view and the arena (RAM).
 */
#ifndef EBQ_H
#define EBQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes; every function that can fail returns one of these. */
enum {
    EBQ_OK = 0,
    EBQ_ERR_BLOB_TRUNCATED = -1, /* blob shorter than its header or tensor table says      */
    EBQ_ERR_BLOB_MAGIC = -2,     /* not a model blob                                        */
    EBQ_ERR_BLOB_VERSION = -3,   /* format version this engine does not read                */
    EBQ_ERR_BLOB_CRC = -4,       /* payload checksum mismatch (corrupted)                   */
    EBQ_ERR_BLOB_TENSOR = -5,    /* a tensor is missing or has the wrong dtype/shape        */
    EBQ_ERR_BAD_UTF8 = -6,       /* tokenizer input is not valid UTF-8                       */
    EBQ_ERR_TOO_LONG = -7,       /* input longer than the engine accepts                    */
    EBQ_ERR_BAD_IDS = -8,        /* token id out of vocabulary                              */
    EBQ_ERR_EMPTY = -9,          /* no tokens                                               */
    EBQ_ERR_NO_MEMORY = -10,     /* arena too small for this sequence length                */
    EBQ_ERR_ARG = -11            /* NULL pointer or other caller error                      */
};

/* Returns a static, human-readable name for a status code ("blob truncated", ...). */
const char *ebq_strerror(int status);

/* ---- model ------------------------------------------------------------------------------- */

/* The model view: dims plus pointers into the blob. Defined in the engine's private
 * ebq_model.h; the application only holds a pointer to it. */
typedef struct ebq_model ebq_model;

/* Static storage for one model view, so an application needs no private header (the way
 * FreeRTOS's StaticTask_t stands in for its task struct):
 *     static ebq_model_storage mem;  ebq_model *m = (ebq_model *)&mem;
 * The view is mostly pointers, so its size scales with them: 880 bytes on Cortex-M, 1,760 on a
 * 64-bit host. model.c checks at compile time that this is large and aligned enough. */
#define EBQ_MODEL_STORAGE_BYTES (220u * sizeof(void *))
typedef union {
    void *align_ptr;    /* alignment of the view's pointers */
    uint64_t align_u64; /* and of any 64-bit field           */
    uint8_t bytes[EBQ_MODEL_STORAGE_BYTES];
} ebq_model_storage;

/* Validates `blob` (magic, version, lengths, checksum, every tensor's dtype and shape) and fills
 * `m` with pointers into it. The blob must stay alive and unchanged while `m` is used. */
int ebq_model_load(ebq_model *m, const uint8_t *blob, size_t len);

uint32_t ebq_model_num_labels(const ebq_model *m);
uint32_t ebq_model_max_len(const ebq_model *m);    /* tokens, [CLS] included */
uint32_t ebq_model_num_layers(const ebq_model *m);
uint32_t ebq_model_vocab_size(const ebq_model *m);
uint32_t ebq_model_id(const ebq_model *m);         /* crc32 of the whole blob */

/* Arena bytes the forward pass needs for n tokens (exact; the peak the arena will reach). */
size_t ebq_arena_bytes(const ebq_model *m, uint32_t n_tokens);
/* The arena that takes every input of 1..n_tokens tokens: the largest ebq_arena_bytes over them.
 * Not ebq_arena_bytes(n_tokens): blocks shrink past 128 tokens (EBQ_BLOCK_ROWS), so 129 tokens
 * need less than 128 and a board sized for max_len alone could refuse shorter inputs. */
size_t ebq_arena_bytes_upto(const ebq_model *m, uint32_t n_tokens);

/* ---- arena: a bump allocator over caller-owned memory, with a high-water mark ------------- */

typedef struct {
    uint8_t *base;
    size_t size;
    size_t used;
    size_t peak; /* highest `used` ever reached since ebq_arena_init */
} ebq_arena;

void ebq_arena_init(ebq_arena *a, void *mem, size_t size);

/* ---- tokenizer --------------------------------------------------------------------------- */

/* UTF-8 text -> token ids, exactly as the host tokenizer (docs/tokenizer.md): ids[0] = [CLS],
 * truncated to min(max_ids, model max_len). Returns EBQ_ERR_BAD_UTF8 on invalid UTF-8. */
int ebq_tokenize(const ebq_model *m, const uint8_t *text, size_t len, uint16_t *ids,
                 uint32_t max_ids, uint32_t *n_ids);

/* ---- inference --------------------------------------------------------------------------- */

/* Called before (end = 0) and after (end = 1) each stage: stage 0 = embedding,
 * 1..n_layers = encoder layers, n_layers + 1 = classifier. Lets firmware time each layer. */
typedef struct {
    void (*stage)(void *ctx, uint32_t stage, int end);
    void *ctx;
} ebq_hooks;

/* Token ids -> int32 logits (num_labels of them). `hooks` may be NULL. Uses only `arena`. */
int ebq_forward(const ebq_model *m, ebq_arena *arena, const uint16_t *ids, uint32_t n,
                int32_t *logits, const ebq_hooks *hooks);

/* Index of the largest logit; the lowest index wins a tie (as numpy.argmax). */
uint32_t ebq_argmax(const int32_t *logits, uint32_t n);

#ifdef __cplusplus
}
#endif

#endif /* EBQ_H */
