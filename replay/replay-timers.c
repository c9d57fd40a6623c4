/*
 * qrr: the guest's pending timers, for time travel's snapshots
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Which guest timers are pending, and when they expire, is part of the
 * machine's state for a replay: under icount each expired timer of
 * QEMU_CLOCK_VIRTUAL waits for the CLOCK_VIRTUAL checkpoint that the
 * recording logged where it ran, and the vCPU executes nothing until it
 * has run.  Migration's device state does not hold all of it, because a
 * migrated guest tolerates a timer a little late or early:
 *
 *  - a device may arm a timer in its post_load that was not pending at
 *    the snapshot (e1000 arms its interrupt mitigation timer 1 ns ahead,
 *    to flush its queues after a migration);
 *  - a device may keep a timer out of its vmstate; the reset that precedes
 *    the load (tt_abandon_position()) then stops it, and nothing re-arms
 *    it.
 *
 * Either way the replay after the restore waits for a checkpoint that the
 * log has elsewhere, and gets stuck a few instructions later.  So each
 * time-travel snapshot also notes the guest's pending timers, in the order
 * of their timer lists, and a restore puts exactly those back after the
 * devices are loaded: every other guest timer is stopped, and the noted
 * ones are armed again, in order (timers that expire at the same time run
 * in the order in which they were armed).
 *
 * The guest's timers are those of QEMU_CLOCK_VIRTUAL and QEMU_CLOCK_HOST
 * (both logged through their checkpoints) without QEMU_TIMER_ATTR_EXTERNAL:
 * external timers belong to the host side (slirp, the block layer's
 * caches), whose state the snapshots do not hold.
 *
 * Timers are noted by address: the snapshots live in the process that
 * took them, with the same devices (a snapshot whose devices are gone
 * does not load).  A timer freed while a snapshot notes it (timer_free()
 * or timer_deinit() call replay_timer_gone()) is no longer touched by
 * the snapshot's note, so a restore never writes freed memory.
 *
 * A device may free a timer and make it again with the state it belongs
 * to: xhci frees each endpoint's kick timer when the reset disables the
 * endpoint, and its post_load makes a new one, armed at the expiry its
 * vmstate kept.  So the note keeps a freed timer's callback and expiry,
 * and a restore keeps, in the freed timer's place in the order, a timer
 * that the reset and the load armed with the same callback at the same
 * expiry (the first such, each adopted once).  A timer that a post_load
 * arms at a time of its own (e1000's, at "now + 1") matches no note and
 * is stopped as before.
 */

#include "qemu/osdep.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "system/replay.h"
#include "replay-core.h"
#include "trace.h"

typedef struct ReplayTimer {
    QEMUTimer *ts;              /* NULL: freed since */
    QEMUTimerCB *cb;            /* to adopt its successor, once freed */
    int64_t expire;
} ReplayTimer;

struct ReplayTimers {
    GArray *timers;             /* ReplayTimer, in timer-list order */
};

static const QEMUClockType guest_clocks[] = {
    QEMU_CLOCK_VIRTUAL, QEMU_CLOCK_HOST,
};

/*
 * The notes of the live snapshots, and how many of them hold each timer,
 * so that replay_timer_gone() is a lookup.  timer_free() may run in any
 * thread.
 */
static QemuMutex notes_lock;
static GPtrArray *notes;        /* ReplayTimers * */
static GHashTable *held;        /* QEMUTimer * -> number of notes */

static void notes_init(void)
{
    if (!notes) {
        qemu_mutex_init(&notes_lock);
        notes = g_ptr_array_new();
        held = g_hash_table_new(NULL, NULL);
    }
}

static void collect_timer(QEMUTimer *ts, void *opaque)
{
    GArray *into = opaque;
    ReplayTimer t = { .ts = ts, .cb = ts->cb, .expire = ts->expire_time };

    if (!(ts->attributes & QEMU_TIMER_ATTR_EXTERNAL)) {
        g_array_append_val(into, t);
    }
}

static GArray *collect_guest_timers(void)
{
    GArray *into = g_array_new(false, false, sizeof(ReplayTimer));
    size_t i;

    for (i = 0; i < ARRAY_SIZE(guest_clocks); i++) {
        qemu_clock_foreach_timer(guest_clocks[i], collect_timer, into);
    }
    return into;
}

ReplayTimers *replay_timers_save(void)
{
    ReplayTimers *rt = g_new0(ReplayTimers, 1);
    guint i;

    rt->timers = collect_guest_timers();
    notes_init();
    qemu_mutex_lock(&notes_lock);
    g_ptr_array_add(notes, rt);
    for (i = 0; i < rt->timers->len; i++) {
        QEMUTimer *ts = g_array_index(rt->timers, ReplayTimer, i).ts;

        g_hash_table_insert(held, ts,
            GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(held, ts))
                             + 1));
    }
    qemu_mutex_unlock(&notes_lock);
    return rt;
}

static void unhold_locked(QEMUTimer *ts)
{
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(held, ts));

    if (n > 1) {
        g_hash_table_insert(held, ts, GUINT_TO_POINTER(n - 1));
    } else {
        g_hash_table_remove(held, ts);
    }
}

void replay_timers_free(ReplayTimers *rt)
{
    guint i;

    if (!rt) {
        return;
    }
    qemu_mutex_lock(&notes_lock);
    g_ptr_array_remove_fast(notes, rt);
    for (i = 0; i < rt->timers->len; i++) {
        QEMUTimer *ts = g_array_index(rt->timers, ReplayTimer, i).ts;

        if (ts) {
            unhold_locked(ts);
        }
    }
    qemu_mutex_unlock(&notes_lock);
    g_array_free(rt->timers, true);
    g_free(rt);
}

size_t replay_timers_size(const ReplayTimers *rt)
{
    return sizeof(*rt) + rt->timers->len * sizeof(ReplayTimer);
}

void replay_timer_gone(QEMUTimer *ts)
{
    guint i, j;

    if (!notes) {
        return;
    }
    qemu_mutex_lock(&notes_lock);
    if (g_hash_table_remove(held, ts)) {
        for (i = 0; i < notes->len; i++) {
            GArray *timers = ((ReplayTimers *)notes->pdata[i])->timers;

            for (j = 0; j < timers->len; j++) {
                ReplayTimer *t = &g_array_index(timers, ReplayTimer, j);

                if (t->ts == ts) {
                    t->ts = NULL;
                }
            }
        }
        trace_replay_timer_gone(ts);
    }
    qemu_mutex_unlock(&notes_lock);
}

/*
 * The timer of @now, not yet adopted, that takes the place of the freed
 * timer @t: armed by the reset or the load with @t's callback at @t's
 * expiry, and not itself a timer that @rt holds.
 */
static QEMUTimer *successor(GArray *now, const ReplayTimers *rt,
                            const ReplayTimer *t)
{
    guint i, j;

    for (i = 0; i < now->len; i++) {
        ReplayTimer *c = &g_array_index(now, ReplayTimer, i);

        if (!c->ts || c->cb != t->cb || c->expire != t->expire) {
            continue;
        }
        for (j = 0; j < rt->timers->len; j++) {
            if (g_array_index(rt->timers, ReplayTimer, j).ts == c->ts) {
                break;
            }
        }
        if (j == rt->timers->len) {
            return c->ts;
        }
    }
    return NULL;
}

static void forget(GArray *now, QEMUTimer *ts)
{
    guint i;

    for (i = 0; i < now->len; i++) {
        if (g_array_index(now, ReplayTimer, i).ts == ts) {
            g_array_index(now, ReplayTimer, i).ts = NULL;
        }
    }
}

/*
 * Put back the guest timers that @rt noted: called with the BQL held,
 * after the devices of the snapshot are loaded.
 */
void replay_timers_restore(const ReplayTimers *rt)
{
    g_autoptr(GArray) now = collect_guest_timers();
    unsigned stopped = 0, armed = 0, adopted = 0;
    guint i;

    for (i = 0; i < now->len; i++) {
        timer_del(g_array_index(now, ReplayTimer, i).ts);
    }
    /* notes_lock: another thread may free a noted timer meanwhile */
    qemu_mutex_lock(&notes_lock);
    for (i = 0; i < rt->timers->len; i++) {
        const ReplayTimer *t = &g_array_index(rt->timers, ReplayTimer, i);
        QEMUTimer *ts = t->ts;

        if (!ts) {
            ts = successor(now, rt, t);
            if (!ts) {
                continue;
            }
            forget(now, ts);        /* pending again: not stopped */
            adopted++;
        }
        timer_mod_ns(ts, t->expire);
        armed++;
    }
    qemu_mutex_unlock(&notes_lock);
    for (i = 0; i < now->len; i++) {
        QEMUTimer *ts = g_array_index(now, ReplayTimer, i).ts;

        if (ts && !timer_pending(ts)) {
            stopped++;
        }
    }
    trace_replay_timers_restore(rt->timers->len, armed, adopted, stopped);
}

static void *timers_save(void *opaque, size_t *bytes)
{
    ReplayTimers *rt = replay_timers_save();

    *bytes += replay_timers_size(rt);
    return rt;
}

static void timers_load(void *opaque, const void *state)
{
    replay_timers_restore(state);
}

static void timers_free(void *state)
{
    replay_timers_free(state);
}

/*
 * The guest's timers take part in time-travel snapshots only: a savevm
 * snapshot holds them in the devices' state, as a migration does.
 */
static const ReplayParticipant timers_participant = {
    .name = "timers",
    .save = timers_save,
    .load = timers_load,
    .free = timers_free,
};

void replay_timers_register(void)
{
    replay_register_participant(&timers_participant, NULL);
}
