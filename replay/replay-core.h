/*
 * qrr: the engine's ground floor (replay-core.c): its state, shared by the
 * engine's modules, and the interfaces of those modules
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef REPLAY_CORE_H
#define REPLAY_CORE_H

#include "replay-event.h"
#include "replay-log.h"

/*
 * Rules of the engine:
 *
 *  - Every hook that records or consumes an event runs with the replay
 *    mutex held (replay_mutex_lock()), by the vCPU thread between or inside
 *    its execution slices, or by the main loop.  So the instruction count
 *    is stable while an event is handled.
 *
 *  - Recording appends each event with the icount at which it happened.
 *    There are no separate instruction-count events: the vCPU's progress
 *    is implied by the icounts of the events themselves.
 *
 *  - Replaying keeps the first unconsumed ordered event ("the head").  The
 *    vCPU is given exactly enough instructions to reach the head's icount;
 *    the hook that produced the event in the recording consumes it there.
 *    Value events wait in per-channel queues and are matched by icount.
 */

/* Value channels: where value events wait during replay. */
typedef enum ReplayChannel {
    REPLAY_CH_CLOCK_HOST,
    REPLAY_CH_CLOCK_VIRTUAL_RT,
    REPLAY_CH_RANDOM,
    REPLAY_CH_CHAR_WRITE,
    REPLAY_CH_CHAR_READ_ALL,
    REPLAY_CH_AUDIO_OUT,
    REPLAY_CH_AUDIO_IN,
    REPLAY_CH_SYNC,
    REPLAY_CH_BLOCK_DATA,
    REPLAY_CH__MAX
} ReplayChannel;

/* An interrupt or exception that the vCPU took, for reverse-stepi. */
typedef struct ReplayVcpuEvent {
    int64_t icount;             /* where; -1: none yet */
    uint64_t start;             /* events consumed before it */
    uint64_t end;               /* events consumed after it */
    /*
     * Raised by an instruction that the icount counts (x86 int3 and ud2,
     * AArch64 svc, brk and udf: the translated code raises them), not by
     * one that faulted and was undone, nor between two instructions
     */
    bool counted;
} ReplayVcpuEvent;

/* Most vCPUs a machine may have for record/replay. */
#define REPLAY_MAX_VCPUS 64

typedef struct ReplayState {
    char *filename;
    char *snapshot;             /* rrsnapshot= */
    char *icount_shift;         /* shift= as given, for the fingerprint */
    bool started;
    bool gdb_attached;
    uint64_t sync_interval;     /* rrsync=: vCPU events between syncs */
    uint64_t vcpu_events;       /* interrupts and exceptions so far */

    /* record */
    ReplayLogWriterOptions log_opts;    /* rrfsync= */
    ReplayLogWriter *writer;
    bool write_failed;

    /* replay */
    ReplayLogReader *reader;
    ReplayEvent head;           /* valid when have_head */
    bool have_head;
    bool log_exhausted;         /* the reader returned everything */
    GQueue pending;             /* decoded ordered events after the head */
    GQueue channel[REPLAY_CH__MAX];
    uint64_t decoded_icount;    /* icount of the last decoded event */
    uint64_t consumed;          /* ordered events consumed */
    const char *last_kind_name; /* kind of the last one consumed */
    uint64_t last_consumed_icount;  /* icount of the last event consumed */
    uint64_t consumed_at_icount;    /* events consumed before the first */
                                    /* one at last_consumed_icount */
    /* the last interrupt or exception that the vCPU took */
    ReplayVcpuEvent vcpu_event;
    uint64_t slice_icount;      /* where the vCPU's slice started */
    /* the vCPU schedule (replay-sched.c), record and replay */
    int sched_vcpu;             /* cpu_index of the vCPU that ran last */
    uint64_t sched_slice_start; /* icount where its current slice began */
    uint64_t vcpu_icount[REPLAY_MAX_VCPUS]; /* instructions per vCPU */
    /* per vCPU: the icount right after its last instruction; 0: none */
    uint64_t vcpu_last_insn[REPLAY_MAX_VCPUS];
    /*
     * The break position (see replay_break_reached()): the replay
     * freezes at instruction count break_icount once break_consumed
     * ordered events have been consumed, or once no event is due there
     * any more, and requests a stop in break_runstate.
     */
    int64_t break_icount;       /* -1: none */
    uint64_t break_consumed;    /* 0: on arrival; UINT64_MAX: when done */
    int break_runstate;         /* a RunState */
    bool frozen;                /* the break position is reached */
    /*
     * A time-travel snapshot is being saved or loaded: what devices do in
     * their pre_save and post_load is not part of the recording, so their
     * clock reads are not taken from the log (see replay_in_ordered_step)
     */
    bool tt_busy;
    /* time travel loads a snapshot's device state */
    bool tt_loading;
    /*
     * A snapshot is about to be restored: the work queued for the
     * position being left is run now and what it starts is not replayed
     * (see replay_async_abandon())
     */
    bool tt_abandoning;
    /*
     * Time travel waits for the vCPU thread to restore a snapshot:
     * nothing may happen before (see replay_tt_vcpu_work())
     */
    bool tt_restore_pending;
    bool break_notified;        /* the break position was acted upon */
    bool at_end;
    bool finished;              /* replay_finish() ran */
    int64_t shutdown_icount;    /* -1, or where the recorded shutdown was */
    /*
     * Read from the log's end when the replay opens it (not replay state:
     * a time-travel restore leaves them): the last shutdown request of
     * the recording, its icount (-1: none found) and ShutdownCause.
     */
    int64_t log_shutdown_icount;
    int log_shutdown_cause;

    /* asynchronous events waiting to be recorded or replayed */
    QemuMutex async_lock;
    GQueue async;
    uint64_t next_bh_id;
    uint64_t next_block_id;
    bool events_enabled;
} ReplayState;

extern ReplayState replay_state;

/*
 * A position in a replay: instructions executed and ordered events
 * consumed.  Several positions share an instruction count when events
 * happen there (an interrupt taken at icount N is after position
 * (N, c) and before (N, c + 1)).  Positions are ordered by icount, then
 * by events consumed.
 */
typedef struct ReplayPos {
    uint64_t icount;
    uint64_t consumed;
} ReplayPos;

static inline int replay_pos_cmp(const ReplayPos *a, const ReplayPos *b)
{
    if (a->icount != b->icount) {
        return a->icount < b->icount ? -1 : 1;
    }
    if (a->consumed != b->consumed) {
        return a->consumed < b->consumed ? -1 : 1;
    }
    return 0;
}

/* replay-core.c: the mode, the state, fatal errors, recording */
G_NORETURN void replay_fatal(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
uint64_t replay_icount(void);
void replay_record(ReplayEventKind kind, uint64_t icount, int64_t a0,
                   int64_t a1, const void *data, uint32_t len);
void replay_record_start(const char *fingerprint);

/* replay-lock.c: the replay mutex */
/* Create the mutex; the main thread holds it from here on. */
void replay_lock_init_held(void);
/* For a loadvm: the main thread lets the vCPU take the replay mutex. */
bool replay_mutex_give_away(void);
void replay_mutex_take_back(void);
/*
 * The vCPU, without the BQL, waits for the main loop: give the replay
 * mutex away until another thread consumes an event or @ms pass.
 */
void replay_wait_progress(unsigned ms);
/* An ordered event was consumed: wake the threads waiting for one. */
void replay_note_progress(void);
/*
 * True when a clock read of this thread can change the guest and is
 * therefore logged: in the vCPU thread, while the machine is built (before
 * the main loop first polls), and in the main loop's ordered steps.
 */
bool replay_in_ordered_step(void);
void replay_set_ordered_step(bool on);

/* replay-head.c: replaying, the head, the value channels, positions */
bool replay_event_arg_known(const ReplayEvent *ev, int64_t *limit);
/* The first unconsumed ordered event (an END made up for a cut log). */
ReplayEvent *replay_head(void);
/* The same, or NULL when not replaying (or finished). */
ReplayEvent *replay_head_peek(void);
/* The head if it is of @kind at the current icount, else NULL. */
ReplayEvent *replay_head_is(ReplayEventKind kind);
/* Drop the head and make the next ordered event the head. */
void replay_consume(void);
/* Oldest value event of @ch at @icount; stale ones are dropped. */
ReplayEvent *replay_value_take(ReplayChannel ch, uint64_t icount);
void replay_value_free(ReplayEvent *ev);
/* @h is an event that only the main loop consumes. */
bool replay_head_wants_main_loop(const ReplayEvent *h);
/* The next event may be due now: wake whoever consumes it. */
void replay_wake_consumer(void);
/* The vCPU thread is (not) inside an execution slice. */
void replay_set_vcpu_in_slice(bool on);
ReplayPos replay_position(void);
/* Events consumed before the first event at @icount (@icount: now). */
uint64_t replay_consumed_before(uint64_t icount);
/*
 * Where the vCPU is: replay_position() without the events at this icount
 * after its last interrupt or exception there (after its arrival, if it
 * took none).  Those change no vCPU state, and the main loop consumes its
 * own (its timers' checkpoints) even while the machine is stopped, so a
 * stop at (N, c) may be at (N, c + 1) by the time of the next command.
 */
ReplayPos replay_vcpu_position(void);
/*
 * If the vCPU took an interrupt or an exception at this icount, where a
 * forward stepi that took it started: before the event, or before the
 * instruction that raised it (ReplayVcpuEvent.counted).
 */
bool replay_vcpu_event_start(ReplayPos *start);
/* The vCPU is between slices and nothing is due at this icount. */
bool replay_quiet_point(void);
/* Set or clear (@icount -1) the break position; unfreezes the replay. */
void replay_set_break(int64_t icount, uint64_t consumed, int runstate);
/* True when the replay is frozen at the break position. */
bool replay_break_reached(void);

/* replay-vcpu.c: the vCPU's budget and events, stops, the watchdog */
/* At the break position: stop there, or let time travel step on. */
bool replay_break_notify(void);
void replay_vcpu_start(void);

/* replay-state.c: the engine's state, for time travel and savevm */
typedef struct ReplayEngineState ReplayEngineState;
ReplayEngineState *replay_engine_save(void);
void replay_engine_restore(const ReplayEngineState *s);
void replay_engine_free(ReplayEngineState *s);
size_t replay_engine_size(const ReplayEngineState *s);
/* The current state as bytes, for a savevm snapshot, and back. */
GByteArray *replay_engine_serialize(void);
ReplayEngineState *replay_engine_parse(const uint8_t *buf, size_t len,
                                       Error **errp);

/* replay-participants.c (see ReplayParticipant in system/replay.h) */
typedef struct ReplayParticipantsState ReplayParticipantsState;
bool replay_participants_busy(void);
/* Whether every participant can still load its copy in @s. */
bool replay_participants_usable(const ReplayParticipantsState *s);
/* The name of the first participant that is busy; NULL if none is. */
const char *replay_participant_busy(void);
void replay_participants_settle(void);
ReplayParticipantsState *replay_participants_save(void);
void replay_participants_load(const ReplayParticipantsState *s);
void replay_participants_free(ReplayParticipantsState *s);
/* Bytes @s holds now: what save counted and what each size op adds. */
size_t replay_participants_size(const ReplayParticipantsState *s);
/* @older is merged away into @newer (the merge ops), before its free. */
void replay_participants_merge(ReplayParticipantsState *older,
                               ReplayParticipantsState *newer);
GByteArray *replay_participants_serialize(void);
bool replay_participants_deserialize(const uint8_t *buf, size_t len,
                                     Error **errp);

/* replay-timers.c: the guest's pending timers, for time travel */
typedef struct ReplayTimers ReplayTimers;
ReplayTimers *replay_timers_save(void);
void replay_timers_restore(const ReplayTimers *rt);
void replay_timers_free(ReplayTimers *rt);
size_t replay_timers_size(const ReplayTimers *rt);
void replay_timers_register(void);

/* replay-sync.c: sync points, divergence detection */
void replay_sync_point(void);
void replay_sync_configure(QemuOpts *opts);
void replay_sync_from_log(void);
GByteArray *replay_sync_save(void);
void replay_sync_restore(GByteArray *regs);

/* replay-values.c: clocks, random numbers, character and audio data */
void replay_values_save(int64_t *now);
void replay_values_restore(const int64_t *now);

/* replay-timetravel.c */
void replay_tt_configure(QemuOpts *opts);
void replay_tt_start(void);
/* Keep the history from now on (the replay stopped). */
void replay_tt_arm(void);
/* vCPU thread, between slices: restores and steps of a move */
void replay_tt_vcpu_work(void);
/* A restore is waiting for the vCPU: nothing may happen before it. */
bool replay_tt_restore_pending(void);
/* vCPU thread, between slices: maybe take an automatic snapshot */
void replay_tt_slice_end(void);
/* The break position was reached; true if time travel handles it. */
bool replay_tt_break_reached(void);
/* A stop of the machine ends a time-travel move; true if one was on. */
bool replay_tt_stopped(void);
void replay_tt_seek(int64_t icount, Error **errp);
bool replay_tt_enabled(void);
/* The replaylog stop reason ("begin", "end") of gdb's next stop reply. */
void replay_tt_set_stop_reason(const char *reason);
/* Time travel is moving the replay: debug exceptions are only noted. */
bool replay_tt_searching(void);
/* loadvm replaced the machine: RAM may differ anywhere. */
void replay_tt_machine_loaded(void);
void replay_tt_note_hit(void);

/* replay-async.c: asynchronous events */
void replay_async_init(void);
/* From here on, deferred work goes through the log (replay_start()). */
void replay_enable_events(void);
void replay_async_clear(void);
bool replay_async_pending(void);
/* Run the callbacks waiting in the queue now, out of the log's order. */
void replay_async_abandon(void);
/* Replay: run the head if it is an asynchronous event. */
bool replay_async_run_head(void);
bool replay_async_ready(const ReplayEvent *h);

/* replay-sched.c: the vCPU schedule */
void replay_sched_configure(QemuOpts *opts);
/* -smp is one that record/replay supports (no hotplug, not too many). */
bool replay_sched_check(Error **errp);
/* Record: true with the seed when rrchaos= is on. */
bool replay_sched_chaos(uint64_t *seed);
/* The current vCPU's slice ended (after its instructions were counted). */
void replay_sched_slice_end(void);
/* Instructions that vCPU @cpu_index has executed so far. */
uint64_t replay_vcpu_icount(int cpu_index);
/* The icount right after vCPU @cpu_index's last instruction; 0: none. */
uint64_t replay_vcpu_last_insn(int cpu_index);

/* replay-blockdata.c: the data of disk reads, checked */
void replay_block_data_init(void);
/* Record: log the checksum of request @id's read, if it was one. */
void replay_block_data_record(uint64_t id);
/* Replay: compare it with the recording's; stop if they differ. */
void replay_block_data_check(uint64_t id);
/* Forget the reads whose completions were abandoned. */
void replay_block_data_clear(void);

/* replay-devices.c */
/* Every drive and every NIC's netdev goes through a replay filter. */
bool replay_check_devices(Error **errp);

/* replay-fingerprint.c */
char *replay_fingerprint(void);
bool replay_fingerprint_check(const char *recorded, const char *current,
                              Error **errp);
bool replay_fingerprint_check_target(const char *recorded, Error **errp);
char *replay_fingerprint_value(const char *text, const char *key);

#endif
