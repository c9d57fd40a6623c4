/*
 * qrr: libFuzzer target for the replay log reader
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Each input is the bytes of a log file.  It is written to a memfd and
 * read through the public API, exactly as replay does: replay_log_open(),
 * the header accessors, then replay_log_next() until 0 or -1.
 *
 * Every input is read twice: once as it is, and once with all of its
 * CRCs recomputed (header CRC, then for each chunk in turn the payload
 * CRC and the header CRC).  The first pass covers the checks at the
 * surface; the second lets mutations of sizes, codecs, sequence numbers,
 * icounts and payload bytes get past the checksums into the chunk and
 * event decoders, which they otherwise would almost never reach.  The
 * fix-up is a pure function of the input, so a crash file reproduces with
 * the same binary; set QRR_FUZZ_SAVE_FIXED=PATH to also write the fixed-up
 * bytes, i.e. the log file the reader actually failed on.
 *
 * Besides crashes, leaks and sanitizer reports, the target aborts when the
 * reader breaks a promise of replay-log.h / replay-event.h:
 *  - open fails if and only if it sets an error; same for next and -1;
 *  - an opened log's fingerprint is the whole fingerprint field;
 *  - every event has a known kind, data iff len, len within the limit;
 *  - icounts never decrease in log order (replay consumes events in
 *    icount order);
 *  - at the end, the events read are replay_log_events() and the last
 *    one's icount is replay_log_last_icount().
 *
 * The reader starts no thread and uses no timer (only the writer does), so
 * one input is one deterministic run on the fuzzer's thread.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include <zlib.h>
#include "../../replay/replay-log.h"

#define HDR_FIXED 20
#define CHUNK_HDR 48

static int memfd = -1;
static char memfd_path[64];

#ifdef QRR_FUZZ_SELFTEST
/*
 * A deliberately planted bug, to show the harness reports what it should:
 * a log whose fingerprint is exactly "qrr-fuzz-selftest" makes the target
 * touch freed memory.  Only the test suite's self-test builds this.
 */
static void selftest_bug(const char *fp)
{
    if (fp && !strcmp(fp, "qrr-fuzz-selftest")) {
        char *p = g_strdup(fp);

        g_free(p);
        fprintf(stderr, "%c\n", p[0]);
    }
}
#endif

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "qrr fuzz: reader broke its contract: %s\n", what);
        abort();
    }
}

/* Recompute every CRC that the layout of @buf lets us find. */
static void fix_crcs(uint8_t *buf, size_t size)
{
    uint64_t off, fplen, stored;

    if (size < HDR_FIXED + 4) {
        return;
    }
    fplen = ldl_le_p(buf + 16);
    if (fplen > size - HDR_FIXED - 4) {
        return;
    }
    stl_le_p(buf + HDR_FIXED + fplen, crc32(0, buf, HDR_FIXED + fplen));
    off = HDR_FIXED + fplen + 4;
    while (size - off >= CHUNK_HDR) {
        stored = ldl_le_p(buf + off + 32);
        if (stored <= size - off - CHUNK_HDR) {
            stl_le_p(buf + off + 40,
                     crc32(0, buf + off + CHUNK_HDR, stored));
        }
        stl_le_p(buf + off + 44, crc32(0, buf + off, 44));
        if (stored > size - off - CHUNK_HDR) {
            break;
        }
        off += CHUNK_HDR + stored;
    }
}

static void load(const uint8_t *data, size_t size)
{
    size_t done = 0;
    ssize_t n;

    if (ftruncate(memfd, 0) < 0) {
        abort();
    }
    while (done < size) {
        n = pwrite(memfd, data + done, size - done, done);
        if (n <= 0) {
            abort();
        }
        done += n;
    }
}

static void read_log(const uint8_t *data, size_t size)
{
    ReplayLogReader *r;
    ReplayEvent ev;
    Error *err = NULL;
    const char *fp;
    uint64_t n = 0, icount = 0;
    int ret;

    load(data, size);
    r = replay_log_open(memfd_path, &err);
    check(!r == !!err, "replay_log_open() result and error disagree");
    if (!r) {
        error_free(err);
        return;
    }

    fp = replay_log_fingerprint(r);
    check(fp && size >= HDR_FIXED + 4 &&
          strlen(fp) == ldl_le_p(data + 16),
          "the fingerprint is not the header's fingerprint field");
#ifdef QRR_FUZZ_SELFTEST
    selftest_bug(fp);
#endif
    check(replay_log_version(r) == REPLAY_LOG_VERSION, "bad version");
    /* Only where it ends is of interest; the text must be a string. */
    check(!replay_log_truncation(r) || strlen(replay_log_truncation(r)),
          "empty truncation message");
    replay_log_chunks(r);

    for (;;) {
        ret = replay_log_next(r, &ev, &err);
        check(ret >= -1 && ret <= 1, "replay_log_next() returned junk");
        check((ret == -1) == !!err, "replay_log_next() result and error "
              "disagree");
        if (ret <= 0) {
            break;
        }
        check(ev.kind < REPLAY_EV__MAX, "unknown event kind");
        check(!ev.len == !ev.data, "event data and length disagree");
        check(ev.len <= REPLAY_EVENT_MAX_DATA, "event data too long");
        check(ev.icount >= icount, "icount went backwards");
        check(++n <= replay_log_events(r), "more events than the log has");
        icount = ev.icount;
        replay_event_clear(&ev);
    }
    if (ret == 0) {
        check(n == replay_log_events(r), "fewer events than the log has");
        check(icount == replay_log_last_icount(r),
              "the last event's icount is not the log's last icount");
    } else {
        error_free(err);
    }
    replay_log_close_reader(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree uint8_t *fixed = NULL;
    const char *save;

    if (memfd < 0) {
        memfd = memfd_create("qrr-fuzz-log", MFD_CLOEXEC);
        if (memfd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
    }

    read_log(data, size);

    if (!size) {
        return 0;
    }
    fixed = g_memdup2(data, size);
    fix_crcs(fixed, size);
    save = getenv("QRR_FUZZ_SAVE_FIXED");
    if (save) {
        g_file_set_contents(save, (char *)fixed, size, NULL);
    }
    if (memcmp(fixed, data, size)) {
        read_log(fixed, size);
    }
    return 0;
}
