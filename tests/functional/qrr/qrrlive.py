# QEMU run live by a test: a QMP socket to drive it while it runs, and its
# standard output (the guest's serial port) and error collected meanwhile.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import subprocess
import threading

import qrrtest as q
from qrrqmp import QMP


class LiveQemu:
    """Runs @cmd (the binary and its arguments) with a QMP server on @sock,
    whose reads time out after @qmp_timeout seconds."""

    def __init__(self, cmd, sock, qmp_timeout=60):
        self.sock = sock
        if sock.exists():
            sock.unlink()
        self.cmd = list(cmd) + ['-qmp', f'unix:{sock},server=on,wait=off']
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = bytearray()
        self.threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout,
                                                      self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr,
                                                      self.err), daemon=True)]
        for t in self.threads:
            t.start()
        try:
            self.qmp = QMP(sock, timeout=qmp_timeout)
        except (OSError, EOFError) as e:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            raise AssertionError(f'no QMP: {e}: ' + self.describe())

    @staticmethod
    def _pump(f, buf):
        while True:
            b = f.read1(65536)
            if not b:
                return
            buf.extend(b)

    def describe(self):
        return q.Result(self.proc.poll(), bytes(self.out), bytes(self.err),
                        0).describe()

    def finish(self, timeout=60):
        """Wait for QEMU to exit (killed after @timeout s); a q.Result."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        for t in self.threads:
            t.join(10)
        self.qmp.close()
        q.check_sanitizers(self.cmd, bytes(self.err))
        return q.Result(rc, bytes(self.out), bytes(self.err), 0)
