/*
 * qrr: record/replay engine core: modes, the replay mutex, ordered events
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/option.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/bswap.h"
#include "system/replay.h"
#include "system/runstate.h"
#include "system/cpu-timers.h"
#include "system/cpus.h"
#include "system/tcg.h"
#include "hw/core/cpu.h"
#include "replay-internal.h"
#include "trace.h"

ReplayMode replay_mode = REPLAY_MODE_NONE;
ReplayState replay_state;

/* How long a replay may make no progress before it is declared stuck. */
#define REPLAY_STALL_MS 20000
#define REPLAY_TIMER_STALL_MS 1000

/* ---- the replay mutex ---- */

/*
 * A ticket lock: the main loop and the vCPU hand the replay mutex to each
 * other in the order they asked for it, so neither can starve the other
 * while the two ping-pong through a replay.
 */
static QemuMutex rr_lock;
static QemuCond rr_cond;
static uint64_t rr_next_ticket;
static uint64_t rr_serving;
static uint64_t rr_progress;    /* bumped when an ordered event is consumed */
static __thread bool rr_held;

/*
 * Ordered steps of the main thread (see replay_in_ordered_step()): set by a
 * matched checkpoint or while asynchronous events are delivered, cleared
 * where the guarded code ends and before the main loop polls.
 */
static __thread bool in_ordered_step;
static bool main_loop_polled;   /* the machine is built; the loop runs */

static GPtrArray *blockers;
static bool break_notified;     /* the break position was acted upon */
static GQueue early;            /* events recorded before the log exists */
static bool finished;

static void rr_acquire(void)
{
    uint64_t me;

    qemu_mutex_lock(&rr_lock);
    me = rr_next_ticket++;
    while (me != rr_serving) {
        qemu_cond_wait(&rr_cond, &rr_lock);
    }
    qemu_mutex_unlock(&rr_lock);
    rr_held = true;
}

static void rr_release(void)
{
    rr_held = false;
    qemu_mutex_lock(&rr_lock);
    rr_serving++;
    qemu_cond_broadcast(&rr_cond);
    qemu_mutex_unlock(&rr_lock);
}

void replay_mutex_lock(void)
{
    if (replay_mode == REPLAY_MODE_NONE) {
        return;
    }
    g_assert(!bql_locked());
    g_assert(!rr_held);
    rr_acquire();
}

void replay_mutex_unlock(void)
{
    if (replay_mode == REPLAY_MODE_NONE) {
        return;
    }
    g_assert(rr_held);
    if (!qemu_in_vcpu_thread()) {
        main_loop_polled = true;
        in_ordered_step = false;
    }
    rr_release();
}

/*
 * A loadvm in the main thread: device post_load hooks may run_on_cpu(),
 * which needs the vCPU thread, and that waits for the replay mutex first.
 * So the main thread lets go of it for the load, and takes it back (in
 * its order: before the BQL) afterwards.
 */
bool replay_mutex_give_away(void)
{
    if (replay_mode == REPLAY_MODE_NONE || !rr_held) {
        return false;
    }
    replay_mutex_unlock();
    return true;
}

void replay_mutex_take_back(void)
{
    bool bql = bql_locked();

    if (bql) {
        bql_unlock();
    }
    replay_mutex_lock();
    if (bql) {
        bql_lock();
    }
}

bool replay_in_ordered_step(void)
{
    if (replay_state.tt_busy) {
        return false;
    }
    return qemu_in_vcpu_thread() || in_ordered_step || !main_loop_polled;
}

void replay_set_ordered_step(bool on)
{
    in_ordered_step = on;
}

void replay_checkpoint_end(void)
{
    in_ordered_step = false;
}

/*
 * Give the replay mutex away until another thread consumes an event or
 * @ms pass.  Called by the vCPU (without the BQL) when the next event is
 * one that only the main loop can consume.
 */
static void rr_wait_progress(unsigned ms)
{
    uint64_t seen;

    g_assert(rr_held);
    qemu_mutex_lock(&rr_lock);
    seen = rr_progress;
    rr_held = false;
    rr_serving++;
    qemu_cond_broadcast(&rr_cond);
    if (rr_progress == seen) {
        qemu_cond_timedwait(&rr_cond, &rr_lock, ms);
    }
    qemu_mutex_unlock(&rr_lock);
    rr_acquire();
}

static void rr_note_progress(void)
{
    qemu_mutex_lock(&rr_lock);
    rr_progress++;
    qemu_cond_broadcast(&rr_cond);
    qemu_mutex_unlock(&rr_lock);
}

/* ---- errors ---- */

void replay_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (replay_mode == REPLAY_MODE_PLAY && !replay_state.started) {
        /* the machine is not built yet: the fingerprint can't be checked */
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);

        error_report("%s (while the machine was being set up: is this the "
                     "command line of the recording?)", msg);
    } else {
        error_vreport(fmt, ap);
    }
    va_end(ap);
    exit(1);
}

/* ---- instruction count ---- */

uint64_t replay_icount(void)
{
    return icount_get_raw();
}

uint64_t replay_get_current_icount(void)
{
    return icount_get_raw();
}

/* ---- recording ---- */

void replay_record(ReplayEventKind kind, uint64_t icount, int64_t a0,
                   int64_t a1, const void *data, uint32_t len)
{
    ReplayEvent ev = {
        .kind = kind, .icount = icount, .arg = { a0, a1 },
        .data = (uint8_t *)data, .len = len,
    };

    trace_replay_record(replay_event_name(kind), icount, a0);
    if (finished || replay_state.write_failed) {
        return;
    }
    if (!replay_state.writer) {
        ReplayEvent *copy = g_memdup2(&ev, sizeof(ev));

        copy->data = len ? g_memdup2(data, len) : NULL;
        g_queue_push_tail(&early, copy);
        return;
    }
    if (!replay_log_append(replay_state.writer, &ev)) {
        const char *why = replay_log_writer_error(replay_state.writer);

        replay_state.write_failed = true;
        error_report("record/replay: %s; recording stopped at icount %"
                     PRIu64 ", the log keeps what came before",
                     why ? why : "an event could not be encoded", icount);
        /* a recording that goes on unrecorded is of no use: stop QEMU */
        qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_HOST_ERROR,
                                               EXIT_FAILURE);
    }
}

/* ---- replaying: the head and the value channels ---- */

static ReplayChannel channel_of(const ReplayEvent *ev)
{
    switch (ev->kind) {
    case REPLAY_EV_CLOCK:
        return ev->arg[0] == REPLAY_CLOCK_HOST ? REPLAY_CH_CLOCK_HOST
                                                : REPLAY_CH_CLOCK_VIRTUAL_RT;
    case REPLAY_EV_RANDOM:
        return REPLAY_CH_RANDOM;
    case REPLAY_EV_CHAR_WRITE:
        return REPLAY_CH_CHAR_WRITE;
    case REPLAY_EV_CHAR_READ_ALL:
        return REPLAY_CH_CHAR_READ_ALL;
    case REPLAY_EV_AUDIO_OUT:
        return REPLAY_CH_AUDIO_OUT;
    case REPLAY_EV_SYNC:
        return REPLAY_CH_SYNC;
    default:
        return REPLAY_CH_AUDIO_IN;
    }
}

/*
 * The argument of @ev that names an enum value of QEMU (a clock, a
 * checkpoint, a shutdown cause, a vCPU) is one that QEMU has; the
 * decoder only knows the byte encoding.
 */
static void replay_check_event_args(const ReplayEvent *ev)
{
    int64_t limit;

    switch (ev->kind) {
    case REPLAY_EV_CLOCK:
        limit = REPLAY_CLOCK_COUNT;
        break;
    case REPLAY_EV_CHECKPOINT:
        limit = CHECKPOINT_COUNT;
        break;
    case REPLAY_EV_SHUTDOWN:
        limit = SHUTDOWN_CAUSE__MAX;
        break;
    case REPLAY_EV_SCHED:
        limit = REPLAY_MAX_VCPUS;
        break;
    default:
        return;
    }
    if (ev->arg[0] < 0 || ev->arg[0] >= limit) {
        replay_fatal("record/replay: the log's %s event at icount %" PRIu64
                     " has argument %" PRId64 ", which is not one of the "
                     "%" PRId64 " that this QEMU knows",
                     replay_event_name(ev->kind), ev->icount, ev->arg[0],
                     limit);
    }
}

/* Decode one more event; false at the end of the log. */
static bool replay_decode(void)
{
    ReplayEvent *ev;
    Error *err = NULL;
    int r;

    if (replay_state.log_exhausted) {
        return false;
    }
    ev = g_new0(ReplayEvent, 1);
    r = replay_log_next(replay_state.reader, ev, &err);
    if (r < 0) {
        replay_fatal("record/replay: %s", error_get_pretty(err));
    }
    if (r == 0) {
        g_free(ev);
        replay_state.log_exhausted = true;
        return false;
    }
    replay_check_event_args(ev);
    replay_state.decoded_icount = ev->icount;
    if (replay_event_is_value(ev->kind)) {
        g_queue_push_tail(&replay_state.channel[channel_of(ev)], ev);
    } else {
        g_queue_push_tail(&replay_state.pending, ev);
    }
    return true;
}

/* The first unconsumed ordered event; an END is made up for a cut log. */
static ReplayEvent *replay_head(void)
{
    ReplayEvent *ev;

    while (g_queue_is_empty(&replay_state.pending)) {
        if (!replay_decode()) {
            ev = g_new0(ReplayEvent, 1);
            ev->kind = REPLAY_EV_END;
            ev->icount = replay_state.decoded_icount;
            ev->arg[0] = 1;     /* the log was cut short */
            g_queue_push_tail(&replay_state.pending, ev);
        }
    }
    return g_queue_peek_head(&replay_state.pending);
}

ReplayEvent *replay_head_peek(void)
{
    return replay_mode == REPLAY_MODE_PLAY && !finished ? replay_head() : NULL;
}

/*
 * The vCPU is running a slice: what it asks for now, its instructions'
 * I/O asks for.  The instruction that reaches the break position runs
 * whole, so the values its I/O reads or writes there (and a shutdown it
 * requests) are consumed before the replay freezes; interrupts,
 * exceptions and the main loop's events at the break position wait.
 */
static __thread bool vcpu_in_slice;

static bool replay_frozen_for(ReplayEventKind kind)
{
    if (vcpu_in_slice &&
        (replay_event_is_value(kind) || kind == REPLAY_EV_SHUTDOWN)) {
        return replay_tt_restore_pending();
    }
    return replay_break_reached();
}

ReplayEvent *replay_head_is(ReplayEventKind kind)
{
    ReplayEvent *h;

    if (replay_mode != REPLAY_MODE_PLAY || finished ||
        replay_frozen_for(kind)) {
        return NULL;
    }
    h = replay_head();
    if (h->kind != kind || h->icount != replay_icount()) {
        return NULL;
    }
    return h;
}

/* Events that only the main loop consumes; the vCPU waits for them. */
static bool replay_head_wants_main_loop(const ReplayEvent *h)
{
    if (h->kind == REPLAY_EV_SHUTDOWN) {
        return true;
    }
    if (h->kind != REPLAY_EV_CHECKPOINT) {
        return false;
    }
    switch (h->arg[0]) {
    case CHECKPOINT_CLOCK_WARP_ACCOUNT:
    case CHECKPOINT_CLOCK_VIRTUAL:
        return false;
    default:
        return true;
    }
}

/* Events that the vCPU thread consumes in its own loop, never the main one. */
static bool replay_event_is_vcpus(const ReplayEvent *h)
{
    return h->kind == REPLAY_EV_INTERRUPT || h->kind == REPLAY_EV_EXCEPTION ||
           h->kind == REPLAY_EV_SCHED ||
           (h->kind == REPLAY_EV_CHECKPOINT && !replay_head_wants_main_loop(h));
}

/*
 * The next event may be due now, and whoever consumes it may be asleep.
 * The main loop sleeps in poll; woken, it also wakes a sleeping vCPU (see
 * replay_has_event()).  The vCPU thread goes on to its own events without
 * help: waking the main loop for them would make the two hand the replay
 * mutex to each other once more per event, for nothing.
 */
static void replay_wake_consumer(void)
{
    ReplayEvent *h = replay_head();

    if (h->icount != replay_icount()) {
        return;
    }
    if (qemu_in_vcpu_thread() && replay_event_is_vcpus(h)) {
        return;
    }
    qemu_notify_event();
}

void replay_consume(void)
{
    ReplayEvent *ev = g_queue_pop_head(&replay_state.pending);
    bool vcpu_event = ev->kind == REPLAY_EV_INTERRUPT ||
                      ev->kind == REPLAY_EV_EXCEPTION;

    trace_replay_consume(replay_event_name(ev->kind), ev->icount);
    replay_state.last_kind_name = replay_event_name(ev->kind);
    if (ev->kind == REPLAY_EV_SHUTDOWN) {
        replay_state.shutdown_icount = ev->icount;
    }
    if (!replay_state.consumed ||
        ev->icount != replay_state.last_consumed_icount) {
        replay_state.last_consumed_icount = ev->icount;
        replay_state.consumed_at_icount = replay_state.consumed;
    }
    if (vcpu_event) {
        /* consumed in the vCPU's slice, after what it executed */
        replay_state.vcpu_event = (ReplayVcpuEvent) {
            .icount = ev->icount,
            .start = replay_state.consumed,
            .end = replay_state.consumed + 1,
            .counted = ev->kind == REPLAY_EV_EXCEPTION &&
                       ev->icount > replay_state.slice_icount,
        };
    }
    replay_event_clear(ev);
    g_free(ev);
    replay_state.consumed++;
    rr_note_progress();
    replay_wake_consumer();
}

ReplayEvent *replay_value_take(ReplayChannel ch, uint64_t icount)
{
    GQueue *q = &replay_state.channel[ch];
    ReplayEvent *ev;

    while (replay_state.decoded_icount <= icount && replay_decode()) {
        /* decode everything up to @icount */
    }
    while ((ev = g_queue_peek_head(q)) && ev->icount < icount) {
        trace_replay_value_stale(replay_event_name(ev->kind), ev->icount,
                                 icount);
        replay_value_free(g_queue_pop_head(q));
    }
    if (ev && ev->icount == icount) {
        return g_queue_pop_head(q);
    }
    return NULL;
}

void replay_value_free(ReplayEvent *ev)
{
    if (ev) {
        replay_event_clear(ev);
        g_free(ev);
    }
}

/* ---- positions and the break position ---- */

ReplayPos replay_position(void)
{
    ReplayPos p = { replay_icount(), replay_state.consumed };

    return p;
}

uint64_t replay_consumed_before(uint64_t icount)
{
    if (replay_state.consumed &&
        replay_state.last_consumed_icount == icount) {
        return replay_state.consumed_at_icount;
    }
    return replay_state.consumed;
}

ReplayPos replay_vcpu_position(void)
{
    ReplayPos p = replay_position();

    if (replay_state.vcpu_event.icount == (int64_t)p.icount) {
        p.consumed = replay_state.vcpu_event.end;
    } else {
        p.consumed = replay_consumed_before(p.icount);
    }
    return p;
}

bool replay_vcpu_event_start(ReplayPos *start)
{
    const ReplayVcpuEvent *e = &replay_state.vcpu_event;
    uint64_t now = replay_icount();

    if (e->icount != (int64_t)now) {
        return false;
    }
    if (e->counted) {
        *start = (ReplayPos) { now - 1, UINT64_MAX };
    } else {
        *start = (ReplayPos) { now, e->start };
    }
    return true;
}

bool replay_quiet_point(void)
{
    return replay_mode == REPLAY_MODE_PLAY && !finished &&
           replay_head()->icount > replay_icount();
}

void replay_set_break(int64_t icount, uint64_t consumed, int runstate)
{
    replay_state.break_icount = icount;
    replay_state.break_consumed = consumed;
    replay_state.break_runstate = runstate;
    replay_state.frozen = false;
    break_notified = false;
    trace_replay_set_break(icount, consumed);
}

/*
 * The replay freezes at the break position: the vCPU gets no more
 * instructions and no event is consumed until the machine has stopped
 * there.  So a stop at a given position is always the same state,
 * whichever way (from which snapshot, in which slices) it was reached.
 */
bool replay_break_reached(void)
{
    uint64_t now;

    if (replay_tt_restore_pending()) {
        return true;            /* nothing happens before the restore */
    }
    if (replay_state.break_icount < 0) {
        return false;
    }
    if (replay_state.frozen) {
        return true;
    }
    now = replay_icount();
    if (now != (uint64_t)replay_state.break_icount) {
        return false;
    }
    if (replay_state.consumed >= replay_state.break_consumed ||
        replay_head()->icount > now) {
        replay_state.frozen = true;
        trace_replay_frozen(now, replay_state.consumed);
    }
    return replay_state.frozen;
}

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

    if (replay_mode != REPLAY_MODE_PLAY || finished) {
        return 0;
    }
    replay_tt_vcpu_work();
    if (replay_break_reached()) {
        /* frozen: wait for the stop to be handled */
        if (!bql_locked()) {
            rr_wait_progress(10);
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
        vcpu_in_slice = true;
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
        vcpu_in_slice = true;
        return 1;
    }
    replay_check_stall();
    if (replay_head_wants_main_loop(h) && !bql_locked()) {
        qemu_notify_event();
        rr_wait_progress(10);
    }
    return 0;
}

/*
 * At the break position: stop the machine there, or let time travel take
 * its next step.  Called by the vCPU after each slice and by the main
 * loop (a halted vCPU runs no slices).
 */
static bool replay_break_notify(void)
{
    if (!replay_break_reached()) {
        return false;
    }
    if (!break_notified && !replay_tt_restore_pending()) {
        break_notified = true;
        if (!replay_tt_break_reached()) {
            qemu_system_vmstop_request_prepare();
            qemu_system_vmstop_request(replay_state.break_runstate);
        }
    }
    return true;
}

void replay_account_executed_instructions(void)
{
    vcpu_in_slice = false;
    if (replay_mode != REPLAY_MODE_NONE) {
        replay_sched_slice_end();
    }
    if (replay_mode != REPLAY_MODE_PLAY || finished) {
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
    break_notified = false;
}

/* ---- ordered events ---- */

bool replay_checkpoint(ReplayCheckpoint checkpoint)
{
    ReplayEvent *h;

    switch (replay_mode) {
    case REPLAY_MODE_RECORD:
        replay_record(REPLAY_EV_CHECKPOINT, replay_icount(), checkpoint, 0,
                      NULL, 0);
        in_ordered_step = true;
        return true;
    case REPLAY_MODE_PLAY:
        h = replay_head_is(REPLAY_EV_CHECKPOINT);
        if (!h || h->arg[0] != checkpoint) {
            in_ordered_step = false;
            return false;
        }
        replay_consume();
        in_ordered_step = true;
        return true;
    default:
        return true;
    }
}

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
            replay_fatal("record/replay: replay diverged at icount %" PRIu64
                         " (after %s): the vCPU raised an exception that "
                         "the recording does not have; the log's next event "
                         "is %s at icount %" PRIu64, replay_icount(),
                         replay_state.last_kind_name,
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

    if (replay_mode != REPLAY_MODE_PLAY || finished ||
        replay_break_reached() || !all_cpu_threads_idle()) {
        return false;
    }
    h = replay_head();
    return h->kind != REPLAY_EV_END && h->icount == replay_icount() &&
           !replay_head_wants_main_loop(h);
}

/*
 * The recorded shutdown, in a replay that somebody steers: the machine's
 * last position.  Freeze there and stop, as at the end of the log, instead
 * of quitting; a seek or break beyond it ends here.
 */
static bool replay_stop_at_shutdown(void)
{
    int runstate = replay_state.gdb_attached ? RUN_STATE_DEBUG
                                             : RUN_STATE_PAUSED;

    if (!replay_state.gdb_attached && replay_state.break_icount < 0) {
        return false;
    }
    info_report("record/replay: the recorded machine shuts down at icount "
                "%" PRIu64 ": replay stopped there", replay_icount());
    if (replay_state.gdb_attached) {
        replay_tt_set_stop_reason("end");
    }
    replay_set_break(replay_icount(), replay_state.consumed, runstate);
    if (current_cpu) {
        /* the request came from an instruction: end the slice after it */
        cpu_exit(current_cpu);
    } else {
        replay_break_notify();
    }
    return true;
}

bool replay_shutdown_request(ShutdownCause cause)
{
    ReplayEvent *h;

    switch (replay_mode) {
    case REPLAY_MODE_RECORD:
        replay_record(REPLAY_EV_SHUTDOWN, replay_icount(), cause, 0, NULL, 0);
        return true;
    case REPLAY_MODE_PLAY:
        h = replay_head_is(REPLAY_EV_SHUTDOWN);
        /* a request of this run's own (gdb's kill, quit) is not the log's */
        if (!h || h->arg[0] != cause) {
            return true;
        }
        replay_consume();
        return !replay_stop_at_shutdown();
    default:
        return true;
    }
}

/* The replay reached the recorded end (or the end of a cut log). */
static void replay_reached_end(ReplayEvent *h)
{
    const char *cut = replay_log_truncation(replay_state.reader);

    if (replay_state.at_end && h->arg[0]) {
        return;                 /* already on its way out */
    }
    if (!replay_state.at_end) {
        replay_state.at_end = true;
        if (h->arg[0]) {
            error_report("record/replay: %s; replay stopped at icount %"
                         PRIu64 ", the end of the log's valid part",
                         cut ? cut : "the log ends early", h->icount);
            qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_HOST_ERROR,
                                                   1);
            return;
        }
        info_report("record/replay: replay reached the end of the log at "
                    "icount %" PRIu64, h->icount);
    }
    /* again at each continue from here: there is nothing further */
    if (replay_state.gdb_attached) {
        replay_tt_set_stop_reason("end");
        qemu_system_vmstop_request_prepare();
        qemu_system_vmstop_request(RUN_STATE_DEBUG);
    } else {
        qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    }
}

/*
 * A place in the vCPU loop and in the main loop where events that came
 * from outside the guest are delivered.
 */
void replay_async_events(void)
{
    ReplayEvent *h;

    if (!replay_events_enabled() || finished) {
        return;
    }
    /* what the delivered events run is ordered: its clock reads count */
    in_ordered_step = true;
    if (replay_mode == REPLAY_MODE_RECORD) {
        replay_async_run_head();
        in_ordered_step = false;
        return;
    }
    while (replay_async_run_head()) {
        /* deliver everything due now */
    }
    in_ordered_step = false;
    h = replay_head_is(REPLAY_EV_SHUTDOWN);
    if (h) {
        /* consumed by replay_shutdown_request(), like the guest's own */
        qemu_system_shutdown_request(h->arg[0]);
        return;
    }
    /* a machine stopped at the end (a seek there) ends when it goes on */
    h = replay_head_is(REPLAY_EV_END);
    if (h && runstate_is_running()) {
        replay_reached_end(h);
    }
}

/*
 * Replay: the main loop must not sleep while the next event is one it can
 * consume now.  Its poll timeout comes from host clocks, which say nothing
 * about the recording: without this it would wait for a timer that, in the
 * recording's time, has already expired.
 *
 * A stopped machine has nothing due: what the main loop consumes there
 * (the clock warp's start, the end of the log) waits for it to go on, and
 * vm_start() wakes the main loop.  Without this, a replay stopped by gdb
 * or at the recorded power-off would poll without sleeping.
 */
static bool replay_main_loop_due(void)
{
    ReplayEvent *h = replay_head();

    if (h->icount != replay_icount() || replay_break_reached() ||
        !runstate_is_running()) {
        return false;
    }
    switch (h->kind) {
    case REPLAY_EV_INTERRUPT:
    case REPLAY_EV_EXCEPTION:
        return false;
    case REPLAY_EV_CHECKPOINT:
        return replay_head_wants_main_loop(h);
    default:
        return replay_async_ready(h);
    }
}

static void replay_poll_notify(Notifier *n, void *opaque)
{
    MainLoopPoll *mlpoll = opaque;

    if (mlpoll->state != MAIN_LOOP_POLL_FILL || finished) {
        return;
    }
    if (runstate_is_running() && replay_break_notify()) {
        return;
    }
    if (replay_main_loop_due()) {
        mlpoll->timeout = 0;
    }
}

static Notifier replay_poll_notifier = { .notify = replay_poll_notify };

/*
 * Replay watchdog: wherever the replay is waiting (a halted vCPU waiting
 * for an interrupt that never comes, a main loop waiting for a bottom half
 * that is never scheduled), a running replay that consumes no event for
 * REPLAY_STALL_MS is reported by replay_check_stall().
 */
static QEMUTimer *watchdog;

static void replay_watchdog(void *opaque)
{
    if (!finished) {
        replay_check_stall();
        timer_mod(watchdog, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1000);
    }
}

/* ---- set-up and tear-down ---- */

void replay_add_blocker(const char *feature)
{
    if (!blockers) {
        blockers = g_ptr_array_new_with_free_func(g_free);
    }
    g_ptr_array_add(blockers, g_strdup(feature));
}

static void replay_check_blockers(void)
{
    if (blockers && blockers->len) {
        error_report("record/replay does not support %s",
                     (char *)g_ptr_array_index(blockers, 0));
        exit(1);
    }
}

const char *replay_get_filename(void)
{
    return replay_state.filename;
}

void replay_configure(QemuOpts *opts)
{
    const char *rr, *file;
    Error *err = NULL;
    ReplayMode mode;
    int fd;

    rr = opts ? qemu_opt_get(opts, "rr") : NULL;
    if (!rr || !strcmp(rr, "off")) {
        return;
    }
    if (!strcmp(rr, "record")) {
        mode = REPLAY_MODE_RECORD;
    } else if (!strcmp(rr, "replay")) {
        mode = REPLAY_MODE_PLAY;
    } else {
        error_report("-icount rr=%s: expected record, replay or off", rr);
        exit(1);
    }
    file = qemu_opt_get(opts, "rrfile");
    if (!file || !*file) {
        error_report("-icount rr=%s needs rrfile=FILE", rr);
        exit(1);
    }

    replay_state.filename = g_strdup(file);
    replay_state.snapshot = g_strdup(qemu_opt_get(opts, "rrsnapshot"));
    replay_state.icount_shift = g_strdup(qemu_opt_get(opts, "shift"));
    replay_state.break_icount = -1;
    replay_state.break_runstate = RUN_STATE_PAUSED;
    replay_state.last_kind_name = "the start";
    replay_state.shutdown_icount = -1;
    replay_state.vcpu_event.icount = -1;
    replay_sync_configure(opts);
    replay_sched_configure(opts);
    replay_tt_configure(opts);
    replay_async_init();

    if (mode == REPLAY_MODE_PLAY) {
        replay_state.reader = replay_log_open(file, &err);
        if (!replay_state.reader ||
            !replay_fingerprint_check_target(
                replay_log_fingerprint(replay_state.reader), &err)) {
            error_report_err(err);
            exit(1);
        }
        replay_sync_from_log();
    } else {
        /* fail now, not after machine creation, if F can't be written */
        fd = qemu_create(file, O_WRONLY | O_BINARY, 0644, &err);
        if (fd < 0) {
            error_report_err(err);
            exit(1);
        }
        close(fd);
    }

    qemu_mutex_init(&rr_lock);
    qemu_cond_init(&rr_cond);
    replay_mode = mode;
    runstate_replay_enable();
    /* The main thread holds the replay mutex from here on (see main()). */
    rr_acquire();
}

static void replay_start_record(const char *fingerprint)
{
    ReplayEvent *ev;
    Error *err = NULL;

    replay_state.writer = replay_log_create(replay_state.filename,
                                            fingerprint, NULL, &err);
    if (!replay_state.writer) {
        error_report_err(err);
        exit(1);
    }
    while ((ev = g_queue_pop_head(&early))) {
        replay_log_append(replay_state.writer, ev);
        replay_event_clear(ev);
        g_free(ev);
    }
}

static void replay_start_replay(const char *fingerprint)
{
    const char *cut = replay_log_truncation(replay_state.reader);
    Error *err = NULL;

    if (!replay_fingerprint_check(replay_log_fingerprint(replay_state.reader),
                                  fingerprint, &err)) {
        error_report_err(err);
        exit(1);
    }
    if (cut) {
        warn_report("record/replay: %s; replaying its valid part (up to "
                    "icount %" PRIu64 ")", cut,
                    replay_log_last_icount(replay_state.reader));
    }
}

void replay_start(void)
{
    g_autofree char *fingerprint = NULL;
    Error *err = NULL;

    if (replay_mode == REPLAY_MODE_NONE) {
        return;
    }
    replay_check_blockers();
    if (!tcg_enabled() || !icount_enabled()) {
        error_report("record/replay needs TCG with -icount shift=N|auto");
        exit(1);
    }
    if (!replay_sched_check(&err) || !replay_check_devices(&err)) {
        error_report_err(err);
        exit(1);
    }
    fingerprint = replay_fingerprint();
    if (replay_mode == REPLAY_MODE_RECORD) {
        replay_start_record(fingerprint);
    } else {
        replay_start_replay(fingerprint);
    }
    replay_state.started = true;
    replay_enable_events();
    if (replay_mode == REPLAY_MODE_PLAY) {
        main_loop_poll_add_notifier(&replay_poll_notifier);
        qemu_add_vm_change_state_handler(replay_vm_state_change, NULL);
        replay_tt_start();
        watchdog = timer_new_ms(QEMU_CLOCK_REALTIME, replay_watchdog, NULL);
        timer_mod(watchdog, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1000);
    }
}

void replay_finish(void)
{
    Error *err = NULL;
    uint64_t now;

    if (replay_mode == REPLAY_MODE_NONE || finished) {
        return;
    }
    now = replay_icount();
    if (replay_mode == REPLAY_MODE_RECORD) {
        replay_record(REPLAY_EV_END, now, 0, 0, NULL, 0);
        finished = true;
        if (replay_state.writer &&
            !replay_log_close(replay_state.writer, &err)) {
            error_report_err(err);
            /* the log is incomplete: that is not a successful recording */
            exit(EXIT_FAILURE);
        }
        replay_state.writer = NULL;
    } else {
        /*
         * A machine that shuts down stops its vCPU wherever the main loop
         * catches it, a few instructions after the request: the recording
         * ran on to its END event there, the replay to another point.
         * Reaching the recorded shutdown is reaching the end.
         */
        if (replay_state.started && !replay_state.at_end &&
            replay_state.shutdown_icount >= 0) {
            info_report("record/replay: replay reached the recorded shutdown "
                        "at icount %" PRId64 " (the log ends at icount %"
                        PRIu64 ")", replay_state.shutdown_icount,
                        replay_log_last_icount(replay_state.reader));
            now = MAX(now, replay_log_last_icount(replay_state.reader));
        }
        finished = true;
        if (replay_state.started &&
            now < replay_log_last_icount(replay_state.reader)) {
            warn_report("record/replay: replay stopped at icount %" PRIu64
                        " before the end of the log (icount %" PRIu64 ")",
                        now, replay_log_last_icount(replay_state.reader));
        }
        replay_log_close_reader(replay_state.reader);
        replay_state.reader = NULL;
    }
    /*
     * Nothing delivers queued callbacks any more, and the block layer's
     * drain at exit waits for the disk requests whose completions are
     * queued (a quit while a request is in flight): run them now.
     */
    replay_state.events_enabled = false;
    replay_async_abandon();
}

/* ---- the engine's state, for time travel ---- */

struct ReplayEngineState {
    ReplayLogPos log;
    GQueue pending;
    GQueue channel[REPLAY_CH__MAX];
    uint64_t decoded_icount;
    uint64_t consumed;
    uint64_t last_consumed_icount;
    uint64_t consumed_at_icount;
    ReplayVcpuEvent vcpu_event;
    uint64_t vcpu_events;
    uint64_t next_bh_id;
    uint64_t next_block_id;
    const char *last_kind_name;
    bool log_exhausted;
    bool at_end;
    int64_t shutdown_icount;
    GByteArray *sync_regs;
    int64_t clock_now[REPLAY_CLOCK_COUNT];
    int sched_vcpu;
    uint64_t sched_slice_start;
    uint64_t vcpu_icount[REPLAY_MAX_VCPUS];
    uint64_t vcpu_last_insn[REPLAY_MAX_VCPUS];
    size_t bytes;
};

static ReplayEvent *event_copy(const ReplayEvent *ev, size_t *bytes)
{
    ReplayEvent *c = g_memdup2(ev, sizeof(*ev));

    c->data = ev->len ? g_memdup2(ev->data, ev->len) : NULL;
    *bytes += sizeof(*ev) + ev->len;
    return c;
}

static void queue_copy(GQueue *dst, const GQueue *src, size_t *bytes)
{
    GList *l;

    g_queue_init(dst);
    for (l = src->head; l; l = l->next) {
        g_queue_push_tail(dst, event_copy(l->data, bytes));
    }
}

static void queue_clear(GQueue *q)
{
    ReplayEvent *ev;

    while ((ev = g_queue_pop_head(q))) {
        replay_event_clear(ev);
        g_free(ev);
    }
}

ReplayEngineState *replay_engine_save(void)
{
    ReplayEngineState *s = g_new0(ReplayEngineState, 1);
    int i;

    s->bytes = sizeof(*s);
    replay_log_tell(replay_state.reader, &s->log);
    queue_copy(&s->pending, &replay_state.pending, &s->bytes);
    for (i = 0; i < REPLAY_CH__MAX; i++) {
        queue_copy(&s->channel[i], &replay_state.channel[i], &s->bytes);
    }
    s->decoded_icount = replay_state.decoded_icount;
    s->consumed = replay_state.consumed;
    s->last_consumed_icount = replay_state.last_consumed_icount;
    s->consumed_at_icount = replay_state.consumed_at_icount;
    s->vcpu_event = replay_state.vcpu_event;
    s->vcpu_events = replay_state.vcpu_events;
    s->next_bh_id = replay_state.next_bh_id;
    s->next_block_id = replay_state.next_block_id;
    s->last_kind_name = replay_state.last_kind_name;
    s->log_exhausted = replay_state.log_exhausted;
    s->at_end = replay_state.at_end;
    s->shutdown_icount = replay_state.shutdown_icount;
    s->sched_vcpu = replay_state.sched_vcpu;
    s->sched_slice_start = replay_state.sched_slice_start;
    memcpy(s->vcpu_icount, replay_state.vcpu_icount, sizeof(s->vcpu_icount));
    memcpy(s->vcpu_last_insn, replay_state.vcpu_last_insn,
           sizeof(s->vcpu_last_insn));
    s->sync_regs = replay_sync_save();
    s->bytes += s->sync_regs ? s->sync_regs->len : 0;
    replay_values_save(s->clock_now);
    return s;
}

void replay_engine_restore(const ReplayEngineState *s)
{
    Error *err = NULL;
    size_t bytes = 0;
    int i;

    if (!replay_log_seek(replay_state.reader, &s->log, &err)) {
        replay_fatal("record/replay: time travel: %s", error_get_pretty(err));
    }
    queue_clear(&replay_state.pending);
    queue_copy(&replay_state.pending, &s->pending, &bytes);
    for (i = 0; i < REPLAY_CH__MAX; i++) {
        queue_clear(&replay_state.channel[i]);
        queue_copy(&replay_state.channel[i], &s->channel[i],
                   &bytes);
    }
    replay_state.decoded_icount = s->decoded_icount;
    replay_state.consumed = s->consumed;
    replay_state.last_consumed_icount = s->last_consumed_icount;
    replay_state.consumed_at_icount = s->consumed_at_icount;
    replay_state.vcpu_event = s->vcpu_event;
    replay_state.vcpu_events = s->vcpu_events;
    replay_state.next_bh_id = s->next_bh_id;
    replay_state.next_block_id = s->next_block_id;
    replay_state.last_kind_name = s->last_kind_name;
    replay_state.log_exhausted = s->log_exhausted;
    replay_state.at_end = s->at_end;
    replay_state.shutdown_icount = s->shutdown_icount;
    replay_state.sched_vcpu = s->sched_vcpu;
    replay_state.sched_slice_start = s->sched_slice_start;
    memcpy(replay_state.vcpu_icount, s->vcpu_icount,
           sizeof(replay_state.vcpu_icount));
    memcpy(replay_state.vcpu_last_insn, s->vcpu_last_insn,
           sizeof(replay_state.vcpu_last_insn));
    replay_sync_restore(s->sync_regs);
    replay_values_restore(s->clock_now);
    break_notified = false;
    rr_note_progress();
}

void replay_engine_free(ReplayEngineState *s)
{
    int i;

    if (!s) {
        return;
    }
    queue_clear(&s->pending);
    for (i = 0; i < REPLAY_CH__MAX; i++) {
        queue_clear(&s->channel[i]);
    }
    if (s->sync_regs) {
        g_byte_array_unref(s->sync_regs);
    }
    g_free(s);
}

size_t replay_engine_size(const ReplayEngineState *s)
{
    return s->bytes;
}

/*
 * ---- the engine's state in a savevm snapshot ----
 *
 * The state as bytes, all little-endian: the log position (u32 chunk,
 * u32 event), u64 decoded_icount, consumed, last_consumed_icount,
 * consumed_at_icount; the last vCPU event (i64 icount, u64 start, u64
 * end, u8 counted); u64 vcpu_events, next_bh_id, next_block_id; u8
 * log_exhausted, at_end; i64 shutdown_icount; u32 length of the sync
 * registers (UINT32_MAX: none) and their bytes; REPLAY_CLOCK_COUNT i64
 * clock values; i32 kind of the last event consumed (-1: none); then
 * the pending queue and the REPLAY_CH__MAX channels, each a u32 count of
 * events, each event u32 kind, u64 icount, 3 i64 arguments, u32 length
 * and its bytes; then the vCPU schedule: u32 cpu_index of the vCPU that
 * ran last, u64 where its slice began, REPLAY_MAX_VCPUS u64 counts of
 * instructions per vCPU and REPLAY_MAX_VCPUS u64 icounts right after each
 * vCPU's last instruction.
 */

static void put_u32(GByteArray *b, uint32_t v)
{
    uint8_t x[4];

    stl_le_p(x, v);
    g_byte_array_append(b, x, 4);
}

static void put_u64(GByteArray *b, uint64_t v)
{
    uint8_t x[8];

    stq_le_p(x, v);
    g_byte_array_append(b, x, 8);
}

static void put_queue(GByteArray *b, const GQueue *q)
{
    GList *l;
    int i;

    put_u32(b, g_queue_get_length((GQueue *)q));
    for (l = q->head; l; l = l->next) {
        const ReplayEvent *ev = l->data;

        put_u32(b, ev->kind);
        put_u64(b, ev->icount);
        for (i = 0; i < 3; i++) {
            put_u64(b, ev->arg[i]);
        }
        put_u32(b, ev->len);
        g_byte_array_append(b, ev->data, ev->len);
    }
}

GByteArray *replay_engine_serialize(void)
{
    ReplayEngineState *s = replay_engine_save();
    GByteArray *b = g_byte_array_new();
    int kind = -1;
    int i;

    put_u32(b, s->log.chunk);
    put_u32(b, s->log.event);
    put_u64(b, s->decoded_icount);
    put_u64(b, s->consumed);
    put_u64(b, s->last_consumed_icount);
    put_u64(b, s->consumed_at_icount);
    put_u64(b, s->vcpu_event.icount);
    put_u64(b, s->vcpu_event.start);
    put_u64(b, s->vcpu_event.end);
    g_byte_array_append(b, (uint8_t[]){ s->vcpu_event.counted }, 1);
    put_u64(b, s->vcpu_events);
    put_u64(b, s->next_bh_id);
    put_u64(b, s->next_block_id);
    g_byte_array_append(b, (uint8_t[]){ s->log_exhausted, s->at_end }, 2);
    put_u64(b, s->shutdown_icount);
    put_u32(b, s->sync_regs ? s->sync_regs->len : UINT32_MAX);
    if (s->sync_regs) {
        g_byte_array_append(b, s->sync_regs->data, s->sync_regs->len);
    }
    for (i = 0; i < REPLAY_CLOCK_COUNT; i++) {
        put_u64(b, s->clock_now[i]);
    }
    for (i = 0; i < REPLAY_EV__MAX && s->last_kind_name; i++) {
        if (s->last_kind_name == replay_event_name(i)) {
            kind = i;
        }
    }
    put_u32(b, kind);
    put_queue(b, &s->pending);
    for (i = 0; i < REPLAY_CH__MAX; i++) {
        put_queue(b, &s->channel[i]);
    }
    put_u32(b, s->sched_vcpu);
    put_u64(b, s->sched_slice_start);
    for (i = 0; i < REPLAY_MAX_VCPUS; i++) {
        put_u64(b, s->vcpu_icount[i]);
    }
    for (i = 0; i < REPLAY_MAX_VCPUS; i++) {
        put_u64(b, s->vcpu_last_insn[i]);
    }
    replay_engine_free(s);
    return b;
}

typedef struct Reader {
    const uint8_t *p;
    size_t left;
    bool bad;
} Reader;

static const uint8_t *take(Reader *r, size_t n)
{
    const uint8_t *p = r->p;

    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

static uint32_t get_u32(Reader *r)
{
    const uint8_t *p = take(r, 4);

    return p ? ldl_le_p(p) : 0;
}

static uint64_t get_u64(Reader *r)
{
    const uint8_t *p = take(r, 8);

    return p ? ldq_le_p(p) : 0;
}

static uint8_t get_u8(Reader *r)
{
    const uint8_t *p = take(r, 1);

    return p ? *p : 0;
}

static void get_queue(Reader *r, GQueue *q)
{
    uint32_t n = get_u32(r);
    uint32_t k;
    int i;

    g_queue_init(q);
    for (k = 0; k < n && !r->bad; k++) {
        ReplayEvent *ev = g_new0(ReplayEvent, 1);
        const uint8_t *data;

        ev->kind = get_u32(r);
        ev->icount = get_u64(r);
        for (i = 0; i < 3; i++) {
            ev->arg[i] = get_u64(r);
        }
        ev->len = get_u32(r);
        r->bad |= ev->kind >= REPLAY_EV__MAX ||
                  ev->len > REPLAY_EVENT_MAX_DATA;
        data = take(r, r->bad ? 0 : ev->len);
        ev->data = ev->len && data ? g_memdup2(data, ev->len) : NULL;
        if (r->bad) {
            ev->len = 0;
        }
        g_queue_push_tail(q, ev);
    }
}

bool replay_engine_deserialize(const uint8_t *buf, size_t len, Error **errp)
{
    ReplayEngineState *s = g_new0(ReplayEngineState, 1);
    Reader r = { .p = buf, .left = len };
    uint32_t n;
    int32_t kind;
    int i;

    s->log.chunk = get_u32(&r);
    s->log.event = get_u32(&r);
    s->decoded_icount = get_u64(&r);
    s->consumed = get_u64(&r);
    s->last_consumed_icount = get_u64(&r);
    s->consumed_at_icount = get_u64(&r);
    s->vcpu_event.icount = get_u64(&r);
    s->vcpu_event.start = get_u64(&r);
    s->vcpu_event.end = get_u64(&r);
    s->vcpu_event.counted = get_u8(&r);
    s->vcpu_events = get_u64(&r);
    s->next_bh_id = get_u64(&r);
    s->next_block_id = get_u64(&r);
    s->log_exhausted = get_u8(&r);
    s->at_end = get_u8(&r);
    s->shutdown_icount = get_u64(&r);
    n = get_u32(&r);
    if (n != UINT32_MAX) {
        const uint8_t *regs = take(&r, n);

        s->sync_regs = g_byte_array_new();
        if (regs) {
            g_byte_array_append(s->sync_regs, regs, n);
        }
    }
    for (i = 0; i < REPLAY_CLOCK_COUNT; i++) {
        s->clock_now[i] = get_u64(&r);
    }
    kind = get_u32(&r);
    if (kind >= 0 && kind < REPLAY_EV__MAX) {
        s->last_kind_name = replay_event_name(kind);
    }
    get_queue(&r, &s->pending);
    for (i = 0; i < REPLAY_CH__MAX; i++) {
        get_queue(&r, &s->channel[i]);
    }
    s->sched_vcpu = get_u32(&r);
    r.bad |= s->sched_vcpu < 0 || s->sched_vcpu >= REPLAY_MAX_VCPUS ||
             !qemu_get_cpu(s->sched_vcpu);
    s->sched_slice_start = get_u64(&r);
    for (i = 0; i < REPLAY_MAX_VCPUS; i++) {
        s->vcpu_icount[i] = get_u64(&r);
    }
    for (i = 0; i < REPLAY_MAX_VCPUS; i++) {
        s->vcpu_last_insn[i] = get_u64(&r);
    }
    if (r.bad || r.left) {
        error_setg(errp, "the replay state in the snapshot is malformed");
    } else {
        replay_engine_restore(s);
    }
    replay_engine_free(s);
    return !r.bad && !r.left;
}
