/*
 * qrr bare-metal test guests: the test sequence and console output,
 * shared by the x86 and the AArch64 guest.
 *
 * Every line printed between "QRR-GUEST begin" and "QRR-GUEST end" must
 * be reproduced byte for byte by a replay.  The guest itself is
 * deterministic: whatever differs between two recordings (timer interrupt
 * timing, counters, random numbers, the RTC, the typed byte) comes from
 * inputs that record/replay must log.
 *
 * Copyright (c) 2026 The qrr authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "guest.h"

/*
 * Call frame information in .debug_frame, which gdb reads to unwind at
 * any instruction (say at a return, the frame already popped), and which
 * is not loaded: on AArch64, GCC's unwind tables would put it in
 * .eh_frame, which the link script discards.
 */
__asm__(".cfi_sections .debug_frame");

/* Written by the timer interrupt handler, read by the test loops. */
volatile uint32_t timer_ticks;

static void test_exceptions(void)
{
    unsigned tried = 0, handled;

    guest_printf("exceptions:\n");
    handled = arch_exceptions(&tried);
    guest_printf("exceptions handled: %u/%u\n", handled, tried);
}

/*
 * A small call chain for gdb's source-level stepping (step, next, finish
 * and their reverse forms): outer calls middle twice, middle calls leaf
 * twice, each over a few lines of its own.  noinline and noclone keep the
 * functions and their calls at -O2, and each line is one update of the
 * volatile accumulator, which the compiler keeps in order.  CHAIN_FENCE()
 * keeps the prologue and the epilogue out of the first and the last line,
 * so that every line is one piece of code, and gives the return a line of
 * its own, where a forward step stops as a reverse one does.  It runs
 * before the timer starts: no interrupt comes in between.
 */
#define CHAIN_CALLS 3
#define CHAIN_FN __attribute__((noinline, noclone))
#define CHAIN_FENCE() __asm__ volatile("" : : : "memory")

/* Every access is kept, in order: one line, one update. */
static volatile uint32_t chain_acc;

static CHAIN_FN void chain_leaf(void)
{
    chain_acc += 1;
    chain_acc ^= 0xff;
    chain_acc += 3;
    CHAIN_FENCE();
}

static CHAIN_FN void chain_middle(void)
{
    CHAIN_FENCE();
    chain_acc += 10;
    chain_leaf();
    chain_acc ^= 0xf0;
    chain_leaf();
    chain_acc += 20;
    CHAIN_FENCE();
}

static CHAIN_FN void chain_outer(void)
{
    CHAIN_FENCE();
    chain_acc += 100;
    chain_middle();
    chain_acc ^= 0xf00;
    chain_middle();
    chain_acc += 200;
    CHAIN_FENCE();
}

static void test_calls(void)
{
    unsigned i;

    for (i = 0; i < CHAIN_CALLS; i++) {
        chain_outer();
    }
    guest_printf("calls: %u, accumulator 0x%08x\n", CHAIN_CALLS, chain_acc);
}

/* Sleep through TIMER_WAIT_TICKS periodic interrupts. */
static void test_timer_idle(void)
{
    uint32_t t0, wakeups = 0;
    uint64_t c0, c1;

    c0 = arch_counter();
    t0 = timer_ticks;
    while (timer_ticks - t0 < TIMER_WAIT_TICKS) {
        arch_idle();
        wakeups++;
    }
    c1 = arch_counter();
    guest_printf("timer: %u irqs at %u Hz in %u wake-ups, %s +0x%llx\n",
                 timer_ticks - t0, TIMER_HZ, wakeups, arch_counter_name,
                 (unsigned long long)(c1 - c0));
}

/*
 * Compute with interrupts enabled: the timer interrupts land at arbitrary
 * instructions, not only at hlt/wfi.
 */
static void test_timer_busy(void)
{
    uint32_t t0, x = 1, seen = 0, last;
    unsigned i;

    t0 = last = timer_ticks;
    arch_irq_enable();
    for (i = 0; i < BUSY_ROUNDS; i++) {
        x = x * 1103515245 + 12345;
        if (timer_ticks != last) {
            last = timer_ticks;
            seen ^= i;
        }
    }
    arch_irq_disable();
    guest_printf("busy: %u rounds, %u irqs, result 0x%08x 0x%08x\n",
                 BUSY_ROUNDS, timer_ticks - t0, x, seen);
}

/*
 * Rewrite code while running it: at each timer tick the function in
 * arch_code_page() is rewritten to return a new constant, and it is
 * called until the next tick.  A replay that goes back into this phase
 * must run the version of the function that memory holds there, not the
 * one TCG translated at the position it came from.  The page is outside
 * the image that QEMU loaded (-kernel), which a system reset writes again
 * (and so drops its translated code).  code_rewrite_tick() is for a
 * debugger to find the phase.
 */

void __attribute__((noinline)) code_rewrite_tick(uint32_t t)
{
    asm volatile("" : : "r"(t) : "memory");
}

static void test_code_rewrite(void)
{
    uint8_t *code_page = arch_code_page();
    uint32_t (*fn)(void) = (uint32_t (*)(void))(uintptr_t)code_page;
    uint32_t t0 = timer_ticks, last = t0 - 1, acc = 0, calls = 0, now;

    arch_irq_enable();
    while ((now = timer_ticks) - t0 < CODE_TICKS) {
        if (now != last) {
            last = now;
            arch_code_return(code_page, now * 2654435761u);
            code_rewrite_tick(now - t0);
        }
        acc = acc * 31 + fn();
        calls++;
    }
    arch_irq_disable();
    guest_printf("code: %u rewrites, %u calls, result 0x%08x\n",
                 CODE_TICKS, calls, acc);
}

static void test_rtc(void)
{
    struct rtc_time t;

    if (arch_rtc(&t)) {
        guest_printf("rtc: %04u-%02u-%02u %02u:%02u:%02u\n",
                     t.year, t.mon, t.day, t.hour, t.min, t.sec);
    } else {
        guest_printf("rtc: not available\n");
    }
}

static void test_serial_input(void)
{
    uint32_t t0 = timer_ticks;
    int c = -1;

    guest_printf("QRR-PROMPT type a character:\n");
    while (timer_ticks - t0 < PROMPT_TICKS) {
        c = arch_getc();
        if (c >= 0) {
            break;
        }
        arch_idle();
    }
    if (c < 0) {
        guest_printf("typed: (nothing) after %u ticks\n", timer_ticks - t0);
    } else {
        guest_printf("typed: 0x%02x '%c' after %u ticks\n", c,
                     c >= 0x20 && c < 0x7f ? c : '.', timer_ticks - t0);
    }
}

void guest_main(void)
{
    uint64_t c0;

    arch_init();
    put_str("QRR-GUEST begin\n");
    guest_printf("qrr bare-metal guest (%s)\n", arch_name);
    arch_describe();

    test_exceptions();
    test_calls();

    arch_timer_start(TIMER_HZ);
    test_timer_idle();
    test_timer_busy();
    test_code_rewrite();

    arch_rng();
    test_rtc();
    c0 = arch_counter();
    guest_printf("counter: %s 0x%llx +0x%llx\n", arch_counter_name,
                 (unsigned long long)c0,
                 (unsigned long long)(arch_counter() - c0));

    test_serial_input();
    arch_timer_stop();
    guest_printf("timer irqs total: %u\n", timer_ticks);

    guest_printf("checksum: 0x%08x\n", console_checksum());
    put_str("QRR-GUEST end\n");
    arch_poweroff();
}
