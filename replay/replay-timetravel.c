/*
 * qrr: time travel: the in-memory snapshots of a replay
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * SNAPSHOTS
 *
 * While replaying, the vCPU takes a snapshot of the whole machine between
 * two execution slices whenever it is at a quiet point (nothing due at
 * this instruction count, no participant busy (no disk request in
 * flight, no one-shot callback or block completion queued), no
 * single-step or one-instruction block pending) at least tt.interval
 * instructions after the previous one.  A snapshot holds:
 *
 *  - the device state, CPU and icount timers included, as
 *    qemu_save_device_state() writes it into a memory buffer;
 *  - guest RAM: the first snapshot has every non-zero page of every
 *    migratable RAMBlock (a page it lacks is zero); each later one has
 *    the pages that changed since the one before, found with QEMU's dirty
 *    memory log (replay-tt-pages.c);
 *  - the replay engine's state (replay_engine_save(): log position,
 *    decoded but unconsumed events, counters, sync-point registers);
 *  - copies of the participants' state (system/replay.h: the guest's
 *    pending timers, a disk filter's write overlays, the bottom halves
 *    queued for the log to deliver; a snapshot whose copy a participant
 *    can no longer load, a queued bottom half deleted since, is not
 *    restored: tt_restorable()).
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
 * log and the page store's since_base say; the later snapshots' increments
 * still hold every page changed since the snapshot before them.
 *
 * They share one memory budget (-icount rrbudget=SIZE, by default twice
 * the guest's RAM): when the snapshots exceed it, one between the first
 * and the last is merged into its successor (its pages that the successor
 * lacks move there).  The one merged is the one whose removal leaves the
 * smallest gap for its distance d from the current position, the gap
 * wanted being the interval near it, d / 2 further back and d further
 * ahead, and at most the average gap: history stays dense where the user
 * works, and is covered evenly elsewhere (replay-tt-policy.c).  A move
 * towards a break far ahead (a seek) does not take a snapshot every
 * interval to thin them later: it takes them as far apart as the budget
 * will allow once it has arrived (tt_worth_filling()), so that the
 * history it leaves is even (on the benchmark's guest, 65 s of guest time
 * in 125 snapshots: a gap of 10 M instructions at the current position,
 * about 370 M far from it).  The interval is as fine as taking snapshots
 * allows for them to cost a twentieth of the replay's time, both counted
 * in the vCPU thread's CPU time, and at least 1 M instructions
 * (tt_adapt_interval(), tt_adapt()).
 *
 * RESTORING
 *
 * A restore first leaves the current position as loadvm does: the
 * callbacks queued for it run, disk requests in flight finish, and the
 * machine is reset, because loading device state sets only what the
 * snapshot holds (tt_abandon_position()).
 *
 * RAM is written back first, only the pages that can differ from the
 * snapshot's (replay-tt-pages.c).  Device state is loaded after RAM
 * (devices read guest memory in their post_load) and after the engine
 * state (post_load sees the snapshot's clocks); then the participants
 * take theirs: the guest's timers are put back as they were
 * (replay-timers.c: post_load may arm timers that were not pending, the
 * reset stops those that vmstate does not hold).  Translated code is
 * kept but for the pages that the restore wrote, whose code is dropped as
 * each is written (replay-tt-pages.c); the vCPUs' TLBs are flushed.
 *
 * The reset and the load run inside one memory transaction: each BAR
 * that the reset unmaps and the load maps again, each bus master bit
 * and ROM mapping, would otherwise render every address space's map
 * anew.  On the Linux test guest (x86_64, a reverse step in the linuxtt
 * bench's gdb session) a restore took 10 to 11 ms that way, about 3 ms
 * batched.  Inside the transaction, post_load hooks that read guest
 * memory through a bus master address space (AHCI's FIS areas, xhci's
 * contexts; virtio reads through address_space_memory) go through the
 * map of the position left,
 * which is the final one unless the guest changed its memory map in
 * between (it set up its PCI devices, or rebooted).  So each snapshot
 * keeps a digest of the memory map (memory_region_maps_digest(), patch
 * 0039), and a restore batches only when the map of the position left
 * has the snapshot's digest; otherwise AHCI's post_load, for one, maps
 * its FIS areas through a bus master window closed there, and the
 * restored RAM then differs from the recording's.  A load that makes
 * another map than the snapshot's digest says is not expected (the map
 * follows from the device state loaded); it is restored again without
 * batching, which no test has shown to be enough.
 *
 * Guest RAM is kept by replay-tt-pages.c, where the snapshots go is
 * decided by replay-tt-policy.c, and the moves are replay-tt-moves.c's.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-replay.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/option.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "exec/cputlb.h"
#include "exec/memory.h"
#include "exec/tb-flush.h"
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
#include "replay-core.h"
#include "replay-tt.h"
#include "trace.h"

typedef struct TTSnapshot {
    ReplayPos pos;
    uint8_t *dev;               /* qemu_save_device_state() output */
    size_t dev_len;
    uint64_t maps;              /* memory_region_maps_digest() */
    ReplayEngineState *engine;
    ReplayParticipantsState *parts;
    TTPages *pages;             /* guest RAM (replay-tt-pages.c) */
    uint64_t npages;            /* pages holding data */
    size_t bytes;               /* memory held */
    bool settled;               /* bytes stays as it is until a merge */
    int64_t taken_ms;           /* host time (QEMU_CLOCK_REALTIME) */
} TTSnapshot;

static struct {
    bool enabled;
    bool armed;                 /* history is kept from now on */
    bool budget_set;
    bool warned_budget;
    bool held;                  /* a move walks the snapshots by index */
    bool resetting;             /* tt_abandon_position() resets */
    bool check;                 /* -icount rrcheck=on */
    uint64_t budget;
    uint64_t interval;
    uint64_t next_at;           /* icount of the next snapshot */
    /*
     * The snapshot that the dirty log counts from (with since_base): the
     * one restored or taken last, or the one before it if that was merged
     */
    ReplayPos base;
    /* what a snapshot costs (host ns, smoothed); 0: none taken yet */
    double cost_ns;
    /* how fast the replay runs: thread CPU ns per instruction, smoothed */
    double ns_per_insn;
    /* where and when the replay's speed is measured from; icount ~0: not */
    uint64_t speed_icount;
    int64_t speed_cpu_ns;
    GPtrArray *snaps;           /* TTSnapshot *, by position */
    GArray *at;                 /* their icounts, for the policy */
    GArray *bytes;              /* their sizes, for the policy */
    size_t used;
    uint64_t restores;
    uint64_t restores_remapped; /* not batched: the map differed */
    uint64_t taken;             /* snapshots taken, merged ones included */
    int64_t take_ns;            /* the vCPU thread's CPU time taking them */
    char *off_reason;           /* why a snapshot failed: time travel off */
} tt;

static TTSnapshot *snap_at(guint i)
{
    return g_ptr_array_index(tt.snaps, i);
}

/* The latest snapshot at (or strictly before) @p; -1 if none. */
int tt_find(const ReplayPos *p, bool strict)
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

/*
 * The latest snapshot at or before @k that can be restored: a participant
 * may refuse its copy in one (replay_participants_usable()).  The first
 * can always be restored (tt_take()).
 */
int tt_restorable(int k)
{
    while (k > 0 && !replay_participants_usable(snap_at(k)->parts)) {
        k--;
    }
    return k;
}

ReplayPos tt_pos(unsigned i)
{
    return snap_at(i)->pos;
}

/* The history as replay-tt-policy.c sees it. */
static TTLayout tt_layout(void)
{
    guint i;

    g_array_set_size(tt.at, tt.snaps->len);
    g_array_set_size(tt.bytes, tt.snaps->len);
    for (i = 0; i < tt.snaps->len; i++) {
        g_array_index(tt.at, uint64_t, i) = snap_at(i)->pos.icount;
        g_array_index(tt.bytes, size_t, i) = snap_at(i)->bytes;
    }
    return (TTLayout) {
        .at = (uint64_t *)tt.at->data,
        .n = tt.snaps->len,
        .interval = tt.interval,
        .budget = tt.budget,
        .bytes = (size_t *)tt.bytes->data,
    };
}

/* ---- configuration ---- */

void replay_tt_configure(QemuOpts *opts)
{
    const char *b = qemu_opt_get(opts, "rrbudget");

    tt.budget_set = b != NULL;
    tt.budget = qemu_opt_get_size(opts, "rrbudget", 0);
    if (tt.budget && tt.budget < MiB) {
        /* rrbudget=512 meant 512M: a warning at the first merge is late */
        error_report("-icount rrbudget=%s: %" PRIu64 " bytes is less than "
                     "1 MiB; sizes without a suffix (K, M, G) are bytes, "
                     "and 0 turns time travel off", b, tt.budget);
        exit(1);
    }
    tt.check = qemu_opt_get_bool(opts, "rrcheck", false);
    tt.interval = TT_INTERVAL_INITIAL;
    tt.speed_icount = UINT64_MAX;
    tt.snaps = g_ptr_array_new();
    tt.at = g_array_new(false, false, sizeof(uint64_t));
    tt.bytes = g_array_new(false, false, sizeof(size_t));
}

void replay_tt_start(void)
{
    tt.enabled = !tt.budget_set || tt.budget > 0;
    /* a replay started paused, or given a budget, keeps all its history */
    tt.armed = tt.budget_set || !autostart;
}

void replay_tt_arm(void)
{
    tt.armed = true;
}

/* ---- device state ---- */

/*
 * The device state, saved as a migration saves it: with the run state
 * not "running".  The SCSI bus saves its queued requests only so (it
 * asserts it: scsi-hd aborted the first snapshot).  The vCPU is at a
 * quiet point and holds the BQL, so nothing runs meanwhile; runstate_set()
 * calls no run-state notifier, so no device stops or starts for it.
 */
static bool tt_save_devices(TTSnapshot *s, Error **errp)
{
    /* the size of the last one, which the next is close to */
    static size_t hint = 256 * KiB;
    QIOChannelBuffer *bioc = qio_channel_buffer_new(hint);
    QEMUFile *f;
    bool running;
    int ret;

    /*
     * A device that saves no state (nvme, usb-audio) would come back
     * reset from every restore, its queues lost: refuse, naming it
     */
    if (qemu_savevm_state_blocked(errp)) {
        object_unref(OBJECT(bioc));
        return false;
    }
    f = qemu_file_new_output(QIO_CHANNEL(bioc));
    /* "globalstate" holds a run state only once one is stored */
    global_state_store_running();
    replay_state.tt_busy = true;
    running = runstate_is_running();
    if (running) {
        runstate_set(RUN_STATE_SAVE_VM);
    }
    ret = qemu_save_device_state(f);
    if (running) {
        runstate_set(RUN_STATE_RUNNING);
    }
    replay_state.tt_busy = false;
    if (ret >= 0) {
        ret = qemu_fflush(f);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "saving the device state failed");
    } else {
        /* the buffer's own bytes, not a copy */
        s->dev_len = bioc->usage;
        s->dev = g_realloc(bioc->data, s->dev_len);
        bioc->data = NULL;
        bioc->capacity = bioc->usage = bioc->offset = 0;
        hint = ROUND_UP(s->dev_len + 1, 4 * KiB);
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
        replay_state.tt_loading = true;
        ret = qemu_load_device_state(f);
        replay_state.tt_loading = false;
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
    tt_pages_free(s->pages);
    g_free(s->dev);
    replay_engine_free(s->engine);
    replay_participants_free(s->parts);
    g_free(s);
}

/*
 * What @s holds now, or once the packer has packed its pages (@packed).
 * The budget counts the latter: the pages the packer has not seen yet
 * at the share that a sample of them packed to when the snapshot was
 * taken (a size that shrank behind the placement's back, from raw to
 * packed, would make it thin snapshots it had just placed), the others
 * as they are.
 */
static size_t tt_snapshot_bytes(TTSnapshot *s, uint64_t *npages,
                                bool packed)
{
    return sizeof(*s) + s->dev_len + replay_engine_size(s->engine) +
           replay_participants_size(s->parts) +
           tt_pages_bytes(s->pages, npages, packed);
}

static void tt_snapshot_account(TTSnapshot *s)
{
    /* before the size: the packer may finish the pages in between */
    s->settled = tt_pages_settled(s->pages);
    s->bytes = tt_snapshot_bytes(s, &s->npages, true);
}

/* Merge snapshot @i (neither the first nor the last) into @i + 1. */
static void tt_merge(guint i)
{
    TTSnapshot *s = snap_at(i), *next = snap_at(i + 1);
    bool is_base = !replay_pos_cmp(&s->pos, &tt.base);

    if (is_base) {
        tt.base = snap_at(i - 1)->pos;
    }
    tt.used -= s->bytes + next->bytes;
    tt_pages_merge(s->pages, next->pages, is_base);
    replay_participants_merge(s->parts, next->parts);
    tt_snapshot_account(next);
    tt.used += next->bytes;
    trace_replay_tt_thin(s->pos.icount, tt.used);
    tt_snapshot_free(s);
    g_ptr_array_remove_index(tt.snaps, i);
}

/*
 * Count again what the snapshots hold: a sample's estimate gives way to
 * the packed size once the packer has been through a snapshot (on the
 * Linux benchmark, estimates alone left 0.04% and 0.6% over the budget).
 * Only those the packer had not finished when last counted: the others
 * keep their size until a merge counts them again (tt_merge()).  Counting
 * all of them at every snapshot (1,200 of them on the Linux benchmark)
 * was 7 % of what taking a snapshot cost.
 */
static void tt_account_all(void)
{
    guint i;

    for (i = 0; i < tt.snaps->len; i++) {
        TTSnapshot *s = snap_at(i);

        if (!s->settled) {
            tt.used -= s->bytes;
            tt_snapshot_account(s);
            tt.used += s->bytes;
        }
    }
}

/*
 * Stay within the budget: merge away snapshots between the first and the
 * last (tt_pick_merge()).
 */
static bool tt_fit_budget(void)
{
    uint64_t focus = replay_icount();
    bool thinned = false;

    tt_account_all();

    while (tt.used > tt.budget && tt.snaps->len > 2) {
        TTLayout l = tt_layout();

        tt_merge(tt_pick_merge(&l, focus));
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

/* Where the next snapshot is due (tt_next_at()). */
static void tt_plan_next(void)
{
    ReplayPos now = replay_position();
    TTLayout l = tt_layout();

    tt.next_at = tt_next_at(&l, tt_find(&now, false));
}

/* The first snapshot: find the RAM, start the dirty log. */
static bool tt_take_first(Error **errp)
{
    if (!tt.budget_set) {
        /* the guest's RAM (-m), not flash and ROMs */
        tt.budget = MAX(2 * current_machine->ram_size, 64 * MiB);
    }
    return tt_pages_start(tt.check, errp);
}

/*
 * CPU time of this thread (the vCPU thread's, which runs the replay and
 * takes the snapshots): unlike host time it does not count the time the
 * replay sat stopped at a gdb prompt between two snapshots.
 */
static int64_t tt_thread_cpu_ns(void)
{
#ifdef CLOCK_THREAD_CPUTIME_ID
    struct timespec ts;

    if (!clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)) {
        return ts.tv_sec * NANOSECONDS_PER_SECOND + ts.tv_nsec;
    }
#endif
    return get_clock();
}

/* Smooth @v into @avg (0: no value yet). */
static double tt_smooth(double avg, double v)
{
    return avg ? (3 * avg + v) / 4 : v;
}

/*
 * The replay ran from the last snapshot, or the last restore, to @t0
 * (thread CPU time) without a restore: note its speed.
 */
static void tt_note_speed(int64_t t0)
{
    uint64_t now = replay_icount();

    if (tt.speed_icount != UINT64_MAX && now > tt.speed_icount) {
        tt.ns_per_insn = tt_smooth(tt.ns_per_insn,
                                   (double)(t0 - tt.speed_cpu_ns) /
                                   (now - tt.speed_icount));
    }
}

/* Measure the speed from here on (after a snapshot or a restore). */
static void tt_speed_from_here(void)
{
    tt.speed_icount = replay_icount();
    tt.speed_cpu_ns = tt_thread_cpu_ns();
}

/*
 * After a snapshot that started at @cpu0 (thread CPU time), of which
 * @check_ns went to rrcheck's comparison.  The cost is CPU time, like
 * the speed it is weighed against: host time also counts the time that
 * other processes took the host's cores from the vCPU thread, and on a
 * loaded host the interval widened with it (a replay beside two busy
 * loops on two cores: gaps of 268 M instructions, 13 M with CPU time).
 */
static void tt_adapt(bool first, bool thinned, int64_t cpu0,
                     int64_t check_ns)
{
    TTLayout l = tt_layout();

    if (!first) {
        /* the first holds all of RAM: not what the next ones will cost */
        tt.cost_ns = tt_smooth(tt.cost_ns,
                               tt_thread_cpu_ns() - cpu0 - check_ns);
    }
    tt.interval = tt_adapt_interval(&l, thinned, tt.used, tt.cost_ns,
                                    tt.ns_per_insn);
    tt_speed_from_here();
}

/*
 * Take a snapshot here.  Usually after the newest one; after a restore,
 * in the gap between two (it then holds the pages changed since the
 * snapshot the replay came from, tt.base, and the later snapshots stay
 * valid: their increments hold every page changed since the one before
 * them).
 */
static void tt_take(void)
{
    TTSnapshot *s;
    bool first = tt.snaps->len == 0, append;
    int64_t t0 = get_clock();
    int64_t cpu0 = tt_thread_cpu_ns();
    ReplayPos now = replay_position();
    int p = tt_find(&now, true);
    uint64_t npages, bytes;
    int64_t check_ns;
    const char *busy;
    Error *err = NULL;

    if (p + 1 < (int)tt.snaps->len &&
        !replay_pos_cmp(&snap_at(p + 1)->pos, &now)) {
        return;                 /* there is one here */
    }
    append = p + 1 == (int)tt.snaps->len;
    bql_lock();
    busy = replay_participant_busy();
    if (!busy && first && replay_async_pending()) {
        /* the first is restored when every later one is unusable */
        busy = "async";
    }
    if (busy) {
        bql_unlock();
        trace_replay_tt_busy(now.icount, busy);
        return;
    }
    s = g_new0(TTSnapshot, 1);
    if (!tt_save_devices(s, &err) || (first && !tt_take_first(&err))) {
        bql_unlock();
        tt.off_reason = g_strdup(error_get_pretty(err));
        error_prepend(&err, "record/replay: time travel is off: ");
        warn_report_err(err);
        tt_snapshot_free(s);
        tt.enabled = false;
        return;
    }
    s->pos = now;
    s->maps = memory_region_maps_digest();
    s->engine = replay_engine_save();
    s->parts = replay_participants_save();
    s->taken_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    s->pages = tt_pages_take(first, append, !first &&
                             !replay_pos_cmp(&tt.base, &snap_at(p)->pos));
    bql_unlock();
    /* rrcheck's comparison is not what a snapshot costs: no wider gaps */
    check_ns = tt_pages_check_ns();
    t0 += check_ns;

    tt_snapshot_account(s);
    tt.used += s->bytes;
    g_ptr_array_insert(tt.snaps, p + 1, s);
    tt.base = s->pos;
    npages = s->npages;
    bytes = s->bytes;
    tt_note_speed(cpu0);
    /* s may be merged away here */
    tt_adapt(first, tt_fit_budget(), cpu0, check_ns);
    tt_plan_next();
    tt.taken++;
    tt.take_ns += tt_thread_cpu_ns() - cpu0 - check_ns;
    trace_replay_tt_snapshot(now.icount, now.consumed, npages, bytes,
                             tt.used, (get_clock() - t0) / 1000,
                             tt.cost_ns / 1000, tt.ns_per_insn * 1000,
                             tt.interval);
}

/* A snapshot is worth taking here (tt_worth_filling()). */
static bool tt_worth_taking(void)
{
    ReplayPos now = replay_position();
    TTLayout l = tt_layout();

    if (tt_worth_filling(&l, tt_find(&now, true), now.icount,
                         replay_state.break_icount)) {
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
    if (!tt.enabled || !tt.armed || tt.held || !cpu ||
        replay_icount() < tt.next_at || !replay_state.started ||
        replay_state.at_end || !replay_quiet_point() ||
        (cpu->singlestep_enabled && tt.snaps->len) ||
        cpu->cflags_next_tb != -1 ||
        cpu->exception_index != -1 || !runstate_is_running()) {
        return;
    }
    /* a later snapshot may have been passed since the plan was made */
    tt_plan_next();
    if (replay_icount() >= tt.next_at && tt_worth_taking()) {
        tt_take();
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
 *
 * The reset leaves guest RAM as it is (replay_reset_keeps_ram()): the
 * restore that follows writes back the pages that differ from the
 * snapshot.  Rewriting the ROM blobs, which hold the -kernel image on
 * AArch64's virt board, wrote some 8,900 pages at every restore there.
 */
static void tt_abandon_position(void)
{
    CPUState *cpu;

    replay_state.tt_abandoning = true;
    replay_state.tt_busy = true;
    replay_participants_settle();
    CPU_FOREACH(cpu) {
        tlb_flush_no_shrink(cpu);
    }
    tt.resetting = true;
    qemu_system_reset(SHUTDOWN_CAUSE_SNAPSHOT_LOAD);
    tt.resetting = false;
    replay_state.tt_busy = false;
    replay_state.tt_abandoning = false;
}

/*
 * The vCPUs forget the slice and the pending exception of the machine
 * that was there before a restore or a loadvm, and their TLB's entries.
 * Their TLBs keep their size, as in tt_abandon_position(): a restore that
 * wrote much RAM may have outlasted the resize window opened there.  The
 * translated code goes too after a loadvm (@code), which wrote RAM
 * anywhere; a restore dropped that of the pages it wrote
 * (replay-tt-pages.c), and the rest is the same guest code.
 */
static void tt_vcpus_forget(bool code)
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
    if (code && first_cpu) {
        tb_flush(first_cpu);
    }
}

/*
 * Put guest RAM, the engine and the devices as snapshot @k has them, and
 * return how many pages were written.  With @batched, the reset and the
 * load make one change of the memory map instead of one per BAR, bus
 * master bit and ROM mapping they touch: only where the map of the
 * position left is the snapshot's (see "RESTORING").
 */
static uint64_t tt_restore_machine(unsigned k, bool batched)
{
    TTSnapshot *s = snap_at(k);
    g_autofree TTPages **pages = g_new(TTPages *, tt.snaps->len);
    int base = tt_find(&tt.base, false);
    uint64_t written;
    Error *err = NULL;
    guint i;

    if (batched) {
        memory_region_transaction_begin();
    }
    /* first: what the reset writes to RAM, the dirty log then shows */
    tt_abandon_position();
    for (i = 0; i < tt.snaps->len; i++) {
        pages[i] = snap_at(i)->pages;
    }
    if (base >= 0 && replay_pos_cmp(&snap_at(base)->pos, &tt.base)) {
        base = -1;
    }
    written = tt_pages_restore(pages, tt.snaps->len, k, base);
    tt.base = s->pos;

    /* the engine first: device post_load sees the snapshot's clocks */
    replay_engine_restore(s->engine);
    if (!tt_load_devices(s, &err)) {
        /* the machine is half-restored: nothing sensible can go on */
        replay_fatal("record/replay: time travel: %s", error_get_pretty(err));
    }
    if (batched) {
        memory_region_transaction_commit();
    }
    return written;
}

void tt_restore(unsigned k)
{
    TTSnapshot *s = snap_at(k);
    int64_t t0 = get_clock();
    /* post_load may read guest memory: batch only where the map is right */
    bool batched = memory_region_maps_digest() == s->maps;
    uint64_t written;
    CPUState *cpu;

    written = tt_restore_machine(k, batched);
    if (batched && memory_region_maps_digest() != s->maps) {
        /* the load made another map than the snapshot's: not batched */
        written += tt_restore_machine(k, false);
        batched = false;
    }
    if (!batched) {
        trace_replay_tt_restore_remapped(s->pos.icount, s->pos.consumed);
        tt.restores_remapped++;
    }
    replay_participants_load(s->parts);

    CPU_FOREACH(cpu) {
        cpu->watchpoint_hit = NULL;
        cpu_single_step(cpu, 0);
    }
    tt_vcpus_forget(false);
    qemu_clock_notify(QEMU_CLOCK_VIRTUAL);
    tt.restores++;
    tt_speed_from_here();
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
    int k;

    tt_pages_forget();
    k = tt_find(&now, false);
    if (k >= 0) {
        tt.base = snap_at(k)->pos;
    }
    tt_vcpus_forget(true);
    /* the replay's speed is not measured across it */
    tt.speed_icount = UINT64_MAX;
    tt_plan_next();
}

/* ---- what the moves and the monitor see ---- */

bool tt_usable(Error **errp)
{
    if (!tt.enabled) {
        error_setg(errp, "time travel is off: %s", tt.off_reason ?:
                   "-icount rrbudget=0");
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

bool replay_restoring_snapshot(void)
{
    return replay_state.tt_loading;
}

bool replay_reset_keeps_ram(void)
{
    return tt.resetting;
}

bool replay_tt_enabled(void)
{
    return tt.enabled;
}

void tt_describe(ReplaySnapshots *r)
{
    ReplaySnapshotInfoList **tail = &r->snapshots;
    guint i;

    r->enabled = tt.enabled;
    r->budget = tt.budget;
    r->used = 0;
    r->interval = tt.interval;
    r->restores = tt.restores;
    r->restores_remapped = tt.restores_remapped;
    r->taken = tt.taken;
    r->take_us = tt.take_ns / 1000;
    for (i = 0; i < tt.snaps->len; i++) {
        TTSnapshot *s = snap_at(i);
        ReplaySnapshotInfo *info = g_new0(ReplaySnapshotInfo, 1);
        uint64_t npages;

        info->icount = s->pos.icount;
        info->events = s->pos.consumed;
        info->size = tt_snapshot_bytes(s, &npages, false);
        info->pages = npages;
        r->used += info->size;
        QAPI_LIST_APPEND(tail, info);
    }
}

void tt_hold_snapshots(bool hold)
{
    tt.held = hold;
}
