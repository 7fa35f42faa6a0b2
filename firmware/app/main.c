/*
 * main.c - the firmware application: boot banner, HELLO, then serve requests forever.
 *
 * Bytes from the UART ring go through the pure frame parser (src/proto.c); each complete frame
 * or framing error gets exactly one answer frame (docs/protocol.md). Inference goes only through
 * the ebq.h API; the model blob is linked in by app/model_blob.S (MODEL= in the Makefile).
 * Everything is static: no malloc, the arena is a fixed array sized by the board (ARENA=).
 */
#include <stdint.h>
#include <string.h>

#include "ebq.h"
#include "ebq_proto.h"
#include "port.h"

#ifndef EBQ_ARENA_BYTES
#define EBQ_ARENA_BYTES 65536
#endif
#define APP_MAX_IDS 512    /* token buffer; the model's max_len must not exceed it   */
#define APP_MAX_LABELS 256 /* logits buffer                                          */
#define APP_MAX_STAGES 34  /* embedding + up to 32 layers + classifier               */

extern const uint8_t ebq_blob_start[]; /* app/model_blob.S */
extern const uint8_t ebq_blob_end[];

typedef struct {
    int model_ok;              /* blob accepted by ebq_model_load                         */
    int model_status;          /* its status code                                         */
    uint32_t model_id;         /* crc32 of the blob, 0 when rejected                      */
    uint32_t labels, max_len, layers, vocab;
    size_t arena_need;         /* ebq_arena_bytes_upto(max_len): any length up to max_len */
    uint32_t requests, errors; /* frames answered, error frames sent                      */
    uint32_t n_stages;
    uint64_t stage_t0;
    uint32_t stage_cycles[APP_MAX_STAGES];
    ebq_parser parser;
    uint16_t ids[APP_MAX_IDS];
    int32_t logits[APP_MAX_LABELS];
} app_state;

static app_state g;
static ebq_model_storage g_model_mem; /* the model view; ebq_model is opaque to the app */
static ebq_model *const g_model = (ebq_model *)&g_model_mem;
static uint8_t g_arena_mem[EBQ_ARENA_BYTES] __attribute__((aligned(8)));

static void uart_sink(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    port_uart_write(buf, len);
}

static void puts_uart(const char *s)
{
    port_uart_write((const uint8_t *)s, strlen(s));
}

static void put_hex32(uint32_t v)
{
    static const char hex[] = "0123456789ABCDEF";
    char b[8];
    for (int i = 0; i < 8; i++) b[i] = hex[(v >> (28 - 4 * i)) & 15u];
    port_uart_write((const uint8_t *)b, 8);
}

static void put_u64(uint64_t v)
{
    char b[21];
    port_uart_write((const uint8_t *)b, ebq_fmt_u64(b, v));
}

static void send_error(uint32_t seq, ebq_error_code code, const char *reason)
{
    ebq_writer w;
    ebq_writer_begin(&w, uart_sink, NULL, seq, EBQ_MSG_ERROR);
    ebq_writer_str(&w, "code", ebq_error_name(code));
    ebq_writer_text(&w, "reason", (const uint8_t *)reason, strlen(reason));
    ebq_writer_end(&w);
    g.errors++;
}

static void send_hello(uint32_t seq)
{
    ebq_writer w;
    ebq_writer_begin(&w, uart_sink, NULL, seq, EBQ_MSG_HELLO);
    ebq_writer_u32(&w, "proto", EBQ_PROTO_VERSION);
    ebq_writer_str(&w, "fw", EBQ_FW_VERSION);
    ebq_writer_str(&w, "board", port_board_name());
    ebq_writer_hex32(&w, "model", g.model_id);
    ebq_writer_u32(&w, "labels", g.labels);
    ebq_writer_u32(&w, "maxlen", g.max_len);
    ebq_writer_u32(&w, "maxtext", EBQ_PROTO_MAXTEXT);
    ebq_writer_u32(&w, "maxframe", EBQ_PROTO_MAXFRAME);
    ebq_writer_u32(&w, "clock", port_clock_hz());
    ebq_writer_str(&w, "unit", port_cycles_unit());
    ebq_writer_u64(&w, "flash", port_flash_used());
    ebq_writer_u64(&w, "ram", port_ram_used());
    ebq_writer_u32(&w, "arena", EBQ_ARENA_BYTES);
    ebq_writer_u64(&w, "need", g.arena_need);
    ebq_writer_end(&w);
}

static void send_stats(uint32_t seq)
{
    ebq_writer w;
    ebq_writer_begin(&w, uart_sink, NULL, seq, EBQ_MSG_STATS);
    ebq_writer_u32(&w, "requests", g.requests);
    ebq_writer_u32(&w, "errors", g.errors);
    ebq_writer_u64(&w, "uptime", port_cycles());
    ebq_writer_u32(&w, "overruns", port_uart_overruns());
    ebq_writer_end(&w);
}

/* Engine status -> wire error code. */
static ebq_error_code code_of(int status)
{
    switch (status) {
    case EBQ_ERR_BAD_UTF8: return EBQ_CODE_BAD_UTF8;
    case EBQ_ERR_TOO_LONG: return EBQ_CODE_TOO_LONG;
    case EBQ_ERR_BAD_IDS: return EBQ_CODE_BAD_IDS;
    case EBQ_ERR_EMPTY: return EBQ_CODE_EMPTY;
    case EBQ_ERR_NO_MEMORY: return EBQ_CODE_NO_MEMORY;
    default: return EBQ_CODE_INTERNAL;
    }
}

static void on_stage(void *ctx, uint32_t stage, int end)
{
    (void)ctx;
    uint64_t now = port_cycles();
    if (!end) {
        g.stage_t0 = now;
    } else if (stage < APP_MAX_STAGES) {
        g.stage_cycles[stage] = (uint32_t)(now - g.stage_t0);
        if (stage + 1 > g.n_stages) g.n_stages = stage + 1;
    }
}

/* Runs the forward pass on g.ids[0..n) and sends RESULT (or ERROR). */
static void infer(uint32_t seq, uint32_t n, int with_ids, uint32_t tok_cycles)
{
    if (n == 0) {
        send_error(seq, EBQ_CODE_EMPTY, "no token ids");
        return;
    }
    size_t need = ebq_arena_bytes(g_model, n);
    if (need > EBQ_ARENA_BYTES) {
        send_error(seq, EBQ_CODE_NO_MEMORY, "arena too small for this many tokens");
        return;
    }
    ebq_arena arena;
    ebq_arena_init(&arena, g_arena_mem, EBQ_ARENA_BYTES);
    const ebq_hooks hooks = {on_stage, NULL};
    memset(g.stage_cycles, 0, sizeof g.stage_cycles);
    g.n_stages = 0;
    uint64_t t0 = port_cycles();
    int st = ebq_forward(g_model, &arena, g.ids, n, g.logits, &hooks);
    uint64_t t1 = port_cycles();
    size_t stack = port_stack_peak();
    if (st != EBQ_OK) {
        send_error(seq, code_of(st), ebq_strerror(st));
        return;
    }
    ebq_writer w;
    ebq_writer_begin(&w, uart_sink, NULL, seq, EBQ_MSG_RESULT);
    ebq_writer_u32(&w, "label", ebq_argmax(g.logits, g.labels));
    ebq_writer_i32_list(&w, "logits", g.logits, g.labels);
    ebq_writer_u32(&w, "tokens", n);
    ebq_writer_u64(&w, "cycles", t1 - t0);
    ebq_writer_u32_list(&w, "layers", g.stage_cycles, g.n_stages);
    ebq_writer_u64(&w, "stack", stack);
    ebq_writer_u64(&w, "arena", arena.peak);
    if (with_ids) {
        ebq_writer_u32(&w, "tokcycles", tok_cycles);
        ebq_writer_u16_list(&w, "ids", g.ids, n);
    }
    ebq_writer_end(&w);
}

/* 1 if a model is loaded; else answers ERROR code=MODEL with the load's status and returns 0. */
static int model_ready(uint32_t seq)
{
    if (!g.model_ok)
        send_error(seq, EBQ_CODE_MODEL, ebq_strerror(g.model_status));
    return g.model_ok;
}

static void handle_classify(uint32_t seq, uint8_t *payload, size_t len)
{
    long n = ebq_percent_decode(payload, len);
    if (n < 0) {
        send_error(seq, EBQ_CODE_BAD_FRAME, "bad percent escape");
        return;
    }
    if ((size_t)n > EBQ_PROTO_MAXTEXT) {
        send_error(seq, EBQ_CODE_TOO_LONG, "text over maxtext");
        return;
    }
#ifdef EBQ_TEST_HOOKS
    /* Test builds only (make TEST_HOOKS=1): this text executes an undefined instruction, so
     * tests can see the fault handler's FAULT line. Release images have no such path. */
    if (n == 7 && memcmp(payload, "\001FAULT!", 7) == 0) port_test_fault();
#endif
    if (!model_ready(seq))
        return;
    uint32_t n_ids = 0;
    port_stack_paint(); /* the stack peak covers tokenizer + forward */
    uint64_t t0 = port_cycles();
    int st = ebq_tokenize(g_model, payload, (size_t)n, g.ids, g.max_len, &n_ids);
    uint32_t tok_cycles = (uint32_t)(port_cycles() - t0);
    if (st != EBQ_OK) {
        send_error(seq, code_of(st), ebq_strerror(st));
        return;
    }
    infer(seq, n_ids, 1, tok_cycles);
}

static void handle_ids(uint32_t seq, const uint8_t *payload, size_t len)
{
    if (len < 4 || memcmp(payload, "ids=", 4) != 0) {
        send_error(seq, EBQ_CODE_BAD_FRAME, "IDS payload must be ids=<list>");
        return;
    }
    size_t cap = g.max_len ? g.max_len : APP_MAX_IDS;
    long n = ebq_parse_ids(payload + 4, len - 4, g.ids, cap);
    if (n == -2) {
        send_error(seq, EBQ_CODE_BAD_IDS, "more ids than maxlen");
        return;
    }
    if (n == -3) {
        send_error(seq, EBQ_CODE_BAD_IDS, "id out of vocabulary");
        return;
    }
    if (n < 0) {
        send_error(seq, EBQ_CODE_BAD_FRAME, "ids must be comma-separated integers");
        return;
    }
    if (n == 0) {
        send_error(seq, EBQ_CODE_EMPTY, "no token ids");
        return;
    }
    if (!model_ready(seq))
        return;
    port_stack_paint();
    for (long i = 0; i < n; i++) {
        if (g.ids[i] >= g.vocab) {
            send_error(seq, EBQ_CODE_BAD_IDS, "id out of vocabulary");
            return;
        }
    }
    infer(seq, (uint32_t)n, 0, 0);
}

static void handle(const ebq_event *ev)
{
    g.requests++;
    if (ev->kind == EBQ_EV_TOO_LONG) {
        send_error(ev->seq, EBQ_CODE_TOO_LONG, ev->reason);
        return;
    }
    if (ev->kind == EBQ_EV_BAD_FRAME) {
        send_error(ev->seq, EBQ_CODE_BAD_FRAME, ev->reason);
        return;
    }
    switch (ev->type) {
    case EBQ_MSG_HELLO: send_hello(ev->seq); break;
    case EBQ_MSG_STATS: send_stats(ev->seq); break;
    case EBQ_MSG_CLASSIFY: handle_classify(ev->seq, ev->payload, ev->payload_len); break;
    case EBQ_MSG_IDS: handle_ids(ev->seq, ev->payload, ev->payload_len); break;
    case EBQ_MSG_RESET: {
        ebq_writer w;
        ebq_writer_begin(&w, uart_sink, NULL, ev->seq, EBQ_MSG_OK);
        ebq_writer_end(&w);
        port_reset();
    }
    default: send_error(ev->seq, EBQ_CODE_BAD_FRAME, "not a request type"); break;
    }
}

/* Loads the linked-in blob and reports on the banner what does not fit. */
static void load_model(void)
{
    size_t len = (size_t)(ebq_blob_end - ebq_blob_start);
    g.model_status = ebq_model_load(g_model, ebq_blob_start, len);
    if (g.model_status == EBQ_OK) {
        g.labels = ebq_model_num_labels(g_model);
        g.max_len = ebq_model_max_len(g_model);
        g.layers = ebq_model_num_layers(g_model);
        g.vocab = ebq_model_vocab_size(g_model);
        if (g.labels > APP_MAX_LABELS || g.max_len > APP_MAX_IDS ||
            g.layers + 2 > APP_MAX_STAGES || g.max_len == 0) {
            g.model_status = EBQ_ERR_BLOB_TENSOR;
        }
    }
    if (g.model_status == EBQ_OK) {
        g.model_ok = 1;
        g.model_id = ebq_model_id(g_model);
        g.arena_need = ebq_arena_bytes_upto(g_model, g.max_len);
    } else {
        g.labels = g.max_len = g.layers = g.vocab = 0;
    }
}

static void banner(void)
{
    puts_uart("embbert-hil fw " EBQ_FW_VERSION " board=");
    puts_uart(port_board_name());
    puts_uart(" model=");
    put_hex32(g.model_id);
    puts_uart("\n");
    if (!g.model_ok) {
        puts_uart("MODEL rejected: ");
        puts_uart(ebq_strerror(g.model_status));
        puts_uart("\n");
    } else if (g.arena_need > EBQ_ARENA_BYTES) {
        puts_uart("WARN arena ");
        put_u64(EBQ_ARENA_BYTES);
        puts_uart(" bytes < ");
        put_u64(g.arena_need);
        puts_uart(" needed up to maxlen: some inputs get NO_MEMORY\n");
    }
}

int main(void)
{
    port_init();
    load_model();
    ebq_parser_init(&g.parser);
    banner();
    send_hello(0);
    for (;;) {
        int c = port_uart_read_byte();
        if (c < 0) {
            port_wait_rx();
            continue;
        }
        ebq_event ev;
        if (ebq_parser_feed(&g.parser, (uint8_t)c, &ev) != EBQ_EV_NONE) handle(&ev);
    }
}
