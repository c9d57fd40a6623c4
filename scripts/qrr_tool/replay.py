# qrr replay
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""qrr replay: run a trace's replay command line in the trace directory
(fresh overlays, outputs into outputs/replay/), then compare what it
wrote with what the recording wrote."""

import os
import sys
import tempfile

from qrr_tool import compare
from qrr_tool.common import warn
from qrr_tool.qemu import check_binary, find_trace_qemu
from qrr_tool.qmp import Progress
from qrr_tool.runner import exit_status, run_qemu
from qrr_tool.trace import (RECORD_OUT, REPLAY_ERR, REPLAY_OUT, cleanup,
                            open_trace)


def prepare(trace, qemu_dir):
    """Check the trace and reset what a replay writes: the QEMU to run."""
    trace.check_log()
    qemu = find_trace_qemu(trace, qemu_dir)
    trace.fresh_overlays()
    trace.fresh_outputs()
    check_binary(trace.manifest, qemu)
    return qemu


def with_progress(opts, trace, cmd, stack):
    """A Progress (and its QMP socket on @cmd) when it is wanted."""
    progress = opts.progress
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    sockdir = tempfile.mkdtemp(prefix='qrr-qmp-')
    stack.append(sockdir)
    sock = os.path.join(sockdir, 'qmp.sock')
    cmd += ['-qmp', f'unix:{sock},server=on,wait=off']
    m = trace.manifest
    return Progress(sock, m.get('icount'), m.get('record_wall_time'),
                    sys.stderr.isatty())


def with_verify(cmd):
    """@cmd with rrverify=on added to its -icount option."""
    i = cmd.index('-icount')
    return cmd[:i + 1] + [cmd[i + 1] + ',rrverify=on'] + cmd[i + 2:]


def cmd_replay(opts):
    stack = []
    try:
        trace = open_trace(opts.trace, stack)
        qemu = prepare(trace, opts.qemu_dir)
        cmd = [qemu] + trace.cmdline[1:]
        if opts.verify:
            cmd = with_verify(cmd)
        prog = with_progress(opts, trace, cmd, stack)
        rc, wall = run_qemu(cmd, trace.dir,
                            [trace.path(REPLAY_OUT), opts.serial_out],
                            [trace.path(REPLAY_ERR)], prog)
        same = compare.report(compare.comparisons(
            trace, trace.path(RECORD_OUT), trace.path(REPLAY_OUT)))
        warn(f'replay exited with status {rc} after {wall:.1f} s; '
             f'{compare.VERDICT_TEXT[same]}')
        if rc == 0 and same is False:
            return 3        # a replay that differs is no success
        return exit_status(rc)
    finally:
        cleanup(stack)
