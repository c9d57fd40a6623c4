# qrr: the rewriter's disks
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""-drive, -hdX and -cdrom: every image goes through blkreplay on top of
a qcow2 overlay in the trace directory; the user's image is never
written.  -device drive=ID is pointed at the blkreplay node."""

import json

from qrr_tool.common import QrrError
from qrr_tool.machines import ide_slot
from qrr_tool.options import (escape, is_local_path, join_opts, opt_get,
                              opt_int, split_opts)
from qrr_tool.plan import Disk

DRIVE_IFS = ('none', 'virtio', 'ide')
DRIVE_OTHER_IFS = ('scsi', 'floppy', 'pflash', 'mtd', 'sd', 'xen')
# -drive keys that are not passed on to the image node.
DRIVE_LEGACY = ('file', 'if', 'index', 'bus', 'unit', 'media', 'format',
                'id', 'snapshot', 'werror', 'rerror', 'readonly',
                'read-only')


def check_drive(st, pairs, iface, media, what):
    """Refuse what qrr cannot record of a -drive."""
    keys = {k for k, *_ in pairs}
    if iface is None:
        raise QrrError(f'{what}: qrr does not know the default drive '
                       f'interface of machine {st.plan.machine}: give '
                       'if=virtio, if=ide or if=none')
    if iface in DRIVE_OTHER_IFS:
        raise QrrError(f'{what}: if={iface} is not supported by qrr '
                       f'(supported: {", ".join(DRIVE_IFS)})')
    if iface not in DRIVE_IFS:
        raise QrrError(f'{what}: unknown interface if={iface}')
    if 'driver' in keys or any(k.startswith('file.') and
                               k != 'file.locking' for k in keys):
        raise QrrError(f'{what}: driver= and file.* are not supported '
                       '(give the image with file=)')
    if media not in ('disk', 'cdrom'):
        raise QrrError(f'{what}: unknown media={media}')
    if media == 'cdrom' and iface == 'virtio':
        raise QrrError(f'{what}: media=cdrom needs if=ide')
    if iface == 'none' and not opt_get(pairs, 'id'):
        raise QrrError(f'{what}: if=none needs id=')


def drive_slot(st, pairs, what):
    return ide_slot(st, opt_int(pairs, 'index', what),
                    opt_int(pairs, 'bus', what),
                    opt_int(pairs, 'unit', what), what)


def empty_cdrom(st, pairs, iface, media, what):
    """A -drive without file=: an empty IDE CD-ROM, nothing to record."""
    if media != 'cdrom' or iface != 'ide':
        raise QrrError(f'{what}: file= is missing')
    bus, unit = drive_slot(st, pairs, what)
    st.tail.extend(['-device', f'ide-cd,bus=ide.{bus},unit={unit}'])


def drive_nodes(st, pairs, disk):
    """The overlay's -drive and the blkreplay -drive on top of it."""
    n = disk.n
    ro = disk.media == 'cdrom' or \
        opt_get(pairs, 'read-only', opt_get(pairs, 'readonly',
                                            'off')) == 'on'
    img = [('file', st.tpath(disk.overlay)), ('format', 'qcow2'),
           ('if', 'none'), ('id', f'qrr-img{n}')]
    img += [(k, v) for k, v, *_ in pairs if k not in DRIVE_LEGACY]
    blk = [('driver', 'blkreplay'), ('if', 'none'),
           ('image', f'qrr-img{n}'), ('id', f'qrr-blk{n}')]
    blk += [(k, v) for k, v, *_ in pairs if k in ('werror', 'rerror')]
    if ro:
        img.append(('read-only', 'on'))
        blk.append(('read-only', 'on'))
    return ['-drive', join_opts(img), '-drive', join_opts(blk)]


def attach(st, pairs, disk, what):
    """The guest's device for @disk, or the id a -device refers to."""
    blk = f'qrr-blk{disk.n}'
    if disk.iface == 'none':
        st.drive_ids[opt_get(pairs, 'id')] = blk
    elif disk.iface == 'virtio':
        st.tail.extend(['-device', f'virtio-blk,drive={blk}'])
    else:
        bus, unit = drive_slot(st, pairs, what)
        dev = 'ide-cd' if disk.media == 'cdrom' else 'ide-hd'
        st.tail.extend(['-device', f'{dev},drive={blk},bus=ide.{bus},'
                        f'unit={unit}'])


def add_drive(st, text, what):
    pairs = split_opts(text)
    iface = opt_get(pairs, 'if') or st.fam.get('if')
    media = opt_get(pairs, 'media', 'disk')
    file = opt_get(pairs, 'file')
    check_drive(st, pairs, iface, media, what)
    if not file:
        empty_cdrom(st, pairs, iface, media, what)
        return
    if not is_local_path(file):
        raise QrrError(f'{what}: file={file}: only local image files '
                       'are supported')
    disk = Disk(len(st.plan.disks), st.upath(file), opt_get(pairs, 'format'),
                media, iface)
    st.plan.disks.append(disk)
    st.out.extend(drive_nodes(st, pairs, disk))
    attach(st, pairs, disk, what)


def opt_drive(st, name, value, what):
    add_drive(st, value, what)


def opt_hdx(st, name, value, what):
    index = 'abcd'.index(name[2])
    add_drive(st, f'file={escape(value)},index={index},media=disk', what)


def opt_cdrom(st, name, value, what):
    add_drive(st, f'file={escape(value)},index=2,media=cdrom', what)


HANDLERS = {'drive': opt_drive, 'hda': opt_hdx, 'hdb': opt_hdx,
            'hdc': opt_hdx, 'hdd': opt_hdx, 'cdrom': opt_cdrom}


def device_drive(text, drive_ids):
    """Point a -device's drive= at the blkreplay node of that drive."""
    if not drive_ids:
        return text
    if text.startswith('{'):
        try:
            obj = json.loads(text)
        except ValueError:
            return text
        if obj.get('drive') in drive_ids:
            obj['drive'] = drive_ids[obj['drive']]
            return json.dumps(obj)
        return text
    pairs = split_opts(text, 'driver')
    changed = False
    for p in pairs:
        if p[0] == 'drive' and p[1] in drive_ids:
            p[1] = drive_ids[p[1]]
            changed = True
    return join_opts(pairs, 'driver') if changed else text


def repoint_devices(st):
    """-device drive=ID: the user's if=none drives now go by qrr-blkN."""
    out = st.out
    for i in range(len(out) - 1):
        if out[i] in ('-device', '--device'):
            out[i + 1] = device_drive(out[i + 1], st.drive_ids)
