/*
 * qrr: time travel: guest RAM in the snapshots
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The first snapshot has every non-zero page of every migratable
 * RAMBlock (a page it lacks is zero); each later one has the pages that
 * changed since the one before, found with QEMU's dirty memory log (the
 * DIRTY_MEMORY_MIGRATION bitmap, see dirty_fetch()).  A snapshot taken
 * in a gap, after a restore, holds the pages changed since the one the
 * replay came from ("the base"), which the dirty log and since_base say.
 *
 * The RAM of snapshot k is the first snapshot's pages overlaid with
 * every later increment up to k, so two snapshots differ at most by the
 * pages of the increments between them.  Restoring writes only the pages
 * that can differ from snapshot k: those that differ from the base in
 * the current RAM, which since_base and the dirty log say, plus those
 * that differ between the base and snapshot k.  Where the base is not
 * known, the newest snapshot (the "tip") stands for it, with since_tip.
 * Going back and forth near the base then writes what the replay
 * changed, whatever the distance to the tip: a Linux guest's seek to
 * the middle of its recording wrote some 24,000 pages at every later
 * step back when it was counted from the tip.  After a restore, the
 * increments after k are what differs from the tip (since_tip).
 * The code that TCG translated from a page it writes is dropped
 * (page_written()); the rest of the translation cache stays valid.
 *
 * Packing.  A thread of its own ("tt-pack") packs the pages of each new
 * snapshot (replay-tt-pack.c), oldest snapshot first, so that the budget
 * holds three to four times as many snapshots and a seek far from where
 * the user works replays a shorter way; the vCPU thread only copies
 * pages, as before.  The packer works in chunks of PACK_CHUNK pages under
 * pack_lock, which every function here that reads or changes a
 * snapshot's pages also takes: between two chunks the packer lets a
 * waiting vCPU thread in (pack_waiters), so that a restore waits for at
 * most one chunk.  The memory a snapshot holds shrinks as its pages are
 * packed (tt_pages_bytes()).  A restore unpacks what it writes on two
 * threads, the vCPU's and "tt-unpack" (unpack_all()).
 *
 * Checking (-icount rrcheck=on).  Whatever writes guest RAM must tell the
 * dirty log (a store through the TLB, the memory API, a DMA unmap); a
 * write that does not leaves the next snapshot without it, and a replay
 * restored there goes another way, much later.  With the check, each
 * RAMBlock has a copy of its RAM as the snapshot taken or restored last
 * has it: a new snapshot's pages are written into the copy, which must
 * then equal the RAM; a page that does not is reported (check_block()),
 * naming the first word that differs.  AArch64's page table walker
 * setting a descriptor's Access Flag was one such write (patch 0036).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"
#include "qemu/atomic.h"
#include "qemu/error-report.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "exec/exec-all.h"
#include "exec/memory.h"
#include "exec/ram_addr.h"
#include "exec/ramblock.h"
#include "exec/target_page.h"
#include "replay-core.h"
#include "replay-tt.h"
#include "trace.h"

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
    uint32_t len;               /* bytes at data: page_size, or packed */
    bool tried;                 /* the packer has seen it */
} TTPage;

/* A migratable RAMBlock. */
typedef struct TTBlock {
    RAMBlock *rb;
    uint8_t *host;
    uint64_t npages;
    /* pages that may differ from the newest snapshot's */
    unsigned long *since_tip;
    /* pages that may differ from the base's, besides the dirty log's */
    unsigned long *since_base;
    /* with rrcheck=on: the RAM as the snapshot taken or restored last */
    uint8_t *copy;
} TTBlock;

struct TTPages {
    GArray **pages;             /* per TTBlock: TTPage by index */
    size_t bytes;               /* memory held (the packer shrinks it) */
    uint64_t with_data;         /* pages that are not zero */
    uint64_t untried;           /* of those, the packer has not seen */
    uint64_t in, out;           /* the others' bytes, raw and packed */
    bool queued;                /* in pack_queue */
    guint cursor_b, cursor_x;   /* where the packer goes on */
};

#define PACK_CHUNK 16

/*
 * Raw page buffers that snapshots gave back (POOL_MAX at most: 16 MiB
 * with 4 KiB pages, outside the budget), for the vCPU thread's next
 * copies: see page_buf_get().
 */
#define POOL_MAX 4096
static QemuMutex pool_lock;
static GPtrArray *pool;

static GArray *blocks;          /* TTBlock */
static size_t page_size;
static bool checking;           /* -icount rrcheck=on */
static uint64_t check_reported; /* pages reported */
static int64_t check_ns;        /* what the last snapshot's check took */

/* report no more pages than this, then only a count per snapshot */
#define CHECK_REPORT_MAX 10

static QemuMutex pack_lock;
static QemuCond pack_cond;
static GQueue pack_queue;       /* TTPages * with pages to try, oldest first */
static int pack_waiters;        /* vCPU thread waiting for pack_lock */
static TTPacker *unpacker;      /* the vCPU thread's, for restores */
static TTPacker *sampler;       /* the vCPU thread's, for pack_sample() */

static void pages_lock(void)
{
    qatomic_inc(&pack_waiters);
    qemu_mutex_lock(&pack_lock);
    qatomic_dec(&pack_waiters);
}

static void pages_unlock(void)
{
    qemu_cond_broadcast(&pack_cond);
    qemu_mutex_unlock(&pack_lock);
}

static TTBlock *block_at(guint i)
{
    return &g_array_index(blocks, TTBlock, i);
}

static int add_block(RAMBlock *rb, void *opaque)
{
    TTBlock b = { .rb = rb };

    if (!qemu_ram_is_migratable(rb)) {
        return 0;
    }
    b.host = qemu_ram_get_host_addr(rb);
    b.npages = qemu_ram_get_used_length(rb) / page_size;
    b.since_tip = bitmap_new(b.npages);
    b.since_base = bitmap_new(b.npages);
    if (checking) {
        b.copy = g_malloc(b.npages * page_size);
    }
    trace_replay_tt_block(qemu_ram_get_idstr(rb), b.npages);
    g_array_append_val(blocks, b);
    return 0;
}

/*
 * A buffer for a copy of a page.  The vCPU thread copies every page that
 * changed into one, and the packer frees it once the page is packed.
 * With a g_malloc() for each copy and the g_free() on the packer's
 * thread, the copies took 4 us a page on the Linux benchmark, a third of
 * a snapshot's time.  Raw buffers go back to the pool instead
 * (page_data_free()) for the next copies.
 */
static uint8_t *page_buf_get(void)
{
    uint8_t *buf = NULL;

    qemu_mutex_lock(&pool_lock);
    if (pool->len) {
        buf = g_ptr_array_steal_index_fast(pool, pool->len - 1);
    }
    qemu_mutex_unlock(&pool_lock);
    return buf ? buf : g_malloc(page_size);
}

/* Free @pg's data: a raw page's buffer goes back to the pool. */
static void page_data_free(const TTPage *pg)
{
    if (pg->data && pg->len == page_size) {
        qemu_mutex_lock(&pool_lock);
        if (pool->len < POOL_MAX) {
            g_ptr_array_add(pool, pg->data);
            qemu_mutex_unlock(&pool_lock);
            return;
        }
        qemu_mutex_unlock(&pool_lock);
    }
    g_free(pg->data);
}

/* Pack page @pg of @p, which the packer has not tried. */
static void pack_page(TTPacker *pk, TTPages *p, TTPage *pg)
{
    uint8_t *packed;
    size_t len;

    pg->tried = true;
    len = tt_pack_page(pk, pg->data, page_size, &packed);
    if (packed) {
        page_data_free(pg);
        pg->data = packed;
        pg->len = len;
        qatomic_set(&p->bytes, p->bytes - (page_size - len));
    }
    qatomic_set(&p->in, p->in + page_size);
    qatomic_set(&p->out, p->out + pg->len);
    /* last: tt_pages_settled() then sees the counts that go with it */
    qatomic_store_release(&p->untried, p->untried - 1);
}

/* Try PACK_CHUNK pages of @p; false when it has none left to try. */
static bool pack_some(TTPacker *pk, TTPages *p)
{
    unsigned done = 0;

    for (; p->cursor_b < blocks->len; p->cursor_b++, p->cursor_x = 0) {
        GArray *pages = p->pages[p->cursor_b];

        for (; p->cursor_x < pages->len; p->cursor_x++) {
            TTPage *pg = &g_array_index(pages, TTPage, p->cursor_x);

            if (pg->tried || !pg->data) {
                continue;
            }
            if (done++ == PACK_CHUNK) {
                return true;
            }
            pack_page(pk, p, pg);
        }
    }
    return false;
}

/*
 * Pack PACK_CHUNK pages spread over the new snapshot @p (not yet shared)
 * at once, on the vCPU thread: what they pack to is the estimate of
 * what the whole snapshot will (tt_pages_bytes()), from the moment it is
 * taken, whatever the packer's backlog.
 */
static void pack_sample(TTPages *p)
{
    uint64_t stride = MAX(p->with_data / PACK_CHUNK, 1), n = 0;
    guint b, x;

    for (b = 0; b < blocks->len; b++) {
        GArray *pages = p->pages[b];

        for (x = 0; x < pages->len; x++) {
            TTPage *pg = &g_array_index(pages, TTPage, x);

            if (pg->data && n++ % stride == 0) {
                pack_page(sampler, p, pg);
            }
        }
    }
}

static void *pack_thread(void *opaque)
{
    TTPacker *pk = tt_packer_new(page_size, false);

    qemu_mutex_lock(&pack_lock);
    for (;;) {
        TTPages *p;

        while (g_queue_is_empty(&pack_queue) ||
               qatomic_read(&pack_waiters)) {
            qemu_cond_wait(&pack_cond, &pack_lock);
        }
        p = g_queue_peek_head(&pack_queue);
        if (!pack_some(pk, p)) {
            g_queue_pop_head(&pack_queue);
            p->queued = false;
        }
    }
    return NULL;
}

static void pack_enqueue(TTPages *p)
{
    if (!p->queued) {
        p->queued = true;
        g_queue_push_tail(&pack_queue, p);
    }
}

/*
 * Unpacking in a restore.  A seek far back writes 15,000 to 25,000
 * pages, most of them packed, and unpacking is most of its time: the
 * vCPU thread unpacks the first half of them while the "tt-unpack"
 * thread unpacks the second.  Both only read the snapshots' pages, which
 * pack_lock (held by the restore) keeps as they are, and each writes
 * guest pages of its own; the semaphores order the two.
 */
typedef struct TTUnpackJob {
    uint8_t *dst;
    const TTPage *pg;
} TTUnpackJob;

/* fewer packed pages than this are not worth waking the helper for */
#define UNPACK_SPLIT 64

static struct {
    QemuSemaphore go, done;
    TTPacker *pk;
    const TTUnpackJob *jobs;
    size_t n;
    const TTPage *failed;
} unpack_helper;

/* Unpack @n @jobs; the first page that does not unpack, or NULL. */
static const TTPage *unpack_run(TTPacker *pk, const TTUnpackJob *jobs,
                                size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!tt_unpack_page(pk, jobs[i].pg->data, jobs[i].pg->len,
                            jobs[i].dst, page_size)) {
            return jobs[i].pg;
        }
    }
    return NULL;
}

static void *unpack_thread(void *opaque)
{
    for (;;) {
        qemu_sem_wait(&unpack_helper.go);
        unpack_helper.failed = unpack_run(unpack_helper.pk,
                                          unpack_helper.jobs,
                                          unpack_helper.n);
        qemu_sem_post(&unpack_helper.done);
    }
    return NULL;
}

static void unpack_all(GArray *jobs)
{
    const TTUnpackJob *j = (const TTUnpackJob *)jobs->data;
    size_t half = jobs->len >= UNPACK_SPLIT ? jobs->len / 2 : 0;
    const TTPage *failed;

    if (half) {
        unpack_helper.jobs = j + jobs->len - half;
        unpack_helper.n = half;
        qemu_sem_post(&unpack_helper.go);
    }
    failed = unpack_run(unpacker, j, jobs->len - half);
    if (half) {
        qemu_sem_wait(&unpack_helper.done);
        failed = failed ?: unpack_helper.failed;
    }
    if (failed) {
        /* our own packing: it unpacks, or memory is corrupt */
        error_report("record/replay: page %" PRIu64 " of a time-travel "
                     "snapshot does not unpack", failed->index);
        abort();
    }
}

bool tt_pages_start(bool check, Error **errp)
{
    QemuThread th;

    checking = check;
    page_size = qemu_target_page_size();
    blocks = g_array_new(false, true, sizeof(TTBlock));
    qemu_ram_foreach_block(add_block, NULL);
    unpacker = tt_packer_new(page_size, true);
    unpack_helper.pk = tt_packer_new(page_size, true);
    sampler = tt_packer_new(page_size, false);
    if (!unpacker || !unpack_helper.pk || !sampler) {
        error_setg(errp, "cannot set up zstd to pack and unpack pages");
        return false;
    }
    qemu_sem_init(&unpack_helper.go, 0);
    qemu_sem_init(&unpack_helper.done, 0);
    qemu_thread_create(&th, "tt-unpack", unpack_thread, NULL,
                       QEMU_THREAD_DETACHED);
    qemu_mutex_init(&pack_lock);
    qemu_mutex_init(&pool_lock);
    pool = g_ptr_array_new();
    qemu_cond_init(&pack_cond);
    g_queue_init(&pack_queue);
    qemu_thread_create(&th, "tt-pack", pack_thread, NULL,
                       QEMU_THREAD_DETACHED);
    return memory_global_dirty_log_start(TT_DIRTY_REASON, errp);
}

/*
 * Pages asked of the dirty bitmap's snapshot at once before asking page
 * by page: between two snapshots the Linux test guest dirties a few
 * hundred of its 65,536 pages, and one call per page was 9 % of what a
 * snapshot cost on the Linux benchmark.
 */
#define DIRTY_RUN 64

/* Or the pages of @b written since the last call into @into; clear them. */
static void dirty_fetch(TTBlock *b, unsigned long *into)
{
    ram_addr_t base = qemu_ram_get_offset(b->rb);
    DirtyBitmapSnapshot *d;
    uint64_t i, j, n;

    d = cpu_physical_memory_snapshot_and_clear_dirty(
        b->rb->mr, 0, b->npages * page_size, DIRTY_MEMORY_MIGRATION);
    for (i = 0; i < b->npages; i += DIRTY_RUN) {
        n = MIN(DIRTY_RUN, b->npages - i);
        if (!cpu_physical_memory_snapshot_get_dirty(d, base + i * page_size,
                                                    n * page_size)) {
            continue;
        }
        for (j = i; j < i + n; j++) {
            if (cpu_physical_memory_snapshot_get_dirty(
                    d, base + j * page_size, page_size)) {
                set_bit(j, into);
            }
        }
    }
    g_free(d);
}

static void page_array_free(GArray *pages)
{
    guint i;

    for (i = 0; i < pages->len; i++) {
        page_data_free(&g_array_index(pages, TTPage, i));
    }
    g_array_free(pages, true);
}

void tt_pages_free(TTPages *p)
{
    guint b;

    if (!p) {
        return;
    }
    pages_lock();
    if (p->queued) {
        g_queue_remove(&pack_queue, p);
    }
    for (b = 0; b < blocks->len; b++) {
        if (p->pages[b]) {
            page_array_free(p->pages[b]);
        }
    }
    pages_unlock();
    g_free(p->pages);
    g_free(p);
}

/* Count what @p holds (pages_lock held, or @p not yet shared). */
static void pages_account(TTPages *p)
{
    size_t bytes = 0;
    guint b, i;

    uint64_t untried = 0, in = 0, out = 0;

    p->with_data = 0;
    for (b = 0; b < blocks->len; b++) {
        GArray *pages = p->pages[b];

        bytes += pages->len * sizeof(TTPage);
        for (i = 0; i < pages->len; i++) {
            TTPage *pg = &g_array_index(pages, TTPage, i);

            if (pg->data) {
                bytes += pg->len;
                p->with_data++;
                untried += !pg->tried;
                in += pg->tried ? page_size : 0;
                out += pg->tried ? pg->len : 0;
            }
        }
    }
    qatomic_set(&p->bytes, bytes);
    qatomic_set(&p->untried, untried);
    qatomic_set(&p->in, in);
    qatomic_set(&p->out, out);
}

/*
 * No lock: the packer changes the counts one at a time, atomically, and
 * with_data changes on the vCPU thread alone (take, merge).  @packed: the
 * pages that the packer has not seen yet count at the share that the
 * snapshot's pages it has seen packed to (at least pack_sample()'s), so
 * that the budget and the placement of snapshots see a snapshot's size
 * from the moment it is taken, not growing smaller behind them.
 */
size_t tt_pages_bytes(const TTPages *p, uint64_t *with_data, bool packed)
{
    uint64_t in = qatomic_read(&p->in), out = qatomic_read(&p->out);
    uint64_t untried = qatomic_read(&p->untried);
    size_t bytes = qatomic_read(&p->bytes);

    *with_data = p->with_data;
    if (packed && in && untried) {
        bytes -= untried * (page_size - (double)page_size * out / in);
    }
    return bytes;
}

/*
 * The packer has tried every page of @p: tt_pages_bytes() gives the same
 * from now on, until @p is merged.
 */
bool tt_pages_settled(const TTPages *p)
{
    return qatomic_load_acquire(&p->untried) == 0;
}

/* Or the page numbers of @pages into @bits. */
static void page_array_mark(GArray *pages, unsigned long *bits)
{
    guint x;

    for (x = 0; x < pages->len; x++) {
        set_bit(g_array_index(pages, TTPage, x).index, bits);
    }
}

/* Merge the page arrays @a into @n, by index; the later content wins. */
static GArray *page_array_merge(GArray *a, GArray *n)
{
    GArray *m = g_array_sized_new(false, false, sizeof(TTPage),
                                  a->len + n->len);
    guint x = 0, y = 0;

    while (x < a->len || y < n->len) {
        TTPage *pa = x < a->len ? &g_array_index(a, TTPage, x) : NULL;
        TTPage *pn = y < n->len ? &g_array_index(n, TTPage, y) : NULL;

        if (pn && (!pa || pn->index <= pa->index)) {
            if (pa && pa->index == pn->index) {
                page_data_free(pa);
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
    return m;
}

void tt_pages_merge(TTPages *older, TTPages *newer, bool older_is_base)
{
    bool unpacked;
    guint b;

    pages_lock();
    unpacked = older->queued || newer->queued;
    if (older->queued) {
        g_queue_remove(&pack_queue, older);
        older->queued = false;
    }
    for (b = 0; b < blocks->len; b++) {
        if (older_is_base) {
            /* the RAM differs from the one before by what @older changed */
            page_array_mark(older->pages[b], block_at(b)->since_base);
        }
        newer->pages[b] = page_array_merge(older->pages[b], newer->pages[b]);
        older->pages[b] = NULL;
    }
    pages_account(newer);
    newer->cursor_b = newer->cursor_x = 0;
    if (unpacked) {
        pack_enqueue(newer);
    }
    pages_unlock();
}

static GArray *take_block(TTBlock *blk, bool first, bool append)
{
    g_autofree unsigned long *dirty = bitmap_new(blk->npages);
    GArray *pages = g_array_new(false, false, sizeof(TTPage));
    unsigned long i;

    dirty_fetch(blk, dirty);
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
        uint8_t *p = blk->host + i * page_size;
        TTPage pg = { .index = i };

        if (!buffer_is_zero(p, page_size)) {
            pg.data = page_buf_get();
            memcpy(pg.data, p, page_size);
            pg.len = page_size;
        } else if (first) {
            continue;       /* absent from the first: zero */
        }
        g_array_append_val(pages, pg);
    }
    return pages;
}

/* Report page @i of @blk, whose copy differs from the RAM. */
static void check_report(TTBlock *blk, uint64_t i)
{
    const uint32_t *was = (const uint32_t *)(blk->copy + i * page_size);
    const uint32_t *now = (const uint32_t *)(blk->host + i * page_size);
    size_t w = 0;

    while (was[w] == now[w]) {
        w++;
    }
    warn_report("record/replay: rrcheck: page %" PRIu64 " of RAMBlock %s "
                "changed before icount %" PRIu64 " without the dirty memory "
                "log seeing it: word %zu was 0x%08" PRIx32 ", is 0x%08"
                PRIx32, i, qemu_ram_get_idstr(blk->rb), replay_icount(), w,
                was[w], now[w]);
}

/*
 * rrcheck: write the new snapshot's @pages of @blk into its copy, which
 * must then equal the RAM; report and count the pages that do not, and
 * take them into the copy.  Without @checkable the copy only becomes the
 * RAM.
 */
static uint64_t check_block(TTBlock *blk, GArray *pages, bool checkable)
{
    uint64_t i, missed = 0;
    guint x;

    if (!checkable) {
        memcpy(blk->copy, blk->host, blk->npages * page_size);
        return 0;
    }
    for (x = 0; x < pages->len; x++) {
        TTPage *pg = &g_array_index(pages, TTPage, x);
        uint8_t *dst = blk->copy + pg->index * page_size;

        if (pg->data) {
            memcpy(dst, pg->data, page_size);
        } else {
            memset(dst, 0, page_size);
        }
    }
    for (i = 0; i < blk->npages; i++) {
        uint8_t *copy = blk->copy + i * page_size;
        uint8_t *ram = blk->host + i * page_size;

        if (memcmp(copy, ram, page_size)) {
            if (check_reported++ < CHECK_REPORT_MAX) {
                check_report(blk, i);
            }
            memcpy(copy, ram, page_size);
            missed++;
        }
    }
    return missed;
}

TTPages *tt_pages_take(bool first, bool append, bool base_is_tip)
{
    TTPages *p = g_new0(TTPages, 1);
    /*
     * The copy is the base's RAM; the new snapshot's pages are what
     * differs from the base's (@append: the tip's) but in the first,
     * which has no zero pages
     */
    bool checkable = !first && (!append || base_is_tip);
    uint64_t missed = 0;
    int64_t t0;
    guint b;

    p->pages = g_new0(GArray *, blocks->len);
    check_ns = 0;
    for (b = 0; b < blocks->len; b++) {
        p->pages[b] = take_block(block_at(b), first, append);
        if (checking) {
            t0 = get_clock();
            missed += check_block(block_at(b), p->pages[b], checkable);
            check_ns += get_clock() - t0;
        }
    }
    if (missed) {
        warn_report("record/replay: rrcheck: the snapshot at icount %" PRIu64
                    " lacks %" PRIu64 " pages that changed without the "
                    "dirty memory log seeing them", replay_icount(), missed);
    }
    pages_account(p);
    pack_sample(p);
    pages_lock();
    pack_enqueue(p);
    pages_unlock();
    return p;
}

int64_t tt_pages_check_ns(void)
{
    return check_ns;
}

/*
 * Page @i of @blk was written behind TCG's back (a memcpy, not a store
 * through the TLB): drop the code translated from it, if any.  A page
 * with translated code is one whose DIRTY_MEMORY_CODE bit is clear
 * (tlb_protect_code()); for the others there is nothing to drop, and
 * the test spares tb_invalidate_phys_range() its page collection.
 * Flushing the whole cache instead would make the replay after every
 * restore translate the guest's code again: on a Linux guest, 1 M
 * instructions after a restore took 60 ms that way, 20 times their
 * time once translated.
 */
static void page_written(TTBlock *blk, unsigned long i)
{
    ram_addr_t a = qemu_ram_get_offset(blk->rb) + i * page_size;

    if (!cpu_physical_memory_get_dirty_flag(a, DIRTY_MEMORY_CODE)) {
        tb_invalidate_phys_range(a, a + page_size - 1);
    }
}

/*
 * Write each page in @need from the latest of @snaps up to @k that has
 * it; a packed one is only noted in @jobs, for unpack_all().
 */
static uint64_t restore_block(guint b, unsigned long *need,
                              TTPages *const *snaps, unsigned k,
                              GArray *jobs)
{
    TTBlock *blk = block_at(b);
    uint64_t left = bitmap_count_one(need, blk->npages), written = 0;
    unsigned long i;
    int n;

    for (n = k; n >= 0 && left; n--) {
        GArray *pages = snaps[n]->pages[b];
        guint x;

        for (x = 0; x < pages->len; x++) {
            TTPage *pg = &g_array_index(pages, TTPage, x);
            uint8_t *dst = blk->host + pg->index * page_size;

            if (!test_and_clear_bit(pg->index, need)) {
                continue;
            }
            if (pg->data && pg->len < page_size) {
                TTUnpackJob job = { .dst = dst, .pg = pg };

                g_array_append_val(jobs, job);
            } else if (pg->data) {
                memcpy(dst, pg->data, page_size);
            } else {
                memset(dst, 0, page_size);
            }
            page_written(blk, pg->index);
            written++;
            left--;
        }
    }
    /* what no snapshot has was zero in the first */
    for (i = find_first_bit(need, blk->npages); i < blk->npages;
         i = find_next_bit(need, blk->npages, i + 1)) {
        memset(blk->host + i * page_size, 0, page_size);
        page_written(blk, i);
        written++;
    }
    return written;
}

/*
 * Or into @need the pages that may differ between snapshots @a and @b
 * (any order): the RAM of the later one is the earlier one's overlaid
 * with the increments after it, so those increments' pages.
 */
static void mark_between(unsigned long *need, TTPages *const *snaps,
                         guint b, unsigned a, unsigned c)
{
    unsigned j;

    for (j = MIN(a, c) + 1; j <= MAX(a, c); j++) {
        page_array_mark(snaps[j]->pages[b], need);
    }
}

uint64_t tt_pages_restore(TTPages *const *snaps, unsigned n, unsigned k,
                          int base)
{
    g_autoptr(GArray) jobs = g_array_new(false, false, sizeof(TTUnpackJob));
    uint64_t written = 0;
    guint b;

    pages_lock();
    for (b = 0; b < blocks->len; b++) {
        TTBlock *blk = block_at(b);
        g_autofree unsigned long *need = bitmap_new(blk->npages);
        unsigned long *newtip = bitmap_new(blk->npages);

        /* what differs from the base, then between the base and k */
        dirty_fetch(blk, need);
        if (base >= 0) {
            bitmap_or(need, need, blk->since_base, blk->npages);
            mark_between(need, snaps, b, base, k);
        } else {
            bitmap_or(need, need, blk->since_tip, blk->npages);
            mark_between(need, snaps, b, k, n - 1);
        }
        /* RAM is snapshot k's: it differs from the tip's by what is after */
        mark_between(newtip, snaps, b, k, n - 1);
        written += restore_block(b, need, snaps, k, jobs);
        g_free(blk->since_tip);
        blk->since_tip = newtip;
        bitmap_zero(blk->since_base, blk->npages);
    }
    unpack_all(jobs);
    for (b = 0; checking && b < blocks->len; b++) {
        /* the RAM is snapshot k's now */
        memcpy(block_at(b)->copy, block_at(b)->host,
               block_at(b)->npages * page_size);
    }
    pages_unlock();
    return written;
}

void tt_pages_forget(void)
{
    guint b;

    for (b = 0; blocks && b < blocks->len; b++) {
        TTBlock *blk = block_at(b);

        bitmap_fill(blk->since_tip, blk->npages);
        bitmap_fill(blk->since_base, blk->npages);
    }
}
