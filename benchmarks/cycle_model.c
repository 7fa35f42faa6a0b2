/*
 * cycle_model.c - a QEMU TCG plugin (QEMU >= 7.2, plugin API version 1) that estimates Cortex-M4
 * cycles for the instructions QEMU executes: benchmarks/cycle_model.py compiles and loads it.
 * A benchmark-time tool; nothing here is firmware.
 *
 * Per instruction class (Arm Cortex-M4 TRM, "Processor instructions" cycle table, zero wait
 * states): data processing, multiplies (MUL/MLA/long/DSP MACs), SXTB16/PKH/SSAT: 1; single
 * load 2, or 1 when it follows a single load/store (address/data phases pipeline); single store
 * 1 (write buffer); LDRD/STRD, LDM/STM/PUSH/POP: 1 + N; SDIV/UDIV: 2..12, taken as DIV_CYCLES;
 * taken branches (B, BL, BX, CBZ taken, POP/LDR/MOV to PC): + P pipeline refill (1..3, taken as
 * REFILL); a conditional branch that falls through: 1.
 * Memory: accesses below `flash_end` are flash (code, constants, the model blob). Instruction
 * fetches go through an instruction cache of `icache` 16-byte lines (`iways`-way LRU) with a
 * sequential prefetch: a miss on the line after the previous one costs max(0, ws + 1 - cycles
 * spent in that line), any other miss `ws` cycles. Data reads from flash go through a data cache
 * of `dcache` 16-byte lines (fully associative LRU; 0 = the instruction cache's, unified), a
 * miss costing `ws`. RAM accesses have no wait state.
 *
 * Arguments: ws, icache, iways, dcache, prefetch, flash_end (hex), refill, div, begin and end
 * (hex addresses of marker functions: every execution of `end` writes one window line
 * "W <instructions> <cycles> <base> <refill> <ifetch> <dread>" since the last `begin`), out (the
 * output file), profile=1 (at exit: "T <tb address> <executions> <instructions> <cycles>",
 * counted inside the begin..end windows only when `begin` is given: the inference, not the
 * harness's blob parsing and vocabulary loading).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
__attribute__((visibility("default"))) int qemu_plugin_version = 1;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct {
    const char *target_name;
} qemu_info_t;
enum { QEMU_PLUGIN_CB_NO_REGS = 0 };
enum { QEMU_PLUGIN_MEM_RW = 3 }; /* only loads are instrumented; QEMU 7.2 fired no callback for R alone */
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb *));
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
                                          void (*cb)(unsigned int, void *), int flags,
                                          void *udata);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn,
                                      void (*cb)(unsigned int, uint32_t, uint64_t, void *),
                                      int flags, int rw, void *udata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *insn);
void g_free(void *p);

enum { END_NONE, END_COND, END_TAKEN };

typedef struct tbi {
    uint64_t vaddr, end; /* [vaddr, end) */
    uint32_t n, cyc, seq_pen, kind;
    uint64_t execs, dyn;
    struct tbi *all;
} tbi;

static struct {
    uint32_t ws, icache, iways, dcache, prefetch, refill, div, profile;
    uint64_t flash_end, begin, end;
    FILE *out;
} cfg = {5, 64, 64, 8, 1, 2, 7, 0, 0x20000000u, 0, 0, NULL};

static uint64_t insns, base, refill, ifetch, dread, clock_;
static uint64_t w_insns, w_base, w_refill, w_ifetch, w_dread;
static int inside; /* between a `begin` and the next `end` (or always without `begin`) */
static tbi *prev, *all_tbs;
static uint64_t last_line = ~0ull;

/* LRU sets: tags[set * ways + way], stamps alike. */
typedef struct {
    uint32_t sets, ways;
    uint64_t *tag, *stamp;
} cache;
static cache ic, dc;

static void cache_init(cache *c, uint32_t lines, uint32_t ways)
{
    c->ways = ways ? ways : 1;
    c->sets = lines / c->ways ? lines / c->ways : 1;
    c->tag = calloc((size_t)c->sets * c->ways, 8);
    c->stamp = calloc((size_t)c->sets * c->ways, 8);
    for (size_t i = 0; i < (size_t)c->sets * c->ways; i++)
        c->tag[i] = ~0ull;
}

static int cache_hit(cache *c, uint64_t line)
{
    const uint64_t set = line % c->sets;
    uint64_t *t = c->tag + set * c->ways, *s = c->stamp + set * c->ways;
    uint32_t lru = 0;
    clock_++;
    for (uint32_t w = 0; w < c->ways; w++) {
        if (t[w] == line) {
            s[w] = clock_;
            return 1;
        }
        if (s[w] < s[lru])
            lru = w;
    }
    t[lru] = line, s[lru] = clock_;
    return 0;
}

static int starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static int is_cond(const char *m, size_t len)
{
    static const char *cc[] = {"eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs",
                               "vc", "hi", "ls", "ge", "lt", "gt", "le"};
    if (len != 2)
        return 0;
    for (size_t i = 0; i < sizeof(cc) / sizeof(cc[0]); i++)
        if (strncmp(m, cc[i], 2) == 0)
            return 1;
    return 0;
}

static uint32_t reglist_count(const char *ops)
{
    const char *a = strchr(ops, '{'), *b = strchr(ops, '}');
    if (!a || !b)
        return 1;
    uint32_t n = 0;
    for (const char *p = a + 1; p < b; p++) {
        if (*p == 'r' || *p == 'l' || *p == 's' || *p == 'p' || *p == 'f' || *p == 'i') {
            const char *q = p;
            while (q < b && *q != ',' && *q != '-')
                q++;
            if (*q == '-') { /* r4-r11 */
                int lo = atoi(p + 1), hi = atoi(q + 2);
                n += (uint32_t)(hi - lo + 1);
                q++;
                while (q < b && *q != ',')
                    q++;
            } else {
                n++;
            }
            p = q;
        }
    }
    return n ? n : 1;
}

/* Static cycles of one instruction; *kind: END_COND / END_TAKEN for control flow; *lsq:
 * 1 if a single load/store (for the pipelining of the next). */
static uint32_t insn_cycles(const char *dis, int prev_ls, uint32_t *kind, int *ls)
{
    char m[16] = {0};
    size_t i = 0;
    while (dis[i] && dis[i] != ' ' && i < sizeof(m) - 1) {
        m[i] = dis[i];
        i++;
    }
    const char *ops = dis + i;
    char *dot = strchr(m, '.');
    if (dot)
        *dot = 0;
    const size_t len = strlen(m);
    const int pc_dest = strstr(ops, " pc") == ops || starts(ops, " pc,");
    *kind = END_NONE;
    *ls = 0;
    if (strcmp(m, "b") == 0 || strcmp(m, "bl") == 0 || strcmp(m, "bx") == 0 ||
        strcmp(m, "blx") == 0) {
        *kind = END_TAKEN;
        return 1 + cfg.refill;
    }
    if (m[0] == 'b' && is_cond(m + 1, len - 1)) {
        *kind = END_COND;
        return 1;
    }
    if (strcmp(m, "cbz") == 0 || strcmp(m, "cbnz") == 0) {
        *kind = END_COND;
        return 1;
    }
    if (starts(m, "tbb") || starts(m, "tbh")) {
        *kind = END_TAKEN;
        return 3 + cfg.refill;
    }
    if (starts(m, "pop") || starts(m, "ldm") || starts(m, "push") || starts(m, "stm")) {
        const uint32_t n = reglist_count(ops);
        if (strstr(ops, "pc")) {
            *kind = END_TAKEN;
            return 1 + n + cfg.refill;
        }
        return 1 + n;
    }
    if (starts(m, "ldrd") || starts(m, "strd"))
        return 3;
    if (starts(m, "ldr")) {
        *ls = 1;
        if (pc_dest) {
            *kind = END_TAKEN;
            return 2 + cfg.refill;
        }
        return prev_ls ? 1 : 2;
    }
    if (starts(m, "str")) {
        *ls = 1;
        return 1;
    }
    if (strcmp(m, "sdiv") == 0 || strcmp(m, "udiv") == 0)
        return cfg.div;
    if (pc_dest && (starts(m, "mov") || starts(m, "add"))) {
        *kind = END_TAKEN;
        return 1 + cfg.refill;
    }
    return 1;
}

static void mem_cb(unsigned int vcpu, uint32_t info, uint64_t vaddr, void *udata)
{
    (void)vcpu, (void)info, (void)udata;
    if (vaddr >= cfg.flash_end)
        return;
    if (!cache_hit(cfg.dcache ? &dc : &ic, vaddr >> 4))
        dread += cfg.ws;
}

static void tb_exec(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    tbi *t = udata;
    const int count = inside || !cfg.begin; /* as the window: after `begin`, up to `end` */
    if (prev && prev->kind == END_COND && t->vaddr != prev->end)
        refill += cfg.refill, prev->dyn += count ? cfg.refill : 0;
    prev = t;
    t->execs += (uint64_t)count;
    insns += t->n;
    base += t->cyc;
    if (t->vaddr < cfg.flash_end) {
        for (uint64_t line = t->vaddr >> 4; line <= (t->end - 1) >> 4; line++) {
            if (!cache_hit(&ic, line)) {
                const uint64_t pen = (cfg.prefetch && line == last_line + 1) ? t->seq_pen : cfg.ws;
                ifetch += pen, t->dyn += count ? pen : 0;
            }
            last_line = line;
        }
    }
    if (t->vaddr == cfg.begin && cfg.begin) {
        w_insns = insns, w_base = base, w_refill = refill, w_ifetch = ifetch, w_dread = dread;
        inside = 1;
    } else if (t->vaddr == cfg.end && cfg.end && cfg.out) {
        inside = 0;
        const uint64_t b = base - w_base, r = refill - w_refill, f = ifetch - w_ifetch,
                       d = dread - w_dread;
        fprintf(cfg.out, "W %llu %llu %llu %llu %llu %llu\n",
                (unsigned long long)(insns - w_insns), (unsigned long long)(b + r + f + d),
                (unsigned long long)b, (unsigned long long)r, (unsigned long long)f,
                (unsigned long long)d);
        fflush(cfg.out);
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    tbi *t = calloc(1, sizeof(*t));
    const size_t n = qemu_plugin_tb_n_insns(tb);
    t->vaddr = qemu_plugin_tb_vaddr(tb);
    t->n = (uint32_t)n;
    int ls = 0;
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *in = qemu_plugin_tb_get_insn(tb, i);
        char *d = qemu_plugin_insn_disas(in);
        uint32_t kind;
        int now_ls;
        t->cyc += insn_cycles(d ? d : "", ls, &kind, &now_ls);
        if (d && starts(d, "ld"))
            qemu_plugin_register_vcpu_mem_cb(in, mem_cb, QEMU_PLUGIN_CB_NO_REGS,
                                             QEMU_PLUGIN_MEM_RW, NULL);
        if (d && starts(d, "pop"))
            qemu_plugin_register_vcpu_mem_cb(in, mem_cb, QEMU_PLUGIN_CB_NO_REGS,
                                             QEMU_PLUGIN_MEM_RW, NULL);
        ls = now_ls;
        if (i + 1 == n) {
            t->kind = kind;
            t->end = qemu_plugin_insn_vaddr(in) + qemu_plugin_insn_size(in);
        }
        g_free(d);
    }
    const uint64_t bytes = t->end > t->vaddr ? t->end - t->vaddr : 2;
    const uint64_t per_line = (t->cyc * 16 + bytes - 1) / bytes; /* cycles spent per line */
    t->seq_pen = per_line >= cfg.ws + 1 ? 0 : (uint32_t)(cfg.ws + 1 - per_line);
    t->all = all_tbs;
    all_tbs = t;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, t);
}

static void at_exit(void)
{
    if (!cfg.out)
        return;
    fprintf(cfg.out, "TOTAL %llu %llu %llu %llu %llu %llu\n", (unsigned long long)insns,
            (unsigned long long)(base + refill + ifetch + dread), (unsigned long long)base,
            (unsigned long long)refill, (unsigned long long)ifetch, (unsigned long long)dread);
    if (cfg.profile)
        for (tbi *t = all_tbs; t; t = t->all)
            if (t->execs)
                fprintf(cfg.out, "T %llx %llu %u %llu\n", (unsigned long long)t->vaddr,
                        (unsigned long long)t->execs, t->n,
                        (unsigned long long)(t->execs * t->cyc + t->dyn));
    fclose(cfg.out);
    cfg.out = NULL;
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info, int argc,
                                                               char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *k = argv[i], *v = eq + 1;
        if (!strcmp(k, "ws")) cfg.ws = (uint32_t)atoi(v);
        else if (!strcmp(k, "icache")) cfg.icache = (uint32_t)atoi(v);
        else if (!strcmp(k, "iways")) cfg.iways = (uint32_t)atoi(v);
        else if (!strcmp(k, "dcache")) cfg.dcache = (uint32_t)atoi(v);
        else if (!strcmp(k, "prefetch")) cfg.prefetch = (uint32_t)atoi(v);
        else if (!strcmp(k, "refill")) cfg.refill = (uint32_t)atoi(v);
        else if (!strcmp(k, "div")) cfg.div = (uint32_t)atoi(v);
        else if (!strcmp(k, "profile")) cfg.profile = (uint32_t)atoi(v);
        else if (!strcmp(k, "flash_end")) cfg.flash_end = strtoull(v, NULL, 16);
        else if (!strcmp(k, "begin")) cfg.begin = strtoull(v, NULL, 16);
        else if (!strcmp(k, "end")) cfg.end = strtoull(v, NULL, 16);
        else if (!strcmp(k, "out")) cfg.out = fopen(v, "w");
    }
    cache_init(&ic, cfg.icache, cfg.iways);
    if (cfg.dcache)
        cache_init(&dc, cfg.dcache, cfg.dcache);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    atexit(at_exit);
    return 0;
}
