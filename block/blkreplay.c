/*
 * qrr: blkreplay, the block filter that makes disks replayable
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Usage:
 *   -drive file=disk.qcow2,if=none,id=img-direct
 *   -drive driver=blkreplay,if=none,image=img-direct,id=img-blkreplay
 *   -device virtio-blk-pci,drive=img-blkreplay
 *
 * A disk is replayable when two things are fixed by the recording: when
 * each request completes (the instruction count at which the guest sees
 * it), and what data each read returns.
 *
 * Completion.  Each request gets an id when the guest submits it (the
 * order of submission is deterministic).  The request runs, but its
 * completion does not reach the guest when the host finishes it: the
 * coroutine waits until the replay engine delivers a "block" event with
 * its id, at the instruction count recorded for it.  Requests made while
 * the machine is stopped complete at once, unlogged.
 *
 * Data.  The image below is never written, in record or in replay: writes
 * go to an overlay held in memory, in blocks of BLKREPLAY_BLOCK bytes, and
 * reads see the overlay over the image.  Both runs start from the same
 * image with an empty overlay, so every read returns the recorded data.
 * Requests are carried out one at a time in the order of their ids, so
 * overlapping requests in flight together (whose outcome on real hardware
 * depends on timing) also end the same way in both runs.  Discard leaves
 * the data as it was; write-zeroes writes zeroes.  The overlay is dropped
 * when the drive is closed.
 *
 * Time-travel snapshots share the overlay's blocks instead of copying
 * them: a block is written in place only while the overlay alone holds
 * it, and copied first once a snapshot holds it too, so a snapshot costs
 * a table of pointers and the blocks written since the one before.  On
 * the Linux benchmark, copying every block at every snapshot grew the
 * time a snapshot took as the guest wrote (0.45 ms median over a
 * forward replay, 1.5 ms in the second half of a gdb session), and with
 * tens of MiB written each snapshot would hold them all again.
 *
 * With rr off, blkreplay is a plain pass-through filter: no overlay, and
 * requests complete as soon as the image completes them.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/module.h"
#include "block/block-io.h"
#include "block/block_int.h"
#include "system/replay.h"
#include "system/replay-bytes.h"
#include <zlib.h>
#include "system/runstate.h"

#define BLKREPLAY_BLOCK 4096

typedef struct BlkreplaySnapshot BlkreplaySnapshot;

/*
 * A block of an overlay, held by the drive's overlay and by the snapshots
 * that saved it (@refs, atomic: a snapshot is freed on the vCPU thread
 * without the BQL, while the overlay changes under it).  The data changes
 * only while @refs is 1 and the overlay holds it (overlay_own()).
 * @owner, the snapshot that counts its bytes, is used on the vCPU thread
 * alone (save, merge, free).
 */
typedef struct OverlayBlock {
    uint64_t index;             /* the key in the hash tables */
    unsigned refs;
    BlkreplaySnapshot *owner;
    uint8_t data[BLKREPLAY_BLOCK];
} OverlayBlock;

typedef struct BDRVBlkreplayState {
    GHashTable *overlay;    /* &block->index -> OverlayBlock */
    uint64_t next_turn;     /* turn of the next request submitted */
    uint64_t serving;       /* turn of the request allowed to run */
    CoQueue waiting;        /* requests waiting for their turn */
    unsigned inflight;      /* requests submitted and not completed */
} BDRVBlkreplayState;

/* The open blkreplay drives, for the replay engine's snapshots. */
static GSList *blkreplay_drives;
static bool blkreplay_registered;

typedef struct BlkreplayWait {
    Coroutine *co;
    QEMUBH *bh;
} BlkreplayWait;

static bool blkreplay_active(void)
{
    return replay_mode != REPLAY_MODE_NONE;
}

static void blkreplay_wake(void *opaque)
{
    BlkreplayWait *w = opaque;

    qemu_bh_delete(w->bh);
    aio_co_wake(w->co);
}

/* Park the request until the replay engine delivers completion @id. */
static void coroutine_fn blkreplay_complete(BlockDriverState *bs, uint64_t id)
{
    BlkreplayWait w = { .co = qemu_coroutine_self() };

    w.bh = aio_bh_new(bdrv_get_aio_context(bs), blkreplay_wake, &w);
    replay_block_event(w.bh, id);
    qemu_coroutine_yield();
}

/*
 * Wait until the requests submitted before this one are done.  Returns the
 * request's replay id, or 0 for a request made while the machine is
 * stopped (QEMU's own flush at a stop, say): the guest cannot see when
 * those complete, and a replay stops at other points than its recording.
 */
static uint64_t coroutine_fn blkreplay_begin(BlockDriverState *bs)
{
    BDRVBlkreplayState *s = bs->opaque;
    uint64_t turn = s->next_turn++;

    s->inflight++;
    while (s->serving != turn) {
        qemu_co_queue_wait(&s->waiting, NULL);
    }
    return runstate_is_running() ? replay_block_next_id() + 1 : 0;
}

/* Let the next request run, then wait for this one's recorded completion. */
static void coroutine_fn blkreplay_end(BlockDriverState *bs, uint64_t id)
{
    BDRVBlkreplayState *s = bs->opaque;

    s->serving++;
    qemu_co_queue_restart_all(&s->waiting);
    if (id) {
        blkreplay_complete(bs, id - 1);
    }
    s->inflight--;
}

/* ---- the overlay ---- */

static OverlayBlock *block_new(uint64_t index)
{
    OverlayBlock *b = g_new(OverlayBlock, 1);

    b->index = index;
    b->refs = 1;
    b->owner = NULL;
    return b;
}

static void block_unref(gpointer p)
{
    OverlayBlock *b = p;

    if (qatomic_fetch_dec(&b->refs) == 1) {
        g_free(b);
    }
}

/* A table of blocks: the key is in the block, which the table holds. */
static GHashTable *overlay_new(void)
{
    return g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                 block_unref);
}

/*
 * Put @b in @table.  g_hash_table_replace(), not _insert(): insert keeps
 * the old key, which points into the block it drops.
 */
static void overlay_put(GHashTable *table, OverlayBlock *b)
{
    g_hash_table_replace(table, &b->index, b);
}

static OverlayBlock *overlay_block(BDRVBlkreplayState *s, uint64_t index)
{
    return g_hash_table_lookup(s->overlay, &index);
}

/*
 * Block @b of the overlay, that the overlay alone holds: @b itself, or a
 * copy of it put in its place when a snapshot holds it too.
 */
static OverlayBlock *overlay_own(BDRVBlkreplayState *s, OverlayBlock *b)
{
    OverlayBlock *copy;

    if (qatomic_read(&b->refs) == 1) {
        return b;
    }
    copy = block_new(b->index);
    memcpy(copy->data, b->data, BLKREPLAY_BLOCK);
    overlay_put(s->overlay, copy);
    return copy;
}

/*
 * The overlay block @index to write to, created from the image's data
 * when the overlay does not hold it yet.
 */
static int coroutine_fn GRAPH_RDLOCK
overlay_get(BlockDriverState *bs, uint64_t index, uint8_t **block)
{
    BDRVBlkreplayState *s = bs->opaque;
    int64_t start = index * BLKREPLAY_BLOCK;
    int64_t len;
    OverlayBlock *b = overlay_block(s, index);
    int ret;

    *block = NULL;
    if (b) {
        *block = overlay_own(s, b)->data;
        return 0;
    }
    len = bdrv_co_getlength(bs->file->bs);
    if (len < 0) {
        return len;
    }
    b = block_new(index);
    memset(b->data, 0, BLKREPLAY_BLOCK);
    len = MIN(len - start, BLKREPLAY_BLOCK);
    if (len > 0) {
        ret = bdrv_co_pread(bs->file, start, len, b->data, 0);
        if (ret < 0) {
            block_unref(b);
            return ret;
        }
    }
    overlay_put(s->overlay, b);
    *block = b->data;
    return 0;
}

/*
 * Write @bytes at @offset into the overlay, from @qiov, or zeroes when
 * @qiov is NULL.
 */
static int coroutine_fn GRAPH_RDLOCK
overlay_write(BlockDriverState *bs, int64_t offset, int64_t bytes,
              QEMUIOVector *qiov)
{
    int64_t done = 0;
    uint8_t *block;
    int ret;

    while (done < bytes) {
        uint64_t index = (offset + done) / BLKREPLAY_BLOCK;
        int64_t in_block = (offset + done) % BLKREPLAY_BLOCK;
        int64_t n = MIN(bytes - done, BLKREPLAY_BLOCK - in_block);

        ret = overlay_get(bs, index, &block);
        if (ret < 0) {
            return ret;
        }
        if (qiov) {
            qemu_iovec_to_buf(qiov, done, block + in_block, n);
        } else {
            memset(block + in_block, 0, n);
        }
        done += n;
    }
    return 0;
}

/* Copy the overlay's blocks over the image data just read into @qiov. */
static void overlay_patch_read(BDRVBlkreplayState *s, int64_t offset,
                               int64_t bytes, QEMUIOVector *qiov)
{
    int64_t done = 0;

    while (done < bytes) {
        uint64_t index = (offset + done) / BLKREPLAY_BLOCK;
        int64_t in_block = (offset + done) % BLKREPLAY_BLOCK;
        int64_t n = MIN(bytes - done, BLKREPLAY_BLOCK - in_block);
        OverlayBlock *b = overlay_block(s, index);

        if (b) {
            qemu_iovec_from_buf(qiov, done, b->data + in_block, n);
        }
        done += n;
    }
}

/* ---- the drives' state for the replay engine (a participant) ---- */

/*
 * Every drive's overlay, for a time-travel snapshot: its tables share
 * the blocks with the overlays.  @charged is what the blocks it owns take
 * (OverlayBlock's @owner): a block counts in the first snapshot that
 * saved it, and moves to the next one when that one is merged away
 * (blkreplay_snapshot_merge()); one that the next does not hold counts
 * again in the next snapshot that saves it.
 */
struct BlkreplaySnapshot {
    GSList *drives;         /* BDRVBlkreplayState * */
    GSList *overlays;       /* GHashTable *, in the same order */
    size_t charged;
};

/* A request is in flight: its completion waits for the replay. */
static bool blkreplay_busy(void *opaque)
{
    GSList *l;

    for (l = blkreplay_drives; l; l = l->next) {
        BDRVBlkreplayState *s = l->data;

        if (s->inflight) {
            return true;
        }
    }
    return false;
}

static void blkreplay_settle(void *opaque)
{
    if (blkreplay_busy(opaque)) {
        bdrv_drain_all();
    }
}

/*
 * A table holding the blocks of @src.  @snap: for a snapshot, which owns
 * the blocks that no snapshot owns yet; *@bytes grows by the table's own
 * size.
 */
static GHashTable *overlay_share(GHashTable *src, BlkreplaySnapshot *snap,
                                 size_t *bytes)
{
    GHashTable *dst = overlay_new();
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, src);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        OverlayBlock *b = v;

        qatomic_inc(&b->refs);
        overlay_put(dst, b);
        if (snap && !b->owner) {
            b->owner = snap;
            snap->charged += sizeof(*b);
        }
    }
    /* a hash table entry: the key, the value and the hash */
    *bytes += g_hash_table_size(dst) * 3 * sizeof(void *);
    return dst;
}

static void *blkreplay_snapshot_save(void *opaque, size_t *bytes)
{
    BlkreplaySnapshot *snap = g_new0(BlkreplaySnapshot, 1);
    GSList *l;

    *bytes += sizeof(*snap);
    for (l = blkreplay_drives; l; l = l->next) {
        BDRVBlkreplayState *s = l->data;

        snap->drives = g_slist_prepend(snap->drives, s);
        snap->overlays = g_slist_prepend(snap->overlays,
                                         overlay_share(s->overlay, snap,
                                                       bytes));
    }
    return snap;
}

static void blkreplay_snapshot_load(void *opaque, const void *state)
{
    const BlkreplaySnapshot *snap = state;
    GSList *d, *o;
    size_t bytes = 0;

    for (d = snap->drives, o = snap->overlays; d; d = d->next, o = o->next) {
        BDRVBlkreplayState *s = d->data;

        if (!g_slist_find(blkreplay_drives, s)) {
            continue;       /* closed since */
        }
        g_hash_table_destroy(s->overlay);
        s->overlay = overlay_share(o->data, NULL, &bytes);
    }
}

/* Unowned: the blocks of @snap's tables that @snap owns. */
static void snapshot_disown(BlkreplaySnapshot *snap)
{
    GSList *o;

    for (o = snap->overlays; o; o = o->next) {
        GHashTableIter it;
        gpointer k, v;

        g_hash_table_iter_init(&it, o->data);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            OverlayBlock *b = v;

            if (b->owner == snap) {
                b->owner = NULL;
            }
        }
    }
    snap->charged = 0;
}

static size_t blkreplay_snapshot_size(const void *state)
{
    const BlkreplaySnapshot *snap = state;

    return snap->charged;
}

/* The blocks that @older owns and @newer holds are @newer's now. */
static void blkreplay_snapshot_merge(void *older, void *newer)
{
    BlkreplaySnapshot *o = older, *n = newer;
    GSList *d, *t;

    for (d = o->drives, t = o->overlays; d; d = d->next, t = t->next) {
        int at = g_slist_index(n->drives, d->data);
        GHashTable *nt = at < 0 ? NULL : g_slist_nth_data(n->overlays, at);
        GHashTableIter it;
        gpointer k, v;

        g_hash_table_iter_init(&it, t->data);
        while (nt && g_hash_table_iter_next(&it, &k, &v)) {
            OverlayBlock *b = v;

            if (b->owner == o && g_hash_table_lookup(nt, k) == b) {
                b->owner = n;
                o->charged -= sizeof(*b);
                n->charged += sizeof(*b);
            }
        }
    }
}

static void blkreplay_snapshot_free(void *state)
{
    BlkreplaySnapshot *snap = state;

    snapshot_disown(snap);
    g_slist_free(snap->drives);
    g_slist_free_full(snap->overlays, (GDestroyNotify)g_hash_table_destroy);
    g_free(snap);
}

/*
 * The overlays in a savevm snapshot: per open drive, newest first, a u32
 * count of blocks, then each block's u64 index and its BLKREPLAY_BLOCK
 * bytes (system/replay-bytes.h).
 */
static void blkreplay_serialize(void *opaque, GByteArray *b)
{
    GSList *l;

    for (l = blkreplay_drives; l; l = l->next) {
        BDRVBlkreplayState *s = l->data;
        GHashTableIter it;
        gpointer k, v;

        replay_put_u32(b, g_hash_table_size(s->overlay));
        g_hash_table_iter_init(&it, s->overlay);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            OverlayBlock *blk = v;

            replay_put_u64(b, blk->index);
            g_byte_array_append(b, blk->data, BLKREPLAY_BLOCK);
        }
    }
}

static bool blkreplay_deserialize(void *opaque, const uint8_t *buf,
                                  size_t len, Error **errp)
{
    ReplayBytesReader r = replay_bytes_reader(buf, len);
    GSList *l;

    for (l = blkreplay_drives; l && !r.bad; l = l->next) {
        BDRVBlkreplayState *s = l->data;
        uint32_t n = replay_get_u32(&r), i;

        g_hash_table_remove_all(s->overlay);
        for (i = 0; i < n && !r.bad; i++) {
            uint64_t index = replay_get_u64(&r);
            const uint8_t *data = replay_get_raw(&r, BLKREPLAY_BLOCK);
            OverlayBlock *blk;

            if (!data) {
                break;
            }
            blk = block_new(index);
            memcpy(blk->data, data, BLKREPLAY_BLOCK);
            overlay_put(s->overlay, blk);
        }
    }
    if (!replay_bytes_done(&r)) {
        error_setg(errp, "the blkreplay overlays in the snapshot do not "
                   "match this machine's blkreplay drives");
        return false;
    }
    return true;
}

static const ReplayParticipant blkreplay_participant = {
    .name = "blkreplay",
    .busy = blkreplay_busy,
    .settle = blkreplay_settle,
    .save = blkreplay_snapshot_save,
    .load = blkreplay_snapshot_load,
    .free = blkreplay_snapshot_free,
    .size = blkreplay_snapshot_size,
    .merge = blkreplay_snapshot_merge,
    .serialize = blkreplay_serialize,
    .deserialize = blkreplay_deserialize,
};

/* CRC-32 of the first @bytes of @qiov, for the replay's check of reads. */
static uint32_t qiov_crc(QEMUIOVector *qiov, int64_t bytes)
{
    uLong crc = crc32(0, NULL, 0);
    int i;

    for (i = 0; i < qiov->niov && bytes > 0; i++) {
        size_t n = MIN(qiov->iov[i].iov_len, bytes);

        crc = crc32(crc, qiov->iov[i].iov_base, n);
        bytes -= n;
    }
    return crc;
}

/* ---- block driver ---- */

static int blkreplay_open(BlockDriverState *bs, QDict *options, int flags,
                          Error **errp)
{
    BDRVBlkreplayState *s = bs->opaque;
    int ret;

    ret = bdrv_open_file_child(NULL, options, "image", bs, errp);
    if (ret < 0) {
        return ret;
    }
    s->overlay = overlay_new();
    qemu_co_queue_init(&s->waiting);
    if (blkreplay_active() && !blkreplay_registered) {
        replay_register_participant(&blkreplay_participant, NULL);
        blkreplay_registered = true;
    }
    blkreplay_drives = g_slist_prepend(blkreplay_drives, s);
    bs->supported_write_flags = BDRV_REQ_WRITE_UNCHANGED | BDRV_REQ_FUA;
    bs->supported_zero_flags = BDRV_REQ_WRITE_UNCHANGED | BDRV_REQ_MAY_UNMAP;
    return 0;
}

static void blkreplay_close(BlockDriverState *bs)
{
    BDRVBlkreplayState *s = bs->opaque;

    blkreplay_drives = g_slist_remove(blkreplay_drives, s);
    g_hash_table_destroy(s->overlay);
}

/*
 * In record and replay the image is only read: take no write or resize
 * permission on it, so that nothing (not even a bug here) can change it.
 */
static void GRAPH_RDLOCK
blkreplay_child_perm(BlockDriverState *bs, BdrvChild *c, BdrvChildRole role,
                     BlockReopenQueue *reopen_queue, uint64_t perm,
                     uint64_t shared, uint64_t *nperm, uint64_t *nshared)
{
    bdrv_default_perms(bs, c, role, reopen_queue, perm, shared,
                       nperm, nshared);
    if (blkreplay_active()) {
        *nperm &= ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
    }
}

static int64_t coroutine_fn GRAPH_RDLOCK
blkreplay_co_getlength(BlockDriverState *bs)
{
    return bdrv_co_getlength(bs->file->bs);
}

static int coroutine_fn GRAPH_RDLOCK
blkreplay_read(BlockDriverState *bs, int64_t offset, int64_t bytes,
               QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    uint64_t id;
    int ret;

    if (!blkreplay_active()) {
        return bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);
    }
    id = blkreplay_begin(bs);
    ret = bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);
    if (ret >= 0) {
        overlay_patch_read(bs->opaque, offset, bytes, qiov);
        if (id) {
            replay_block_read_done(id - 1, qiov_crc(qiov, bytes),
                                   bdrv_get_device_or_node_name(bs),
                                   offset, bytes);
        }
    }
    blkreplay_end(bs, id);
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
blkreplay_write(BlockDriverState *bs, int64_t offset, int64_t bytes,
                QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    uint64_t id;
    int ret;

    if (!blkreplay_active()) {
        return bdrv_co_pwritev(bs->file, offset, bytes, qiov, flags);
    }
    id = blkreplay_begin(bs);
    ret = overlay_write(bs, offset, bytes, qiov);
    blkreplay_end(bs, id);
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
blkreplay_write_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       BdrvRequestFlags flags)
{
    uint64_t id;
    int ret;

    if (!blkreplay_active()) {
        return bdrv_co_pwrite_zeroes(bs->file, offset, bytes, flags);
    }
    id = blkreplay_begin(bs);
    ret = overlay_write(bs, offset, bytes, NULL);
    blkreplay_end(bs, id);
    return ret;
}

/*
 * A request that leaves nothing for the guest to read back (a discard: the
 * overlay keeps what was written; a flush: the image is never written).
 * Only its place among the others and its completion are replayed.
 */
static int coroutine_fn blkreplay_ordered_only(BlockDriverState *bs)
{
    blkreplay_end(bs, blkreplay_begin(bs));
    return 0;
}

static int coroutine_fn GRAPH_RDLOCK
blkreplay_discard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    if (!blkreplay_active()) {
        return bdrv_co_pdiscard(bs->file, offset, bytes);
    }
    return blkreplay_ordered_only(bs);
}

static int coroutine_fn GRAPH_RDLOCK blkreplay_flush(BlockDriverState *bs)
{
    if (!blkreplay_active()) {
        return bdrv_co_flush(bs->file->bs);
    }
    return blkreplay_ordered_only(bs);
}

/* A filter over its "image" child: the guest's requests, in replay order. */
static BlockDriver blkreplay_driver = {
    .format_name            = "blkreplay",
    .is_filter              = true,
    .instance_size          = sizeof(BDRVBlkreplayState),
    .bdrv_open              = blkreplay_open,
    .bdrv_close             = blkreplay_close,
    .bdrv_child_perm        = blkreplay_child_perm,
    .bdrv_co_getlength      = blkreplay_co_getlength,
    /* data: reads patched from the overlay, writes kept in it */
    .bdrv_co_preadv         = blkreplay_read,
    .bdrv_co_pwritev        = blkreplay_write,
    .bdrv_co_pwrite_zeroes  = blkreplay_write_zeroes,
    /* ordering only */
    .bdrv_co_pdiscard       = blkreplay_discard,
    .bdrv_co_flush          = blkreplay_flush,
};

/* The driver, and the format name that makes a drive replayable. */
static void blkreplay_register(void)
{
    bdrv_register(&blkreplay_driver);
    replay_register_block_filter(blkreplay_driver.format_name);
}

block_init(blkreplay_register);
