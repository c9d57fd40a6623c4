/*
 * qrr: the rrsnapshot= start-up snapshot
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * With rrsnapshot=NAME the recording saves snapshot NAME (in the qcow2
 * images of the machine) right after the machine is created, and the replay
 * loads it at the same point, so the two start from the same state.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "migration/snapshot.h"
#include "system/replay.h"
#include "replay-internal.h"

void replay_vmstate_init(void)
{
    Error *err = NULL;
    bool ok = true;

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
    return replay_mode == REPLAY_MODE_NONE || !replay_async_pending();
}
