/*
 * qrr bare-metal x86 guest: 32-bit protected mode on -M pc and -M q35.
 * GDT/IDT, COM1, 8259 PIC + PIT channel 0, exceptions taken on purpose,
 * RDRAND/RDSEED, the CMOS RTC, the TSC, ACPI poweroff.
 *
 * Copyright (c) 2026 The qrr authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "guest.h"
#include "io.h"

const char arch_name[] = "x86, 32-bit protected mode";
const char arch_counter_name[] = "tsc";

#define COM1        0x3f8
#define PIC1        0x20
#define PIC2        0xa0
#define PIT_CH0     0x40
#define PIT_CMD     0x43
#define PIT_HZ      1193182
#define IRQ_BASE    32

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    asm volatile("cpuid"
                 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                 : "a"(leaf), "c"(sub));
}

/* Descriptor tables. */

static const uint64_t gdt[] = {
    0,
    0x00cf9a000000ffffull,      /* 0x08: code, flat, 32-bit */
    0x00cf92000000ffffull,      /* 0x10: data, flat */
};

struct idt_gate {
    uint16_t off_lo, sel;
    uint8_t zero, type;
    uint16_t off_hi;
} __attribute__((packed));

static struct idt_gate idt[48];

struct dtr {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

static void load_tables(void)
{
    struct dtr g = { sizeof(gdt) - 1, (uint32_t)gdt };
    struct dtr i = { sizeof(idt) - 1, (uint32_t)idt };
    unsigned n;

    asm volatile("lgdt %0\n\t"
                 "ljmp $0x08, $1f\n"
                 "1:\tmovw $0x10, %%ax\n\t"
                 "movw %%ax, %%ds\n\t"
                 "movw %%ax, %%es\n\t"
                 "movw %%ax, %%fs\n\t"
                 "movw %%ax, %%gs\n\t"
                 "movw %%ax, %%ss"
                 : : "m"(g) : "eax", "memory");
    for (n = 0; n < 48; n++) {
        idt[n].off_lo = isr_table[n] & 0xffff;
        idt[n].off_hi = isr_table[n] >> 16;
        idt[n].sel = 0x08;
        idt[n].zero = 0;
        idt[n].type = 0x8e;     /* present, DPL 0, 32-bit interrupt gate */
    }
    asm volatile("lidt %0" : : "m"(i) : "memory");
}

/* Interrupts and exceptions. */

struct frame {
    uint32_t edi, esi, ebp, esp, ebx, edx, ecx, eax;
    uint32_t vector, err;
    uint32_t eip, cs, eflags;
};

/* The exception arch_exceptions() provokes next, and where to resume. */
static volatile struct {
    uint32_t vector, resume;
    uint32_t seen, eip, err;
} expect;

void isr_handler(struct frame *f)
{
    if (f->vector >= IRQ_BASE) {
        unsigned irq = f->vector - IRQ_BASE;

        if (irq == 0) {
            timer_ticks++;
        }
        if (irq >= 8) {
            outb(PIC2, 0x20);
        }
        outb(PIC1, 0x20);
        return;
    }
    if (expect.resume && f->vector == expect.vector) {
        expect.seen++;
        expect.eip = f->eip;
        expect.err = f->err;
        f->eip = expect.resume;
        expect.resume = 0;
        return;
    }
    guest_panic("unexpected exception %u error 0x%x at eip 0x%08x",
                f->vector, f->err, f->eip);
}

/*
 * Run @setup then @insn (asm text), expecting exception @vec at @insn.
 * The asm stores the address to resume at (after @insn) for the handler
 * and hands back @insn's address.  @trap: the CPU reports the address
 * after the instruction (#BP), not the instruction's.
 */
#define PROVOKE(name, vec, trap, setup, insn)                           \
    do {                                                                \
        uint32_t at_, after_;                                           \
        expect.vector = (vec);                                          \
        expect.seen = 0;                                                \
        asm volatile("movl $2f, %1\n\t"                                 \
                     "movl $1f, %2\n\t"                                 \
                     "movl %2, %0\n\t"                                  \
                     setup "\n"                                         \
                     "2:\t" insn "\n"                                   \
                     "1:"                                               \
                     : "=m"(expect.resume), "=&r"(at_), "=&r"(after_)   \
                     : : "eax", "ecx", "edx", "memory");                \
        handled += report(name, (vec), (trap) ? after_ : at_);          \
        tried++;                                                        \
    } while (0)

static unsigned report(const char *name, uint32_t vec, uint32_t want)
{
    bool ok = expect.seen == 1 && expect.eip == want;

    guest_printf("  %s (vector %u) at eip 0x%08x error 0x%x: %s\n",
                 name, vec, expect.eip, expect.err,
                 ok ? "handled" : "WRONG");
    expect.resume = 0;
    return ok;
}

unsigned arch_exceptions(unsigned *tried_out)
{
    unsigned handled = 0, tried = 0;

    PROVOKE("#UD ud2", 6, false, "", "ud2");
    PROVOKE("#DE divide by zero", 0, false,
            "movl $1, %%eax; xorl %%edx, %%edx; xorl %%ecx, %%ecx",
            "divl %%ecx");
    PROVOKE("#BP int3", 3, true, "", "int3");
    PROVOKE("#GP bad selector", 13, false, "movl $0x1238, %%ecx",
            "movw %%cx, %%fs");
    *tried_out = tried;
    return handled;
}

/* Console: COM1. */

void arch_putc(char c)
{
    while (!(inb(COM1 + 5) & 0x20)) {
        /* wait for THR empty */
    }
    outb(COM1, c);
}

int arch_getc(void)
{
    if (inb(COM1 + 5) & 0x01) {
        return inb(COM1);
    }
    return -1;
}

static void serial_init(void)
{
    outb(COM1 + 1, 0x00);   /* no UART interrupts: polled */
    outb(COM1 + 3, 0x80);   /* DLAB */
    outb(COM1 + 0, 0x01);   /* 115200 */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);   /* 8N1 */
    /*
     * FIFOs on, cleared; a 14-byte trigger level, so that a typed line
     * arrives at once and what the guest does not read stays queued
     */
    outb(COM1 + 2, 0xc7);
    outb(COM1 + 4, 0x03);   /* DTR, RTS */
}

static void pic_init(void)
{
    outb(PIC1, 0x11);
    outb(PIC2, 0x11);
    outb(PIC1 + 1, IRQ_BASE);
    outb(PIC2 + 1, IRQ_BASE + 8);
    outb(PIC1 + 1, 0x04);
    outb(PIC2 + 1, 0x02);
    outb(PIC1 + 1, 0x01);
    outb(PIC2 + 1, 0x01);
    outb(PIC1 + 1, 0xff);   /* everything masked until the timer starts */
    outb(PIC2 + 1, 0xff);
}

void arch_init(void)
{
    load_tables();
    serial_init();
    pic_init();
}

void arch_describe(void)
{
    uint32_t r[4], v[4];
    char vendor[13];
    int i;

    cpuid(0, 0, r);
    v[0] = r[1];
    v[1] = r[3];
    v[2] = r[2];
    for (i = 0; i < 12; i++) {
        vendor[i] = v[i / 4] >> (8 * (i % 4));
    }
    vendor[12] = 0;
    cpuid(1, 0, r);
    guest_printf("boot: multiboot magic 0x%08x\n", mb_magic);
    guest_printf("cpu: %s family/model/stepping 0x%08x\n", vendor, r[0]);
}

/* Timer: PIT channel 0 in rate generator mode on IRQ 0. */

void arch_timer_start(unsigned hz)
{
    unsigned div = (PIT_HZ + hz / 2) / hz;

    outb(PIT_CMD, 0x34);
    outb(PIT_CH0, div & 0xff);
    outb(PIT_CH0, div >> 8);
    outb(PIC1 + 1, 0xfe);
}

void arch_timer_stop(void)
{
    outb(PIC1 + 1, 0xff);
}

void arch_idle(void)
{
    /* sti's shadow makes sti;hlt atomic: no interrupt is lost between. */
    asm volatile("sti; hlt; cli" : : : "memory");
}

void arch_irq_enable(void)
{
    asm volatile("sti" : : : "memory");
}

void arch_irq_disable(void)
{
    asm volatile("cli" : : : "memory");
}

/* 16 MiB: far past the image, which a system reset writes again */
void *arch_code_page(void)
{
    return (void *)0x1000000;
}

void arch_code_return(void *buf, uint32_t v)
{
    volatile uint8_t *c = buf;

    c[0] = 0xb8;                        /* mov $v, %eax */
    c[1] = v;
    c[2] = v >> 8;
    c[3] = v >> 16;
    c[4] = v >> 24;
    c[5] = 0xc3;                        /* ret */
}

uint64_t arch_counter(void)
{
    uint32_t lo, hi;

    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* Random numbers. */

static bool rdrand(uint32_t *v)
{
    uint8_t ok;
    int i;

    for (i = 0; i < 10; i++) {
        asm volatile("rdrand %0; setc %1" : "=r"(*v), "=qm"(ok));
        if (ok) {
            return true;
        }
    }
    return false;
}

static bool rdseed(uint32_t *v)
{
    uint8_t ok;
    int i;

    for (i = 0; i < 100; i++) {
        asm volatile("rdseed %0; setc %1" : "=r"(*v), "=qm"(ok));
        if (ok) {
            return true;
        }
    }
    return false;
}

void arch_rng(void)
{
    uint32_t r[4], v;
    int i;

    cpuid(1, 0, r);
    if (r[2] & (1u << 30)) {
        guest_printf("rng: rdrand");
        for (i = 0; i < 4; i++) {
            if (rdrand(&v)) {
                guest_printf(" 0x%08x", v);
            } else {
                guest_printf(" (fail)");
            }
        }
        guest_printf("\n");
    } else {
        guest_printf("rng: no rdrand\n");
    }
    cpuid(7, 0, r);
    if (r[1] & (1u << 18)) {
        guest_printf("rng: rdseed");
        for (i = 0; i < 4; i++) {
            if (rdseed(&v)) {
                guest_printf(" 0x%08x", v);
            } else {
                guest_printf(" (fail)");
            }
        }
        guest_printf("\n");
    } else {
        guest_printf("rng: no rdseed\n");
    }
}

/* The CMOS RTC. */

static uint8_t cmos(uint8_t reg)
{
    outb(0x70, reg);
    return inb(0x71);
}

static unsigned from_bcd(uint8_t v, bool bcd)
{
    return bcd ? (v >> 4) * 10 + (v & 15) : v;
}

bool arch_rtc(struct rtc_time *t)
{
    uint8_t b, h;
    bool bcd;

    while (cmos(0x0a) & 0x80) {
        /* an update is in progress */
    }
    b = cmos(0x0b);
    bcd = !(b & 0x04);
    t->sec = from_bcd(cmos(0x00), bcd);
    t->min = from_bcd(cmos(0x02), bcd);
    h = cmos(0x04);
    t->hour = from_bcd(h & 0x7f, bcd);
    if (!(b & 0x02) && (h & 0x80)) {
        t->hour = (t->hour % 12) + 12;
    }
    t->day = from_bcd(cmos(0x07), bcd);
    t->mon = from_bcd(cmos(0x08), bcd);
    t->year = from_bcd(cmos(0x32), bcd) * 100 + from_bcd(cmos(0x09), bcd);
    return true;
}

/*
 * Power off with ACPI: SLP_EN and SLP_TYP 0 (S5 in QEMU's DSDT) in
 * PM1a_CNT.  The PM I/O base is programmed by the firmware (SeaBIOS: 0x600)
 * in the PIIX4 PM function (pc, 00:01.3) or the ICH9 LPC bridge (q35,
 * 00:1f.0); read it back rather than assuming it.
 */
static uint32_t pci_read(unsigned dev, unsigned fn, unsigned off)
{
    outl(0xcf8, 0x80000000u | dev << 11 | fn << 8 | (off & 0xfc));
    return inl(0xcfc);
}

static void pci_write(unsigned dev, unsigned fn, unsigned off, uint32_t v)
{
    outl(0xcf8, 0x80000000u | dev << 11 | fn << 8 | (off & 0xfc));
    outl(0xcfc, v);
}

void arch_poweroff(void)
{
    uint32_t base = 0;

    asm volatile("cli");
    if (pci_read(1, 3, 0) == 0x71138086) {
        /* PIIX4 PM: PMBA at 0x40, enabled by PMREGMISC bit 0 */
        if (!(pci_read(1, 3, 0x80) & 1) || !(pci_read(1, 3, 0x40) & 0xffc0)) {
            pci_write(1, 3, 0x40, 0x601);
            pci_write(1, 3, 0x80, pci_read(1, 3, 0x80) | 1);
        }
        base = pci_read(1, 3, 0x40) & 0xffc0;
    } else if (pci_read(0x1f, 0, 0) == 0x29188086) {
        /* ICH9 LPC: PMBASE at 0x40, enabled by ACPI_CNTL (0x44) bit 7 */
        if (!(pci_read(0x1f, 0, 0x44) & 0x80) ||
            !(pci_read(0x1f, 0, 0x40) & 0xff80)) {
            pci_write(0x1f, 0, 0x40, 0x601);
            pci_write(0x1f, 0, 0x44, pci_read(0x1f, 0, 0x44) | 0x80);
        }
        base = pci_read(0x1f, 0, 0x40) & 0xff80;
    }
    if (base) {
        outw(base + 4, 0x2000);
    }
    for (;;) {
        asm volatile("cli; hlt");
    }
}
