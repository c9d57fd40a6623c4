/*
 * qrr: tests for the packing of time travel's pages
 * (replay/replay-tt-pack.c)
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#define TT_PURE_ONLY
#include "../../replay/replay-tt.h"

#define PAGE 4096

/* Text-like content: words from a small set, as in a kernel's data. */
static void fill_text(uint8_t *p, size_t n, unsigned seed)
{
    static const char *const words[] = {
        "task_struct ", "0000 ", "ffff8880 ", "init ", "sync ", "\n",
    };
    GRand *r = g_rand_new_with_seed(seed);
    size_t i = 0;

    while (i < n) {
        const char *w = words[g_rand_int_range(r, 0, ARRAY_SIZE(words))];
        size_t l = MIN(strlen(w), n - i);

        memcpy(p + i, w, l);
        i += l;
    }
    g_rand_free(r);
}

#ifdef CONFIG_ZSTD

static void fill_random(uint8_t *p, size_t n, unsigned seed)
{
    GRand *r = g_rand_new_with_seed(seed);
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] = g_rand_int(r);
    }
    g_rand_free(r);
}

/* A page that shrinks comes back byte for byte, with the same contexts. */
static void test_round_trip(void)
{
    TTPacker *pk = tt_packer_new(PAGE, false);
    TTPacker *up = tt_packer_new(PAGE, true);
    uint8_t page[PAGE], back[PAGE];
    unsigned seed;

    for (seed = 1; seed <= 50; seed++) {
        g_autofree uint8_t *packed = NULL;
        size_t len;

        fill_text(page, PAGE, seed);
        len = tt_pack_page(pk, page, PAGE, &packed);
        g_assert_nonnull(packed);
        g_assert_cmpuint(len, >, 0);
        g_assert_cmpuint(len, <=, PAGE - PAGE / 8);
        memset(back, 0xa5, PAGE);
        g_assert_true(tt_unpack_page(up, packed, len, back, PAGE));
        g_assert_cmpmem(back, PAGE, page, PAGE);
    }
    tt_packer_free(pk);
    tt_packer_free(up);
}

/* Random bytes do not shrink by an eighth: the page stays as it is. */
static void test_incompressible(void)
{
    TTPacker *pk = tt_packer_new(PAGE, false);
    uint8_t page[PAGE];
    uint8_t *packed = (uint8_t *)page;

    fill_random(page, PAGE, 7);
    g_assert_cmpuint(tt_pack_page(pk, page, PAGE, &packed), ==, 0);
    g_assert_null(packed);
    /* half random, half repeated: shrinks, but not to half */
    fill_text(page + PAGE / 2, PAGE / 2, 3);
    g_assert_cmpuint(tt_pack_page(pk, page, PAGE, &packed), >, PAGE / 2);
    g_free(packed);
    tt_packer_free(pk);
}

/* Bytes that are not a whole packed page are refused, never overrun. */
static void test_bad_input(void)
{
    TTPacker *pk = tt_packer_new(PAGE, false);
    TTPacker *up = tt_packer_new(PAGE, true);
    uint8_t page[PAGE], back[PAGE + 16];
    g_autofree uint8_t *packed = NULL;
    size_t len;

    fill_text(page, PAGE, 11);
    len = tt_pack_page(pk, page, PAGE, &packed);
    g_assert_cmpuint(len, >, 8);
    /* truncated */
    g_assert_false(tt_unpack_page(up, packed, len - 4, back, PAGE));
    /* into a smaller page: the frame holds more than fits */
    memset(back, 0x5a, sizeof(back));
    g_assert_false(tt_unpack_page(up, packed, len, back, PAGE / 2));
    g_assert_cmpuint(back[PAGE / 2], ==, 0x5a);
    /* garbage */
    fill_random(back, 64, 5);
    g_assert_false(tt_unpack_page(up, back, 64, page, PAGE));
    /* and the context is still good afterwards */
    g_assert_true(tt_unpack_page(up, packed, len, back, PAGE));
    tt_packer_free(pk);
    tt_packer_free(up);
}

/* A 64 KiB page (AArch64 hosts' and some guests' size) packs the same. */
static void test_large_page(void)
{
    size_t big = 64 * 1024;
    TTPacker *pk = tt_packer_new(big, false);
    TTPacker *up = tt_packer_new(big, true);
    g_autofree uint8_t *page = g_malloc(big), *back = g_malloc(big);
    g_autofree uint8_t *packed = NULL;
    size_t len;

    fill_text(page, big, 9);
    len = tt_pack_page(pk, page, big, &packed);
    g_assert_cmpuint(len, >, 0);
    g_assert_true(tt_unpack_page(up, packed, len, back, big));
    g_assert_cmpmem(back, big, page, big);
    tt_packer_free(pk);
    tt_packer_free(up);
}

#else /* !CONFIG_ZSTD */

/* Without zstd nothing packs, and nothing is taken for a packed page. */
static void test_without_zstd(void)
{
    TTPacker *pk = tt_packer_new(PAGE, false);
    TTPacker *up = tt_packer_new(PAGE, true);
    uint8_t page[PAGE], back[PAGE];
    uint8_t *packed = page;

    fill_text(page, PAGE, 1);
    g_assert_cmpuint(tt_pack_page(pk, page, PAGE, &packed), ==, 0);
    g_assert_null(packed);
    g_assert_false(tt_unpack_page(up, page, 64, back, PAGE));
    tt_packer_free(pk);
    tt_packer_free(up);
}

#endif /* CONFIG_ZSTD */

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#ifdef CONFIG_ZSTD
    g_test_add_func("/replay/tt-pack/round-trip", test_round_trip);
    g_test_add_func("/replay/tt-pack/incompressible", test_incompressible);
    g_test_add_func("/replay/tt-pack/bad-input", test_bad_input);
    g_test_add_func("/replay/tt-pack/large-page", test_large_page);
#else
    g_test_add_func("/replay/tt-pack/without-zstd", test_without_zstd);
#endif
    return g_test_run();
}
