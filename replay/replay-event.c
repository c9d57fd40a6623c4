/*
 * qrr: replay event encoding
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Byte encoding of one event inside a chunk payload (replay-log.c
 * describes the file around it):
 *
 *   kind    1 byte, a ReplayEventKind
 *   delta   unsigned LEB128: icount minus the previous event's icount
 *           (the chunk's base icount for a chunk's first event)
 *   args    the kind's integer arguments, each zigzag-mapped to an
 *           unsigned value ((v << 1) ^ (v >> 63), arithmetic shift: 0, -1,
 *           1, -2 ... become 0, 1, 2, 3 ...) stored as an unsigned LEB128;
 *           a clock value is stored as the difference from the previous
 *           value of the same clock in the chunk
 *   data    for kinds that carry bytes: unsigned LEB128 length, then the
 *           bytes (at most REPLAY_EVENT_MAX_DATA)
 *
 * Kinds are numbered as ReplayEventKind (replay-event.h) and the number is
 * the kind byte (see REGISTRY below); whether a kind is ordered or a
 * value event is a column of shapes[], not a range of numbers.  Kind 19,
 * "sched", is logged where the round-robin vCPU thread starts running a
 * vCPU other than the one that ran last; a machine with one vCPU never
 * logs it (replay-sched.c says why nothing more of the schedule needs
 * logging).
 *
 * REGISTRY.  Every number below is part of the format.  A kind, a
 * checkpoint or a layout is never renumbered or changed: what is new is
 * appended, and a reader that meets a number it does not know rejects
 * the event.  A change that an older reader would misread (a new
 * argument, a new layout of a kind's data) bumps REPLAY_LOG_VERSION
 * (replay-log.h).  Arguments are a0, a1 in order; "data" is the kind's
 * bytes.  O: ordered event, V: value event (replay-core.h).
 *
 *   0  end            O  a0: 0 (a reader makes one up with 1 for a cut
 *                        log; a file never holds 1)
 *   1  interrupt      O  -
 *   2  exception      O  -
 *   3  checkpoint     O  a0: ReplayCheckpoint (system/replay.h): 0 warp
 *                        start, 1 warp account, 2 reset requested, 3
 *                        suspend requested, 4 virtual clock timers, 5
 *                        host clock timers, 6 virtual-rt clock timers, 7
 *                        init, 8 reset, 9 wakeup requested
 *   4  shutdown       O  a0: ShutdownCause, numbered as in
 *                        qapi/run-state.json (0 none ... 10 snapshot-load)
 *   5  bh             O  a0: bottom-half id, from 0 in scheduling order
 *   6  bh-oneshot     O  a0: id, from the same counter as bh
 *   7  block          O  a0: block request id, from 0 in submission order
 *   8  input          O  a0: console index + 1 (0: none); data: 48 bytes,
 *                        six little-endian int64 words w0..w5: w0 the
 *                        InputEventKind (qapi/ui.json); key: w1
 *                        KeyValueKind, w2 the number or QKeyCode, w3 down
 *                        (0/1); btn: w1 InputButton, w2 down; rel, abs: w1
 *                        InputAxis, w2 the value; mtt: w1
 *                        InputMultiTouchType, w2 slot, w3 tracking id, w4
 *                        InputAxis, w5 value; unused words 0
 *   9  input-sync     O  -
 *  10  char-read      O  a0: character device, by registration order;
 *                        data: the bytes its backend received
 *  11  net            O  a0: replay net filter object, by creation order;
 *                        a1: QEMU_NET_PACKET_FLAG_*; data: the packet
 *  12  clock          V  a0: ReplayClockKind: 0 host, 1 virtual-rt; a1:
 *                        the value in ns, stored as the difference from
 *                        the previous value of that clock in the chunk
 *  13  random         V  a0: the result (0, or a negative errno); data:
 *                        the bytes.  rng-random's read of its file
 *                        (replay_read_entropy()): a0 the bytes read, or
 *                        -EAGAIN; data: those bytes (none with -EAGAIN)
 *  14  char-write     V  a0: the result; a1: the offset reached
 *  15  char-read-all  V  a0: a negative errno, or the bytes read; data:
 *                        those bytes (none with an error)
 *  16  audio-out      V  a0: frames played
 *  17  audio-in       V  a0: frames captured; a1: the ring's write
 *                        position after them; data: the captured samples,
 *                        oldest first, as struct st_sample (two int64)
 *  18  sync           V  a0: the sync point's sequence number; data:
 *                        every vCPU's registers, in cpu_index order, each
 *                        as gdb reads them (its numbering and byte order),
 *                        XORed with the previous sync point's bytes
 *                        (replay-sync.c)
 *  19  sched          O  a0: the cpu_index of the vCPU that starts running
 *  20  block-data     V  a0: a block request id; a1: the CRC-32 (zlib's
 *                        crc32()) of the data its read returned, logged
 *                        right after the request's block event
 *                        (replay-blockdata.c)
 *
 * Number of arguments and presence of data per kind are in shapes[] below;
 * scripts/replay-dump.py carries the same table.  An unsigned LEB128 holds
 * 7 bits per byte, least significant first, with bit 7 set on every byte
 * but the last.  It must be canonical, as the writer makes it: at most 10
 * bytes, no last byte 0x00 after another one (0x80 0x00 is no 0), and a
 * 10th byte of 0x01 at most (no bits above bit 63).  Anything else
 * (unknown kind, overlong or non-canonical varint, data running past the
 * payload) makes the payload invalid.
 */

#include "qemu/osdep.h"
#include "replay-event.h"

typedef struct EventShape {
    const char *name;
    uint8_t nargs;
    bool data;
    bool value;                 /* a value event, not an ordered one */
} EventShape;

static const EventShape shapes[REPLAY_EV__MAX] = {
    [REPLAY_EV_END]              = { "end", 1, false },
    [REPLAY_EV_INTERRUPT]        = { "interrupt", 0, false },
    [REPLAY_EV_EXCEPTION]        = { "exception", 0, false },
    [REPLAY_EV_CHECKPOINT]       = { "checkpoint", 1, false },
    [REPLAY_EV_SHUTDOWN]         = { "shutdown", 1, false },
    [REPLAY_EV_ASYNC_BH]         = { "bh", 1, false },
    [REPLAY_EV_ASYNC_BH_ONESHOT] = { "bh-oneshot", 1, false },
    [REPLAY_EV_ASYNC_BLOCK]      = { "block", 1, false },
    [REPLAY_EV_ASYNC_INPUT]      = { "input", 1, true },
    [REPLAY_EV_ASYNC_INPUT_SYNC] = { "input-sync", 0, false },
    [REPLAY_EV_ASYNC_CHAR_READ]  = { "char-read", 1, true },
    [REPLAY_EV_ASYNC_NET]        = { "net", 2, true },
    [REPLAY_EV_CLOCK]            = { "clock", 2, false, true },
    [REPLAY_EV_RANDOM]           = { "random", 1, true, true },
    [REPLAY_EV_CHAR_WRITE]       = { "char-write", 2, false, true },
    [REPLAY_EV_CHAR_READ_ALL]    = { "char-read-all", 1, true, true },
    [REPLAY_EV_AUDIO_OUT]        = { "audio-out", 1, false, true },
    [REPLAY_EV_AUDIO_IN]         = { "audio-in", 2, true, true },
    [REPLAY_EV_SYNC]             = { "sync", 1, true, true },
    [REPLAY_EV_SCHED]            = { "sched", 1, false },
    [REPLAY_EV_BLOCK_DATA]       = { "block-data", 2, false, true },
};

bool replay_event_is_value(ReplayEventKind kind)
{
    return kind < REPLAY_EV__MAX && shapes[kind].value;
}

const char *replay_event_name(ReplayEventKind kind)
{
    return kind < REPLAY_EV__MAX ? shapes[kind].name : "invalid";
}

void replay_coder_reset(ReplayCoder *c, uint64_t base)
{
    memset(c, 0, sizeof(*c));
    c->icount = base;
}

static void put_uleb(GByteArray *out, uint64_t v)
{
    uint8_t b[10];
    int n = 0;

    do {
        b[n] = v & 0x7f;
        v >>= 7;
        if (v) {
            b[n] |= 0x80;
        }
        n++;
    } while (v);
    g_byte_array_append(out, b, n);
}

static void put_sleb(GByteArray *out, int64_t v)
{
    put_uleb(out, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/*
 * Returns bytes used, 0 when the varint is truncated, longer than 10
 * bytes, or not canonical: a last byte 0x00 after another one (a value
 * that fewer bytes hold), or bits above bit 63 in the 10th byte.
 */
static int get_uleb(const uint8_t *p, size_t len, uint64_t *v)
{
    uint64_t r = 0;
    int i;

    for (i = 0; i < 10 && i < len; i++) {
        if (i == 9 && p[i] > 1) {
            return 0;
        }
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (i > 0 && p[i] == 0) {
                return 0;
            }
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

static int get_sleb(const uint8_t *p, size_t len, int64_t *v)
{
    uint64_t u = 0;
    int n = get_uleb(p, len, &u);

    *v = (int64_t)((u >> 1) ^ -(u & 1));
    return n;
}

static bool clock_slot(ReplayCoder *c, const ReplayEvent *ev, int64_t **slot)
{
    if (ev->kind != REPLAY_EV_CLOCK) {
        *slot = NULL;
        return true;
    }
    if (ev->arg[0] < 0 || ev->arg[0] >= ARRAY_SIZE(c->clock)) {
        return false;
    }
    *slot = &c->clock[ev->arg[0]];
    return true;
}

bool replay_event_encode(ReplayCoder *c, GByteArray *out,
                         const ReplayEvent *ev)
{
    const EventShape *s;
    int64_t *clk;
    uint8_t kind = ev->kind;
    int i;

    if (ev->kind >= REPLAY_EV__MAX || ev->icount < c->icount ||
        ev->len > REPLAY_EVENT_MAX_DATA || !clock_slot(c, ev, &clk)) {
        return false;
    }
    s = &shapes[ev->kind];
    g_byte_array_append(out, &kind, 1);
    put_uleb(out, ev->icount - c->icount);
    c->icount = ev->icount;
    for (i = 0; i < s->nargs; i++) {
        if (clk && i == 1) {
            put_sleb(out, (int64_t)((uint64_t)ev->arg[1] - (uint64_t)*clk));
            *clk = ev->arg[1];
        } else {
            put_sleb(out, ev->arg[i]);
        }
    }
    if (s->data) {
        put_uleb(out, ev->len);
        if (ev->len) {
            g_byte_array_append(out, ev->data, ev->len);
        }
    }
    return true;
}

void replay_event_clear(ReplayEvent *ev)
{
    g_free(ev->data);
    memset(ev, 0, sizeof(*ev));
}

int replay_event_decode(ReplayCoder *c, const uint8_t *buf, size_t len,
                        ReplayEvent *ev, const char **why)
{
    const EventShape *s;
    uint64_t delta, dlen;
    int64_t *clk;
    size_t pos = 1;
    int n, i;

    memset(ev, 0, sizeof(*ev));
    if (len < 2) {
        *why = "event truncated";
        return -1;
    }
    if (buf[0] >= REPLAY_EV__MAX) {
        *why = "unknown event kind";
        return -1;
    }
    ev->kind = buf[0];
    s = &shapes[ev->kind];

    n = get_uleb(buf + pos, len - pos, &delta);
    if (!n || delta > UINT64_MAX - c->icount) {
        *why = "bad instruction count";
        return -1;
    }
    pos += n;
    ev->icount = c->icount + delta;

    for (i = 0; i < s->nargs; i++) {
        n = get_sleb(buf + pos, len - pos, &ev->arg[i]);
        if (!n) {
            *why = "event argument truncated";
            return -1;
        }
        pos += n;
    }
    if (!clock_slot(c, ev, &clk)) {
        *why = "unknown clock";
        return -1;
    }
    if (clk) {
        ev->arg[1] = (int64_t)((uint64_t)ev->arg[1] + (uint64_t)*clk);
        *clk = ev->arg[1];
    }
    if (s->data) {
        n = get_uleb(buf + pos, len - pos, &dlen);
        if (!n || dlen > REPLAY_EVENT_MAX_DATA || dlen > len - pos - n) {
            *why = "event data truncated or too long";
            return -1;
        }
        pos += n;
        ev->len = dlen;
        ev->data = dlen ? g_memdup2(buf + pos, dlen) : NULL;
        pos += dlen;
    }
    c->icount = ev->icount;
    return pos;
}
