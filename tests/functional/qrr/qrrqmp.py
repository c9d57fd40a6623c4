# A minimal QMP client over a UNIX socket, for the functional tests and
# the benchmark (tooling/bench.py): commands, their answers, and the
# events that arrive in between.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import socket
import time


class QMP:
    """Connects to @path (waiting up to 60 s for QEMU to listen); every
    read then times out after @timeout seconds."""

    def __init__(self, path, timeout=60):
        deadline = time.monotonic() + 60
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile('rwb')
        self.events = []
        json.loads(self.file.readline())
        self.ok('qmp_capabilities')

    def _read(self):
        line = self.file.readline()
        if not line:
            raise EOFError('QEMU closed the QMP connection')
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {'execute': name}
        if args:
            msg['arguments'] = args
        self.file.write(json.dumps(msg).encode() + b'\n')
        self.file.flush()
        while True:
            r = self._read()
            if 'event' in r:
                self.events.append(r)
            else:
                return r

    def ok(self, name, **args):
        """The command's return value; its error raises RuntimeError."""
        r = self.cmd(name, **args)
        if 'return' not in r:
            raise RuntimeError(f'QMP {name} {args}: {r}')
        return r['return']

    def wait_event(self, name):
        while True:
            for i, e in enumerate(self.events):
                if e['event'] == name:
                    return self.events.pop(i)
            r = self._read()
            if 'event' in r:
                self.events.append(r)

    def seek(self, icount, timeout=600):
        """replay-seek and wait until the machine stopped there.  The
        events sent before (a STOP for gdb) are read first and dropped:
        a command's answer comes after them.  The STOP may take up to
        @timeout seconds, not the read timeout of other commands: a seek
        to a place not visited yet replays the whole way forward (a test
        that seeks to 15/16 of a 55 s recording of the Linux guest waited
        47 s on a quiet host, and timed out at 60 s when make check ran
        two replays at once)."""
        self.ok('query-status')
        self.events.clear()
        self.ok('replay-seek', icount=icount)
        read_timeout = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            self.wait_event('STOP')
        finally:
            self.sock.settimeout(read_timeout)
        return self.ok('query-replay')['icount']

    def close(self):
        self.sock.close()
