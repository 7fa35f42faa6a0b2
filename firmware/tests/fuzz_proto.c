/*
 * fuzz_proto.c - libFuzzer entry for the device's frame parser and payload decoders (src/proto.c).
 *
 * Why: every byte the UART delivers goes through ebq_parser_feed first, so the device's "survives
 * any byte sequence" promise rests on it. Any input is fed byte by byte; for each event the
 * invariants the app relies on are checked (payload inside the parser's buffer, at most one event
 * per byte, a FRAME has a known request-or-reply type and seq <= 65535), and the payload is run
 * through the same decoders the app uses (percent decode, id list). Then the frame is written
 * back with the frame writer and re-parsed: it must come back as the same frame (the writer and
 * parser agree on CRC, escapes and limits).
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ifirmware/include \
 *       firmware/src/proto.c firmware/tests/fuzz_proto.c -o fuzz_proto
 * Without libFuzzer: gcc -DEBQ_FUZZ_STANDALONE ... (blob_fuzz_main.h reads records on stdin).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ebq_proto.h"
#include "blob_fuzz_main.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

typedef struct {
    uint8_t buf[EBQ_PROTO_MAXFRAME * 2];
    size_t len;
} sink_buf;

static void sink(void *ctx, const uint8_t *buf, size_t len)
{
    sink_buf *s = ctx;
    CHECK(s->len + len <= sizeof s->buf);
    memcpy(s->buf + s->len, buf, len);
    s->len += len;
}

/* Writes the frame back (payload as one %-encoded text value of its decoded bytes) and checks
 * that the parser reads exactly that frame again. */
static void roundtrip(const ebq_event *ev, const uint8_t *decoded, size_t n)
{
    static sink_buf s;
    static ebq_parser p2;
    s.len = 0;
    ebq_writer w;
    ebq_writer_begin(&w, sink, &s, ev->seq, ev->type);
    ebq_writer_text(&w, "t", decoded, n);
    size_t flen = ebq_writer_end(&w);
    CHECK(flen == s.len);
    CHECK(s.buf[0] == '$' && s.buf[s.len - 1] == '\n');
    if (s.len > EBQ_PROTO_MAXFRAME) return; /* too long for the parser by design */
    ebq_parser_init(&p2);
    int frames = 0;
    for (size_t i = 0; i < s.len; i++) {
        ebq_event e2;
        ebq_event_kind k = ebq_parser_feed(&p2, s.buf[i], &e2);
        if (k == EBQ_EV_NONE) continue;
        CHECK(k == EBQ_EV_FRAME && i == s.len - 1);
        CHECK(e2.seq == ev->seq && e2.type == ev->type);
        CHECK(e2.payload_len >= 2 && memcmp(e2.payload, "t=", 2) == 0);
        uint8_t tmp[EBQ_PROTO_MAXFRAME];
        memcpy(tmp, e2.payload + 2, e2.payload_len - 2);
        long m = ebq_percent_decode(tmp, e2.payload_len - 2);
        CHECK(m == (long)n && memcmp(tmp, decoded, n) == 0);
        frames++;
    }
    CHECK(frames == 1);
}

static void check_frame(const ebq_parser *p, const ebq_event *ev)
{
    CHECK(ev->seq <= EBQ_PROTO_MAXSEQ);
    CHECK(ev->type > EBQ_MSG_NONE && ev->type < EBQ_MSG_COUNT);
    CHECK(ev->payload >= p->buf && ev->payload + ev->payload_len <= p->buf + sizeof p->buf);
    uint8_t tmp[EBQ_PROTO_MAXFRAME];
    memcpy(tmp, ev->payload, ev->payload_len);
    long n = ebq_percent_decode(tmp, ev->payload_len);
    CHECK(n >= -1 && n <= (long)ev->payload_len);
    uint16_t ids[64];
    long k = ebq_parse_ids(ev->payload, ev->payload_len, ids, 64);
    CHECK(k >= -3 && k <= 64);
    if (n >= 0) roundtrip(ev, tmp, (size_t)n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ebq_parser p;
    ebq_parser_init(&p);
    for (size_t i = 0; i < size; i++) {
        ebq_event ev;
        ebq_event_kind k = ebq_parser_feed(&p, data[i], &ev);
        CHECK(k == ev.kind);
        CHECK(p.len < sizeof p.buf);
        if (k == EBQ_EV_FRAME) {
            check_frame(&p, &ev);
        } else if (k == EBQ_EV_BAD_FRAME || k == EBQ_EV_TOO_LONG) {
            CHECK(ev.reason != NULL && ev.reason[0] != '\0' && ev.seq <= EBQ_PROTO_MAXSEQ);
        } else {
            CHECK(k == EBQ_EV_NONE);
        }
    }
    return 0;
}
