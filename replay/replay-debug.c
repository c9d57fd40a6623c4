/*
 * qrr: monitor commands and debugger hooks
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-replay.h"
#include "qobject/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "system/replay.h"
#include "system/runstate.h"
#include "hw/core/cpu.h"
#include "replay-core.h"
#include "replay-tt.h"

static void hmp_info_replay_snapshots(Monitor *mon);

ReplayInfo *qmp_query_replay(Error **errp)
{
    ReplayInfo *info = g_new0(ReplayInfo, 1);

    info->mode = replay_mode;
    if (replay_state.filename) {
        info->filename = g_strdup(replay_state.filename);
    }
    info->icount = replay_mode == REPLAY_MODE_NONE ? 0 : replay_icount();
    if (replay_mode == REPLAY_MODE_PLAY && replay_state.reader) {
        info->has_end = true;
        info->end = replay_log_last_icount(replay_state.reader);
        if (replay_state.log_shutdown_icount >= 0) {
            info->shutdown = g_new0(ReplayShutdown, 1);
            info->shutdown->icount = replay_state.log_shutdown_icount;
            info->shutdown->cause = replay_state.log_shutdown_cause;
        }
    }
    return info;
}

static bool replay_check_playing(const char *cmd, Error **errp)
{
    if (replay_mode != REPLAY_MODE_PLAY) {
        error_setg(errp, "%s works only while replaying (-icount rr=replay)",
                   cmd);
        return false;
    }
    return true;
}

/* Make the vCPU leave its slice so that it sees a new budget. */
static void replay_kick_vcpu(void)
{
    if (first_cpu) {
        qemu_cpu_kick(first_cpu);
    }
}

void qmp_replay_break(int64_t icount, Error **errp)
{
    uint64_t now;

    if (!replay_check_playing("replay-break", errp)) {
        return;
    }
    now = replay_icount();
    if (icount < 0 || (uint64_t)icount <= now) {
        error_setg(errp, "replay-break: icount %" PRId64 " is not after the "
                   "current position %" PRIu64, icount, now);
        return;
    }
    replay_set_break(icount, 0, RUN_STATE_PAUSED);
    replay_kick_vcpu();
}

void qmp_replay_delete_break(Error **errp)
{
    if (!replay_check_playing("replay-delete-break", errp)) {
        return;
    }
    replay_set_break(-1, 0, RUN_STATE_PAUSED);
}

void qmp_replay_seek(int64_t icount, Error **errp)
{
    uint64_t now, end;

    if (!replay_check_playing("replay-seek", errp)) {
        return;
    }
    now = replay_icount();
    end = replay_log_last_icount(replay_state.reader);
    if (icount < 0 || (uint64_t)icount > end) {
        error_setg(errp, "replay-seek: icount %" PRId64 " is outside the "
                   "recording (0 to %" PRIu64 ")", icount, end);
        return;
    }
    if (replay_tt_enabled()) {
        replay_tt_seek(icount, errp);
        return;
    }
    if ((uint64_t)icount < now) {
        Error *off = NULL;

        tt_usable(&off);
        error_setg(errp, "replay-seek: icount %" PRId64 " is behind the "
                   "current position %" PRIu64 " and %s", icount, now,
                   error_get_pretty(off));
        error_free(off);
        return;
    }
    replay_set_break(icount, 0, RUN_STATE_PAUSED);
    replay_kick_vcpu();
    if (!runstate_is_running()) {
        vm_start();
    }
}

/* Each vCPU's own instruction count, on a machine with several. */
static void hmp_info_replay_vcpus(Monitor *mon)
{
    CPUState *cpu;

    if (!first_cpu || !CPU_NEXT(first_cpu)) {
        return;
    }
    CPU_FOREACH(cpu) {
        monitor_printf(mon, "vCPU %d: instruction count = %" PRIu64 "%s\n",
                       cpu->cpu_index, replay_vcpu_icount(cpu->cpu_index),
                       cpu->cpu_index == replay_state.sched_vcpu
                           ? " (its turn)" : "");
    }
}

void hmp_info_replay(Monitor *mon, const QDict *qdict)
{
    g_autoptr(ReplayInfo) info = qmp_query_replay(NULL);

    if (info->mode == REPLAY_MODE_NONE) {
        monitor_printf(mon, "Record/replay is not active\n");
        return;
    }
    monitor_printf(mon, "%s execution '%s': instruction count = %" PRId64
                   "\n", info->mode == REPLAY_MODE_RECORD ? "Recording"
                   : "Replaying", info->filename, info->icount);
    hmp_info_replay_vcpus(mon);
    if (info->has_end) {
        monitor_printf(mon, "Log ends at instruction count %" PRId64 "\n",
                       info->end);
    }
    if (info->shutdown) {
        monitor_printf(mon, "The recorded machine was asked to shut down "
                       "(%s) at instruction count %" PRId64 "\n",
                       ShutdownCause_str(info->shutdown->cause),
                       info->shutdown->icount);
    }
    if (info->mode == REPLAY_MODE_PLAY && replay_state.reader) {
        hmp_info_replay_snapshots(mon);
    }
}

/* Snapshots listed each side of the current position by "info replay" */
#define HMP_SNAPSHOTS_AROUND 3

static void hmp_print_snapshot(Monitor *mon, ReplaySnapshotInfo *s)
{
    monitor_printf(mon, "  snapshot at icount %" PRId64 " (%" PRId64
                   " events): %" PRId64 " pages, %" PRId64 " KiB\n",
                   s->icount, s->events, s->pages, s->size / 1024);
}

/*
 * The time-travel snapshots, as part of "info replay": a summary and the
 * few around the current position (QMP query-replay-snapshots lists them
 * all).  The output stays short: gdb's "monitor info replay" carries it
 * in one packet a line, and a long listing fills the gdb connection.
 */
static void hmp_info_replay_snapshots(Monitor *mon)
{
    g_autoptr(ReplaySnapshots) r = qmp_query_replay_snapshots(NULL);
    g_autoptr(GPtrArray) snaps = g_ptr_array_new();
    ReplaySnapshotInfoList *l;
    int64_t now = replay_icount();
    guint i, here = 0, from, to;

    if (!r || !r->enabled) {
        monitor_printf(mon, "Time travel is off\n");
        return;
    }
    for (l = r->snapshots; l; l = l->next) {
        if (l->value->icount <= now) {
            here = snaps->len;
        }
        g_ptr_array_add(snaps, l->value);
    }
    monitor_printf(mon, "Time travel: %u snapshots, %" PRId64 " KiB, budget "
                   "%" PRId64 " KiB, interval %" PRId64 " instructions, "
                   "last move %" PRId64 " us, %" PRId64 " taken in %"
                   PRId64 " ms\n", snaps->len, r->used / 1024,
                   r->budget / 1024, r->interval, r->last_move_us, r->taken,
                   r->take_us / 1000);
    from = here > HMP_SNAPSHOTS_AROUND ? here - HMP_SNAPSHOTS_AROUND : 0;
    to = MIN(snaps->len, here + HMP_SNAPSHOTS_AROUND + 1);
    if (from > 0) {
        monitor_printf(mon, "  ... %u earlier\n", from);
    }
    for (i = from; i < to; i++) {
        hmp_print_snapshot(mon, g_ptr_array_index(snaps, i));
    }
    if (to < snaps->len) {
        monitor_printf(mon, "  ... %u later\n", snaps->len - to);
    }
}

static void hmp_report(Monitor *mon, Error *err)
{
    if (err) {
        monitor_printf(mon, "%s\n", error_get_pretty(err));
        error_free(err);
    }
}

void hmp_replay_break(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;

    qmp_replay_break(qdict_get_try_int(qdict, "icount", -1), &err);
    hmp_report(mon, err);
}

void hmp_replay_delete_break(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;

    qmp_replay_delete_break(&err);
    hmp_report(mon, err);
}

void hmp_replay_seek(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;

    qmp_replay_seek(qdict_get_try_int(qdict, "icount", -1), &err);
    hmp_report(mon, err);
}

/* While time travel moves the replay, debug exceptions are only noted. */
bool replay_running_debug(void)
{
    return replay_tt_searching();
}

void replay_breakpoint(void)
{
    replay_tt_note_hit();
}

void replay_gdb_attached(void)
{
    replay_state.gdb_attached = true;
}

void replay_gdb_detached(void)
{
    replay_state.gdb_attached = false;
}
