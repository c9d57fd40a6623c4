# Run scripts/qrr (the one-command tool) from tests and the demo, typing a
# line when the guest prompts, as qrrtest.run() does for QEMU itself.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import subprocess
import sys
import threading
import time

import qrrtest as q

QRR = q.TOP / 'scripts' / 'qrr'


def run(args, typed=None, timeout=q.DEFAULT_TIMEOUT, env=None, cwd=None):
    """Run `qrr ARGS`; when the guest prompts (QRR-PROMPT), type @typed.

    Returns a qrrtest.Result (rc None if killed after @timeout).
    """
    cmd = [sys.executable, str(QRR)] + [str(a) for a in args]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=cwd)
    out = bytearray()
    err = bytearray()

    def pump_out():
        sent = False
        while True:
            b = p.stdout.read1(65536)
            if not b:
                return
            out.extend(b)
            if typed is not None and not sent and b'QRR-PROMPT' in out:
                sent = True
                try:
                    p.stdin.write(typed.encode() + b'\r')
                    p.stdin.flush()
                except BrokenPipeError:
                    pass

    def pump_err():
        while True:
            b = p.stderr.read1(65536)
            if not b:
                return
            err.extend(b)

    threads = [threading.Thread(target=pump_out, daemon=True),
               threading.Thread(target=pump_err, daemon=True)]
    for t in threads:
        t.start()
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = None
    for t in threads:
        t.join(10)
    return q.Result(rc, bytes(out), bytes(err), time.monotonic() - t0)
