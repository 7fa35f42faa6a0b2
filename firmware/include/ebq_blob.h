/*
 * ebq_blob.h - reader of the model blob (docs/model-blob.md), the one file the engine loads.
 *
 * The blob is parsed in place: ebq_blob only points into the caller's bytes (flash), nothing is
 * copied or allocated. Every field is validated before use, so any byte sequence is safe to pass:
 * the worst outcome is an EBQ_ERR_BLOB_* status, never an out-of-bounds read.
 *
 * Alignment: the blob's first byte must be 4-byte aligned (ebq_blob_parse returns EBQ_ERR_ARG
 * otherwise). Tensor data sits at 8-aligned offsets from the blob start, so every tensor pointer
 * is then aligned for its dtype (the widest is 4 bytes) and may be read as `const int32_t *` etc.
 * Tensor data is little-endian; the reader targets little-endian cores (all Cortex-M builds).
 */
#ifndef EBQ_BLOB_H
#define EBQ_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "ebq.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EBQ_BLOB_MAGIC "EBQB"
#define EBQ_BLOB_VERSION 1u       /* the only format version this reader accepts */
#define EBQ_BLOB_HEADER_BYTES 24u /* magic, version, total_len, crc32, n_tensors, reserved */
#define EBQ_BLOB_ENTRY_BYTES 64u  /* one tensor-table entry */
#define EBQ_BLOB_NAME_BYTES 32u   /* name field incl. NUL: names are 1..31 bytes */
#define EBQ_BLOB_MAX_NDIM 4u
#define EBQ_BLOB_ALIGN 4u         /* alignment the caller must give the blob's first byte */
#define EBQ_DIM_ANY 0xFFFFFFFFu   /* in ebq_blob_get's expected shape: any extent accepted */

/* Tensor element types; codes are the blob's dtype byte. 0 is never valid. */
enum {
    EBQ_DT_I8 = 1,
    EBQ_DT_U8 = 2,
    EBQ_DT_I16 = 3,
    EBQ_DT_U16 = 4,
    EBQ_DT_I32 = 5,
    EBQ_DT_U32 = 6
};

/* A validated blob: a view into the caller's bytes. */
typedef struct {
    const uint8_t *data; /* blob start (EBQ_BLOB_ALIGN-aligned)                  */
    uint32_t len;        /* total length from the header (<= the len passed in)  */
    uint32_t version;    /* format version                                       */
    uint32_t n_tensors;  /* entries in the tensor table                          */
    uint32_t model_id;   /* CRC-32 of bytes [0, len): the id the device reports  */
} ebq_blob;

/* One tensor-table entry, resolved. */
typedef struct {
    const char *name;   /* NUL-terminated, points into the blob          */
    uint32_t dtype;     /* EBQ_DT_*                                       */
    uint32_t ndim;      /* 0..4 (0 = scalar)                              */
    uint32_t shape[4];  /* extents; 0 beyond ndim                         */
    const void *data;   /* aligned for dtype, nbytes long                 */
    uint32_t nbytes;    /* product(shape) * element size                  */
} ebq_tensor;

/* CRC-32 (IEEE 802.3, as zlib.crc32): pass crc = 0 to start, the previous result to continue. */
uint32_t ebq_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* Validates header, length, CRC and every table entry (name, dtype, shape vs byte length,
 * alignment, bounds, no overlap, no duplicate names) and fills `b`. Bytes after the header's
 * total length are ignored. Returns EBQ_OK, EBQ_ERR_ARG (NULL or misaligned data) or
 * EBQ_ERR_BLOB_{TRUNCATED,MAGIC,VERSION,CRC,TENSOR}. `b` is zeroed on failure. */
int ebq_blob_parse(ebq_blob *b, const uint8_t *data, size_t len);

/* Entry `index` (0..n_tensors-1) of a parsed blob; EBQ_ERR_ARG if out of range. */
int ebq_blob_tensor(const ebq_blob *b, uint32_t index, ebq_tensor *t);

/* Finds tensor `name` and checks it: dtype must equal `dtype`, ndim must equal `ndim`, and if
 * `shape` is not NULL each of its `ndim` extents must match (EBQ_DIM_ANY accepts any).
 * On success sets *data (may be NULL to only check) and, if out_shape4 is not NULL, writes the
 * 4 extents (0 beyond ndim). Returns EBQ_OK, EBQ_ERR_ARG or EBQ_ERR_BLOB_TENSOR. */
int ebq_blob_get(const ebq_blob *b, const char *name, int dtype, uint32_t ndim,
                 const uint32_t *shape, const void **data, uint32_t *out_shape4);

#ifdef __cplusplus
}
#endif

#endif /* EBQ_BLOB_H */
