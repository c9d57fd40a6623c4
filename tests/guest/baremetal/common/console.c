/*
 * qrr bare-metal guests: console output (put_char, a small printf, the
 * panic path), shared by the test guest (guest.c) and the benchmark guest
 * (bench.c).
 *
 * Copyright (c) 2026 The qrr authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "guest.h"

/* FNV-1a over every byte printed since the begin marker. */
static uint32_t checksum = 0x811c9dc5;

void put_char(char c)
{
    checksum = (checksum ^ (uint8_t)c) * 0x01000193;
    arch_putc(c);
}

void put_str(const char *s)
{
    while (*s) {
        put_char(*s++);
    }
}

static void put_num(uint64_t v, unsigned base, int width, char pad, bool neg)
{
    char buf[24];
    int n = 0;

    /* Decimal is only used with 32-bit values: no 64-bit division. */
    do {
        unsigned d;
        if (base == 16) {
            d = v & 15;
            v >>= 4;
        } else {
            d = (uint32_t)v % 10;
            v = (uint32_t)v / 10;
        }
        buf[n++] = "0123456789abcdef"[d];
    } while (v);
    if (neg) {
        buf[n++] = '-';
    }
    while (n < width) {
        put_char(pad);
        width--;
    }
    while (n) {
        put_char(buf[--n]);
    }
}

/* %s %c %d %u %x, widths, '0' padding, 'l' and 'll' for hex. */
static void guest_vprintf(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        int width = 0, longs = 0;
        char pad = ' ';

        if (*fmt != '%') {
            put_char(*fmt);
            continue;
        }
        fmt++;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + *fmt++ - '0';
        }
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }
        switch (*fmt) {
        case 's':
            put_str(va_arg(ap, const char *));
            break;
        case 'c':
            put_char(va_arg(ap, int));
            break;
        case 'd': {
            int v = va_arg(ap, int);
            put_num(v < 0 ? -(unsigned)v : (unsigned)v, 10, width, pad, v < 0);
            break;
        }
        case 'u':
            put_num(va_arg(ap, unsigned), 10, width, pad, false);
            break;
        case 'x':
            if (longs >= 2) {
                put_num(va_arg(ap, unsigned long long), 16, width, pad, false);
            } else if (longs == 1) {
                put_num(va_arg(ap, unsigned long), 16, width, pad, false);
            } else {
                put_num(va_arg(ap, unsigned), 16, width, pad, false);
            }
            break;
        case '%':
            put_char('%');
            break;
        default:
            put_char('?');
            break;
        }
    }
}

void guest_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    guest_vprintf(fmt, ap);
    va_end(ap);
}

void guest_panic(const char *fmt, ...)
{
    va_list ap;

    arch_irq_disable();
    put_str("FAIL: ");
    va_start(ap, fmt);
    guest_vprintf(fmt, ap);
    va_end(ap);
    put_str("\n");
    arch_poweroff();
}

uint32_t console_checksum(void)
{
    return checksum;
}
