/*
 * qrr: the replay log file
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * FILE FORMAT
 *
 * All integers are little-endian.  CRC is CRC-32 as computed by zlib's
 * crc32() (the ISO-HDLC polynomial, initial value 0).
 *
 * A log is a header followed by one or more chunks.
 *
 * Header (H = 24 + F + E bytes):
 *
 *    0   8  magic: the bytes "QRRLOG\r\n"
 *    8   4  format version, REPLAY_LOG_VERSION (1)
 *   12   4  header size H
 *   16   4  fingerprint size F (at most 1 MiB)
 *   20   F  fingerprint: UTF-8 "key=value" lines, each ending in "\n",
 *           describing what a replay must match (see replay-fingerprint.c);
 *           no NUL bytes
 *  20+F  E  extension (E at most 64 KiB): bytes that a reader of this
 *           version skips.  This writer writes none (E = 0).  Only what a
 *           reader may ignore and still replay exactly goes there; a
 *           change that a reader must understand bumps the version.
 *   H-4  4  CRC of bytes [0, H - 4)
 *
 * Chunk (48 + C bytes):
 *
 *    0   4  magic: the bytes "QRCK"
 *    4   4  sequence number: 0 for the first chunk, then +1
 *    8   8  base icount: the first event's icount is coded relative to it;
 *           equal to the previous chunk's last icount (0 for chunk 0)
 *   16   8  last icount: icount of the chunk's last event (the base when
 *           the chunk has no events)
 *   24   4  number of events
 *   28   4  raw payload size U (at most 16 MiB)
 *   32   4  stored payload size C (at most 16 MiB)
 *   36   1  codec: 0 = stored (C == U), 1 = zlib stream
 *   37   1  flags: bit 0 = final chunk; other bits zero
 *   38   2  zero
 *   40   4  CRC of the C stored payload bytes
 *   44   4  CRC of bytes [0, 44) of this chunk
 *   48   C  payload: U bytes once decoded, holding the events one after
 *           the other, each as specified in replay-event.c
 *
 * VALIDITY
 *
 * A log is complete when its chunks are all valid and the last one has the
 * final flag, with nothing after it.  A chunk is valid when both CRCs
 * match, its magic, sequence number and base icount are as above, its
 * sizes are within bounds, its payload decodes to exactly U bytes holding
 * exactly the stated number of events, and the last of them has the
 * chunk's last icount (so that, with the base chaining, icounts never
 * decrease from chunk to chunk).
 *
 * The first chunk that is not valid ends the log, if no valid chunk
 * header (its magic and header CRC right, a sequence number above the
 * invalid chunk's) follows it anywhere in the file: that is a torn tail,
 * what a crash or a power loss leaves when the file's length reached the
 * disk before its data (zeros or stale bytes where the chunk should be).
 * The log is then truncated, and so is a log whose last chunk is cut short
 * by the end of the file, or that ends after a valid non-final chunk (a
 * killed recording): its valid prefix can be replayed, and the reader
 * says where and why it ends (replay_log_truncation()).  An invalid chunk
 * that a valid one follows makes the log corrupt: it is rejected, naming
 * the offset, as is a chunk whose checksums match but whose header or
 * payload is inconsistent.
 *
 * WRITING
 *
 * The writer encodes events into the open chunk under a lock; a chunk is
 * sealed when it reaches its size target or has been open for the flush
 * interval.  A thread compresses, checksums and writes sealed chunks in
 * order, so the vCPU never waits for zlib or the disk.  At most
 * max_queued sealed chunks wait for it (64 by default, 16 MiB of events
 * at the default chunk size): beyond that, appending waits until one is
 * written, so a disk slower than the recording slows the recording down
 * instead of filling the host's memory.
 *
 * DURABILITY
 *
 * A recording that is killed loses at most the last flush interval (the
 * chunks are in the file, if not yet on the disk).  Against a crash of
 * the host or a power loss, the writer thread syncs the file
 * (fdatasync()) after a chunk once sync_ms have passed since the last
 * sync (1 s by default; -icount rrfsync=MS, "every" after every chunk,
 * "off" only at the end): such a crash loses at most the flush interval
 * plus sync_ms, and whatever was torn is the end of the log (VALIDITY).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include <zlib.h>
#include "replay-log.h"

#define LOG_MAGIC "QRRLOG\r\n"
#define CHUNK_MAGIC "QRCK"
#define HDR_FIXED 20
#define CHUNK_HDR 48
#define MAX_FINGERPRINT (1u << 20)
#define MAX_PAYLOAD (16u << 20)
#define FLAG_FINAL 1

#define DEFAULT_CHUNK_BYTES (256u << 10)
#define DEFAULT_FLUSH_MS 500
#define MAX_EXTENSION (64u << 10)

enum { CODEC_STORED, CODEC_ZLIB };

/* One chunk as described by its header. */
typedef struct ChunkInfo {
    uint64_t offset;
    uint32_t seq;
    uint64_t base;
    uint64_t last;
    uint32_t nevents;
    uint32_t raw_size;
    uint32_t stored_size;
    uint8_t codec;
    uint8_t flags;
    uint32_t payload_crc;
} ChunkInfo;

/* A sealed chunk on its way to the writer thread. */
typedef struct SealedChunk {
    GByteArray *raw;
    ChunkInfo info;
} SealedChunk;

struct ReplayLogWriter {
    int fd;
    char *path;
    ReplayLogWriterOptions opt;
    QemuThread thread;

    QemuMutex lock;             /* protects everything below */
    QemuCond cond;
    GByteArray *raw;            /* payload of the open chunk */
    ReplayCoder coder;
    ChunkInfo open;
    int64_t open_since_ms;
    uint64_t last_icount;
    uint32_t next_seq;
    GQueue sealed;
    uint32_t written;           /* chunks on disk */
    int64_t synced_ms;          /* when the file was last synced */
    ReplayLogWriterStats stats;
    bool closing;
    uint64_t offset;
    char *error;
};

struct ReplayLogReader {
    int fd;
    char *path;
    uint32_t version;
    char *fingerprint;
    uint32_t header_size;
    GArray *chunks;             /* ChunkInfo of the valid chunks */
    char *truncation;
    uint64_t events;

    uint32_t cur;               /* next chunk to load */
    uint8_t *raw;
    size_t raw_len;
    size_t pos;
    uint32_t left;              /* events left in the loaded chunk */
    ReplayCoder coder;
};

/* ---- shared helpers ---- */

static void chunk_header_pack(const ChunkInfo *ci, uint8_t *h)
{
    memcpy(h, CHUNK_MAGIC, 4);
    stl_le_p(h + 4, ci->seq);
    stq_le_p(h + 8, ci->base);
    stq_le_p(h + 16, ci->last);
    stl_le_p(h + 24, ci->nevents);
    stl_le_p(h + 28, ci->raw_size);
    stl_le_p(h + 32, ci->stored_size);
    h[36] = ci->codec;
    h[37] = ci->flags;
    h[38] = h[39] = 0;
    stl_le_p(h + 40, ci->payload_crc);
    stl_le_p(h + 44, crc32(0, h, 44));
}

static bool write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = ENOSPC;
            }
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

static bool read_full_at(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = pread(fd, p, len, off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= n;
        off += n;
    }
    return true;
}

/* ---- writer ---- */

static void writer_fail(ReplayLogWriter *w, const char *what)
{
    if (!w->error) {
        w->error = g_strdup_printf("%s: %s at offset %" PRIu64 ": %s",
                                   w->path, what, w->offset,
                                   strerror(errno));
    }
}

/* Compress @sc and write it; called by the writer thread without lock. */
static bool writer_emit(ReplayLogWriter *w, SealedChunk *sc)
{
    ChunkInfo *ci = &sc->info;
    uint8_t hdr[CHUNK_HDR];
    g_autofree uint8_t *zbuf = NULL;
    const uint8_t *payload = sc->raw->data;
    uLongf zlen;

    ci->raw_size = sc->raw->len;
    ci->stored_size = sc->raw->len;
    ci->codec = CODEC_STORED;
    if (w->opt.level >= 0 && sc->raw->len > 0) {
        zlen = compressBound(sc->raw->len);
        zbuf = g_malloc(zlen);
        if (compress2(zbuf, &zlen, sc->raw->data, sc->raw->len,
                      w->opt.level) == Z_OK && zlen < sc->raw->len) {
            payload = zbuf;
            ci->stored_size = zlen;
            ci->codec = CODEC_ZLIB;
        }
    }
    ci->payload_crc = crc32(0, payload, ci->stored_size);
    chunk_header_pack(ci, hdr);
    if (!write_full(w->fd, hdr, sizeof(hdr)) ||
        !write_full(w->fd, payload, ci->stored_size)) {
        return false;
    }
    return true;
}

static void writer_seal(ReplayLogWriter *w, bool final);

/*
 * After a chunk was written: sync the file if the schedule says so.
 * Writer thread, without the lock.  Returns -1 on error, else the syncs
 * made (0 or 1).
 */
static int writer_sync_due(ReplayLogWriter *w)
{
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    if (w->opt.sync_ms == REPLAY_LOG_SYNC_NEVER ||
        (w->opt.sync_ms != REPLAY_LOG_SYNC_EVERY &&
         now - w->synced_ms < w->opt.sync_ms)) {
        return 0;
    }
    if (qemu_fdatasync(w->fd) < 0) {
        /* a pipe or a character device: nothing to sync */
        return errno == EINVAL ? 0 : -1;
    }
    w->synced_ms = now;
    return 1;
}

static void *writer_thread(void *opaque)
{
    ReplayLogWriter *w = opaque;
    SealedChunk *sc;
    int synced = 0;
    bool ok;

    qemu_mutex_lock(&w->lock);
    for (;;) {
        sc = g_queue_pop_head(&w->sealed);
        if (!sc) {
            if (w->closing) {
                break;
            }
            qemu_cond_timedwait(&w->cond, &w->lock, w->opt.flush_ms);
            if (w->raw->len &&
                qemu_clock_get_ms(QEMU_CLOCK_REALTIME) - w->open_since_ms >=
                w->opt.flush_ms) {
                /* seal what is open so that a killed run keeps it */
                writer_seal(w, false);
            }
            continue;
        }
        qemu_mutex_unlock(&w->lock);
        ok = !w->error && writer_emit(w, sc);
        if (ok) {
            synced = writer_sync_due(w);
        }
        qemu_mutex_lock(&w->lock);
        if (ok) {
            w->offset += CHUNK_HDR + sc->info.stored_size;
            w->stats.chunks++;
        } else {
            writer_fail(w, "writing the log failed");
        }
        if (ok && synced < 0) {
            writer_fail(w, "syncing the log failed");
        }
        w->stats.syncs += ok && synced > 0;
        w->written++;
        g_byte_array_unref(sc->raw);
        g_free(sc);
        qemu_cond_broadcast(&w->cond);
    }
    qemu_mutex_unlock(&w->lock);
    return NULL;
}

/* Seal the open chunk (even when empty if @final).  Lock held. */
static void writer_seal(ReplayLogWriter *w, bool final)
{
    SealedChunk *sc;

    if (!w->raw->len && !final) {
        return;
    }
    sc = g_new0(SealedChunk, 1);
    sc->raw = w->raw;
    sc->info = w->open;
    sc->info.flags = final ? FLAG_FINAL : 0;
    w->raw = g_byte_array_sized_new(w->opt.chunk_bytes + 64);
    w->open.seq = ++w->next_seq;
    w->open.base = w->open.last;
    w->open.nevents = 0;
    replay_coder_reset(&w->coder, w->open.base);
    g_queue_push_tail(&w->sealed, sc);
    w->stats.max_queued = MAX(w->stats.max_queued,
                              g_queue_get_length(&w->sealed));
    qemu_cond_broadcast(&w->cond);
}

ReplayLogWriter *replay_log_create(const char *path, const char *fingerprint,
                                   const ReplayLogWriterOptions *opts,
                                   Error **errp)
{
    ReplayLogWriter *w;
    size_t fplen = strlen(fingerprint);
    g_autofree uint8_t *hdr = NULL;
    size_t hlen = HDR_FIXED + fplen + 4;
    int fd;

    if (fplen > MAX_FINGERPRINT) {
        error_setg(errp, "%s: fingerprint too large", path);
        return NULL;
    }
    fd = qemu_create(path, O_WRONLY | O_TRUNC | O_BINARY, 0644, errp);
    if (fd < 0) {
        return NULL;
    }
    hdr = g_malloc(hlen);
    memcpy(hdr, LOG_MAGIC, 8);
    stl_le_p(hdr + 8, REPLAY_LOG_VERSION);
    stl_le_p(hdr + 12, hlen);
    stl_le_p(hdr + 16, fplen);
    memcpy(hdr + HDR_FIXED, fingerprint, fplen);
    stl_le_p(hdr + HDR_FIXED + fplen, crc32(0, hdr, HDR_FIXED + fplen));
    if (!write_full(fd, hdr, hlen)) {
        error_setg_errno(errp, errno, "%s: cannot write the log header",
                         path);
        close(fd);
        return NULL;
    }

    w = g_new0(ReplayLogWriter, 1);
    w->fd = fd;
    w->path = g_strdup(path);
    if (opts) {
        w->opt = *opts;
    } else {
        w->opt.level = 6;
    }
    if (!w->opt.chunk_bytes) {
        w->opt.chunk_bytes = DEFAULT_CHUNK_BYTES;
    }
    w->opt.chunk_bytes = MIN(w->opt.chunk_bytes, MAX_PAYLOAD / 2);
    if (!w->opt.flush_ms) {
        w->opt.flush_ms = DEFAULT_FLUSH_MS;
    }
    if (!w->opt.sync_ms) {
        w->opt.sync_ms = REPLAY_LOG_DEFAULT_SYNC_MS;
    }
    if (!w->opt.max_queued) {
        w->opt.max_queued = REPLAY_LOG_DEFAULT_MAX_QUEUED;
    }
    w->synced_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    w->offset = hlen;
    w->raw = g_byte_array_sized_new(w->opt.chunk_bytes + 64);
    replay_coder_reset(&w->coder, 0);
    g_queue_init(&w->sealed);
    qemu_mutex_init(&w->lock);
    qemu_cond_init(&w->cond);
    qemu_thread_create(&w->thread, "qrr-log-writer", writer_thread, w,
                       QEMU_THREAD_JOINABLE);
    return w;
}

bool replay_log_append(ReplayLogWriter *w, const ReplayEvent *ev)
{
    bool ok;

    qemu_mutex_lock(&w->lock);
    /* bounded memory: a disk slower than the recording slows it down */
    if (g_queue_get_length(&w->sealed) >= w->opt.max_queued) {
        w->stats.waits++;
        while (g_queue_get_length(&w->sealed) >= w->opt.max_queued &&
               !w->closing) {
            qemu_cond_wait(&w->cond, &w->lock);
        }
    }
    if (!w->raw->len) {
        w->open_since_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    }
    /* once the writer thread failed, later events can't reach the file */
    ok = !w->closing && !w->error &&
         replay_event_encode(&w->coder, w->raw, ev);
    if (ok) {
        w->open.nevents++;
        w->open.last = ev->icount;
        if (w->raw->len >= w->opt.chunk_bytes) {
            writer_seal(w, false);
        }
    }
    qemu_mutex_unlock(&w->lock);
    return ok;
}

bool replay_log_sync(ReplayLogWriter *w, Error **errp)
{
    bool ok;

    qemu_mutex_lock(&w->lock);
    writer_seal(w, false);
    while (w->written != w->next_seq) {
        qemu_cond_wait(&w->cond, &w->lock);
    }
    ok = !w->error;
    if (!ok) {
        error_setg(errp, "%s", w->error);
    }
    qemu_mutex_unlock(&w->lock);
    return ok;
}

void replay_log_writer_stats(ReplayLogWriter *w, ReplayLogWriterStats *st)
{
    qemu_mutex_lock(&w->lock);
    *st = w->stats;
    qemu_mutex_unlock(&w->lock);
}

const char *replay_log_writer_error(ReplayLogWriter *w)
{
    const char *e;

    qemu_mutex_lock(&w->lock);
    e = w->error;
    qemu_mutex_unlock(&w->lock);
    return e;
}

uint64_t replay_log_bytes_written(ReplayLogWriter *w)
{
    uint64_t n;

    qemu_mutex_lock(&w->lock);
    n = w->offset;
    qemu_mutex_unlock(&w->lock);
    return n;
}

bool replay_log_close(ReplayLogWriter *w, Error **errp)
{
    bool ok;

    qemu_mutex_lock(&w->lock);
    writer_seal(w, true);
    w->closing = true;
    qemu_cond_broadcast(&w->cond);
    qemu_mutex_unlock(&w->lock);
    qemu_thread_join(&w->thread);

    ok = !w->error;
    if (ok && qemu_fdatasync(w->fd) < 0 && errno != EINVAL) {
        writer_fail(w, "syncing the log failed");
        ok = false;
    }
    if (close(w->fd) < 0 && ok) {
        writer_fail(w, "closing the log failed");
        ok = false;
    }
    if (!ok) {
        error_setg(errp, "%s", w->error);
    }
    g_byte_array_unref(w->raw);
    qemu_cond_destroy(&w->cond);
    qemu_mutex_destroy(&w->lock);
    g_free(w->error);
    g_free(w->path);
    g_free(w);
    return ok;
}

/* ---- reader ---- */

static bool reader_header(ReplayLogReader *r, uint64_t fsize, Error **errp)
{
    uint8_t fixed[HDR_FIXED];
    g_autofree uint8_t *hdr = NULL;
    uint32_t hlen, fplen;
    uint8_t *nul;

    if (fsize == 0) {
        error_setg(errp, "%s: empty file, not a qrr replay log", r->path);
        return false;
    }
    if (fsize < 8 || !read_full_at(r->fd, fixed, 8, 0) ||
        memcmp(fixed, LOG_MAGIC, 8)) {
        error_setg(errp, "%s: offset 0: not a qrr replay log (bad magic)",
                   r->path);
        return false;
    }
    if (fsize < HDR_FIXED + 4 || !read_full_at(r->fd, fixed, HDR_FIXED, 0)) {
        error_setg(errp, "%s: header truncated (file is %" PRIu64 " bytes)",
                   r->path, fsize);
        return false;
    }
    r->version = ldl_le_p(fixed + 8);
    if (r->version != REPLAY_LOG_VERSION) {
        error_setg(errp, "%s: offset 8: log format version %u is not "
                   "supported (this build reads version %u)", r->path,
                   r->version, REPLAY_LOG_VERSION);
        return false;
    }
    hlen = ldl_le_p(fixed + 12);
    fplen = ldl_le_p(fixed + 16);
    if (fplen > MAX_FINGERPRINT || hlen < HDR_FIXED + fplen + 4 ||
        hlen - (HDR_FIXED + fplen + 4) > MAX_EXTENSION) {
        error_setg(errp, "%s: offset 12: bad header size %u (fingerprint "
                   "%u bytes)", r->path, hlen, fplen);
        return false;
    }
    if (fsize < hlen) {
        error_setg(errp, "%s: header truncated (file is %" PRIu64
                   " bytes, header %u)", r->path, fsize, hlen);
        return false;
    }
    hdr = g_malloc(hlen);
    if (!read_full_at(r->fd, hdr, hlen, 0)) {
        error_setg_errno(errp, errno, "%s: cannot read the header", r->path);
        return false;
    }
    if (crc32(0, hdr, hlen - 4) != (uint32_t)ldl_le_p(hdr + hlen - 4)) {
        error_setg(errp, "%s: offset %u: header checksum mismatch", r->path,
                   hlen - 4);
        return false;
    }
    nul = memchr(hdr + HDR_FIXED, 0, fplen);
    if (nul) {
        /* as a C string it would end early, and the chunks with it */
        error_setg(errp, "%s: offset %td: NUL byte in the fingerprint",
                   r->path, nul - hdr);
        return false;
    }
    r->fingerprint = g_strndup((char *)hdr + HDR_FIXED, fplen);
    r->header_size = hlen;
    return true;
}

/*
 * Parse the chunk header @h at @off.  *@torn tells a header that is not
 * one (bad magic or checksum: maybe a torn write) from one whose
 * checksum matches but whose fields are wrong (corruption).
 */
static bool chunk_header_parse(ReplayLogReader *r, const uint8_t *h,
                               uint64_t off, ChunkInfo *ci, bool *torn,
                               Error **errp)
{
    uint32_t expect_seq = r->chunks->len;
    uint64_t expect_base = expect_seq ?
        g_array_index(r->chunks, ChunkInfo, expect_seq - 1).last : 0;

    *torn = true;
    if (memcmp(h, CHUNK_MAGIC, 4)) {
        error_setg(errp, "%s: offset %" PRIu64 ": bad chunk magic (chunk %u)",
                   r->path, off, expect_seq);
        return false;
    }
    if (crc32(0, h, 44) != (uint32_t)ldl_le_p(h + 44)) {
        error_setg(errp, "%s: offset %" PRIu64 ": chunk %u header checksum "
                   "mismatch", r->path, off, expect_seq);
        return false;
    }
    *torn = false;
    ci->offset = off;
    ci->seq = ldl_le_p(h + 4);
    ci->base = ldq_le_p(h + 8);
    ci->last = ldq_le_p(h + 16);
    ci->nevents = ldl_le_p(h + 24);
    ci->raw_size = ldl_le_p(h + 28);
    ci->stored_size = ldl_le_p(h + 32);
    ci->codec = h[36];
    ci->flags = h[37];
    ci->payload_crc = ldl_le_p(h + 40);
    if (ci->seq != expect_seq || ci->base != expect_base ||
        ci->last < ci->base || ci->raw_size > MAX_PAYLOAD ||
        ci->stored_size > MAX_PAYLOAD || ci->codec > CODEC_ZLIB ||
        (ci->flags & ~FLAG_FINAL) || h[38] || h[39] ||
        (ci->codec == CODEC_STORED && ci->stored_size != ci->raw_size)) {
        error_setg(errp, "%s: offset %" PRIu64 ": chunk %u header is "
                   "inconsistent (sequence %u, base icount %" PRIu64 ")",
                   r->path, off, expect_seq, ci->seq, ci->base);
        return false;
    }
    return true;
}

/* A chunk header at @h: its magic and checksum right, after chunk @seq. */
static bool is_chunk_header(const uint8_t *h, uint32_t seq)
{
    return !memcmp(h, CHUNK_MAGIC, 4) &&
           crc32(0, h, 44) == (uint32_t)ldl_le_p(h + 44) &&
           ldl_le_p(h + 4) > seq;
}

/*
 * The offset of the first chunk header after chunk @seq found at or after
 * @off, or 0 if there is none.  Reads the rest of the file once, a window
 * at a time.
 */
static uint64_t find_chunk_after(ReplayLogReader *r, uint64_t off,
                                 uint64_t fsize, uint32_t seq)
{
    const size_t window = 1 << 20;
    g_autofree uint8_t *buf = g_malloc(window);

    while (fsize - off >= CHUNK_HDR) {
        size_t n = MIN(window, fsize - off), i;

        if (!read_full_at(r->fd, buf, n, off)) {
            return 0;
        }
        for (i = 0; i + CHUNK_HDR <= n; i++) {
            if (buf[i] == CHUNK_MAGIC[0] && is_chunk_header(buf + i, seq)) {
                return off + i;
            }
        }
        if (n < window) {
            break;
        }
        off += n - (CHUNK_HDR - 1);     /* a header may straddle windows */
    }
    return 0;
}

/*
 * The chunk at @off is not valid (@err says why).  If no valid chunk
 * header follows it, it is a torn tail: the log ends there.  Else the log
 * is corrupt.
 */
static bool reader_invalid_chunk(ReplayLogReader *r, uint64_t off,
                                 uint64_t fsize, Error *err, Error **errp)
{
    uint64_t next = find_chunk_after(r, off + 1, fsize, r->chunks->len);

    if (next) {
        error_setg(errp, "%s, and a valid chunk follows at offset %" PRIu64
                   ": the log is corrupt", error_get_pretty(err), next);
        error_free(err);
        return false;
    }
    r->truncation = g_strdup_printf("%s; nothing valid follows: a torn "
                                    "tail, the log ends there",
                                    error_get_pretty(err));
    error_free(err);
    return true;
}

/* Read chunk @ci's payload at @off into *@buf; false with @err if bad. */
static bool reader_payload(ReplayLogReader *r, const ChunkInfo *ci,
                           uint64_t off, GByteArray *buf, bool *io_error,
                           Error **err)
{
    g_byte_array_set_size(buf, ci->stored_size);
    *io_error = !read_full_at(r->fd, buf->data, ci->stored_size,
                              off + CHUNK_HDR);
    if (*io_error) {
        error_setg_errno(err, errno, "%s: offset %" PRIu64 ": read error",
                         r->path, off + CHUNK_HDR);
        return false;
    }
    if (crc32(0, buf->data, ci->stored_size) != ci->payload_crc) {
        error_setg(err, "%s: offset %" PRIu64 ": chunk %u payload checksum "
                   "mismatch", r->path, off + CHUNK_HDR, ci->seq);
        return false;
    }
    return true;
}

/* Set r->truncation when the file ends at or inside the chunk at @off. */
static bool reader_cut_short(ReplayLogReader *r, uint64_t off,
                             uint64_t fsize, const ChunkInfo *ci)
{
    if (off == fsize) {
        r->truncation = g_strdup_printf(
            "%s: the log ends at offset %" PRIu64 " after chunk %u "
            "without a final chunk (the recording did not finish)",
            r->path, off, r->chunks->len ? r->chunks->len - 1 : 0);
    } else if (fsize - off < CHUNK_HDR) {
        r->truncation = g_strdup_printf(
            "%s: offset %" PRIu64 ": chunk %u header truncated",
            r->path, off, r->chunks->len);
    } else if (ci && fsize - off - CHUNK_HDR < ci->stored_size) {
        r->truncation = g_strdup_printf(
            "%s: offset %" PRIu64 ": chunk %u payload truncated "
            "(%" PRIu64 " of %u bytes present)", r->path, off, ci->seq,
            fsize - off - CHUNK_HDR, ci->stored_size);
    }
    return r->truncation != NULL;
}

/* Walk and check all chunks, filling r->chunks. */
static bool reader_scan(ReplayLogReader *r, uint64_t off, uint64_t fsize,
                        Error **errp)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    uint8_t h[CHUNK_HDR];
    Error *err = NULL;
    bool torn, io_error;
    ChunkInfo ci;

    for (;;) {
        if (reader_cut_short(r, off, fsize, NULL)) {
            return true;
        }
        if (!read_full_at(r->fd, h, CHUNK_HDR, off)) {
            error_setg_errno(errp, errno, "%s: offset %" PRIu64 ": read "
                             "error", r->path, off);
            return false;
        }
        if (!chunk_header_parse(r, h, off, &ci, &torn, &err)) {
            if (!torn) {
                error_propagate(errp, err);
                return false;
            }
            return reader_invalid_chunk(r, off, fsize, err, errp);
        }
        if (reader_cut_short(r, off, fsize, &ci)) {
            return true;
        }
        if (!reader_payload(r, &ci, off, buf, &io_error, &err)) {
            if (io_error) {
                error_propagate(errp, err);
                return false;
            }
            return reader_invalid_chunk(r, off, fsize, err, errp);
        }
        g_array_append_val(r->chunks, ci);
        r->events += ci.nevents;
        off += CHUNK_HDR + ci.stored_size;
        if (ci.flags & FLAG_FINAL) {
            break;
        }
    }
    if (off != fsize) {
        error_setg(errp, "%s: offset %" PRIu64 ": unexpected data after the "
                   "final chunk", r->path, off);
        return false;
    }
    return true;
}

ReplayLogReader *replay_log_open(const char *path, Error **errp)
{
    ReplayLogReader *r;
    struct stat st;
    int fd;

    fd = qemu_open(path, O_RDONLY | O_BINARY, errp);
    if (fd < 0) {
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        error_setg(errp, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    r = g_new0(ReplayLogReader, 1);
    r->fd = fd;
    r->path = g_strdup(path);
    r->chunks = g_array_new(false, false, sizeof(ChunkInfo));
    if (!reader_header(r, st.st_size, errp) ||
        !reader_scan(r, r->header_size, st.st_size, errp)) {
        replay_log_close_reader(r);
        return NULL;
    }
    return r;
}

const char *replay_log_fingerprint(ReplayLogReader *r)
{
    return r->fingerprint;
}

uint32_t replay_log_version(ReplayLogReader *r)
{
    return r->version;
}

const char *replay_log_truncation(ReplayLogReader *r)
{
    return r->truncation;
}

uint32_t replay_log_chunks(ReplayLogReader *r)
{
    return r->chunks->len;
}

uint64_t replay_log_events(ReplayLogReader *r)
{
    return r->events;
}

uint64_t replay_log_last_icount(ReplayLogReader *r)
{
    return r->chunks->len ?
        g_array_index(r->chunks, ChunkInfo, r->chunks->len - 1).last : 0;
}

/* Load chunk r->cur into r->raw. */
static bool reader_load(ReplayLogReader *r, Error **errp)
{
    ChunkInfo *ci = &g_array_index(r->chunks, ChunkInfo, r->cur);
    g_autofree uint8_t *stored = g_malloc(MAX(ci->stored_size, 1));
    uLongf rawlen = ci->raw_size;

    if (!read_full_at(r->fd, stored, ci->stored_size,
                      ci->offset + CHUNK_HDR) ||
        crc32(0, stored, ci->stored_size) != ci->payload_crc) {
        error_setg(errp, "%s: offset %" PRIu64 ": chunk %u changed or "
                   "unreadable since the log was opened", r->path,
                   ci->offset, ci->seq);
        return false;
    }
    g_free(r->raw);
    if (ci->codec == CODEC_STORED) {
        r->raw = g_steal_pointer(&stored);
    } else {
        r->raw = g_malloc(MAX(ci->raw_size, 1));
        if (uncompress(r->raw, &rawlen, stored, ci->stored_size) != Z_OK ||
            rawlen != ci->raw_size) {
            error_setg(errp, "%s: offset %" PRIu64 ": chunk %u does not "
                       "decompress to %u bytes", r->path, ci->offset,
                       ci->seq, ci->raw_size);
            return false;
        }
    }
    r->raw_len = ci->raw_size;
    r->pos = 0;
    r->left = ci->nevents;
    replay_coder_reset(&r->coder, ci->base);
    r->cur++;
    return true;
}

int replay_log_next(ReplayLogReader *r, ReplayEvent *ev, Error **errp)
{
    const ChunkInfo *ci;
    const char *why;
    int n;

    while (!r->left) {
        /* check the chunk just read to its end (r->cur counts loaded ones) */
        ci = r->cur ? &g_array_index(r->chunks, ChunkInfo, r->cur - 1) : NULL;
        if (ci && r->pos != r->raw_len) {
            error_setg(errp, "%s: offset %" PRIu64 ": chunk %u has bytes "
                       "after its last event", r->path, ci->offset, ci->seq);
            return -1;
        }
        if (ci && r->coder.icount != ci->last) {
            error_setg(errp, "%s: offset %" PRIu64 ": chunk %u last icount "
                       "%" PRIu64 " is not the icount of its last event "
                       "(%" PRIu64 ")", r->path, ci->offset, ci->seq,
                       ci->last, r->coder.icount);
            return -1;
        }
        if (r->cur == r->chunks->len) {
            return 0;
        }
        if (!reader_load(r, errp)) {
            return -1;
        }
    }
    n = replay_event_decode(&r->coder, r->raw + r->pos, r->raw_len - r->pos,
                            ev, &why);
    if (n < 0) {
        ci = &g_array_index(r->chunks, ChunkInfo, r->cur - 1);
        error_setg(errp, "%s: offset %" PRIu64 ": chunk %u, payload byte "
                   "%zu: %s", r->path, ci->offset, ci->seq, r->pos, why);
        return -1;
    }
    r->pos += n;
    r->left--;
    return 1;
}

void replay_log_tell(ReplayLogReader *r, ReplayLogPos *pos)
{
    const ChunkInfo *ci;

    if (!r->raw || !r->cur) {
        pos->chunk = 0;
        pos->event = 0;
        return;
    }
    ci = &g_array_index(r->chunks, ChunkInfo, r->cur - 1);
    pos->chunk = r->cur - 1;
    pos->event = ci->nevents - r->left;
}

bool replay_log_seek(ReplayLogReader *r, const ReplayLogPos *pos,
                     Error **errp)
{
    ReplayLogPos now;
    ReplayEvent ev;
    uint32_t skip;

    if (pos->chunk >= r->chunks->len ||
        pos->event > g_array_index(r->chunks, ChunkInfo, pos->chunk).nevents) {
        error_setg(errp, "%s: no event %u in chunk %u", r->path, pos->event,
                   pos->chunk);
        return false;
    }
    replay_log_tell(r, &now);
    if (!r->raw || now.chunk != pos->chunk || now.event > pos->event) {
        /* (re)load the chunk and decode from its start */
        r->cur = pos->chunk;
        if (!reader_load(r, errp)) {
            return false;
        }
        now.event = 0;
    }
    for (skip = pos->event - now.event; skip; skip--) {
        int n;

        memset(&ev, 0, sizeof(ev));
        n = replay_log_next(r, &ev, errp);
        if (n < 0) {
            return false;
        }
        if (n == 0) {
            error_setg(errp, "%s: chunk %u ends before event %u", r->path,
                       pos->chunk, pos->event);
            return false;
        }
        replay_event_clear(&ev);
    }
    return true;
}

void replay_log_rewind(ReplayLogReader *r)
{
    r->cur = 0;
    r->left = 0;
    r->pos = 0;
    r->raw_len = 0;
    g_clear_pointer(&r->raw, g_free);
}

bool replay_log_verify(ReplayLogReader *r, Error **errp)
{
    ReplayEvent ev;
    int n;

    replay_log_rewind(r);
    do {
        memset(&ev, 0, sizeof(ev));
        n = replay_log_next(r, &ev, errp);
        replay_event_clear(&ev);
    } while (n > 0);
    replay_log_rewind(r);
    return n == 0;
}

void replay_log_close_reader(ReplayLogReader *r)
{
    if (!r) {
        return;
    }
    close(r->fd);
    g_array_free(r->chunks, true);
    g_free(r->fingerprint);
    g_free(r->truncation);
    g_free(r->raw);
    g_free(r->path);
    g_free(r);
}
