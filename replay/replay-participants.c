/*
 * qrr: participants, the state outside the engine that a replay position
 * includes
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The engine calls its participants (ReplayParticipant, system/replay.h)
 * through this table only, in the order they registered: the engine's
 * own (the asynchronous event queue, the guest's timers) register in
 * replay_configure(), before the machine and its drives are created, so
 * a disk filter registers after them.  Settling in that order runs the
 * queued completions before the block layer drains its requests.
 *
 * In a savevm snapshot, the participants' state is, after a u32 count,
 * per participant that serializes: its name and its bytes, each a u32
 * length and that many bytes (system/replay-bytes.h).  The load matches
 * them by name and order against this machine's participants.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "system/replay.h"
#include "system/replay-bytes.h"
#include "replay-core.h"

typedef struct Participant {
    const ReplayParticipant *ops;
    void *opaque;
} Participant;

struct ReplayParticipantsState {
    guint n;                    /* participants when it was saved */
    void **states;              /* per participant; NULL: no save */
    size_t bytes;
};

static GArray *participants;    /* Participant, in registration order */

static Participant *part_at(guint i)
{
    return &g_array_index(participants, Participant, i);
}

static guint part_count(void)
{
    return participants ? participants->len : 0;
}

void replay_register_participant(const ReplayParticipant *p, void *opaque)
{
    Participant part = { .ops = p, .opaque = opaque };

    g_assert(p->name);
    g_assert(!p->save == !p->load && !p->serialize == !p->deserialize);
    if (!participants) {
        participants = g_array_new(false, true, sizeof(Participant));
    }
    g_array_append_val(participants, part);
}

const char *replay_participant_busy(void)
{
    guint i;

    for (i = 0; i < part_count(); i++) {
        Participant *p = part_at(i);

        if (p->ops->busy && p->ops->busy(p->opaque)) {
            return p->ops->name;
        }
    }
    return NULL;
}

bool replay_participants_usable(const ReplayParticipantsState *s)
{
    guint i;

    for (i = 0; i < MIN(s->n, part_count()); i++) {
        Participant *p = part_at(i);

        if (s->states[i] && p->ops->usable &&
            !p->ops->usable(p->opaque, s->states[i])) {
            return false;
        }
    }
    return true;
}

bool replay_participants_busy(void)
{
    return replay_participant_busy() != NULL;
}

void replay_participants_settle(void)
{
    guint i;

    for (i = 0; i < part_count(); i++) {
        Participant *p = part_at(i);

        if (p->ops->settle) {
            p->ops->settle(p->opaque);
        }
    }
}

ReplayParticipantsState *replay_participants_save(void)
{
    ReplayParticipantsState *s = g_new0(ReplayParticipantsState, 1);
    guint i;

    s->n = part_count();
    s->states = g_new0(void *, s->n);
    s->bytes = sizeof(*s) + s->n * sizeof(void *);
    for (i = 0; i < s->n; i++) {
        Participant *p = part_at(i);

        if (p->ops->save) {
            s->states[i] = p->ops->save(p->opaque, &s->bytes);
        }
    }
    return s;
}

void replay_participants_load(const ReplayParticipantsState *s)
{
    guint i;

    for (i = 0; i < s->n; i++) {
        Participant *p = part_at(i);

        if (p->ops->load && s->states[i]) {
            p->ops->load(p->opaque, s->states[i]);
        }
    }
}

void replay_participants_free(ReplayParticipantsState *s)
{
    guint i;

    if (!s) {
        return;
    }
    for (i = 0; i < s->n; i++) {
        Participant *p = part_at(i);

        if (p->ops->free && s->states[i]) {
            p->ops->free(s->states[i]);
        }
    }
    g_free(s->states);
    g_free(s);
}

size_t replay_participants_size(const ReplayParticipantsState *s)
{
    size_t bytes = s->bytes;
    guint i;

    for (i = 0; i < MIN(s->n, part_count()); i++) {
        Participant *p = part_at(i);

        if (p->ops->size && s->states[i]) {
            bytes += p->ops->size(s->states[i]);
        }
    }
    return bytes;
}

void replay_participants_merge(ReplayParticipantsState *older,
                               ReplayParticipantsState *newer)
{
    guint i;

    for (i = 0; i < MIN(MIN(older->n, newer->n), part_count()); i++) {
        Participant *p = part_at(i);

        if (p->ops->merge && older->states[i] && newer->states[i]) {
            p->ops->merge(older->states[i], newer->states[i]);
        }
    }
}

static guint serialized_count(void)
{
    guint i, n = 0;

    for (i = 0; i < part_count(); i++) {
        n += part_at(i)->ops->serialize != NULL;
    }
    return n;
}

GByteArray *replay_participants_serialize(void)
{
    GByteArray *b = g_byte_array_new();
    guint i;

    replay_put_u32(b, serialized_count());
    for (i = 0; i < part_count(); i++) {
        Participant *p = part_at(i);
        g_autoptr(GByteArray) mine = NULL;

        if (!p->ops->serialize) {
            continue;
        }
        mine = g_byte_array_new();
        p->ops->serialize(p->opaque, mine);
        replay_put_blob(b, p->ops->name, strlen(p->ops->name));
        replay_put_blob(b, mine->data, mine->len);
    }
    return b;
}

/* The next serialized state must be @p's; its bytes in *@data, *@len. */
static bool next_is(ReplayBytesReader *r, const Participant *p,
                    const uint8_t **data, uint32_t *len, Error **errp)
{
    uint32_t name_len;
    const uint8_t *name = replay_get_blob(r, &name_len);

    *data = replay_get_blob(r, len);
    if (r->bad) {
        error_setg(errp, "the record/replay participants' state is "
                   "malformed (it ends before %s's)", p->ops->name);
        return false;
    }
    if (name_len != strlen(p->ops->name) ||
        memcmp(name, p->ops->name, name_len)) {
        error_setg(errp, "the snapshot holds the state of record/replay "
                   "participant '%.*s' where this machine has '%s'",
                   (int)MIN(name_len, 64), name, p->ops->name);
        return false;
    }
    return true;
}

bool replay_participants_deserialize(const uint8_t *buf, size_t len,
                                     Error **errp)
{
    ReplayBytesReader r = replay_bytes_reader(buf, len);
    uint32_t n = replay_get_u32(&r), len_p;
    const uint8_t *data;
    guint i;

    if (r.bad || n != serialized_count()) {
        error_setg(errp, "the snapshot holds the state of %u record/replay "
                   "participants, this machine has %u", r.bad ? 0 : n,
                   serialized_count());
        return false;
    }
    for (i = 0; i < part_count(); i++) {
        Participant *p = part_at(i);

        if (!p->ops->serialize) {
            continue;
        }
        if (!next_is(&r, p, &data, &len_p, errp) ||
            !p->ops->deserialize(p->opaque, data, len_p, errp)) {
            return false;
        }
    }
    if (!replay_bytes_done(&r)) {
        error_setg(errp, "the record/replay participants' state has %zu "
                   "bytes more than this machine's participants read",
                   r.left);
        return false;
    }
    return true;
}
