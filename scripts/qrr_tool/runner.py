# qrr: running QEMU
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""Run QEMU in the foreground with its standard output and error copied,
as they come, to ours and to files."""

import signal
import subprocess
import sys
import threading
import time

from qrr_tool.common import QrrError


class Tee(threading.Thread):
    """Copy a pipe to our stream and to files, as it comes."""

    def __init__(self, pipe, stream, files):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.stream = stream
        self.files = [f for f in files if f]

    def run(self):
        while True:
            try:
                b = self.pipe.read1(65536)
            except (OSError, ValueError):
                return
            if not b:
                return
            for f in [self.stream] + self.files:
                try:
                    f.write(b)
                    f.flush()
                except (OSError, ValueError):
                    pass


def open_all(paths):
    try:
        return [open(f, 'wb') if f else None for f in paths]
    except OSError as e:
        raise QrrError(f'{e.filename}: {e.strerror}') from None


def run_qemu(cmd, cwd, out_files, err_files, progress=None):
    """Run QEMU with stdin inherited, stdout/stderr tee'd to files.

    Returns (exit status, wall time).  SIGINT/SIGTERM reach QEMU (the
    terminal sends SIGINT to both of us) and end it cleanly; qrr waits.
    """
    t0 = time.monotonic()
    outs = open_all(out_files)
    errs = open_all(err_files)
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.getsignal(signal.SIGTERM)
    try:
        p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE,
                             preexec_fn=lambda: signal.signal(
                                 signal.SIGINT, signal.SIG_DFL))
    except OSError as e:
        signal.signal(signal.SIGINT, old_int)
        raise QrrError(f'{cmd[0]}: {e.strerror}') from None
    signal.signal(signal.SIGTERM, lambda *_: p.terminate())
    tees = [Tee(p.stdout, sys.stdout.buffer, outs),
            Tee(p.stderr, sys.stderr.buffer, errs)]
    for t in tees:
        t.start()
    if progress:
        progress.start(p)
    try:
        rc = p.wait()
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        if progress:
            progress.stop()
        for t in tees:
            t.join(10)
        for f in outs + errs:
            if f:
                f.close()
    return rc, time.monotonic() - t0


def exit_status(rc):
    return 128 - rc if rc < 0 else rc
