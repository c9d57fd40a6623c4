/*
 * qrr: the data that disk reads return, checked against the recording
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A replay reads its disks' images as the recording did (the disk filter
 * keeps the writes in memory), so the data each read returns depends on
 * the image alone.  If the image changed since the recording, the guest
 * reads other data and diverges somewhere later, far from the cause.  So
 * the disk filter tells the engine a CRC-32 of the data each read
 * returned (replay_block_read_done()), and the recording logs it as a
 * "block-data" value event right after the read's completion, at the same
 * instruction count.  The replay compares its own when it delivers that
 * completion, and stops at the first read that differs, naming the drive,
 * the offset and the length.
 *
 * A read's checksum waits here, by request id, from the read until its
 * completion is logged or delivered.  Completions that time travel or a
 * loadvm abandon take their checksums with them (replay_block_data_clear()).
 */

#include "qemu/osdep.h"
#include "system/replay.h"
#include "replay-core.h"

typedef struct BlockRead {
    uint32_t crc;
    char *drive;
    int64_t offset;
    int64_t bytes;
} BlockRead;

static QemuMutex lock;
static GHashTable *reads;       /* request id -> BlockRead */

static void block_read_free(gpointer p)
{
    BlockRead *r = p;

    g_free(r->drive);
    g_free(r);
}

void replay_block_data_init(void)
{
    qemu_mutex_init(&lock);
    reads = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                  block_read_free);
}

void replay_block_read_done(uint64_t id, uint32_t crc, const char *drive,
                            int64_t offset, int64_t bytes)
{
    BlockRead *r;

    if (replay_mode == REPLAY_MODE_NONE || !reads) {
        return;
    }
    r = g_new(BlockRead, 1);
    *r = (BlockRead) { crc, g_strdup(drive), offset, bytes };
    qemu_mutex_lock(&lock);
    g_hash_table_replace(reads, g_memdup2(&id, sizeof(id)), r);
    qemu_mutex_unlock(&lock);
}

/* The checksum of request @id's read, removed from the table; or NULL. */
static BlockRead *take(uint64_t id)
{
    BlockRead *r = NULL;
    gpointer key;

    qemu_mutex_lock(&lock);
    if (g_hash_table_steal_extended(reads, &id, &key, (gpointer *)&r)) {
        g_free(key);
    }
    qemu_mutex_unlock(&lock);
    return r;
}

void replay_block_data_record(uint64_t id)
{
    BlockRead *r = take(id);

    if (r) {
        replay_record(REPLAY_EV_BLOCK_DATA, replay_icount(), id, r->crc,
                      NULL, 0);
        block_read_free(r);
    }
}

void replay_block_data_check(uint64_t id)
{
    g_autofree BlockRead *r = take(id);
    g_autofree char *drive = r ? r->drive : NULL;
    ReplayEvent *ev;

    if (!r) {
        return;                 /* a write, flush or discard */
    }
    ev = replay_value_take(REPLAY_CH_BLOCK_DATA, replay_icount());
    if (!ev) {
        return;                 /* a log from before reads were checked */
    }
    if ((uint64_t)ev->arg[0] != id || (uint32_t)ev->arg[1] != r->crc) {
        replay_fatal("record/replay: drive '%s' returned other data than in "
                     "the recording for the read of %" PRId64 " bytes at "
                     "offset %" PRId64 " (CRC %08x, recorded %08" PRIx64
                     " for request %" PRId64 "; this is request %" PRIu64
                     ", completed at icount %" PRIu64 "): the disk image "
                     "changed since the recording", drive, r->bytes,
                     r->offset, r->crc, (uint64_t)(uint32_t)ev->arg[1],
                     ev->arg[0], id, ev->icount);
    }
    replay_value_free(ev);
}

void replay_block_data_clear(void)
{
    if (reads) {
        qemu_mutex_lock(&lock);
        g_hash_table_remove_all(reads);
        qemu_mutex_unlock(&lock);
    }
}
