/*
 * qrr: start-up check that every disk and network backend is replayable
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A guest device whose disk does not go through a replay block filter, or
 * whose NIC's netdev has no replay net filter, gets data and completions
 * at host-dependent times: a recording of it cannot be replayed.  Rather
 * than let such a replay diverge later, record and replay refuse to start
 * and name the drive or netdev, with the option that fixes it.  The
 * filters make themselves known (replay_register_block_filter(),
 * replay_register_net_filter()); the engine knows no filter by name.
 *
 * A disk whose device runs in an iothread (iothread=, iothread-vq-mapping=)
 * is refused too, even behind the block filter.  Its requests start in the
 * iothread whenever the host gets round to the guest's notification, so
 * the order of their ids among other disks' is the host's; and their
 * completion, delivered by the replay at the recorded instruction count,
 * only wakes a coroutine of the iothread, which completes the request to
 * the guest later, at an instruction count of the host's choosing.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qom/object.h"
#include "qom/qom-qobject.h"
#include "block/block_int.h"
#include "system/block-backend.h"
#include "net/net.h"
#include "net/filter.h"
#include "hw/qdev-core.h"
#include "system/replay.h"
#include "replay-core.h"

static const char *block_filter;    /* the format name of the filter */
static const char *net_filter;      /* the QOM type of the filter */

void replay_register_block_filter(const char *format_name)
{
    block_filter = format_name;
}

void replay_register_net_filter(const char *type_name)
{
    net_filter = type_name;
}

static bool drive_is_filtered(BlockDriverState *bs)
{
    GRAPH_RDLOCK_GUARD_MAINLOOP();

    for (; bs && block_filter; bs = bdrv_filter_bs(bs)) {
        if (bs->drv && !strcmp(bs->drv->format_name, block_filter)) {
            return true;
        }
    }
    return false;
}

/*
 * The device the user wrote: a virtio backend without an id of its own
 * stands for its proxy (virtio-blk-pci for the virtio-blk-device in it).
 */
static DeviceState *user_device(DeviceState *dev)
{
    BusState *bus = dev->parent_bus;

    if (!dev->id && bus && bus->parent &&
        object_dynamic_cast(OBJECT(bus), "virtio-bus")) {
        return bus->parent;
    }
    return dev;
}

/* The id the user gave @dev, else its QOM path. */
static char *device_id(DeviceState *dev)
{
    return dev->id ? g_strdup(dev->id) :
                     object_get_canonical_path(OBJECT(dev));
}

/*
 * The name of the iothread that serves @dev, or the controller it is
 * plugged into (virtio-scsi for scsi-hd), or NULL; *@owner is the device
 * that names it.
 */
static char *device_iothread(DeviceState *dev, DeviceState **owner)
{
    for (; dev; dev = dev->parent_bus ? dev->parent_bus->parent : NULL) {
        Object *obj = OBJECT(dev);
        Object *t = NULL;
        QObject *map = NULL;
        QList *l;
        char *name = NULL;

        *owner = dev;
        if (object_property_find(obj, "iothread")) {
            t = object_property_get_link(obj, "iothread", NULL);
        }
        if (t) {
            return g_strdup(object_get_canonical_path_component(t));
        }
        if (object_property_find(obj, "iothread-vq-mapping")) {
            map = object_property_get_qobject(obj, "iothread-vq-mapping",
                                              NULL);
        }
        l = qobject_to(QList, map);
        if (l && !qlist_empty(l)) {
            QDict *first = qobject_to(QDict, qlist_peek(l));
            const char *id = first ? qdict_get_try_str(first, "iothread")
                                   : NULL;

            name = g_strdup(id ? id : "?");
        }
        qobject_unref(map);
        if (name) {
            return name;
        }
    }
    return NULL;
}

static bool check_drives(Error **errp)
{
    BlockBackend *blk = NULL;

    while ((blk = blk_next(blk))) {
        BlockDriverState *bs = blk_bs(blk);
        DeviceState *dev = blk_get_attached_dev(blk);
        g_autofree char *dev_id = NULL;
        g_autofree char *iothread = NULL;
        DeviceState *owner = NULL;
        const char *name;

        if (!bs || !dev) {
            continue;
        }
        name = blk_name(blk)[0] ? blk_name(blk) : bdrv_get_node_name(bs);
        iothread = device_iothread(dev, &owner);
        if (iothread) {
            owner = user_device(owner);
            dev_id = device_id(owner);
            error_setg(errp, "record/replay: drive '%s' is served by "
                       "iothread '%s', whose disk requests a replay cannot "
                       "reproduce; remove iothread= (or iothread-vq-mapping=) "
                       "from %s '%s'", name, iothread,
                       object_get_typename(OBJECT(owner)), dev_id);
            return false;
        }
        if (drive_is_filtered(bs)) {
            continue;
        }
        dev = user_device(dev);
        dev_id = device_id(dev);
        error_setg(errp, "record/replay: drive '%s' (%s '%s') does not go "
                   "through %s; add -drive driver=%s,if=none,image=%s,"
                   "id=ID and attach the device to drive=ID", name,
                   object_get_typename(OBJECT(dev)), dev_id,
                   block_filter ?: "a replay block filter",
                   block_filter ?: "?", name);
        return false;
    }
    return true;
}

static bool netdev_is_filtered(NetClientState *nc)
{
    NetFilterState *nf;

    QTAILQ_FOREACH(nf, &nc->filters, next) {
        if (net_filter && object_dynamic_cast(OBJECT(nf), net_filter)) {
            return true;
        }
    }
    return false;
}

typedef struct NicCheck {
    Error **errp;
    bool failed;
} NicCheck;

static void check_nic(NICState *nic, void *opaque)
{
    NicCheck *c = opaque;
    NetClientState *nc = qemu_get_queue(nic);
    NetClientState *peer = nc->peer;
    const char *f = net_filter ?: "a replay net filter";

    if (c->failed || !peer || netdev_is_filtered(peer)) {
        return;
    }
    c->failed = true;
    if (peer->info->type == NET_CLIENT_DRIVER_HUBPORT) {
        error_setg(c->errp, "record/replay: NIC '%s' is on a legacy -net "
                   "hub, which %s cannot cover; use -netdev TYPE,id=ID with "
                   "-device MODEL,netdev=ID and -object %s,id=F,netdev=ID "
                   "(or -net none)", nc->name, f, f);
        return;
    }
    error_setg(c->errp, "record/replay: netdev '%s' (NIC '%s') has no %s; "
               "add -object %s,id=ID,netdev=%s", peer->name, nc->name, f, f,
               peer->name);
}

bool replay_check_devices(Error **errp)
{
    NicCheck c = { .errp = errp };

    if (!check_drives(errp)) {
        return false;
    }
    qemu_foreach_nic(check_nic, &c);
    return !c.failed;
}
