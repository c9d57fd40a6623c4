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
#include "replay-internal.h"

ReplayInfo *qmp_query_replay(Error **errp)
{
    ReplayInfo *info = g_new0(ReplayInfo, 1);

    info->mode = replay_mode;
    if (replay_state.filename) {
        info->filename = g_strdup(replay_state.filename);
    }
    info->icount = replay_mode == REPLAY_MODE_NONE ? 0 : replay_icount();
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
    replay_state.break_icount = icount;
    replay_kick_vcpu();
}

void qmp_replay_delete_break(Error **errp)
{
    if (!replay_check_playing("replay-delete-break", errp)) {
        return;
    }
    replay_state.break_icount = -1;
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
    if ((uint64_t)icount < now) {
        error_setg(errp, "replay-seek: icount %" PRId64 " is behind the "
                   "current position %" PRIu64 "; seeking backwards is not "
                   "supported yet", icount, now);
        return;
    }
    if ((uint64_t)icount == now) {
        return;
    }
    replay_state.break_icount = icount;
    replay_kick_vcpu();
    if (!runstate_is_running()) {
        vm_start();
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
    if (info->mode == REPLAY_MODE_PLAY && replay_state.reader) {
        monitor_printf(mon, "Log ends at instruction count %" PRIu64 "\n",
                       replay_log_last_icount(replay_state.reader));
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

/* Reverse execution needs snapshots in the replay; not there yet. */
bool replay_reverse_step(void)
{
    return false;
}

bool replay_reverse_continue(void)
{
    return false;
}

bool replay_running_debug(void)
{
    return false;
}

void replay_breakpoint(void)
{
}

void replay_gdb_attached(void)
{
    replay_state.gdb_attached = true;
}
