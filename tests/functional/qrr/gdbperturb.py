# Perturbing a replay from outside, through what a user has: the replay
# starts paused with a gdb server (-S -gdb), gdb-multiarch (batch mode,
# the Python script GDB_SCRIPT below) stops it at an instruction count
# with the monitor's "replay_break", flips one bit of a register of a
# chosen vCPU ("thread N", then "set $REG = $REG ^ MASK") and continues.
# A replay whose guest state was changed must stop itself with a
# divergence error; gdb then loses its connection, which is expected.
#
# sync_points() lists the sync points of a log (scripts/qrr_tool's log
# reader), so that a test can break exactly at one: the break freezes the
# replay on arrival at that instruction count, before the interrupt or
# exception there is taken, so the sync point compares the flipped
# register.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import subprocess
import sys
import threading
import time

import qrrtest as q

sys.path.insert(0, str(q.TOP / 'scripts'))

from qrr_tool import logreader as rd  # noqa: E402

GDB = os.environ.get('QRR_GDB', 'gdb-multiarch')

GDB_SCRIPT = r'''
import gdb, json, os, re

p = json.loads(os.environ['QRR_PERTURB'])
out = {}

def icount():
    s = gdb.execute('monitor info replay', to_string=True)
    return int(re.search(r'instruction count = (\d+)', s).group(1))

def done(**kw):
    out.update(kw)
    with open(p['out'], 'w') as f:
        json.dump(out, f)

gdb.execute('set pagination off')
gdb.execute('set confirm off')
try:
    gdb.execute('monitor replay_break %d' % p['icount'], to_string=True)
    gdb.execute('continue', to_string=True)
    out['stopped_at'] = icount()
    for i in range(p['stepi']):
        gdb.execute('stepi', to_string=True)
    out['flipped_at'] = icount()
    if p['thread'] is not None:
        gdb.execute('thread %d' % p['thread'], to_string=True)
    out['thread'] = gdb.selected_thread().num
    reg = '$' + p['reg']
    out['before'] = int(gdb.parse_and_eval(reg)) & 0xffffffffffffffff
    # a cast: $pc and $sp are pointers, which gdb does not XOR
    gdb.execute('set var %s = (unsigned long long) %s ^ %#x'
                % (reg, reg, 1 << p['bit']))
    out['after'] = int(gdb.parse_and_eval(reg)) & 0xffffffffffffffff
except gdb.error as e:
    done(error=str(e))
    raise
done()
try:
    text = gdb.execute('continue', to_string=True)
except gdb.error as e:
    done(**{'continue': str(e)})    # the replay stopped: connection closed
else:
    # the replay ran on and paused (at the end of the log, say): end it
    # now rather than at the test's timeout
    done(**{'continue': 'stopped: ' + text})
    gdb.execute('monitor quit', to_string=True)
'''


class Perturbed:
    """What a perturbed replay did: @result (QEMU's qrrtest.Result) and
    what gdb saw (@stopped_at, @flipped_at, @thread, @before, @after: the
    icount where the replay stopped and where gdb flipped the bit, the gdb
    thread and the register before and after the flip)."""

    def __init__(self, result, seen, gdb_output):
        self.result = result
        self.seen = seen
        self.gdb_output = gdb_output
        self.stopped_at = seen.get('stopped_at')
        self.flipped_at = seen.get('flipped_at')
        self.thread = seen.get('thread')
        self.before = seen.get('before')
        self.after = seen.get('after')

    def describe(self):
        qemu = self.result.describe() if self.result else 'QEMU never ended'
        return (qemu + f'\n--- gdb saw ---\n{self.seen}\n'
                f'--- gdb output ---\n{self.gdb_output}')


def flip_register(tmp_path, arch, args, log, icount, reg, bit, thread=None,
                  stepi=0, timeout=120):
    """Replay @log (QEMU arguments @args) under gdb, stop it at @icount,
    step @stepi instructions (gdb's stepi: one at a stop before an
    interrupt or exception takes it, stopping at the first instruction of
    its vector), flip bit @bit of register @reg (gdb's name: 'pc', 'x2',
    ...) of gdb thread @thread (vCPU @thread - 1; None: the one gdb
    selected) and continue.  Returns a Perturbed once QEMU has exited."""
    sock = tmp_path / 'gdb.sock'
    out = tmp_path / 'gdb.json'
    script = tmp_path / 'perturb.py'
    for p in (sock, out):
        if p.exists():
            p.unlink()
    script.write_text(GDB_SCRIPT)
    qargs = args + q.icount_opt('replay', log) + [
        '-S', '-gdb', f'unix:{sock},server=on,wait=off']
    box = {}
    t = threading.Thread(target=lambda: box.update(
        r=q.run(arch, qargs, timeout=timeout)), daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not sock.exists() and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    gdb_output = ''
    if sock.exists():
        env = dict(os.environ, QRR_PERTURB=json.dumps(dict(
            icount=icount, reg=reg, bit=bit, thread=thread, stepi=stepi,
            out=str(out))))
        try:
            g = subprocess.run([GDB, '-nx', '-batch',
                                '-ex', f'target remote {sock}',
                                '-x', str(script)],
                               env=env, capture_output=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
            gdb_output = (g.stdout + g.stderr).decode(errors='replace')
        except subprocess.TimeoutExpired as e:
            gdb_output = f'gdb timed out after {e.timeout} s'
    t.join(timeout + 30)
    seen = json.loads(out.read_text()) if out.exists() else {}
    return Perturbed(box.get('r'), seen, gdb_output)


def events(log):
    """The events of @log in log order, as (kind name, icount, args)."""
    reader = rd.LogReader(str(log))
    try:
        reader.read_header()
        return [(e.name, e.icount, e.args) for e in reader.events_iter()]
    finally:
        reader.close()


def first_vcpu_event(log, icount):
    """The icount of the first interrupt or exception of @log at or after
    @icount."""
    return next(i for k, i, _ in events(log)
                if k in ('interrupt', 'exception') and i >= icount)


def sync_points(log):
    """The sync points of @log in log order, as (icount, seq, vcpu): vcpu
    is the vCPU that took the interrupt or exception there (that of the
    last sched event before it; 0 before any)."""
    points = []
    vcpu = 0
    for kind, icount, args in events(log):
        if kind == 'sched':
            vcpu = args[0]
        elif kind == 'sync':
            points.append((icount, args[0], vcpu))
    return points
