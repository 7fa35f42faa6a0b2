/*
 * blob.c - parse and validate the model blob in place (format: docs/model-blob.md).
 *
 * Every multi-byte header field is read byte by byte (little-endian), so parsing itself never
 * depends on alignment; every offset and length is checked against the blob length with
 * arithmetic that cannot overflow before anything is dereferenced. No malloc, no libc, no float.
 */
#include "ebq_blob.h"

#define ENTRY_DTYPE 32u  /* byte offsets inside a 64-byte table entry */
#define ENTRY_NDIM 33u
#define ENTRY_PAD0 34u
#define ENTRY_SHAPE 36u
#define ENTRY_OFFSET 52u
#define ENTRY_NBYTES 56u
#define ENTRY_PAD1 60u
#define CRC_START 16u    /* the CRC covers [16, total_len) */
#define DATA_ALIGN 8u    /* tensor offsets are multiples of this */

#if defined(__BYTE_ORDER__) && (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
#error "the model blob's tensor data is little-endian; this reader supports little-endian only"
#endif

static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t ebq_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = (crc >> 8) ^ crc_table[(crc ^ data[i]) & 0xFFu];
    return ~crc;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint32_t dtype_size(uint32_t dtype)
{
    switch (dtype) {
    case EBQ_DT_I8: case EBQ_DT_U8: return 1;
    case EBQ_DT_I16: case EBQ_DT_U16: return 2;
    case EBQ_DT_I32: case EBQ_DT_U32: return 4;
    default: return 0;
    }
}

/* Name field: 1..31 printable ASCII bytes (0x21..0x7e), then NULs to the end of the field. */
static int name_ok(const uint8_t *name)
{
    uint32_t n = 0;
    while (n < EBQ_BLOB_NAME_BYTES && name[n] != 0) {
        if (name[n] < 0x21u || name[n] > 0x7eu)
            return 0;
        n++;
    }
    if (n == 0 || n == EBQ_BLOB_NAME_BYTES)
        return 0;
    for (uint32_t i = n; i < EBQ_BLOB_NAME_BYTES; i++)
        if (name[i] != 0)
            return 0;
    return 1;
}

/* Equality of two NUL-terminated strings, `a` at most EBQ_BLOB_NAME_BYTES long (a blob name). */
static int name_eq(const char *a, const char *b)
{
    for (uint32_t i = 0; i < EBQ_BLOB_NAME_BYTES; i++) {
        if (a[i] != b[i])
            return 0;
        if (a[i] == 0)
            return 1;
    }
    return 0;
}

/* Checks table entry i; *min_offset is where its data may start at the earliest (end of the
 * table or of the previous tensor) and is advanced past it. */
static int check_entry(const uint8_t *e, uint32_t total, uint32_t *min_offset)
{
    uint32_t dtype = e[ENTRY_DTYPE], ndim = e[ENTRY_NDIM];
    uint32_t size = dtype_size(dtype);
    if (!name_ok(e) || size == 0 || ndim > EBQ_BLOB_MAX_NDIM)
        return EBQ_ERR_BLOB_TENSOR;
    if (e[ENTRY_PAD0] != 0 || e[ENTRY_PAD0 + 1] != 0 || rd32(e + ENTRY_PAD1) != 0)
        return EBQ_ERR_BLOB_TENSOR;
    uint64_t bytes = size; /* product of <= 4 u32 extents times 4 can overflow u64: clamp */
    for (uint32_t d = 0; d < EBQ_BLOB_MAX_NDIM; d++) {
        uint32_t extent = rd32(e + ENTRY_SHAPE + 4u * d);
        if (d >= ndim) {
            if (extent != 0)
                return EBQ_ERR_BLOB_TENSOR;
            continue;
        }
        bytes *= extent;
        if (bytes > 0xFFFFFFFFu)
            return EBQ_ERR_BLOB_TENSOR;
    }
    uint32_t offset = rd32(e + ENTRY_OFFSET), nbytes = rd32(e + ENTRY_NBYTES);
    if (bytes != nbytes || offset % DATA_ALIGN != 0 || offset < *min_offset ||
        offset > total || nbytes > total - offset)
        return EBQ_ERR_BLOB_TENSOR;
    *min_offset = offset + nbytes;
    return EBQ_OK;
}

int ebq_blob_parse(ebq_blob *b, const uint8_t *data, size_t len)
{
    if (b == NULL)
        return EBQ_ERR_ARG;
    b->data = NULL;
    b->len = b->version = b->n_tensors = b->model_id = 0;
    if (data == NULL || ((uintptr_t)data % EBQ_BLOB_ALIGN) != 0)
        return EBQ_ERR_ARG;
    if (len < CRC_START)
        return EBQ_ERR_BLOB_TRUNCATED;
    if (data[0] != 'E' || data[1] != 'B' || data[2] != 'Q' || data[3] != 'B')
        return EBQ_ERR_BLOB_MAGIC;
    uint32_t version = rd32(data + 4), total = rd32(data + 8), crc = rd32(data + 12);
    if (version != EBQ_BLOB_VERSION)
        return EBQ_ERR_BLOB_VERSION;
    if (total > len || total < EBQ_BLOB_HEADER_BYTES)
        return EBQ_ERR_BLOB_TRUNCATED;
    /* One pass computes both the payload CRC (checked) and the whole-blob CRC (model id). */
    uint32_t body = 0xFFFFFFFFu, whole = ~ebq_crc32(0, data, CRC_START);
    for (uint32_t i = CRC_START; i < total; i++) {
        body = (body >> 8) ^ crc_table[(body ^ data[i]) & 0xFFu];
        whole = (whole >> 8) ^ crc_table[(whole ^ data[i]) & 0xFFu];
    }
    if (~body != crc)
        return EBQ_ERR_BLOB_CRC;
    uint32_t n = rd32(data + 16);
    if (rd32(data + 20) != 0)
        return EBQ_ERR_BLOB_TENSOR;
    if (n > (total - EBQ_BLOB_HEADER_BYTES) / EBQ_BLOB_ENTRY_BYTES)
        return EBQ_ERR_BLOB_TRUNCATED;
    uint32_t min_offset = EBQ_BLOB_HEADER_BYTES + n * EBQ_BLOB_ENTRY_BYTES;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = data + EBQ_BLOB_HEADER_BYTES + i * EBQ_BLOB_ENTRY_BYTES;
        int rc = check_entry(e, total, &min_offset);
        if (rc != EBQ_OK)
            return rc;
        for (uint32_t j = 0; j < i; j++) /* names are unique: O(n^2) over ~100 names, once */
            if (name_eq((const char *)e,
                        (const char *)(data + EBQ_BLOB_HEADER_BYTES + j * EBQ_BLOB_ENTRY_BYTES)))
                return EBQ_ERR_BLOB_TENSOR;
    }
    b->data = data;
    b->len = total;
    b->version = version;
    b->n_tensors = n;
    b->model_id = ~whole;
    return EBQ_OK;
}

int ebq_blob_tensor(const ebq_blob *b, uint32_t index, ebq_tensor *t)
{
    if (b == NULL || t == NULL || b->data == NULL || index >= b->n_tensors)
        return EBQ_ERR_ARG;
    const uint8_t *e = b->data + EBQ_BLOB_HEADER_BYTES + index * EBQ_BLOB_ENTRY_BYTES;
    t->name = (const char *)e;
    t->dtype = e[ENTRY_DTYPE];
    t->ndim = e[ENTRY_NDIM];
    for (uint32_t d = 0; d < EBQ_BLOB_MAX_NDIM; d++)
        t->shape[d] = rd32(e + ENTRY_SHAPE + 4u * d);
    t->data = b->data + rd32(e + ENTRY_OFFSET);
    t->nbytes = rd32(e + ENTRY_NBYTES);
    return EBQ_OK;
}

int ebq_blob_get(const ebq_blob *b, const char *name, int dtype, uint32_t ndim,
                 const uint32_t *shape, const void **data, uint32_t *out_shape4)
{
    if (b == NULL || b->data == NULL || name == NULL)
        return EBQ_ERR_ARG;
    for (uint32_t i = 0; i < b->n_tensors; i++) {
        ebq_tensor t;
        (void)ebq_blob_tensor(b, i, &t);
        if (!name_eq(t.name, name))
            continue;
        if (dtype < 0 || t.dtype != (uint32_t)dtype || t.ndim != ndim)
            return EBQ_ERR_BLOB_TENSOR;
        for (uint32_t d = 0; shape != NULL && d < ndim; d++)
            if (shape[d] != EBQ_DIM_ANY && shape[d] != t.shape[d])
                return EBQ_ERR_BLOB_TENSOR;
        if (data != NULL)
            *data = t.data;
        for (uint32_t d = 0; out_shape4 != NULL && d < EBQ_BLOB_MAX_NDIM; d++)
            out_shape4[d] = t.shape[d];
        return EBQ_OK;
    }
    return EBQ_ERR_BLOB_TENSOR;
}
