# qrr: what the command line rewriter yields
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""The rewriter's result (Plan, with its Disks and Outputs) and the state
its option handlers share (State).  Nothing here touches a file."""

import os

# Where the outputs the command line names go, inside the trace directory.
OUTPUT_DIRS = {'record': os.path.join('outputs', 'record'),
               'replay': os.path.join('outputs', 'replay')}


class Disk:
    """One of the user's disks, recorded through an overlay."""

    def __init__(self, n, source, fmt, media, iface):
        self.n = n
        self.source = source        # the user's image, absolute
        self.format = fmt           # None: detect with qemu-img info
        self.media = media
        self.iface = iface
        self.base = f'disk-{n}.base.qcow2'
        self.overlay = f'disk-{n}.qcow2'

    def as_dict(self):
        return {'n': self.n, 'source': self.source, 'format': self.format,
                'media': self.media, 'if': self.iface, 'base': self.base,
                'overlay': self.overlay}


class Output:
    """A file that the user's command line has QEMU write (-serial file:,
    -chardev file, -D ...): the recording writes it into the trace and qrr
    copies it to @user_path; a replay writes its own copy next to it."""

    def __init__(self, n, option, user_path, append=False):
        self.n = n
        self.option = option        # as the user wrote it
        self.user_path = user_path  # absolute
        self.append = append
        self.name = f'{n}-{os.path.basename(user_path) or "output"}'

    def path(self, mode):
        """Its place in the trace directory, for 'record' or 'replay'."""
        return os.path.join(OUTPUT_DIRS[mode], self.name)

    def as_dict(self):
        return {'n': self.n, 'option': self.option,
                'user_path': self.user_path, 'append': self.append,
                'record': self.path('record'), 'replay': self.path('replay')}


class Plan:
    """The rewritten command line and what it needs in the trace dir."""

    def __init__(self):
        self.args = []
        self.disks = []
        self.netdevs = []           # (netdev id, filter id)
        self.outputs = []
        self.notes = []
        self.machine = None
        self.ram = None


class State:
    """What the option handlers of one rewrite share."""

    def __init__(self, mode, trace_dir, cwd, is_file):
        self.mode = mode            # 'record' or 'replay'
        self.trace_dir = trace_dir
        self.cwd = cwd
        self.is_file = is_file
        self.plan = Plan()
        self.fam = {}               # machines.FAMILIES entry
        self.nodefaults = False
        self.has_net = False
        self.no_default_cdrom = False
        self.icount_seen = False
        self.out = []               # the user's options, rewritten
        self.tail = []              # devices and filters, after everything
        self.drive_ids = {}         # user's if=none id -> blkreplay id
        self.ide_used = set()
        self.nics = 0

    def tpath(self, name):
        """@name in the trace directory (relative when it is None)."""
        return os.path.join(self.trace_dir, name) if self.trace_dir else name

    def upath(self, value):
        """The user's path @value, absolute."""
        return os.path.normpath(os.path.join(self.cwd, value))
