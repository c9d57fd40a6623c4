# qrr: the rewriter's output files
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""The files the user's command line has QEMU write: -serial file:,
-parallel file:, -debugcon file:, -monitor file:, -chardev file and -D.

Each becomes an Output: the recording writes it into the trace directory
(outputs/record/, qrr copies it to the user's path afterwards), a replay
into outputs/replay/, so no replay writes a file of the user's and qrr can
compare the two.  What goes to a pipe, a socket or a pty cannot be kept:
a guest channel (-serial, -parallel, -debugcon) there is refused; -chardev
socket (usually a monitor) is left alone."""

from qrr_tool.common import QrrError
from qrr_tool.options import join_opts, opt_get, split_opts
from qrr_tool.plan import Output

# Options taking a legacy character device ('file:PATH', 'stdio', ...).
CHARDEV_SPECS = ('serial', 'parallel', 'debugcon', 'monitor')
# Those the guest writes its output to.
GUEST_CHANNELS = ('serial', 'parallel', 'debugcon')
NOT_KEPT = ('pipe:', 'tcp:', 'telnet:', 'unix:', 'udp:', 'websocket:')
NOT_KEPT_WHY = ('qrr cannot keep a copy of what the guest writes to a '
                'pipe, socket or pty, so no replay could be compared '
                '(write to a file or to stdio)')


def redirect(st, what, user_value, append=False):
    """Register an Output; the path QEMU writes in this mode."""
    out = Output(len(st.plan.outputs), what, st.upath(user_value), append)
    st.plan.outputs.append(out)
    return st.tpath(out.path(st.mode))


def opt_chardev_spec(st, name, value, what):
    mon = 'mon:' if value.startswith('mon:') else ''
    spec = value[len(mon):]
    if spec.startswith('file:'):
        value = f'{mon}file:{redirect(st, what, spec[len("file:"):])}'
    elif name in GUEST_CHANNELS and (spec == 'pty' or
                                     spec.startswith(NOT_KEPT)):
        raise QrrError(f'{what}: {NOT_KEPT_WHY}')
    st.out.extend(['-' + name, value])


def opt_chardev(st, name, value, what):
    pairs = split_opts(value, 'backend')
    backend = opt_get(pairs, 'backend')
    if backend == 'pipe':
        raise QrrError(f'{what}: {NOT_KEPT_WHY}')
    if backend == 'file':
        path = opt_get(pairs, 'path')
        if not path:
            raise QrrError(f'{what}: path= is missing')
        append = opt_get(pairs, 'append', 'off') == 'on'
        new = redirect(st, what, path, append)
        pairs = [[k, new if k == 'path' else v, b] for k, v, b in pairs]
        value = join_opts(pairs, 'backend')
    st.out.extend(['-chardev', value])


def opt_log_file(st, name, value, what):
    if '%d' in value:
        raise QrrError(f'{what}: a log file name with %d (the process id) '
                       'is not supported by qrr')
    st.out.extend(['-D', redirect(st, what, value)])


HANDLERS = dict({n: opt_chardev_spec for n in CHARDEV_SPECS},
                chardev=opt_chardev, D=opt_log_file)

