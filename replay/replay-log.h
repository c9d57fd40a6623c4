/*
 * qrr: the replay log file (see replay-log.c for the format)
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef REPLAY_LOG_H
#define REPLAY_LOG_H

#include "replay-event.h"

#define REPLAY_LOG_VERSION 1

typedef struct ReplayLogWriter ReplayLogWriter;
typedef struct ReplayLogReader ReplayLogReader;

/* Tunables of the writer; zero fields take the defaults. */
typedef struct ReplayLogWriterOptions {
    size_t chunk_bytes;         /* seal a chunk at this raw size */
    unsigned flush_ms;          /* seal and write at least this often */
    int level;                  /* zlib level; -1 stores uncompressed */
    /*
     * Sync the file (fdatasync) after writing a chunk once this many ms
     * have passed since the last sync: 0 takes the default,
     * REPLAY_LOG_SYNC_EVERY syncs after every chunk, REPLAY_LOG_SYNC_NEVER
     * only at close.
     */
    int sync_ms;
    /* sealed chunks that may wait for the writer thread (0: default) */
    unsigned max_queued;
} ReplayLogWriterOptions;

#define REPLAY_LOG_SYNC_EVERY (-1)
#define REPLAY_LOG_SYNC_NEVER (-2)
#define REPLAY_LOG_DEFAULT_SYNC_MS 1000
#define REPLAY_LOG_DEFAULT_MAX_QUEUED 64

/* What the writer has done so far, for tests and statistics. */
typedef struct ReplayLogWriterStats {
    uint32_t chunks;            /* chunks written */
    uint32_t syncs;             /* fdatasync() calls that succeeded */
    uint32_t max_queued;        /* most sealed chunks ever waiting */
    uint32_t waits;             /* appends that waited for the queue */
} ReplayLogWriterStats;

void replay_log_writer_stats(ReplayLogWriter *w, ReplayLogWriterStats *st);

/*
 * Create @path and write the header with @fingerprint (text).  Events are
 * compressed and written by a thread of the writer's own.
 */
ReplayLogWriter *replay_log_create(const char *path, const char *fingerprint,
                                   const ReplayLogWriterOptions *opts,
                                   Error **errp);

/*
 * Append one event.  Thread-safe.  Returns false if the event cannot be
 * encoded or the writer already failed (see replay_log_writer_error()).
 * When max_queued sealed chunks wait for the writer thread (the disk is
 * slower than the recording), it waits for one to be written first.
 */
bool replay_log_append(ReplayLogWriter *w, const ReplayEvent *ev);

/* Hand what is buffered to the writer thread and wait until it is on disk. */
bool replay_log_sync(ReplayLogWriter *w, Error **errp);

/* First write error seen by the writer thread, or NULL. */
const char *replay_log_writer_error(ReplayLogWriter *w);

uint64_t replay_log_bytes_written(ReplayLogWriter *w);

/*
 * Write the remaining events and the final chunk, close the file and free
 * @w.  Returns false if anything failed on the way.
 */
bool replay_log_close(ReplayLogWriter *w, Error **errp);

/*
 * Open @path, check the header and every chunk's checksums.  A corrupt log
 * is an error naming the offset and what is wrong.  A log whose valid
 * chunks stop before the final one (a recording that was killed, a torn
 * tail) opens; see replay_log_truncation().
 */
ReplayLogReader *replay_log_open(const char *path, Error **errp);

/*
 * Decode every event of every valid chunk now, instead of chunk by chunk
 * as the replay goes: an event that does not decode, a wrong count of
 * events or bytes after the last one is an error at once.  Leaves the
 * reader at the start.
 */
bool replay_log_verify(ReplayLogReader *r, Error **errp);

const char *replay_log_fingerprint(ReplayLogReader *r);
uint32_t replay_log_version(ReplayLogReader *r);

/*
 * NULL for a complete log; otherwise a sentence saying where and why the
 * valid part ends.
 */
const char *replay_log_truncation(ReplayLogReader *r);

/* Number of valid chunks and events, last icount of the valid part. */
uint32_t replay_log_chunks(ReplayLogReader *r);
uint64_t replay_log_events(ReplayLogReader *r);
uint64_t replay_log_last_icount(ReplayLogReader *r);

/*
 * Next event in log order: 1 with @ev filled, 0 at the end of the valid
 * part, -1 with @errp set when a chunk cannot be read back.
 */
int replay_log_next(ReplayLogReader *r, ReplayEvent *ev, Error **errp);

/*
 * A reader position: the next event to be returned is event @event of
 * chunk @chunk.  replay_log_seek() goes back (or forward) to a position
 * that replay_log_tell() returned, re-decoding that chunk.
 */
typedef struct ReplayLogPos {
    uint32_t chunk;
    uint32_t event;
} ReplayLogPos;

void replay_log_tell(ReplayLogReader *r, ReplayLogPos *pos);
bool replay_log_seek(ReplayLogReader *r, const ReplayLogPos *pos,
                     Error **errp);

/* Back to before the first event, as replay_log_open() leaves a reader. */
void replay_log_rewind(ReplayLogReader *r);

void replay_log_close_reader(ReplayLogReader *r);

#endif
