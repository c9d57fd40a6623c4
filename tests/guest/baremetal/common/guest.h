/*
 * qrr bare-metal test guests: what the common code and each architecture
 * provide to each other.
 *
 * Copyright (c) 2026 The qrr authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QRR_BAREMETAL_GUEST_H
#define QRR_BAREMETAL_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIMER_HZ            1000
#define TIMER_WAIT_TICKS    100     /* the hlt/wfi test: 100 ms */
#define PROMPT_TICKS        10000   /* wait up to 10 s for a typed byte */
#define BUSY_ROUNDS         4000000
#define CODE_TICKS          300     /* the code-rewriting test: 300 ms */

#define NORETURN __attribute__((noreturn))
#define PRINTF_FMT(a, b) __attribute__((format(printf, a, b)))

struct rtc_time {
    unsigned year, mon, day, hour, min, sec;
};

/* Provided by the architecture (x86/arch.c, aarch64/arch.c). */
extern const char arch_name[];
extern const char arch_counter_name[];
void arch_init(void);               /* console, vectors, interrupt ctlr */
void arch_putc(char c);             /* raw console output */
int arch_getc(void);                /* a received byte, or -1 */
void arch_describe(void);           /* CPU identification lines */
unsigned arch_exceptions(unsigned *tried);  /* take each on purpose */
void arch_timer_start(unsigned hz); /* periodic timer interrupt */
void arch_timer_stop(void);
void arch_idle(void);               /* sleep until an interrupt, take it */
void arch_irq_enable(void);
void arch_irq_disable(void);
uint64_t arch_counter(void);        /* TSC, CNTVCT */
/* a page of RAM outside the loaded image, and no one else's */
void *arch_code_page(void);
/* write at @buf a function that returns @v (uint32_t (*)(void)) */
void arch_code_return(void *buf, uint32_t v);
void arch_rng(void);                /* print hardware random numbers */
bool arch_rtc(struct rtc_time *t);
NORETURN void arch_poweroff(void);

/* Provided by common/guest.c (the test guest) or common/bench.c. */
extern volatile uint32_t timer_ticks;   /* incremented by the timer IRQ */
void guest_main(void);

/* Provided by common/console.c. */
void put_char(char c);
void put_str(const char *s);
void guest_printf(const char *fmt, ...) PRINTF_FMT(1, 2);
NORETURN void guest_panic(const char *fmt, ...) PRINTF_FMT(1, 2);
uint32_t console_checksum(void);    /* FNV-1a of every byte printed */

/* Provided by common/bench.c (in assembly): the benchmark's breakpoints. */
void mark_10s(uint32_t t);
void mark_1s(uint32_t t);
void mark_1ms(uint32_t t);

/* Between C and each architecture's start.S (struct frame: arch.c). */
struct frame;
extern uint32_t mb_magic;               /* x86: EAX from the loader */
extern const uint32_t isr_table[48];    /* x86: entry stubs, vectors 0-47 */
void isr_handler(struct frame *f);      /* x86 */
void exc_handler(struct frame *f, unsigned kind);  /* aarch64 */

#endif
