/*
 * qrr: time travel: in-memory snapshots of a replay, seeking to any
 * instruction count, reverse execution for gdb
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * SNAPSHOTS
 *
 * While replaying, the vCPU takes a snapshot of the whole machine between
 * two execution slices whenever it is at a quiet point (nothing due at
 * this instruction count, no asynchronous event queued, no blkreplay
 * request in flight, no single-step or one-instruction block pending) at
 * least tt.interval instructions after the previous one.  A snapshot
 * holds:
 *
 *  - the device state, CPU and icount timers included, as
 *    qemu_save_device_state() writes it into a memory buffer;
 *  - guest RAM: the first snapshot has every non-zero page of every
 *    migratable RAMBlock (a page it lacks is zero); each later one has
 *    the pages that changed since the one before, found with QEMU's dirty
 *    memory log (the DIRTY_MEMORY_MIGRATION bitmap, see tt_dirty_fetch());
 *  - the replay engine's state (replay_engine_save(): log position,
 *    decoded but unconsumed events, counters, sync-point registers);
 *  - copies of the blkreplay drives' write overlays.
 *
 * A replay that nobody steers never needs its history, and snapshots cost
 * replay time, so they start ("arming") at the replay's first stop (gdb
 * attaching, a monitor stop, a break), or at once for a replay started
 * paused (-S) or given rrbudget= explicitly.
 *
 * Snapshots are kept in order of position.  Most are taken after the
 * newest one, as the replay first gets there; after a restore, the
 * replay running forward fills the gaps wider than the interval that it
 * crosses.  Such a snapshot holds the pages changed since the one the
 * replay came from ("the base": restored or taken last), which the dirty
 * log and tt.blocks[].since_base say; the later snapshots' increments
 * still hold every page changed since the snapshot before them.
 *
 * They share one memory budget (-icount rrbudget=SIZE, by default twice
 * the guest's RAM): when the snapshots exceed it, one between the first
 * and the last is merged into its successor (its pages that the successor
 * lacks move there).  The one merged is the one whose removal leaves the
 * smallest gap for its distance d from the current position, the gap
 * wanted being the interval near it, d / 2 further back and d further
 * ahead, and at most the average gap: history stays dense where the user
 * works, and is covered evenly elsewhere.  A move towards a break far
 * ahead (a seek) does not take a snapshot every interval to thin them
 * later: it takes them as far apart as the budget will allow once it has
 * arrived (tt_worth_filling()), so that the history it leaves is even (on
 * the benchmark's guest, 65 s of guest time in 125 snapshots: a gap of
 * 10 M instructions at the current position, about 370 M far from it).
 * The interval is 10 M instructions when the budget is full, down to 1 M
 * while it is mostly unused, and doubles when taking snapshots costs more
 * than a tenth of the replay's time.
 *
 * RESTORING
 *
 * A restore first leaves the current position as loadvm does: the
 * callbacks queued for it run, disk requests in flight finish, and the
 * machine is reset, because loading device state sets only what the
 * snapshot holds (tt_abandon_position()).
 *
 * The RAM of snapshot k is the first snapshot's pages overlaid with
 * every later increment up to k.  Restoring writes only the pages that can
 * differ from snapshot k: those that differ from the newest snapshot (the
 * "tip") in the current RAM, which tt.blocks[].since_tip and the dirty log
 * say, plus those that differ between snapshot k and the tip, which are
 * the pages of the increments after k.  The latter then become since_tip.
 * Device state is loaded after RAM (devices read guest memory in their
 * post_load), then the overlays and the engine state; then the guest's
 * timers are put back as they were (replay-timers.c: post_load may arm
 * timers that were not pending, the reset stops those that vmstate does
 * not hold), and translated code is flushed.
 *
 * MOVING
 *
 * Every move (replay-seek, gdb's reverse-stepi and reverse-continue)
 * restores the latest snapshot at or before the target and runs forward
 * to the target's position with the engine's break position, where the
 * replay freezes (see replay_break_reached()).  While moving, gdb's
 * breakpoints and watchpoints do not stop the machine
 * (replay_running_debug()): reverse-continue runs each window between two
 * snapshots once, noting where they hit (replay_breakpoint()), then goes
 * to the last hit.  Restores and the intermediate steps of a move are
 * made by the vCPU thread between two slices (replay_tt_vcpu_work()),
 * without stopping the machine, so gdb sees one stop.
 */

#include "qemu/osdep.h"
#include <math.h>
#include "qapi/error.h"
#include "qapi/qapi-commands-replay.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/option.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "exec/breakpoint.h"
#include "exec/cputlb.h"
#include "exec/gdbstub.h"
#include "exec/memory.h"
#include "exec/ram_addr.h"
#include "exec/ramblock.h"
#include "exec/target_page.h"
#include "exec/tb-flush.h"
#include "block/block-global-state.h"
#include "io/channel-buffer.h"
#include "migration/global_state.h"
#include "migration/qemu-file.h"
#include "migration/savevm.h"
#include "system/cpus.h"
#include "system/replay.h"
#include "system/runstate.h"
#include "system/system.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "replay-internal.h"
#include "trace.h"

#define TT_INTERVAL_INITIAL (10 * 1000 * 1000)
#define TT_INTERVAL_MIN (1000 * 1000)
#define TT_INTERVAL_MAX (UINT64_C(1) << 40)

/*
 * The reason for the dirty log that finds changed pages.  QEMU has none
 * for us; GLOBAL_DIRTY_LIMIT is only used by the dirty-limit throttle,
 * which needs KVM's dirty ring, so under TCG nothing else sets or reads
 * it.  (A reason of our own would change include/exec/memory.h, which
 * nearly every file includes.)  The log itself is DIRTY_MEMORY_MIGRATION:
 * migration, which also clears it, is refused in record/replay.
 */
#define TT_DIRTY_REASON GLOBAL_DIRTY_LIMIT

/* One guest page of a snapshot. */
typedef struct TTPage {
    uint64_t index;             /* page number in its RAMBlock */
    uint8_t *data;              /* NULL: the page is zero */
} TTPage;

/* A migratable RAMBlock. */
typedef struct TTBlock {
    RAMBlock *rb;
    uint8_t *host;
    uint64_t npages;
    /* pages that may differ from the newest snapshot's */
    unsigned long *since_tip;
    /* pages that may differ from tt.base's, besides the dirty log's */
    unsigned long *since_base;
} TTBlock;

typedef struct TTSnapshot {
    ReplayPos pos;
    uint8_t *dev;               /* qemu_save_device_state() output */
    size_t dev_len;
    ReplayEngineState *engine;
    BlkreplaySnapshot *blk;
    size_t blk_bytes;
    ReplayTimers *timers;       /* the guest's pending timers */
    GArray **pages;             /* per TTBlock: TTPage by index */
    uint64_t npages;            /* pages holding data */
    size_t bytes;               /* memory held */
    int64_t taken_ms;           /* host time (QEMU_CLOCK_REALTIME) */
} TTSnapshot;

typedef enum TTOp {
    TT_OP_NONE,
    TT_OP_SEEK,                 /* run to the break, then stop */
    TT_OP_SEARCH,               /* run a window noting debug hits */
} TTOp;

typedef struct TTHit {
    ReplayPos pos;
    bool watch;
    int cpu;                    /* cpu_index of the vCPU that hit; -1 */
} TTHit;

static struct {
    bool enabled;
    bool armed;                 /* history is kept from now on */
    bool budget_set;
    bool warned_budget;
    uint64_t budget;
    uint64_t interval;
    uint64_t next_at;           /* icount of the next snapshot */
    /*
     * The snapshot that the dirty log counts from (with since_base): the
     * one restored or taken last, or the one before it if that was merged
     */
    ReplayPos base;
    int64_t last_take_ns;       /* host time when the last one was taken */
    GPtrArray *snaps;           /* TTSnapshot *, by position */
    GArray *blocks;             /* TTBlock */
    size_t used;
    size_t page_size;

    TTOp op;
    guint window;               /* SEARCH: the snapshot searched from */
    ReplayPos window_end;       /* SEARCH: where the window ends */
    GArray *hits;               /* TTHit in the window, by position */
    TTHit landing;              /* the hit a search lands on */
    const char *stop_reason;    /* for gdb's next stop reply */
    /* work for the vCPU thread (see replay_tt_vcpu_work()) */
    bool step_pending;          /* take the next step of the move */
    bool restore_pending;       /* restore snapshot restore_k, then */
    guint restore_k;            /* break at brk */
    ReplayPos brk;
    int brk_runstate;
    int64_t op_start_ns;
    int64_t last_op_ns;         /* how long the last move took */
    uint64_t restores;
} tt;

static TTSnapshot *snap_at(guint i)
{
    return g_ptr_array_index(tt.snaps, i);
}

/* The latest snapshot at (or strictly before) @p; -1 if none. */
static int tt_find(const ReplayPos *p, bool strict)
{
    int i;

    for (i = tt.snaps->len - 1; i >= 0; i--) {
        int c = replay_pos_cmp(&snap_at(i)->pos, p);

        if (c < 0 || (c == 0 && !strict)) {
            return i;
        }
    }
    return -1;
}

/* ---- configuration ---- */

void replay_tt_configure(QemuOpts *opts)
{
    const char *b = qemu_opt_get(opts, "rrbudget");

    tt.budget_set = b != NULL;
    tt.budget = qemu_opt_get_size(opts, "rrbudget", 0);
    tt.interval = TT_INTERVAL_INITIAL;
    tt.snaps = g_ptr_array_new();
    tt.blocks = g_array_new(false, true, sizeof(TTBlock));
    tt.hits = g_array_new(false, false, sizeof(TTHit));
}

void replay_tt_start(void)
{
    tt.enabled = !tt.budget_set || tt.budget > 0;
    /* a replay started paused, or given a budget, keeps all its history */
    tt.armed = tt.budget_set || !autostart;
    tt.page_size = qemu_target_page_size();
}

void replay_tt_arm(void)
{
    tt.armed = true;
}

/* ---- guest RAM ---- */

static int tt_add_block(RAMBlock *rb, void *opaque)
{
    TTBlock b = { .rb = rb };

    if (!qemu_ram_is_migratable(rb)) {
        return 0;
    }
    b.host = qemu_ram_get_host_addr(rb);
    b.npages = qemu_ram_get_used_length(rb) / tt.page_size;
    b.since_tip = bitmap_new(b.npages);
    b.since_base = bitmap_new(b.npages);
    trace_replay_tt_block(qemu_ram_get_idstr(rb), b.npages);
    g_array_append_val(tt.blocks, b);
    return 0;
}

static TTBlock *tt_block(guint i)
{
    return &g_array_index(tt.blocks, TTBlock, i);
}

/* Or the pages of @b written since the last call into @into; clear them. */
static void tt_dirty_fetch(TTBlock *b, unsigned long *into)
{
    ram_addr_t base = qemu_ram_get_offset(b->rb);
    DirtyBitmapSnapshot *d;
    uint64_t i;

    d = cpu_physical_memory_snapshot_and_clear_dirty(
        b->rb->mr, 0, b->npages * tt.page_size, DIRTY_MEMORY_MIGRATION);
    for (i = 0; i < b->npages; i++) {
        if (cpu_physical_memory_snapshot_get_dirty(d, base + i * tt.page_size,
                                                   tt.page_size)) {
            set_bit(i, into);
        }
    }
    g_free(d);
}

static void tt_pages_free(GArray *pages)
{
    guint i;

    for (i = 0; i < pages->len; i++) {
        g_free(g_array_index(pages, TTPage, i).data);
    }
    g_array_free(pages, true);
}

/* ---- device state ---- */

static bool tt_save_devices(TTSnapshot *s, Error **errp)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(256 * KiB);
    QEMUFile *f = qemu_file_new_output(QIO_CHANNEL(bioc));
    int ret;

    /* "globalstate" holds a run state only once one is stored */
    global_state_store_running();
    replay_state.tt_busy = true;
    ret = qemu_save_device_state(f);
    replay_state.tt_busy = false;
    if (ret >= 0) {
        ret = qemu_fflush(f);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "saving the device state failed");
    } else {
        s->dev = g_memdup2(bioc->data, bioc->usage);
        s->dev_len = bioc->usage;
    }
    qemu_fclose(f);
    object_unref(OBJECT(bioc));
    return ret >= 0;
}

static bool tt_load_devices(TTSnapshot *s, Error **errp)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(s->dev_len);
    QEMUFile *f;
    int ret = -EINVAL;

    memcpy(bioc->data, s->dev, s->dev_len);
    bioc->usage = s->dev_len;
    f = qemu_file_new_input(QIO_CHANNEL(bioc));
    if (qemu_get_be32(f) == QEMU_VM_FILE_MAGIC &&
        qemu_get_be32(f) == QEMU_VM_FILE_VERSION) {
        replay_state.tt_busy = true;
        ret = qemu_load_device_state(f);
        replay_state.tt_busy = false;
    }
    qemu_fclose(f);
    object_unref(OBJECT(bioc));
    if (ret < 0) {
        error_setg(errp, "loading the device state of the snapshot at "
                   "icount %" PRIu64 " failed (%d)", s->pos.icount, ret);
        return false;
    }
    return true;
}

/* ---- taking snapshots ---- */

static void tt_snapshot_free(TTSnapshot *s)
{
    guint i;

    if (s->pages) {
        for (i = 0; i < tt.blocks->len; i++) {
            if (s->pages[i]) {
                tt_pages_free(s->pages[i]);
            }
        }
        g_free(s->pages);
    }
    g_free(s->dev);
    replay_engine_free(s->engine);
    blkreplay_snapshot_free(s->blk);
    replay_timers_free(s->timers);
    g_free(s);
}

static size_t tt_pages_bytes(GArray *pages, uint64_t *with_data)
{
    size_t bytes = pages->len * sizeof(TTPage);
    guint i;

    for (i = 0; i < pages->len; i++) {
        if (g_array_index(pages, TTPage, i).data) {
            bytes += tt.page_size;
            (*with_data)++;
        }
    }
    return bytes;
}

static void tt_snapshot_account(TTSnapshot *s)
{
    guint i;

    s->npages = 0;
    s->bytes = sizeof(*s) + s->dev_len + replay_engine_size(s->engine) +
               s->blk_bytes + replay_timers_size(s->timers);
    for (i = 0; i < tt.blocks->len; i++) {
        s->bytes += tt_pages_bytes(s->pages[i], &s->npages);
    }
}

/* Or the page numbers of @pages into @bits. */
static void tt_pages_mark(GArray *pages, unsigned long *bits)
{
    guint x;

    for (x = 0; x < pages->len; x++) {
        set_bit(g_array_index(pages, TTPage, x).index, bits);
    }
}

/* Merge snapshot @i (neither the first nor the last) into @i + 1. */
static void tt_merge(guint i)
{
    TTSnapshot *s = snap_at(i), *next = snap_at(i + 1);
    guint b;

    if (!replay_pos_cmp(&s->pos, &tt.base)) {
        /* the RAM differs from the one before by what @s changed, too */
        for (b = 0; b < tt.blocks->len; b++) {
            tt_pages_mark(s->pages[b], tt_block(b)->since_base);
        }
        tt.base = snap_at(i - 1)->pos;
    }
    tt.used -= s->bytes + next->bytes;
    for (b = 0; b < tt.blocks->len; b++) {
        GArray *a = s->pages[b], *n = next->pages[b];
        GArray *m = g_array_sized_new(false, false, sizeof(TTPage),
                                      a->len + n->len);
        guint x = 0, y = 0;

        while (x < a->len || y < n->len) {
            TTPage *pa = x < a->len ? &g_array_index(a, TTPage, x) : NULL;
            TTPage *pn = y < n->len ? &g_array_index(n, TTPage, y) : NULL;

            if (pn && (!pa || pn->index <= pa->index)) {
                if (pa && pa->index == pn->index) {
                    g_free(pa->data);   /* the later content wins */
                    x++;
                }
                g_array_append_val(m, *pn);
                y++;
            } else {
                g_array_append_val(m, *pa);
                x++;
            }
        }
        g_array_free(a, true);
        g_array_free(n, true);
        s->pages[b] = NULL;
        next->pages[b] = m;
    }
    tt_snapshot_account(next);
    tt.used += next->bytes;
    trace_replay_tt_thin(s->pos.icount, tt.used);
    tt_snapshot_free(s);
    g_ptr_array_remove_index(tt.snaps, i);
}

/*
 * How fast the gap wanted grows with the distance from the current
 * position, behind it and ahead of it (see tt_gap_wanted()).
 */
#define TT_RAMP_BEHIND 2.0
#define TT_RAMP_AHEAD 1.0

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
static double tt_gap_wanted(uint64_t at, uint64_t focus, double cap)
{
    double d = at > focus ? (at - focus) / TT_RAMP_AHEAD :
                            (focus - at) / TT_RAMP_BEHIND;

    return MIN(MAX(d, (double)tt.interval), cap);
}

/*
 * About how many snapshots the ramp behind the position holds for @cap,
 * with the interval it has when the budget is full (the interval itself
 * changes as the budget fills, and a plan made with it would not stay
 * even).
 */
static double tt_ramp_count(double cap)
{
    return log(MAX(cap / TT_INTERVAL_INITIAL, 1.0)) /
           log1p(1 / TT_RAMP_BEHIND);
}

/* The largest gap wanted: the average gap (see tt_gap_wanted()). */
static double tt_gap_cap(void)
{
    uint64_t span = snap_at(tt.snaps->len - 1)->pos.icount -
                    snap_at(0)->pos.icount;

    return MAX((double)span / tt.snaps->len, (double)tt.interval);
}

/*
 * The even gap that the budget will allow between the first snapshot and
 * @target, judged by the newest snapshot's size: the snapshots that fit
 * in the budget besides the first, less those of the ramp behind @target
 * (a seek leaves none ahead of where it lands).  The average gap
 * (tt_gap_cap()) if that is larger, or if there is a single snapshot.
 */
static double tt_gap_foreseen(uint64_t target)
{
    TTSnapshot *first = snap_at(0), *tip = snap_at(tt.snaps->len - 1);
    double cap = tt_gap_cap(), n, even;

    if (tt.snaps->len < 2 || tt.budget <= first->bytes ||
        target <= first->pos.icount) {
        return cap;
    }
    n = (double)(tt.budget - first->bytes) / MAX(tip->bytes, 1);
    even = (target - first->pos.icount) / MAX(n, 1.0);
    n = MAX(n - tt_ramp_count(even), n / 2);
    return MAX(cap, (target - first->pos.icount) / n);
}

/*
 * Stay within the budget: merge away snapshots between the first and the
 * last, each time the one whose removal leaves the smallest gap for its
 * distance from the current position (tt_gap_wanted()).
 */
static bool tt_fit_budget(void)
{
    uint64_t focus = replay_icount();
    bool thinned = false;

    while (tt.used > tt.budget && tt.snaps->len > 2) {
        double cap = tt_gap_cap();
        double best = 0;
        guint i, pick = 1;

        for (i = 1; i + 1 < tt.snaps->len; i++) {
            uint64_t at = snap_at(i)->pos.icount;
            double gap = snap_at(i + 1)->pos.icount -
                         snap_at(i - 1)->pos.icount;
            double score = gap / tt_gap_wanted(at, focus, cap);

            if (i == 1 || score < best) {
                best = score;
                pick = i;
            }
        }
        tt_merge(pick);
        thinned = true;
    }
    if (tt.used > tt.budget && !tt.warned_budget) {
        tt.warned_budget = true;
        warn_report("record/replay: time-travel snapshots need %zu MiB, "
                    "more than rrbudget=%" PRIu64 " MiB; keeping only the "
                    "first and the latest", tt.used / MiB, tt.budget / MiB);
    }
    return thinned;
}

/*
 * Where the next snapshot is due: an interval after the latest one at or
 * before the current position, unless one already follows within half
 * an interval of that point.
 */
static void tt_plan_next(void)
{
    ReplayPos now = replay_position();
    int p = tt_find(&now, false);
    uint64_t at;

    if (p < 0) {
        tt.next_at = 0;
        return;
    }
    at = snap_at(p)->pos.icount + tt.interval;
    while (p + 1 < tt.snaps->len &&
           snap_at(p + 1)->pos.icount < at + tt.interval / 2) {
        p++;
        at = snap_at(p)->pos.icount + tt.interval;
    }
    tt.next_at = at;
}

/*
 * The pages of block @b that the new snapshot holds: every non-zero page
 * for the first; else those that may differ from the snapshot before it,
 * the newest (@append) or the one the position came from.
 */
static GArray *tt_take_pages(guint b, bool first, bool append)
{
    TTBlock *blk = tt_block(b);
    g_autofree unsigned long *dirty = bitmap_new(blk->npages);
    GArray *pages = g_array_new(false, false, sizeof(TTPage));
    unsigned long i;

    tt_dirty_fetch(blk, dirty);
    if (first) {
        bitmap_fill(dirty, blk->npages);
    }
    if (append) {
        bitmap_or(dirty, dirty, blk->since_tip, blk->npages);
        bitmap_zero(blk->since_tip, blk->npages);
    } else {
        bitmap_or(blk->since_tip, blk->since_tip, dirty, blk->npages);
        bitmap_or(dirty, dirty, blk->since_base, blk->npages);
    }
    bitmap_zero(blk->since_base, blk->npages);
    for (i = find_first_bit(dirty, blk->npages); i < blk->npages;
         i = find_next_bit(dirty, blk->npages, i + 1)) {
        uint8_t *p = blk->host + i * tt.page_size;
        TTPage pg = { .index = i };

        if (!buffer_is_zero(p, tt.page_size)) {
            pg.data = g_memdup2(p, tt.page_size);
        } else if (first) {
            continue;       /* absent from the first: zero */
        }
        g_array_append_val(pages, pg);
    }
    return pages;
}

/* The first snapshot: find the RAM, start the dirty log. */
static bool tt_take_first(Error **errp)
{
    qemu_ram_foreach_block(tt_add_block, NULL);
    if (!tt.budget_set) {
        /* the guest's RAM (-m), not flash and ROMs */
        tt.budget = MAX(2 * current_machine->ram_size, 64 * MiB);
    }
    return memory_global_dirty_log_start(TT_DIRTY_REASON, errp);
}

/*
 * Adapt the interval: back towards TT_INTERVAL_INITIAL when the budget
 * is full, finer while it is mostly unused; coarser when taking
 * snapshots costs more than a tenth of the replay's time.
 */
static void tt_adapt_interval(bool thinned, int64_t t0)
{
    int64_t cost = get_clock() - t0;

    if (thinned && tt.interval < TT_INTERVAL_INITIAL) {
        tt.interval *= 2;
    } else if (!thinned && tt.used < tt.budget / 4 &&
               tt.interval > TT_INTERVAL_MIN) {
        tt.interval /= 2;
    }
    if (tt.last_take_ns) {
        if (cost * 10 > t0 - tt.last_take_ns) {
            tt.interval = MIN(tt.interval * 2, TT_INTERVAL_MAX);
        } else if (cost * 40 < t0 - tt.last_take_ns &&
                   tt.interval > TT_INTERVAL_INITIAL) {
            tt.interval /= 2;
        }
    }
    tt.last_take_ns = get_clock();
}

/*
 * Take a snapshot here.  Usually after the newest one; after a restore,
 * in the gap between two (it then holds the pages changed since the
 * snapshot the replay came from, tt.base, and the later snapshots stay
 * valid: their increments hold every page changed since the one before
 * them).
 */
static void tt_take(CPUState *cpu)
{
    TTSnapshot *s;
    bool first = tt.snaps->len == 0, append;
    int64_t t0 = get_clock();
    ReplayPos now = replay_position();
    int p = tt_find(&now, true);
    Error *err = NULL;
    guint b;

    if (p + 1 < (int)tt.snaps->len &&
        !replay_pos_cmp(&snap_at(p + 1)->pos, &now)) {
        return;                 /* there is one here */
    }
    append = p + 1 == (int)tt.snaps->len;
    bql_lock();
    if (replay_async_pending() || blkreplay_busy()) {
        bql_unlock();
        return;
    }
    s = g_new0(TTSnapshot, 1);
    if (!tt_save_devices(s, &err) || (first && !tt_take_first(&err))) {
        bql_unlock();
        error_prepend(&err, "record/replay: time travel is off: ");
        warn_report_err(err);
        tt_snapshot_free(s);
        tt.enabled = false;
        return;
    }
    s->pos = now;
    s->engine = replay_engine_save();
    s->blk = blkreplay_snapshot_save(&s->blk_bytes);
    s->timers = replay_timers_save();
    s->taken_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    s->pages = g_new0(GArray *, tt.blocks->len);
    for (b = 0; b < tt.blocks->len; b++) {
        s->pages[b] = tt_take_pages(b, first, append);
    }
    bql_unlock();

    tt_snapshot_account(s);
    tt.used += s->bytes;
    g_ptr_array_insert(tt.snaps, p + 1, s);
    tt.base = s->pos;
    trace_replay_tt_snapshot(s->pos.icount, s->pos.consumed, s->npages,
                             s->bytes, tt.used);

    tt_adapt_interval(tt_fit_budget(), t0);
    tt_plan_next();
}

/*
 * A move on its way to a break position far ahead takes snapshots only
 * as densely as thinning would keep them once it has arrived: where the
 * user lands matters, not the way there.  Otherwise each long seek would
 * insert a snapshot every interval and thin all the history elsewhere to
 * pay for them.  In a gap it crosses, that is the gap wanted there.
 * After the newest snapshot, that is the even gap the budget will allow
 * up to the break (tt_gap_foreseen()): placed evenly as the replay first
 * gets there, history far from the user needs no thinning, which can only
 * merge neighbours and leaves gaps twice as wide beside others.
 * Snapshots of a replay running with no break ahead are always taken.
 */
static bool tt_worth_filling(void)
{
    ReplayPos now = replay_position();
    int64_t target = replay_state.break_icount;
    int p = tt_find(&now, true);
    double cap;

    if (p < 0 || target <= (int64_t)now.icount) {
        return true;
    }
    cap = p + 1 == (int)tt.snaps->len ? tt_gap_foreseen(target) :
                                        tt_gap_cap();
    if (now.icount - snap_at(p)->pos.icount >=
        tt_gap_wanted(now.icount, target, cap)) {
        return true;
    }
    tt.next_at = now.icount + tt.interval;
    return false;
}

void replay_tt_slice_end(void)
{
    CPUState *cpu = first_cpu;

    /*
     * Not while a search walks the snapshots by index, nor while gdb
     * single-steps, except for the first snapshot: a replay started with
     * -S whose first moves are stepi must still be able to go back.
     */
    if (!tt.enabled || !tt.armed ||
        (tt.op != TT_OP_NONE && tt.op != TT_OP_SEEK) || !cpu ||
        replay_icount() < tt.next_at || !replay_state.started ||
        replay_state.at_end || !replay_quiet_point() ||
        (cpu->singlestep_enabled && tt.snaps->len) ||
        cpu->cflags_next_tb != -1 ||
        cpu->exception_index != -1 || !runstate_is_running()) {
        return;
    }
    /* a later snapshot may have been passed since the plan was made */
    tt_plan_next();
    if (replay_icount() >= tt.next_at && tt_worth_filling()) {
        tt_take(cpu);
    }
}

/* ---- restoring ---- */

/*
 * Leave the current position as a fresh migration target would be: work
 * queued for it done, no disk request in flight, every device reset.
 * Loading device state only sets what the snapshot holds, and a device
 * leaves out what is at its reset value (a subsection whose .needed is
 * false: an empty FIFO, a timer not pending); without the reset those
 * would keep their values from the position left.  QEMU's loadvm resets
 * the machine for the same reason.
 *
 * Just before the reset, the TLBs are flushed without shrinking them:
 * cputlb sizes a TLB at each flush by the entries used since the flush
 * before, and here those are the few pages that the replay touched since
 * the restore before.  The reset's own flush then finds the resize window
 * just opened (hence right before it: a drain may take long) and keeps
 * the size too.  Otherwise a guest that never flushes its TLB itself
 * (bare metal, MMU off) would run on with one too small for its working
 * set, several times slower, until the next restore.
 */
static void tt_abandon_position(void)
{
    CPUState *cpu;

    replay_state.tt_abandoning = true;
    replay_state.tt_busy = true;
    replay_async_abandon();
    if (blkreplay_busy()) {
        bdrv_drain_all();
    }
    CPU_FOREACH(cpu) {
        tlb_flush_no_shrink(cpu);
    }
    qemu_system_reset(SHUTDOWN_CAUSE_SNAPSHOT_LOAD);
    replay_state.tt_busy = false;
    replay_state.tt_abandoning = false;
}

/*
 * The vCPUs forget the slice, the pending exception and the translated
 * code of the machine that was there before a restore or a loadvm.  Their
 * TLBs keep their size, as in tt_abandon_position(): a restore that wrote
 * much RAM may have outlasted the resize window opened there.
 */
static void tt_vcpus_forget(void)
{
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        cpu->icount_budget = 0;
        cpu->icount_extra = 0;
        cpu->neg.icount_decr.u16.low = 0;
        cpu->exception_index = -1;
        cpu->cflags_next_tb = -1;
        tlb_flush_no_shrink(cpu);
    }
    if (first_cpu) {
        tb_flush(first_cpu);
    }
}

static void tt_restore(guint k)
{
    TTSnapshot *s = snap_at(k);
    int64_t t0 = get_clock();
    uint64_t written = 0;
    Error *err = NULL;
    CPUState *cpu;
    guint b, j;

    /* first: the reset rewrites ROMs, which the dirty log then shows */
    tt_abandon_position();
    for (b = 0; b < tt.blocks->len; b++) {
        TTBlock *blk = tt_block(b);
        unsigned long *need = bitmap_new(blk->npages);
        unsigned long *newtip = bitmap_new(blk->npages);
        unsigned long i;
        int n;

        /* pages changed since the tip, and between snapshot k and the tip */
        tt_dirty_fetch(blk, need);
        bitmap_or(need, need, blk->since_tip, blk->npages);
        for (j = k + 1; j < tt.snaps->len; j++) {
            tt_pages_mark(snap_at(j)->pages[b], newtip);
        }
        bitmap_or(need, need, newtip, blk->npages);

        /* each from the latest snapshot up to k that has it */
        for (n = k; n >= 0; n--) {
            GArray *pages = snap_at(n)->pages[b];
            guint x;

            for (x = 0; x < pages->len; x++) {
                TTPage *pg = &g_array_index(pages, TTPage, x);
                uint8_t *dst = blk->host + pg->index * tt.page_size;

                if (!test_and_clear_bit(pg->index, need)) {
                    continue;
                }
                if (pg->data) {
                    memcpy(dst, pg->data, tt.page_size);
                } else {
                    memset(dst, 0, tt.page_size);
                }
                written++;
            }
        }
        /* what no snapshot has was zero in the first */
        for (i = find_first_bit(need, blk->npages); i < blk->npages;
             i = find_next_bit(need, blk->npages, i + 1)) {
            memset(blk->host + i * tt.page_size, 0, tt.page_size);
            written++;
        }
        g_free(need);
        g_free(blk->since_tip);
        blk->since_tip = newtip;
        bitmap_zero(blk->since_base, blk->npages);
    }
    tt.base = s->pos;

    /* the engine first: device post_load sees the snapshot's clocks */
    replay_engine_restore(s->engine);
    if (!tt_load_devices(s, &err)) {
        /* the machine is half-restored: nothing sensible can go on */
        replay_fatal("record/replay: time travel: %s", error_get_pretty(err));
    }
    blkreplay_snapshot_load(s->blk);
    replay_timers_restore(s->timers);

    CPU_FOREACH(cpu) {
        cpu->watchpoint_hit = NULL;
        cpu_single_step(cpu, 0);
    }
    tt_vcpus_forget();
    qemu_clock_notify(QEMU_CLOCK_VIRTUAL);
    tt.restores++;
    tt_plan_next();
    trace_replay_tt_restore(s->pos.icount, s->pos.consumed, written,
                            (get_clock() - t0) / 1000);
}

/*
 * loadvm put another machine in place (replay-snapshot.c): its RAM may
 * differ from the snapshots' anywhere, and the dirty log did not see it.
 */
void replay_tt_machine_loaded(void)
{
    ReplayPos now = replay_position();
    guint b;
    int k;

    for (b = 0; b < tt.blocks->len; b++) {
        TTBlock *blk = tt_block(b);

        bitmap_fill(blk->since_tip, blk->npages);
        bitmap_fill(blk->since_base, blk->npages);
    }
    k = tt_find(&now, false);
    if (k >= 0) {
        tt.base = snap_at(k)->pos;
    }
    tt_vcpus_forget();
    tt_plan_next();
}

/* ---- moving ---- */

static void tt_noop(CPUState *cpu, run_on_cpu_data data)
{
}

/*
 * Break at @target, after restoring snapshot @k if @k >= 0.  Restoring
 * is work for the vCPU thread: it runs device post_load hooks, which may
 * run_on_cpu(); so the main thread only asks for it, and makes sure that
 * a vCPU asleep in a halt wakes up to do it.
 */
static void tt_request(int k, ReplayPos target, int runstate)
{
    replay_set_break(target.icount, target.consumed, runstate);
    if (k < 0) {
        return;
    }
    tt.restore_pending = true;
    tt.restore_k = k;
    tt.brk = target;
    tt.brk_runstate = runstate;
    if (first_cpu && !qemu_cpu_is_self(first_cpu)) {
        async_run_on_cpu(first_cpu, tt_noop, RUN_ON_CPU_NULL);
    }
}

/*
 * Go to @target: restore the latest snapshot at or before it, unless
 * running forward from here is shorter, and break there.
 */
static void tt_goto(ReplayPos target, int runstate)
{
    ReplayPos now = replay_position();
    int k = tt_find(&target, false);

    trace_replay_tt_goto("goto", target.icount, target.consumed);
    if (k >= 0 && !(replay_pos_cmp(&target, &now) >= 0 &&
                    replay_pos_cmp(&snap_at(k)->pos, &now) <= 0)) {
        tt_request(k, target, runstate);
    } else {
        tt_request(-1, target, runstate);
    }
}

static bool tt_usable(Error **errp)
{
    if (!tt.enabled) {
        error_setg(errp, "time travel is off (rrbudget=0, or a snapshot "
                   "failed)");
        return false;
    }
    if (!tt.snaps->len) {
        error_setg(errp, "time travel has no snapshot yet: it keeps the "
                   "history from the replay's first stop (start the replay "
                   "with -S, or give -icount rrbudget=SIZE, to keep all of "
                   "it)");
        return false;
    }
    return true;
}

static void tt_begin_op(TTOp op)
{
    tt.op = op;
    tt.landing.watch = false;
    tt.landing.cpu = -1;
    tt.stop_reason = NULL;
    tt.op_start_ns = get_clock();
}

/* Search the window from snapshot @w to @end for debug hits. */
static void tt_search(guint w, ReplayPos end)
{
    tt.op = TT_OP_SEARCH;
    tt.window = w;
    tt.window_end = end;
    g_array_set_size(tt.hits, 0);
    trace_replay_tt_search(snap_at(w)->pos.icount, end.icount);
    tt_request(w, end, RUN_STATE_DEBUG);
}

/* The next step of a move, when the replay reached the break position. */
static void tt_step(void)
{
    TTSnapshot *w;

    switch (tt.op) {
    case TT_OP_SEARCH:
        w = snap_at(tt.window);
        if (tt.hits->len) {
            tt.landing = g_array_index(tt.hits, TTHit, tt.hits->len - 1);
            tt.op = TT_OP_SEEK;
            tt_request(tt.window, tt.landing.pos, RUN_STATE_DEBUG);
        } else if (tt.window == 0) {
            /* nothing back to the start of history: stop there */
            tt.op = TT_OP_SEEK;
            tt.stop_reason = "begin";
            tt_request(0, w->pos, RUN_STATE_DEBUG);
        } else {
            tt_search(tt.window - 1, w->pos);
        }
        break;
    default:
        break;
    }
}

bool replay_tt_restore_pending(void)
{
    return tt.restore_pending;
}

/*
 * The vCPU thread, between slices, with the replay mutex held: carry out
 * what the main thread or the break position asked for.
 */
void replay_tt_vcpu_work(void)
{
    bool locked;

    if ((!tt.step_pending && !tt.restore_pending) || !qemu_in_vcpu_thread()) {
        return;
    }
    locked = bql_locked();
    if (!locked) {
        bql_lock();
    }
    if (tt.step_pending) {
        tt.step_pending = false;
        tt_step();
    }
    if (tt.restore_pending) {
        tt.restore_pending = false;
        tt_restore(tt.restore_k);
        /* unfreeze if the old position happened to match */
        replay_set_break(tt.brk.icount, tt.brk.consumed, tt.brk_runstate);
    }
    if (!locked) {
        bql_unlock();
    }
}

/*
 * Landing after the instruction that made a watchpoint's access: report
 * the watchpoint, as a forward run stopping there does.  The hit did not
 * say which watchpoint it was: the first of gdb's is taken.  gdb then
 * steps back over the access itself on targets whose watchpoints stop
 * before the access (AArch64).
 */
static void tt_report_watchpoint(void)
{
    CPUState *cpu = first_cpu;
    CPUWatchpoint *wp;

    tt.landing.watch = false;
    QTAILQ_FOREACH(wp, &cpu->watchpoints, entry) {
        if (wp->flags & BP_GDB) {
            wp->hitaddr = wp->vaddr;
            cpu->watchpoint_hit = wp;
            return;
        }
    }
}

bool replay_tt_break_reached(void)
{
    switch (tt.op) {
    case TT_OP_SEEK:
        if (tt.landing.cpu >= 0 && replay_state.gdb_attached &&
            qemu_get_cpu(tt.landing.cpu)) {
            /* gdb's stop reply names the vCPU that hit */
            gdb_set_stop_cpu(qemu_get_cpu(tt.landing.cpu));
        }
        if (tt.landing.watch) {
            tt_report_watchpoint();
        }
        return false;
    case TT_OP_SEARCH:
        tt.step_pending = true;
        if (first_cpu && !qemu_cpu_is_self(first_cpu)) {
            async_run_on_cpu(first_cpu, tt_noop, RUN_ON_CPU_NULL);
        }
        return true;
    default:
        return false;
    }
}

bool replay_tt_stopped(void)
{
    tt.step_pending = false;
    tt.restore_pending = false;
    if (tt.op == TT_OP_NONE) {
        return false;
    }
    tt.last_op_ns = get_clock() - tt.op_start_ns;
    tt.op = TT_OP_NONE;
    return true;
}

bool replay_tt_searching(void)
{
    return tt.op == TT_OP_SEEK || tt.op == TT_OP_SEARCH;
}

/*
 * A breakpoint (from cpu_handle_guest_debug(), between slices) or a
 * watchpoint (from cpu_check_watchpoint(), while the accessing
 * instruction runs and is already counted) hit while moving.
 */
void replay_tt_note_hit(void)
{
    CPUState *cpu = current_cpu;
    TTHit h;

    if (tt.op != TT_OP_SEARCH || !cpu) {
        return;
    }
    h.pos = replay_position();
    h.watch = qatomic_read(&cpu->running);
    h.cpu = cpu->cpu_index;
    if (replay_pos_cmp(&h.pos, &tt.window_end) >= 0) {
        /*
         * A watchpoint hit by the instruction that ends the window: a
         * forward run stops right after it, where the window ends, so it
         * is not before the end
         */
        return;
    }
    trace_replay_tt_hit(h.pos.icount, h.pos.consumed, h.watch);
    if (tt.hits->len) {
        TTHit *last = &g_array_index(tt.hits, TTHit, tt.hits->len - 1);

        if (!replay_pos_cmp(&last->pos, &h.pos) && last->watch == h.watch) {
            return;
        }
    }
    g_array_append_val(tt.hits, h);
}

const char *replay_gdb_stop_reason(void)
{
    const char *r = tt.stop_reason;

    tt.stop_reason = NULL;
    return r;
}

void replay_tt_set_stop_reason(const char *reason)
{
    tt.stop_reason = reason;
}

/* ---- gdb ---- */

/*
 * gdb's moves go back from where the vCPU is (replay_vcpu_position()),
 * not from the position now: events that the main loop consumed at this
 * icount since the machine stopped changed nothing that gdb sees, and a
 * reverse-stepi that only undid them would not move.
 */
bool replay_reverse_step(CPUState *cpu)
{
    ReplayPos now = replay_position(), here = replay_vcpu_position(), target;
    TTSnapshot *first;
    uint64_t last;

    if (replay_mode != REPLAY_MODE_PLAY || !tt_usable(NULL)) {
        return false;
    }
    first = snap_at(0);
    tt_begin_op(TT_OP_SEEK);
    /* with one vCPU, its last instruction is the machine's */
    last = cpu && CPU_NEXT(first_cpu) ? replay_vcpu_last_insn(cpu->cpu_index)
                                      : here.icount;
    if (cpu && CPU_NEXT(first_cpu)) {
        tt.landing.cpu = cpu->cpu_index;    /* the stop reply names it */
    }
    if (last != here.icount) {
        /*
         * Another vCPU ran since @cpu's last instruction: go back to
         * right before that one, all events at its icount consumed (the
         * switch to @cpu among them)
         */
        target = last ? (ReplayPos) { last - 1, UINT64_MAX } : first->pos;
    } else if (!replay_vcpu_event_start(&target)) {
        /* else undo the interrupt or exception taken here, if any */
        if (here.icount > 0) {
            /* before the last instruction, all at the icount before done */
            target = (ReplayPos) { here.icount - 1, UINT64_MAX };
        } else {
            target = now;
        }
    }
    if (replay_pos_cmp(&target, &first->pos) < 0 ||
        replay_pos_cmp(&here, &first->pos) <= 0) {
        target = replay_pos_cmp(&here, &first->pos) <= 0 ? now : first->pos;
        tt.stop_reason = "begin";
    }
    tt_goto(target, RUN_STATE_DEBUG);
    return true;
}

bool replay_reverse_continue(void)
{
    ReplayPos now = replay_position(), here = replay_vcpu_position();
    int w;

    if (replay_mode != REPLAY_MODE_PLAY || !tt_usable(NULL)) {
        return false;
    }
    /* a hit at the vCPU's position is the stop we are at */
    w = tt_find(&here, true);
    if (w < 0) {
        tt_begin_op(TT_OP_SEEK);
        tt.stop_reason = "begin";
        tt_request(-1, now, RUN_STATE_DEBUG);
        return true;
    }
    tt_begin_op(TT_OP_SEARCH);
    tt_search(w, here);
    return true;
}

/* ---- monitor ---- */

void replay_tt_seek(int64_t icount, Error **errp)
{
    ReplayPos target = { icount, 0 };
    ReplayPos now = replay_position();
    bool running = runstate_is_running();

    if (tt_find(&target, false) < 0 && replay_pos_cmp(&target, &now) < 0) {
        /* behind us, and no snapshot at or before it */
        if (!tt_usable(errp)) {
            return;
        }
        if (target.icount != snap_at(0)->pos.icount) {
            error_setg(errp, "replay-seek: icount %" PRId64 " is before the "
                       "start of the time-travel history (icount %" PRIu64
                       ")", icount, snap_at(0)->pos.icount);
            return;
        }
        target = snap_at(0)->pos;
    }
    tt_begin_op(TT_OP_SEEK);
    tt_goto(target, RUN_STATE_PAUSED);
    if (!running) {
        vm_start();
    }
}

bool replay_tt_enabled(void)
{
    return tt.enabled;
}

ReplaySnapshots *qmp_query_replay_snapshots(Error **errp)
{
    ReplaySnapshots *r;
    ReplaySnapshotInfoList **tail;
    guint i;

    if (replay_mode != REPLAY_MODE_PLAY) {
        error_setg(errp, "query-replay-snapshots works only while replaying "
                   "(-icount rr=replay)");
        return NULL;
    }
    r = g_new0(ReplaySnapshots, 1);
    r->enabled = tt.enabled;
    r->budget = tt.budget;
    r->used = tt.used;
    r->interval = tt.interval;
    r->restores = tt.restores;
    r->last_move_us = tt.last_op_ns / 1000;
    tail = &r->snapshots;
    for (i = 0; i < tt.snaps->len; i++) {
        TTSnapshot *s = snap_at(i);
        ReplaySnapshotInfo *info = g_new0(ReplaySnapshotInfo, 1);

        info->icount = s->pos.icount;
        info->events = s->pos.consumed;
        info->pages = s->npages;
        info->size = s->bytes;
        QAPI_LIST_APPEND(tail, info);
    }
    return r;
}
