/*
 * qrr: the engine's state: saved with each time-travel snapshot, and as
 * bytes in a savevm snapshot
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "hw/core/cpu.h"
#include "system/replay.h"
#include "system/replay-bytes.h"
#include "replay-core.h"

struct ReplayEngineState {
    ReplayLogPos log;
    GQueue pending;
    GQueue channel[REPLAY_CH__MAX];
    uint64_t decoded_icount;
    uint64_t consumed;
    uint64_t last_consumed_icount;
    uint64_t consumed_at_icount;
    ReplayVcpuEvent vcpu_event;
    uint64_t vcpu_events;
    uint64_t next_bh_id;
    uint64_t next_block_id;
    const char *last_kind_name;
    bool log_exhausted;
    bool at_end;
    int64_t shutdown_icount;
    GByteArray *sync_regs;
    int64_t clock_now[REPLAY_CLOCK_COUNT];
    int sched_vcpu;
    uint64_t sched_slice_start;
    uint64_t vcpu_icount[REPLAY_MAX_VCPUS];
    uint64_t vcpu_last_insn[REPLAY_MAX_VCPUS];
    size_t bytes;
};

static ReplayEvent *event_copy(const ReplayEvent *ev, size_t *bytes)
{
    ReplayEvent *c = g_memdup2(ev, sizeof(*ev));

    c->data = ev->len ? g_memdup2(ev->data, ev->len) : NULL;
    *bytes += sizeof(*ev) + ev->len;
    return c;
}

static void queue_copy(GQueue *dst, const GQueue *src, size_t *bytes)
{
    GList *l;

    g_queue_init(dst);
    for (l = src->head; l; l = l->next) {
        g_queue_push_tail(dst, event_copy(l->data, bytes));
    }
}

static void queue_clear(GQueue *q)
{
    ReplayEvent *ev;

    while ((ev = g_queue_pop_head(q))) {
        replay_event_clear(ev);
        g_free(ev);
    }
}

ReplayEngineState *replay_engine_save(void)
{
    ReplayEngineState *s = g_new0(ReplayEngineState, 1);
    int i;

    s->bytes = sizeof(*s);
    replay_log_tell(replay_state.reader, &s->log);
    queue_copy(&s->pending, &replay_state.pending, &s->bytes);
    for (i = 0; i < REPLAY_CH__MAX; i++) {
        queue_copy(&s->channel[i], &replay_state.channel[i], &s->bytes);
    }
    s->decoded_icount = replay_state.decoded_icount;
    s->consumed = replay_state.consumed;
    s->last_consumed_icount = replay_state.last_consumed_icount;
    s->consumed_at_icount = replay_state.consumed_at_icount;
    s->vcpu_event = replay_state.vcpu_event;
    s->vcpu_events = replay_state.vcpu_events;
    s->next_bh_id = replay_state.next_bh_id;
    s->next_block_id = replay_state.next_block_id;
    s->last_kind_name = replay_state.last_kind_name;
    s->log_exhausted = replay_state.log_exhausted;
    s->at_end = replay_state.at_end;
    s->shutdown_icount = replay_state.shutdown_icount;
    s->sched_vcpu = replay_state.sched_vcpu;
    s->sched_slice_start = replay_state.sched_slice_start;
    memcpy(s->vcpu_icount, replay_state.vcpu_icount, sizeof(s->vcpu_icount));
    memcpy(s->vcpu_last_insn, replay_state.vcpu_last_insn,
           sizeof(s->vcpu_last_insn));
    s->sync_regs = replay_sync_save();
    s->bytes += s->sync_regs ? s->sync_regs->len : 0;
    replay_values_save(s->clock_now);
    return s;
}

void replay_engine_restore(const ReplayEngineState *s)
{
    Error *err = NULL;
    size_t bytes = 0;
    int i;

    if (!replay_log_seek(replay_state.reader, &s->log, &err)) {
        replay_fatal("record/replay: time travel: %s", error_get_pretty(err));
    }
    queue_clear(&replay_state.pending);
    queue_copy(&replay_state.pending, &s->pending, &bytes);
    for (i = 0; i < REPLAY_CH__MAX; i++) {
        queue_clear(&replay_state.channel[i]);
        queue_copy(&replay_state.channel[i], &s->channel[i],
                   &bytes);
    }
    replay_state.decoded_icount = s->decoded_icount;
    replay_state.consumed = s->consumed;
    replay_state.last_consumed_icount = s->last_consumed_icount;
    replay_state.consumed_at_icount = s->consumed_at_icount;
    replay_state.vcpu_event = s->vcpu_event;
    replay_state.vcpu_events = s->vcpu_events;
    replay_state.next_bh_id = s->next_bh_id;
    replay_state.next_block_id = s->next_block_id;
    replay_state.last_kind_name = s->last_kind_name;
    replay_state.log_exhausted = s->log_exhausted;
    replay_state.at_end = s->at_end;
    replay_state.shutdown_icount = s->shutdown_icount;
    replay_state.sched_vcpu = s->sched_vcpu;
    replay_state.sched_slice_start = s->sched_slice_start;
    memcpy(replay_state.vcpu_icount, s->vcpu_icount,
           sizeof(replay_state.vcpu_icount));
    memcpy(replay_state.vcpu_last_insn, s->vcpu_last_insn,
           sizeof(replay_state.vcpu_last_insn));
    replay_sync_restore(s->sync_regs);
    replay_values_restore(s->clock_now);
    replay_state.break_notified = false;
    replay_note_progress();
}

void replay_engine_free(ReplayEngineState *s)
{
    int i;

    if (!s) {
        return;
    }
    queue_clear(&s->pending);
    for (i = 0; i < REPLAY_CH__MAX; i++) {
        queue_clear(&s->channel[i]);
    }
    if (s->sync_regs) {
        g_byte_array_unref(s->sync_regs);
    }
    g_free(s);
}

size_t replay_engine_size(const ReplayEngineState *s)
{
    return s->bytes;
}

/*
 * ---- the engine's state in a savevm snapshot ----
 *
 * The state as bytes (system/replay-bytes.h): the log position (u32
 * chunk, u32 event), u64 decoded_icount, consumed, last_consumed_icount,
 * consumed_at_icount; the last vCPU event (i64 icount, u64 start, u64
 * end, u8 counted); u64 vcpu_events, next_bh_id, next_block_id; u8
 * log_exhausted, at_end; i64 shutdown_icount; u32 length of the sync
 * registers (UINT32_MAX: none) and their bytes; REPLAY_CLOCK_COUNT i64
 * clock values; i32 kind of the last event consumed (-1: none); then
 * the pending queue and the REPLAY_CH__MAX channels, each a u32 count of
 * events, each event u32 kind, u64 icount, 3 i64 arguments, u32 length
 * and its bytes; then the vCPU schedule: u32 cpu_index of the vCPU that
 * ran last, u64 where its slice began, REPLAY_MAX_VCPUS u64 counts of
 * instructions per vCPU and REPLAY_MAX_VCPUS u64 icounts right after each
 * vCPU's last instruction.
 */

static void put_queue(GByteArray *b, const GQueue *q)
{
    GList *l;
    int i;

    replay_put_u32(b, g_queue_get_length((GQueue *)q));
    for (l = q->head; l; l = l->next) {
        const ReplayEvent *ev = l->data;

        replay_put_u32(b, ev->kind);
        replay_put_u64(b, ev->icount);
        for (i = 0; i < 3; i++) {
            replay_put_u64(b, ev->arg[i]);
        }
        replay_put_blob(b, ev->data, ev->len);
    }
}

static void put_u64s(GByteArray *b, const uint64_t *v, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        replay_put_u64(b, v[i]);
    }
}

static int32_t kind_of_name(const char *name)
{
    int i;

    for (i = 0; i < REPLAY_EV__MAX && name; i++) {
        if (name == replay_event_name(i)) {
            return i;
        }
    }
    return -1;
}

GByteArray *replay_engine_serialize(void)
{
    ReplayEngineState *s = replay_engine_save();
    GByteArray *b = g_byte_array_new();
    int i;

    replay_put_u32(b, s->log.chunk);
    replay_put_u32(b, s->log.event);
    put_u64s(b, (uint64_t[]) { s->decoded_icount, s->consumed,
                               s->last_consumed_icount,
                               s->consumed_at_icount,
                               s->vcpu_event.icount, s->vcpu_event.start,
                               s->vcpu_event.end }, 7);
    replay_put_u8(b, s->vcpu_event.counted);
    put_u64s(b, (uint64_t[]) { s->vcpu_events, s->next_bh_id,
                               s->next_block_id }, 3);
    replay_put_u8(b, s->log_exhausted);
    replay_put_u8(b, s->at_end);
    replay_put_u64(b, s->shutdown_icount);
    if (s->sync_regs) {
        replay_put_blob(b, s->sync_regs->data, s->sync_regs->len);
    } else {
        replay_put_u32(b, UINT32_MAX);
    }
    put_u64s(b, (uint64_t *)s->clock_now, REPLAY_CLOCK_COUNT);
    replay_put_u32(b, kind_of_name(s->last_kind_name));
    put_queue(b, &s->pending);
    for (i = 0; i < REPLAY_CH__MAX; i++) {
        put_queue(b, &s->channel[i]);
    }
    replay_put_u32(b, s->sched_vcpu);
    replay_put_u64(b, s->sched_slice_start);
    put_u64s(b, s->vcpu_icount, REPLAY_MAX_VCPUS);
    put_u64s(b, s->vcpu_last_insn, REPLAY_MAX_VCPUS);
    replay_engine_free(s);
    return b;
}

static void get_queue(ReplayBytesReader *r, GQueue *q)
{
    uint32_t n = replay_get_u32(r);
    uint32_t k;
    int i;

    g_queue_init(q);
    for (k = 0; k < n && !r->bad; k++) {
        ReplayEvent *ev = g_new0(ReplayEvent, 1);
        const uint8_t *data;

        ev->kind = replay_get_u32(r);
        ev->icount = replay_get_u64(r);
        for (i = 0; i < 3; i++) {
            ev->arg[i] = replay_get_u64(r);
        }
        data = replay_get_blob(r, &ev->len);
        r->bad |= ev->kind >= REPLAY_EV__MAX ||
                  ev->len > REPLAY_EVENT_MAX_DATA;
        ev->data = ev->len && !r->bad ? g_memdup2(data, ev->len) : NULL;
        if (r->bad) {
            ev->len = 0;
        }
        g_queue_push_tail(q, ev);
    }
}

static void get_u64s(ReplayBytesReader *r, uint64_t *v, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        v[i] = replay_get_u64(r);
    }
}

static void get_sync_regs(ReplayBytesReader *r, ReplayEngineState *s)
{
    uint32_t n = replay_get_u32(r);
    const uint8_t *regs;

    if (n == UINT32_MAX) {
        return;
    }
    regs = replay_get_raw(r, n);
    s->sync_regs = g_byte_array_new();
    if (regs) {
        g_byte_array_append(s->sync_regs, regs, n);
    }
}

static void get_schedule(ReplayBytesReader *r, ReplayEngineState *s)
{
    s->sched_vcpu = replay_get_u32(r);
    r->bad |= s->sched_vcpu < 0 || s->sched_vcpu >= REPLAY_MAX_VCPUS ||
              !qemu_get_cpu(s->sched_vcpu);
    s->sched_slice_start = replay_get_u64(r);
    get_u64s(r, s->vcpu_icount, REPLAY_MAX_VCPUS);
    get_u64s(r, s->vcpu_last_insn, REPLAY_MAX_VCPUS);
}

ReplayEngineState *replay_engine_parse(const uint8_t *buf, size_t len,
                                       Error **errp)
{
    ReplayEngineState *s = g_new0(ReplayEngineState, 1);
    ReplayBytesReader r = replay_bytes_reader(buf, len);
    uint64_t v[7];
    int32_t kind;
    int i;

    s->log.chunk = replay_get_u32(&r);
    s->log.event = replay_get_u32(&r);
    get_u64s(&r, v, 7);
    s->decoded_icount = v[0];
    s->consumed = v[1];
    s->last_consumed_icount = v[2];
    s->consumed_at_icount = v[3];
    s->vcpu_event = (ReplayVcpuEvent) { .icount = v[4], .start = v[5],
                                        .end = v[6] };
    s->vcpu_event.counted = replay_get_u8(&r);
    get_u64s(&r, v, 3);
    s->vcpu_events = v[0];
    s->next_bh_id = v[1];
    s->next_block_id = v[2];
    s->log_exhausted = replay_get_u8(&r);
    s->at_end = replay_get_u8(&r);
    s->shutdown_icount = replay_get_u64(&r);
    get_sync_regs(&r, s);
    get_u64s(&r, (uint64_t *)s->clock_now, REPLAY_CLOCK_COUNT);
    kind = replay_get_u32(&r);
    if (kind >= 0 && kind < REPLAY_EV__MAX) {
        s->last_kind_name = replay_event_name(kind);
    }
    get_queue(&r, &s->pending);
    for (i = 0; i < REPLAY_CH__MAX; i++) {
        get_queue(&r, &s->channel[i]);
    }
    get_schedule(&r, s);
    if (!replay_bytes_done(&r)) {
        error_setg(errp, "the replay state in the snapshot is malformed");
        replay_engine_free(s);
        return NULL;
    }
    return s;
}
