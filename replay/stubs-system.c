/*
 * qrr: record/replay hooks for system emulators built without TCG.
 * Record/replay needs TCG, so everything passes straight through and the
 * monitor commands say that replay is unavailable.
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-replay.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "system/replay.h"
#include "ui/input.h"

void replay_input_event(QemuConsole *src, InputEvent *evt)
{
    qemu_input_event_send_impl(src, evt);
}

void replay_input_sync_event(void)
{
    qemu_input_event_sync_impl();
}

void replay_add_blocker(const char *feature)
{
}

void replay_audio_in(size_t *recorded, void *samples, size_t *wpos,
                     size_t size)
{
}

void replay_audio_out(size_t *played)
{
}

void replay_breakpoint(void)
{
}

bool replay_can_snapshot(void)
{
    return true;
}

void replay_configure(QemuOpts *opts)
{
}

bool replay_load_snapshot_begin(Error **errp)
{
    return true;
}

void replay_load_snapshot_end(bool loaded)
{
}

void replay_flush_events(void)
{
}

void replay_gdb_attached(void)
{
}

void replay_gdb_detached(void)
{
}

bool replay_running_debug(void)
{
    return false;
}

bool replay_restoring_snapshot(void)
{
    return false;
}

bool replay_reset_keeps_ram(void)
{
    return false;
}

bool replay_shutdown_request(ShutdownCause cause)
{
    return true;
}

bool replay_refuse_request(const char *what, Error **errp)
{
    return false;
}

void replay_start(void)
{
}

void replay_vmstate_init(void)
{
}

static void hmp_no_replay(Monitor *mon)
{
    monitor_printf(mon, "Record/replay needs TCG\n");
}

void hmp_info_replay(Monitor *mon, const QDict *qdict)
{
    hmp_no_replay(mon);
}

void hmp_replay_break(Monitor *mon, const QDict *qdict)
{
    hmp_no_replay(mon);
}

void hmp_replay_delete_break(Monitor *mon, const QDict *qdict)
{
    hmp_no_replay(mon);
}

void hmp_replay_seek(Monitor *mon, const QDict *qdict)
{
    hmp_no_replay(mon);
}

ReplayInfo *qmp_query_replay(Error **errp)
{
    ReplayInfo *info = g_new0(ReplayInfo, 1);

    info->mode = REPLAY_MODE_NONE;
    return info;
}

static void qmp_no_replay(Error **errp)
{
    error_setg(errp, "Record/replay needs TCG");
}

void qmp_replay_break(int64_t icount, Error **errp)
{
    qmp_no_replay(errp);
}

void qmp_replay_delete_break(Error **errp)
{
    qmp_no_replay(errp);
}

void qmp_replay_seek(int64_t icount, Error **errp)
{
    qmp_no_replay(errp);
}

ReplaySnapshots *qmp_query_replay_snapshots(Error **errp)
{
    qmp_no_replay(errp);
    return NULL;
}

const char *replay_gdb_stop_reason(void)
{
    return NULL;
}
