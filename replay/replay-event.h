/*
 * qrr: replay event kinds and their byte encoding
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef REPLAY_EVENT_H
#define REPLAY_EVENT_H

/*
 * Every non-deterministic input is one event.  An event carries its kind,
 * the instruction count at which it happened, up to three integer
 * arguments and an optional byte string.  Which arguments a kind uses is
 * fixed by its shape (see replay-event.c).
 *
 * Events come in two classes:
 *
 *  - ordered events (interrupts, exceptions, checkpoints, asynchronous
 *    inputs, shutdown, end, vCPU switches) must be consumed in log order;
 *    the vCPU may not run past the instruction count of the first
 *    unconsumed one;
 *
 *  - value events (clock reads, random bytes, character write results,
 *    audio) only carry values.  They are matched by channel and instruction
 *    count and never hold the vCPU back.
 */
typedef enum ReplayEventKind {
    REPLAY_EV_END,              /* arg0: 0 */
    REPLAY_EV_INTERRUPT,
    REPLAY_EV_EXCEPTION,
    REPLAY_EV_CHECKPOINT,       /* arg0: ReplayCheckpoint */
    REPLAY_EV_SHUTDOWN,         /* arg0: ShutdownCause */
    REPLAY_EV_ASYNC_BH,         /* arg0: id */
    REPLAY_EV_ASYNC_BH_ONESHOT, /* arg0: id */
    REPLAY_EV_ASYNC_BLOCK,      /* arg0: id */
    REPLAY_EV_ASYNC_INPUT,      /* arg0: console index + 1; data: event */
    REPLAY_EV_ASYNC_INPUT_SYNC,
    REPLAY_EV_ASYNC_CHAR_READ,  /* arg0: chardev index; data: bytes */
    REPLAY_EV_ASYNC_NET,        /* arg0: filter index, arg1: flags; data */
    /* value events from here on */
    REPLAY_EV_CLOCK,            /* arg0: ReplayClockKind, arg1: value */
    REPLAY_EV_RANDOM,           /* arg0: return value; data: bytes */
    REPLAY_EV_CHAR_WRITE,       /* arg0: result, arg1: offset */
    REPLAY_EV_CHAR_READ_ALL,    /* arg0: result; data: bytes */
    REPLAY_EV_AUDIO_OUT,        /* arg0: samples played */
    REPLAY_EV_AUDIO_IN,         /* arg0: captured, arg1: write pos; data */
    REPLAY_EV_SYNC,             /* arg0: sync number; data: CPU registers */
    /*
     * Kinds are numbered in the log: new ones are appended here, whatever
     * their class (see replay_event_is_value()).
     */
    REPLAY_EV_SCHED,            /* ordered; arg0: cpu_index of the vCPU */
    REPLAY_EV_BLOCK_DATA,       /* value; arg0: block id, arg1: CRC-32 */
    REPLAY_EV__MAX
} ReplayEventKind;

/* Largest byte string one event may carry (a jumbo frame fits). */
#define REPLAY_EVENT_MAX_DATA (1u << 20)

typedef struct ReplayEvent {
    ReplayEventKind kind;
    uint64_t icount;
    int64_t arg[3];
    uint8_t *data;              /* owned by the event; NULL when len == 0 */
    uint32_t len;
} ReplayEvent;

/*
 * Per-chunk coding state: instruction counts and clock values are stored
 * as differences from the previous event of the same chunk, so each chunk
 * decodes on its own.
 */
typedef struct ReplayCoder {
    uint64_t icount;
    int64_t clock[4];
} ReplayCoder;

/* A value event (matched by channel), not an ordered one. */
bool replay_event_is_value(ReplayEventKind kind);

const char *replay_event_name(ReplayEventKind kind);

/* Start a chunk whose first event's icount is counted from @base. */
void replay_coder_reset(ReplayCoder *c, uint64_t base);

/*
 * Append @ev to @out.  Returns false (and appends nothing) when @ev cannot
 * be encoded: unknown kind, data too long, or an icount below the previous
 * event's.
 */
bool replay_event_encode(ReplayCoder *c, GByteArray *out,
                         const ReplayEvent *ev);

/*
 * Decode one event from @buf (of @len bytes) into @ev.  Returns the number
 * of bytes consumed, or a negative value when the bytes are not a valid
 * event (the message goes to @why).  The caller frees @ev->data with
 * replay_event_clear().
 */
int replay_event_decode(ReplayCoder *c, const uint8_t *buf, size_t len,
                        ReplayEvent *ev, const char **why);

void replay_event_clear(ReplayEvent *ev);

#endif
