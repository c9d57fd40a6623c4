/*
 * qrr bare-metal AArch64 guest for -M virt at EL1: PL011, GICv2 and the
 * generic timer, exceptions taken on purpose, RNDR, the PL031 RTC,
 * CNTVCT, PSCI poweroff.
 *
 * Copyright (c) 2026 The qrr authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "guest.h"

const char arch_name[] = "aarch64, EL1";
const char arch_counter_name[] = "cntvct";

/* -M virt's memory map (hw/arm/virt.c). */
#define UART        0x09000000UL
#define RTC         0x09010000UL
#define GICD        0x08000000UL
#define GICC        0x08010000UL

#define UART_DR     0x00
#define UART_FR     0x18
#define UART_LCR_H  0x2c
#define UART_CR     0x30
#define UART_IMSC   0x38
#define FR_RXFE     (1u << 4)
#define FR_TXFF     (1u << 5)

#define GICD_CTLR       0x000
#define GICD_ISENABLER  0x100
#define GICD_ICENABLER  0x180
#define GICD_IPRIORITYR 0x400
#define GICC_CTLR       0x000
#define GICC_PMR        0x004
#define GICC_IAR        0x00c
#define GICC_EOIR       0x010

#define VTIMER_INTID    27      /* PPI 11: the virtual timer */

#define PSCI_SYSTEM_OFF 0x84000008UL

#define READ_SYSREG(r) ({                                   \
        uint64_t v_;                                        \
        asm volatile("mrs %0, " #r : "=r"(v_));             \
        v_;                                                 \
    })
#define WRITE_SYSREG(r, v)                                  \
    asm volatile("msr " #r ", %0" : : "r"((uint64_t)(v)) : "memory")

/* Device registers: every access must happen, in program order. */
static inline uint32_t mmio_read(uintptr_t a)
{
    return *(volatile uint32_t *)a;     /* MMIO */
}

static inline void mmio_write(uintptr_t a, uint32_t v)
{
    *(volatile uint32_t *)a = v;        /* MMIO */
}

static inline void mmio_write8(uintptr_t a, uint8_t v)
{
    *(volatile uint8_t *)a = v;         /* MMIO */
}

/* Exceptions. */

struct frame {
    uint64_t x[31];
    uint64_t elr, spsr, esr;
};

enum {
    VEC_CUR_SPX_SYNC = 4,
    VEC_CUR_SPX_IRQ = 5,
};

static const char *const vec_names[16] = {
    "sync/sp0", "irq/sp0", "fiq/sp0", "serror/sp0",
    "sync/spx", "irq/spx", "fiq/spx", "serror/spx",
    "sync/a64", "irq/a64", "fiq/a64", "serror/a64",
    "sync/a32", "irq/a32", "fiq/a32", "serror/a32",
};

/* The exception arch_exceptions() provokes next, and where to resume. */
static volatile struct {
    uint64_t resume;
    uint32_t ec, seen;
    uint64_t elr, esr, far;
} expect;

static uint64_t timer_period;

static void irq(void)
{
    uint32_t iar = mmio_read(GICC + GICC_IAR);
    uint32_t id = iar & 0x3ff;

    if (id == VTIMER_INTID) {
        timer_ticks++;
        WRITE_SYSREG(cntv_tval_el0, timer_period);
    }
    if (id < 1020) {
        mmio_write(GICC + GICC_EOIR, iar);
    }
}

void exc_handler(struct frame *f, unsigned kind)
{
    if (kind == VEC_CUR_SPX_IRQ) {
        irq();
        return;
    }
    if (kind == VEC_CUR_SPX_SYNC && expect.resume &&
        (f->esr >> 26) == expect.ec) {
        expect.seen++;
        expect.elr = f->elr;
        expect.esr = f->esr;
        expect.far = READ_SYSREG(far_el1);
        f->elr = expect.resume;
        expect.resume = 0;
        return;
    }
    guest_panic("unexpected exception %s esr 0x%lx elr 0x%lx far 0x%lx",
                vec_names[kind & 15], (unsigned long)f->esr,
                (unsigned long)f->elr,
                (unsigned long)READ_SYSREG(far_el1));
}

/*
 * Run @setup then @insn (asm text), expecting a synchronous exception of
 * class @ec at @insn.  The asm stores the address after @insn for the
 * handler to resume at and hands back @insn's address.  @trap: the
 * exception returns to the next instruction (SVC), so ELR is that.
 */
#define PROVOKE(name, ecv, trap, setup, insn)                           \
    do {                                                                \
        uint64_t at_, after_;                                           \
        expect.ec = (ecv);                                              \
        expect.seen = 0;                                                \
        asm volatile("adr %1, 2f\n\t"                                   \
                     "adr %2, 1f\n\t"                                   \
                     "str %2, %0\n\t"                                   \
                     setup "\n"                                         \
                     "2:\t" insn "\n"                                   \
                     "1:"                                               \
                     : "=m"(expect.resume), "=&r"(at_), "=&r"(after_)   \
                     : : "x0", "x1", "memory");                         \
        handled += report(name, (ecv), (trap) ? after_ : at_);          \
        tried++;                                                        \
    } while (0)

static unsigned report(const char *name, uint32_t ec, uint64_t want)
{
    bool ok = expect.seen == 1 && expect.elr == want;

    guest_printf("  %s (EC 0x%02x) esr 0x%08lx elr 0x%lx", name, ec,
                 (unsigned long)expect.esr, (unsigned long)expect.elr);
    if (ec == 0x25) {
        guest_printf(" far 0x%lx", (unsigned long)expect.far);
    }
    guest_printf(": %s\n", ok ? "handled" : "WRONG");
    expect.resume = 0;
    return ok;
}

unsigned arch_exceptions(unsigned *tried_out)
{
    unsigned handled = 0, tried = 0;

    PROVOKE("svc #0x51", 0x15, true, "", "svc #0x51");
    PROVOKE("brk #7", 0x3c, false, "", "brk #7");
    PROVOKE("udf #0", 0x00, false, "", "udf #0");
    /* The MMU is off: memory is Device-nGnRnE, so this must fault. */
    PROVOKE("unaligned ldr", 0x25, false, "ldr x1, =0x40000003",
            "ldr x0, [x1]");
    *tried_out = tried;
    return handled;
}

/* Console: PL011. */

void arch_putc(char c)
{
    while (mmio_read(UART + UART_FR) & FR_TXFF) {
        /* transmit FIFO full */
    }
    mmio_write8(UART + UART_DR, c);
}

int arch_getc(void)
{
    if (mmio_read(UART + UART_FR) & FR_RXFE) {
        return -1;
    }
    return mmio_read(UART + UART_DR) & 0xff;
}

void arch_init(void)
{
    mmio_write(UART + UART_IMSC, 0);            /* polled */
    mmio_write(UART + UART_LCR_H, 0x70);        /* 8N1, FIFOs */
    mmio_write(UART + UART_CR, 0x301);          /* UARTEN, TXE, RXE */

    mmio_write(GICD + GICD_CTLR, 1);
    mmio_write(GICD + GICD_ICENABLER, 0xffffffff);
    mmio_write8(GICD + GICD_IPRIORITYR + VTIMER_INTID, 0xa0);
    mmio_write(GICC + GICC_PMR, 0xf0);
    mmio_write(GICC + GICC_CTLR, 1);
}

void arch_describe(void)
{
    guest_printf("cpu: midr 0x%08lx, EL%lu\n",
                 (unsigned long)READ_SYSREG(midr_el1),
                 (unsigned long)(READ_SYSREG(CurrentEL) >> 2) & 3);
    guest_printf("cpu: id_aa64isar0 0x%016lx, cntfrq %u Hz\n",
                 (unsigned long)READ_SYSREG(id_aa64isar0_el1),
                 (unsigned)READ_SYSREG(cntfrq_el0));
}

/* Timer: the EL1 virtual timer through the GIC. */

void arch_timer_start(unsigned hz)
{
    timer_period = READ_SYSREG(cntfrq_el0) / hz;
    WRITE_SYSREG(cntv_tval_el0, timer_period);
    WRITE_SYSREG(cntv_ctl_el0, 1);
    mmio_write(GICD + GICD_ISENABLER, 1u << VTIMER_INTID);
    asm volatile("isb");
}

void arch_timer_stop(void)
{
    WRITE_SYSREG(cntv_ctl_el0, 0);
    mmio_write(GICD + GICD_ICENABLER, 1u << VTIMER_INTID);
    asm volatile("isb");
}

void arch_idle(void)
{
    /* wfi wakes on a pending interrupt even while it is masked. */
    asm volatile("wfi\n\t"
                 "msr daifclr, #2\n\t"
                 "isb\n\t"
                 "msr daifset, #2" : : : "memory");
}

/* RAM + 16 MiB: far past the image, which a system reset writes again */
void *arch_code_page(void)
{
    return (void *)0x41000000;
}

void arch_code_return(void *buf, uint32_t v)
{
    volatile uint32_t *c = buf;

    c[0] = 0x52800000 | (v & 0xffff) << 5;         /* movz w0, #lo */
    c[1] = 0x72a00000 | (v >> 16) << 5;            /* movk w0, #hi, lsl 16 */
    c[2] = 0xd65f03c0;                              /* ret */
    asm volatile("dsb ish\n\tic iallu\n\tdsb ish\n\tisb" : : : "memory");
}

void arch_irq_enable(void)
{
    asm volatile("msr daifclr, #2\n\tisb" : : : "memory");
}

void arch_irq_disable(void)
{
    asm volatile("msr daifset, #2" : : : "memory");
}

uint64_t arch_counter(void)
{
    asm volatile("isb" : : : "memory");
    return READ_SYSREG(cntvct_el0);
}

/* Random numbers: FEAT_RNG (RNDR, RNDRRS) when ID_AA64ISAR0_EL1 has it. */

static bool rndr(uint64_t *v, bool reseed)
{
    uint64_t ok;

    if (reseed) {
        asm volatile("mrs %0, s3_3_c2_c4_1\n\tcset %1, ne"
                     : "=r"(*v), "=r"(ok) : : "cc");
    } else {
        asm volatile("mrs %0, s3_3_c2_c4_0\n\tcset %1, ne"
                     : "=r"(*v), "=r"(ok) : : "cc");
    }
    return ok;
}

void arch_rng(void)
{
    uint64_t v;
    int reseed, i;

    if (!(READ_SYSREG(id_aa64isar0_el1) >> 60)) {
        guest_printf("rng: no RNDR\n");
        return;
    }
    for (reseed = 0; reseed < 2; reseed++) {
        guest_printf("rng: %s", reseed ? "rndrrs" : "rndr");
        for (i = 0; i < 4; i++) {
            if (rndr(&v, reseed)) {
                guest_printf(" 0x%016lx", (unsigned long)v);
            } else {
                guest_printf(" (fail)");
            }
        }
        guest_printf("\n");
    }
}

/* The PL031 RTC: seconds since the epoch. */

bool arch_rtc(struct rtc_time *t)
{
    uint64_t secs = mmio_read(RTC);
    int64_t z = secs / 86400 + 719468, era, doe, yoe, doy, mp;
    unsigned rem = secs % 86400;

    /* days to civil date (proleptic Gregorian) */
    era = z / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    t->day = doy - (153 * mp + 2) / 5 + 1;
    t->mon = mp < 10 ? mp + 3 : mp - 9;
    t->year = yoe + era * 400 + (t->mon <= 2);
    t->hour = rem / 3600;
    t->min = rem / 60 % 60;
    t->sec = rem % 60;
    return true;
}

void arch_poweroff(void)
{
    register uint64_t x0 asm("x0") = PSCI_SYSTEM_OFF;

    /* virt without EL2/EL3: QEMU's PSCI is called with hvc. */
    asm volatile("hvc #0" : "+r"(x0) : : "memory");
    for (;;) {
        asm volatile("msr daifset, #0xf\n\twfi");
    }
}
