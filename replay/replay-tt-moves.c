/*
 * qrr: time travel: the moves (seek, reverse step, reverse continue)
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every move (replay-seek, gdb's reverse-stepi and reverse-continue)
 * restores the latest snapshot at or before the target and runs forward
 * to the target's position with the engine's break position, where the
 * replay freezes (see replay_break_reached()).  While moving, gdb's
 * breakpoints and watchpoints do not stop the machine
 * (replay_running_debug()): reverse-continue runs each window between two
 * snapshots once, noting where they hit (replay_breakpoint()), then goes
 * to the last hit.  Restores and the intermediate steps of a move are
 * made by the vCPU thread between two slices (replay_tt_vcpu_work()),
 * without stopping the machine, so gdb sees one stop.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-replay.h"
#include "qemu/main-loop.h"
#include "exec/breakpoint.h"
#include "exec/gdbstub.h"
#include "system/cpus.h"
#include "system/replay.h"
#include "system/runstate.h"
#include "hw/core/cpu.h"
#include "replay-core.h"
#include "replay-tt.h"
#include "trace.h"

typedef enum TTOp {
    TT_OP_NONE,
    TT_OP_SEEK,                 /* run to the break, then stop */
    TT_OP_SEARCH,               /* run a window noting debug hits */
} TTOp;

typedef struct TTHit {
    ReplayPos pos;
    bool watch;
    int cpu;                    /* cpu_index of the vCPU that hit; -1 */
} TTHit;

static struct {
    TTOp op;
    guint window;               /* SEARCH: the snapshot searched from */
    ReplayPos window_end;       /* SEARCH: where the window ends */
    GArray *hits;               /* TTHit in the window, by position */
    TTHit landing;              /* the hit a search lands on */
    const char *stop_reason;    /* for gdb's next stop reply */
    /* work for the vCPU thread (see replay_tt_vcpu_work()) */
    bool step_pending;          /* take the next step of the move */
    /* replay_state.tt_restore_pending: restore snapshot restore_k, */
    guint restore_k;            /* then break at brk */
    ReplayPos brk;
    int brk_runstate;
    int64_t op_start_ns;
    int64_t last_op_ns;         /* how long the last move took */
} mv;

/* A search walks the snapshots by index: the store takes none. */
static void mv_set_op(TTOp op)
{
    mv.op = op;
    tt_hold_snapshots(op == TT_OP_SEARCH);
}

static void tt_noop(CPUState *cpu, run_on_cpu_data data)
{
}

/*
 * Break at @target, after restoring snapshot @k if @k >= 0.  Restoring
 * is work for the vCPU thread: it runs device post_load hooks, which may
 * run_on_cpu(); so the main thread only asks for it, and makes sure that
 * a vCPU asleep in a halt wakes up to do it.
 */
static void tt_request(int k, ReplayPos target, int runstate)
{
    replay_set_break(target.icount, target.consumed, runstate);
    if (k < 0) {
        return;
    }
    replay_state.tt_restore_pending = true;
    mv.restore_k = k;
    mv.brk = target;
    mv.brk_runstate = runstate;
    if (first_cpu && !qemu_cpu_is_self(first_cpu)) {
        async_run_on_cpu(first_cpu, tt_noop, RUN_ON_CPU_NULL);
    }
}

/*
 * Go to @target: restore the latest snapshot at or before it, unless
 * running forward from here is shorter, and break there.
 */
static void tt_goto(ReplayPos target, int runstate)
{
    ReplayPos now = replay_position(), from;
    int k = tt_find(&target, false);

    if (k >= 0) {
        k = tt_restorable(k);
    }
    trace_replay_tt_goto("goto", target.icount, target.consumed);
    from = k >= 0 ? tt_pos(k) : now;
    if (k >= 0 && !(replay_pos_cmp(&target, &now) >= 0 &&
                    replay_pos_cmp(&from, &now) <= 0)) {
        tt_request(k, target, runstate);
    } else {
        tt_request(-1, target, runstate);
    }
}

static void tt_begin_op(TTOp op)
{
    mv.op = op;
    mv.landing.watch = false;
    mv.landing.cpu = -1;
    mv.stop_reason = NULL;
    mv.op_start_ns = get_clock();
}

/* Search the window from snapshot @w to @end for debug hits. */
static void tt_search(guint w, ReplayPos end)
{
    w = tt_restorable(w);
    mv_set_op(TT_OP_SEARCH);
    mv.window = w;
    mv.window_end = end;
    if (!mv.hits) {
        mv.hits = g_array_new(false, false, sizeof(TTHit));
    }
    g_array_set_size(mv.hits, 0);
    trace_replay_tt_search(tt_pos(w).icount, end.icount);
    tt_request(w, end, RUN_STATE_DEBUG);
}

/* The next step of a move, when the replay reached the break position. */
static void tt_step(void)
{
    ReplayPos w;

    switch (mv.op) {
    case TT_OP_SEARCH:
        w = tt_pos(mv.window);
        if (mv.hits->len) {
            mv.landing = g_array_index(mv.hits, TTHit, mv.hits->len - 1);
            mv_set_op(TT_OP_SEEK);
            tt_request(mv.window, mv.landing.pos, RUN_STATE_DEBUG);
        } else if (mv.window == 0) {
            /* nothing back to the start of history: stop there */
            mv_set_op(TT_OP_SEEK);
            mv.stop_reason = "begin";
            tt_request(0, w, RUN_STATE_DEBUG);
        } else {
            tt_search(mv.window - 1, w);
        }
        break;
    default:
        break;
    }
}

bool replay_tt_restore_pending(void)
{
    return replay_state.tt_restore_pending;
}

/*
 * The vCPU thread, between slices, with the replay mutex held: carry out
 * what the main thread or the break position asked for.
 */
void replay_tt_vcpu_work(void)
{
    bool locked;

    if ((!mv.step_pending && !replay_state.tt_restore_pending) ||
        !qemu_in_vcpu_thread()) {
        return;
    }
    locked = bql_locked();
    if (!locked) {
        bql_lock();
    }
    if (mv.step_pending) {
        mv.step_pending = false;
        tt_step();
    }
    if (replay_state.tt_restore_pending) {
        replay_state.tt_restore_pending = false;
        tt_restore(mv.restore_k);
        /* unfreeze if the old position happened to match */
        replay_set_break(mv.brk.icount, mv.brk.consumed, mv.brk_runstate);
    }
    if (!locked) {
        bql_unlock();
    }
}

/*
 * Landing after the instruction that made a watchpoint's access: report
 * the watchpoint, as a forward run stopping there does.  The hit did not
 * say which watchpoint it was: the first of gdb's is taken.  gdb then
 * steps back over the access itself on targets whose watchpoints stop
 * before the access (AArch64).
 */
static void tt_report_watchpoint(void)
{
    CPUState *cpu = first_cpu;
    CPUWatchpoint *wp;

    mv.landing.watch = false;
    QTAILQ_FOREACH(wp, &cpu->watchpoints, entry) {
        if (wp->flags & BP_GDB) {
            wp->hitaddr = wp->vaddr;
            cpu->watchpoint_hit = wp;
            return;
        }
    }
}

bool replay_tt_break_reached(void)
{
    switch (mv.op) {
    case TT_OP_SEEK:
        if (mv.landing.cpu >= 0 && replay_state.gdb_attached &&
            qemu_get_cpu(mv.landing.cpu)) {
            /* gdb's stop reply names the vCPU that hit */
            gdb_set_stop_cpu(qemu_get_cpu(mv.landing.cpu));
        }
        if (mv.landing.watch) {
            tt_report_watchpoint();
        }
        return false;
    case TT_OP_SEARCH:
        mv.step_pending = true;
        if (first_cpu && !qemu_cpu_is_self(first_cpu)) {
            async_run_on_cpu(first_cpu, tt_noop, RUN_ON_CPU_NULL);
        }
        return true;
    default:
        return false;
    }
}

bool replay_tt_stopped(void)
{
    mv.step_pending = false;
    replay_state.tt_restore_pending = false;
    if (mv.op == TT_OP_NONE) {
        return false;
    }
    mv.last_op_ns = get_clock() - mv.op_start_ns;
    mv_set_op(TT_OP_NONE);
    return true;
}

bool replay_tt_searching(void)
{
    return mv.op == TT_OP_SEEK || mv.op == TT_OP_SEARCH;
}

/*
 * A breakpoint (from cpu_handle_guest_debug(), between slices) or a
 * watchpoint (from cpu_check_watchpoint(), while the accessing
 * instruction runs and is already counted) hit while moving.
 */
void replay_tt_note_hit(void)
{
    CPUState *cpu = current_cpu;
    TTHit h;

    if (mv.op != TT_OP_SEARCH || !cpu) {
        return;
    }
    h.pos = replay_position();
    h.watch = qatomic_read(&cpu->running);
    h.cpu = cpu->cpu_index;
    if (replay_pos_cmp(&h.pos, &mv.window_end) >= 0) {
        /*
         * A watchpoint hit by the instruction that ends the window: a
         * forward run stops right after it, where the window ends, so it
         * is not before the end
         */
        return;
    }
    trace_replay_tt_hit(h.pos.icount, h.pos.consumed, h.watch);
    if (mv.hits->len) {
        TTHit *last = &g_array_index(mv.hits, TTHit, mv.hits->len - 1);

        if (!replay_pos_cmp(&last->pos, &h.pos) && last->watch == h.watch) {
            return;
        }
    }
    g_array_append_val(mv.hits, h);
}

const char *replay_gdb_stop_reason(void)
{
    const char *r = mv.stop_reason;

    mv.stop_reason = NULL;
    return r;
}

void replay_tt_set_stop_reason(const char *reason)
{
    mv.stop_reason = reason;
}

/* ---- gdb ---- */

/*
 * gdb's moves go back from where the vCPU is (replay_vcpu_position()),
 * not from the position now: events that the main loop consumed at this
 * icount since the machine stopped changed nothing that gdb sees, and a
 * reverse-stepi that only undid them would not move.
 */
bool replay_reverse_step(CPUState *cpu)
{
    ReplayPos now = replay_position(), here = replay_vcpu_position(), target;
    ReplayPos first;
    uint64_t last;

    if (replay_mode != REPLAY_MODE_PLAY || !tt_usable(NULL)) {
        return false;
    }
    first = tt_pos(0);
    tt_begin_op(TT_OP_SEEK);
    /* with one vCPU, its last instruction is the machine's */
    last = cpu && CPU_NEXT(first_cpu) ? replay_vcpu_last_insn(cpu->cpu_index)
                                      : here.icount;
    if (cpu && CPU_NEXT(first_cpu)) {
        mv.landing.cpu = cpu->cpu_index;    /* the stop reply names it */
    }
    if (last != here.icount) {
        /*
         * Another vCPU ran since @cpu's last instruction: go back to
         * right before that one, all events at its icount consumed (the
         * switch to @cpu among them)
         */
        target = last ? (ReplayPos) { last - 1, UINT64_MAX } : first;
    } else if (!replay_vcpu_event_start(&target)) {
        /* else undo the interrupt or exception taken here, if any */
        if (here.icount > 0) {
            /* before the last instruction, all at the icount before done */
            target = (ReplayPos) { here.icount - 1, UINT64_MAX };
        } else {
            target = now;
        }
    }
    if (replay_pos_cmp(&target, &first) < 0 ||
        replay_pos_cmp(&here, &first) <= 0) {
        target = replay_pos_cmp(&here, &first) <= 0 ? now : first;
        mv.stop_reason = "begin";
    }
    tt_goto(target, RUN_STATE_DEBUG);
    return true;
}

bool replay_reverse_continue(void)
{
    ReplayPos now = replay_position(), here = replay_vcpu_position();
    int w;

    if (replay_mode != REPLAY_MODE_PLAY || !tt_usable(NULL)) {
        return false;
    }
    /* a hit at the vCPU's position is the stop we are at */
    w = tt_find(&here, true);
    if (w < 0) {
        tt_begin_op(TT_OP_SEEK);
        mv.stop_reason = "begin";
        tt_request(-1, now, RUN_STATE_DEBUG);
        return true;
    }
    tt_begin_op(TT_OP_SEARCH);
    tt_search(w, here);
    return true;
}

/* ---- monitor ---- */

void replay_tt_seek(int64_t icount, Error **errp)
{
    ReplayPos target = { icount, 0 };
    ReplayPos now = replay_position();
    bool running = runstate_is_running();

    if (tt_find(&target, false) < 0 && replay_pos_cmp(&target, &now) < 0) {
        /* behind us, and no snapshot at or before it */
        if (!tt_usable(errp)) {
            return;
        }
        if (target.icount != tt_pos(0).icount) {
            error_setg(errp, "replay-seek: icount %" PRId64 " is before the "
                       "start of the time-travel history (icount %" PRIu64
                       ")", icount, tt_pos(0).icount);
            return;
        }
        target = tt_pos(0);
    }
    tt_begin_op(TT_OP_SEEK);
    tt_goto(target, RUN_STATE_PAUSED);
    if (!running) {
        vm_start();
    }
}

ReplaySnapshots *qmp_query_replay_snapshots(Error **errp)
{
    ReplaySnapshots *r;

    if (replay_mode != REPLAY_MODE_PLAY) {
        error_setg(errp, "query-replay-snapshots works only while replaying "
                   "(-icount rr=replay)");
        return NULL;
    }
    r = g_new0(ReplaySnapshots, 1);
    tt_describe(r);
    r->last_move_us = mv.last_op_ns / 1000;
    return r;
}
