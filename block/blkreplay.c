/*
 * qrr: blkreplay, the block filter that makes disk completions replayable
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
 * Each request gets an id when the guest submits it (the order of
 * submission is deterministic).  The request then runs on the image as
 * usual, but its completion does not reach the guest when the host finishes
 * it: the coroutine waits until the replay engine delivers a "block" event
 * with its id, at the instruction count recorded for it.  In replay the
 * data is read again from the same image, so it is the recorded data as
 * long as the image (or its overlay) is the one recorded with.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/module.h"
#include "block/block-io.h"
#include "block/block_int.h"
#include "system/replay.h"

typedef struct BlkreplayWait {
    Coroutine *co;
    QEMUBH *bh;
} BlkreplayWait;

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

static int blkreplay_open(BlockDriverState *bs, QDict *options, int flags,
                          Error **errp)
{
    BdrvChild *image;

    image = bdrv_open_child(NULL, options, "image", bs, &child_of_bds,
                            BDRV_CHILD_FILTERED | BDRV_CHILD_PRIMARY,
                            false, errp);
    if (!image) {
        return -EINVAL;
    }
    bs->supported_write_flags = BDRV_REQ_WRITE_UNCHANGED | BDRV_REQ_FUA;
    bs->supported_zero_flags = BDRV_REQ_WRITE_UNCHANGED | BDRV_REQ_MAY_UNMAP;
    return 0;
}

static int64_t coroutine_fn GRAPH_RDLOCK
blkreplay_co_getlength(BlockDriverState *bs)
{
    return bdrv_co_getlength(bs->file->bs);
}

static int coroutine_fn GRAPH_RDLOCK
blkreplay_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                    QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    uint64_t id = blkreplay_next_id();
    int ret = bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);

    blkreplay_complete(bs, id);
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
blkreplay_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                     QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    uint64_t id = blkreplay_next_id();
    int ret = bdrv_co_pwritev(bs->file, offset, bytes, qiov, flags);

    blkreplay_complete(bs, id);
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
blkreplay_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                           int64_t bytes, BdrvRequestFlags flags)
{
    uint64_t id = blkreplay_next_id();
    int ret = bdrv_co_pwrite_zeroes(bs->file, offset, bytes, flags);

    blkreplay_complete(bs, id);
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
blkreplay_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    uint64_t id = blkreplay_next_id();
    int ret = bdrv_co_pdiscard(bs->file, offset, bytes);

    blkreplay_complete(bs, id);
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK blkreplay_co_flush(BlockDriverState *bs)
{
    uint64_t id = blkreplay_next_id();
    int ret = bdrv_co_flush(bs->file->bs);

    blkreplay_complete(bs, id);
    return ret;
}

static BlockDriver bdrv_blkreplay = {
    .format_name            = "blkreplay",
    .instance_size          = 0,
    .is_filter              = true,

    .bdrv_open              = blkreplay_open,
    .bdrv_child_perm        = bdrv_default_perms,
    .bdrv_co_getlength      = blkreplay_co_getlength,

    .bdrv_co_preadv         = blkreplay_co_preadv,
    .bdrv_co_pwritev        = blkreplay_co_pwritev,
    .bdrv_co_pwrite_zeroes  = blkreplay_co_pwrite_zeroes,
    .bdrv_co_pdiscard       = blkreplay_co_pdiscard,
    .bdrv_co_flush          = blkreplay_co_flush,

};

static void bdrv_blkreplay_init(void)
{
    bdrv_register(&bdrv_blkreplay);
}

block_init(bdrv_blkreplay_init);
