/*
 * qrr: tests for the replay log format and the event encoding
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include <zlib.h>
#include "../../replay/replay-log.h"

static char *tmpdir;

static char *tmp_path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

/* One event of each kind, with awkward values. */
static void make_events(GPtrArray *evs, uint64_t *icount)
{
    static const uint8_t blob[] = { 0, 1, 0x80, 0xff, 0x7f, 42 };
    int k;

    for (k = 0; k < REPLAY_EV__MAX; k++) {
        ReplayEvent *ev = g_new0(ReplayEvent, 1);

        ev->kind = k;
        *icount += k * 1000003ull;
        ev->icount = *icount;
        ev->arg[0] = k == REPLAY_EV_CLOCK ? k % 2 : -(int64_t)k * 77;
        ev->arg[1] = k == REPLAY_EV_CLOCK ? INT64_C(1700000000123456789) + k
                                          : INT64_MAX - k;
        ev->arg[2] = 0;
        if (k == REPLAY_EV_ASYNC_INPUT || k == REPLAY_EV_ASYNC_CHAR_READ ||
            k == REPLAY_EV_ASYNC_NET || k == REPLAY_EV_RANDOM ||
            k == REPLAY_EV_CHAR_READ_ALL || k == REPLAY_EV_AUDIO_IN ||
            k == REPLAY_EV_SYNC) {
            ev->len = sizeof(blob) - (k % 3);
            ev->data = g_memdup2(blob, ev->len);
        }
        g_ptr_array_add(evs, ev);
    }
}

static void free_event(gpointer p)
{
    replay_event_clear(p);
    g_free(p);
}

/* Compare the fields that @kind's shape stores. */
static void assert_same(const ReplayEvent *a, const ReplayEvent *b)
{
    g_assert_cmpint(a->kind, ==, b->kind);
    g_assert_cmpuint(a->icount, ==, b->icount);
    g_assert_cmpuint(a->len, ==, b->len);
    if (a->len) {
        g_assert(!memcmp(a->data, b->data, a->len));
    }
}

static void test_event_roundtrip(void)
{
    g_autoptr(GPtrArray) evs = g_ptr_array_new_with_free_func(free_event);
    g_autoptr(GByteArray) buf = g_byte_array_new();
    ReplayCoder enc, dec;
    uint64_t icount = 5;
    size_t pos = 0;
    guint i;

    make_events(evs, &icount);
    make_events(evs, &icount);
    replay_coder_reset(&enc, 3);
    for (i = 0; i < evs->len; i++) {
        g_assert(replay_event_encode(&enc, buf, evs->pdata[i]));
    }
    replay_coder_reset(&dec, 3);
    for (i = 0; i < evs->len; i++) {
        ReplayEvent out;
        const char *why = NULL;
        int n = replay_event_decode(&dec, buf->data + pos, buf->len - pos,
                                    &out, &why);

        g_assert_cmpint(n, >, 0);
        pos += n;
        assert_same(evs->pdata[i], &out);
        if (out.kind == REPLAY_EV_CLOCK || out.kind == REPLAY_EV_ASYNC_NET ||
            out.kind == REPLAY_EV_CHAR_WRITE) {
            const ReplayEvent *in = evs->pdata[i];

            g_assert_cmpint(out.arg[0], ==, in->arg[0]);
            g_assert_cmpint(out.arg[1], ==, in->arg[1]);
        }
        replay_event_clear(&out);
    }
    g_assert_cmpuint(pos, ==, buf->len);
}

static void test_event_rejects(void)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    ReplayEvent ev = { .kind = REPLAY_EV_INTERRUPT, .icount = 10 };
    ReplayEvent out;
    ReplayCoder c;
    const char *why;
    uint8_t bad_kind[] = { REPLAY_EV__MAX, 0 };
    uint8_t overlong[] = { REPLAY_EV_INTERRUPT, 0x80, 0x80, 0x80, 0x80, 0x80,
                           0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
    uint8_t short_data[] = { REPLAY_EV_RANDOM, 0, 0, 9, 1, 2 };

    /* icount going backwards is refused */
    replay_coder_reset(&c, 100);
    g_assert_false(replay_event_encode(&c, buf, &ev));
    g_assert_cmpuint(buf->len, ==, 0);

    replay_coder_reset(&c, 0);
    g_assert_cmpint(replay_event_decode(&c, bad_kind, 2, &out, &why), <, 0);
    g_assert_cmpstr(why, ==, "unknown event kind");
    g_assert_cmpint(replay_event_decode(&c, overlong, sizeof(overlong), &out,
                                        &why), <, 0);
    g_assert_cmpint(replay_event_decode(&c, short_data, sizeof(short_data),
                                        &out, &why), <, 0);
    g_assert_cmpstr(why, ==, "event data truncated or too long");
}

/* Decode the one event in @buf; returns bytes used or -1, with @why. */
static int decode_one(const uint8_t *buf, size_t len, ReplayEvent *out,
                      const char **why)
{
    ReplayCoder c;
    int n;

    replay_coder_reset(&c, 0);
    *why = NULL;
    n = replay_event_decode(&c, buf, len, out, why);
    if (n < 0) {
        g_assert_nonnull(*why);
    }
    return n;
}

/*
 * Every varint must be canonical (the form put_uleb() writes): a value
 * that fewer bytes hold, or bits above bit 63, is refused wherever a
 * varint is (the icount delta, an argument, a data length).
 */
static void test_event_canonical_varints(void)
{
    static const uint8_t delta_zero_overlong[] = {
        REPLAY_EV_INTERRUPT, 0x80, 0x00 };
    static const uint8_t delta_one_overlong[] = {
        REPLAY_EV_INTERRUPT, 0x81, 0x80, 0x00 };
    static const uint8_t arg_overlong[] = {
        REPLAY_EV_CHECKPOINT, 0x00, 0x82, 0x00 };
    static const uint8_t dlen_overlong[] = {
        REPLAY_EV_RANDOM, 0x00, 0x00, 0x81, 0x00, 0x2a };
    static const uint8_t bit64[] = {
        REPLAY_EV_INTERRUPT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x02 };
    static const uint8_t bits_above_64[] = {
        REPLAY_EV_INTERRUPT, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
        0x80, 0x7e };
    static const uint8_t ten_bytes_zero_last[] = {
        REPLAY_EV_INTERRUPT, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
        0x80, 0x00 };
    static const uint8_t max_delta[] = {
        REPLAY_EV_INTERRUPT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x01 };
    static const uint8_t bit63[] = {
        REPLAY_EV_INTERRUPT, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
        0x80, 0x01 };
    static const uint8_t zero[] = { REPLAY_EV_INTERRUPT, 0x00 };
    static const uint8_t two_bytes[] = { REPLAY_EV_INTERRUPT, 0x80, 0x01 };
    ReplayEvent out;
    const char *why;

    g_assert_cmpint(decode_one(delta_zero_overlong,
                               sizeof(delta_zero_overlong), &out, &why), <, 0);
    g_assert_cmpstr(why, ==, "bad instruction count");
    g_assert_cmpint(decode_one(delta_one_overlong,
                               sizeof(delta_one_overlong), &out, &why), <, 0);
    g_assert_cmpstr(why, ==, "bad instruction count");
    g_assert_cmpint(decode_one(arg_overlong, sizeof(arg_overlong), &out,
                               &why), <, 0);
    g_assert_cmpstr(why, ==, "event argument truncated");
    g_assert_cmpint(decode_one(dlen_overlong, sizeof(dlen_overlong), &out,
                               &why), <, 0);
    g_assert_cmpstr(why, ==, "event data truncated or too long");
    g_assert_cmpint(decode_one(bit64, sizeof(bit64), &out, &why), <, 0);
    g_assert_cmpint(decode_one(bits_above_64, sizeof(bits_above_64), &out,
                               &why), <, 0);
    g_assert_cmpint(decode_one(ten_bytes_zero_last,
                               sizeof(ten_bytes_zero_last), &out, &why), <, 0);

    /* the canonical forms, up to the largest value, are read */
    g_assert_cmpint(decode_one(max_delta, sizeof(max_delta), &out, &why),
                    ==, sizeof(max_delta));
    g_assert_cmpuint(out.icount, ==, UINT64_MAX);
    g_assert_cmpint(decode_one(bit63, sizeof(bit63), &out, &why),
                    ==, sizeof(bit63));
    g_assert_cmpuint(out.icount, ==, 1ull << 63);
    g_assert_cmpint(decode_one(zero, sizeof(zero), &out, &why), ==, 2);
    g_assert_cmpuint(out.icount, ==, 0);
    g_assert_cmpint(decode_one(two_bytes, sizeof(two_bytes), &out, &why),
                    ==, 3);
    g_assert_cmpuint(out.icount, ==, 128);
}

/*
 * Arguments are zigzag-mapped, then unsigned LEB128 (as replay-event.c
 * says), not signed LEB128: -1 is 0x01, 1 is 0x02, 64 is 0x80 0x01.
 */
static void test_event_zigzag_args(void)
{
    static const struct {
        int64_t v;
        uint8_t bytes[10];
        int n;
    } cases[] = {
        { 0, { 0x00 }, 1 },
        { -1, { 0x01 }, 1 },
        { 1, { 0x02 }, 1 },
        { -64, { 0x7f }, 1 },
        { 64, { 0x80, 0x01 }, 2 },
        { INT64_MAX, { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                       0x01 }, 10 },
        { INT64_MIN, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                       0x01 }, 10 },
    };
    int i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autoptr(GByteArray) buf = g_byte_array_new();
        ReplayEvent ev = { .kind = REPLAY_EV_CHECKPOINT,
                           .arg = { cases[i].v } };
        ReplayEvent out;
        ReplayCoder c;
        const char *why;

        replay_coder_reset(&c, 0);
        g_assert_true(replay_event_encode(&c, buf, &ev));
        g_assert_cmpuint(buf->len, ==, 2 + cases[i].n);
        g_assert_cmpmem(buf->data + 2, cases[i].n, cases[i].bytes,
                        cases[i].n);
        g_assert_cmpint(decode_one(buf->data, buf->len, &out, &why),
                        ==, buf->len);
        g_assert_cmpint(out.arg[0], ==, cases[i].v);
    }
}

/* Write @n events (all kinds, cycling) to @path; return them. */
static GPtrArray *write_log(const char *path, int rounds, size_t chunk,
                            bool close_it)
{
    GPtrArray *evs = g_ptr_array_new_with_free_func(free_event);
    ReplayLogWriterOptions o = { .chunk_bytes = chunk, .level = 6 };
    ReplayLogWriter *w;
    uint64_t icount = 0;
    guint i;
    int r;

    for (r = 0; r < rounds; r++) {
        make_events(evs, &icount);
    }
    w = replay_log_create(path, "format=test\nram=1\n", &o, &error_abort);
    for (i = 0; i < evs->len; i++) {
        g_assert(replay_log_append(w, evs->pdata[i]));
    }
    if (close_it) {
        g_assert(replay_log_close(w, &error_abort));
    } else {
        g_assert(replay_log_sync(w, &error_abort));
        /* leak @w on purpose: this is the "killed" recording */
    }
    return evs;
}

static guint read_all(ReplayLogReader *r, GPtrArray *expect)
{
    ReplayEvent ev;
    guint n = 0;

    while (replay_log_next(r, &ev, &error_abort) == 1) {
        g_assert_cmpuint(n, <, expect->len);
        assert_same(expect->pdata[n], &ev);
        replay_event_clear(&ev);
        n++;
    }
    return n;
}

static void test_log_roundtrip(void)
{
    g_autofree char *path = tmp_path("roundtrip.rr");
    g_autoptr(GPtrArray) evs = write_log(path, 200, 512, true);
    ReplayLogReader *r = replay_log_open(path, &error_abort);

    g_assert_cmpstr(replay_log_fingerprint(r), ==, "format=test\nram=1\n");
    g_assert_null(replay_log_truncation(r));
    g_assert_cmpuint(replay_log_chunks(r), >, 10);
    g_assert_cmpuint(replay_log_events(r), ==, evs->len);
    g_assert_cmpuint(replay_log_last_icount(r), ==,
                     ((ReplayEvent *)evs->pdata[evs->len - 1])->icount);
    g_assert_cmpuint(read_all(r, evs), ==, evs->len);
    replay_log_close_reader(r);
}

/* replay_log_tell/seek: back and forth to remembered positions. */
static void test_log_seek(void)
{
    g_autofree char *path = tmp_path("seek.rr");
    g_autoptr(GPtrArray) evs = write_log(path, 50, 512, true);
    ReplayLogReader *r = replay_log_open(path, &error_abort);
    g_autofree ReplayLogPos *pos = g_new(ReplayLogPos, evs->len + 1);
    guint order[] = { 0, evs->len / 2, 1, evs->len - 1, evs->len / 3,
                      evs->len / 3, evs->len, 7, evs->len / 2 + 1 };
    ReplayEvent ev;
    ReplayLogPos bad = { replay_log_chunks(r), 0 };
    Error *err = NULL;
    guint i;

    g_assert_cmpuint(replay_log_chunks(r), >, 3);
    for (i = 0; i < evs->len; i++) {
        replay_log_tell(r, &pos[i]);
        g_assert_cmpint(replay_log_next(r, &ev, &error_abort), ==, 1);
        replay_event_clear(&ev);
    }
    replay_log_tell(r, &pos[evs->len]);
    for (i = 0; i < G_N_ELEMENTS(order); i++) {
        guint n = order[i];

        g_assert(replay_log_seek(r, &pos[n], &error_abort));
        if (n == evs->len) {
            g_assert_cmpint(replay_log_next(r, &ev, &error_abort), ==, 0);
            continue;
        }
        /* the next few events are the ones recorded from there */
        for (; n < evs->len && n < order[i] + 5; n++) {
            g_assert_cmpint(replay_log_next(r, &ev, &error_abort), ==, 1);
            assert_same(evs->pdata[n], &ev);
            replay_event_clear(&ev);
        }
    }
    g_assert_false(replay_log_seek(r, &bad, &err));
    g_assert_nonnull(err);
    error_free(err);
    replay_log_close_reader(r);
}

static void test_log_empty_recording(void)
{
    g_autofree char *path = tmp_path("none.rr");
    g_autoptr(GPtrArray) evs = write_log(path, 0, 0, true);
    ReplayLogReader *r = replay_log_open(path, &error_abort);

    g_assert_cmpuint(replay_log_chunks(r), ==, 1);
    g_assert_cmpuint(read_all(r, evs), ==, 0);
    replay_log_close_reader(r);
}

/* A recording that was never closed still replays what was synced. */
static void test_log_killed_recording(void)
{
    g_autofree char *path = tmp_path("killed.rr");
    g_autoptr(GPtrArray) evs = write_log(path, 20, 300, false);
    ReplayLogReader *r = replay_log_open(path, &error_abort);

    g_assert_nonnull(replay_log_truncation(r));
    g_assert(strstr(replay_log_truncation(r), "without a final chunk"));
    g_assert_cmpuint(read_all(r, evs), ==, evs->len);
    replay_log_close_reader(r);
}

/* The writer thread writes on its own every flush interval. */
static void test_log_periodic_flush(void)
{
    g_autofree char *path = tmp_path("flush.rr");
    ReplayLogWriterOptions o = { .flush_ms = 20, .level = 1 };
    ReplayEvent ev = { .kind = REPLAY_EV_INTERRUPT, .icount = 7 };
    ReplayLogWriter *w = replay_log_create(path, "x=1\n", &o, &error_abort);
    struct stat st0, st1;
    int i;

    g_assert(replay_log_append(w, &ev));
    g_assert_cmpint(stat(path, &st0), ==, 0);
    for (i = 0; i < 200; i++) {
        g_usleep(10 * 1000);
        g_assert_cmpint(stat(path, &st1), ==, 0);
        if (st1.st_size > st0.st_size) {
            break;
        }
    }
    g_assert_cmpint(st1.st_size, >, st0.st_size);
    g_assert(replay_log_close(w, &error_abort));
}

/* ---- bad files ---- */

static GByteArray *file_bytes(const char *path)
{
    gchar *data;
    gsize len;

    g_assert(g_file_get_contents(path, &data, &len, NULL));
    return g_byte_array_new_take((guint8 *)data, len);
}

static void put_bytes(const char *path, const uint8_t *data, size_t len)
{
    g_assert(g_file_set_contents(path, (const char *)data, len, NULL));
}

/* Open @data as a log; return the error message (or NULL). */
static char *open_error(const uint8_t *data, size_t len)
{
    g_autofree char *path = tmp_path("bad.rr");
    Error *err = NULL;
    ReplayLogReader *r;
    char *msg;

    put_bytes(path, data, len);
    r = replay_log_open(path, &err);
    if (r) {
        replay_log_close_reader(r);
        return NULL;
    }
    msg = g_strdup(error_get_pretty(err));
    error_free(err);
    return msg;
}

static GByteArray *good_log(void)
{
    g_autofree char *path = tmp_path("good.rr");
    g_autoptr(GPtrArray) evs = write_log(path, 30, 400, true);

    return file_bytes(path);
}

/* Header size of the logs write_log() makes. */
#define TEST_HDR (24 + 18)

static void expect_error(const uint8_t *data, size_t len, const char *what)
{
    g_autofree char *msg = open_error(data, len);

    if (!msg || !strstr(msg, what)) {
        g_test_message("expected \"%s\", got \"%s\"", what, msg);
        g_test_fail();
    }
}

static void test_bad_empty(void)
{
    expect_error((const uint8_t *)"", 0, "empty file");
}

static void test_bad_magic(void)
{
    static const char text[] = "this is not a replay log at all, really";

    expect_error((const uint8_t *)text, sizeof(text), "bad magic");
}

static void test_bad_version(void)
{
    g_autoptr(GByteArray) b = good_log();

    b->data[8] = 0;             /* version 0 */
    expect_error(b->data, b->len, "log format version 0 is not supported");
}

static void test_bad_header_crc(void)
{
    g_autoptr(GByteArray) b = good_log();

    b->data[21] ^= 0x10;        /* a fingerprint byte */
    expect_error(b->data, b->len, "header checksum mismatch");
}

static void test_bad_header_truncated(void)
{
    g_autoptr(GByteArray) b = good_log();

    expect_error(b->data, 30, "header truncated");
}

static void test_bad_chunk_header(void)
{
    g_autoptr(GByteArray) b = good_log();

    b->data[TEST_HDR + 10] ^= 1;        /* base icount of chunk 0 */
    expect_error(b->data, b->len, "offset 42: chunk 0 header checksum");
}

static void test_bad_payload(void)
{
    g_autoptr(GByteArray) b = good_log();

    b->data[TEST_HDR + 48 + 3] ^= 0x40;
    expect_error(b->data, b->len, "chunk 0 payload checksum mismatch");
}

static void test_bad_trailing(void)
{
    g_autoptr(GByteArray) b = good_log();
    static const uint8_t junk[] = "junk";

    g_byte_array_append(b, junk, sizeof(junk));
    expect_error(b->data, b->len, "unexpected data after the final chunk");
}

/* Found by tests/fuzz: the chunks were looked for inside the header. */
static void test_bad_fingerprint_nul(void)
{
    g_autoptr(GByteArray) b = good_log();

    b->data[24] = 0;            /* "format=test\n" becomes "form\0t=..." */
    stl_le_p(b->data + TEST_HDR - 4, crc32(0, b->data, TEST_HDR - 4));
    expect_error(b->data, b->len, "offset 24: NUL byte in the fingerprint");
}

/*
 * Found by tests/fuzz: a chunk whose last icount is not that of its last
 * event made icounts go backwards at the next chunk.  Here the one, empty,
 * chunk claims icount 5: the log opens, reading it fails.
 */
static void test_bad_last_icount(void)
{
    g_autofree char *path = tmp_path("last.rr");
    g_autoptr(GByteArray) b = NULL;
    ReplayLogReader *r;
    ReplayEvent ev;
    Error *err = NULL;

    g_ptr_array_unref(write_log(path, 0, 0, true));
    b = file_bytes(path);
    g_assert_cmpuint(b->len, ==, TEST_HDR + 48);
    stq_le_p(b->data + TEST_HDR + 16, 5);
    stl_le_p(b->data + TEST_HDR + 44, crc32(0, b->data + TEST_HDR, 44));
    put_bytes(path, b->data, b->len);
    r = replay_log_open(path, &error_abort);
    g_assert_cmpint(replay_log_next(r, &ev, &err), ==, -1);
    g_assert(strstr(error_get_pretty(err), "chunk 0 last icount 5 is not "
                    "the icount of its last event (0)"));
    error_free(err);
    replay_log_close_reader(r);
}

static void test_bad_directory(void)
{
    Error *err = NULL;

    g_assert_null(replay_log_open(tmpdir, &err));
    g_assert(strstr(error_get_pretty(err), "not a regular file"));
    error_free(err);
}

static void test_bad_missing(void)
{
    g_autofree char *path = tmp_path("does-not-exist.rr");
    Error *err = NULL;

    g_assert_null(replay_log_open(path, &err));
    g_assert(strstr(error_get_pretty(err), "does-not-exist.rr"));
    error_free(err);
}

/* Cutting a log anywhere after its header opens as truncated. */
static void test_truncated_everywhere(void)
{
    g_autoptr(GByteArray) b = good_log();
    g_autofree char *path = tmp_path("cut.rr");
    size_t cut;

    for (cut = TEST_HDR; cut < b->len; cut += 7) {
        ReplayLogReader *r;
        ReplayEvent ev;
        Error *err = NULL;

        put_bytes(path, b->data, cut);
        r = replay_log_open(path, &error_abort);
        g_assert_nonnull(replay_log_truncation(r));
        while (replay_log_next(r, &ev, &err) == 1) {
            replay_event_clear(&ev);
        }
        g_assert_null(err);
        replay_log_close_reader(r);
    }
}

/* The offsets of the chunks of the log @b, and how many events each has. */
static GArray *chunk_offsets(GByteArray *b, GArray *nevents)
{
    GArray *offs = g_array_new(false, false, sizeof(uint64_t));
    uint64_t off = TEST_HDR;

    while (off + 48 <= b->len) {
        uint32_t n = ldl_le_p(b->data + off + 24);

        g_array_append_val(offs, off);
        g_array_append_val(nevents, n);
        off += 48 + ldl_le_p(b->data + off + 32);
    }
    g_assert_cmpuint(off, ==, b->len);
    return offs;
}

/* Events in the chunks before chunk @k. */
static uint64_t events_before(GArray *nevents, guint k)
{
    uint64_t n = 0;
    guint i;

    for (i = 0; i < k; i++) {
        n += g_array_index(nevents, uint32_t, i);
    }
    return n;
}

/*
 * Open @data: it must open as a log truncated at a torn tail, and read
 * back exactly @expect events without an error.
 */
static void expect_torn(const uint8_t *data, size_t len, uint64_t expect,
                        size_t where)
{
    g_autofree char *path = tmp_path("torn.rr");
    ReplayLogReader *r;
    ReplayEvent ev;
    uint64_t n = 0;

    put_bytes(path, data, len);
    r = replay_log_open(path, &error_abort);
    if (!replay_log_truncation(r) ||
        !strstr(replay_log_truncation(r), "torn tail")) {
        g_test_message("change at byte %zu: \"%s\"", where,
                       replay_log_truncation(r));
        g_test_fail();
    }
    while (replay_log_next(r, &ev, &error_abort) == 1) {
        replay_event_clear(&ev);
        n++;
    }
    g_assert_cmpuint(n, ==, expect);
    replay_log_close_reader(r);
}

/*
 * A crash that leaves the last chunk's bytes zero or garbled from any
 * offset on: the log opens with its other chunks, and says that it ends
 * at a torn tail.
 */
static void test_torn_tail_everywhere(void)
{
    g_autoptr(GByteArray) b = good_log();
    g_autoptr(GArray) nevents = g_array_new(false, false, sizeof(uint32_t));
    g_autoptr(GArray) offs = chunk_offsets(b, nevents);
    guint last = offs->len - 1;
    uint64_t start = g_array_index(offs, uint64_t, last);
    uint64_t expect = events_before(nevents, last);
    g_autofree uint8_t *copy = g_malloc(b->len);
    size_t pos;

    g_assert_cmpuint(offs->len, >, 3);
    for (pos = start; pos < b->len; pos++) {
        memcpy(copy, b->data, b->len);
        memset(copy + pos, 0, b->len - pos);
        if (memcmp(copy, b->data, b->len)) {
            expect_torn(copy, b->len, expect, pos);
        }
        memcpy(copy, b->data, b->len);
        copy[pos] ^= 0x5a;
        expect_torn(copy, b->len, expect, pos);
    }
}

/* Zeros after a killed recording (its length ahead of its data). */
static void test_torn_zeros_after_killed(void)
{
    g_autofree char *path = tmp_path("killed-zeros.rr");
    g_autoptr(GPtrArray) evs = write_log(path, 20, 300, false);
    g_autoptr(GByteArray) b = file_bytes(path);
    static const uint8_t zeros[4096];

    g_byte_array_append(b, zeros, sizeof(zeros));
    expect_torn(b->data, b->len, evs->len, b->len - sizeof(zeros));
}

/* A bad chunk that a valid one follows is corruption, not a torn tail. */
static void test_corrupt_middle_chunk(void)
{
    g_autoptr(GByteArray) b = good_log();
    g_autoptr(GArray) nevents = g_array_new(false, false, sizeof(uint32_t));
    g_autoptr(GArray) offs = chunk_offsets(b, nevents);
    uint64_t second = g_array_index(offs, uint64_t, 1);
    g_autofree char *want = g_strdup_printf(
        "a valid chunk follows at offset %" PRIu64 ": the log is corrupt",
        second);

    b->data[TEST_HDR + 48 + 3] ^= 0x40;
    expect_error(b->data, b->len, want);
    memset(b->data + TEST_HDR, 0, 48);      /* chunk 0 header zeroed */
    expect_error(b->data, b->len, "bad chunk magic (chunk 0), and a valid "
                 "chunk follows");
}

/*
 * Any single flipped bit is caught: at open, or at the latest on reading,
 * before the last chunk; in the last chunk, as a torn tail.
 */
static void test_bitflips_everywhere(void)
{
    g_autoptr(GByteArray) b = good_log();
    g_autoptr(GArray) nevents = g_array_new(false, false, sizeof(uint32_t));
    g_autoptr(GArray) offs = chunk_offsets(b, nevents);
    uint64_t last = g_array_index(offs, uint64_t, offs->len - 1);
    size_t pos;

    for (pos = 0; pos < last; pos += 3) {
        g_autofree char *msg = NULL;

        b->data[pos] ^= 1 << (pos % 8);
        msg = open_error(b->data, b->len);
        b->data[pos] ^= 1 << (pos % 8);
        if (!msg) {
            g_test_message("flip at byte %zu went unnoticed", pos);
            g_test_fail();
        }
    }
}

/* Bytes after the fingerprint that this version does not define. */
static void test_header_extension(void)
{
    g_autoptr(GByteArray) b = good_log();
    g_autoptr(GByteArray) x = g_byte_array_new();
    static const uint8_t ext[7] = { 1, 2, 3, 4, 5, 6, 7 };
    g_autofree char *path = tmp_path("ext.rr");
    ReplayLogReader *r;

    g_byte_array_append(x, b->data, TEST_HDR - 4);
    g_byte_array_append(x, ext, sizeof(ext));
    stl_le_p(x->data + 12, TEST_HDR + sizeof(ext));
    g_byte_array_set_size(x, x->len + 4);
    stl_le_p(x->data + x->len - 4, crc32(0, x->data, x->len - 4));
    g_byte_array_append(x, b->data + TEST_HDR, b->len - TEST_HDR);
    put_bytes(path, x->data, x->len);
    r = replay_log_open(path, &error_abort);
    g_assert_cmpstr(replay_log_fingerprint(r), ==, "format=test\nram=1\n");
    g_assert_null(replay_log_truncation(r));
    g_assert(replay_log_verify(r, &error_abort));
    replay_log_close_reader(r);

    stl_le_p(x->data + 12, TEST_HDR - 1);   /* shorter than its parts */
    expect_error(x->data, x->len, "offset 12: bad header size 41");
    stl_le_p(x->data + 12, TEST_HDR + (64 << 10) + 1);
    expect_error(x->data, x->len, "bad header size");
}

/* Full verification finds at open what reading would find later. */
static void test_verify(void)
{
    g_autofree char *path = tmp_path("verify.rr");
    g_autoptr(GPtrArray) evs = write_log(path, 10, 300, true);
    g_autoptr(GByteArray) b = NULL;
    ReplayLogReader *r = replay_log_open(path, &error_abort);
    Error *err = NULL;

    g_assert(replay_log_verify(r, &error_abort));
    g_assert_cmpuint(read_all(r, evs), ==, evs->len);   /* from the start */
    replay_log_close_reader(r);

    /* chunk 0 claims one event more than it has: checksums made right */
    b = file_bytes(path);
    stl_le_p(b->data + TEST_HDR + 24, ldl_le_p(b->data + TEST_HDR + 24) + 1);
    stl_le_p(b->data + TEST_HDR + 44, crc32(0, b->data + TEST_HDR, 44));
    put_bytes(path, b->data, b->len);
    r = replay_log_open(path, &error_abort);
    g_assert_false(replay_log_verify(r, &err));
    g_assert(strstr(error_get_pretty(err), "chunk 0"));
    error_free(err);
    replay_log_close_reader(r);
}

/* Write @n small chunks with @o; return the writer's statistics. */
static ReplayLogWriterStats write_chunks(ReplayLogWriterOptions *o, int n)
{
    g_autofree char *path = tmp_path("sync.rr");
    ReplayLogWriter *w = replay_log_create(path, "x=1\n", o, &error_abort);
    ReplayLogWriterStats st;
    int i;

    for (i = 0; i < n; i++) {
        ReplayEvent ev = { .kind = REPLAY_EV_INTERRUPT, .icount = i };

        g_assert(replay_log_append(w, &ev));
        g_assert(replay_log_sync(w, &error_abort));   /* one chunk each */
    }
    replay_log_writer_stats(w, &st);
    g_assert(replay_log_close(w, &error_abort));
    return st;
}

/* The writer syncs the file on the schedule it is given. */
static void test_writer_sync_schedule(void)
{
    ReplayLogWriterOptions every = { .sync_ms = REPLAY_LOG_SYNC_EVERY };
    ReplayLogWriterOptions never = { .sync_ms = REPLAY_LOG_SYNC_NEVER };
    ReplayLogWriterOptions hour = { .sync_ms = 3600 * 1000 };
    ReplayLogWriterStats st;

    st = write_chunks(&every, 12);
    g_assert_cmpuint(st.chunks, ==, 12);
    g_assert_cmpuint(st.syncs, ==, 12);
    st = write_chunks(&never, 12);
    g_assert_cmpuint(st.chunks, ==, 12);
    g_assert_cmpuint(st.syncs, ==, 0);
    st = write_chunks(&hour, 12);
    g_assert_cmpuint(st.syncs, ==, 0);
}

typedef struct SlowDisk {
    ReplayLogWriter *w;
    int chunks;
    bool done;
} SlowDisk;

static gpointer append_chunks(gpointer opaque)
{
    SlowDisk *d = opaque;
    g_autofree uint8_t *blob = g_malloc0(600);
    int i;

    for (i = 0; i < d->chunks; i++) {
        ReplayEvent ev = { .kind = REPLAY_EV_RANDOM, .icount = i,
                           .data = blob, .len = 600 };

        blob[0] = i;            /* no two alike: compression can't win */
        g_assert(replay_log_append(d->w, &ev));
    }
    qatomic_set(&d->done, true);
    return NULL;
}

static gpointer drain(gpointer opaque)
{
    int fd = GPOINTER_TO_INT(opaque);
    char buf[4096];

    while (read(fd, buf, sizeof(buf)) > 0) {
        /* the disk catches up */
    }
    return NULL;
}

/*
 * A disk slower than the recording (a pipe nobody reads) holds the
 * appends back once max_queued chunks wait, instead of queueing more.
 */
static void test_writer_queue_bound(void)
{
    g_autofree char *fifo = tmp_path("slow.fifo");
    ReplayLogWriterOptions o = { .chunk_bytes = 512, .level = -1,
                                 .max_queued = 4,
                                 .sync_ms = REPLAY_LOG_SYNC_NEVER };
    SlowDisk d = { .chunks = 400 };
    ReplayLogWriterStats st;
    GThread *t, *reader;
    int rfd;

    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    rfd = open(fifo, O_RDONLY | O_NONBLOCK);
    g_assert_cmpint(rfd, >=, 0);
    d.w = replay_log_create(fifo, "x=1\n", &o, &error_abort);
    t = g_thread_new("append", append_chunks, &d);
    g_usleep(300 * 1000);
    replay_log_writer_stats(d.w, &st);
    g_assert_false(qatomic_read(&d.done));
    g_assert_cmpuint(st.max_queued, <=, 4);
    g_assert_cmpuint(st.waits, >, 0);

    g_assert_cmpint(fcntl(rfd, F_SETFL, 0), ==, 0);
    reader = g_thread_new("drain", drain, GINT_TO_POINTER(rfd));
    g_thread_join(t);
    replay_log_writer_stats(d.w, &st);
    g_assert_cmpuint(st.max_queued, <=, 4);
    g_assert(replay_log_close(d.w, &error_abort));
    g_thread_join(reader);
    close(rfd);
    unlink(fifo);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    tmpdir = g_dir_make_tmp("qrr-log-XXXXXX", NULL);
    g_assert(tmpdir);

    g_test_add_func("/replay/event/roundtrip", test_event_roundtrip);
    g_test_add_func("/replay/event/rejects", test_event_rejects);
    g_test_add_func("/replay/event/canonical-varints",
                    test_event_canonical_varints);
    g_test_add_func("/replay/event/zigzag-args", test_event_zigzag_args);
    g_test_add_func("/replay/log/roundtrip", test_log_roundtrip);
    g_test_add_func("/replay/log/seek", test_log_seek);
    g_test_add_func("/replay/log/empty-recording", test_log_empty_recording);
    g_test_add_func("/replay/log/killed-recording",
                    test_log_killed_recording);
    g_test_add_func("/replay/log/periodic-flush", test_log_periodic_flush);
    g_test_add_func("/replay/bad/empty", test_bad_empty);
    g_test_add_func("/replay/bad/magic", test_bad_magic);
    g_test_add_func("/replay/bad/version", test_bad_version);
    g_test_add_func("/replay/bad/header-crc", test_bad_header_crc);
    g_test_add_func("/replay/bad/header-truncated",
                    test_bad_header_truncated);
    g_test_add_func("/replay/bad/chunk-header", test_bad_chunk_header);
    g_test_add_func("/replay/bad/payload", test_bad_payload);
    g_test_add_func("/replay/bad/trailing", test_bad_trailing);
    g_test_add_func("/replay/bad/fingerprint-nul", test_bad_fingerprint_nul);
    g_test_add_func("/replay/bad/last-icount", test_bad_last_icount);
    g_test_add_func("/replay/bad/directory", test_bad_directory);
    g_test_add_func("/replay/bad/missing", test_bad_missing);
    g_test_add_func("/replay/bad/truncated-everywhere",
                    test_truncated_everywhere);
    g_test_add_func("/replay/torn/tail-everywhere",
                    test_torn_tail_everywhere);
    g_test_add_func("/replay/torn/zeros-after-killed",
                    test_torn_zeros_after_killed);
    g_test_add_func("/replay/bad/corrupt-middle-chunk",
                    test_corrupt_middle_chunk);
    g_test_add_func("/replay/log/header-extension", test_header_extension);
    g_test_add_func("/replay/log/verify", test_verify);
    g_test_add_func("/replay/log/writer-sync-schedule",
                    test_writer_sync_schedule);
    g_test_add_func("/replay/log/writer-queue-bound",
                    test_writer_queue_bound);
    g_test_add_func("/replay/bad/bitflips-everywhere",
                    test_bitflips_everywhere);

    ret = g_test_run();
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
    if (system(cmd)) {
        /* leave it */
    }
    g_free(tmpdir);
    return ret;
}
