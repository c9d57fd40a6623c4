/*
 * qrr bare-metal AArch64 guest: entry and exception vectors.
 *
 * Copyright (c) 2026 The qrr authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

    .text
    .globl _start
_start:
    /* QEMU enters here at EL1 (virt without EL2/EL3), MMU and caches off. */
    msr daifset, #0xf
    ldr x0, =stack_top
    mov sp, x0
    ldr x0, =__bss_start
    ldr x1, =__bss_end
1:  cmp x0, x1
    b.hs 2f
    str xzr, [x0], #8
    b 1b
2:  ldr x0, =vectors
    msr vbar_el1, x0
    isb
    bl guest_main
3:  wfi
    b 3b

/*
 * Each vector saves x0/x1, puts its number (0-15) in x1 and joins
 * exc_common, which saves the rest as struct frame (arch.c) and calls
 * exc_handler(frame, kind).  The handler may change the saved ELR.
 */
.macro ventry kind
    .balign 0x80
    sub sp, sp, #272
    stp x0, x1, [sp, #0]
    mov x1, #\kind
    b exc_common
.endm

    .balign 0x800
    .globl vectors
vectors:
.irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    ventry \k
.endr

exc_common:
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    mrs x2, elr_el1
    mrs x3, spsr_el1
    stp x30, x2, [sp, #240]
    mrs x4, esr_el1
    stp x3, x4, [sp, #256]
    mov x0, sp
    bl exc_handler
    ldp x30, x2, [sp, #240]
    ldr x3, [sp, #256]
    msr elr_el1, x2
    msr spsr_el1, x3
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    ldp x0, x1, [sp, #0]
    add sp, sp, #272
    eret

    .bss
    .balign 16
    .skip 16384
stack_top:

    .section .note.GNU-stack, "", @progbits
