/*
 * qrr: make a seed corpus for fuzz-replay-log from recorded logs
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 *   replay-log-seeds OUTDIR LOG...
 *
 * A real recording is a few large zlib chunks: too big for a fuzzer to
 * mutate efficiently, and compressed, so that a mutation of its events
 * rarely decodes.  For each LOG this reads the first events back with the
 * reader and writes them again with the writer, as small logs of small
 * chunks, stored and compressed, with the recording's own fingerprint and
 * with a short one, plus what a killed recording leaves: the same logs cut
 * at the header, inside a chunk header, inside a payload and after a
 * non-final chunk.  The events are the recording's, unchanged.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "../../replay/replay-log.h"

#define SHORT_FINGERPRINT "format=qrr-fingerprint-1\nsync=0\n"

typedef struct Variant {
    guint events;
    size_t chunk_bytes;
    int level;
    bool short_fp;
} Variant;

static const Variant variants[] = {
    { 0, 128, -1, true },
    { 12, 64, -1, true },
    { 40, 128, -1, true },
    { 40, 128, 6, true },
    { 150, 512, -1, false },
    { 400, 4096, 6, false },
};

static void write_file(const char *path, const void *buf, size_t len)
{
    g_autoptr(GError) gerr = NULL;

    if (!g_file_set_contents(path, buf, len, &gerr)) {
        fprintf(stderr, "%s\n", gerr->message);
        exit(1);
    }
}

/* Write the cut-short versions of the complete log @path. */
static void write_cuts(const char *path, const char *fp)
{
    g_autofree char *buf = NULL;
    size_t len, hlen = 24 + strlen(fp);
    size_t cuts[5];
    int i;

    if (!g_file_get_contents(path, &buf, &len, NULL) || len < hlen + 48) {
        return;
    }
    cuts[0] = hlen;                         /* header only */
    cuts[1] = hlen + 20;                    /* inside chunk 0's header */
    cuts[2] = MIN(hlen + 48 + 7, len - 1);  /* inside chunk 0's payload */
    cuts[3] = hlen + 48 + ldl_le_p(buf + hlen + 32);  /* after chunk 0 */
    cuts[4] = len - 1;                      /* one byte short */
    for (i = 0; i < ARRAY_SIZE(cuts); i++) {
        g_autofree char *out = NULL;

        if (cuts[i] >= len) {
            continue;
        }
        out = g_strdup_printf("%s.cut%d", path, i);
        write_file(out, buf, cuts[i]);
    }
}

static void reseed(const char *outdir, const char *log)
{
    g_autoptr(GPtrArray) evs = g_ptr_array_new();
    g_autofree char *fp = NULL;
    g_autofree char *base = g_path_get_basename(log);
    Error *err = NULL;
    ReplayLogReader *r;
    ReplayEvent ev;
    guint i, v;

    r = replay_log_open(log, &err);
    if (!r) {
        error_report_err(err);
        return;
    }
    fp = g_strdup(replay_log_fingerprint(r));
    while (evs->len < 400 && replay_log_next(r, &ev, &err) == 1) {
        g_ptr_array_add(evs, g_memdup2(&ev, sizeof(ev)));
    }
    if (err) {
        /* keep the events before the bad one */
        error_report_err(err);
    }
    replay_log_close_reader(r);

    for (v = 0; v < ARRAY_SIZE(variants); v++) {
        const Variant *va = &variants[v];
        ReplayLogWriterOptions o = {
            .chunk_bytes = va->chunk_bytes,
            .flush_ms = 600000,     /* chunk boundaries by size only */
            .level = va->level,
        };
        const char *f = va->short_fp ? SHORT_FINGERPRINT : fp;
        g_autofree char *path = g_strdup_printf("%s/%.*s-v%u.rr", outdir,
                                                (int)strcspn(base, "."),
                                                base, v);
        ReplayLogWriter *w = replay_log_create(path, f, &o, &error_fatal);

        for (i = 0; i < MIN(va->events, evs->len); i++) {
            if (!replay_log_append(w, evs->pdata[i])) {
                fprintf(stderr, "%s: event %u does not encode\n", log, i);
                exit(1);
            }
        }
        replay_log_close(w, &error_fatal);
        write_cuts(path, f);
    }
    for (i = 0; i < evs->len; i++) {
        replay_event_clear(evs->pdata[i]);
        g_free(evs->pdata[i]);
    }
}

int main(int argc, char **argv)
{
    int i;

    if (argc < 3) {
        fprintf(stderr, "usage: %s OUTDIR LOG...\n", argv[0]);
        return 2;
    }
    for (i = 2; i < argc; i++) {
        reseed(argv[1], argv[i]);
    }
    return 0;
}
