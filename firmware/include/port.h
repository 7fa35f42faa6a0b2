/*
 * port.h - the seam between the application (firmware/app) and a board (firmware/ports/<board>).
 *
 * A board provides exactly these functions and nothing else is board-specific: startup, UART,
 * cycle counter, clock, stack measurement, reset. The application owns protocol, timing policy
 * and the engine calls (as MLPerf Tiny's th_* / ee_* split).
 */
#ifndef EBQ_PORT_H
#define EBQ_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Clocks, UART (receive interrupt on), cycle counter and fault reporting. Called once, first. */
void port_init(void);

/* Board name as in the boards table ("netduinoplus2", "native", ...). */
const char *port_board_name(void);

/* Blocking transmit of len bytes. */
void port_uart_write(const uint8_t *buf, size_t len);

/* Next received byte from the interrupt-fed ring buffer, or -1 when the ring is empty. */
int port_uart_read_byte(void);

/* Sleeps (WFI / poll) until at least one received byte may be waiting. Never busy-polls. */
void port_wait_rx(void);

/* Bytes lost because the receive ring was full (a host that ignores flow rules). */
uint32_t port_uart_overruns(void);

/* Monotonic counter in port_cycles_unit() units ("dwt", "systick", "ns"), 64-bit (wraps of the
 * hardware counter are counted by the port). */
uint64_t port_cycles(void);
const char *port_cycles_unit(void);

/* Core clock in Hz (what the counter counts for dwt/systick units). */
uint32_t port_clock_hz(void);

/* Stack high-water mark: port_stack_paint() refills the unused stack below the caller with the
 * paint pattern; port_stack_peak() returns the deepest use in bytes since boot or the last paint. */
void port_stack_paint(void);
size_t port_stack_peak(void);

/* Static memory of the image in bytes (flash: code + rodata + data initialisers; ram: data +
 * bss + stack reserve), from linker symbols; 0 where that has no meaning (native). */
size_t port_flash_used(void);
size_t port_ram_used(void);

/* Test builds (EBQ_TEST_HOOKS) only: executes an undefined instruction to exercise the fault
 * report. */
void port_test_fault(void);

/* Resets the device (SYSRESETREQ; native: re-executes itself). Does not return. */
void port_reset(void) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* EBQ_PORT_H */
