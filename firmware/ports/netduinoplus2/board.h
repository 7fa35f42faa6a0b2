/* netduinoplus2: STM32F405RG at 168 MHz; serial = USART1 @0x40011000 (PA9/PA10), IRQ 37. */
#define BOARD_NAME "netduinoplus2"
#define BOARD_CLOCK_HZ 168000000u
#define BOARD_UART_IRQ 37
#include "board_api.h"
