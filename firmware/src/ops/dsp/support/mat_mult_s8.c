/*
 * dsp/support/mat_mult_s8.c - the Cortex-M4 matrix micro-kernels the DSP twins share (declared
 * in ../ebq_dsp.h; CMSIS-NN keeps the like in NNSupportFunctions/): 4 widened rows times a block
 * of int8 weight rows (ebq_mm4_s8 and its unrolled 128- and 16-input forms), and a widened row
 * pair times a widened output pair (ebq_mm22_s16_128). Naked assembly: the register allocation
 * is the speed (52 instructions per 64 MACs), and GCC does not find it.
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_dsp.h"

const int8_t ebq_zero_row128[128] __attribute__((aligned(8))) = {0};

/* Registers (frame: EBQ_MM4_PROLOGUE in ebq_dsp.h): r0 weights (every output's row in turn),
 * r1 activations, r3/r12 weight words, lr unpacked weights, r4-r7 the 4 rows' accumulators,
 * r8-r11 the LDM'd activation pairs. The compiler cannot see the arguments of a naked
 * function, hence the pragma. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
__attribute__((naked)) void ebq_mm4_s8(const int8_t *w, const int16_t *wide, uint32_t in_dim,
                                       uint32_t out_dim, int32_t *raw)
{
#define EBQ_MM4_GROUP(wreg)                                                                      \
    "sxtb16 lr, " wreg "\n"                                                                  \
    "sxtb16 " wreg ", " wreg ", ror #8\n"                                                    \
    "ldm    r1!, {r8-r11}\n"                                                                 \
    "smlad  r4, lr, r8, r4\n"                                                                \
    "smlad  r4, " wreg ", r9, r4\n"                                                          \
    "smlad  r5, lr, r10, r5\n"                                                               \
    "smlad  r5, " wreg ", r11, r5\n"                                                         \
    "ldm    r1!, {r8-r11}\n"                                                                 \
    "smlad  r6, lr, r8, r6\n"                                                                \
    "smlad  r6, " wreg ", r9, r6\n"                                                          \
    "smlad  r7, lr, r10, r7\n"                                                               \
    "smlad  r7, " wreg ", r11, r7\n"
    __asm volatile(EBQ_MM4_PROLOGUE
                   "ldrd   r3, r12, [r0], #8\n"
                   EBQ_MM4_GROUP("r3")
                   EBQ_MM4_GROUP("r12")
                   "ldrd   r3, r12, [r0], #8\n"
                   EBQ_MM4_GROUP("r3")
                   EBQ_MM4_GROUP("r12")
                   EBQ_MM4_EPILOGUE);
}

/* The same, 128 inputs, unrolled (.rept): r2 = raw, the end of the weights on the stack. */
__attribute__((naked)) void ebq_mm4_s8_128(const int8_t *w, const int16_t *wide,
                                           uint32_t out_dim, int32_t *raw)
{
#define EBQ_MM4_FIRST(wreg)                                                                      \
    "sxtb16 lr, " wreg "\n"                                                                  \
    "sxtb16 " wreg ", " wreg ", ror #8\n"                                                    \
    "ldm    r1!, {r8-r11}\n"                                                                 \
    "smuad  r4, lr, r8\n"                                                                    \
    "smlad  r4, " wreg ", r9, r4\n"                                                          \
    "smuad  r5, lr, r10\n"                                                                   \
    "smlad  r5, " wreg ", r11, r5\n"                                                         \
    "ldm    r1!, {r8-r11}\n"                                                                 \
    "smuad  r6, lr, r8\n"                                                                    \
    "smlad  r6, " wreg ", r9, r6\n"                                                          \
    "smuad  r7, lr, r10\n"                                                                   \
    "smlad  r7, " wreg ", r11, r7\n"
/* An unrolled kernel of 8 * (1 + reps) inputs (log2 of the weight row bytes: lg): per output
 * the first 8 inputs (SMUADs), `reps` more blocks of 8, then the activations rewind by
 * `back` bytes and the 4 accumulators leave with one STM. */
#define EBQ_MM4_FIXED(lg, reps, back)                                                            \
    "push   {r4-r11, lr}\n"                                                                  \
    "add    r12, r0, r2, lsl #" lg "\n" /* end of the weights */                             \
    "mov    r2, r3\n"                                                                        \
    "push   {r12}\n"                                                                         \
    "1:\n"                                                                                   \
    "ldrd   r3, r12, [r0], #8\n" EBQ_MM4_FIRST("r3") EBQ_MM4_GROUP("r12")                    \
    ".rept " reps "\n"                                                                       \
    "ldrd   r3, r12, [r0], #8\n" EBQ_MM4_GROUP("r3") EBQ_MM4_GROUP("r12")                    \
    ".endr\n"                                                                                \
    "sub    r1, r1, #" back "\n" /* back to the first activation pair */                     \
    "stm    r2!, {r4-r7}\n"                                                                  \
    "ldr    r3, [sp]\n"                                                                      \
    "cmp    r0, r3\n"                                                                        \
    "bne    1b\n"                                                                            \
    "add    sp, sp, #4\n"                                                                    \
    "pop    {r4-r11, pc}\n"
    __asm volatile(EBQ_MM4_FIXED("7", "15", "1024"));
}

/* The same, 16 inputs (E of the embedding projections): one LDRD of weights per output. */
__attribute__((naked)) void ebq_mm4_s8_16(const int8_t *w, const int16_t *wide,
                                          uint32_t out_dim, int32_t *raw)
{
    __asm volatile(EBQ_MM4_FIXED("4", "1", "128"));
#undef EBQ_MM4_FIXED
}

/* acc[k] = w_k . x for one widened row x (ebq_widen_rows(1, ...): words (x0,x2) (x1,x3) per 4
 * inputs) and the 4 weight rows w, w + in_dim, ... (in_dim % 8 == 0): per 4 inputs one LDRD of
 * the row, then per output LDR, 2 SXTB16, 2 SMLAD: 21 instructions for 16 MACs. Registers: r0,
 * r1, r3, r4 the weight rows, r12 the row, lr its end, r5-r8 the accumulators, r9/r10 the row
 * pair, r2/r11 the unpacked weights. */
__attribute__((naked)) void ebq_mv4_s8(const int8_t *w, const int32_t *xw, uint32_t in_dim,
                                       int32_t *acc)
{
#define EBQ_MV4_OUT(wp, acc)                                                                     \
    "ldr    r11, [" wp "], #4\n"                                                             \
    "sxtb16 r2, r11\n"                                                                       \
    "sxtb16 r11, r11, ror #8\n"                                                              \
    "smlad  " acc ", r2, r9, " acc "\n"                                                      \
    "smlad  " acc ", r11, r10, " acc "\n"
#define EBQ_MV4_STEP                                                                             \
    "ldrd   r9, r10, [r12], #8\n" EBQ_MV4_OUT("r0", "r5") EBQ_MV4_OUT("r1", "r6")               \
        EBQ_MV4_OUT("r3", "r7") EBQ_MV4_OUT("r4", "r8")
    __asm volatile("push   {r4-r11, lr}\n"
                   "push   {r3}\n"
                   "add    lr, r1, r2, lsl #1\n"
                   "mov    r12, r1\n"
                   "add    r1, r0, r2\n"
                   "add    r3, r1, r2\n"
                   "add    r4, r3, r2\n"
                   "movs   r5, #0\n"
                   "movs   r6, #0\n"
                   "movs   r7, #0\n"
                   "movs   r8, #0\n"
                   "1:\n" EBQ_MV4_STEP EBQ_MV4_STEP
                   "cmp    r12, lr\n"
                   "bne    1b\n"
                   "pop    {r3}\n"
                   "stm    r3, {r5-r8}\n"
                   "pop    {r4-r11, pc}\n");
#undef EBQ_MV4_STEP
#undef EBQ_MV4_OUT
}

/* ebq_widen2 for len = 128, unrolled: per 8 inputs of the 2 rows 2 LDRD, 8 SXTB16 and one STM
 * of the 8 words (11 instructions; the loop in C stores by 4 STRD and counts: 17). The 8
 * results land in r4-r11 in the layout's order, so one STM stores them. */
__attribute__((naked)) void ebq_widen2_128(const int8_t *x0, const int8_t *x1, int32_t *out)
{
    __asm volatile("push   {r4-r11}\n"
                   ".rept 16\n"
                   "ldrd   r5, r9, [r0], #8\n"
                   "ldrd   r7, r11, [r1], #8\n"
                   "sxtb16 r4, r5\n"
                   "sxtb16 r5, r5, ror #8\n"
                   "sxtb16 r6, r7\n"
                   "sxtb16 r7, r7, ror #8\n"
                   "sxtb16 r8, r9\n"
                   "sxtb16 r9, r9, ror #8\n"
                   "sxtb16 r10, r11\n"
                   "sxtb16 r11, r11, ror #8\n"
                   "stm    r2!, {r4-r11}\n"
                   ".endr\n"
                   "pop    {r4-r11}\n"
                   "bx     lr\n");
}

/* raw[8p + r] = w_2p . x_r and raw[8p + 4 + r] = w_2p+1 . x_r (r < 3; raw[8p + 3] and
 * raw[8p + 7] get junk) for the weight row pairs p < pairs (rows of 128 int8, stride 128) and 3
 * rows x widened by ebq_widen_rows(3, 128, ...). Per 4 inputs: 2 LDR of the two weight rows, 4
 * SXTB16, 3 LDRD of the rows (immediate offsets: x stays put), 12 SMLAD = 21 instructions for
 * 24 MACs, 28 cycles (the 4-row ebq_mm4_s8_128: 43 cycles for 32). Registers: r0 weights, r1 x,
 * r2-r4 / r6-r8 the sums of w_2p / w_2p+1, r5/r9 x words (the junk of the STM), r10/r12 and
 * r11/lr the unpacked weights. */
#define EBQ_MM32_STEP(op, add, off)                                                               \
    "ldr    r11, [r0, #128]\n"                                                               \
    "ldr    r10, [r0], #4\n"                                                                 \
    "sxtb16 r12, r10\n"                                                                      \
    "sxtb16 r10, r10, ror #8\n"                                                              \
    "sxtb16 lr, r11\n"                                                                       \
    "sxtb16 r11, r11, ror #8\n"                                                              \
    "ldrd   r5, r9, [r1, #(" off ")]\n"                                                      \
    op " r2, r12, r5" add("r2") "smlad  r2, r10, r9, r2\n"                                   \
    op " r6, lr, r5" add("r6") "smlad  r6, r11, r9, r6\n"                                    \
    "ldrd   r5, r9, [r1, #(" off " + 8)]\n"                                                  \
    op " r3, r12, r5" add("r3") "smlad  r3, r10, r9, r3\n"                                   \
    op " r7, lr, r5" add("r7") "smlad  r7, r11, r9, r7\n"                                    \
    "ldrd   r5, r9, [r1, #(" off " + 16)]\n"                                                 \
    op " r4, r12, r5" add("r4") "smlad  r4, r10, r9, r4\n"                                   \
    op " r8, lr, r5" add("r8") "smlad  r8, r11, r9, r8\n"
#define EBQ_NO_ADD(r) "\n"
#define EBQ_ADD(r) ", " r "\n"
__attribute__((naked)) void ebq_mm32_s8_128(const int8_t *w, const int32_t *x, uint32_t pairs,
                                            int32_t *raw)
{
    __asm volatile("push   {r4-r11, lr}\n"
                   "add    r2, r0, r2, lsl #8\n" /* end of the weights */
                   "push   {r2, r3}\n"           /* [sp] end, [sp + 4] raw */
                   "1:\n"
                   EBQ_MM32_STEP("smuad ", EBQ_NO_ADD, "0")
                   ".set   ebq_off, 24\n"
                   ".rept 31\n"
                   EBQ_MM32_STEP("smlad ", EBQ_ADD, "ebq_off")
                   ".set   ebq_off, ebq_off + 24\n"
                   ".endr\n"
                   "add    r0, r0, #128\n" /* past the pair's second row */
                   "ldr    r10, [sp, #4]\n"
                   "stm    r10!, {r2-r9}\n"
                   "str    r10, [sp, #4]\n"
                   "ldr    r10, [sp]\n"
                   "cmp    r0, r10\n"
                   "bne    1b\n"
                   "add    sp, sp, #8\n"
                   "pop    {r4-r11, pc}\n");
}
#undef EBQ_MM32_STEP

/* acc[6p + 3k + i] = x_2p+k . w_o+i (k < 2, i < 3) for the row pairs p < pairs (widened by
 * ebq_widen2, 128 words each, one after the other) and an output triple w (ebq_widen3_128):
 * per 4 inputs LDM of the row pair's 4 words, 3 LDRD of the outputs' (immediate offsets: w
 * stays put), 12 SMLAD = 16 instructions and 26 est. cycles for 24 MACs (ebq_mm22_s16_128: 10
 * and 18 for 16), and no call per row pair. Registers: r0 rows, r1 w, r2-r7 the sums (one STM),
 * r8-r11 the row words, r12/lr the output words; on the stack the end of the rows and acc. */
#define EBQ_MM23_STEP(op, add, off)                                                               \
    "ldm    r0!, {r8-r11}\n"                                                                 \
    "ldrd   r12, lr, [r1, #(" off ")]\n"                                                     \
    op " r2, r8, r12" add("r2") "smlad  r2, r9, lr, r2\n"                                    \
    op " r5, r10, r12" add("r5") "smlad  r5, r11, lr, r5\n"                                  \
    "ldrd   r12, lr, [r1, #(" off " + 8)]\n"                                                 \
    op " r3, r8, r12" add("r3") "smlad  r3, r9, lr, r3\n"                                    \
    op " r6, r10, r12" add("r6") "smlad  r6, r11, lr, r6\n"                                  \
    "ldrd   r12, lr, [r1, #(" off " + 16)]\n"                                                \
    op " r4, r8, r12" add("r4") "smlad  r4, r9, lr, r4\n"                                    \
    op " r7, r10, r12" add("r7") "smlad  r7, r11, lr, r7\n"
__attribute__((naked)) void ebq_mm23_s16_128(const int32_t *x, const int32_t *w, uint32_t pairs,
                                             int32_t *acc)
{
    __asm volatile("push   {r4-r11, lr}\n"
                   "add    r2, r0, r2, lsl #9\n" /* end of the row pairs: 512 bytes each */
                   "push   {r2, r3}\n"           /* [sp] end, [sp + 4] acc */
                   "1:\n"
                   EBQ_MM23_STEP("smuad ", EBQ_NO_ADD, "0")
                   ".set   ebq_off23, 24\n"
                   ".rept 31\n"
                   EBQ_MM23_STEP("smlad ", EBQ_ADD, "ebq_off23")
                   ".set   ebq_off23, ebq_off23 + 24\n"
                   ".endr\n"
                   "ldr    r8, [sp, #4]\n"
                   "stm    r8!, {r2-r7}\n"
                   "str    r8, [sp, #4]\n"
                   "ldr    r8, [sp]\n"
                   "cmp    r0, r8\n"
                   "bne    1b\n"
                   "add    sp, sp, #8\n"
                   "pop    {r4-r11, pc}\n");
}
#undef EBQ_MM23_STEP

/* ebq_widen_rows(3, 128, ...) of 3 consecutive rows x (stride 128): per 8 inputs 3 LDRD, 12
 * SXTB16 and one STM of the 12 words (r2-r12, lr in the layout's order: 2 groups of the 3 rows'
 * 2 words) = 16 instructions for 24 values. */
__attribute__((naked)) void ebq_widen3_128(const int8_t *x, int32_t *out)
{
    __asm volatile("push   {r4-r11, lr}\n"
                   ".rept 16\n"
                   "ldrd   r5, r11, [r0, #128]\n"
                   "ldrd   r7, lr, [r0, #256]\n"
                   "ldrd   r3, r9, [r0], #8\n"
                   "sxtb16 r2, r3\n"
                   "sxtb16 r3, r3, ror #8\n"
                   "sxtb16 r4, r5\n"
                   "sxtb16 r5, r5, ror #8\n"
                   "sxtb16 r6, r7\n"
                   "sxtb16 r7, r7, ror #8\n"
                   "sxtb16 r8, r9\n"
                   "sxtb16 r9, r9, ror #8\n"
                   "sxtb16 r10, r11\n"
                   "sxtb16 r11, r11, ror #8\n"
                   "sxtb16 r12, lr\n"
                   "sxtb16 lr, lr, ror #8\n"
                   "stm    r1!, {r2-r12, lr}\n"
                   ".endr\n"
                   "pop    {r4-r11, pc}\n");
}

/* acc = (x_r . w_o, x_r . w_o+1, x_r+1 . w_o, x_r+1 . w_o+1) for 128 inputs, both operands
 * widened in advance (ebq_widen_rows with rows = 2: x a row pair, w an output pair). Per 4
 * inputs: 2 LDM (the 2 rows' pairs, the 2 outputs' pairs), 8 SMLAD = 10 instructions for 16
 * MACs, no unpacking. Registers: r0 x, r1 w, r2/r3/r12/lr the accumulators, r4-r11 operands. */
__attribute__((naked)) void ebq_mm22_s16_128(const int32_t *x, const int32_t *w, int32_t *acc)
{
#define EBQ_MM22_STEP(op, add)                                                                   \
    "ldm    r0!, {r4-r7}\n"                                                                  \
    "ldm    r1!, {r8-r11}\n"                                                                 \
    op " r2, r4, r8" add("r2") "smlad  r2, r5, r9, r2\n"                                     \
    op " r3, r4, r10" add("r3") "smlad  r3, r5, r11, r3\n"                                   \
    op " r12, r6, r8" add("r12") "smlad  r12, r7, r9, r12\n"                                 \
    op " lr, r6, r10" add("lr") "smlad  lr, r7, r11, lr\n"
    __asm volatile("push   {r2, r4-r11, lr}\n"
                   EBQ_MM22_STEP("smuad ", EBQ_NO_ADD)
                   ".rept 31\n"
                   EBQ_MM22_STEP("smlad ", EBQ_ADD)
                   ".endr\n"
                   "pop    {r0}\n"
                   "stm    r0, {r2, r3, r12, lr}\n"
                   "pop    {r4-r11, pc}\n");
#undef EBQ_ADD
#undef EBQ_NO_ADD
#undef EBQ_MM22_STEP
#undef EBQ_MM4_FIRST
#undef EBQ_MM4_GROUP
}
#pragma GCC diagnostic pop
#endif
