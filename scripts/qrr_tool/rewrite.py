# qrr: the command line rewriter
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""rewrite(): the user's QEMU command line in, the record or replay
command line out, with the disks, network backends and output files the
trace directory has to hold.  A pure function: it touches no file (the
one question it has about the file system, whether a -bios name is a file
in the user's directory, is answered by the caller's @is_file).

Each option goes to the handler that the HANDLERS table names for it
(disks, netdevs, outputs, or one here); an option without a handler is
passed on as it is."""

from qrr_tool import disks, machines, netdevs, outputs
from qrr_tool.common import QrrError
from qrr_tool.options import join_opts, opt_get, parse_argv, split_opts
from qrr_tool.plan import State

LOG = 'replay.rr'

# Options qrr refuses, with the reason.
UNSUPPORTED = {
    'blockdev': 'use -drive instead (qrr puts each -drive behind blkreplay)',
    'fda': 'floppy disks are not supported',
    'fdb': 'floppy disks are not supported',
    'sd': 'SD card drives are not supported',
    'mtdblock': 'MTD drives are not supported',
    'pflash': 'writable flash is not supported (use -bios for firmware)',
    'virtfs': 'host file system passthrough is not recorded',
    'fsdev': 'host file system passthrough is not recorded',
    'readconfig': 'put the options on the command line',
    'loadvm': 'snapshots in the disk images are not supported',
    'incoming': 'incoming migration is not supported',
    'daemonize': 'qrr has to wait for QEMU',
    'enable-kvm': 'record/replay needs TCG',
}

# Input files on the command line: absolute at record, copied by pack.
FILE_OPTS = ('kernel', 'initrd', 'dtb', 'bios')


def icount_arg(value, mode, rrfile):
    """The -icount argument: the user's options with qrr's rr= and rrfile=.
    """
    pairs = split_opts(value, 'shift') if value else []
    for bad in ('rr', 'rrfile'):
        if opt_get(pairs, bad) is not None:
            raise QrrError(f'-icount {value}: qrr sets {bad}= itself; '
                           'drop it from your command line')
    if opt_get(pairs, 'rrsnapshot') is not None:
        raise QrrError(f'-icount {value}: rrsnapshot= is not supported by '
                       'qrr')
    shift = opt_get(pairs, 'shift', 'auto')
    rest = [(k, v, b) for k, v, b in pairs if k != 'shift']
    return join_opts([('shift', shift)] + rest +
                     [('rr', mode), ('rrfile', rrfile)])


def opt_icount(st, name, value, what):
    st.icount_seen = True
    st.out.extend(['-icount', icount_arg(value, st.mode, st.tpath(LOG))])


def opt_snapshot(st, name, value, what):
    st.plan.notes.append('-snapshot dropped: qrr never writes your images '
                         '(it records on an overlay)')


def opt_input_file(st, name, value, what):
    # -bios NAME is also looked up in QEMU's data directories
    if name != 'bios' or '/' in value or st.is_file(st.upath(value)):
        value = st.upath(value)
    st.out.extend(['-' + name, value])


def opt_data_dir(st, name, value, what):
    st.out.extend(['-L', st.upath(value)])


def opt_refused(st, name, value, what):
    raise QrrError(f'-{name} is not supported by qrr: {UNSUPPORTED[name]}')


def opt_as_is(st, name, value, what):
    st.out.extend(['-' + name] if value is None else ['-' + name, value])


HANDLERS = dict(
    {n: opt_refused for n in UNSUPPORTED},
    **{n: opt_input_file for n in FILE_OPTS},
    **disks.HANDLERS, **netdevs.HANDLERS, **outputs.HANDLERS,
    icount=opt_icount, snapshot=opt_snapshot, L=opt_data_dir)


def finish(st):
    """What goes after the user's options: -icount, -net none, devices."""
    disks.repoint_devices(st)
    if not st.icount_seen:
        st.out.extend(['-icount', icount_arg(None, st.mode, st.tpath(LOG))])
    netdevs.default_net(st)
    machines.default_cdrom(st)
    st.plan.args = st.out + st.tail


def rewrite(args, arch, mode='record', trace_dir=None, cwd='/',
            is_file=lambda path: False):
    """Rewrite the user's QEMU arguments (without argv[0]) for qrr.

    @mode is 'record' or 'replay'; paths into the trace directory are
    joined to @trace_dir (relative when None); the user's relative paths
    are made absolute against @cwd.  Returns a Plan: .args, the command
    line; .disks, .netdevs and .outputs, what it records; .notes, what the
    user should know.  Raises QrrError for what qrr does not support.
    """
    st = State(mode, trace_dir, cwd, is_file)
    items = parse_argv(args)
    machines.scan(st, items, arch)
    for name, value in items:
        what = f'-{name} {value}' if value is not None else f'-{name}'
        HANDLERS.get(name, opt_as_is)(st, name, value, what)
    finish(st)
    return st.plan
