# QEMU run live by a test: a QMP socket to drive it while it runs, and its
# standard output (the guest's serial port) and error collected meanwhile.
# And what the input tests (test_input.py, test_input_linux.py) share:
# the input events they inject, the events that reached a device, the
# log's input positions, a replay given live input.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import re
import subprocess
import threading
import time

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

    def wait_for(self, what, deadline):
        """Wait until the guest printed @what (bytes, or a function of the
        output) or QEMU exited."""
        done = what if callable(what) else (lambda out: what in out)
        while not done(bytes(self.out)):
            assert self.proc.poll() is None, \
                'QEMU exited early: ' + self.describe()
            assert time.monotonic() < deadline, \
                f'the guest did not print {what!r}: ' + self.describe()
            time.sleep(0.01)

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


# Every event that reaches a device, from ui/input.c's trace points.
TRACE = ['-trace', 'input_event_*']
DELIVERED = re.compile(r'(input_event_\w+.*?)\s*$', re.M)


def key(k, down):
    """A key event; @k a qcode name or a key number."""
    v = {'type': 'number', 'data': k} if isinstance(k, int) else \
        {'type': 'qcode', 'data': k}
    return {'type': 'key', 'data': {'down': down, 'key': v}}


def rel(axis, value):
    return {'type': 'rel', 'data': {'axis': axis, 'value': value}}


def abs_(axis, value):
    """An absolute pointer position, 0 to 0x7fff on each axis."""
    return {'type': 'abs', 'data': {'axis': axis, 'value': value}}


def btn(button, down):
    return {'type': 'btn', 'data': {'down': down, 'button': button}}


def send(qmp, what):
    """Inject @what: a list of input events (one input-send-event), or a
    string (an HMP sendkey)."""
    if isinstance(what, str):
        qmp.ok('human-monitor-command', **{'command-line': 'sendkey ' + what})
    else:
        qmp.ok('input-send-event', events=what)


def inject_steps(g, steps, seen, wait=30, pause=0.15):
    """Inject into @g, a LiveQemu, each of @steps, a list of (what to send,
    the list of what the guest shows of it); after each, wait (@wait s at
    most) until @seen, a function of the guest's output that lists what it
    showed, has as many items as the steps so far, then @pause s more.
    Returns what the steps should have shown, in order."""
    want = []
    for what, shows in steps:
        send(g.qmp, what)
        want += shows
        g.wait_for(lambda out, n=len(want): len(seen(out)) >= n,
                   time.monotonic() + wait)
        time.sleep(pause)
    return want


def delivered(r):
    """The input events that reached a device, in order (from the stderr
    of a run with TRACE)."""
    return DELIVERED.findall(r.err.decode(errors='replace'))


def input_icounts(log):
    """The instruction counts at which the log delivers input events
    (replay-dump.py --json), each once."""
    return sorted({e['icount'] for e in q.log_events(log)
                   if e['kind'] == 'input'})


def replay_with_live_input(g, stops, live):
    """Drive @g, a replay started with -S: pause at each of @stops; at
    each, let the replay run on, inject the next item of @live (cycled,
    see send), and only then set the next stop, so that the machine runs
    while the input is injected (a stop that the replay has passed
    meanwhile is skipped).  Returns @g's Result, how many items were
    injected and how many of them found the replay running (query-status
    right after the injection)."""
    sent = running = 0
    pending = list(stops)
    try:
        g.qmp.ok('replay-break', icount=pending.pop(0))
        g.qmp.ok('cont')
        stopped = True
        while stopped:
            g.qmp.wait_event('STOP')
            g.qmp.events.clear()
            g.qmp.ok('cont')
            try:
                send(g.qmp, live[sent % len(live)])
                sent += 1
                running += g.qmp.ok('query-status')['running']
            except (OSError, EOFError):
                break       # the replay may reach its end meanwhile
            except RuntimeError as e:
                # or reach the recorded power-off (run state "shutdown")
                # and refuse the input before it exits
                if 'VM not running' not in str(e):
                    raise
                break
            stopped = False
            while pending and not stopped:
                try:
                    r = g.qmp.cmd('replay-break', icount=pending.pop(0))
                except (OSError, EOFError):
                    break       # the end: rc and output say whether right
                stopped = 'return' in r
    finally:
        rep = g.finish()
    return rep, sent, running
