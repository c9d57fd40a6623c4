/*
 * qrr: time travel's parts: the snapshot store, the page store, the
 * placement policy and the moves
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 *   replay-tt-moves.c      seek, reverse step, reverse continue (gdb and
 *                          the monitor): which snapshot to restore, where
 *                          to break
 *   replay-timetravel.c    the snapshots: taking, thinning, restoring
 *   replay-tt-pages.c      guest RAM in the snapshots, and the dirty log
 *   replay-tt-pack.c       one page, packed (zstd)
 *   replay-tt-policy.c     where snapshots go (pure functions)
 *
 * Each calls only those below it.
 */

#ifndef REPLAY_TT_H
#define REPLAY_TT_H

#define TT_INTERVAL_INITIAL (10 * 1000 * 1000)
#define TT_INTERVAL_MIN (1000 * 1000)
#define TT_INTERVAL_MAX (UINT64_C(1) << 40)

/* ---- replay-tt-policy.c ---- */

/* The history as the policy sees it. */
typedef struct TTLayout {
    const uint64_t *at;         /* the snapshots' icounts, in order */
    unsigned n;                 /* how many (at least 1) */
    uint64_t interval;          /* the gap wanted where the user works */
    uint64_t budget;            /* bytes the snapshots may hold */
    const size_t *bytes;        /* their sizes (NULL: not known) */
} TTLayout;

double tt_gap_wanted(uint64_t at, uint64_t focus, uint64_t interval,
                     double cap);
double tt_ramp_count(double cap);
double tt_gap_cap(const TTLayout *l);
size_t tt_increment_bytes(const TTLayout *l);
double tt_gap_foreseen(const TTLayout *l, uint64_t target);
unsigned tt_pick_merge(const TTLayout *l, uint64_t focus);
uint64_t tt_next_at(const TTLayout *l, int p);
uint64_t tt_grid_next(const TTLayout *l, int p, double gap);
bool tt_worth_filling(const TTLayout *l, int p, uint64_t now,
                      int64_t target);
uint64_t tt_adapt_interval(const TTLayout *l, bool thinned, uint64_t used,
                           double cost_ns, double ns_per_insn);

/* ---- replay-tt-pack.c ---- */

/* A zstd context that packs pages, or unpacks them (@inflating). */
typedef struct TTPacker TTPacker;

TTPacker *tt_packer_new(size_t page_size, bool inflating);
void tt_packer_free(TTPacker *pk);
/*
 * Pack the @size bytes of @page into a new buffer *@out; its length, or
 * 0 (and *@out NULL) if the page does not shrink by an eighth.
 */
size_t tt_pack_page(TTPacker *pk, const uint8_t *page, size_t size,
                    uint8_t **out);
/* Unpack @len bytes at @packed into @page; false if they are no page. */
bool tt_unpack_page(TTPacker *pk, const uint8_t *packed, size_t len,
                    uint8_t *page, size_t size);

/*
 * What follows needs QEMU's system emulation; the pure parts above build
 * alone (TT_PURE_ONLY), with the unit tests.
 */
#ifndef TT_PURE_ONLY

#include "qapi/qapi-types-replay.h"

/* ---- replay-tt-pages.c ---- */

/* A snapshot's RAM: per migratable RAMBlock, its pages by index. */
typedef struct TTPages TTPages;

/*
 * Find the RAM and start the dirty log (at the first snapshot).  @check:
 * keep a copy of RAM to check each snapshot against (-icount rrcheck).
 */
bool tt_pages_start(bool check, Error **errp);
/*
 * The pages the new snapshot holds: every non-zero page for the @first;
 * else those that may differ from the snapshot before it, the newest
 * (@append) or the one the position came from (the base).  With
 * rrcheck, @base_is_tip says that an appended one can be checked.
 */
TTPages *tt_pages_take(bool first, bool append, bool base_is_tip);
/* Host ns that rrcheck took in the last tt_pages_take(), 0 without it. */
int64_t tt_pages_check_ns(void);
void tt_pages_free(TTPages *p);
/*
 * Memory held, and the count of pages holding data in *@with_data;
 * @packed: once the packer has packed every page (an estimate).
 */
size_t tt_pages_bytes(const TTPages *p, uint64_t *with_data, bool packed);
/* The packer is done with @p: its size stays as it is until a merge. */
bool tt_pages_settled(const TTPages *p);
/*
 * Merge @older into @newer (the later content wins), leaving @older
 * empty.  @older_is_base: @older is the base, whose successor the RAM
 * must now be compared with.
 */
void tt_pages_merge(TTPages *older, TTPages *newer, bool older_is_base);
/*
 * Write RAM back to snapshot @k of @snaps (TTPages *, by position):
 * only what may differ from it.  @base: the index of the base, -1 if it
 * is none of @snaps.  Returns the pages written.
 */
uint64_t tt_pages_restore(TTPages *const *snaps, unsigned n, unsigned k,
                          int base);
/* loadvm put another machine in place: RAM may differ anywhere. */
void tt_pages_forget(void);

/* ---- replay-timetravel.c ---- */

/* The latest snapshot at (or strictly before) @p; -1 if none. */
int tt_find(const ReplayPos *p, bool strict);
/* The latest snapshot at or before index @k that can be restored. */
int tt_restorable(int k);
ReplayPos tt_pos(unsigned i);
/* Time travel is on and has a snapshot; else why not in @errp. */
bool tt_usable(Error **errp);
/* The vCPU thread: put the machine back to snapshot @k. */
void tt_restore(unsigned k);

/* Take no snapshot while @hold (a move walks them by index). */
void tt_hold_snapshots(bool hold);
/* The store's part of query-replay-snapshots. */
void tt_describe(ReplaySnapshots *r);

#endif
#endif
