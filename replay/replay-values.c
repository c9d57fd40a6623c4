/*
 * qrr: value events: clock reads, random bytes, character device results
 * and audio samples
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A value event says "at icount N this read returned V".  Replay matches a
 * read with the oldest recorded value of its channel at the same icount;
 * a read that finds none is a divergence and stops the replay with an
 * error.  Clock reads are logged only when they can change the guest (see
 * replay_in_ordered_step()).  The main loop's other reads only size its
 * poll timeout: record gives them the host's clock; replay gives them the
 * clock's replayed "now", its last value taken from the log, so that the
 * main loop sleeps until the recording's timeline (not the host's) makes a
 * timer due.  Host time would make every timer look expired or never due.
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "system/replay.h"
#include "audio/mixeng.h"
#include "replay-core.h"
#include "trace.h"

/* Replay: the last value of each clock taken from the log. */
static int64_t replayed_now[REPLAY_CLOCK_COUNT];

void replay_values_save(int64_t *now)
{
    memcpy(now, replayed_now, sizeof(replayed_now));
}

void replay_values_restore(const int64_t *now)
{
    memcpy(replayed_now, now, sizeof(replayed_now));
}

static ReplayChannel clock_channel(ReplayClockKind kind)
{
    return kind == REPLAY_CLOCK_HOST ? REPLAY_CH_CLOCK_HOST
                                     : REPLAY_CH_CLOCK_VIRTUAL_RT;
}

int64_t replay_save_clock(ReplayClockKind kind, int64_t clock,
                          int64_t raw_icount)
{
    if (replay_in_ordered_step()) {
        replay_record(REPLAY_EV_CLOCK, raw_icount, kind, clock, NULL, 0);
    }
    return clock;
}

int64_t replay_read_clock(ReplayClockKind kind, int64_t clock,
                          int64_t raw_icount)
{
    ReplayEvent *ev;

    if (!replay_in_ordered_step()) {
        trace_replay_clock_unordered(kind, raw_icount);
        return replayed_now[kind];
    }
    ev = replay_value_take(clock_channel(kind), raw_icount);
    if (!ev) {
        replay_fatal("record/replay: replay diverged at icount %" PRIu64
                     ": the %s clock was read, but the recording has no "
                     "read there", raw_icount,
                     kind == REPLAY_CLOCK_HOST ? "host" : "virtual-rt");
    }
    clock = ev->arg[1];
    replayed_now[kind] = clock;
    replay_value_free(ev);
    return clock;
}

/* The value the guest must get at this icount, or a divergence. */
static ReplayEvent *value_required(ReplayChannel ch, const char *what)
{
    uint64_t now = replay_icount();
    ReplayEvent *ev = replay_value_take(ch, now);

    if (!ev) {
        replay_fatal("record/replay: replay diverged at icount %" PRIu64
                     ": %s, but the recording has none there", now, what);
    }
    return ev;
}

void replay_save_random(int ret, void *buf, size_t len)
{
    replay_record(REPLAY_EV_RANDOM, replay_icount(), ret, 0, buf, len);
}

int replay_read_random(void *buf, size_t len)
{
    ReplayEvent *ev;
    int ret;

    if (replay_state.tt_abandoning) {
        /* a reset before a restore: the snapshot overwrites the result */
        memset(buf, 0, len);
        return 0;
    }
    ev = value_required(REPLAY_CH_RANDOM, "the guest asked for random bytes");
    ret = ev->arg[0];

    if (ev->len != len) {
        replay_fatal("record/replay: replay diverged at icount %" PRIu64
                     ": the guest asked for %zu random bytes, the recording "
                     "has %u", ev->icount, len, ev->len);
    }
    memcpy(buf, ev->data, len);
    replay_value_free(ev);
    return ret;
}

/*
 * An entropy source's read (rng-random): a0 is the result, the bytes read
 * or -EAGAIN, and the data those bytes.  The file is read non-blocking: a
 * read can have no other result that the recording went on from (the
 * backend stops QEMU on any other error), so a log with another one, or
 * with more bytes than the request holds, is refused before anything is
 * copied.
 */
ssize_t replay_read_entropy(int fd, void *buf, size_t size)
{
    ReplayEvent *ev;
    ssize_t res;

    if (replay_mode == REPLAY_MODE_PLAY) {
        if (replay_state.tt_abandoning) {
            /* a reset before a restore: the snapshot overwrites the result */
            memset(buf, 0, size);
            return size;
        }
        ev = value_required(REPLAY_CH_RANDOM,
                            "a device read its host's entropy source");
        res = ev->arg[0];
        if (!(res == -EAGAIN && ev->len == 0) &&
            !(res >= 0 && (size_t)res <= size && ev->len == res)) {
            replay_fatal("record/replay: the log's random event at icount %"
                         PRIu64 " has result %" PRId64 " and %u bytes, which "
                         "a read of at most %zu bytes from an entropy source "
                         "cannot have", ev->icount, ev->arg[0], ev->len,
                         size);
        }
        memcpy(buf, ev->data, ev->len);
        replay_value_free(ev);
        return res;
    }
    do {
        res = read(fd, buf, size);
    } while (res < 0 && errno == EINTR);
    if (res < 0) {
        res = -errno;
    }
    if (replay_mode == REPLAY_MODE_RECORD && (res >= 0 || res == -EAGAIN)) {
        replay_record(REPLAY_EV_RANDOM, replay_icount(), res, 0, buf,
                      MAX(res, 0));
    }
    return res;
}

void replay_char_write_event_save(int res, int offset)
{
    replay_record(REPLAY_EV_CHAR_WRITE, replay_icount(), res, offset, NULL, 0);
}

void replay_char_write_event_load(int *res, int *offset, int len)
{
    ReplayEvent *ev = value_required(REPLAY_CH_CHAR_WRITE,
                                     "the guest wrote to a character device");

    /* the log is untrusted: the device writes @len bytes, no more */
    if (ev->arg[1] < 0 || ev->arg[1] > len || ev->arg[0] > len ||
        ev->arg[0] < -4095) {
        replay_fatal("record/replay: the log's char-write event at icount %"
                     PRIu64 " has result %" PRId64 " and offset %" PRId64
                     ", which a write of %d bytes cannot have", ev->icount,
                     ev->arg[0], ev->arg[1], len);
    }
    *res = ev->arg[0];
    *offset = ev->arg[1];
    replay_value_free(ev);
}

void replay_char_read_all_save_error(int res)
{
    replay_record(REPLAY_EV_CHAR_READ_ALL, replay_icount(), res, 0, NULL, 0);
}

void replay_char_read_all_save_buf(uint8_t *buf, int offset)
{
    replay_record(REPLAY_EV_CHAR_READ_ALL, replay_icount(), offset, 0,
                  buf, offset);
}

int replay_char_read_all_load(uint8_t *buf, int len)
{
    ReplayEvent *ev = value_required(REPLAY_CH_CHAR_READ_ALL,
                                     "a device read from a character device");
    int res = ev->arg[0];

    if (res >= 0) {
        /* the log is untrusted: its bytes must fit the caller's buffer */
        if (len < 0 || ev->len > (unsigned)len) {
            replay_fatal("record/replay: the log's char-read-all event at "
                         "icount %" PRIu64 " has %u bytes, more than the %d "
                         "that the device reads", ev->icount, ev->len, len);
        }
        memcpy(buf, ev->data, ev->len);
        res = ev->len;
    }
    replay_value_free(ev);
    return res;
}

void replay_audio_out(size_t *played)
{
    ReplayEvent *ev;

    if (replay_mode == REPLAY_MODE_RECORD) {
        replay_record(REPLAY_EV_AUDIO_OUT, replay_icount(), *played, 0,
                      NULL, 0);
    } else if (replay_mode == REPLAY_MODE_PLAY) {
        ev = value_required(REPLAY_CH_AUDIO_OUT, "audio output was played");
        *played = ev->arg[0];
        replay_value_free(ev);
    }
}

/*
 * Audio input: the samples captured by this call end at *wpos in the ring
 * of @size samples; they are stored oldest first.
 */
void replay_audio_in(size_t *recorded, void *samples, size_t *wpos,
                     size_t size)
{
    struct st_sample *ring = samples;
    const size_t ss = sizeof(struct st_sample);
    g_autofree struct st_sample *flat = NULL;
    ReplayEvent *ev;
    size_t i, n, start;

    if (replay_mode == REPLAY_MODE_RECORD) {
        n = MIN(*recorded, size);
        start = (*wpos + size - n) % size;
        flat = g_new(struct st_sample, MAX(n, 1));
        for (i = 0; i < n; i++) {
            flat[i] = ring[(start + i) % size];
        }
        replay_record(REPLAY_EV_AUDIO_IN, replay_icount(), *recorded, *wpos,
                      flat, n * ss);
    } else if (replay_mode == REPLAY_MODE_PLAY) {
        ev = value_required(REPLAY_CH_AUDIO_IN, "audio input was captured");
        n = ev->len / ss;
        if (n > size || ev->arg[1] < 0 || ev->arg[1] >= size) {
            replay_fatal("record/replay: audio input at icount %" PRIu64
                         " does not fit this run's buffer", ev->icount);
        }
        *recorded = ev->arg[0];
        *wpos = ev->arg[1];
        start = (*wpos + size - n) % size;
        for (i = 0; i < n; i++) {
            memcpy(&ring[(start + i) % size], ev->data + i * ss, ss);
        }
        replay_value_free(ev);
    }
}
