/* stm32f4: STM32F4-Discovery (STM32F407VG) at 168 MHz; serial = USART2 (PA2/PA3), IRQ 38. */
#define BOARD_NAME "stm32f4"
#define BOARD_CLOCK_HZ 168000000u
#define BOARD_UART_IRQ 38
#include "board_api.h"
