# qrr: talking to QEMU over QMP
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""A minimal QMP client, and the replay's progress shown from it."""

import json
import os
import socket
import sys
import threading
import time


class Qmp:
    """A minimal QMP client over a Unix socket."""

    def __init__(self, path, timeout=5):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b''
        self.read()                         # greeting
        self.cmd('qmp_capabilities')

    def read(self):
        while b'\n' not in self.buf:
            b = self.sock.recv(65536)
            if not b:
                raise OSError('QMP connection closed')
            self.buf += b
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {'execute': name}
        if args:
            msg['arguments'] = args
        self.sock.sendall(json.dumps(msg).encode() + b'\n')
        while True:
            r = self.read()
            if 'return' in r:
                return r['return']
            if 'error' in r:
                raise OSError(r['error'].get('desc', 'QMP error'))

    def close(self):
        self.sock.close()


class Progress:
    """Replay progress on stderr: icount from QMP query-replay."""

    def __init__(self, sock_path, total, record_time, tty):
        self.sock_path = sock_path
        self.total = total
        self.record_time = record_time
        self.tty = tty
        self.done = threading.Event()
        self.thread = None
        self.shown = False

    def start(self, proc):
        self.proc = proc
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def stop(self):
        self.done.set()
        if self.thread:
            self.thread.join(5)
        if self.shown and self.tty:
            sys.stderr.write('\r\033[K')
            sys.stderr.flush()

    def show(self, text):
        if self.tty:
            sys.stderr.write('\r\033[K' + text)
        else:
            sys.stderr.write(text + '\n')
        sys.stderr.flush()
        self.shown = True

    def connect(self, qmp):
        """@qmp, or a new connection once QEMU made its socket."""
        if qmp is None and os.path.exists(self.sock_path):
            try:
                return Qmp(self.sock_path)
            except (OSError, ValueError):
                return None
        return qmp

    def icount_line(self, now, icount, first):
        pct = 100.0 * icount / self.total
        rate = (icount - first[1]) / (now - first[0]) \
            if now > first[0] else 0
        eta = (f'ETA {(self.total - icount) / rate:.0f} s'
               if rate > 0 else 'ETA ?')
        return (f'qrr: replay at icount {icount} of {self.total} '
                f'({pct:.1f}%), {eta}')

    def time_line(self, elapsed):
        """Without QMP: an estimate from the recording's wall time."""
        return (f'qrr: replaying, {elapsed:.0f} s of about '
                f'{self.record_time:.0f} s (recorded in that time; '
                f'{self.total or "?"} instructions)')

    def run(self):
        t0 = time.monotonic()
        qmp = None
        first = None
        interval = 1 if self.tty else 5
        while not self.done.wait(interval if qmp else 0.2):
            now = time.monotonic()
            qmp = self.connect(qmp)
            icount = None
            if qmp:
                try:
                    icount = qmp.cmd('query-replay').get('icount')
                except (OSError, ValueError):
                    qmp = None
            if icount is not None and self.total:
                first = first or (now, icount)
                self.show(self.icount_line(now, icount, first))
            elif qmp is None and self.record_time and now - t0 > 2:
                self.show(self.time_line(now - t0))
        if qmp:
            qmp.close()
