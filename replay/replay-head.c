/*
 * qrr: replaying: the head, the value channels, positions and the break
 * position
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "system/replay.h"
#include "system/runstate.h"
#include "system/cpus.h"
#include "hw/core/cpu.h"
#include "replay-core.h"
#include "trace.h"

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
    case REPLAY_EV_BLOCK_DATA:
        return REPLAY_CH_BLOCK_DATA;
    default:
        return REPLAY_CH_AUDIO_IN;
    }
}

/*
 * Whether the argument of @ev that names an enum value of QEMU (a clock,
 * a checkpoint, a shutdown cause, a vCPU) is one that QEMU has; the
 * decoder only knows the byte encoding.  *@limit: how many it has.
 */
bool replay_event_arg_known(const ReplayEvent *ev, int64_t *limit)
{
    switch (ev->kind) {
    case REPLAY_EV_CLOCK:
        *limit = REPLAY_CLOCK_COUNT;
        break;
    case REPLAY_EV_CHECKPOINT:
        *limit = CHECKPOINT_COUNT;
        break;
    case REPLAY_EV_SHUTDOWN:
        *limit = SHUTDOWN_CAUSE__MAX;
        break;
    case REPLAY_EV_SCHED:
        *limit = REPLAY_MAX_VCPUS;
        break;
    default:
        return true;
    }
    return ev->arg[0] >= 0 && ev->arg[0] < *limit;
}

static void replay_check_event_args(const ReplayEvent *ev)
{
    int64_t limit;

    if (!replay_event_arg_known(ev, &limit)) {
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
ReplayEvent *replay_head(void)
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
    if (replay_mode != REPLAY_MODE_PLAY || replay_state.finished) {
        return NULL;
    }
    return replay_head();
}

/*
 * The vCPU is running a slice: what it asks for now, its instructions'
 * I/O asks for.  The instruction that reaches the break position runs
 * whole, so the values its I/O reads or writes there (and a shutdown it
 * requests) are consumed before the replay freezes; interrupts,
 * exceptions and the main loop's events at the break position wait.
 */
static __thread bool vcpu_in_slice;

void replay_set_vcpu_in_slice(bool on)
{
    vcpu_in_slice = on;
}

static bool replay_frozen_for(ReplayEventKind kind)
{
    if (vcpu_in_slice &&
        (replay_event_is_value(kind) || kind == REPLAY_EV_SHUTDOWN)) {
        return replay_state.tt_restore_pending;
    }
    return replay_break_reached();
}

ReplayEvent *replay_head_is(ReplayEventKind kind)
{
    ReplayEvent *h;

    if (replay_mode != REPLAY_MODE_PLAY || replay_state.finished ||
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
bool replay_head_wants_main_loop(const ReplayEvent *h)
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
void replay_wake_consumer(void)
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
    replay_note_progress();
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
    return replay_mode == REPLAY_MODE_PLAY && !replay_state.finished &&
           replay_head()->icount > replay_icount();
}

void replay_set_break(int64_t icount, uint64_t consumed, int runstate)
{
    replay_state.break_icount = icount;
    replay_state.break_consumed = consumed;
    replay_state.break_runstate = runstate;
    replay_state.frozen = false;
    replay_state.break_notified = false;
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

    if (replay_state.tt_restore_pending) {
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
