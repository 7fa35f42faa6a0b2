/*
 * proto.c - frame parser, frame writer, CRC-32 and payload helpers (docs/protocol.md).
 *
 * Pure code: no I/O, no globals that change, no allocation. The parser is a three-state machine
 * (hunt for `$`, inside a frame, discard an over-long frame) over a fixed buffer, so any byte
 * sequence costs bounded memory and time per byte and can never crash it.
 */
#include "ebq_proto.h"

#include <string.h>

/* The text limit is the only one a user meets: the worst-case escaped text must fit a frame. */
_Static_assert(EBQ_PROTO_MAXFRAME >= EBQ_PROTO_WORST_CLASSIFY,
               "a MAXTEXT text escaped byte by byte must fit in EBQ_PROTO_MAXFRAME");

#define X_NAME(n) #n,
static const char *const k_msg_names[] = {"?", EBQ_MSG_TYPES(X_NAME)};
static const char *const k_err_names[] = {"?", EBQ_ERROR_CODES(X_NAME)};
#undef X_NAME

const char *ebq_msg_name(ebq_msg_type t)
{
    return ((unsigned)t < EBQ_MSG_COUNT) ? k_msg_names[t] : "?";
}

const char *ebq_error_name(ebq_error_code c)
{
    return ((unsigned)c < EBQ_CODE_COUNT) ? k_err_names[c] : "?";
}

/* Nibble-table CRC-32: 64 bytes of table, ~2x faster than bitwise, small enough for flash. */
uint32_t ebq_proto_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    static const uint32_t t[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
        0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
        0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ t[crc & 15u];
        crc = (crc >> 4) ^ t[crc & 15u];
    }
    return ~crc;
}

/* ---- receive ------------------------------------------------------------------------------ */

enum { ST_HUNT = 0, ST_FRAME = 1, ST_DISCARD = 2 };

void ebq_parser_init(ebq_parser *p)
{
    p->len = 0;
    p->state = ST_HUNT;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Reads a leading decimal seq followed by a space; returns its length or 0 if none. */
static size_t read_seq(const uint8_t *b, size_t n, uint32_t *seq)
{
    uint32_t v = 0;
    size_t i = 0;
    while (i < n && i < 6 && b[i] >= '0' && b[i] <= '9') v = v * 10u + (uint32_t)(b[i++] - '0');
    if (i == 0 || i > 5 || v > EBQ_PROTO_MAXSEQ || i >= n || b[i] != ' ') return 0;
    *seq = v;
    return i;
}

static ebq_event_kind bad(ebq_event *ev, const char *reason)
{
    ev->kind = EBQ_EV_BAD_FRAME;
    ev->reason = reason;
    return ev->kind;
}

static ebq_msg_type lookup_type(const uint8_t *s, size_t n)
{
    for (unsigned t = 1; t < EBQ_MSG_COUNT; t++) {
        const char *name = k_msg_names[t];
        if (strlen(name) == n && memcmp(name, s, n) == 0) return (ebq_msg_type)t;
    }
    return EBQ_MSG_NONE;
}

/* Validates a complete frame held in p->buf[0..len) (without `$` and `\n`). */
static ebq_event_kind finish(ebq_parser *p, ebq_event *ev)
{
    uint8_t *b = p->buf;
    size_t n = p->len;
    if (n > 0 && b[n - 1] == '\r') n--;
    (void)read_seq(b, n, &ev->seq); /* best effort, so even a bad frame's error names it */
    if (n < 9 || b[n - 9] != '*') return bad(ev, "no *crc");
    size_t body = n - 9;
    uint32_t crc = 0;
    for (size_t i = body + 1; i < n; i++) {
        int h = hexval(b[i]);
        if (h < 0 || (b[i] >= 'a' && b[i] <= 'f')) return bad(ev, "crc not 8 upper hex");
        crc = (crc << 4) | (uint32_t)h;
    }
    if (ebq_proto_crc32(0, b, body) != crc) return bad(ev, "crc mismatch");
    for (size_t i = 0; i < body; i++)
        if (b[i] < 0x20 || b[i] > 0x7E || b[i] == '*' || b[i] == '$') return bad(ev, "raw byte");
    size_t i = read_seq(b, body, &ev->seq);
    if (i == 0) return bad(ev, "bad seq");
    i++; /* the space */
    size_t t0 = i;
    while (i < body && ((b[i] >= 'A' && b[i] <= 'Z') || b[i] == '_')) i++;
    ebq_msg_type type = lookup_type(b + t0, i - t0);
    if (type == EBQ_MSG_NONE) return bad(ev, "unknown type");
    if (i < body && b[i] != ' ') return bad(ev, "bad type");
    ev->type = type;
    ev->payload = (i < body) ? b + i + 1 : b + body;
    ev->payload_len = (i < body) ? body - i - 1 : 0;
    ev->kind = EBQ_EV_FRAME;
    return ev->kind;
}

ebq_event_kind ebq_parser_feed(ebq_parser *p, uint8_t c, ebq_event *ev)
{
    ev->kind = EBQ_EV_NONE;
    ev->seq = 0;
    ev->type = EBQ_MSG_NONE;
    ev->payload = NULL;
    ev->payload_len = 0;
    ev->reason = "";
    switch (p->state) {
    case ST_FRAME:
        if (c == '$') { /* a new frame starts; the partial one is dropped silently */
            p->len = 0;
            return ev->kind;
        }
        if (c == '\n') {
            p->state = ST_HUNT;
            return finish(p, ev);
        }
        /* `$` + buf + `\n` must fit in EBQ_PROTO_MAXFRAME */
        if (p->len + 2 >= EBQ_PROTO_MAXFRAME) {
            p->state = ST_DISCARD;
            return ev->kind;
        }
        p->buf[p->len++] = c;
        return ev->kind;
    case ST_DISCARD:
        if (c == '\n' || c == '$') {
            (void)read_seq(p->buf, p->len, &ev->seq);
            ev->kind = EBQ_EV_TOO_LONG;
            ev->reason = "frame over maxframe";
            p->len = 0;
            p->state = (c == '$') ? ST_FRAME : ST_HUNT;
        }
        return ev->kind;
    default:
        if (c == '$') {
            p->len = 0;
            p->state = ST_FRAME;
        }
        return ev->kind;
    }
}

long ebq_percent_decode(uint8_t *buf, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];
        if (c == '%') {
            if (i + 2 >= len) return -1;
            int hi = hexval(buf[i + 1]), lo = hexval(buf[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            buf[o++] = (uint8_t)(hi * 16 + lo);
            i += 2;
        } else if (c < 0x20 || c > 0x7E || c == '$' || c == '*') {
            return -1;
        } else {
            buf[o++] = c;
        }
    }
    return (long)o;
}

long ebq_parse_ids(const uint8_t *s, size_t len, uint16_t *ids, size_t max_ids)
{
    size_t n = 0, i = 0;
    if (len == 0) return 0;
    for (;;) {
        uint32_t v = 0;
        size_t d = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && d < 6) {
            v = v * 10u + (uint32_t)(s[i++] - '0');
            d++;
        }
        if (d == 0) return -1;
        if (d > 5 || v > 65535u) return -3;
        if (n == max_ids) return -2;
        ids[n++] = (uint16_t)v;
        if (i == len) return (long)n;
        if (s[i] != ',') return -1;
        i++;
    }
}

/* ---- transmit ----------------------------------------------------------------------------- */

size_t ebq_fmt_u64(char *out, uint64_t v)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (v % 10u));
        v /= 10u;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

static void flush(ebq_writer *w)
{
    if (w->n) w->write(w->ctx, w->chunk, w->n);
    w->n = 0;
}

/* Raw bytes of the frame; `body` says whether they count in the CRC. */
static void put(ebq_writer *w, const void *data, size_t len, int body)
{
    const uint8_t *d = (const uint8_t *)data;
    if (body) w->crc = ebq_proto_crc32(w->crc, d, len);
    w->frame_len += len;
    for (size_t i = 0; i < len; i++) {
        if (w->n == sizeof w->chunk) flush(w);
        w->chunk[w->n++] = d[i];
    }
}

static void put_str(ebq_writer *w, const char *s)
{
    put(w, s, strlen(s), 1);
}

static void put_key(ebq_writer *w, const char *key)
{
    put(w, " ", 1, 1);
    put_str(w, key);
    put(w, "=", 1, 1);
}

static void put_u64(ebq_writer *w, uint64_t v)
{
    char b[21];
    put(w, b, ebq_fmt_u64(b, v), 1);
}

static void put_i64(ebq_writer *w, int64_t v)
{
    if (v < 0) {
        put(w, "-", 1, 1);
        put_u64(w, (uint64_t)(-(v + 1)) + 1u);
    } else {
        put_u64(w, (uint64_t)v);
    }
}

void ebq_writer_begin(ebq_writer *w, ebq_write_fn write, void *ctx, uint32_t seq,
                      ebq_msg_type type)
{
    w->write = write;
    w->ctx = ctx;
    w->crc = 0;
    w->frame_len = 0;
    w->n = 0;
    put(w, "$", 1, 0);
    put_u64(w, seq);
    put(w, " ", 1, 1);
    put_str(w, ebq_msg_name(type));
}

void ebq_writer_u32(ebq_writer *w, const char *key, uint32_t v)
{
    put_key(w, key);
    put_u64(w, v);
}

void ebq_writer_u64(ebq_writer *w, const char *key, uint64_t v)
{
    put_key(w, key);
    put_u64(w, v);
}

void ebq_writer_hex32(ebq_writer *w, const char *key, uint32_t v)
{
    static const char hex[] = "0123456789ABCDEF";
    char b[8];
    for (int i = 0; i < 8; i++) b[i] = hex[(v >> (28 - 4 * i)) & 15u];
    put_key(w, key);
    put(w, b, 8, 1);
}

void ebq_writer_str(ebq_writer *w, const char *key, const char *token)
{
    put_key(w, key);
    put_str(w, token);
}

void ebq_writer_text(ebq_writer *w, const char *key, const uint8_t *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    if (key) {
        put_key(w, key);
    } else {
        put(w, " ", 1, 1);
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        /* in key=value payloads the space separates pairs, so it is escaped there too */
        int raw = c >= 0x20 && c <= 0x7E && c != '$' && c != '*' && c != '%' && !(key && c == ' ');
        if (raw) {
            put(w, &c, 1, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15u]};
            put(w, e, 3, 1);
        }
    }
}

void ebq_writer_i32_list(ebq_writer *w, const char *key, const int32_t *v, size_t n)
{
    put_key(w, key);
    for (size_t i = 0; i < n; i++) {
        if (i) put(w, ",", 1, 1);
        put_i64(w, v[i]);
    }
}

void ebq_writer_u16_list(ebq_writer *w, const char *key, const uint16_t *v, size_t n)
{
    put_key(w, key);
    for (size_t i = 0; i < n; i++) {
        if (i) put(w, ",", 1, 1);
        put_u64(w, v[i]);
    }
}

void ebq_writer_u32_list(ebq_writer *w, const char *key, const uint32_t *v, size_t n)
{
    put_key(w, key);
    for (size_t i = 0; i < n; i++) {
        if (i) put(w, ",", 1, 1);
        put_u64(w, v[i]);
    }
}

size_t ebq_writer_end(ebq_writer *w)
{
    static const char hex[] = "0123456789ABCDEF";
    char tail[10];
    tail[0] = '*';
    for (int i = 0; i < 8; i++) tail[1 + i] = hex[(w->crc >> (28 - 4 * i)) & 15u];
    put(w, tail, 9, 0);
    put(w, "\n", 1, 0);
    flush(w);
    return w->frame_len;
}
