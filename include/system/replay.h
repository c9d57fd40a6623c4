/*
 * qrr: deterministic record/replay, the interface for the rest of QEMU
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * With "-icount shift=...,rr=record,rrfile=F" every non-deterministic input
 * of the machine is written to F together with the instruction count at
 * which it happened; with rr=replay the inputs are taken back from F at the
 * same instruction counts.  With rr off (replay_mode == REPLAY_MODE_NONE)
 * every function here passes straight through: it does nothing, returns
 * "go ahead", or does the plain thing (schedules the bottom half, delivers
 * the input).
 *
 * Rules for callers:
 *
 *  - Call the hooks with the replay mutex held (the vCPU thread holds it
 *    while it runs; the main loop holds it except while it polls).  Never
 *    take the replay mutex while holding the BQL.
 *
 *  - A hook that returns bool answers "may this happen now?".  In replay
 *    the answer is yes only at the position where the recording did it, so
 *    a caller must skip the action when told no, and try again later:
 *
 *        if (!replay_checkpoint(CHECKPOINT_CLOCK_HOST)) {
 *            return;               // right: not yet, the log says later
 *        }
 *        run_host_timers();
 *
 *        replay_checkpoint(CHECKPOINT_CLOCK_HOST);
 *        run_host_timers();        // wrong: runs at a time replay can't match
 *
 *  - Work that affects the guest and is triggered from outside it (a bottom
 *    half, a block completion, a packet, a key) goes through the
 *    replay_*_event() functions so that it reaches the guest at a recorded
 *    instruction count, never directly.
 */

#ifndef SYSTEM_REPLAY_H
#define SYSTEM_REPLAY_H

#ifdef CONFIG_USER_ONLY
#error Cannot include this header from user emulation
#endif

#include "exec/replay-core.h"
#include "qapi/qapi-types-misc.h"
#include "qapi/qapi-types-run-state.h"
#include "qapi/qapi-types-ui.h"
#include "block/aio.h"

/* Clocks whose reads are recorded. */
typedef enum ReplayClockKind {
    REPLAY_CLOCK_HOST,          /* QEMU_CLOCK_HOST */
    REPLAY_CLOCK_VIRTUAL_RT,    /* QEMU_CLOCK_VIRTUAL_RT */
    REPLAY_CLOCK_COUNT
} ReplayClockKind;

/*
 * Places in QEMU's loops where work that changes the guest may happen only
 * where it happened in the recording.  The value is the checkpoint's code
 * in the log (replay-event.c): fixed, a new one takes the next free code.
 */
typedef enum ReplayCheckpoint {
    /* icount's clock warp, started and accounted in the main loop */
    CHECKPOINT_CLOCK_WARP_START = 0,
    CHECKPOINT_CLOCK_WARP_ACCOUNT = 1,
    /* run-state requests that the main loop serves */
    CHECKPOINT_RESET_REQUESTED = 2,
    CHECKPOINT_SUSPEND_REQUESTED = 3,
    CHECKPOINT_WAKEUP_REQUESTED = 9,
    /* expired timers of each replayed clock, run by the timer lists */
    CHECKPOINT_CLOCK_VIRTUAL = 4,
    CHECKPOINT_CLOCK_HOST = 5,
    CHECKPOINT_CLOCK_VIRTUAL_RT = 6,
    /* machine creation done, and each machine reset */
    CHECKPOINT_INIT = 7,
    CHECKPOINT_RESET = 8,
    CHECKPOINT_COUNT = 10
} ReplayCheckpoint;

typedef struct ReplayNetState ReplayNetState;

/* ---- locking and instruction counting ---- */

void replay_mutex_lock(void);
void replay_mutex_unlock(void);

/* Instructions executed so far (the raw icount). */
uint64_t replay_get_current_icount(void);

/*
 * Replay: how many instructions the vCPU may execute before it must stop
 * for the next recorded event (0 when that event is due now).
 */
int replay_get_instructions(void);

/* Called by the vCPU after each execution slice. */
void replay_account_executed_instructions(void);

/*
 * The round-robin vCPU thread is about to run a slice of @cpu: may it?
 * Call it with the replay mutex held, before the slice's budget is set.
 * Record: yes (a switch to another vCPU than the last one is logged),
 * unless @cpu is halted with nothing to do.  Replay: yes only where the
 * recording ran @cpu.  When told no, run nothing on @cpu and go on to the
 * next vCPU; the turn comes back.  @cap bounds the slice's instructions
 * (INT64_MAX: no bound of the replay's own):
 *
 *     if (!replay_vcpu_turn(cpu, &cap)) {
 *         return false;        // right: another vCPU's turn
 *     }
 *     cpu->icount_budget = MIN(limit, cap);
 *
 *     replay_vcpu_turn(cpu, &cap);
 *     cpu_exec(cpu);           // wrong: in replay, maybe not its turn
 */
bool replay_vcpu_turn(CPUState *cpu, int64_t *cap);

/*
 * Replay: the cpu_index of the vCPU whose turn it is (the one the log
 * switches to now, if it does), where the round-robin loop should start
 * its next pass; -1 when not replaying.  With the replay mutex held.
 * Without it, a vCPU that other threads keep busy with queued work or
 * exit requests could stop every pass before the loop reaches the vCPU
 * whose turn it is.
 */
int replay_vcpu_next(void);

/* ---- clocks ---- */

/*
 * Clock reads that can change the guest are logged; the others are not.
 * A read changes the guest when it is made by the vCPU thread, while the
 * machine is being built, or by the main loop inside an ordered step (a
 * checkpoint that matched, or delivery of an asynchronous event): those
 * happen at the same icount and in the same order in record and replay,
 * and replay gives them the recorded values.  Any other read only sizes a
 * main-loop timeout, so it sees the host's clock in both modes.
 */
int64_t replay_save_clock(ReplayClockKind kind, int64_t clock,
                          int64_t raw_icount);
int64_t replay_read_clock(ReplayClockKind kind, int64_t clock,
                          int64_t raw_icount);

/*
 * End the ordered step opened by the last matched checkpoint of this
 * thread (called where the code that the checkpoint guards ends).
 */
void replay_checkpoint_end(void);

/* Read a clock through the log: recorded in record, taken from it in replay */
#define REPLAY_CLOCK(clock, value)                                      \
    (!icount_enabled() ? (value) :                                      \
     replay_mode == REPLAY_MODE_PLAY                                    \
        ? replay_read_clock((clock), (value), icount_get_raw())         \
        : replay_mode == REPLAY_MODE_RECORD                             \
            ? replay_save_clock((clock), (value), icount_get_raw())     \
            : (value))

/* The same, for callers that hold timers_state.vm_clock_lock */
#define REPLAY_CLOCK_LOCKED(clock, value)                               \
    (!icount_enabled() ? (value) :                                      \
     replay_mode == REPLAY_MODE_PLAY                                    \
        ? replay_read_clock((clock), (value), icount_get_raw_locked())  \
        : replay_mode == REPLAY_MODE_RECORD                             \
            ? replay_save_clock((clock), (value), icount_get_raw_locked()) \
            : (value))

/* ---- machine events ---- */

/*
 * A shutdown was requested.  Returns false when the replay holds it back:
 * a replay that somebody steers (gdb attached, a seek or break on its way)
 * stops at the recorded shutdown instead of quitting, so that its history
 * stays at hand.  Otherwise (always when not replaying) the shutdown goes
 * on.
 */
bool replay_shutdown_request(ShutdownCause cause);

/*
 * A request from the host that changes the guest (the monitor's
 * system_reset, a system_wakeup): @what names it.  A replay refuses it
 * (true, with @errp set, or a warning without @errp) unless the log itself
 * makes it, at the instruction count where the recording got it.
 * Otherwise (always when not replaying) false: the request goes on.
 */
bool replay_refuse_request(const char *what, Error **errp);

/*
 * Record: note that @checkpoint was passed; returns true.
 * Replay: true only if the recording passed @checkpoint here.
 */
bool replay_checkpoint(ReplayCheckpoint checkpoint);

/* Replay: true when the vCPUs sleep but the next event, due now, is theirs. */
bool replay_has_event(void);

/*
 * @ts is being freed or de-initialised (timer_free(), timer_deinit()):
 * time travel's snapshots forget it.
 */
void replay_timer_gone(QEMUTimer *ts);

/* ---- asynchronous events ---- */

/*
 * Work that a device or the block layer defers to a bottom half runs at
 * a position that the host decides; under record/replay it runs where
 * the log says instead.  A caller hands the bottom half over rather than
 * scheduling it, and never waits for it itself:
 *
 *     replay_bh_schedule_event(s->bh);          // right
 *     qemu_bh_schedule(s->bh);                  // wrong: runs at once
 *
 *     if (replay_events_enabled()) {
 *         return;          // right: the log delivers the completions
 *     }
 *     AIO_WAIT_WHILE(...); // wrong under record/replay: waits for ever
 *
 * Without record/replay both behave as the plain calls.
 */
void replay_bh_schedule_event(QEMUBH *bh);
void replay_bh_schedule_oneshot_event(AioContext *ctx,
                                      QEMUBHFunc *cb, void *opaque);
/* Deferred work is the log's to deliver (a drain must not wait for it). */
bool replay_events_enabled(void);
/*
 * qemu_bh_delete() tells: a time-travel snapshot that holds @bh queued
 * can no longer be restored.
 */
void replay_bh_gone(QEMUBH *bh);
/* The main loop: run the deferred work due now (record: all queued). */
void replay_async_events(void);
/* loadvm: the machine changes under the queue; drop what it holds. */
void replay_flush_events(void);

/* ---- keyboard and mouse, for ui/input.c ---- */

void replay_input_event(QemuConsole *src, InputEvent *evt);
void replay_input_sync_event(void);

/*
 * Block completions: a disk filter takes an id for each request that the
 * guest submits (in submission order; 0 when events are off), and parks
 * the request's completion with replay_block_event() until the replay
 * delivers it.
 */
uint64_t replay_block_next_id(void);
void replay_block_event(QEMUBH *bh, uint64_t id);
/*
 * The read of request @id (from replay_block_next_id()) returned data
 * whose CRC-32 is @crc: @bytes at @offset of drive @drive.  Record logs
 * it with the completion; replay stops, naming the drive and the offset,
 * if it differs from the recording's (the image changed).
 */
void replay_block_read_done(uint64_t id, uint32_t crc, const char *drive,
                            int64_t offset, int64_t bytes);

/*
 * The filters that make a drive and a netdev replayable make themselves
 * known, by the block driver's format name and the QOM type name that
 * the user gives on the command line: record and replay refuse a drive or
 * a NIC's netdev without them at start-up, naming the option to add.
 */
void replay_register_block_filter(const char *format_name);
void replay_register_net_filter(const char *type_name);

/* ---- character devices ---- */

void replay_register_char_driver(struct Chardev *chr);
/* Record: input that a backend received for its frontend */
void replay_chr_be_write(struct Chardev *s, const uint8_t *buf, int len);
void replay_char_write_event_save(int res, int offset);
/*
 * Replay: the result and the bytes written (*@offset) of a write of @len
 * bytes; a log whose values a write of @len bytes cannot have stops the
 * replay with an error.
 */
void replay_char_write_event_load(int *res, int *offset, int len);
/*
 * Replay: the result of qemu_chr_fe_read_all() into @buf, of @len bytes;
 * a log whose bytes do not fit stops the replay with an error.
 */
int replay_char_read_all_load(uint8_t *buf, int len);
void replay_char_read_all_save_error(int res);
void replay_char_read_all_save_buf(uint8_t *buf, int offset);

/* ---- entropy sources ---- */

/*
 * A read of at most @size bytes into @buf from @fd, a host entropy source
 * opened O_NONBLOCK (rng-random's file), for a request of the guest.
 * Returns what read() returns, with -errno for -1.  Record: reads @fd and
 * logs the result (the bytes read, or -EAGAIN) with the bytes; replay:
 * takes them from the log and never reads @fd (a log whose result a read
 * of @size bytes cannot have stops the replay with an error); with
 * record/replay off: read().  Call it where the guest gets the bytes, in a
 * bottom half scheduled with replay_bh_schedule_event(), never from a
 * host fd handler, which runs whenever the host has data:
 *
 *     static void rng_bh(void *opaque)      // replay_bh_schedule_event()
 *     {
 *         n = replay_read_entropy(s->fd, req->data, req->size);  // right
 *
 *     static void fd_readable(void *opaque) // qemu_set_fd_handler()
 *     {
 *         n = replay_read_entropy(s->fd, req->data, req->size);  // wrong
 */
ssize_t replay_read_entropy(int fd, void *buf, size_t size);

/* ---- network, for the filter-replay object ---- */

ReplayNetState *replay_register_net(NetFilterState *nfs);
void replay_unregister_net(ReplayNetState *rns);
void replay_net_packet_event(ReplayNetState *rns, unsigned flags,
                             const struct iovec *iov, int iovcnt);

/* ---- audio ---- */

void replay_audio_out(size_t *played);
void replay_audio_in(size_t *recorded, void *samples, size_t *wpos,
                     size_t size);

/* ---- debugging ---- */

/*
 * The "replaylog" stop reason for gdb's next stop reply ("begin" at the
 * start of the replay's history, "end" at the end of the log), or NULL.
 * Reading it clears it.
 */
const char *replay_gdb_stop_reason(void);

/* ---- participants ---- */

/*
 * State outside the engine that a replay position includes (a disk
 * filter's overlay of writes, the guest's pending timers, the queue of
 * asynchronous events) belongs to a participant.  The engine knows its
 * participants only through this table; it calls them in the order they
 * registered:
 *
 *  - busy: work is in flight that no snapshot can hold (a request
 *    between submission and completion): take no snapshot now.
 *  - usable: whether a copy that save made can still be loaded (what it
 *    refers to may be gone since); a snapshot with a copy that cannot is
 *    not restored.  NULL: always.
 *  - settle: leave the current position before a restore: finish the
 *    work in flight for it.
 *  - save/load/free: a copy of the state for a time-travel snapshot,
 *    taken between two slices, and put back after the device state.
 *    save adds the copy's size in bytes to *@bytes.
 *  - size: bytes a copy holds now besides what save counted, for copies
 *    that share their data (a block that two snapshots hold is counted
 *    in at most one of them).  NULL: none.
 *  - merge: snapshot @older is merged away into @newer, the next one;
 *    what @older alone counted in size and @newer holds too goes to
 *    @newer, before @older is freed.  NULL: nothing to move.
 *  - serialize/deserialize: the state as bytes for a savevm snapshot
 *    (system/replay-bytes.h), and back; deserialize reads all of it or
 *    fails with an error that says what does not match.
 *
 * Every member but @name may be NULL.  Register once, before the machine
 * starts (replay_start()); a participant cannot unregister, so @opaque
 * must stay valid:
 *
 *     if (replay_mode != REPLAY_MODE_NONE && !registered) {
 *         replay_register_participant(&blkreplay_participant, NULL);
 *         registered = true;       // right: at the first drive's open
 *     }
 *
 *     replay_register_participant(&p, s);
 *     ...
 *     g_free(s);                   // wrong: the engine still calls p
 */
typedef struct ReplayParticipant {
    const char *name;           /* in errors and in savevm snapshots */
    bool (*busy)(void *opaque);
    bool (*usable)(void *opaque, const void *state);
    void (*settle)(void *opaque);
    void *(*save)(void *opaque, size_t *bytes);
    void (*load)(void *opaque, const void *state);
    void (*free)(void *state);
    size_t (*size)(const void *state);
    void (*merge)(void *older, void *newer);
    void (*serialize)(void *opaque, GByteArray *out);
    bool (*deserialize)(void *opaque, const uint8_t *buf, size_t len,
                        Error **errp);
} ReplayParticipant;

void replay_register_participant(const ReplayParticipant *p, void *opaque);

/* ---- snapshots ---- */

/* Save (record) or load (replay) the rrsnapshot= snapshot, if any. */
void replay_vmstate_init(void);
/* Whether a snapshot may be taken now (no events in flight). */
bool replay_can_snapshot(void);
/*
 * loadvm: begin says whether the snapshot may be loaded now (in record,
 * never: a recording cannot go back in time), and makes what the reset
 * and the load do outside the recording; end, after the load, checks
 * that the snapshot took the replay to a position of its log.
 */
bool replay_load_snapshot_begin(Error **errp);
void replay_load_snapshot_end(bool loaded);
/*
 * True while time travel loads a snapshot's device state.  The restore
 * wrote guest RAM first and dropped the translated code of each page it
 * wrote, so a loader need not flush the whole translation cache:
 *
 *     if (!replay_restoring_snapshot()) {
 *         tb_flush(cpu);           // right: loadvm wrote RAM anywhere
 *     }
 *
 *     if (replay_restoring_snapshot()) {
 *         return 0;                // wrong: the rest of the load is needed
 *     }
 */
bool replay_restoring_snapshot(void);
/*
 * True while the machine reset is the first step of a time-travel
 * restore.  The restore then writes back every RAM page that differs
 * from the snapshot, so a reset handler that fills guest RAM (ROM blobs,
 * -kernel images loaded into RAM) need not: the write would only dirty
 * the pages, make the restore write them again, and drop the code that
 * TCG translated from them.  State outside RAM is still reset:
 *
 *     if (replay_reset_keeps_ram()) {
 *         return;                  // right: only fills guest RAM
 *     }
 *
 *     if (replay_reset_keeps_ram()) {
 *         return;                  // wrong: the device's registers too
 *     }
 *     s->ctrl = 0;
 *     memcpy(ram, s->image, s->size);
 */
bool replay_reset_keeps_ram(void);

#endif
