/*
 * qrr bare-metal benchmark guest (bench.elf): a long busy run for
 * measuring reverse debugging (tooling/bench.py, "timetravel").
 *
 * It computes for BENCH_TICKS ticks of the 1 kHz periodic timer (guest
 * time: under -icount, virtual time), with interrupts enabled all along,
 * writing pseudo-random words into a BENCH_WSET-byte working set so that
 * snapshots have guest memory to hold, and calls, for tick t:
 *
 *     mark_10s(t)   if t is a multiple of 10000 (every 10 s),
 *     mark_1s(t)    if t is a multiple of 1000 (every second),
 *     mark_1ms(t)   on every tick,
 *
 * in this order, from the busy loop (not from the interrupt handler), with
 * bench_tick = t.  So, stopped at a breakpoint on mark_10s, the previous
 * hit of mark_1ms is one tick (1 ms) back, of mark_1s 1000 ticks (1 s)
 * back and of mark_10s 10000 ticks (10 s) back.  Then it prints a
 * summary and powers off.
 *
 * It links with each architecture's arch.c and start.S in place of
 * guest.c, so it provides what those need from the common code
 * (timer_ticks, guest_printf, guest_panic).  Like guest.c it is
 * deterministic: a replay prints the same lines.
 *
 * Copyright (c) 2026 The qrr authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "guest.h"

#define BENCH_TICKS     65000           /* 65 s of guest time */
#define BENCH_WSET      (1024 * 1024)   /* bytes of working set */
#define WSET_WORDS      (BENCH_WSET / 4)

/* Written by the timer interrupt handler (arch.c). */
volatile uint32_t timer_ticks;

/* The tick the marks are called for: for the debugger to check. */
volatile uint32_t bench_tick;

static uint32_t wset[WSET_WORDS];

/* How often each mark was called: for the debugger to check. */
volatile uint32_t mark_calls[3];

/*
 * The breakpoint targets, each counting its calls in mark_calls[], alone
 * in a page of their own.  TCG runs the code of a page that holds a gdb
 * breakpoint one instruction per block (to catch the breakpoint): the
 * busy loop must not share that page, or the replay would crawl.  In
 * assembly, to be sure of the layout: a page-aligned section padded to
 * the end of its page.  (Declared in guest.h.)
 */

#if defined(__i386__)
#define MARK_FN(name, idx)                  \
    ".globl " #name "\n"                    \
    ".type " #name ", @function\n"          \
    #name ":\n"                             \
    "\tincl mark_calls+4*" #idx "\n"        \
    "\tret\n"                               \
    ".size " #name ", . - " #name "\n"
#elif defined(__aarch64__)
#define MARK_FN(name, idx)                  \
    ".globl " #name "\n"                    \
    ".type " #name ", %function\n"          \
    #name ":\n"                             \
    "\tadrp x1, mark_calls\n"               \
    "\tadd x1, x1, :lo12:mark_calls\n"      \
    "\tldr w2, [x1, #4*" #idx "]\n"         \
    "\tadd w2, w2, #1\n"                    \
    "\tstr w2, [x1, #4*" #idx "]\n"         \
    "\tret\n"                               \
    ".size " #name ", . - " #name "\n"
#else
#error "bench.c: no mark functions for this architecture"
#endif

asm(".pushsection .text.marks, \"ax\"\n"
    ".balign 4096\n"
    MARK_FN(mark_10s, 0)
    MARK_FN(mark_1s, 1)
    MARK_FN(mark_1ms, 2)
    ".balign 4096\n"
    ".popsection\n");

/* ---- the run ---- */

static void tick(uint32_t t, uint32_t x)
{
    bench_tick = t;
    if (t % 10000 == 0) {
        mark_10s(t);
        guest_printf("bench: %u s, x 0x%08x\n", t / 1000, x);
    }
    if (t % 1000 == 0) {
        mark_1s(t);
    }
    mark_1ms(t);
}

void guest_main(void)
{
    uint32_t x = 1, seen = 0, sum = 0, now;
    unsigned i;

    arch_init();
    put_str("QRR-BENCH begin\n");
    guest_printf("qrr bare-metal bench guest (%s): %u ticks at %u Hz, "
                 "%u KiB working set\n", arch_name, BENCH_TICKS, TIMER_HZ,
                 BENCH_WSET / 1024);
    timer_ticks = 0;
    arch_timer_start(TIMER_HZ);
    arch_irq_enable();
    while (seen < BENCH_TICKS) {
        for (i = 0; i < 64; i++) {
            x = x * 1103515245 + 12345;
            wset[(x >> 9) & (WSET_WORDS - 1)] += x;
        }
        /* every tick once, in order, even if two came between looks */
        now = timer_ticks;
        while (seen != now && seen < BENCH_TICKS) {
            tick(++seen, x);
        }
    }
    arch_irq_disable();
    arch_timer_stop();
    for (i = 0; i < WSET_WORDS; i++) {
        sum = (sum ^ wset[i]) * 0x01000193;
    }
    guest_printf("bench: done, %u ticks, x 0x%08x, working set 0x%08x\n",
                 seen, x, sum);
    put_str("QRR-BENCH end\n");
    arch_poweroff();
}
