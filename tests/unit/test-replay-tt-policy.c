/*
 * qrr: tests for where time travel puts its snapshots
 * (replay/replay-tt-policy.c)
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <math.h>
#define TT_PURE_ONLY
#include "../../replay/replay-tt.h"

#define M UINT64_C(1000000)

static TTLayout layout(const uint64_t *at, unsigned n, uint64_t interval)
{
    return (TTLayout) { .at = at, .n = n, .interval = interval,
                        .budget = UINT64_MAX };
}

/* The interval near the position, d / 2 behind it, d ahead, capped. */
static void test_gap_wanted(void)
{
    g_assert_cmpfloat(tt_gap_wanted(100 * M, 100 * M, 10 * M, 1e12), ==,
                      10 * M);
    g_assert_cmpfloat(tt_gap_wanted(0, 100 * M, 10 * M, 1e12), ==, 50 * M);
    g_assert_cmpfloat(tt_gap_wanted(200 * M, 100 * M, 10 * M, 1e12), ==,
                      100 * M);
    g_assert_cmpfloat(tt_gap_wanted(0, 1000 * M, 10 * M, 30 * M), ==,
                      30 * M);
    /* never below the interval, even just behind the position */
    g_assert_cmpfloat(tt_gap_wanted(99 * M, 100 * M, 10 * M, 1e12), ==,
                      10 * M);
}

/* The average gap, or the interval if that is larger. */
static void test_gap_cap(void)
{
    const uint64_t at[] = { 0, 50 * M, 100 * M, 400 * M };
    TTLayout l = layout(at, 4, 10 * M);

    g_assert_cmpfloat(tt_gap_cap(&l), ==, 100 * M);
    l.interval = 200 * M;
    g_assert_cmpfloat(tt_gap_cap(&l), ==, 200 * M);
}

/* Far behind the position, the snapshot in a dense cluster goes first. */
static void test_pick_merge_cluster(void)
{
    const uint64_t at[] = { 0, 50 * M, 51 * M, 52 * M, 100 * M };
    TTLayout l = layout(at, 5, 1 * M);

    g_assert_cmpuint(tt_pick_merge(&l, 100 * M), ==, 2);
}

/*
 * Where the gap wanted reaches the average gap, far from the position,
 * the first of the evenly spaced goes; near it, the one whose gap is the
 * smallest for its distance.
 */
static void test_pick_merge_by_distance(void)
{
    const uint64_t at[] = { 0, 10 * M, 20 * M, 30 * M, 40 * M, 50 * M,
                            1000 * M };
    TTLayout l = layout(at, 7, 1 * M);

    g_assert_cmpuint(tt_pick_merge(&l, 1000 * M), ==, 1);
    g_assert_cmpuint(tt_pick_merge(&l, 0), ==, 4);
}

/* An interval after the latest, skipping snapshots that are close ahead. */
static void test_next_at(void)
{
    const uint64_t at[] = { 0, 10 * M, 14 * M, 40 * M };
    TTLayout l = layout(at, 4, 10 * M);

    g_assert_cmpuint(tt_next_at(&l, -1), ==, 0);
    g_assert_cmpuint(tt_next_at(&l, 0), ==, 24 * M);
    g_assert_cmpuint(tt_next_at(&l, 3), ==, 50 * M);
}

/*
 * On the way to a break far ahead, snapshots after the newest one are
 * as far apart as the budget allows there, not an interval apart.
 */
static void test_worth_filling(void)
{
    const uint64_t at[] = { 0, 10 * M };
    const size_t sizes[] = { 100, 100 };
    TTLayout l = layout(at, 2, 10 * M);

    l.budget = 11 * 100;          /* room for 10 more like the newest */
    l.bytes = sizes;
    /* no break ahead, or no snapshot before: always */
    g_assert_true(tt_worth_filling(&l, 1, 20 * M, -1));
    g_assert_true(tt_worth_filling(&l, -1, 20 * M, 10000 * M));
    /* a break 10 G ahead: 10 M past the newest is too close */
    g_assert_false(tt_worth_filling(&l, 1, 20 * M, 10000 * M));
    /* a break close ahead: the gap wanted is the interval */
    g_assert_true(tt_worth_filling(&l, 1, 20 * M, 21 * M));
    /*
     * Far from the break, on the grid of the even gap (2 G here) from the
     * first snapshot, not from the newest: at 2 G, not at 10 M + 2 G
     */
    g_assert_false(tt_worth_filling(&l, 1, 1999 * M, 10000 * M));
    g_assert_true(tt_worth_filling(&l, 1, 2000 * M, 10000 * M));
}

/* The next grid point at least half a gap after the newest snapshot. */
static void test_grid_next(void)
{
    const uint64_t at[] = { 100 * M, 180 * M, 1000 * M };
    TTLayout l = layout(at, 3, 10 * M);

    g_assert_cmpuint(tt_grid_next(&l, 0, 400 * M), ==, 500 * M);
    g_assert_cmpuint(tt_grid_next(&l, 1, 400 * M), ==, 500 * M);
    /* 900 M from the first: 1300 M, 300 M after it, is the next point */
    g_assert_cmpuint(tt_grid_next(&l, 2, 400 * M), ==, 1300 * M);
    /* 100 M after a point: the one after next */
    g_assert_cmpuint(tt_grid_next(&l, 0, 100 * M), ==, 200 * M);
}

/* The even gap foreseen: the budget's snapshots spread to the target. */
static void test_gap_foreseen(void)
{
    const uint64_t at[] = { 0, 10 * M };
    const size_t sizes[] = { 100, 100 };
    TTLayout l = layout(at, 2, 10 * M);
    double gap;

    l.budget = 101 * 100;
    l.bytes = sizes;
    gap = tt_gap_foreseen(&l, 10000 * M);
    /* 100 fit, less the ramp's 5.7: 10 G in 94.3 gaps */
    g_assert_cmpfloat(gap, >, 105 * M);
    g_assert_cmpfloat(gap, <, 107 * M);
    /* a target close by: not below the interval */
    g_assert_cmpfloat(tt_gap_foreseen(&l, 500 * M), ==, 10 * M);
    /* one snapshot only: the average gap */
    l.n = 1;
    g_assert_cmpfloat(tt_gap_foreseen(&l, 1000 * M), ==, 10 * M);
}

/*
 * A sparse history with most of the budget left: the gap foreseen is
 * what the budget allows, not the average gap of the history behind;
 * and one large snapshot among small ones does not decide it.
 */
static void test_gap_foreseen_sparse(void)
{
    const uint64_t at[] = { 0, 1000 * M, 2000 * M, 3000 * M, 4000 * M };
    size_t sizes[] = { 100, 10, 10, 1000, 10 };
    TTLayout l = layout(at, 5, 10 * M);
    double gap;

    /* room for 1000 snapshots of 10 besides the first */
    l.budget = 100 + 1000 * 10;
    l.bytes = sizes;
    g_assert_cmpuint(tt_increment_bytes(&l), ==, 10);
    gap = tt_gap_foreseen(&l, 10000 * M);
    /* about 10 M, far below the average gap of 1000 M */
    g_assert_cmpfloat(gap, >=, 10 * M);
    g_assert_cmpfloat(gap, <, 12 * M);
    /* large snapshots from now on: they decide once they are most */
    sizes[2] = sizes[4] = 1000;
    g_assert_cmpuint(tt_increment_bytes(&l), ==, 1000);
    gap = tt_gap_foreseen(&l, 10000 * M);
    g_assert_cmpfloat(gap, >, 1000 * M);
}

/* The lower median of the newest eight after the first. */
static void test_increment_bytes(void)
{
    const uint64_t at[10] = { 0 };
    const size_t sizes[] = { 9999, 1, 50, 7, 3, 90, 5, 8, 6, 4 };
    TTLayout l = layout(at, 10, 10 * M);

    /* none known, or only the first: nothing to judge by */
    g_assert_cmpuint(tt_increment_bytes(&l), ==, 0);
    l.bytes = sizes;
    l.n = 1;
    g_assert_cmpuint(tt_increment_bytes(&l), ==, 0);
    /* one increment: its size; two: the smaller */
    l.n = 2;
    g_assert_cmpuint(tt_increment_bytes(&l), ==, 1);
    l.n = 3;
    g_assert_cmpuint(tt_increment_bytes(&l), ==, 1);
    /* the newest eight of nine (50 .. 4, not 1): 3 4 5 6 7 8 50 90 */
    l.n = 10;
    g_assert_cmpuint(tt_increment_bytes(&l), ==, 6);
}

/* @v within an instruction of @want (the interval is computed in double) */
static void assert_near(uint64_t v, double want)
{
    g_assert_cmpfloat(fabs((double)v - want), <=, 1);
}

static void test_adapt_interval(void)
{
    const uint64_t at[] = { 0 };
    TTLayout l = layout(at, 1, 4 * M);

    l.budget = 1000;
    /* the speed not known yet: thinned below the initial interval, doubles */
    g_assert_cmpuint(tt_adapt_interval(&l, true, 1000, 0, 0), ==, 8 * M);
    /* not above it */
    l.interval = TT_INTERVAL_INITIAL;
    g_assert_cmpuint(tt_adapt_interval(&l, true, 1000, 3e6, 0), ==,
                     TT_INTERVAL_INITIAL);
    /* budget mostly unused: halves, not below the minimum */
    l.interval = 4 * M;
    g_assert_cmpuint(tt_adapt_interval(&l, false, 100, 0, 0), ==, 2 * M);
    l.interval = TT_INTERVAL_MIN;
    g_assert_cmpuint(tt_adapt_interval(&l, false, 100, 0, 0), ==,
                     TT_INTERVAL_MIN);
    /* used between a quarter and all of it: unchanged */
    l.interval = 40 * M;
    g_assert_cmpuint(tt_adapt_interval(&l, false, 500, 3e6, 0), ==,
                     40 * M);
    /*
     * 1 ns per instruction: 10 M instructions run in 10 ms.  A snapshot
     * costing 3 ms may take a twentieth of the time: it needs an interval
     * of 60 M (the floor), and the interval goes a tenth above it
     */
    l.interval = 10 * M;
    assert_near(tt_adapt_interval(&l, false, 500, 3e6, 1), 66 * M);
    /* however little of the budget is used */
    assert_near(tt_adapt_interval(&l, false, 100, 3e6, 1), 66 * M);
    l.interval = 2 * M;
    assert_near(tt_adapt_interval(&l, false, 100, 3e6, 1), 66 * M);
    /* there, and up to a quarter above the floor: unchanged */
    l.interval = 66 * M;
    assert_near(tt_adapt_interval(&l, false, 500, 3e6, 1), 66 * M);
    assert_near(tt_adapt_interval(&l, false, 500, 2.8e6, 1), 66 * M);
    /* further above: down to a tenth above the floor */
    assert_near(tt_adapt_interval(&l, false, 500, 2.5e6, 1), 55 * M);
    l.interval = 40 * M;
    assert_near(tt_adapt_interval(&l, false, 500, 1e6, 1), 22 * M);
    /* below the initial interval too */
    assert_near(tt_adapt_interval(&l, false, 500, 0.4e6, 1), 8.8 * M);
    /* not below the minimum */
    assert_near(tt_adapt_interval(&l, false, 500, 0.01e6, 1),
                TT_INTERVAL_MIN);
    /*
     * The Linux test guest: snapshots of 3 ms, 8.5 ns per instruction, a
     * floor of 7.1 M.  With the budget full (thinned), the interval went
     * back to 10 M and stayed there: now 7.8 M, full budget or not
     */
    l.interval = 10 * M;
    assert_near(tt_adapt_interval(&l, true, 1000, 3e6, 8.5),
                3e6 * 20 / 8.5 * 1.1);
    l.interval = 5 * M;
    assert_near(tt_adapt_interval(&l, true, 1000, 3e6, 8.5),
                3e6 * 20 / 8.5 * 1.1);
    l.interval = 3e6 * 20 / 8.5 * 1.1;
    assert_near(tt_adapt_interval(&l, true, 1000, 3e6, 8.5),
                3e6 * 20 / 8.5 * 1.1);
    /* a snapshot slower by a quarter: a tenth above its floor */
    l.interval = 10 * M;
    assert_near(tt_adapt_interval(&l, false, 500, 5.75e6, 7.5),
                5.75e6 * 20 / 7.5 * 1.1);
    /* at most TT_INTERVAL_MAX */
    assert_near(tt_adapt_interval(&l, false, 500, 1e12, 1), TT_INTERVAL_MAX);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/replay/tt-policy/gap-wanted", test_gap_wanted);
    g_test_add_func("/replay/tt-policy/gap-cap", test_gap_cap);
    g_test_add_func("/replay/tt-policy/pick-merge-cluster",
                    test_pick_merge_cluster);
    g_test_add_func("/replay/tt-policy/pick-merge-by-distance",
                    test_pick_merge_by_distance);
    g_test_add_func("/replay/tt-policy/next-at", test_next_at);
    g_test_add_func("/replay/tt-policy/worth-filling", test_worth_filling);
    g_test_add_func("/replay/tt-policy/gap-foreseen", test_gap_foreseen);
    g_test_add_func("/replay/tt-policy/gap-foreseen-sparse",
                    test_gap_foreseen_sparse);
    g_test_add_func("/replay/tt-policy/increment-bytes",
                    test_increment_bytes);
    g_test_add_func("/replay/tt-policy/grid-next", test_grid_next);
    g_test_add_func("/replay/tt-policy/adapt-interval",
                    test_adapt_interval);
    return g_test_run();
}
