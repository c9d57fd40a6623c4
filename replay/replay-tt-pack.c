/*
 * qrr: time travel: one guest page, packed
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The pages of time travel's snapshots are packed with zstd at level 1,
 * one page at a time, so that a restore unpacks only the pages it writes
 * and thinning merges packed pages as they are.  A page that would not
 * shrink by an eighth is kept as it is: unpacking it would cost more than
 * it saves.
 *
 * Why zstd: a seek far back restores some 15,000 to 25,000 pages, and the
 * restore is mostly unpacking.  On the Linux test guest's RAM 10 G
 * instructions into its load (x86_64, 22,773 non-zero pages), zlib's raw
 * deflate at level 1 and zstd at level 1 both pack 2.9x; zstd packs a
 * page in 11 us instead of 42 and unpacks it in 4.5 us instead of 10.3
 * (one core of the 2-core bench host).  zstd's negative levels unpack
 * little faster (2.8 us) and pack 2.6x or less: fewer snapshots fit in
 * the budget, and the gaps a seek replays grow.
 *
 * Each packer and unpacker keeps one zstd context for all its pages.  A
 * frame carries neither the page's size nor a checksum: the caller knows
 * the size, and the pages never leave QEMU's memory.
 *
 * Without zstd (QEMU configured without it) no page packs: the snapshots
 * keep their pages as they are, 2.9 times the room of packed ones on
 * the Linux test guest (not measured in a build without zstd).
 */

#include "qemu/osdep.h"
#ifdef CONFIG_ZSTD
#include <zstd.h>
#endif
#define TT_PURE_ONLY
#include "replay-tt.h"

#ifdef CONFIG_ZSTD

struct TTPacker {
    ZSTD_CCtx *pack;            /* one of the two */
    ZSTD_DCtx *unpack;
};

TTPacker *tt_packer_new(size_t page_size, bool inflating)
{
    TTPacker *pk = g_new0(TTPacker, 1);

    if (inflating) {
        pk->unpack = ZSTD_createDCtx();
        if (!pk->unpack) {
            goto free_packer;
        }
        return pk;
    }
    pk->pack = ZSTD_createCCtx();
    if (!pk->pack) {
        goto free_packer;
    }
    if (ZSTD_isError(ZSTD_CCtx_setParameter(pk->pack,
                                            ZSTD_c_compressionLevel, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(pk->pack,
                                            ZSTD_c_contentSizeFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(pk->pack,
                                            ZSTD_c_checksumFlag, 0))) {
        goto free_context;
    }
    return pk;

free_context:
    ZSTD_freeCCtx(pk->pack);
free_packer:
    g_free(pk);
    return NULL;
}

void tt_packer_free(TTPacker *pk)
{
    if (!pk) {
        return;
    }
    ZSTD_freeCCtx(pk->pack);
    ZSTD_freeDCtx(pk->unpack);
    g_free(pk);
}

size_t tt_pack_page(TTPacker *pk, const uint8_t *page, size_t size,
                    uint8_t **out)
{
    size_t room = size - size / 8;
    uint8_t *buf = g_malloc(room);
    size_t len;

    *out = NULL;
    len = ZSTD_compress2(pk->pack, buf, room, page, size);
    if (ZSTD_isError(len)) {
        g_free(buf);            /* it did not fit: keep the page */
        return 0;
    }
    *out = g_realloc(buf, len);
    return len;
}

bool tt_unpack_page(TTPacker *pk, const uint8_t *packed, size_t len,
                    uint8_t *page, size_t size)
{
    size_t got = ZSTD_decompressDCtx(pk->unpack, page, size, packed, len);

    return !ZSTD_isError(got) && got == size;
}

#else /* !CONFIG_ZSTD */

struct TTPacker {
    size_t page_size;
};

TTPacker *tt_packer_new(size_t page_size, bool inflating)
{
    TTPacker *pk = g_new0(TTPacker, 1);

    pk->page_size = page_size;
    return pk;
}

void tt_packer_free(TTPacker *pk)
{
    g_free(pk);
}

size_t tt_pack_page(TTPacker *pk, const uint8_t *page, size_t size,
                    uint8_t **out)
{
    *out = NULL;
    return 0;
}

bool tt_unpack_page(TTPacker *pk, const uint8_t *packed, size_t len,
                    uint8_t *page, size_t size)
{
    return false;
}

#endif /* CONFIG_ZSTD */
