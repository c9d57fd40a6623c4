/*
 * qrr bare-metal x86 input guest (input.elf): the keyboard and the mouse
 * of the pc machine's i8042, for tests/functional/qrr/test_input.py.
 *
 * It sets up the controller (both ports on, IRQ 1 and IRQ 12, scan codes
 * translated to set 1) and the mouse (defaults, streaming), prints
 * "QRR-INPUT ready", then polls the controller's status with interrupts
 * on (the PIT at 1 kHz, IRQ 1 and IRQ 12 land anywhere in the loop) and
 * prints each keyboard byte as it comes and the mouse's bytes as 3-byte
 * packets, each with the timer tick and the number of polls it was read
 * at, so that a byte delivered one poll early or late shows.  Polling
 * rather than sleeping in hlt also makes a replay run about as fast as
 * the recording, so a test has time to inject input into it.  The
 * release of Escape (0x81), or INPUT_TICKS without it, ends the run.
 * Like guest.c it is deterministic by itself: what it prints, and when,
 * comes only from the input that QEMU was given, which record/replay
 * must log.
 *
 * Copyright (c) 2026 The qrr authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "guest.h"
#include "io.h"

#define I8042_DATA      0x60
#define I8042_CMD       0x64    /* write: command; read: status */
#define ST_OBF          0x01    /* a byte to read at I8042_DATA */
#define ST_IBF          0x02    /* the controller has not taken our byte */
#define ST_AUX          0x20    /* the byte to read is the mouse's */
#define PIC1_DATA       0x21
#define PIC2_DATA       0xa1
#define KEY_ESC_UP      0x81    /* set 1 */
#define INPUT_TICKS     30000   /* 30 s at most */
#define POLL_LOOPS      1000000

/* Written by the timer interrupt handler (x86/arch.c). */
volatile uint32_t timer_ticks;

static void wait_write(void)
{
    unsigned i;

    for (i = 0; i < POLL_LOOPS && (inb(I8042_CMD) & ST_IBF); i++) {
        /* the controller is still busy with the last byte */
    }
}

static void ctl_cmd(uint8_t c)
{
    wait_write();
    outb(I8042_CMD, c);
}

static void ctl_data(uint8_t v)
{
    wait_write();
    outb(I8042_DATA, v);
}

/* The next byte from the controller (polled), or -1. */
static int ctl_read(void)
{
    unsigned i;

    for (i = 0; i < POLL_LOOPS; i++) {
        if (inb(I8042_CMD) & ST_OBF) {
            return inb(I8042_DATA);
        }
    }
    return -1;
}

/* Send @v to the mouse and return its answer (0xfa: acknowledged). */
static int mouse_cmd(uint8_t v)
{
    ctl_cmd(0xd4);              /* the next data byte goes to the mouse */
    ctl_data(v);
    return ctl_read();
}

static void i8042_init(void)
{
    int config, kbd_ack, defaults_ack, enable_ack;

    ctl_cmd(0xad);              /* keyboard port off */
    ctl_cmd(0xa7);              /* mouse port off */
    while (inb(I8042_CMD) & ST_OBF) {
        inb(I8042_DATA);        /* whatever the firmware left */
    }
    ctl_cmd(0x20);
    config = ctl_read();
    /* IRQ 1 and IRQ 12, system flag, set 1 translation; both clocks on */
    ctl_cmd(0x60);
    ctl_data(0x47);
    ctl_cmd(0xae);
    ctl_cmd(0xa8);
    ctl_data(0xf4);             /* keyboard: scanning on */
    kbd_ack = ctl_read();
    defaults_ack = mouse_cmd(0xf6);
    enable_ack = mouse_cmd(0xf4);   /* stream mode, reporting on */
    guest_printf("i8042: firmware config 0x%02x, keyboard ack 0x%02x, "
                 "mouse acks 0x%02x 0x%02x\n", config & 0xff, kbd_ack & 0xff,
                 defaults_ack & 0xff, enable_ack & 0xff);
}

static int sign9(uint8_t v, bool neg)
{
    return neg ? (int)v - 256 : v;
}

void guest_main(void)
{
    uint32_t t0, polls = 0, keys = 0, packets = 0, lost = 0;
    uint8_t pkt[3];
    unsigned npkt = 0;
    bool done = false;

    arch_init();
    put_str("QRR-GUEST begin\n");
    guest_printf("qrr bare-metal input guest (%s, i8042)\n", arch_name);
    i8042_init();

    arch_timer_start(TIMER_HZ);
    outb(PIC1_DATA, 0xf8);      /* IRQ 0, 1 and 2 (the cascade) */
    outb(PIC2_DATA, 0xef);      /* IRQ 12 */
    t0 = timer_ticks;
    guest_printf("QRR-INPUT ready\n");
    arch_irq_enable();
    while (!done && timer_ticks - t0 < INPUT_TICKS) {
        uint8_t st = inb(I8042_CMD), b;

        polls++;
        if (!(st & ST_OBF)) {
            continue;
        }
        b = inb(I8042_DATA);
        if (!(st & ST_AUX)) {
            keys++;
            guest_printf("key: 0x%02x at tick %u poll %u\n", b,
                         timer_ticks - t0, polls);
            done = b == KEY_ESC_UP;
            continue;
        }
        if (npkt == 0 && !(b & 0x08)) {
            lost++;                     /* not a packet's first byte */
            continue;
        }
        pkt[npkt++] = b;
        if (npkt == 3) {
            npkt = 0;
            packets++;
            guest_printf("mouse: buttons %c%c%c dx %d dy %d at tick %u "
                         "poll %u\n", pkt[0] & 1 ? 'L' : '-',
                         pkt[0] & 4 ? 'M' : '-', pkt[0] & 2 ? 'R' : '-',
                         sign9(pkt[1], pkt[0] & 0x10),
                         sign9(pkt[2], pkt[0] & 0x20), timer_ticks - t0,
                         polls);
        }
    }
    arch_irq_disable();
    arch_timer_stop();
    outb(PIC2_DATA, 0xff);
    guest_printf("input: %u key bytes, %u mouse packets, %u stray bytes, "
                 "%u polls, %s after %u ticks\n", keys, packets, lost, polls,
                 done ? "escape" : "timed out", timer_ticks - t0);
    guest_printf("checksum: 0x%08x\n", console_checksum());
    put_str("QRR-GUEST end\n");
    arch_poweroff();
}
