# qrr debug
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""qrr debug: replay a trace paused at its start with a gdb stub, and run
gdb (gdb-multiarch by default) attached to it."""

import os
import shutil
import signal
import socket
import subprocess

from qrr_tool.common import QrrError, warn
from qrr_tool.replay import prepare
from qrr_tool.trace import cleanup, open_trace


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def find_gdb(opts):
    gdb = shutil.which(opts.gdb) or (
        opts.gdb if os.access(opts.gdb, os.X_OK) else None)
    if not gdb:
        raise QrrError(f'{opts.gdb} not found (install gdb-multiarch '
                       'or give --gdb)')
    if opts.vmlinux and not os.path.isfile(opts.vmlinux):
        raise QrrError(f'{opts.vmlinux}: no such file')
    return gdb


def start_qemu(trace, qemu, port):
    """QEMU replaying @trace, stopped, its gdb stub on @port."""
    cmd = [qemu] + trace.cmdline[1:] + ['-S', '-gdb', f'tcp:127.0.0.1:{port}']
    out = trace.path('debug-stdout.txt')
    err = trace.path('debug-stderr.txt')
    with open(out, 'wb') as fo, open(err, 'wb') as fe:
        qp = subprocess.Popen(cmd, cwd=trace.dir, stdin=subprocess.DEVNULL,
                              stdout=fo, stderr=fe, start_new_session=True)
    warn(f'replaying under gdb on port {port}; the guest output goes '
         f'to {out}, QEMU messages to {err}')
    return qp


def arch_settings(cmdline):
    """gdb settings for the guest that @cmdline (the recorded command
    line) runs.  On ARM, gdb's default ABI (APCS) has it unwind a 32-bit
    guest's frames wrongly (it faulted at 3 of 40 positions of an armhf
    kernel); the armhf ABI is AAPCS.  gdb-multiarch ignores the setting
    for an AArch64 guest."""
    if os.path.basename(cmdline[0]).endswith(('-aarch64', '-arm')):
        return ['-ex', 'set arm abi AAPCS']
    return []


def gdb_command(opts, gdb, port, cmdline):
    gcmd = [gdb, '-q']
    if opts.vmlinux:
        gcmd.append(os.path.abspath(opts.vmlinux))
    gcmd += arch_settings(cmdline)
    gcmd += ['-ex', 'set tcp connect-timeout 30',
             '-ex', f'target remote 127.0.0.1:{port}']
    if opts.at is not None:
        gcmd += ['-ex', f'monitor replay_break {opts.at}',
                 '-ex', 'continue']
    return gcmd


def stop(qp):
    if qp.poll() is None:
        qp.terminate()
        try:
            qp.wait(10)
        except subprocess.TimeoutExpired:
            qp.kill()
            qp.wait()


def run_gdb(gcmd, qp):
    """Run gdb in the foreground (^C is gdb's), then end QEMU."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.call(gcmd, preexec_fn=lambda: signal.signal(
            signal.SIGINT, signal.SIG_DFL))
    except OSError as e:
        raise QrrError(f'{gcmd[0]}: {e.strerror}') from None
    finally:
        signal.signal(signal.SIGINT, old)
        stop(qp)


def cmd_debug(opts):
    stack = []
    try:
        trace = open_trace(opts.trace, stack)
        trace.check_log()
        gdb = find_gdb(opts)
        qemu = prepare(trace, opts.qemu_dir)
        port = opts.port or free_port()
        qp = start_qemu(trace, qemu, port)
        return run_gdb(gdb_command(opts, gdb, port, trace.cmdline), qp)
    finally:
        cleanup(stack)
