/*
 * qrr: filter-replay, the network filter that records and replays what a
 * netdev hands to the guest
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Usage: -object filter-replay,id=r0,netdev=net0
 *
 * Record: a packet from the backend towards the guest is taken out of the
 * path and queued as an asynchronous event; the replay engine hands it on
 * to the NIC at the instruction count it writes to the log.  Packets from
 * the guest pass through to the backend.
 *
 * Replay: the backend is cut off.  Packets it receives are dropped, and
 * packets the guest sends are swallowed (reported sent); the NIC gets the
 * recorded packets from the log.
 */

#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "qom/object.h"
#include "net/filter.h"
#include "system/replay.h"

#define TYPE_FILTER_REPLAY "filter-replay"
OBJECT_DECLARE_SIMPLE_TYPE(NetFilterReplayState, FILTER_REPLAY)

struct NetFilterReplayState {
    NetFilterState parent_obj;
    ReplayNetState *rns;
};

/*
 * Whether a packet that @sender hands on goes to the log instead of its
 * peer.  In replay every packet is: the NIC is given the log's packets,
 * and what the guest sends goes nowhere (the backend's answers to it are
 * in the log already).  In record, the backend's packets are.
 */
static bool filter_replay_takes(NetFilterState *nf, NetClientState *sender)
{
    return replay_mode == REPLAY_MODE_PLAY ||
           (replay_mode == REPLAY_MODE_RECORD && sender == nf->netdev);
}

/* Returns 0 to let the packet through, its size to say it is handled. */
static ssize_t filter_replay_receive_iov(NetFilterState *nf,
                                         NetClientState *sender,
                                         unsigned flags,
                                         const struct iovec *iov,
                                         int iovcnt, NetPacketSent *sent_cb)
{
    NetFilterReplayState *s = FILTER_REPLAY(nf);

    if (!filter_replay_takes(nf, sender)) {
        return 0;
    }
    if (replay_mode == REPLAY_MODE_RECORD) {
        replay_net_packet_event(s->rns, flags, iov, iovcnt);
    }
    return iov_size(iov, iovcnt);
}

static void filter_replay_setup(NetFilterState *nf, Error **errp)
{
    NetFilterReplayState *s = FILTER_REPLAY(nf);

    if (replay_mode != REPLAY_MODE_NONE) {
        s->rns = replay_register_net(nf);
    }
}

static void filter_replay_cleanup(NetFilterState *nf)
{
    NetFilterReplayState *s = FILTER_REPLAY(nf);

    replay_unregister_net(s->rns);
    s->rns = NULL;
}

static void filter_replay_class_init(ObjectClass *oc, void *data)
{
    NetFilterClass *nfc = NETFILTER_CLASS(oc);

    nfc->setup = filter_replay_setup;
    nfc->cleanup = filter_replay_cleanup;
    nfc->receive_iov = filter_replay_receive_iov;
}

static const TypeInfo filter_replay_info = {
    .name = TYPE_FILTER_REPLAY,
    .parent = TYPE_NETFILTER,
    .class_init = filter_replay_class_init,
    .instance_size = sizeof(NetFilterReplayState),
};

static void filter_replay_register_types(void)
{
    type_register_static(&filter_replay_info);
    replay_register_net_filter(TYPE_FILTER_REPLAY);
}

type_init(filter_replay_register_types);
