/*
 * qrr: time travel: where snapshots go, as pure functions
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Everything here decides from a TTLayout (the snapshots' instruction
 * counts and sizes, the interval and the budget) and touches no state, so
 * tests/unit/test-replay-tt-policy.c checks it without a machine.  The
 * rules are those of "SNAPSHOTS" in replay-timetravel.c:
 *
 *  - the gap wanted at distance d from the position the user works at is
 *    the interval near it, d / 2 behind it and d ahead of it, capped at
 *    the average gap (tt_gap_wanted());
 *  - over budget, the snapshot merged away is the one whose removal
 *    leaves the smallest gap for the gap wanted there (tt_pick_merge());
 *  - the next snapshot is due an interval after the latest one at or
 *    before the position (tt_next_at()), and a move towards a break far
 *    ahead takes them only as densely as the budget will keep them
 *    (tt_worth_filling());
 *  - the interval adapts to the budget's use and to what taking a
 *    snapshot costs (tt_adapt_interval()).
 */

#include "qemu/osdep.h"
#include <math.h>
/* pure: the part of replay-tt.h that needs no engine */
#define TT_PURE_ONLY
#include "replay-tt.h"

/*
 * How fast the gap wanted grows with the distance from the current
 * position, behind it and ahead of it (see tt_gap_wanted()).
 */
#define TT_RAMP_BEHIND 2.0
#define TT_RAMP_AHEAD 1.0

/*
 * What taking snapshots may cost, of the replay's time (tt_adapt_interval).
 * A twentieth: at a fifteenth, the Linux benchmark's snapshots took 6.2 %
 * of the vCPU thread's time on both architectures, as planned, and the
 * replay ran 1.07x (x86_64) and 1.11x (AArch64) as long as without time
 * travel (medians of 5 pairs): the vCPU runs slower between snapshots
 * too, which the share does not count, and the target is 1.10x in all.
 * At a twentieth they take 4.1 % and 4.7 % (docs/system/replay-bench.md).
 */
#define TT_COST_SHARE (1.0 / 20)

/*
 * The gap between snapshots wanted at instruction count @at when the
 * current position is @focus: the interval near it, growing with the
 * distance d (so that going back a little stays cheap wherever the user
 * is), up to @cap (so that history far away is still covered evenly).
 * Behind the position it grows as d / 2: going back d then replays at
 * most d / 2 from the snapshot before.  Ahead, as d: running forward d
 * from the position itself costs as much, so closer snapshots there buy
 * little.  With cap / interval = r, the ramp behind holds about
 * ln r / ln 1.5 snapshots (9 for r = 35), the one ahead ln r / ln 2,
 * leaving most of them to the even part.
 */
double tt_gap_wanted(uint64_t at, uint64_t focus, uint64_t interval,
                     double cap)
{
    double d = at > focus ? (at - focus) / TT_RAMP_AHEAD :
                            (focus - at) / TT_RAMP_BEHIND;

    return MIN(MAX(d, (double)interval), cap);
}

/*
 * About how many snapshots the ramp behind the position holds for @cap,
 * with TT_INTERVAL_INITIAL for the interval (the interval itself moves
 * with what snapshots cost, and a plan made with it would not stay even).
 */
double tt_ramp_count(double cap)
{
    return log(MAX(cap / TT_INTERVAL_INITIAL, 1.0)) /
           log1p(1 / TT_RAMP_BEHIND);
}

/* The largest gap wanted: the average gap (see tt_gap_wanted()). */
double tt_gap_cap(const TTLayout *l)
{
    uint64_t span = l->at[l->n - 1] - l->at[0];

    return MAX((double)span / l->n, (double)l->interval);
}

/* How many of the newest snapshots judge the size of the next ones */
#define TT_SIZE_SAMPLE 8

/*
 * The size that the next snapshots will have: the lower median of the
 * newest TT_SIZE_SAMPLE after the first (which holds all of RAM).  Not
 * the newest alone: on the Linux test guest, the one taken as its load
 * started held 21 MB, the next ones 2 to 4 MB, and a seek far ahead
 * that judged the budget by it spaced its snapshots 2 G instructions
 * apart where 120 M would have fitted.
 */
size_t tt_increment_bytes(const TTLayout *l)
{
    size_t s[TT_SIZE_SAMPLE];
    unsigned k = MIN(l->n - 1, TT_SIZE_SAMPLE), i, j;

    if (!l->bytes || !k) {
        return 0;
    }
    for (i = 0; i < k; i++) {
        size_t v = l->bytes[l->n - k + i];

        for (j = i; j > 0 && s[j - 1] > v; j--) {
            s[j] = s[j - 1];
        }
        s[j] = v;
    }
    return s[(k - 1) / 2];
}

/*
 * The even gap that the budget will allow between the first snapshot and
 * @target: the snapshots of the size the next ones will have
 * (tt_increment_bytes()) that fit in the budget besides the first, less
 * those of the ramp behind @target (a seek leaves none ahead of where it
 * lands); never below the interval.  The average gap (tt_gap_cap()) if
 * there is a single snapshot or no size is known.  Not at least the
 * average gap: after a seek far ahead judged by a large snapshot, the
 * history behind was sparse, and the average gap kept every later seek
 * just as sparse with most of the budget unused.
 */
double tt_gap_foreseen(const TTLayout *l, uint64_t target)
{
    size_t inc = tt_increment_bytes(l);
    double n, even;

    if (l->n < 2 || !inc || l->budget <= l->bytes[0] ||
        target <= l->at[0]) {
        return tt_gap_cap(l);
    }
    n = (double)(l->budget - l->bytes[0]) / inc;
    even = (target - l->at[0]) / MAX(n, 1.0);
    n = MAX(n - tt_ramp_count(even), n / 2);
    return MAX((target - l->at[0]) / MAX(n, 1.0), (double)l->interval);
}

/*
 * The snapshot to merge away (neither the first nor the last, so @l has
 * at least 3): the one whose removal leaves the smallest gap for its
 * distance from @focus (tt_gap_wanted()).
 */
unsigned tt_pick_merge(const TTLayout *l, uint64_t focus)
{
    double cap = tt_gap_cap(l);
    double best = 0;
    unsigned i, pick = 1;

    for (i = 1; i + 1 < l->n; i++) {
        double gap = l->at[i + 1] - l->at[i - 1];
        double score = gap / tt_gap_wanted(l->at[i], focus, l->interval, cap);

        if (i == 1 || score < best) {
            best = score;
            pick = i;
        }
    }
    return pick;
}

/*
 * Where the next snapshot is due, @p being the latest at or before the
 * current position (-1: none, due at once): an interval after it, unless
 * one already follows within half an interval of that point.
 */
uint64_t tt_next_at(const TTLayout *l, int p)
{
    uint64_t at;

    if (p < 0) {
        return 0;
    }
    at = l->at[p] + l->interval;
    while (p + 1 < (int)l->n && l->at[p + 1] < at + l->interval / 2) {
        p++;
        at = l->at[p] + l->interval;
    }
    return at;
}

/*
 * The even part of the history is a grid of @gap from the first
 * snapshot: the next point of it at least half a gap after snapshot @p.
 * Measured from the newest snapshot instead, the few that history holds
 * near its start when a seek begins (taken an interval apart) would
 * shift the whole grid, and once thinning merged them away, the first
 * gap would be wider than the others by that shift.
 */
uint64_t tt_grid_next(const TTLayout *l, int p, double gap)
{
    double from = l->at[p] - l->at[0] + gap / 2;

    return l->at[0] + (uint64_t)(ceil(from / gap) * gap);
}

/*
 * A move on its way to a break position far ahead takes snapshots only
 * as densely as thinning would keep them once it has arrived: where the
 * user lands matters, not the way there.  Otherwise each long seek would
 * insert a snapshot every interval and thin all the history elsewhere to
 * pay for them.  In a gap it crosses, that is the gap wanted there.
 * After the newest snapshot, that is the even gap the budget will allow
 * up to the break (tt_gap_foreseen()), on a grid from the first snapshot
 * (tt_grid_next()), until the ramp that leads to the break: placed
 * evenly as the replay first gets there, history far from the user needs
 * no thinning, which can only merge neighbours and leaves gaps twice as
 * wide beside others.
 *
 * @p is the latest snapshot strictly before @now, @target the break
 * position (-1: none): true if a snapshot is worth taking at @now.
 */
bool tt_worth_filling(const TTLayout *l, int p, uint64_t now, int64_t target)
{
    double cap, wanted;

    if (p < 0 || target <= (int64_t)now) {
        return true;
    }
    cap = p + 1 == (int)l->n ? tt_gap_foreseen(l, target) : tt_gap_cap(l);
    wanted = tt_gap_wanted(now, target, l->interval, cap);
    if (p + 1 < (int)l->n || wanted < cap) {
        return now - l->at[p] >= wanted;
    }
    return now >= tt_grid_next(l, p, cap);
}

/*
 * How far above the cost's floor the interval is set, and how far above
 * it the interval may drift before it comes down (see tt_adapt_interval())
 */
#define TT_FLOOR_MARGIN 1.1
#define TT_FLOOR_SLACK 1.25

/*
 * The interval after a snapshot was taken.  Once the replay's speed
 * (@ns_per_insn) is known, the cost decides: the interval is as fine as
 * taking a snapshot (@cost_ns, merges included) allows for it to cost
 * TT_COST_SHARE of the time the replay takes to run an interval (the
 * floor), TT_FLOOR_MARGIN above it, set there whenever it falls below
 * the floor or drifts more than TT_FLOOR_SLACK above it (snapshot costs
 * vary), and never below TT_INTERVAL_MIN.  Judged by the speed of
 * running an interval, not by the time since the last snapshot: the
 * ramp towards a break takes a few snapshots closer than the interval on
 * purpose, and would otherwise coarsen it for the rest of the replay.
 *
 * Whether the budget is full does not move it: the floor counts the
 * merges that a full budget adds to each snapshot, and the gap that the
 * user's reverse steps replay is the interval near where they work.
 * Going back to TT_INTERVAL_INITIAL whenever merging was needed (as
 * before) kept the Linux benchmark's x86_64 replay at 10 M instructions
 * with a floor of 6 to 9 M, and a reverse step replays half an interval
 * on average.  Not by doubling and halving either: steps of two left it
 * anywhere up to twice the floor, and the slack kept it there.
 *
 * Before the speed is known: towards TT_INTERVAL_INITIAL when the budget
 * is full (@thinned), finer while it is less than a quarter used.
 *
 * The share leaves room under the 10% that a replay with time travel
 * may cost more than one without (docs/system/replay-bench.md) for the
 * restores; where the cost decides the interval, a reverse step replays
 * about cost / share / 2 of host time, and the margin (28 ms for a
 * 2.5 ms snapshot).
 */
uint64_t tt_adapt_interval(const TTLayout *l, bool thinned, uint64_t used,
                           double cost_ns, double ns_per_insn)
{
    uint64_t interval = l->interval;
    double floor;

    if (ns_per_insn <= 0) {
        if (thinned && interval < TT_INTERVAL_INITIAL) {
            return interval * 2;
        }
        if (!thinned && used < l->budget / 4 &&
            interval > TT_INTERVAL_MIN) {
            return interval / 2;
        }
        return interval;
    }
    floor = cost_ns / TT_COST_SHARE / ns_per_insn;
    if (interval < floor || interval > floor * TT_FLOOR_SLACK) {
        double want = floor * TT_FLOOR_MARGIN;

        return MIN(MAX(want, (double)TT_INTERVAL_MIN),
                   (double)TT_INTERVAL_MAX);
    }
    return interval;
}
