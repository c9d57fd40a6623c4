/*
 * qrr: the vCPU schedule of a multi-vCPU machine
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * With -icount, TCG runs every vCPU of the machine in one thread, in turn
 * (round-robin).  The instructions that one vCPU executes are a function
 * of the machine's state, but which vCPU runs, and for how long, is not:
 * a slice ends at a host-timed deadline, or early when another thread
 * kicks the vCPU thread (a device interrupt, the monitor, gdb).  On a
 * machine with one vCPU that only moves the points where the vCPU thread
 * pauses; with several, it decides which vCPU executes the next
 * instruction, so it must be recorded.
 *
 * What is recorded: a SCHED event (arg0: the cpu_index of the vCPU) at
 * each point where the vCPU thread starts running a vCPU other than the
 * one that ran last.  The first vCPU (cpu_index 0) runs first, so a
 * machine with one vCPU never records one.  Nothing else is needed:
 *
 *  - how long a vCPU runs is the icount of the next SCHED event;
 *  - a halted vCPU without work executes nothing, so the vCPU thread's
 *    visits to it are not recorded (it is not run in record either);
 *  - interrupts, exceptions, IPIs and timers stay events of their own, at
 *    the instruction count where the vCPU that took them was.
 *
 * Replay gives the vCPU that ran last its turn until the log's next event
 * is a SCHED due now, and then gives the turn only to the vCPU that the
 * SCHED names.  Because SCHED is an ordered event, a switch also happens
 * at the same place among the other events at that instruction count (a
 * timer checkpoint of the main loop, an interrupt raised for the vCPU
 * switched to) as in the recording.
 *
 * Chaos mode (record only, -icount rrchaos=SEED): slices are cut at
 * random lengths and vCPUs are passed over at random, with a PRNG seeded
 * by SEED, so that races between vCPUs take other outcomes from one
 * recording to the next.  The schedule that results is recorded as any
 * other, so a chaos recording replays like a plain one; the seed is kept
 * in the log's fingerprint ("chaos=") to tell such recordings apart.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/cutils.h"
#include "qemu/option.h"
#include "qemu/main-loop.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "system/replay.h"
#include "system/cpus.h"
#include "replay-core.h"
#include "trace.h"

/* Longest chaos slice: 2^CHAOS_MAX_SHIFT instructions. */
#define CHAOS_MAX_SHIFT 16

static uint64_t chaos_state;        /* xorshift64*; 0: chaos off */
static uint64_t chaos_seed;

void replay_sched_configure(QemuOpts *opts)
{
    const char *s = opts ? qemu_opt_get(opts, "rrchaos") : NULL;

    if (!s) {
        return;
    }
    if (qemu_strtou64(s, NULL, 0, &chaos_seed)) {
        error_report("-icount rrchaos=%s: expected a number (the seed)", s);
        exit(1);
    }
    /* a zero seed would leave xorshift at zero for ever */
    chaos_state = chaos_seed ^ 0x9e3779b97f4a7c15ULL;
    if (!chaos_state) {
        chaos_state = 1;
    }
}

bool replay_sched_chaos(uint64_t *seed)
{
    *seed = chaos_seed;
    return chaos_state != 0;
}

static uint64_t chaos_next(void)
{
    chaos_state ^= chaos_state >> 12;
    chaos_state ^= chaos_state << 25;
    chaos_state ^= chaos_state >> 27;
    return chaos_state * 0x2545f4914f6cdd1dULL;
}

bool replay_sched_check(Error **errp)
{
    MachineState *ms = current_machine;

    if (ms->smp.cpus > REPLAY_MAX_VCPUS) {
        error_setg(errp, "record/replay supports at most %d vCPUs (-smp %u)",
                   REPLAY_MAX_VCPUS, ms->smp.cpus);
        return false;
    }
    if (ms->smp.max_cpus > ms->smp.cpus) {
        error_setg(errp, "record/replay does not support vCPU hotplug "
                   "(-smp maxcpus=%u is more than cpus=%u)",
                   ms->smp.max_cpus, ms->smp.cpus);
        return false;
    }
    if (chaos_state && replay_mode != REPLAY_MODE_RECORD) {
        error_setg(errp, "-icount rrchaos= is for recording: a replay "
                   "takes its schedule from the log");
        return false;
    }
    return true;
}

/* The vCPU whose turn it is, at the start of a slice. */
static void sched_begin(CPUState *cpu)
{
    replay_state.sched_slice_start = replay_icount();
    trace_replay_sched_slice(cpu->cpu_index, replay_state.sched_slice_start);
}

static bool record_turn(CPUState *cpu, int64_t *cap)
{
    if (chaos_state) {
        /* pass over a vCPU at random: another one may run first */
        if ((chaos_next() & 3) == 0) {
            return false;
        }
        *cap = 1 + (chaos_next() & ((1u << (chaos_next() %
                                            (CHAOS_MAX_SHIFT + 1))) - 1));
    }
    if (cpu->cpu_index == replay_state.sched_vcpu) {
        sched_begin(cpu);
        return true;
    }
    if (cpu->halted && !cpu_has_work(cpu)) {
        /* it would execute nothing: no switch */
        return false;
    }
    replay_record(REPLAY_EV_SCHED, replay_icount(), cpu->cpu_index, 0,
                  NULL, 0);
    replay_state.sched_vcpu = cpu->cpu_index;
    sched_begin(cpu);
    return true;
}

static bool replay_turn(CPUState *cpu)
{
    ReplayEvent *h = replay_head_peek();
    bool due;

    if (!h) {
        return true;            /* no log left to follow: finished */
    }
    /* the decoder checked the argument against REPLAY_MAX_VCPUS */
    due = h->kind == REPLAY_EV_SCHED && h->icount == replay_icount();
    if (due && (!qemu_get_cpu(h->arg[0]) ||
                h->arg[0] == replay_state.sched_vcpu)) {
        replay_fatal("record/replay: the log's vCPU switch at icount %"
                     PRIu64 " names vCPU %" PRId64 ", which %s",
                     h->icount, h->arg[0],
                     h->arg[0] == replay_state.sched_vcpu
                        ? "is already running" : "this machine lacks");
    }
    if (cpu->cpu_index == replay_state.sched_vcpu) {
        if (due) {
            return false;
        }
        sched_begin(cpu);
        return true;
    }
    if (!due || h->arg[0] != cpu->cpu_index ||
        !replay_head_is(REPLAY_EV_SCHED)) {
        return false;
    }
    replay_consume();
    replay_state.sched_vcpu = cpu->cpu_index;
    sched_begin(cpu);
    return true;
}

bool replay_vcpu_turn(CPUState *cpu, int64_t *cap)
{
    *cap = INT64_MAX;
    switch (replay_mode) {
    case REPLAY_MODE_RECORD:
        return record_turn(cpu, cap);
    case REPLAY_MODE_PLAY:
        return replay_turn(cpu);
    default:
        return true;
    }
}

int replay_vcpu_next(void)
{
    ReplayEvent *h;

    if (replay_mode != REPLAY_MODE_PLAY) {
        return -1;
    }
    h = replay_head_peek();
    if (h && h->kind == REPLAY_EV_SCHED && h->icount == replay_icount() &&
        qemu_get_cpu(h->arg[0])) {
        return h->arg[0];
    }
    return replay_state.sched_vcpu;
}

/* The vCPU's slice ended: count what it executed. */
void replay_sched_slice_end(void)
{
    CPUState *cpu = current_cpu;
    uint64_t now = replay_icount();

    if (!cpu || cpu->cpu_index >= REPLAY_MAX_VCPUS ||
        cpu->cpu_index != replay_state.sched_vcpu ||
        now < replay_state.sched_slice_start) {
        return;
    }
    if (now > replay_state.sched_slice_start) {
        replay_state.vcpu_icount[cpu->cpu_index] +=
            now - replay_state.sched_slice_start;
        replay_state.vcpu_last_insn[cpu->cpu_index] = now;
    }
    replay_state.sched_slice_start = now;
}

uint64_t replay_vcpu_last_insn(int cpu_index)
{
    if (cpu_index < 0 || cpu_index >= REPLAY_MAX_VCPUS) {
        return 0;
    }
    if (cpu_index == replay_state.sched_vcpu &&
        replay_icount() > replay_state.sched_slice_start) {
        return replay_icount();
    }
    return replay_state.vcpu_last_insn[cpu_index];
}

uint64_t replay_vcpu_icount(int cpu_index)
{
    uint64_t n;

    if (cpu_index < 0 || cpu_index >= REPLAY_MAX_VCPUS) {
        return 0;
    }
    n = replay_state.vcpu_icount[cpu_index];
    if (cpu_index == replay_state.sched_vcpu &&
        replay_icount() > replay_state.sched_slice_start) {
        n += replay_icount() - replay_state.sched_slice_start;
    }
    return n;
}
