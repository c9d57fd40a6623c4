/*
 * qrr: asynchronous events: bottom halves, block completions, input,
 * character device input and network packets
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Work that reaches the guest from outside it does not run when it arrives.
 * It is queued, and delivered at the next delivery point
 * (replay_async_events(), called by the vCPU loop between slices and by the
 * main loop after its timers).  Recording writes each item to the log at the
 * icount where it is delivered.  Replaying delivers items where the log says:
 * data-carrying items (input, packets, serial input) come from the log
 * itself; callbacks (bottom halves, block completions) are scheduled by
 * device code in replay too, and wait in the queue, matched by their id,
 * until the log reaches them.
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "system/replay.h"
#include "system/runstate.h"
#include "block/aio.h"
#include "chardev/char.h"
#include "net/filter.h"
#include "ui/input.h"
#include "ui/console.h"
#include "replay-core.h"
#include "qemu/atomic.h"
#include "qemu/iov.h"
#include "trace.h"

typedef struct ReplayAsync {
    ReplayEventKind kind;
    uint64_t id;
    QEMUBH *bh;
    QEMUBHFunc *cb;
    void *opaque;
    int64_t arg[2];
    uint8_t *data;
    uint32_t len;
} ReplayAsync;

struct ReplayNetState {
    NetFilterState *nfs;
    uint32_t index;
};

static GPtrArray *chardevs;     /* Chardev *, in registration order */
static GPtrArray *netfilters;   /* ReplayNetState *, NULL once removed */


static void async_free(ReplayAsync *a)
{
    g_free(a->data);
    g_free(a);
}

void replay_async_clear(void)
{
    ReplayAsync *a;

    qemu_mutex_lock(&replay_state.async_lock);
    while ((a = g_queue_pop_head(&replay_state.async))) {
        async_free(a);
    }
    qemu_mutex_unlock(&replay_state.async_lock);
}

bool replay_async_pending(void)
{
    bool pending;

    qemu_mutex_lock(&replay_state.async_lock);
    pending = !g_queue_is_empty(&replay_state.async);
    qemu_mutex_unlock(&replay_state.async_lock);
    return pending;
}

void replay_enable_events(void)
{
    if (replay_mode != REPLAY_MODE_NONE) {
        replay_state.events_enabled = true;
    }
}

bool replay_events_enabled(void)
{
    return replay_mode != REPLAY_MODE_NONE && replay_state.events_enabled &&
           !replay_state.tt_abandoning;
}

void replay_flush_events(void)
{
    if (replay_state.tt_abandoning) {
        replay_async_abandon();     /* loadvm in a replay */
    } else {
        replay_async_clear();
    }
}

static void async_push(ReplayAsync *a)
{
    qemu_mutex_lock(&replay_state.async_lock);
    g_queue_push_tail(&replay_state.async, a);
    qemu_mutex_unlock(&replay_state.async_lock);
}

/* ---- input events: a fixed array of six little-endian int64 ---- */

#define INPUT_WORDS 6

static void input_pack(const InputEvent *e, int64_t w[INPUT_WORDS])
{
    memset(w, 0, sizeof(int64_t) * INPUT_WORDS);
    w[0] = e->type;
    switch (e->type) {
    case INPUT_EVENT_KIND_KEY:
        w[1] = e->u.key.data->key->type;
        w[2] = e->u.key.data->key->type == KEY_VALUE_KIND_NUMBER ?
            e->u.key.data->key->u.number.data :
            e->u.key.data->key->u.qcode.data;
        w[3] = e->u.key.data->down;
        break;
    case INPUT_EVENT_KIND_BTN:
        w[1] = e->u.btn.data->button;
        w[2] = e->u.btn.data->down;
        break;
    case INPUT_EVENT_KIND_REL:
    case INPUT_EVENT_KIND_ABS:
        w[1] = e->u.rel.data->axis;
        w[2] = e->u.rel.data->value;
        break;
    case INPUT_EVENT_KIND_MTT:
        w[1] = e->u.mtt.data->type;
        w[2] = e->u.mtt.data->slot;
        w[3] = e->u.mtt.data->tracking_id;
        w[4] = e->u.mtt.data->axis;
        w[5] = e->u.mtt.data->value;
        break;
    default:
        break;
    }
}

/* 0 <= @v < @max */
static bool in_range(int64_t v, int64_t max)
{
    return v >= 0 && v < max;
}

/*
 * What is wrong with the input event @w from the log, or NULL.  The log is
 * untrusted: device code indexes tables with these values (HID with the
 * button, the PS/2 and HID keyboards with the key code), so every value
 * of an enumeration must be one of it, and every flag 0 or 1.
 */
static const char *input_check(const int64_t w[INPUT_WORDS])
{
    switch (w[0]) {
    case INPUT_EVENT_KIND_KEY:
        if (w[1] == KEY_VALUE_KIND_NUMBER) {
            if (!in_range(w[2], INT_MAX)) {
                return "key number";
            }
        } else if (w[1] == KEY_VALUE_KIND_QCODE) {
            if (!in_range(w[2], Q_KEY_CODE__MAX)) {
                return "key code";
            }
        } else {
            return "key value kind";
        }
        return in_range(w[3], 2) ? NULL : "key down flag";
    case INPUT_EVENT_KIND_BTN:
        if (!in_range(w[1], INPUT_BUTTON__MAX)) {
            return "button";
        }
        return in_range(w[2], 2) ? NULL : "button down flag";
    case INPUT_EVENT_KIND_REL:
    case INPUT_EVENT_KIND_ABS:
        return in_range(w[1], INPUT_AXIS__MAX) ? NULL : "axis";
    case INPUT_EVENT_KIND_MTT:
        if (!in_range(w[1], INPUT_MULTI_TOUCH_TYPE__MAX)) {
            return "multi-touch type";
        }
        return in_range(w[4], INPUT_AXIS__MAX) ? NULL : "multi-touch axis";
    default:
        return "input event kind";
    }
}

/* @w must have passed input_check(). */
static InputEvent *input_unpack(const int64_t w[INPUT_WORDS])
{
    InputEvent *e = g_new0(InputEvent, 1);

    e->type = w[0];
    switch (e->type) {
    case INPUT_EVENT_KIND_KEY:
        e->u.key.data = g_new0(InputKeyEvent, 1);
        e->u.key.data->key = g_new0(KeyValue, 1);
        e->u.key.data->key->type = w[1];
        if (w[1] == KEY_VALUE_KIND_NUMBER) {
            e->u.key.data->key->u.number.data = w[2];
        } else {
            e->u.key.data->key->u.qcode.data = w[2];
        }
        e->u.key.data->down = w[3];
        break;
    case INPUT_EVENT_KIND_BTN:
        e->u.btn.data = g_new0(InputBtnEvent, 1);
        e->u.btn.data->button = w[1];
        e->u.btn.data->down = w[2];
        break;
    case INPUT_EVENT_KIND_REL:
    case INPUT_EVENT_KIND_ABS:
        e->u.rel.data = g_new0(InputMoveEvent, 1);
        e->u.rel.data->axis = w[1];
        e->u.rel.data->value = w[2];
        break;
    case INPUT_EVENT_KIND_MTT:
        e->u.mtt.data = g_new0(InputMultiTouchEvent, 1);
        e->u.mtt.data->type = w[1];
        e->u.mtt.data->slot = w[2];
        e->u.mtt.data->tracking_id = w[3];
        e->u.mtt.data->axis = w[4];
        e->u.mtt.data->value = w[5];
        break;
    default:
        g_assert_not_reached();
    }
    return e;
}

/* ---- delivery ---- */

static void deliver_input(const ReplayAsync *a)
{
    int64_t w[INPUT_WORDS];
    QemuConsole *src = NULL;
    const char *bad;
    InputEvent *e;
    int i;

    if (a->len != sizeof(w)) {
        replay_fatal("record/replay: the log's input event at icount %"
                     PRIu64 " has %u bytes of data, not %zu", replay_icount(),
                     a->len, sizeof(w));
    }
    for (i = 0; i < INPUT_WORDS; i++) {
        w[i] = ldq_le_p(a->data + 8 * i);
    }
    bad = input_check(w);
    if (bad) {
        replay_fatal("record/replay: the log's input event at icount %"
                     PRIu64 " is invalid: bad %s (words %" PRId64 " %" PRId64
                     " %" PRId64 " %" PRId64 ")", replay_icount(), bad,
                     w[0], w[1], w[2], w[3]);
    }
    if (a->arg[0] > 0 && a->arg[0] <= (int64_t)UINT_MAX + 1) {
        src = qemu_console_lookup_by_index(a->arg[0] - 1);
    }
    if (a->arg[0] && !src) {
        replay_fatal("record/replay: the log's input event at icount %"
                     PRIu64 " has console argument %" PRId64 ", which names "
                     "no console of this run", replay_icount(), a->arg[0]);
    }
    e = input_unpack(w);
    qemu_input_event_send_impl(src, e);
    qapi_free_InputEvent(e);
}

static void deliver_char(const ReplayAsync *a)
{
    if (a->arg[0] < 0 || a->arg[0] >= chardevs->len) {
        replay_fatal("record/replay: the log has input for character device "
                     "%" PRId64 " but only %u are registered; is the "
                     "command line the recorded one?", a->arg[0],
                     chardevs->len);
    }
    qemu_chr_be_write_impl(g_ptr_array_index(chardevs, a->arg[0]),
                           a->data, a->len);
}

static void deliver_net(const ReplayAsync *a)
{
    ReplayNetState *rns = NULL;
    struct iovec iov = { .iov_base = a->data, .iov_len = a->len };
    ssize_t ret;

    if (a->arg[0] >= 0 && a->arg[0] < netfilters->len) {
        rns = g_ptr_array_index(netfilters, a->arg[0]);
    }
    if (!rns) {
        replay_fatal("record/replay: the log's net event at icount %" PRIu64
                     " has a packet for network filter %" PRId64 ", which "
                     "does not exist in this run", replay_icount(),
                     a->arg[0]);
    }
    ret = qemu_netfilter_pass_to_next(rns->nfs->netdev, a->arg[1], &iov, 1,
                                      rns->nfs);
    /* 0: the NIC cannot take it now, its queue holds it */
    trace_replay_net_deliver(a->arg[0], a->len, ret);
}

static void async_deliver(ReplayAsync *a)
{
    trace_replay_async_deliver(replay_event_name(a->kind), a->id);
    switch (a->kind) {
    case REPLAY_EV_ASYNC_BH:
    case REPLAY_EV_ASYNC_BLOCK:
        aio_bh_call(a->bh);
        break;
    case REPLAY_EV_ASYNC_BH_ONESHOT:
        a->cb(a->opaque);
        break;
    case REPLAY_EV_ASYNC_INPUT:
        deliver_input(a);
        break;
    case REPLAY_EV_ASYNC_INPUT_SYNC:
        qemu_input_event_sync_impl();
        break;
    case REPLAY_EV_ASYNC_CHAR_READ:
        deliver_char(a);
        break;
    case REPLAY_EV_ASYNC_NET:
        deliver_net(a);
        break;
    default:
        g_assert_not_reached();
    }
}

static bool async_has_id(ReplayEventKind kind)
{
    return kind == REPLAY_EV_ASYNC_BH || kind == REPLAY_EV_ASYNC_BH_ONESHOT ||
           kind == REPLAY_EV_ASYNC_BLOCK;
}

/*
 * A snapshot is about to be restored.  The bottom halves and block
 * completions queued here belong to the position being left: the log
 * would deliver them later, but after the restore they would meet a
 * machine that never scheduled them, and the devices and coroutines that
 * wait for them would wait for ever.  So they run now, before the
 * restore overwrites whatever they change.  Called with
 * replay_state.tt_abandoning set, so that what they schedule in turn
 * runs at once too (replay_events_enabled() is false).
 */
void replay_async_abandon(void)
{
    ReplayAsync *a;

    for (;;) {
        qemu_mutex_lock(&replay_state.async_lock);
        a = g_queue_pop_head(&replay_state.async);
        qemu_mutex_unlock(&replay_state.async_lock);
        if (!a) {
            break;
        }
        trace_replay_async_abandon(replay_event_name(a->kind), a->id);
        if (async_has_id(a->kind)) {
            async_deliver(a);
        }
        async_free(a);
    }
    replay_block_data_clear();
}

/*
 * The queue in a time-travel snapshot.  While the guest sends packets,
 * virtio-net's transmit bottom half is queued most of the time, waiting
 * for the position at which the log delivers it: a queue that had to be
 * empty left stretches of 150 M instructions without a snapshot on a
 * Linux guest downloading a file.  So a snapshot holds the queued items
 * of kind REPLAY_EV_ASYNC_BH: their QEMUBH and id, which a restore puts
 * back in the queue after the device state (what the devices' post_load
 * schedules meanwhile is dropped, see replay_bh_schedule_event()).  A
 * QEMUBH deleted since (replay_bh_gone()) makes the copies that hold it
 * unusable: those snapshots are not restored.  One-shot callbacks and
 * block completions carry an opaque pointer whose life nobody tracks: the
 * queue is busy while it holds one.
 */
typedef struct AsyncCopy {
    GArray *items;              /* ReplayAsync, without data */
    bool gone;                  /* the QEMUBH of an item was deleted */
} AsyncCopy;

static GSList *async_copies;    /* AsyncCopy *: every copy alive */

static bool async_busy(void *opaque)
{
    bool busy = false;
    GList *l;

    qemu_mutex_lock(&replay_state.async_lock);
    for (l = replay_state.async.head; l && !busy; l = l->next) {
        busy = ((ReplayAsync *)l->data)->kind != REPLAY_EV_ASYNC_BH;
    }
    qemu_mutex_unlock(&replay_state.async_lock);
    return busy;
}

static void *async_save(void *opaque, size_t *bytes)
{
    AsyncCopy *c = g_new0(AsyncCopy, 1);
    GList *l;

    c->items = g_array_new(false, false, sizeof(ReplayAsync));
    qemu_mutex_lock(&replay_state.async_lock);
    for (l = replay_state.async.head; l; l = l->next) {
        g_array_append_vals(c->items, l->data, 1);
    }
    qatomic_set(&async_copies, g_slist_prepend(async_copies, c));
    qemu_mutex_unlock(&replay_state.async_lock);
    *bytes += sizeof(*c) + c->items->len * sizeof(ReplayAsync);
    return c;
}

static bool async_usable(void *opaque, const void *state)
{
    return !((const AsyncCopy *)state)->gone;
}

static void async_load(void *opaque, const void *state)
{
    const AsyncCopy *c = state;
    guint i;

    g_assert(!c->gone);
    replay_async_clear();
    qemu_mutex_lock(&replay_state.async_lock);
    for (i = 0; i < c->items->len; i++) {
        g_queue_push_tail(&replay_state.async,
                          g_memdup2(&g_array_index(c->items, ReplayAsync, i),
                                    sizeof(ReplayAsync)));
    }
    qemu_mutex_unlock(&replay_state.async_lock);
}

static void async_copy_free(void *state)
{
    AsyncCopy *c = state;

    qemu_mutex_lock(&replay_state.async_lock);
    qatomic_set(&async_copies, g_slist_remove(async_copies, c));
    qemu_mutex_unlock(&replay_state.async_lock);
    g_array_free(c->items, true);
    g_free(c);
}

/* Any thread that deletes a bottom half, with or without the BQL. */
void replay_bh_gone(QEMUBH *bh)
{
    GSList *l;
    guint i;

    /* none before time travel's first snapshot (nor before async_lock) */
    if (replay_mode != REPLAY_MODE_PLAY || !qatomic_read(&async_copies)) {
        return;
    }
    qemu_mutex_lock(&replay_state.async_lock);
    for (l = async_copies; l; l = l->next) {
        AsyncCopy *c = l->data;

        for (i = 0; i < c->items->len; i++) {
            if (g_array_index(c->items, ReplayAsync, i).bh == bh) {
                c->gone = true;
            }
        }
    }
    qemu_mutex_unlock(&replay_state.async_lock);
}

static void async_settle(void *opaque)
{
    replay_async_abandon();
}

static const ReplayParticipant async_participant = {
    .name = "async",
    .busy = async_busy,
    .usable = async_usable,
    .settle = async_settle,
    .save = async_save,
    .load = async_load,
    .free = async_copy_free,
};

/*
 * The machine resuming.  A device may schedule a bottom half from its run
 * state handler: virtio-net's transmit bottom half, when it was waiting
 * as the machine stopped (virtio_net_set_status()).  The stop only
 * cancelled the QEMUBH itself; the item for the log is still queued.  A
 * second item would be a bottom half that the other run does not have
 * where it did not stop (a replay stopped by gdb or a seek, a recording
 * stopped from the monitor): the ids of every later one would differ by
 * one from the log's, and the spare item, left queued, ran at exit with
 * the device stopped (virtio-net asserts it is waiting then; it no longer
 * was).  So while the machine resumes, a bottom half already queued is
 * not queued again, in record and replay alike.
 */
static bool resuming;

static void async_resume_begins(void *opaque, bool running, RunState state)
{
    resuming = running;
}

static void async_resume_ends(void *opaque, bool running, RunState state)
{
    resuming = false;
}

static bool async_bh_queued(QEMUBH *bh)
{
    bool queued = false;
    GList *l;

    qemu_mutex_lock(&replay_state.async_lock);
    for (l = replay_state.async.head; l && !queued; l = l->next) {
        const ReplayAsync *a = l->data;

        queued = a->kind == REPLAY_EV_ASYNC_BH && a->bh == bh;
    }
    qemu_mutex_unlock(&replay_state.async_lock);
    return queued;
}

void replay_async_init(void)
{
    qemu_mutex_init(&replay_state.async_lock);
    g_queue_init(&replay_state.async);
    chardevs = g_ptr_array_new();
    netfilters = g_ptr_array_new();
    replay_block_data_init();
    replay_register_participant(&async_participant, NULL);
    /* before every handler as the machine resumes, and after them all */
    qemu_add_vm_change_state_handler_prio_full(async_resume_ends,
                                               async_resume_begins, NULL,
                                               INT_MAX);
}

/* Record: write and deliver the oldest queued item. */
static bool async_record_one(void)
{
    ReplayAsync *a;

    qemu_mutex_lock(&replay_state.async_lock);
    a = g_queue_pop_head(&replay_state.async);
    qemu_mutex_unlock(&replay_state.async_lock);
    if (!a) {
        return false;
    }
    replay_record(a->kind, replay_icount(),
                  async_has_id(a->kind) ? a->id : a->arg[0], a->arg[1],
                  a->data, a->len);
    if (a->kind == REPLAY_EV_ASYNC_BLOCK) {
        replay_block_data_record(a->id);
    }
    async_deliver(a);
    async_free(a);
    return true;
}

/* Replay: take the queued item the head names, if it has arrived. */
static ReplayAsync *async_claim(const ReplayEvent *h)
{
    ReplayAsync *a = NULL;
    GList *l;

    qemu_mutex_lock(&replay_state.async_lock);
    for (l = replay_state.async.head; l; l = l->next) {
        ReplayAsync *c = l->data;

        if (c->kind == h->kind && c->id == h->arg[0]) {
            a = c;
            g_queue_delete_link(&replay_state.async, l);
            break;
        }
    }
    qemu_mutex_unlock(&replay_state.async_lock);
    return a;
}

/*
 * Replay: the bottom half that the head @h names, not in the queue, will
 * never come.  A bottom half gets its id when it is queued, so an id
 * below the next one was queued already, and delivered since (or it is
 * queued as the other kind of bottom half).  A block completion's id is
 * given when its request starts, long before the completion is queued:
 * nothing like this can be said about it.
 */
static bool async_bh_gone(const ReplayEvent *h)
{
    bool gone;

    if (h->kind == REPLAY_EV_ASYNC_BLOCK) {
        return false;
    }
    qemu_mutex_lock(&replay_state.async_lock);
    gone = (uint64_t)h->arg[0] < replay_state.next_bh_id;
    qemu_mutex_unlock(&replay_state.async_lock);
    return gone;
}

/* Replay: true when the asynchronous event @h could be delivered now. */
bool replay_async_ready(const ReplayEvent *h)
{
    bool found = false;
    GList *l;

    if (h->kind != REPLAY_EV_ASYNC_BH &&
        h->kind != REPLAY_EV_ASYNC_BH_ONESHOT &&
        h->kind != REPLAY_EV_ASYNC_BLOCK) {
        return true;        /* the data is in the log */
    }
    qemu_mutex_lock(&replay_state.async_lock);
    for (l = replay_state.async.head; l && !found; l = l->next) {
        ReplayAsync *c = l->data;

        found = c->kind == h->kind && c->id == h->arg[0];
    }
    qemu_mutex_unlock(&replay_state.async_lock);
    return found;
}

bool replay_async_run_head(void)
{
    ReplayEvent *h;
    ReplayAsync *a;

    if (replay_mode == REPLAY_MODE_RECORD) {
        while (async_record_one()) {
            /* queue drained in arrival order */
        }
        return false;
    }
    if (replay_mode != REPLAY_MODE_PLAY) {
        return false;
    }
    h = replay_head_is(REPLAY_EV_ASYNC_BH);
    h = h ? h : replay_head_is(REPLAY_EV_ASYNC_BH_ONESHOT);
    h = h ? h : replay_head_is(REPLAY_EV_ASYNC_BLOCK);
    if (h) {
        a = async_claim(h);
        if (!a && async_bh_gone(h)) {
            replay_fatal("record/replay: the log's %s event at icount %"
                         PRIu64 " names bottom half %" PRId64 ", which was "
                         "delivered already or is not a %s",
                         replay_event_name(h->kind), h->icount, h->arg[0],
                         replay_event_name(h->kind));
        }
        if (!a) {
            return false;       /* not scheduled yet: wait for it */
        }
    } else {
        h = replay_head_is(REPLAY_EV_ASYNC_INPUT);
        h = h ? h : replay_head_is(REPLAY_EV_ASYNC_INPUT_SYNC);
        h = h ? h : replay_head_is(REPLAY_EV_ASYNC_CHAR_READ);
        h = h ? h : replay_head_is(REPLAY_EV_ASYNC_NET);
        if (!h) {
            return false;
        }
        a = g_new0(ReplayAsync, 1);
        a->kind = h->kind;
        a->arg[0] = h->arg[0];
        a->arg[1] = h->arg[1];
        a->len = h->len;
        a->data = g_steal_pointer(&h->data);
    }
    replay_consume();
    if (a->kind == REPLAY_EV_ASYNC_BLOCK) {
        replay_block_data_check(a->id);
    }
    async_deliver(a);
    async_free(a);
    return true;
}

/* ---- producers ---- */

/*
 * Queue a callback.  A bottom half gets its id here, under async_lock, so
 * that ids and queue order agree whichever thread schedules it; a block
 * completion brings the id that replay_block_next_id() gave its request.
 */
static void async_queue_callback(ReplayEventKind kind, uint64_t id,
                                 QEMUBH *bh, QEMUBHFunc *cb, void *opaque)
{
    ReplayAsync *a = g_new0(ReplayAsync, 1);

    a->kind = kind;
    a->bh = bh;
    a->cb = cb;
    a->opaque = opaque;
    qemu_mutex_lock(&replay_state.async_lock);
    a->id = kind == REPLAY_EV_ASYNC_BLOCK ? id : replay_state.next_bh_id++;
    g_queue_push_tail(&replay_state.async, a);
    qemu_mutex_unlock(&replay_state.async_lock);
}

void replay_bh_schedule_event(QEMUBH *bh)
{
    if (replay_state.tt_loading) {
        /*
         * A device's post_load, while time travel restores a snapshot:
         * the snapshot's queue, put back after the devices, holds what
         * was queued at its position (async_load())
         */
        return;
    }
    if (!replay_events_enabled()) {
        qemu_bh_schedule(bh);
        return;
    }
    if (resuming && async_bh_queued(bh)) {
        trace_replay_async_requeue_dropped();
        return;
    }
    async_queue_callback(REPLAY_EV_ASYNC_BH, 0, bh, NULL, NULL);
}

void replay_bh_schedule_oneshot_event(AioContext *ctx, QEMUBHFunc *cb,
                                      void *opaque)
{
    if (!replay_events_enabled()) {
        aio_bh_schedule_oneshot(ctx, cb, opaque);
        return;
    }
    async_queue_callback(REPLAY_EV_ASYNC_BH_ONESHOT, 0, NULL, cb, opaque);
}

/*
 * The ids are deterministic because every producer runs with the replay
 * mutex held, in the vCPU thread or the main loop, in an order that the
 * replay reproduces: a disk served by an iothread is refused at start-up
 * (replay_check_devices()).  The lock only keeps the counters whole.
 */
uint64_t replay_block_next_id(void)
{
    uint64_t id;

    if (!replay_events_enabled()) {
        return 0;
    }
    qemu_mutex_lock(&replay_state.async_lock);
    id = replay_state.next_block_id++;
    qemu_mutex_unlock(&replay_state.async_lock);
    return id;
}

void replay_block_event(QEMUBH *bh, uint64_t id)
{
    if (!replay_events_enabled()) {
        qemu_bh_schedule(bh);
        return;
    }
    async_queue_callback(REPLAY_EV_ASYNC_BLOCK, id, bh, NULL, NULL);
}

static void async_queue_data(ReplayEventKind kind, int64_t a0, int64_t a1,
                             const void *data, uint32_t len)
{
    ReplayAsync *a = g_new0(ReplayAsync, 1);

    a->kind = kind;
    a->arg[0] = a0;
    a->arg[1] = a1;
    a->len = len;
    a->data = len ? g_memdup2(data, len) : NULL;
    async_push(a);
}

void replay_input_event(QemuConsole *src, InputEvent *evt)
{
    int64_t w[INPUT_WORDS];
    uint8_t buf[sizeof(w)];
    int i;

    if (replay_mode == REPLAY_MODE_NONE) {
        qemu_input_event_send_impl(src, evt);
        return;
    }
    if (replay_mode == REPLAY_MODE_PLAY) {
        return;                 /* live input is ignored; the log has it */
    }
    input_pack(evt, w);
    for (i = 0; i < INPUT_WORDS; i++) {
        stq_le_p(buf + 8 * i, w[i]);
    }
    async_queue_data(REPLAY_EV_ASYNC_INPUT,
                     src ? qemu_console_get_index(src) + 1 : 0, 0,
                     buf, sizeof(buf));
}

void replay_input_sync_event(void)
{
    if (replay_mode == REPLAY_MODE_NONE) {
        qemu_input_event_sync_impl();
    } else if (replay_mode == REPLAY_MODE_RECORD) {
        async_queue_data(REPLAY_EV_ASYNC_INPUT_SYNC, 0, 0, NULL, 0);
    }
}

void replay_register_char_driver(Chardev *chr)
{
    if (replay_mode != REPLAY_MODE_NONE) {
        g_ptr_array_add(chardevs, chr);
    }
}

void replay_chr_be_write(Chardev *s, const uint8_t *buf, int len)
{
    guint idx;

    if (!g_ptr_array_find(chardevs, s, &idx)) {
        error_report("record/replay: input from unregistered character "
                     "device %s dropped", s->label);
        return;
    }
    async_queue_data(REPLAY_EV_ASYNC_CHAR_READ, idx, 0, buf, len);
}

ReplayNetState *replay_register_net(NetFilterState *nfs)
{
    ReplayNetState *rns = g_new0(ReplayNetState, 1);

    rns->nfs = nfs;
    rns->index = netfilters->len;
    g_ptr_array_add(netfilters, rns);
    return rns;
}

void replay_unregister_net(ReplayNetState *rns)
{
    if (rns) {
        g_ptr_array_index(netfilters, rns->index) = NULL;
        g_free(rns);
    }
}

void replay_net_packet_event(ReplayNetState *rns, unsigned flags,
                             const struct iovec *iov, int iovcnt)
{
    size_t len = iov_size(iov, iovcnt);
    g_autofree uint8_t *buf = g_malloc(MAX(len, 1));

    iov_to_buf(iov, iovcnt, 0, buf, len);
    async_queue_data(REPLAY_EV_ASYNC_NET, rns->index, flags, buf, len);
}
