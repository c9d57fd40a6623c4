/*
 * qrr: record/replay engine core: modes, recording, the main loop's
 * ordered events, set-up and tear-down
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/option.h"
#include "qemu/cutils.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/bswap.h"
#include "system/replay.h"
#include "system/runstate.h"
#include "system/cpu-timers.h"
#include "system/cpus.h"
#include "system/tcg.h"
#include "hw/core/cpu.h"
#include "replay-core.h"
#include "trace.h"

static GPtrArray *blockers;

/* ---- the main loop's ordered events ---- */

bool replay_checkpoint(ReplayCheckpoint checkpoint)
{
    ReplayEvent *h;

    switch (replay_mode) {
    case REPLAY_MODE_RECORD:
        replay_record(REPLAY_EV_CHECKPOINT, replay_icount(), checkpoint, 0,
                      NULL, 0);
        replay_set_ordered_step(true);
        return true;
    case REPLAY_MODE_PLAY:
        h = replay_head_is(REPLAY_EV_CHECKPOINT);
        if (!h || h->arg[0] != checkpoint) {
            replay_set_ordered_step(false);
            return false;
        }
        replay_consume();
        replay_set_ordered_step(true);
        return true;
    default:
        return true;
    }
}

/*
 * The recorded shutdown, in a replay that somebody steers: the machine's
 * last position.  Freeze there and stop, as at the end of the log, instead
 * of quitting; a seek or break beyond it ends here.
 */
static bool replay_stop_at_shutdown(void)
{
    int runstate = replay_state.gdb_attached ? RUN_STATE_DEBUG
                                             : RUN_STATE_PAUSED;

    if (!replay_state.gdb_attached && replay_state.break_icount < 0) {
        return false;
    }
    info_report("record/replay: the recorded machine shuts down at icount "
                "%" PRIu64 ": replay stopped there", replay_icount());
    if (replay_state.gdb_attached) {
        replay_tt_set_stop_reason("end");
    }
    replay_set_break(replay_icount(), replay_state.consumed, runstate);
    if (current_cpu) {
        /* the request came from an instruction: end the slice after it */
        cpu_exit(current_cpu);
    } else {
        replay_break_notify();
    }
    return true;
}

bool replay_shutdown_request(ShutdownCause cause)
{
    ReplayEvent *h;

    switch (replay_mode) {
    case REPLAY_MODE_RECORD:
        replay_record(REPLAY_EV_SHUTDOWN, replay_icount(), cause, 0, NULL, 0);
        return true;
    case REPLAY_MODE_PLAY:
        h = replay_head_is(REPLAY_EV_SHUTDOWN);
        /* a request of this run's own (gdb's kill, quit) is not the log's */
        if (!h || h->arg[0] != cause) {
            return true;
        }
        replay_consume();
        return !replay_stop_at_shutdown();
    default:
        return true;
    }
}

bool replay_refuse_request(const char *what, Error **errp)
{
    if (replay_mode != REPLAY_MODE_PLAY) {
        return false;
    }
    if (errp) {
        error_setg(errp, "record/replay: %s refused: a replay resets and "
                   "wakes the guest where the recording did", what);
    } else {
        warn_report("record/replay: %s ignored: a replay resets and wakes "
                    "the guest where the recording did", what);
    }
    return true;
}

/*
 * A reset or a wake-up passes its checkpoint only when it is requested
 * (the reset in the main loop, while the request is pending; the wake-up
 * in qemu_system_wakeup_request()).  A request that the guest made (a
 * reboot, a wake-up by the serial port or the keyboard) comes in the
 * replay as it came in the recording; one that the recording's host made
 * (the monitor's system_reset or system_wakeup, refused in a replay) is
 * made here, when the log's next event is its checkpoint: a reset where
 * the outside events are delivered, a wake-up where the monitor runs.
 */
static void replay_host_request(ReplayEvent *h)
{
    switch (h->arg[0]) {
    case CHECKPOINT_RESET_REQUESTED:
        if (qemu_reset_requested_get() == SHUTDOWN_CAUSE_NONE) {
            qemu_system_reset_request(SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET);
        }
        break;
    case CHECKPOINT_WAKEUP_REQUESTED:
        if (runstate_check(RUN_STATE_SUSPENDED)) {
            qemu_system_wakeup_request(QEMU_WAKEUP_REASON_OTHER, NULL);
        }
        break;
    default:
        break;
    }
}

/* The replay reached the recorded end (or the end of a cut log). */
static void replay_reached_end(ReplayEvent *h)
{
    const char *cut = replay_log_truncation(replay_state.reader);

    if (replay_state.at_end && h->arg[0]) {
        return;                 /* already on its way out */
    }
    if (!replay_state.at_end) {
        replay_state.at_end = true;
        if (h->arg[0]) {
            error_report("record/replay: %s; replay stopped at icount %"
                         PRIu64 ", the end of the log's valid part",
                         cut ? cut : "the log ends early", h->icount);
            qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_HOST_ERROR,
                                                   1);
            return;
        }
        info_report("record/replay: replay reached the end of the log at "
                    "icount %" PRIu64, h->icount);
    }
    /* again at each continue from here: there is nothing further */
    if (replay_state.gdb_attached) {
        replay_tt_set_stop_reason("end");
        qemu_system_vmstop_request_prepare();
        qemu_system_vmstop_request(RUN_STATE_DEBUG);
    } else {
        qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    }
}

/*
 * A place in the vCPU loop and in the main loop where events that came
 * from outside the guest are delivered.
 */
void replay_async_events(void)
{
    ReplayEvent *h;

    if (!replay_events_enabled() || replay_state.finished) {
        return;
    }
    /* what the delivered events run is ordered: its clock reads count */
    replay_set_ordered_step(true);
    if (replay_mode == REPLAY_MODE_RECORD) {
        replay_async_run_head();
        replay_set_ordered_step(false);
        return;
    }
    while (replay_async_run_head()) {
        /* deliver everything due now */
    }
    replay_set_ordered_step(false);
    h = replay_head_is(REPLAY_EV_CHECKPOINT);
    if (h && h->arg[0] == CHECKPOINT_RESET_REQUESTED) {
        replay_host_request(h);
        return;
    }
    h = replay_head_is(REPLAY_EV_SHUTDOWN);
    if (h) {
        /* consumed by replay_shutdown_request(), like the guest's own */
        qemu_system_shutdown_request(h->arg[0]);
        return;
    }
    /* a machine stopped at the end (a seek there) ends when it goes on */
    h = replay_head_is(REPLAY_EV_END);
    if (h && runstate_is_running()) {
        replay_reached_end(h);
    }
}

/*
 * Replay: the main loop must not sleep while the next event is one it can
 * consume now.  Its poll timeout comes from host clocks, which say nothing
 * about the recording: without this it would wait for a timer that, in the
 * recording's time, has already expired.
 *
 * A stopped machine has nothing due: what the main loop consumes there
 * (the clock warp's start, the end of the log) waits for it to go on, and
 * vm_start() wakes the main loop.  Without this, a replay stopped by gdb
 * or at the recorded power-off would poll without sleeping.
 */
static bool replay_main_loop_due(void)
{
    ReplayEvent *h = replay_head();

    /* a suspended guest's vCPUs sleep; the clock warps until it wakes */
    if (h->icount != replay_icount() || replay_break_reached() ||
        !(runstate_is_running() || runstate_check(RUN_STATE_SUSPENDED))) {
        return false;
    }
    switch (h->kind) {
    case REPLAY_EV_INTERRUPT:
    case REPLAY_EV_EXCEPTION:
        return false;
    case REPLAY_EV_CHECKPOINT:
        return replay_head_wants_main_loop(h);
    default:
        return replay_async_ready(h);
    }
}

static void replay_poll_notify(Notifier *n, void *opaque)
{
    MainLoopPoll *mlpoll = opaque;
    ReplayEvent *h;

    if (replay_state.finished) {
        return;
    }
    if (mlpoll->state != MAIN_LOOP_POLL_FILL) {
        /*
         * Where the recording's monitor ran its commands: a wake-up made
         * here, like the recorded system_wakeup, makes the machine run
         * before the clock warp's start and the timers of this pass.
         */
        h = replay_head_is(REPLAY_EV_CHECKPOINT);
        if (h && h->arg[0] == CHECKPOINT_WAKEUP_REQUESTED) {
            replay_host_request(h);
        }
        return;
    }
    if (runstate_is_running() && replay_break_notify()) {
        return;
    }
    if (replay_main_loop_due()) {
        mlpoll->timeout = 0;
    }
}

static Notifier replay_poll_notifier = { .notify = replay_poll_notify };

/* ---- set-up and tear-down ---- */

void replay_add_blocker(const char *feature)
{
    if (!blockers) {
        blockers = g_ptr_array_new_with_free_func(g_free);
    }
    g_ptr_array_add(blockers, g_strdup(feature));
}

static void replay_check_blockers(void)
{
    if (blockers && blockers->len) {
        error_report("record/replay does not support %s",
                     (char *)g_ptr_array_index(blockers, 0));
        exit(1);
    }
}

const char *replay_get_filename(void)
{
    return replay_state.filename;
}

/* rrfsync=MS|every|off: the log writer's sync schedule (replay-log.c). */
static void replay_configure_fsync(QemuOpts *opts)
{
    const char *v = qemu_opt_get(opts, "rrfsync");
    uint64_t ms;

    if (!v) {
        return;
    }
    if (!strcmp(v, "every")) {
        replay_state.log_opts.sync_ms = REPLAY_LOG_SYNC_EVERY;
    } else if (!strcmp(v, "off")) {
        replay_state.log_opts.sync_ms = REPLAY_LOG_SYNC_NEVER;
    } else if (!qemu_strtou64(v, NULL, 10, &ms) && ms > 0 &&
               ms <= INT_MAX) {
        replay_state.log_opts.sync_ms = ms;
    } else {
        error_report("-icount rrfsync=%s: expected milliseconds (1 or "
                     "more), every or off", v);
        exit(1);
    }
}

/*
 * Where the recorded machine was asked to shut down, for "info replay"
 * and query-replay to say before the replay gets there.  A shutdown ends
 * a recording, so its event is in one of the last two chunks (the writer
 * may seal a chunk between it and END); the last one there counts.  A
 * recording that ended otherwise has none.  A chunk that does not decode
 * leaves it unknown here: the replay names the chunk when it reaches it.
 * The cause is checked as the replay checks every event's.
 */
static void replay_find_log_shutdown(ReplayLogReader *r)
{
    uint32_t chunks = replay_log_chunks(r);
    ReplayLogPos pos = { .chunk = chunks > 2 ? chunks - 2 : 0 };
    ReplayEvent ev;
    int64_t limit;
    int got = 0;

    replay_state.log_shutdown_icount = -1;
    if (chunks && replay_log_seek(r, &pos, NULL)) {
        do {
            memset(&ev, 0, sizeof(ev));
            got = replay_log_next(r, &ev, NULL);
            if (got > 0 && ev.kind == REPLAY_EV_SHUTDOWN &&
                replay_event_arg_known(&ev, &limit) &&
                ev.icount <= INT64_MAX) {
                replay_state.log_shutdown_icount = ev.icount;
                replay_state.log_shutdown_cause = ev.arg[0];
            }
            replay_event_clear(&ev);
        } while (got > 0);
    }
    if (got < 0) {
        replay_state.log_shutdown_icount = -1;
    }
    replay_log_rewind(r);
}

/* Replay: open the log, and with rrverify=on decode all of it now. */
static void replay_open_log(QemuOpts *opts, const char *file)
{
    Error *err = NULL;

    replay_state.reader = replay_log_open(file, &err);
    if (!replay_state.reader ||
        (qemu_opt_get_bool(opts, "rrverify", false) &&
         !replay_log_verify(replay_state.reader, &err)) ||
        !replay_fingerprint_check_target(
            replay_log_fingerprint(replay_state.reader), &err)) {
        error_report_err(err);
        exit(1);
    }
    replay_find_log_shutdown(replay_state.reader);
}

void replay_configure(QemuOpts *opts)
{
    const char *rr, *file;
    Error *err = NULL;
    ReplayMode mode;
    int fd;

    rr = opts ? qemu_opt_get(opts, "rr") : NULL;
    if (!rr || !strcmp(rr, "off")) {
        return;
    }
    if (!strcmp(rr, "record")) {
        mode = REPLAY_MODE_RECORD;
    } else if (!strcmp(rr, "replay")) {
        mode = REPLAY_MODE_PLAY;
    } else {
        error_report("-icount rr=%s: expected record, replay or off", rr);
        exit(1);
    }
    file = qemu_opt_get(opts, "rrfile");
    if (!file || !*file) {
        error_report("-icount rr=%s needs rrfile=FILE", rr);
        exit(1);
    }

    replay_state.filename = g_strdup(file);
    replay_state.snapshot = g_strdup(qemu_opt_get(opts, "rrsnapshot"));
    replay_state.icount_shift = g_strdup(qemu_opt_get(opts, "shift"));
    replay_state.break_icount = -1;
    replay_state.break_runstate = RUN_STATE_PAUSED;
    replay_state.last_kind_name = "the start";
    replay_state.shutdown_icount = -1;
    replay_state.vcpu_event.icount = -1;
    replay_state.log_opts.level = 6;
    replay_configure_fsync(opts);
    replay_sync_configure(opts);
    replay_sched_configure(opts);
    replay_tt_configure(opts);
    replay_async_init();
    replay_timers_register();

    if (mode == REPLAY_MODE_PLAY) {
        replay_open_log(opts, file);
        replay_sync_from_log();
    } else {
        /* fail now, not after machine creation, if F can't be written */
        fd = qemu_create(file, O_WRONLY | O_BINARY, 0644, &err);
        if (fd < 0) {
            error_report_err(err);
            exit(1);
        }
        close(fd);
    }

    replay_mode = mode;
    runstate_replay_enable();
    replay_lock_init_held();
}

static void replay_start_replay(const char *fingerprint)
{
    const char *cut = replay_log_truncation(replay_state.reader);
    Error *err = NULL;

    if (!replay_fingerprint_check(replay_log_fingerprint(replay_state.reader),
                                  fingerprint, &err)) {
        error_report_err(err);
        exit(1);
    }
    if (cut) {
        warn_report("record/replay: %s; replaying its valid part (up to "
                    "icount %" PRIu64 ")", cut,
                    replay_log_last_icount(replay_state.reader));
    }
}

void replay_start(void)
{
    g_autofree char *fingerprint = NULL;
    Error *err = NULL;

    if (replay_mode == REPLAY_MODE_NONE) {
        return;
    }
    replay_check_blockers();
    if (!tcg_enabled() || !icount_enabled()) {
        error_report("record/replay needs TCG with -icount shift=N|auto");
        exit(1);
    }
    if (!replay_sched_check(&err) || !replay_check_devices(&err)) {
        error_report_err(err);
        exit(1);
    }
    fingerprint = replay_fingerprint();
    if (replay_mode == REPLAY_MODE_RECORD) {
        replay_record_start(fingerprint);
    } else {
        replay_start_replay(fingerprint);
    }
    replay_state.started = true;
    replay_enable_events();
    if (replay_mode == REPLAY_MODE_PLAY) {
        main_loop_poll_add_notifier(&replay_poll_notifier);
        replay_tt_start();
        replay_vcpu_start();
    }
}

void replay_finish(void)
{
    Error *err = NULL;
    uint64_t now;

    if (replay_mode == REPLAY_MODE_NONE || replay_state.finished) {
        return;
    }
    now = replay_icount();
    if (replay_mode == REPLAY_MODE_RECORD) {
        replay_record(REPLAY_EV_END, now, 0, 0, NULL, 0);
        replay_state.finished = true;
        if (replay_state.writer &&
            !replay_log_close(replay_state.writer, &err)) {
            error_report_err(err);
            /* the log is incomplete: that is not a successful recording */
            exit(EXIT_FAILURE);
        }
        replay_state.writer = NULL;
    } else {
        /*
         * A machine that shuts down stops its vCPU wherever the main loop
         * catches it, a few instructions after the request: the recording
         * ran on to its END event there, the replay to another point.
         * Reaching the recorded shutdown is reaching the end.
         */
        if (replay_state.started && !replay_state.at_end &&
            replay_state.shutdown_icount >= 0) {
            info_report("record/replay: replay reached the recorded shutdown "
                        "at icount %" PRId64 " (the log ends at icount %"
                        PRIu64 ")", replay_state.shutdown_icount,
                        replay_log_last_icount(replay_state.reader));
            now = MAX(now, replay_log_last_icount(replay_state.reader));
        }
        replay_state.finished = true;
        if (replay_state.started &&
            now < replay_log_last_icount(replay_state.reader)) {
            warn_report("record/replay: replay stopped at icount %" PRIu64
                        " before the end of the log (icount %" PRIu64 ")",
                        now, replay_log_last_icount(replay_state.reader));
        }
        replay_log_close_reader(replay_state.reader);
        replay_state.reader = NULL;
    }
    /*
     * Nothing delivers queued callbacks any more, and the block layer's
     * drain at exit waits for the disk requests whose completions are
     * queued (a quit while a request is in flight): run them now.
     */
    replay_state.events_enabled = false;
    replay_async_abandon();
}
