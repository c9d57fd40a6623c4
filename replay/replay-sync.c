/*
 * qrr: divergence detection with CPU state sync points
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every rrsync=N-th interrupt or exception taken by the vCPU is a sync
 * point.  Record logs a SYNC value event there holding the vCPU's core
 * registers as gdb reads them (gdb's register numbering and byte order;
 * on a machine with several vCPUs, those of every vCPU, one after the
 * other in cpu_index order, so a divergence of any vCPU is seen),
 * XORed with those of the previous sync point so that unchanged registers
 * are zero bytes and compress away (the first sync point XORs with zeros);
 * replay compares its own registers at the same sync point.  A replay that
 * reaches a sync point the recording does not have, or whose registers
 * differ, stops at once with an error naming the instruction count, the
 * registers that differ (recorded vs replayed) and the next event the log
 * expected.  N is taken from the log in replay (fingerprint line "sync=");
 * 0 disables sync points.
 *
 * The emulator has no test hook: the functional tests perturb a replay
 * from outside, as a user can (gdb stops it with the monitor's
 * replay_break and changes a register, see docs/devel/replay.rst).
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/option.h"
#include "hw/core/cpu.h"
#include "system/replay.h"
#include "replay-core.h"
#include "trace.h"

#define DEFAULT_SYNC_INTERVAL 64
#define MAX_REPORTED_REGS 4

/* The registers at the previous sync point (record and replay). */
static GByteArray *prev_regs;

/* @regs XOR the previous sync point's registers, in place; then remember. */
static void xor_prev(uint8_t *data, GByteArray *regs)
{
    guint i;

    for (i = 0; prev_regs && i < regs->len && i < prev_regs->len; i++) {
        data[i] ^= prev_regs->data[i];
    }
    if (prev_regs) {
        g_byte_array_unref(prev_regs);
    }
    prev_regs = g_byte_array_ref(regs);
}

/* The previous sync point's registers, for a time-travel snapshot. */
GByteArray *replay_sync_save(void)
{
    return prev_regs ? g_byte_array_ref(prev_regs) : NULL;
}

void replay_sync_restore(GByteArray *regs)
{
    if (prev_regs) {
        g_byte_array_unref(prev_regs);
    }
    prev_regs = regs ? g_byte_array_ref(regs) : NULL;
}

void replay_sync_configure(QemuOpts *opts)
{
    replay_state.sync_interval = qemu_opt_get_number(opts, "rrsync",
                                                     DEFAULT_SYNC_INTERVAL);
}

/* Replay: sync points are where the recording put them. */
void replay_sync_from_log(void)
{
    g_autofree char *v = replay_fingerprint_value(
        replay_log_fingerprint(replay_state.reader), "sync");
    uint64_t n;

    replay_state.sync_interval = 0;
    if (v && !qemu_strtou64(v, NULL, 10, &n)) {
        replay_state.sync_interval = n;
    }
}

/*
 * Bits that are emulator bookkeeping rather than guest state: x86's
 * EFLAGS.RF is set when a fault is delivered and cleared at the start of
 * the next translation block, so its value at an exception depends on
 * where TCG happened to split blocks.  Such bits are cleared before
 * registers are logged or compared.
 */
static void mask_bookkeeping(int reg, uint8_t *p, int n)
{
    static int eflags = -2;

    if (eflags == -2) {
        eflags = !strcmp(target_name(), "x86_64") ? 17 :
                 !strcmp(target_name(), "i386") ? 9 : -1;
    }
    if (reg == eflags && n >= 3) {
        p[2] &= ~1;             /* RF, bit 16 */
    }
}

/* Append the core registers of @cpu; @sizes gets each size. */
static void read_cpu_regs(CPUState *cpu, GByteArray *buf, GArray *sizes)
{
    CPUClass *cc = CPU_GET_CLASS(cpu);
    int r, n;

    for (r = 0; r < cpu->gdb_num_g_regs; r++) {
        guint at = buf->len;

        n = cc->gdb_read_register(cpu, buf, r);
        mask_bookkeeping(r, buf->data + at, n);
        if (sizes) {
            g_array_append_val(sizes, n);
        }
    }
}

/*
 * The core registers of every vCPU, one after the other in cpu_index
 * order (all vCPUs of a machine have the same registers).
 */
static GByteArray *read_regs(GArray *sizes)
{
    GByteArray *buf = g_byte_array_new();
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        read_cpu_regs(cpu, buf, sizes);
    }
    return buf;
}

/* "register R" on a machine with one vCPU, "vCPU K register R" else. */
static void append_reg_name(GString *s, unsigned r)
{
    unsigned nregs = first_cpu->gdb_num_g_regs;

    if (CPU_NEXT(first_cpu) && nregs) {
        g_string_append_printf(s, "vCPU %u register %u", r / nregs,
                               r % nregs);
    } else {
        g_string_append_printf(s, "register %u", r);
    }
}

static void append_hex(GString *s, const uint8_t *p, int n)
{
    int i;

    /* gdb's target byte order; little-endian on our targets */
    g_string_append(s, "0x");
    for (i = n - 1; i >= 0; i--) {
        g_string_append_printf(s, "%02x", p[i]);
    }
}

static G_NORETURN void report_mismatch(uint64_t seq, const ReplayEvent *ev,
                                       GByteArray *now, GArray *sizes)
{
    g_autoptr(GString) s = g_string_new(NULL);
    ReplayEvent *next = replay_head_peek();
    unsigned off = 0, ndiff = 0, r;

    for (r = 0; r < sizes->len; r++) {
        int n = g_array_index(sizes, int, r);

        if (off + n <= ev->len && off + n <= now->len &&
            memcmp(ev->data + off, now->data + off, n)) {
            if (ndiff < MAX_REPORTED_REGS) {
                g_string_append(s, ndiff ? ", " : "");
                append_reg_name(s, r);
                g_string_append(s, ": recorded ");
                append_hex(s, ev->data + off, n);
                g_string_append(s, " replayed ");
                append_hex(s, now->data + off, n);
            }
            ndiff++;
        }
        off += n;
    }
    if (ev->len != now->len) {
        g_string_append_printf(s, "%sregister block size: recorded %u, "
                               "replayed %u", ndiff ? ", " : "", ev->len,
                               now->len);
    } else if (ndiff > MAX_REPORTED_REGS) {
        g_string_append_printf(s, " and %u more", ndiff - MAX_REPORTED_REGS);
    }
    replay_fatal("record/replay: replay diverged at icount %" PRIu64
                 " (sync point %" PRIu64 " on vCPU %d, after %s): %s; the "
                 "log's next event is %s at icount %" PRIu64
                 " (gdb register numbers)",
                 ev->icount, seq, current_cpu ? current_cpu->cpu_index : 0,
                 replay_state.last_kind_name, s->str,
                 next ? replay_event_name(next->kind) : "none",
                 next ? next->icount : 0);
}

static void sync_check(uint64_t seq)
{
    uint64_t now = replay_icount();
    g_autoptr(GArray) sizes = g_array_new(false, false, sizeof(int));
    g_autoptr(GByteArray) regs = read_regs(sizes);
    g_autoptr(GByteArray) prev = prev_regs ? g_byte_array_ref(prev_regs)
                                           : NULL;
    ReplayEvent *ev = replay_value_take(REPLAY_CH_SYNC, now);
    guint i;

    if (!ev) {
        replay_fatal("record/replay: replay diverged at icount %" PRIu64
                     ": it reached sync point %" PRIu64 " (after %s) where "
                     "the recording has none", now, seq,
                     replay_state.last_kind_name);
    }
    for (i = 0; prev && i < ev->len && i < prev->len; i++) {
        ev->data[i] ^= prev->data[i];      /* the recorded registers */
    }
    if (prev_regs) {
        g_byte_array_unref(prev_regs);
    }
    prev_regs = g_byte_array_ref(regs);
    if (ev->arg[0] != seq || ev->len != regs->len ||
        memcmp(ev->data, regs->data, regs->len)) {
        if (ev->arg[0] != seq) {
            replay_fatal("record/replay: replay diverged at icount %" PRIu64
                         ": it is at sync point %" PRIu64 ", the recording "
                         "was at sync point %" PRId64, now, seq, ev->arg[0]);
        }
        report_mismatch(seq, ev, regs, sizes);
    }
    trace_replay_sync(seq, now);
    replay_value_free(ev);
}

/* Called by the vCPU right after an interrupt or exception event. */
void replay_sync_point(void)
{
    CPUState *cpu = current_cpu;
    uint64_t seq;

    if (!cpu || !replay_state.started) {
        return;
    }
    seq = replay_state.vcpu_events++;
    if (!replay_state.sync_interval || seq % replay_state.sync_interval) {
        return;
    }
    if (replay_mode == REPLAY_MODE_RECORD) {
        g_autoptr(GByteArray) regs = read_regs(NULL);
        g_autofree uint8_t *data = g_memdup2(regs->data, regs->len);

        xor_prev(data, regs);
        replay_record(REPLAY_EV_SYNC, replay_icount(), seq, 0, data,
                      regs->len);
    } else if (replay_mode == REPLAY_MODE_PLAY) {
        sync_check(seq);
    }
}
