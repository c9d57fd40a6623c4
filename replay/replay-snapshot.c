/*
 * qrr: snapshots on disk: the rrsnapshot= start-up snapshot, and savevm
 * and loadvm during record and replay
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * With rrsnapshot=NAME the recording saves snapshot NAME (in the qcow2
 * images of the machine) right after the machine is created, and the replay
 * loads it at the same point, so the two start from the same state.
 *
 * Every snapshot that savevm takes in record or replay mode carries a
 * "qrr-replay" section, loaded before any device's:
 *
 *   mode         u8, the ReplayMode of the run that took it
 *   icount       u64, the instruction count there
 *   log_end      u64, replay: the last instruction count of its log
 *   fingerprint  the machine's record/replay fingerprint (the command
 *                line's devices, see replay-fingerprint.c)
 *   engine       replay: the engine's state (replay_engine_serialize():
 *                log position, decoded events, counters)
 *   parts        the participants' state (replay-participants.c: a disk
 *                filter's overlays of writes, say)
 *
 * loadvm in a replay takes the replay to the snapshot's position: the
 * engine's state comes back with the machine's, and the replay goes on
 * from there as it did the first time.  The rules:
 *
 *  - a snapshot taken in a replay loads in a replay of the same log (the
 *    fingerprint and the log's end must match);
 *  - a snapshot taken while recording loads in a replay only if it was
 *    taken at the recording's first instruction (rrsnapshot=): the
 *    engine then goes back to the start of the log;
 *  - loadvm while recording is refused: a recording cannot go back;
 *  - a snapshot without the section (taken without rr=) cannot be loaded
 *    in a replay: the replay stops with an error.
 *
 * Like a time-travel restore, the load runs the work queued for the
 * position left, and what the reset and the devices' post_load do is not
 * taken from the log (replay_state.tt_abandoning, tt_busy).
 *
 * The load runs with the replay mutex given away (a post_load may need
 * the vCPU thread, see replay_mutex_give_away()), so the section's
 * post_load only checks it and parses the engine's state; the engine and
 * the participants take their state in replay_load_snapshot_end(), once
 * the mutex is back.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "migration/snapshot.h"
#include "migration/vmstate.h"
#include "system/replay.h"
#include "replay-core.h"

typedef struct ReplaySnapSection {
    uint8_t mode;
    uint64_t icount;
    uint64_t log_end;
    uint32_t fingerprint_len;
    uint8_t *fingerprint;
    uint32_t engine_len;
    uint8_t *engine;
    uint32_t parts_len;
    uint8_t *parts;
} ReplaySnapSection;

static ReplaySnapSection section;
static bool loading;            /* between begin and end of a loadvm */
static bool gave_mutex;         /* the replay mutex, for the load */
static bool section_loaded;
/* what the loaded section brings, applied once the mutex is back */
static ReplayEngineState *engine_loaded;
static GByteArray *parts_loaded;
/* the engine at the start of the replay, for a recording's rrsnapshot */
static ReplayEngineState *engine_at_start;

static void section_clear(void)
{
    g_clear_pointer(&section.fingerprint, g_free);
    g_clear_pointer(&section.engine, g_free);
    g_clear_pointer(&section.parts, g_free);
    section.fingerprint_len = section.engine_len = section.parts_len = 0;
}

static void take_bytes(GByteArray *b, uint8_t **data, uint32_t *len)
{
    *len = b->len;
    *data = g_byte_array_free(b, false);
}

static int section_pre_save(void *opaque)
{
    g_autofree char *fp = NULL;

    section_clear();
    if (replay_state.tt_busy) {
        /* a time-travel snapshot, which keeps the engine's state itself */
        section.mode = REPLAY_MODE_NONE;
        return 0;
    }
    fp = replay_fingerprint();
    section.mode = replay_mode;
    section.icount = replay_icount();
    section.log_end = replay_mode == REPLAY_MODE_PLAY ?
                      replay_log_last_icount(replay_state.reader) : 0;
    section.fingerprint_len = strlen(fp);
    section.fingerprint = (uint8_t *)g_steal_pointer(&fp);
    if (replay_mode == REPLAY_MODE_PLAY) {
        take_bytes(replay_engine_serialize(), &section.engine,
                   &section.engine_len);
    }
    take_bytes(replay_participants_serialize(), &section.parts,
               &section.parts_len);
    return 0;
}

static int section_pre_load(void *opaque)
{
    section_clear();
    return 0;
}

static bool section_check(Error **errp)
{
    g_autofree char *fp = replay_fingerprint();

    if (replay_mode != REPLAY_MODE_PLAY) {
        error_setg(errp, "loadvm is only possible in a replay");
        return false;
    }
    if (section.fingerprint_len != strlen(fp) ||
        memcmp(section.fingerprint, fp, strlen(fp))) {
        error_setg(errp, "the snapshot was taken on another machine "
                   "(devices, RAM or CPU differ from this command line's)");
        return false;
    }
    if (section.mode == REPLAY_MODE_RECORD && section.icount) {
        error_setg(errp, "the snapshot was taken while recording, at "
                   "icount %" PRIu64 "; a replay loads only snapshots "
                   "taken at the recording's start or during a replay",
                   section.icount);
        return false;
    }
    if (section.mode == REPLAY_MODE_PLAY &&
        section.log_end != replay_log_last_icount(replay_state.reader)) {
        error_setg(errp, "the snapshot was taken in the replay of another "
                   "log (which ends at icount %" PRIu64 ", this one at %"
                   PRIu64 ")", section.log_end,
                   replay_log_last_icount(replay_state.reader));
        return false;
    }
    if (section.mode != REPLAY_MODE_RECORD &&
        section.mode != REPLAY_MODE_PLAY) {
        error_setg(errp, "the snapshot's record/replay mode is unknown");
        return false;
    }
    return true;
}

static int section_post_load(void *opaque, int version_id)
{
    Error *err = NULL;

    if (!loading) {
        section_clear();        /* a time-travel restore */
        return 0;
    }
    section_loaded = true;
    if (!section_check(&err)) {
        goto fail;
    }
    if (section.mode == REPLAY_MODE_PLAY) {
        engine_loaded = replay_engine_parse(section.engine,
                                            section.engine_len, &err);
        if (!engine_loaded) {
            goto fail;
        }
    }
    parts_loaded = g_byte_array_new_take(g_steal_pointer(&section.parts),
                                         section.parts_len);
    section_clear();
    return 0;

fail:
    error_prepend(&err, "record/replay: loadvm: ");
    error_report_err(err);
    section_clear();
    return -EINVAL;
}

static const VMStateDescription vmstate_qrr_replay = {
    .name = "qrr-replay",
    .version_id = 2,
    .minimum_version_id = 2,
    .priority = MIG_PRI_MAX,
    .pre_save = section_pre_save,
    .pre_load = section_pre_load,
    .post_load = section_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(mode, ReplaySnapSection),
        VMSTATE_UINT64(icount, ReplaySnapSection),
        VMSTATE_UINT64(log_end, ReplaySnapSection),
        VMSTATE_UINT32(fingerprint_len, ReplaySnapSection),
        VMSTATE_VBUFFER_ALLOC_UINT32(fingerprint, ReplaySnapSection, 1,
                                     NULL, fingerprint_len),
        VMSTATE_UINT32(engine_len, ReplaySnapSection),
        VMSTATE_VBUFFER_ALLOC_UINT32(engine, ReplaySnapSection, 1, NULL,
                                     engine_len),
        VMSTATE_UINT32(parts_len, ReplaySnapSection),
        VMSTATE_VBUFFER_ALLOC_UINT32(parts, ReplaySnapSection, 1, NULL,
                                     parts_len),
        VMSTATE_END_OF_LIST()
    },
};

void replay_vmstate_init(void)
{
    Error *err = NULL;
    bool ok = true;

    vmstate_register(NULL, 0, &vmstate_qrr_replay, &section);
    if (replay_mode == REPLAY_MODE_PLAY) {
        engine_at_start = replay_engine_save();
    }
    if (!replay_state.snapshot) {
        return;
    }
    if (replay_mode == REPLAY_MODE_RECORD) {
        ok = save_snapshot(replay_state.snapshot, true, NULL, false, NULL,
                           &err);
    } else if (replay_mode == REPLAY_MODE_PLAY) {
        ok = load_snapshot(replay_state.snapshot, NULL, false, NULL, &err);
    }
    if (!ok) {
        error_prepend(&err, "rrsnapshot=%s: ", replay_state.snapshot);
        error_report_err(err);
        exit(1);
    }
}

bool replay_can_snapshot(void)
{
    /* a savevm snapshot cannot hold the queue's pointers */
    return replay_mode == REPLAY_MODE_NONE ||
           (!replay_participants_busy() && !replay_async_pending());
}

bool replay_load_snapshot_begin(Error **errp)
{
    switch (replay_mode) {
    case REPLAY_MODE_RECORD:
        error_setg(errp, "record/replay: loadvm is refused while recording: "
                   "a recording cannot go back in time (load the snapshot "
                   "in a replay of this recording instead)");
        return false;
    case REPLAY_MODE_PLAY:
        loading = true;
        section_loaded = false;
        replay_state.tt_abandoning = true;
        replay_state.tt_busy = true;
        gave_mutex = replay_mutex_give_away();
        return true;
    default:
        return true;
    }
}

/* Give the engine and the participants what the loaded section holds. */
static void section_apply(void)
{
    Error *err = NULL;

    replay_engine_restore(engine_loaded ? engine_loaded : engine_at_start);
    if (!replay_participants_deserialize(parts_loaded->data,
                                         parts_loaded->len, &err)) {
        /* the devices are loaded: the machine is not the replay's */
        replay_fatal("record/replay: loadvm: %s", error_get_pretty(err));
    }
}

static void section_loaded_free(void)
{
    replay_engine_free(engine_loaded);
    engine_loaded = NULL;
    if (parts_loaded) {
        g_byte_array_unref(parts_loaded);
        parts_loaded = NULL;
    }
}

void replay_load_snapshot_end(bool loaded)
{
    if (replay_mode != REPLAY_MODE_PLAY) {
        return;
    }
    if (gave_mutex) {
        replay_mutex_take_back();
        gave_mutex = false;
    }
    loading = false;
    replay_state.tt_abandoning = false;
    replay_state.tt_busy = false;
    if (loaded && !section_loaded) {
        replay_fatal("record/replay: loadvm: the snapshot holds no "
                     "record/replay state (it was taken without -icount "
                     "rr=); the replay cannot go on from it");
    }
    if (loaded) {
        section_apply();
        replay_set_break(-1, 0, RUN_STATE_PAUSED);
        replay_tt_machine_loaded();
    }
    section_loaded_free();
}
