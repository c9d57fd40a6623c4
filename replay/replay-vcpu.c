/*
 * qrr: the vCPU's budget and its events: slices, interrupts, exceptions,
 * stops
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "system/replay.h"
#include "system/runstate.h"
#include "system/cpus.h"
#include "hw/core/cpu.h"
#include "replay-core.h"
#include "trace.h"

/* How long a replay may make no progress before it is declared stuck. */
#define REPLAY_STALL_MS 20000
#define REPLAY_TIMER_STALL_MS 1000

/*
 * The recording ran a guest timer at @icount (the head is a CLOCK_VIRTUAL
 * checkpoint there), but none is due in the replay, so nothing will ever
 * consume it: the guest has diverged (it programmed its timers otherwise).
 */
static void replay_check_timer_due(uint64_t icount)
{
    ReplayEvent *h = replay_head();
    g_autofree char *replayed = NULL;
    int64_t deadline;

    if (h->kind != REPLAY_EV_CHECKPOINT || h->icount != icount ||
        h->arg[0] != CHECKPOINT_CLOCK_VIRTUAL) {
        return;
    }
    if (first_cpu && (first_cpu->singlestep_enabled & SSTEP_NOTIMER)) {
        return;                 /* the clock is off while gdb steps */
    }
    deadline = qemu_clock_deadline_ns_all(QEMU_CLOCK_VIRTUAL, 0);
    if (deadline == 0) {
        return;
    }
    replayed = deadline < 0
        ? g_strdup("no guest timer pending")
        : g_strdup_printf("its next guest timer due in %" PRId64 " ns",
                          deadline);
    replay_fatal("record/replay: replay diverged at icount %" PRIu64
                 " (after %s): the recording ran a guest timer here, the "
                 "replay has %s", icount, replay_state.last_kind_name,
                 replayed);
}

static void replay_check_stall(void)
{
    static uint64_t last_consumed = UINT64_MAX, last_icount;
    static int64_t since;
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    uint64_t icount = replay_icount();
    ReplayEvent *h;

    /* progress is an event consumed or an instruction executed */
    if (replay_state.consumed != last_consumed || icount != last_icount ||
        !runstate_is_running()) {
        last_consumed = replay_state.consumed;
        last_icount = icount;
        since = now;
        return;
    }
    if (now - since >= REPLAY_TIMER_STALL_MS) {
        /* not at once: the main loop may be about to arm a timer */
        replay_check_timer_due(icount);
    }
    if (now - since < REPLAY_STALL_MS) {
        return;
    }
    h = replay_head();
    replay_fatal("record/replay: replay stuck at icount %" PRIu64 ": the "
                 "log's next event is %s (argument %" PRId64 ") at icount %"
                 PRIu64 " and nothing consumed it for %d s; the replay has "
                 "diverged from the recording", icount,
                 replay_event_name(h->kind), h->arg[0], h->icount,
                 REPLAY_STALL_MS / 1000);
}

int replay_get_instructions(void)
{
    uint64_t now, target;
    ReplayEvent *h;

    if (replay_mode != REPLAY_MODE_PLAY || replay_state.finished) {
        return 0;
    }
    replay_tt_vcpu_work();
    if (replay_break_reached()) {
        /* frozen: wait for the stop to be handled */
        if (!bql_locked()) {
            replay_wait_progress(10);
        }
        return 0;
    }
    if (!bql_locked()) {
        /* the first snapshot is taken before the first instruction */
        replay_tt_slice_end();
    }
    now = replay_icount();
    h = replay_head();
    if (h->icount < now) {
        replay_fatal("record/replay: replay diverged: the vCPU reached icount "
                     "%" PRIu64 " but the log's next event (%s) is at icount "
                     "%" PRIu64, now, replay_event_name(h->kind), h->icount);
    }
    target = h->icount;
    if (replay_state.break_icount >= 0 &&
        (uint64_t)replay_state.break_icount >= now) {
        target = MIN(target, (uint64_t)replay_state.break_icount);
    }
    if (target > now) {
        trace_replay_budget(now, target);
        replay_state.slice_icount = now;
        replay_set_vcpu_in_slice(true);
        return MIN(target - now, INT32_MAX);
    }
    if (h->kind == REPLAY_EV_EXCEPTION && h->icount == target) {
        /*
         * A faulting instruction is not counted: the exception recorded
         * at @now is raised by executing the next instruction, which must
         * be allowed to start.  If it completes instead, the vCPU passes
         * the event and the divergence is reported above.  (An exception
         * raised already, by an instruction counted, waited for its turn
         * and starts nothing.)
         */
        if (!current_cpu || current_cpu->exception_index < 0) {
            replay_state.slice_icount = now;
        }
        replay_set_vcpu_in_slice(true);
        return 1;
    }
    replay_check_stall();
    if (replay_head_wants_main_loop(h) && !bql_locked()) {
        qemu_notify_event();
        replay_wait_progress(10);
    }
    return 0;
}

/*
 * At the break position: stop the machine there, or let time travel take
 * its next step.  Called by the vCPU after each slice and by the main
 * loop (a halted vCPU runs no slices).
 */
bool replay_break_notify(void)
{
    if (!replay_break_reached()) {
        return false;
    }
    if (!replay_state.break_notified && !replay_tt_restore_pending()) {
        replay_state.break_notified = true;
        if (!replay_tt_break_reached()) {
            qemu_system_vmstop_request_prepare();
            qemu_system_vmstop_request(replay_state.break_runstate);
        }
    }
    return true;
}

void replay_account_executed_instructions(void)
{
    replay_set_vcpu_in_slice(false);
    if (replay_mode != REPLAY_MODE_NONE) {
        replay_sched_slice_end();
    }
    if (replay_mode != REPLAY_MODE_PLAY || replay_state.finished) {
        return;
    }
    if (replay_break_notify()) {
        return;
    }
    replay_tt_slice_end();
    replay_wake_consumer();
}

/* A stop at the break position ends it. */
static void replay_vm_state_change(void *opaque, bool running,
                                   RunState state)
{
    if (running) {
        return;
    }
    replay_tt_arm();
    if (replay_tt_stopped() || replay_state.frozen) {
        replay_state.break_icount = -1;
        replay_state.frozen = false;
    }
    replay_state.break_notified = false;
}

/* ---- the vCPU's ordered events ---- */

static bool replay_sync_event(ReplayEventKind kind)
{
    switch (replay_mode) {
    case REPLAY_MODE_RECORD:
        replay_record(kind, replay_icount(), 0, 0, NULL, 0);
        return true;
    case REPLAY_MODE_PLAY:
        if (!replay_head_is(kind)) {
            return false;
        }
        replay_consume();
        return true;
    default:
        return true;
    }
}

/*
 * The vCPU took an interrupt or an exception: at the break position, it
 * must execute nothing more in this slice.  (A slice at a fault has the
 * budget of the faulting instruction, which it did not execute: the
 * handler's first instruction would run with it, past the break.)
 */
static void replay_vcpu_event_taken(void)
{
    replay_sync_point();
    if (current_cpu && replay_break_reached()) {
        cpu_exit(current_cpu);
    }
}

bool replay_exception(void)
{
    ReplayEvent *h;

    if (!replay_sync_event(REPLAY_EV_EXCEPTION)) {
        /*
         * The vCPU raised an exception here.  If the log has nothing more
         * at this icount, the recording raised none: report it now rather
         * than let the vCPU retry it until the watchdog fires.
         */
        h = replay_head_peek();
        if (h && h->icount > replay_icount()) {
            CPUState *cpu = current_cpu;

            replay_fatal("record/replay: replay diverged at icount %" PRIu64
                         " (after %s): vCPU %d raised exception %d at pc "
                         "0x%" PRIx64 ", which the recording does not "
                         "have; the log's next event is %s at icount %"
                         PRIu64, replay_icount(),
                         replay_state.last_kind_name, cpu->cpu_index,
                         cpu->exception_index, (uint64_t)cpu->cc->get_pc(cpu),
                         replay_event_name(h->kind), h->icount);
        }
        return false;
    }
    replay_vcpu_event_taken();
    return true;
}

bool replay_has_exception(void)
{
    return replay_head_is(REPLAY_EV_EXCEPTION) != NULL;
}

bool replay_interrupt(void)
{
    if (!replay_sync_event(REPLAY_EV_INTERRUPT)) {
        return false;
    }
    replay_vcpu_event_taken();
    return true;
}

bool replay_has_interrupt(void)
{
    if (replay_mode != REPLAY_MODE_PLAY) {
        return true;
    }
    return replay_head_is(REPLAY_EV_INTERRUPT) != NULL;
}

/*
 * Replay: true when the vCPU sleeps although the next event is due now
 * and the vCPU loop is the one to consume it.  The main loop asks on each
 * pass and wakes the vCPU if so.  A running vCPU gets to the event by
 * itself: waking it would cut its slice short, and the wake-up notifies
 * the main loop too, which would then spin at full speed until the event
 * is consumed.  A vCPU that goes to sleep wakes the main loop, which asks
 * again.
 */
bool replay_has_event(void)
{
    ReplayEvent *h;

    if (replay_mode != REPLAY_MODE_PLAY || replay_state.finished ||
        replay_break_reached() || !all_cpu_threads_idle()) {
        return false;
    }
    h = replay_head();
    return h->kind != REPLAY_EV_END && h->icount == replay_icount() &&
           !replay_head_wants_main_loop(h);
}

/*
 * Replay watchdog: wherever the replay is waiting (a halted vCPU waiting
 * for an interrupt that never comes, a main loop waiting for a bottom half
 * that is never scheduled), a running replay that consumes no event for
 * REPLAY_STALL_MS is reported by replay_check_stall().
 */
static QEMUTimer *watchdog;

static void replay_watchdog(void *opaque)
{
    if (!replay_state.finished) {
        replay_check_stall();
        timer_mod(watchdog, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1000);
    }
}

/* Replay: stops at the break position, and the watchdog. */
void replay_vcpu_start(void)
{
    qemu_add_vm_change_state_handler(replay_vm_state_change, NULL);
    watchdog = timer_new_ms(QEMU_CLOCK_REALTIME, replay_watchdog, NULL);
    timer_mod(watchdog, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1000);
}
