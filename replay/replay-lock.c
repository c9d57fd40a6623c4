/*
 * qrr: the replay mutex: the threads take turns, and ordered steps
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The vCPU thread and the main loop hold the replay mutex in turn; one
 * of them at a time records or consumes events.  Lock order: the replay
 * mutex before the BQL (never take it with the BQL held); async_lock and
 * the timers' notes_lock are leaves, taken under either.
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "system/replay.h"
#include "system/cpus.h"
#include "replay-core.h"

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

/* The main thread holds the replay mutex from here on (see main()). */
void replay_lock_init_held(void)
{
    qemu_mutex_init(&rr_lock);
    qemu_cond_init(&rr_cond);
    rr_acquire();
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
    /*
     * Not replay_mutex_unlock(): the main loop does not poll here, and a
     * loadvm while the machine is being built (rrsnapshot=) must not end
     * the clock reads' ordered part (see replay_in_ordered_step())
     */
    rr_release();
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
void replay_wait_progress(unsigned ms)
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

void replay_note_progress(void)
{
    qemu_mutex_lock(&rr_lock);
    rr_progress++;
    qemu_cond_broadcast(&rr_cond);
    qemu_mutex_unlock(&rr_lock);
}
