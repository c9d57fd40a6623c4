/*
 * qrr: the engine's ground floor: the mode, the state, fatal errors, the
 * instruction count and recording
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every other file of the engine may call this one; it calls none of
 * theirs, only the log writer below it.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "system/replay.h"
#include "system/runstate.h"
#include "system/cpu-timers.h"
#include "replay-core.h"
#include "trace.h"

ReplayMode replay_mode = REPLAY_MODE_NONE;

ReplayState replay_state;

static GQueue early;            /* events recorded before the log exists */

/* ---- errors ---- */

void replay_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (replay_mode == REPLAY_MODE_PLAY && !replay_state.started) {
        /* the machine is not built yet: the fingerprint can't be checked */
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);

        error_report("%s (while the machine was being set up: is this the "
                     "command line of the recording?)", msg);
    } else {
        error_vreport(fmt, ap);
    }
    va_end(ap);
    exit(1);
}

/* ---- instruction count ---- */

uint64_t replay_icount(void)
{
    return icount_get_raw();
}

uint64_t replay_get_current_icount(void)
{
    return icount_get_raw();
}

/* ---- recording ---- */

void replay_record(ReplayEventKind kind, uint64_t icount, int64_t a0,
                   int64_t a1, const void *data, uint32_t len)
{
    ReplayEvent ev = {
        .kind = kind, .icount = icount, .arg = { a0, a1 },
        .data = (uint8_t *)data, .len = len,
    };

    trace_replay_record(replay_event_name(kind), icount, a0);
    if (replay_state.finished || replay_state.write_failed) {
        return;
    }
    if (!replay_state.writer) {
        ReplayEvent *copy = g_memdup2(&ev, sizeof(ev));

        copy->data = len ? g_memdup2(data, len) : NULL;
        g_queue_push_tail(&early, copy);
        return;
    }
    if (!replay_log_append(replay_state.writer, &ev)) {
        const char *why = replay_log_writer_error(replay_state.writer);

        replay_state.write_failed = true;
        error_report("record/replay: %s; recording stopped at icount %"
                     PRIu64 ", the log keeps what came before",
                     why ? why : "an event could not be encoded", icount);
        /* a recording that goes on unrecorded is of no use: stop QEMU */
        qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_HOST_ERROR,
                                               EXIT_FAILURE);
    }
}

/* The machine is built: create the log, with what came before. */
void replay_record_start(const char *fingerprint)
{
    ReplayEvent *ev;
    Error *err = NULL;

    replay_state.writer = replay_log_create(replay_state.filename,
                                            fingerprint,
                                            &replay_state.log_opts, &err);
    if (!replay_state.writer) {
        error_report_err(err);
        exit(1);
    }
    while ((ev = g_queue_pop_head(&early))) {
        replay_log_append(replay_state.writer, ev);
        replay_event_clear(ev);
        g_free(ev);
    }
}
