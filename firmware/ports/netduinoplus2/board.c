/*
 * board.c - netduinoplus2 (STM32F405RG, 25 MHz crystal). QEMU -M netduinoplus2 maps serial0 to
 * USART1; QEMU has no DWT, so time is SysTick (the build sets no EBQ_CYCLES_DWT).
 */
#include "board.h"

#define STM32_USART_BASE 0x40011000u
#define STM32_HSE_HZ 25000000u
#define STM32_USART_BRR 729u /* APB2 84 MHz / 115200 = 45.5625 -> 45 << 4 | 9 */
#include "stm32_usart.h"

void board_uart_init(void)
{
    RCC_AHB1ENR |= 1u << 0;  /* GPIOA */
    RCC_APB2ENR |= 1u << 4;  /* USART1 */
    REG32(0x40020000u) = (REG32(0x40020000u) & ~(0xFu << 18)) | (0xAu << 18); /* PA9/10 AF */
    REG32(0x40020024u) = (REG32(0x40020024u) & ~0xFF0u) | (0x77u << 4);       /* AF7 */
    stm32_usart_enable();
}
