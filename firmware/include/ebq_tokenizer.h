/*
 * ebq_tokenizer.h - the on-device WordPiece tokenizer (rules: docs/tokenizer.md).
 *
 * Reads the vocabulary tensors of a model blob in place (tok.cfg, tok.bytes, tok.offsets,
 * tok.ids; layout in docs/model-blob.md) and returns exactly the ids of the host tokenizer
 * (hil/quant/tokenizer.py). No malloc, no recursion, no float, constant stack (a few dozen
 * bytes): words of any length are matched straight from the input text, lower-cased on the fly.
 * Cost: O(len) for UTF-8 validation plus, per word piece, ~2 binary searches per matched byte.
 */
#ifndef EBQ_TOKENIZER_H
#define EBQ_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "ebq.h"
#include "ebq_blob.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A validated view of the vocabulary tensors (pointers into the blob). */
typedef struct {
    const uint8_t *bytes;    /* tok.bytes: entry texts, concatenated                       */
    const uint16_t *off16;   /* tok.offsets if u16 [n_entries + 1], else NULL               */
    const uint32_t *off32;   /* tok.offsets if u32 [n_entries + 1], else NULL               */
    const uint16_t *ids;     /* tok.ids [n_entries]: vocabulary id of each entry            */
    uint32_t n_init;         /* entries [0, n_init) start a word, sorted by bytes           */
    uint32_t n_entries;      /* entries [n_init, n_entries) continue one ("##" removed)     */
    uint32_t vocab_size;     /* ids are < vocab_size <= 65536                               */
    uint16_t unk, cls, pad;  /* special ids                                                 */
    uint32_t max_chars;      /* a word longer than this (code points) becomes [UNK]         */
} ebq_vocab;

/* Fills `v` from the blob's tok.* tensors after checking them completely (shapes, id ranges,
 * monotonic offsets, strictly sorted tables), so tokenizing can never read out of bounds.
 * Returns EBQ_OK, EBQ_ERR_ARG or EBQ_ERR_BLOB_TENSOR. */
int ebq_vocab_load(ebq_vocab *v, const ebq_blob *b);

/* EBQ_OK if text[0..len) is strict UTF-8 (no overlongs, surrogates or > U+10FFFF), else
 * EBQ_ERR_BAD_UTF8. Python's bytes.decode("utf-8") accepts exactly the same inputs. */
int ebq_utf8_check(const uint8_t *text, size_t len);

/* UTF-8 text -> ids: ids[0] = [CLS], then word pieces, stopping once max_ids ids are written
 * (the same ids as the host's encode(text, max_len=max_ids)). The whole text is validated
 * first: invalid UTF-8 gives EBQ_ERR_BAD_UTF8 and *n_ids = 0. max_ids must be >= 1.
 * `text` may be NULL when len == 0. Returns EBQ_OK, EBQ_ERR_ARG or EBQ_ERR_BAD_UTF8. */
int ebq_vocab_tokenize(const ebq_vocab *v, const uint8_t *text, size_t len, uint16_t *ids,
                       uint32_t max_ids, uint32_t *n_ids);

#ifdef __cplusplus
}
#endif

#endif /* EBQ_TOKENIZER_H */
