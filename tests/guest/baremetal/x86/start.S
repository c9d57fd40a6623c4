/*
 * qrr bare-metal x86 guest: multiboot (v1) header, entry, interrupt stubs.
 *
 * Copyright (c) 2026 The qrr authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define MB_MAGIC    0x1badb002
#define MB_FLAGS    0x00000000

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .text
    .globl _start
_start:
    /* The loader left us in flat 32-bit protected mode, paging off. */
    cli
    cld
    movl $stack_top, %esp
    movl %eax, mb_magic
    /* Zero .bss (mb_magic is in .data). */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb
    call guest_main
1:  cli
    hlt
    jmp 1b

/*
 * Interrupt and exception entry: push a zero error code where the CPU
 * does not, then the vector, then the registers (struct frame in arch.c).
 */
.macro isr_noerr n
isr\n:
    pushl $0
    pushl $\n
    jmp isr_common
.endm
.macro isr_err n
isr\n:
    pushl $\n
    jmp isr_common
.endm

    .balign 16
isr_common:
    pushal
    pushl %esp
    call isr_handler
    addl $4, %esp
    popal
    addl $8, %esp
    iretl

isr_noerr 0
isr_noerr 1
isr_noerr 2
isr_noerr 3
isr_noerr 4
isr_noerr 5
isr_noerr 6
isr_noerr 7
isr_err   8
isr_noerr 9
isr_err   10
isr_err   11
isr_err   12
isr_err   13
isr_err   14
isr_noerr 15
isr_noerr 16
isr_err   17
isr_noerr 18
isr_noerr 19
isr_noerr 20
isr_err   21
isr_noerr 22
isr_noerr 23
isr_noerr 24
isr_noerr 25
isr_noerr 26
isr_noerr 27
isr_noerr 28
isr_err   29
isr_err   30
isr_noerr 31
.irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
isr_noerr \n
.endr

    .section .rodata
    .balign 4
    .globl isr_table
isr_table:
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .long isr\n
.endr
.irp n, 16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .long isr\n
.endr
.irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    .long isr\n
.endr

    .data
    .globl mb_magic
mb_magic:
    .long 0

    .bss
    .balign 16
    .skip 16384
stack_top:

    .section .note.GNU-stack, "", @progbits
