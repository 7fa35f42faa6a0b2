/*
 * board.c - stm32f4 (STM32F4-Discovery, 8 MHz crystal). Renode's stm32f4_discovery platform
 * connects usart2 @0x40004400; time is DWT CYCCNT (Renode needs the DWT overlay, see
 * docs/design.md, "Emulator facts").
 */
#include "board.h"

#define STM32_USART_BASE 0x40004400u
#define STM32_HSE_HZ 8000000u
#define STM32_USART_BRR 365u /* APB1 42 MHz / 115200 = 22.79 -> 22 << 4 | 13 */
#include "stm32_usart.h"

void board_uart_init(void)
{
    RCC_AHB1ENR |= 1u << 0;  /* GPIOA */
    RCC_APB1ENR |= 1u << 17; /* USART2 */
    REG32(0x40020000u) = (REG32(0x40020000u) & ~(0xFu << 4)) | (0xAu << 4); /* PA2/PA3 AF */
    REG32(0x40020020u) = (REG32(0x40020020u) & ~0xFF00u) | (0x77u << 8);    /* AF7 */
    stm32_usart_enable();
}
