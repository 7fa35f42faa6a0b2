/*
 * ebq_proto.h - the host <-> device wire protocol (docs/protocol.md), device side.
 *
 * One frame is one ASCII line: `$<seq> <TYPE>[ <payload>]*<CRC32 as 8 upper hex>\n`.
 * Everything here is pure (no I/O, no globals, no allocation) so the parser can be fuzzed on the
 * host and reused by every board. hil/protocol.py mirrors these constants; a test extracts them
 * from this file and checks both sides agree.
 */
#ifndef EBQ_PROTO_H
#define EBQ_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EBQ_PROTO_VERSION 1
#define EBQ_FW_VERSION "0.1.0"

/* Longest CLASSIFY text in bytes after percent-decoding (announced in HELLO as maxtext). The
 * limit a user meets is this one, on the text, whatever its content. */
#define EBQ_PROTO_MAXTEXT 2048
/* Longest frame the device accepts, `$` to `\n` inclusive (announced in HELLO as maxframe).
 * Why so much more than the text: every `$`, `*`, `%`, control and non-ASCII byte travels as
 * %XX, so a text of MAXTEXT bytes can take 3 x MAXTEXT on the wire. The frame limit covers that
 * worst case (proto.c checks it), so the text limit alone decides: 2,048 bytes of `$` or of UTF-8
 * are answered, 2,049 bytes of anything get TOO_LONG. Cost: the parser buffer, ~6 KB of RAM
 * (3,576 B more than the 2,600 it was); decoding escapes while receiving would save that. */
#define EBQ_PROTO_MAXFRAME 6176
/* Largest CLASSIFY frame: `$` seq(5) ` CLASSIFY ` 3 x text `*` crc(8) `\r\n`. */
#define EBQ_PROTO_WORST_CLASSIFY (1 + 5 + 10 + 3 * EBQ_PROTO_MAXTEXT + 9 + 2)
/* Largest sequence number. */
#define EBQ_PROTO_MAXSEQ 65535

/* Message types, in wire spelling. X(name) -> EBQ_MSG_<name>, string "<name>". */
#define EBQ_MSG_TYPES(X) \
    X(HELLO)             \
    X(CLASSIFY)          \
    X(IDS)               \
    X(STATS)             \
    X(RESET)             \
    X(RESULT)            \
    X(ERROR)             \
    X(OK)

/* Error codes carried by `ERROR code=<CODE>`. */
#define EBQ_ERROR_CODES(X) \
    X(TOO_LONG)            \
    X(BAD_UTF8)            \
    X(BAD_FRAME)           \
    X(BAD_IDS)             \
    X(EMPTY)               \
    X(NO_MEMORY)           \
    X(MODEL)               \
    X(INTERNAL)

#define EBQ_X_ENUM_MSG(n) EBQ_MSG_##n,
#define EBQ_X_ENUM_ERR(n) EBQ_CODE_##n,
typedef enum { EBQ_MSG_NONE = 0, EBQ_MSG_TYPES(EBQ_X_ENUM_MSG) EBQ_MSG_COUNT } ebq_msg_type;
typedef enum { EBQ_CODE_NONE = 0, EBQ_ERROR_CODES(EBQ_X_ENUM_ERR) EBQ_CODE_COUNT } ebq_error_code;
#undef EBQ_X_ENUM_MSG
#undef EBQ_X_ENUM_ERR

const char *ebq_msg_name(ebq_msg_type t);     /* "HELLO", ...; "?" when out of range */
const char *ebq_error_name(ebq_error_code c); /* "TOO_LONG", ...; "?" when out of range */

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32). Start with crc = 0; chain calls. */
uint32_t ebq_proto_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* ---- receive: a byte-at-a-time frame parser ------------------------------------------------ */

typedef enum {
    EBQ_EV_NONE = 0,  /* nothing complete yet (or noise dropped)                            */
    EBQ_EV_FRAME,     /* a valid frame: seq, type, payload (raw, still percent-encoded)     */
    EBQ_EV_BAD_FRAME, /* CRC, syntax, seq or type wrong: answer ERROR code=BAD_FRAME         */
    EBQ_EV_TOO_LONG   /* frame over EBQ_PROTO_MAXFRAME, dropped: answer ERROR code=TOO_LONG  */
} ebq_event_kind;

typedef struct {
    ebq_event_kind kind;
    uint32_t seq;           /* 0 when it could not be read                                 */
    ebq_msg_type type;      /* EBQ_EV_FRAME only                                           */
    uint8_t *payload;       /* EBQ_EV_FRAME: points into the parser; valid until next feed */
    size_t payload_len;
    const char *reason;     /* EBQ_EV_BAD_FRAME / EBQ_EV_TOO_LONG: short static text       */
} ebq_event;

typedef struct {
    uint8_t buf[EBQ_PROTO_MAXFRAME]; /* bytes after `$`, before `\n`                       */
    size_t len;
    uint8_t state; /* 0 = hunting for `$`, 1 = inside a frame, 2 = discarding an over-long one */
} ebq_parser;

void ebq_parser_init(ebq_parser *p);

/* Feeds one byte. Returns the kind of event completed by this byte (also stored in *ev).
 * Never fails, whatever the byte sequence; memory use is bounded by sizeof(ebq_parser). */
ebq_event_kind ebq_parser_feed(ebq_parser *p, uint8_t byte, ebq_event *ev);

/* Decodes %XX escapes in place. Returns the decoded length, or -1 on a malformed escape or a
 * raw byte that may not appear in a body. */
long ebq_percent_decode(uint8_t *buf, size_t len);

/* Parses a comma-separated list of decimal integers (each 0..65535) into ids.
 * Returns the number of ids, -1 on syntax error, -2 when there are more than max_ids,
 * -3 when a value is over 65535 (cannot be a token id). */
long ebq_parse_ids(const uint8_t *s, size_t len, uint16_t *ids, size_t max_ids);

/* ---- transmit: a frame writer that streams through a callback, CRC computed on the fly ----- */

typedef void (*ebq_write_fn)(void *ctx, const uint8_t *buf, size_t len);

typedef struct {
    ebq_write_fn write;
    void *ctx;
    uint32_t crc;      /* running CRC of the body                                           */
    size_t frame_len;  /* bytes written so far, `$` included                                */
    size_t n;          /* bytes in chunk[]                                                  */
    uint8_t chunk[64]; /* small staging buffer so the UART sees few calls                   */
} ebq_writer;

void ebq_writer_begin(ebq_writer *w, ebq_write_fn write, void *ctx, uint32_t seq,
                      ebq_msg_type type);
void ebq_writer_u32(ebq_writer *w, const char *key, uint32_t v);
void ebq_writer_u64(ebq_writer *w, const char *key, uint64_t v);
void ebq_writer_hex32(ebq_writer *w, const char *key, uint32_t v); /* 8 upper hex digits */
void ebq_writer_str(ebq_writer *w, const char *key, const char *token); /* no spaces inside */
void ebq_writer_text(ebq_writer *w, const char *key, const uint8_t *s, size_t len); /* %-enc */
void ebq_writer_i32_list(ebq_writer *w, const char *key, const int32_t *v, size_t n);
void ebq_writer_u16_list(ebq_writer *w, const char *key, const uint16_t *v, size_t n);
void ebq_writer_u32_list(ebq_writer *w, const char *key, const uint32_t *v, size_t n);
/* Appends `*<crc>\n` and flushes. Returns the frame length in bytes. */
size_t ebq_writer_end(ebq_writer *w);

/* Formats v as decimal into out (>= 21 bytes); returns the length. */
size_t ebq_fmt_u64(char *out, uint64_t v);

#ifdef __cplusplus
}
#endif

#endif /* EBQ_PROTO_H */
