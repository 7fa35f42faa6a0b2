/*
 * stm32_usart.h - the STM32F4 USART and clock tree, shared by stm32f4 and netduinoplus2.
 * Included once by each board.c with STM32_USART_BASE, STM32_HSE_HZ and STM32_USART_BRR set.
 * Registers: RM0090 (STM32F405/407 reference manual). QEMU and Renode model only the USART;
 * the RCC/flash writes matter on the real chip and are harmless in the emulators.
 */
#include "board_api.h"

#define USART_SR REG32(STM32_USART_BASE + 0x00u)
#define USART_DR REG32(STM32_USART_BASE + 0x04u)
#define USART_BRR REG32(STM32_USART_BASE + 0x08u)
#define USART_CR1 REG32(STM32_USART_BASE + 0x0Cu)
#define SR_ORE (1u << 3)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define CR1_UE (1u << 13)

#define RCC_CR REG32(0x40023800u)
#define RCC_PLLCFGR REG32(0x40023804u)
#define RCC_CFGR REG32(0x40023808u)
#define RCC_AHB1ENR REG32(0x40023830u)
#define RCC_APB1ENR REG32(0x40023840u)
#define RCC_APB2ENR REG32(0x40023844u)
#define FLASH_ACR REG32(0x40023C00u)

static int wait_bit(volatile uint32_t *reg, uint32_t mask)
{
    for (uint32_t i = 0; i < 200000u; i++)
        if (*reg & mask) return 1;
    return 0;
}

/* 168 MHz from the HSE crystal through the PLL (VCO 336 MHz, /2), APB1 /4, APB2 /2. */
void board_clock_init(void)
{
    FLASH_ACR = (1u << 8) | (1u << 9) | (1u << 10) | 5u; /* prefetch, I/D cache, 5 wait states */
    RCC_CR |= 1u << 16;                                  /* HSEON */
    if (!wait_bit(&RCC_CR, 1u << 17)) return;            /* no crystal: stay on HSI 16 MHz */
    RCC_PLLCFGR = (STM32_HSE_HZ / 1000000u) | (336u << 6) | (0u << 16) | (1u << 22) | (7u << 24);
    RCC_CR |= 1u << 24; /* PLLON */
    if (!wait_bit(&RCC_CR, 1u << 25)) return;
    RCC_CFGR = (RCC_CFGR & ~0xFCF3u) | (5u << 10) | (4u << 13) | 2u; /* APB1/4, APB2/2, PLL */
    (void)wait_bit(&RCC_CFGR, 8u);
}

void board_uart_putc(uint8_t c)
{
    while (!(USART_SR & SR_TXE)) {
    }
    USART_DR = c;
}

void board_uart_irq(void)
{
    uint32_t sr;
    while ((sr = USART_SR) & (SR_RXNE | SR_ORE)) {
        uint8_t c = (uint8_t)USART_DR; /* SR then DR read also clears ORE */
        if (sr & SR_RXNE) cortexm_rx_push(c);
    }
}

static void stm32_usart_enable(void)
{
    USART_BRR = STM32_USART_BRR;
    /* UE and RE both: without them QEMU (and the chip) drop received bytes. */
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE;
}
