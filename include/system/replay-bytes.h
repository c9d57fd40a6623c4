/*
 * qrr: the state of the replay engine and of its participants as bytes
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * One helper set writes and reads every piece of record/replay state that
 * a savevm snapshot carries: the engine's (replay/replay-state.c) and the
 * participants' (see ReplayParticipant in system/replay.h).  All values
 * are little-endian.
 *
 * A reader never reads past its buffer: the first read that would sets
 * @bad, and every later read returns zeroes.  So a decoder reads all its
 * fields, then checks @bad (and that nothing is left over) once:
 *
 *     n = replay_get_u32(r);
 *     data = replay_get_raw(r, n);     // right: NULL if n is too large
 *     if (r->bad) {
 *         return false;
 *     }
 *
 *     n = replay_get_u32(r);
 *     memcpy(dst, r->p, n);            // wrong: n came from the snapshot
 */

#ifndef SYSTEM_REPLAY_BYTES_H
#define SYSTEM_REPLAY_BYTES_H

#include "qemu/bswap.h"

typedef struct ReplayBytesReader {
    const uint8_t *p;
    size_t left;
    bool bad;                   /* a read went past the end */
} ReplayBytesReader;

static inline void replay_put_u8(GByteArray *b, uint8_t v)
{
    g_byte_array_append(b, &v, 1);
}

static inline void replay_put_u32(GByteArray *b, uint32_t v)
{
    uint8_t x[4];

    stl_le_p(x, v);
    g_byte_array_append(b, x, 4);
}

static inline void replay_put_u64(GByteArray *b, uint64_t v)
{
    uint8_t x[8];

    stq_le_p(x, v);
    g_byte_array_append(b, x, 8);
}

/* A u32 length, then @len bytes. */
static inline void replay_put_blob(GByteArray *b, const void *data,
                                   uint32_t len)
{
    replay_put_u32(b, len);
    g_byte_array_append(b, data, len);
}

static inline ReplayBytesReader replay_bytes_reader(const uint8_t *p,
                                                    size_t len)
{
    return (ReplayBytesReader) { .p = p, .left = len };
}

/* The next @n bytes, or NULL (and @bad set) if fewer are left. */
static inline const uint8_t *replay_get_raw(ReplayBytesReader *r, size_t n)
{
    const uint8_t *p = r->p;

    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

static inline uint8_t replay_get_u8(ReplayBytesReader *r)
{
    const uint8_t *p = replay_get_raw(r, 1);

    return p ? *p : 0;
}

static inline uint32_t replay_get_u32(ReplayBytesReader *r)
{
    const uint8_t *p = replay_get_raw(r, 4);

    return p ? ldl_le_p(p) : 0;
}

static inline uint64_t replay_get_u64(ReplayBytesReader *r)
{
    const uint8_t *p = replay_get_raw(r, 8);

    return p ? ldq_le_p(p) : 0;
}

/* A blob written by replay_put_blob(); NULL with *@len 0 if malformed. */
static inline const uint8_t *replay_get_blob(ReplayBytesReader *r,
                                             uint32_t *len)
{
    const uint8_t *p;

    *len = replay_get_u32(r);
    p = replay_get_raw(r, *len);
    if (!p) {
        *len = 0;
    }
    return p;
}

/* True when everything was read and nothing went past the end. */
static inline bool replay_bytes_done(const ReplayBytesReader *r)
{
    return !r->bad && !r->left;
}

#endif
