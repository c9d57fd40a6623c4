/*
 * qrr: tests for the guest timers that time-travel snapshots note and
 * put back (replay/replay-timers.c)
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "../../replay/replay-core.h"

static void nop(void *opaque)
{
}

static QEMUTimer *guest_timer(QEMUClockType type, int64_t expire)
{
    QEMUTimer *ts = timer_new_ns(type, nop, NULL);

    if (expire >= 0) {
        timer_mod_ns(ts, expire);
    }
    return ts;
}

static void note_order(QEMUTimer *ts, void *opaque)
{
    g_ptr_array_add(opaque, ts);
}

/* The pending timers of @type, in the order in which they run. */
static GPtrArray *run_order(QEMUClockType type)
{
    GPtrArray *order = g_ptr_array_new();

    qemu_clock_foreach_timer(type, note_order, order);
    return order;
}

/*
 * What was pending comes back, at its time and in its order; what was
 * not is stopped; external timers are left alone.
 */
static void test_restore(void)
{
    QEMUTimer *a = guest_timer(QEMU_CLOCK_VIRTUAL, 100);
    QEMUTimer *b = guest_timer(QEMU_CLOCK_VIRTUAL, 50);
    QEMUTimer *c = guest_timer(QEMU_CLOCK_VIRTUAL, 50);  /* after b */
    QEMUTimer *h = guest_timer(QEMU_CLOCK_HOST, 200);
    QEMUTimer *d = guest_timer(QEMU_CLOCK_VIRTUAL, -1);
    QEMUTimer *e = timer_new_full(NULL, QEMU_CLOCK_VIRTUAL, SCALE_NS,
                                  QEMU_TIMER_ATTR_EXTERNAL, nop, NULL);
    QEMUTimer *rt = guest_timer(QEMU_CLOCK_REALTIME, 300);
    g_autoptr(GPtrArray) order = NULL;
    ReplayTimers *note;

    timer_mod_ns(e, 10);
    note = replay_timers_save();
    g_assert_cmpuint(replay_timers_size(note), >, 0);

    /* what a reset and a post_load might do */
    timer_del(a);
    timer_del(c);
    timer_mod_ns(c, 50);        /* now before... */
    timer_del(b);
    timer_mod_ns(b, 50);        /* ...b, which it followed */
    timer_mod_ns(d, 1);
    timer_del(h);
    timer_mod_ns(e, 20);
    timer_mod_ns(rt, 400);

    replay_timers_restore(note);
    g_assert_cmpint(a->expire_time, ==, 100);
    g_assert_cmpint(b->expire_time, ==, 50);
    g_assert_cmpint(c->expire_time, ==, 50);
    g_assert_cmpint(h->expire_time, ==, 200);
    g_assert_false(timer_pending(d));
    g_assert_cmpint(e->expire_time, ==, 20);
    g_assert_cmpint(rt->expire_time, ==, 400);

    order = run_order(QEMU_CLOCK_VIRTUAL);
    g_assert_cmpuint(order->len, ==, 4);
    g_assert(order->pdata[0] == e);
    g_assert(order->pdata[1] == b);
    g_assert(order->pdata[2] == c);
    g_assert(order->pdata[3] == a);

    replay_timers_free(note);
    timer_free(a);
    timer_free(b);
    timer_free(c);
    timer_free(d);
    timer_free(e);
    timer_free(h);
    timer_free(rt);
}

/* A timer freed or de-initialised while a note holds it is forgotten. */
static void test_gone(void)
{
    QEMUTimer embedded;
    QEMUTimer *freed = guest_timer(QEMU_CLOCK_VIRTUAL, 70);
    QEMUTimer *kept = guest_timer(QEMU_CLOCK_VIRTUAL, 80);
    ReplayTimers *note, *other;

    timer_init_ns(&embedded, QEMU_CLOCK_VIRTUAL, nop, NULL);
    timer_mod_ns(&embedded, 60);
    note = replay_timers_save();
    other = replay_timers_save();

    timer_del(&embedded);
    timer_deinit(&embedded);    /* its timer list is gone: not re-armed */
    timer_free(freed);
    timer_del(kept);

    /* would arm the de-initialised timer and write to freed memory */
    replay_timers_restore(note);
    g_assert_false(timer_pending(&embedded));
    g_assert_cmpint(kept->expire_time, ==, 80);
    replay_timers_free(note);

    /* the other note forgot them too */
    timer_del(kept);
    replay_timers_restore(other);
    g_assert_false(timer_pending(&embedded));
    g_assert_cmpint(kept->expire_time, ==, 80);
    replay_timers_free(other);

    /* a timer that no note holds any more goes quietly */
    timer_free(kept);
}

/*
 * A timer freed and made again by the reset and the load, armed at the
 * noted expiry with the noted callback, takes the freed one's place in
 * the order; one armed at another time, or with another callback, does
 * not, and each successor takes one place only.
 */
static void kick(void *opaque)
{
}

static void test_successor(void)
{
    QEMUTimer *a = timer_new_ns(QEMU_CLOCK_VIRTUAL, kick, NULL);
    QEMUTimer *a2 = timer_new_ns(QEMU_CLOCK_VIRTUAL, kick, NULL);
    QEMUTimer *b = guest_timer(QEMU_CLOCK_VIRTUAL, 70);
    QEMUTimer *n1, *n2, *late, *other;
    g_autoptr(GPtrArray) order = NULL;
    ReplayTimers *note;

    timer_mod_ns(a, 70);        /* a runs before b */
    timer_del(b);
    timer_mod_ns(b, 70);
    timer_mod_ns(a2, 90);
    note = replay_timers_save();

    /* the reset frees a and a2; the load makes them again, b first */
    timer_free(a);
    timer_free(a2);
    timer_del(b);
    timer_mod_ns(b, 70);
    late = timer_new_ns(QEMU_CLOCK_VIRTUAL, kick, NULL);
    timer_mod_ns(late, 71);                 /* another expiry */
    other = guest_timer(QEMU_CLOCK_VIRTUAL, 70);    /* another callback */
    n1 = timer_new_ns(QEMU_CLOCK_VIRTUAL, kick, NULL);
    timer_mod_ns(n1, 70);
    n2 = timer_new_ns(QEMU_CLOCK_VIRTUAL, kick, NULL);
    timer_mod_ns(n2, 70);                   /* one place only for these */

    replay_timers_restore(note);
    order = run_order(QEMU_CLOCK_VIRTUAL);
    g_assert_cmpuint(order->len, ==, 2);
    g_assert(order->pdata[0] == n1);
    g_assert(order->pdata[1] == b);
    g_assert_false(timer_pending(late));
    g_assert_false(timer_pending(other));
    g_assert_false(timer_pending(n2));

    replay_timers_free(note);
    timer_free(b);
    timer_free(n1);
    timer_free(n2);
    timer_free(late);
    timer_free(other);
}

/* An empty note stops every guest timer and touches nothing else. */
static void test_empty(void)
{
    ReplayTimers *note = replay_timers_save();
    QEMUTimer *late = guest_timer(QEMU_CLOCK_VIRTUAL, 5);
    QEMUTimer *host = guest_timer(QEMU_CLOCK_HOST, 5);

    replay_timers_restore(note);
    g_assert_false(timer_pending(late));
    g_assert_false(timer_pending(host));
    replay_timers_free(note);
    timer_free(late);
    timer_free(host);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);
    g_test_add_func("/replay/timers/restore", test_restore);
    g_test_add_func("/replay/timers/gone", test_gone);
    g_test_add_func("/replay/timers/successor", test_successor);
    g_test_add_func("/replay/timers/empty", test_empty);
    return g_test_run();
}
