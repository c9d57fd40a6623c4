#!/usr/bin/python3
# qrr benchmark: qrr's build side by side with upstream QEMU's replay (the
# same Debian base, built with its own replay kept), one markdown table
# per architecture and section.
#
#   bench.py [--runs N] [--arch x86_64,aarch64]
#            [--only boot|smp|timetravel|linuxtt|ttcost]
#            [--tt-timeout SECONDS] [--out FILE]
#
# Sections (all by default; --only picks one, and --out then rewrites
# only that section of FILE and keeps the others):
#
# boot        The default Linux guest, N runs of each configuration,
#             interleaved across configurations, flavours and
#             architectures: plain TCG, icount-only (shift=auto), record,
#             replay; the log's size, split step by step from upstream's
#             log to ours: upstream with our patch 0006 alone
#             (build/upstream-warp, recorded once per run, not timed),
#             upstream's file compressed by zlib, our events before and
#             after compression.  A replay whose serial output differs
#             from its recording's is reported in the table (and makes the
#             exit status 1): a fast wrong replay is no result.
#
# timetravel  Reverse debugging on a recording of the bare-metal bench
#             guest (tests/guest/baremetal/common/bench.c: 65 s of guest
#             time computing under a 1 kHz timer, calling mark_1ms() every
#             tick, mark_1s() every second, mark_10s() every 10 s):
#             replay-seek (QMP) back to 90, 50 and 10 % of the recording,
#             gdb's reverse-stepi at each mark_10s hit, and reverse-continue
#             from the 5th mark_10s hit (50 s) to the previous hit of
#             mark_1ms, mark_1s and mark_10s (1 ms, 1 s and 10 s back).
#             Upstream records with rrsnapshot=init and a qcow2 image for
#             its snapshot and replays with the same; qrr needs neither.
#             Every landing is checked (the guest's tick counter, the
#             function, the instruction count); a wrong one is reported
#             and makes the exit status 1 for qrr.  A command that takes
#             longer than --tt-timeout is reported as a timeout and the
#             bench goes on with a fresh replay.
#
# smp         The Linux guest with -smp 1, 2 and 4 running the racy
#             workload (qrr.race=: one shell per vCPU adding to a shared
#             counter), N runs of each configuration, interleaved: plain
#             TCG, icount-only, record, replay; the log's size and its
#             vCPU switches.  qrr only: upstream refuses -smp above 1 with
#             record/replay (the table says what upstream answered).
#
# linuxtt     Reverse debugging on a recording of the Linux guest with a
#             disk and a NIC, running qrr.load= (tests/guest/init: 60 s
#             of gzip, disk writes with fsync and HTTP downloads from a
#             server of ours, with marks for a debugger: sync(2) each
#             second, sethostname(2) every 10 s, a 1 ms sleep between):
#             gdb's reverse-stepi at sync hits, reverse-continue from a
#             sethostname hit to the previous hit of each mark (about
#             1 ms, 1 s, 10 s back), replay-seek to random positions, the
#             snapshots' memory and peak RSS, forward replay with time
#             travel on and off.  Every landing's registers and RAM digest
#             are compared with a forward-only replay stopped at the same
#             instruction count; a mismatch makes the exit status 1.
#             Without build/upstream, its column says "not built".
#
# ttcost      The forward cost of time travel: one recording of linuxtt's
#             guest and load per architecture, then N pairs of forward
#             replays to the end with time travel on and off, one after
#             the other, alternating which goes first: wall clock, the
#             process's and the vCPU thread's CPU time, the snapshots
#             taken and what taking them cost (query-replay-snapshots).
#             qrr only (upstream's rrsnapshot takes one snapshot at the
#             start: nothing alike).
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import functools
import hashlib
import http.server
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get('QRR_BUILD', TOP / 'build'))
sys.path.insert(0, str(TOP / 'tests' / 'functional' / 'qrr'))
from qrrqmp import QMP  # noqa: E402
sys.path.insert(0, str(TOP / 'scripts'))
from qrr_tool.logstats import log_stats  # noqa: E402
FLAVOURS = ('qrr', 'upstream')
GUEST = {
    'x86_64': (['-M', 'pc', '-cpu', 'max'], 'ttyS0'),
    'aarch64': (['-M', 'virt', '-cpu', 'cortex-a57'], 'ttyAMA0'),
}
CONFIGS = ('plain', 'icount', 'record', 'replay')


def guest_args(arch):
    machine, console = GUEST[arch]
    g = BUILD / 'guest' / arch
    return machine + [
        '-m', '256M', '-nodefaults', '-display', 'none', '-no-reboot',
        '-serial', 'stdio', '-monitor', 'none',
        '-kernel', str(g / 'vmlinuz'), '-initrd', str(g / 'initrd.gz'),
        '-append', f'console={console} panic=-1',
    ]


def qemu(flavour, arch):
    return BUILD / flavour / 'qemu' / f'qemu-system-{arch}'


def run_guest(flavour, arch, config, log, append='', extra=()):
    """Run the Linux guest in @config; (seconds, CompletedProcess)."""
    args = [str(qemu(flavour, arch))] + guest_args(arch) + list(extra)
    args[args.index('-append') + 1] += append
    if config == 'icount':
        args += ['-icount', 'shift=auto']
    elif config in ('record', 'replay'):
        args += ['-icount', f'shift=auto,rr={config},rrfile={log}']
    t0 = time.monotonic()
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=1800)
    return time.monotonic() - t0, p


def run_one(flavour, arch, config, log):
    elapsed, p = run_guest(flavour, arch, config, log)
    if p.returncode != 0:
        sys.exit(f'bench: {flavour} {arch} {config} failed '
                 f'(exit {p.returncode}):\n{p.stderr.decode()[-2000:]}')
    return elapsed, p.stdout


def measure(arches, runs, tmp):
    """{arch: (times, sizes, mismatch)}: times {(flavour, config):
    [seconds]}, sizes {name: [bytes]}, mismatch {flavour: count}.
    Run i of every architecture, configuration and flavour comes before
    run i + 1 of any, so that a slow patch of the host spreads over all
    of them."""
    res = {}
    for arch in arches:
        res[arch] = ({(f, c): [] for f in FLAVOURS for c in CONFIGS},
                     {n: [] for n in SIZES}, {f: 0 for f in FLAVOURS})
    for i in range(runs):
        for arch in arches:
            times, sizes, mismatch = res[arch]
            for config in CONFIGS:
                for flavour in FLAVOURS:
                    log = tmp / f'{flavour}-{arch}-{i}.rr'
                    out_file = tmp / f'{flavour}-{arch}-{i}.out'
                    t, out = run_one(flavour, arch, config, log)
                    times[flavour, config].append(t)
                    if config == 'record':
                        out_file.write_bytes(out)
                        for n, v in log_sizes(flavour, log).items():
                            sizes[n].append(v)
                    elif config == 'replay':
                        if out != out_file.read_bytes():
                            mismatch[flavour] += 1
                        log.unlink()
                    print(f'  {arch} run {i + 1}/{runs} {config:7} '
                          f'{flavour:8} {t:7.2f} s', file=sys.stderr)
            sizes['upstream-warp'].append(warp_log_size(arch, tmp, i))
    return res


# The log sizes that the boot table splits (see log_table()).
SIZES = ('qrr', 'qrr-raw', 'upstream', 'upstream-zlib', 'upstream-warp')


def log_sizes(flavour, log):
    """The sizes of the log of a recording by @flavour."""
    if flavour == 'upstream':
        data = log.read_bytes()
        return {'upstream': len(data),
                'upstream-zlib': len(zlib.compress(data, 6))}
    st = log_stats(log)
    if not st or st.get('status') != 'complete':
        sys.exit(f'bench: {log}: {st and st.get("problem")}')
    return {'qrr': log.stat().st_size, 'qrr-raw': st['raw_bytes']}


def warp_log_size(arch, tmp, i):
    """The size of the log of a recording by upstream with our patch
    0006 alone (build/upstream-warp): not timed, it only splits the
    log's size."""
    log = tmp / f'warp-{arch}-{i}.rr'
    run_one('upstream-warp', arch, 'record', log)
    size = log.stat().st_size
    log.unlink()
    return size


def fmt_ratio(a, b):
    return f'{a / b:.2f}×' if b else '–'


def table(arch, runs, times, sizes, mismatch):
    med = {k: statistics.median(v) for k, v in times.items()}
    size = {n: statistics.median(v) for n, v in sizes.items()}
    rows = [f'### {arch} ({" ".join(GUEST[arch][0])}, Linux + busybox '
            f'boot, median of {runs})', '',
            '| | qrr | upstream | qrr / upstream |', '|---|---|---|---|']
    names = {'plain': 'plain TCG (s)', 'icount': 'icount only (s)',
             'record': 'record (s)', 'replay': 'replay (s)'}
    for c in CONFIGS:
        rows.append(f'| {names[c]} | {med["qrr", c]:.2f} | '
                    f'{med["upstream", c]:.2f} | '
                    f'{fmt_ratio(med["qrr", c], med["upstream", c])} |')
    rows.append(f'| log size (bytes) | {size["qrr"]:,.0f} | '
                f'{size["upstream"]:,.0f} | '
                f'1/{size["upstream"] / size["qrr"]:,.0f} |')
    rows.append('| record / icount only | ' + ' | '.join(
        fmt_ratio(med[f, 'record'], med[f, 'icount']) for f in FLAVOURS) +
        ' | |')
    rows.append('| replay / record | ' + ' | '.join(
        fmt_ratio(med[f, 'replay'], med[f, 'record']) for f in FLAVOURS) +
        ' | |')
    rows.append('| replays matching their recording | ' + ' | '.join(
        f'{runs - mismatch[f]}/{runs}' for f in FLAVOURS) + ' | |')
    return '\n'.join(rows) + '\n\n' + log_table(arch, runs, size)


def log_table(arch, runs, size):
    """Where the log's size goes, step by step from upstream's log to
    ours: each row is one change and says what it saves."""
    up = size['upstream']
    rows = [f'{arch}, the log of one boot (bytes, median of {runs}):', '',
            '| log | bytes | upstream\'s log / this |', '|---|---|---|']

    def row(label, n):
        rows.append(f'| {label} | {n:,.0f} | {up / n:,.1f} |')
    row('upstream', up)
    row('upstream with our patch 0006 (the warp fix) alone',
        size['upstream-warp'])
    row('upstream, the file compressed by zlib -6', size['upstream-zlib'])
    row('qrr, the events uncompressed (the event design)', size['qrr-raw'])
    row('qrr, the file (zlib -6 per chunk, headers, checksums)', size['qrr'])
    return '\n'.join(rows) + '\n'


# ---- smp: the cost of recording and replaying several vCPUs ----

SMP_NS = (1, 2, 4)
SMP_RACE = 400


def smp_run(arch, n, config, log, flavour='qrr'):
    return run_guest(flavour, arch, config, log, f' qrr.race={SMP_RACE}',
                     ['-smp', str(n)])


def smp_log_counts(log):
    p = subprocess.run([sys.executable, str(TOP / 'scripts' /
                                            'replay-dump.py'),
                        '--stats', '--json', str(log)],
                       capture_output=True, check=True)
    st = json.loads(p.stdout)
    return st['events'], st.get('kinds', {}).get('sched', {}).get('events',
                                                                  0)


def smp_measure(arch, runs, tmp):
    times = {(n, c): [] for n in SMP_NS for c in CONFIGS}
    sizes = {n: [] for n in SMP_NS}
    events = {n: [] for n in SMP_NS}
    scheds = {n: [] for n in SMP_NS}
    mismatch = {n: 0 for n in SMP_NS}
    for i in range(runs):
        for n in SMP_NS:
            for config in CONFIGS:
                log = tmp / f'smp-{arch}-{n}-{i}.rr'
                t, p = smp_run(arch, n, config, log)
                if p.returncode != 0:
                    sys.exit(f'bench: qrr {arch} -smp {n} {config} failed '
                             f'(exit {p.returncode}):\n'
                             f'{p.stderr.decode()[-2000:]}')
                times[n, config].append(t)
                out = tmp / f'smp-{arch}-{n}-{i}.out'
                if config == 'record':
                    sizes[n].append(log.stat().st_size)
                    e, sc = smp_log_counts(log)
                    events[n].append(e)
                    scheds[n].append(sc)
                    out.write_bytes(p.stdout)
                elif config == 'replay':
                    if p.stdout != out.read_bytes():
                        mismatch[n] += 1
                    log.unlink()
                print(f'  {arch} run {i + 1}/{runs} -smp {n} {config:7} '
                      f'{t:7.2f} s', file=sys.stderr)
    return times, sizes, events, scheds, mismatch


def smp_upstream(arch, tmp):
    """What upstream answers to a recording with -smp 2."""
    if not qemu('upstream', arch).exists():
        return 'not built'
    _, p = smp_run(arch, 2, 'record', tmp / 'up.rr', 'upstream')
    if p.returncode == 0:
        return 'records'
    lines = p.stderr.decode(errors='replace').strip().splitlines()
    return f'refuses: "{lines[-1] if lines else p.returncode}"'


def smp_table(arch, runs, res, upstream):
    times, sizes, events, scheds, mismatch = res
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [f'### {arch} ({" ".join(GUEST[arch][0])}, Linux + busybox, '
            f'racy workload, median of {runs})', '',
            '| | ' + ' | '.join(f'-smp {n}' for n in SMP_NS) + ' |',
            '|---|' + '---|' * len(SMP_NS)]
    names = {'plain': 'plain TCG (s)', 'icount': 'icount only (s)',
             'record': 'record (s)', 'replay': 'replay (s)'}

    def row(label, cell):
        rows.append(f'| {label} | ' + ' | '.join(cell(n) for n in SMP_NS) +
                    ' |')

    def mid(vals):
        return statistics.median(vals)
    for c in CONFIGS:
        row(names[c], lambda n: f'{med[n, c]:.2f}')
    row('record / icount only',
        lambda n: fmt_ratio(med[n, 'record'], med[n, 'icount']))
    row('replay / record',
        lambda n: fmt_ratio(med[n, 'replay'], med[n, 'record']))
    row('log size (bytes)', lambda n: f'{mid(sizes[n]):,.0f}')
    row('events in the log', lambda n: f'{mid(events[n]):,.0f}')
    row('of which vCPU switches', lambda n: f'{mid(scheds[n]):,.0f}')
    row('log bytes per event',
        lambda n: f'{mid(sizes[n]) / mid(events[n]):.2f}')
    row('replays matching their recording',
        lambda n: f'{runs - mismatch[n]}/{runs}')
    rows.append('')
    rows.append(f'Upstream with `-smp 2` and `rr=record`: {upstream}.')
    return '\n'.join(rows) + '\n'


# ---- timetravel: reverse debugging latencies ----

TT_MEM = '64M'
TT_RAM = 64 << 20
TT_TICKS = 65000            # bench.c's BENCH_TICKS: 65 s of guest time
TT_AT = 50000               # where reverse-continue starts: mark_10s #5
TT_SEEKS = (90, 50, 10)     # replay-seek targets, % of the recording
# reverse-continue from mark_10s at TT_AT: the mark, the distance, the
# tick of the previous hit (bench.c calls mark_10s, mark_1s, mark_1ms in
# this order in a tick)
TT_RC = (('mark_1ms', '1 ms', TT_AT - 1), ('mark_1s', '1 s', TT_AT - 1000),
         ('mark_10s', '10 s', TT_AT - 10000))
GDB = os.environ.get('QRR_GDB', 'gdb-multiarch')

# Runs inside gdb (-x): carries out the phases of QRR_BENCH_PLAN and
# writes one JSON line per command to QRR_BENCH_OUT, a {"start": ...}
# line before it (for the watchdog in tt_gdb()) and its result after.
# The time is the wall clock around gdb.execute(): gdb's round trip.
TT_DRIVER = r"""
import gdb, json, os, re, time

plan = json.loads(os.environ['QRR_BENCH_PLAN'])
out = open(os.environ['QRR_BENCH_OUT'], 'a')

def emit(**kw):
    out.write(json.dumps(kw) + '\n')
    out.flush()

def where():
    r = {}
    try:
        s = gdb.execute('monitor info replay', to_string=True)
        m = re.search(r'instruction count = (\d+)', s)
        r['icount'] = int(m.group(1)) if m else None
        r['tick'] = int(gdb.parse_and_eval('bench_tick'))
        r['pc'] = int(gdb.parse_and_eval('$pc')) & 0xffffffffffffffff
        f = gdb.selected_frame()
        r['func'] = f.name() if f else None
    except gdb.error as e:
        r['where_error'] = str(e)
    return r

def run(label, cmd, **extra):
    emit(start=label, cmd=cmd, **extra)
    t0 = time.monotonic()
    err = None
    try:
        text = gdb.execute(cmd, to_string=True)
    except gdb.error as e:
        text, err = '', str(e)
    secs = time.monotonic() - t0
    r = dict(label=label, cmd=cmd, secs=secs, text=text[-400:], error=err,
             **extra)
    r.update(where())
    emit(**r)
    return r

def only_break(func):
    gdb.execute('delete')
    gdb.execute('break ' + func, to_string=True)

def forward(target, rstepi):
    '''Continue to mark_10s at tick @target; reverse-stepi (and stepi
    back) at each hit on the way if @rstepi.'''
    only_break('mark_10s')
    here = where()
    while not (here.get('func') == 'mark_10s' and
               here.get('tick', 0) >= target):
        r = run('continue', 'continue', tick_before=here.get('tick'))
        if r['error'] or r.get('func') != 'mark_10s':
            raise RuntimeError('continue did not stop at mark_10s: %r' % r)
        here = r
        if rstepi:
            b = run('reverse-stepi', 'reverse-stepi',
                    icount_before=here['icount'], tick_before=here['tick'])
            b['ok'] = (not b['error'] and b.get('icount') is not None and
                       0 <= here['icount'] - b['icount'] <= 1 and
                       b['pc'] != here['pc'])
            emit(check='reverse-stepi', ok=b['ok'], tick=here['tick'])
            run('stepi', 'stepi')
            here = where()

gdb.execute('set pagination off')
gdb.execute('set confirm off')
for ph in plan:
    try:
        if ph[0] == 'forward':
            forward(TT_AT, True)
        elif ph[0] == 'rc':
            func, dist, want = ph[1], ph[2], ph[3]
            forward(TT_AT, False)
            only_break(func)
            r = run('reverse-continue ' + dist, 'reverse-continue',
                    tick_before=TT_AT)
            ok = (not r['error'] and r.get('func') == func and
                  r.get('tick') == want)
            emit(check='reverse-continue ' + dist, ok=ok, tick=r.get('tick'),
                 func=r.get('func'), want=want)
    except Exception as e:
        emit(phase_error=ph, error=str(e))
    emit(phase_done=ph)
emit(done=True)
out.close()
# the bench queries QEMU, then ends QEMU and this gdb
time.sleep(3600)
""".replace('TT_AT', str(TT_AT))


def tt_elf(arch):
    return BUILD / 'guest' / 'baremetal' / \
        {'x86_64': 'x86'}.get(arch, arch) / 'bench.elf'


def tt_args(arch, serial):
    return GUEST[arch][0] + [
        '-m', TT_MEM, '-nodefaults', '-display', 'none', '-no-reboot',
        '-no-shutdown', '-serial', f'file:{serial}', '-monitor', 'none',
        '-kernel', str(tt_elf(arch))]


class TTQemu:
    """One QEMU of the timetravel bench, with QMP and a gdb server.
    @guest(serial path, tt) gives the guest's arguments (default: the
    bare-metal bench guest); @tt=False replays without time travel (qrr:
    rrbudget=0; upstream: no rrsnapshot)."""

    def __init__(self, flavour, arch, mode, d, tag, timeout, icount_extra='',
                 guest=None, tt=True):
        self.d = d
        self.tag = tag
        self.timeout = timeout
        self.qmp_path = d / f'{tag}.qmp'
        self.gdb_path = d / f'{tag}.gdb'
        for p in (self.qmp_path, self.gdb_path):
            if p.exists():
                p.unlink()
        icount = f'shift=auto,rr={mode},rrfile={d / "bench.rr"}' + \
            icount_extra
        extra = []
        if flavour == 'upstream' and tt:
            icount += ',rrsnapshot=init'
            extra = ['-drive', f'file={d / "snap.qcow2"},if=none,id=rrdisk']
        elif not tt:
            icount += ',rrbudget=0' if flavour == 'qrr' else ''
        self.serial = d / f'{tag}.serial'
        cmd = [str(qemu(flavour, arch))] + \
            (guest or (lambda s, _: tt_args(arch, s)))(self.serial, tt) + \
            extra + [
                '-icount', icount,
                '-qmp', f'unix:{self.qmp_path},server=on,wait=off']
        if mode == 'replay':
            cmd += ['-gdb', f'unix:{self.gdb_path},server=on,wait=off', '-S']
        self.errpath = d / f'{tag}.err'
        self.err = open(self.errpath, 'wb')
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self.err)
        self.qmp = QMP(self.qmp_path, timeout)

    def stderr(self):
        self.err.flush()
        return self.errpath.read_text(errors='replace')[-2000:]

    def peak_rss(self):
        try:
            status = Path(f'/proc/{self.proc.pid}/status').read_text()
            return int(re.search(r'VmHWM:\s+(\d+) kB', status).group(1)) * 1024
        except (OSError, AttributeError):
            return None

    def cpu_seconds(self):
        try:
            f = Path(f'/proc/{self.proc.pid}/stat').read_text()
            utime, stime = f.rsplit(')', 1)[1].split()[11:13]
            return (int(utime) + int(stime)) / os.sysconf('SC_CLK_TCK')
        except (OSError, ValueError, IndexError):
            return None

    def describe(self):
        """What QEMU is doing, for a timeout's report."""
        try:
            self.qmp.sock.settimeout(10)
            st = self.qmp.ok('query-status')['status']
            ic = self.qmp.ok('query-replay')['icount']
            return f'status {st}, icount {ic}'
        except (OSError, EOFError, RuntimeError, ValueError) as e:
            return f'QMP does not answer ({e})'

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.qmp.sock.settimeout(30)
                self.qmp.cmd('quit')
                self.proc.wait(30)
            except (OSError, EOFError, ValueError,
                    subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.qmp.close()
        self.err.close()


def qcow2_create(flavour, path, size):
    img = BUILD / flavour / 'qemu' / 'qemu-img'
    subprocess.run([str(img), 'create', '-q', '-f', 'qcow2', str(path),
                    size], check=True)


def tt_record(flavour, arch, d, timeout, guest=None):
    """Record the bench guest (or @guest); (seconds, last icount)."""
    if flavour == 'upstream':
        qcow2_create(flavour, d / 'snap.qcow2', '64M')
    q = TTQemu(flavour, arch, 'record', d, 'record', timeout, guest=guest)
    try:
        q.qmp.wait_event('SHUTDOWN')
        secs = time.monotonic() - q.t0
        end = q.qmp.ok('query-replay')['icount']
    except (OSError, EOFError, RuntimeError) as e:
        sys.exit(f'bench: {flavour} {arch}: recording failed ({e}):\n'
                 f'{q.stderr()}')
    finally:
        q.stop()
    return secs, end


def tt_seeks(q, end, res):
    """replay-seek forward to 99 %, then back to each of TT_SEEKS."""
    for pct in (99,) + TT_SEEKS:
        target = end * pct // 100
        label = 'seek forward to 99 %' if pct == 99 else f'seek {pct} %'
        q.qmp.events.clear()
        t0, cpu0 = time.monotonic(), q.cpu_seconds()
        try:
            q.qmp.ok('replay-seek', icount=target)
            q.qmp.wait_event('STOP')
            secs = time.monotonic() - t0
            got = q.qmp.ok('query-replay')['icount']
        except socket.timeout:
            res[label] = 'timeout'
            cpu1 = q.cpu_seconds()
            busy = (f'{cpu1 - cpu0:.0f} s of CPU' if None not in (cpu0, cpu1)
                    else 'CPU time unknown')
            res.setdefault('errors', []).append(
                f'{label} (icount {target}): no STOP in {q.timeout:.0f} s; '
                f'QEMU used {busy} meanwhile')
            return False
        except (OSError, EOFError, RuntimeError) as e:
            res[label] = f'error: {e}'
            return False
        res[label] = secs
        res.setdefault('checks', []).append((label, got == target))
    return True


def gdb_start(q, d, driver, pre, plan):
    """gdb-multiarch running @driver (Python, with QRR_BENCH_PLAN =
    @plan) against @q after the commands @pre; (process, JSON lines file,
    log file)."""
    out = d / f'{q.tag}.gdb.jsonl'
    script = d / f'{q.tag}.driver.py'
    script.write_text(driver)
    if out.exists():
        out.unlink()
    cmd = [GDB, '-nx', '-batch'] + pre + \
        ['-ex', f'target remote {q.gdb_path}', '-x', str(script)]
    env = dict(os.environ, QRR_BENCH_PLAN=json.dumps(plan),
               QRR_BENCH_OUT=str(out))
    log = open(d / f'{q.tag}.gdb.log', 'ab')
    g = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT)
    return g, out, log


def gdb_watch(g, out, q, timeout, res):
    """The driver's records until it is done, ends, or answers nothing for
    @timeout seconds (noted in res['errors']); (records, the command
    pending, timed out, finished)."""
    recs, pending, since = [], None, time.monotonic()
    cpu0, at = q.cpu_seconds(), None
    timed_out = finished = False
    nread = 0
    while True:
        rc = g.poll()
        new = out.read_text().splitlines(keepends=True) \
            if out.exists() else []
        # only complete lines
        while nread < len(new) and new[nread].endswith('\n'):
            rec = json.loads(new[nread])
            nread += 1
            recs.append(rec)
            since = time.monotonic()
            if 'start' in rec:
                pending = rec['start']
                at = rec.get('tick_before')
                cpu0 = q.cpu_seconds()
            elif 'label' in rec:
                pending = None
            elif 'done' in rec:
                finished = True
        if finished or rc is not None:
            break
        if time.monotonic() - since > timeout:
            timed_out = True
            cpu1 = q.cpu_seconds()
            busy = (f'{cpu1 - cpu0:.0f} s of CPU' if None not in (cpu0, cpu1)
                    else 'CPU time unknown')
            res.setdefault('errors', []).append(
                f'{pending}' + (f' from tick {at}' if at else '') +
                f': no answer in {timeout:.0f} s; QEMU used {busy} '
                f'meanwhile, now {q.describe()}')
            break
        time.sleep(0.2)
    return recs, pending, timed_out, finished


def tt_gdb(q, arch, plan, d, timeout, res, at_done):
    """Run the gdb driver with @plan against @q, calling @at_done() when
    it is through; returns the phases left to do (after a timeout: those
    after the one that timed out)."""
    pre = ['-ex', f'file {tt_elf(arch)}']
    if arch == 'x86_64':
        # the guest is a 32-bit ELF; the stub describes x86-64
        pre += ['-ex', 'set architecture i386:x86-64']
    g, out, log = gdb_start(q, d, TT_DRIVER, pre, plan)
    recs, pending, timed_out, finished = gdb_watch(g, out, q, timeout, res)
    if finished:
        at_done()
    if g.poll() is None:
        g.kill()
    g.wait()
    log.close()
    done = [r['phase_done'] for r in recs if 'phase_done' in r]
    for r in recs:
        label = r.get('label', '')
        if label == 'reverse-stepi':
            res.setdefault(label, []).append(
                f'error: {r["error"]}' if r['error'] else r['secs'])
        elif label.startswith('reverse-continue'):
            res[label] = f'error: {r["error"]}' if r['error'] else r['secs']
        elif label == 'continue' and r.get('tick_before') and \
                r.get('tick') and r['tick'] - r['tick_before'] == 10000:
            res.setdefault('forward 10 s', []).append(r['secs'])
        elif 'check' in r:
            res.setdefault('checks', []).append((r['check'], r['ok']))
        elif 'phase_error' in r:
            res.setdefault('errors', []).append(
                f'{r["phase_error"]}: {r["error"]}')
    left = [p for p in plan if p not in done]
    if timed_out:
        if pending == 'reverse-stepi':
            res.setdefault(pending, []).append('timeout')
        elif pending and pending.startswith('reverse-continue'):
            res[pending] = 'timeout'
        # the phase that timed out is given up (for reverse-stepi: all of
        # them, each would take as long); the others get a fresh replay
        return left[1:]
    if not finished:
        res.setdefault('errors', []).append(
            'gdb ended early: ' +
            (d / f'{q.tag}.gdb.log').read_text(errors='replace')[-500:])
    return []


def tt_measure_one(flavour, arch, d, timeout):
    """One recording and its replays; a dict of results."""
    res = {}
    res['record'], end = tt_record(flavour, arch, d, timeout)
    res['end'] = end
    res['log'] = (d / 'bench.rr').stat().st_size
    if flavour == 'upstream':
        res['qcow2'] = (d / 'snap.qcow2').stat().st_blocks * 512
    plan = [['forward']] + [['rc', f, dist, want] for f, dist, want in TT_RC]
    n = 0
    q = TTQemu(flavour, arch, 'replay', d, f'replay{n}', timeout)

    def at_done():
        if flavour == 'qrr':
            try:
                s = q.qmp.ok('query-replay-snapshots')
                res['snapshots'] = (s['used'], len(s['snapshots']),
                                    s['budget'])
            except (OSError, EOFError, RuntimeError) as e:
                res.setdefault('errors', []).append(
                    f'query-replay-snapshots: {e}')
        res['rss'] = max(res.get('rss') or 0, q.peak_rss() or 0)

    try:
        if not tt_seeks(q, end, res):
            res['rss'] = max(res.get('rss') or 0, q.peak_rss() or 0)
            q.stop()
            n += 1
            q = TTQemu(flavour, arch, 'replay', d, f'replay{n}', timeout)
        while plan:
            plan = tt_gdb(q, arch, plan, d, timeout, res, at_done)
            res['rss'] = max(res.get('rss') or 0, q.peak_rss() or 0)
            if plan:
                q.stop()
                n += 1
                q = TTQemu(flavour, arch, 'replay', d, f'replay{n}', timeout)
    finally:
        res['stderr'] = q.stderr()
        q.stop()
    return res


def tt_measure(arch, runs, tmp, timeout):
    """{flavour: [result dict per run]}"""
    results = {f: [] for f in FLAVOURS}
    for i in range(runs):
        for flavour in FLAVOURS:
            d = tmp / f'tt-{flavour}-{arch}-{i}'
            d.mkdir()
            t0 = time.monotonic()
            r = tt_measure_one(flavour, arch, d, timeout)
            results[flavour].append(r)
            print(f'  {arch} run {i + 1}/{runs} timetravel {flavour:8} '
                  f'{time.monotonic() - t0:7.1f} s: ' + ', '.join(
                      f'{k} {tt_fmt(v)}' for k, v in r.items()
                      if k in TT_ROWS_KEYS), file=sys.stderr)
            for e in r.get('errors', []):
                print(f'    error: {e}', file=sys.stderr)
            if r.get('errors'):
                print('    QEMU said: ' + r['stderr'][-1000:],
                      file=sys.stderr)
            if r.get('errors') or 'timeout' in repr(r):
                print(f'    kept {d} (logs of each QEMU and gdb)',
                      file=sys.stderr)
            else:
                shutil.rmtree(d)
    return results


TT_ROWS = [('record', 'record (s)', 1)] + \
    [('forward 10 s', 'replay forward, 10 s of guest time (s)', 1),
     ('reverse-stepi', 'reverse-stepi, median (ms)', 1000)] + \
    [(f'reverse-continue {dist}', f'reverse-continue, previous hit '
      f'{dist} back (s)', 1) for _, dist, _ in TT_RC] + \
    [('seek forward to 99 %', 'replay-seek from the start to 99 % (s)', 1)] + \
    [(f'seek {p} %', f'replay-seek back to {p} % (s)', 1)
     for p in TT_SEEKS]
TT_ROWS_KEYS = {k for k, _, _ in TT_ROWS}


def tt_fmt(v, scale=1):
    """A number with 3 significant digits (at least), or the text."""
    if v is None:
        return '–'
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return '[' + ' '.join(tt_fmt(x, scale) for x in v) + ']'
    v *= scale
    for limit, digits in ((1, 3), (10, 2), (100, 1)):
        if v < limit:
            return f'{v:.{digits}f}'
    return f'{v:,.0f}'


def tt_value(vals, timeout):
    """The median of the measured values; a timeout or an error if any
    run had one (the first such)."""
    flat = []
    for v in vals:
        flat += v if isinstance(v, list) else [v]
    bad = [v for v in flat if isinstance(v, str)]
    nums = [v for v in flat if isinstance(v, (int, float))]
    if bad:
        b = bad[0]
        if b == 'timeout':
            return f'timeout (> {timeout:.0f} s)' + \
                (f', {len(nums)} measured: median '
                 f'{statistics.median(nums):.3g} s' if nums else '')
        return b if len(b) < 60 else b[:57] + '...'
    return statistics.median(nums) if nums else None


def fmt_ratio_tt(a, b):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) \
            or not b:
        return '–'
    r = a / b
    return f'1/{1 / r:,.0f}' if r < 0.1 else f'{r:.2f}×'


def tt_table(arch, runs, results, timeout):
    med = {f: {} for f in FLAVOURS}
    for f in FLAVOURS:
        for key, _, _ in TT_ROWS:
            med[f][key] = tt_value([r.get(key) for r in results[f]
                                    if key in r], timeout)
    targets = {'reverse-stepi': '≤ 50 ms'}
    targets.update({f'seek {p} %': '≤ 0.5 s' for p in TT_SEEKS})
    rows = [f'### {arch} ({" ".join(GUEST[arch][0])}, bare-metal bench '
            f'guest, {TT_MEM} RAM, median of {runs})', '',
            '| | qrr | upstream | qrr / upstream | target |',
            '|---|---|---|---|---|']

    def gi(f):
        return statistics.median(r['end'] for r in results[f]) / 1e9
    rows.append(f'| recording: guest instructions | {gi("qrr"):.1f} G | '
                f'{gi("upstream"):.1f} G | | |')
    for key, name, scale in TT_ROWS:
        a, b = med['qrr'][key], med['upstream'][key]
        rows.append(f'| {name} | {tt_fmt(a, scale)} | {tt_fmt(b, scale)} | '
                    f'{fmt_ratio_tt(a, b)} | {targets.get(key, "")} |')
    snaps = [r['snapshots'] for r in results['qrr'] if 'snapshots' in r]
    if snaps:
        used = statistics.median(s[0] for s in snaps)
        count = statistics.median(s[1] for s in snaps)
        budget = statistics.median(s[2] for s in snaps)
        cell = (f'{used / 2**20:.1f} MiB in {count:.0f} snapshots '
                f'({used / TT_RAM:.2f}× RAM; rrbudget {budget / 2**20:.0f} '
                f'MiB)')
    else:
        cell = '–'
    qcow = [r['qcow2'] for r in results['upstream'] if 'qcow2' in r]
    ucell = (f'1 snapshot, {statistics.median(qcow) / 2**20:.1f} MiB qcow2 '
             f'image on disk' if qcow else '–')
    rows.append(f'| snapshots held | {cell} | {ucell} | | ≤ 2× RAM |')
    rss = {f: [r['rss'] for r in results[f] if r.get('rss')]
           for f in FLAVOURS}
    rows.append('| replay peak RSS (MiB) | ' + ' | '.join(
        f'{statistics.median(rss[f]) / 2**20:,.0f}' if rss[f] else '–'
        for f in FLAVOURS) + ' | | |')

    def checks(f):
        c = [ok for r in results[f] for _, ok in r.get('checks', [])]
        return f'{sum(c)}/{len(c)}'
    rows.append(f'| landings checked correct | {checks("qrr")} | '
                f'{checks("upstream")} | | |')
    return '\n'.join(rows) + '\n'


def tt_bad(results):
    """qrr landed somewhere wrong, failed or timed out."""
    for r in results['qrr']:
        vals = []
        for key in TT_ROWS_KEYS:
            v = r.get(key)
            vals += v if isinstance(v, list) else [v]
        if r.get('errors') or any(isinstance(v, str) for v in vals) or \
                not all(ok for _, ok in r.get('checks', [])):
            return True
    return False


TT_LEGEND = f'''\
Reverse debugging on a recording of the bare-metal bench guest
(`tests/guest/baremetal/common/bench.c`: {TT_TICKS // 1000} s of guest time
computing under a 1 kHz timer, writing into a 1 MiB working set; calls
`mark_1ms()` every tick, `mark_1s()` every second, `mark_10s()` every
10 s).  Upstream records and replays with `rrsnapshot=init` and a qcow2
image for its snapshot; qrr with neither.  Each replay starts paused
(`-S`).  Times are wall clock: QMP `replay-seek` until the `STOP` event;
a gdb command around `gdb.execute()` in gdb's Python (its round trip).

* *replay forward*: `continue` from one `mark_10s` hit to the next.
* *reverse-stepi*: at each `mark_10s` hit on the way to the 5th (10 to
  50 s), median of all.
* *reverse-continue*: stopped at the 5th `mark_10s` hit (50 s), with the
  only breakpoint on `mark_1ms`, `mark_1s` or `mark_10s`: the previous
  hit is 1 ms, 1 s or 10 s of guest time back.
* *replay-seek back*: after a seek forward to 99 % of the recording, to
  90 %, 50 % and 10 % of its instructions, in this order.
* *snapshots held*: QMP `query-replay-snapshots` at the end (qrr keeps
  them in memory, within `rrbudget`, by default 2× RAM); upstream keeps
  its one snapshot in the qcow2 image.
* *landings checked correct*: each seek's instruction count, each
  reverse-stepi one instruction back, each reverse-continue at the right
  function and tick.
* *timeout*: no answer within `--tt-timeout`; the bench goes on with a
  fresh replay (and prints on stderr what QEMU was doing meanwhile).
  Medians are over the runs (reverse-stepi: over every position of every
  run).
'''


# ---- linuxtt: reverse debugging on the Linux guest ----

LT_LOAD = 60                # seconds of guest-time load (qrr.load=)
LT_MEM = '256M'
LT_RAM = 256 << 20
LT_RAM_BASE = {'x86_64': 0, 'aarch64': 0x40000000}
LT_SYSCALL = {'x86_64': '__x64_sys_', 'aarch64': '__arm64_sys_'}
# the guest's marks (tests/guest/init, marks()): a 1 ms sleep in a loop,
# sync(2) each second, sethostname(2) every 10 s; the distance back that
# reverse-continue to the previous hit goes from a sethostname hit
LT_MARKS = (('clock_nanosleep', '1 ms'), ('sync', '1 s'),
            ('sethostname', '10 s'))
LT_AT = 4                   # reverse-continue from the 4th sethostname hit
# positions per run: reverse-stepi at sync hits, random replay-seeks
# (upstream takes 20-30 s for each on this guest: fewer)
LT_RSTEPI = {'qrr': 24, 'upstream': 3}
LT_SEEKS = {'qrr': 24, 'upstream': 3}

# Runs inside gdb (-x): hardware breakpoints on the marks' system calls
# (QRR_BENCH_PLAN: their addresses, and what to do); continue from sync
# hit to sync hit, a reverse-stepi and a stepi back at each of the first
# ones, to the LT_AT-th sethostname hit; from there reverse-continue to
# the previous hit of each mark and continue back.  After each landing
# the registers (monitor info registers) and a SHA-256 of guest RAM
# (monitor pmemsave).  One JSON line per command to QRR_BENCH_OUT, as
# TT_DRIVER.
LT_DRIVER = r"""
import gdb, hashlib, json, os, re, time

plan = json.loads(os.environ['QRR_BENCH_PLAN'])
addr = plan['addr']
out = open(os.environ['QRR_BENCH_OUT'], 'a')

def emit(**kw):
    out.write(json.dumps(kw) + '\n')
    out.flush()

def where():
    s = gdb.execute('monitor info replay', to_string=True)
    m = re.search(r'instruction count = (\d+)', s)
    return {'icount': int(m.group(1)) if m else None,
            'pc': int(gdb.parse_and_eval('$pc')) & 0xffffffffffffffff}

def run(label, cmd, **extra):
    emit(start=label, cmd=cmd)
    t0 = time.monotonic()
    err = None
    try:
        gdb.execute(cmd, to_string=True)
    except gdb.error as e:
        err = str(e)
    r = dict(label=label, secs=time.monotonic() - t0, error=err, **extra)
    r.update(where())
    emit(**r)
    if err:
        raise RuntimeError('%s: %s' % (cmd, err))
    return r

def land(r, ok):
    regs = gdb.execute('monitor info registers', to_string=True)
    gdb.execute('monitor pmemsave %d %d "%s"' % (plan['base'], plan['size'],
                                               plan['dump']), to_string=True)
    with open(plan['dump'], 'rb') as f:
        ram = hashlib.sha256(f.read()).hexdigest()
    os.unlink(plan['dump'])
    emit(landing=r['label'], icount=r['icount'], regs=regs, ram=ram, ok=ok)

def only(*names):
    gdb.execute('delete')
    for n in names:
        gdb.execute('hbreak *%d' % addr[n], to_string=True)

def marks():
    only('sync', 'sethostname')
    hits = steps = 0
    while hits < plan['at']:
        r = run('continue', 'continue')
        if r['pc'] == addr['sethostname']:
            hits += 1
        elif steps < plan['rstepi']:
            steps += 1
            b = run('reverse-stepi', 'reverse-stepi')
            land(b, 0 <= r['icount'] - b['icount'] <= 1 and
                 b['pc'] != r['pc'])
            s = run('stepi back', 'stepi')
            emit(check='stepi back', ok=(s['icount'], s['pc']) ==
                 (r['icount'], r['pc']))
    return r

def back_to(at):
    for name, dist in plan['marks']:
        only(name)
        r = run('reverse-continue ' + dist, 'reverse-continue',
                at=at['icount'])
        land(r, r['pc'] == addr[name] and r['icount'] < at['icount'])
        only('sethostname')
        c = run('continue back', 'continue')
        emit(check='continue back to the start of reverse-continue',
             ok=c['icount'] == at['icount'])

gdb.execute('set pagination off')
gdb.execute('set confirm off')
try:
    back_to(marks())
except Exception as e:
    emit(phase_error='gdb', error=str(e))
emit(done=True)
out.close()
# not detach, which resumes the replay: the bench seeks next
gdb.execute('disconnect')
"""


class LTServer:
    """An HTTP server on 127.0.0.1 serving 1 MiB of random bytes, which
    the guest fetches (qrr.net=) through slirp as 10.0.2.2."""

    def __init__(self, root):
        (root / 'www.bin').write_bytes(os.urandom(1 << 20))
        handler = functools.partial(LTQuiet, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f'http://10.0.2.2:{self.httpd.server_address[1]}/www.bin'


class LTQuiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def lt_args(flavour, arch, d, url):
    """@guest for TTQemu: the Linux guest with qrr.load=, a virtio disk
    behind blkreplay, a virtio NIC behind filter-replay.  qrr never
    writes the disk image.  Upstream writes it; its rrsnapshot=init saves
    it too (in every qcow2 image: one under snapshot=on would not keep
    it), and loading the snapshot restores it; without time travel it
    replays on a blank image under snapshot=on."""
    machine, console = GUEST[arch]
    g = BUILD / 'guest' / arch
    syms = ','.join(LT_SYSCALL[arch] + m for m, _ in LT_MARKS)

    def disk(tt):
        if flavour == 'upstream' and not tt:
            return f'file={d / "blank.qcow2"},snapshot=on'
        return f'file={d / "disk.qcow2"}'
    return lambda serial, tt: machine + [
        '-m', LT_MEM, '-nodefaults', '-display', 'none', '-no-reboot',
        '-no-shutdown', '-serial', f'file:{serial}', '-monitor', 'none',
        '-kernel', str(g / 'vmlinuz'), '-initrd', str(g / 'initrd.gz'),
        '-append', f'console={console} panic=-1 nokaslr qrr.disk=/dev/vda '
        f'qrr.net={url} qrr.load={LT_LOAD} qrr.syms={syms}',
        '-drive', f'{disk(tt)},if=none,id=img-direct,format=qcow2',
        '-drive', 'driver=blkreplay,if=none,image=img-direct,'
        'id=img-blkreplay', '-device', 'virtio-blk-pci,drive=img-blkreplay',
        '-netdev', 'user,id=net0', '-device', 'virtio-net-pci,netdev=net0',
        '-object', 'filter-replay,id=replay0,netdev=net0']


def lt_marks(arch, serial):
    """{mark: address} from what the recording printed (qrr.syms=), and
    the guest's uptime at its end (seconds)."""
    text = serial.read_text(errors='replace')
    addr = {}
    for m, _ in LT_MARKS:
        hit = re.search(r'^sym: ([0-9a-f]+) ' + LT_SYSCALL[arch] + m + r'\r?$',
                        text, re.M)
        if not hit:
            sys.exit(f'bench: the Linux guest printed no address for {m}')
        addr[m] = int(hit.group(1), 16)
    up = re.findall(r'^uptime: ([0-9.]+)', text, re.M)
    return addr, float(up[-1]) if up else None


def qmp_settled(q):
    """QEMU's run state, after reading (and dropping) the events already
    sent: a STOP that came before the next command is not its own."""
    status = q.qmp.ok('query-status')['status']
    q.qmp.events.clear()
    return status


def qmp_state(q, arch, d):
    """(registers, SHA-256 of guest RAM) of the stopped machine @q."""
    regs = q.qmp.ok('human-monitor-command',
                    **{'command-line': 'info registers'})
    dump = d / f'{q.tag}.ram'
    q.qmp.ok('pmemsave', val=LT_RAM_BASE[arch], size=LT_RAM,
             filename=str(dump))
    ram = hashlib.sha256(dump.read_bytes()).hexdigest()
    dump.unlink()
    return regs, ram


def lt_forward(flavour, arch, d, guest, tt, timeout):
    """Seconds a replay takes from cont at icount 0 to the recorded
    power-off, with time travel (@tt) or without."""
    q = TTQemu(flavour, arch, 'replay', d, f'forward-{tt}', timeout,
               guest=guest, tt=tt)
    try:
        t0 = time.monotonic()
        q.qmp.ok('cont')
        q.qmp.wait_event('SHUTDOWN')
        return time.monotonic() - t0
    except (OSError, EOFError, RuntimeError) as e:
        return f'error: {e}'
    finally:
        q.stop()


def lt_debug(q, arch, addr, flavour, d, timeout, res):
    """The gdb driver against @q; its records, and the command that timed
    out (None if none did)."""
    plan = {'addr': addr, 'at': LT_AT, 'rstepi': LT_RSTEPI[flavour],
            'marks': LT_MARKS, 'base': LT_RAM_BASE[arch], 'size': LT_RAM,
            'dump': str(d / f'{q.tag}.gdb.ram')}
    pre = ['-ex', 'set architecture i386:x86-64'] if arch == 'x86_64' else []
    g, out, log = gdb_start(q, d, LT_DRIVER, pre, plan)
    recs, pending, timed_out, _ = gdb_watch(g, out, q, timeout, res)
    try:
        g.wait(60 if not timed_out else 0.1)
    except subprocess.TimeoutExpired:
        g.kill()
        g.wait()
    log.close()
    res.setdefault('errors', []).extend(
        f'gdb: {r["error"]}' for r in recs if 'phase_error' in r)
    return recs, pending if timed_out else None


def lt_gdb_results(recs, timed_out, res):
    """reverse-stepi times, reverse-continue times and distances, the
    landings and the checks of the gdb driver's records into @res; the
    command that @timed_out as 'timeout'."""
    if timed_out == 'reverse-stepi':
        res[timed_out] = ['timeout']
    elif timed_out:
        res[timed_out] = 'timeout'
    res['gdb timed out'] = timed_out
    for r in recs:
        label = r.get('label', '')
        if label == 'reverse-stepi' and not r['error']:
            res.setdefault(label, []).append(r['secs'])
        elif label.startswith('reverse-continue') and not r['error']:
            res[label] = r['secs']
            res[label + ' back'] = r['at'] - r['icount']
        elif 'landing' in r:
            res.setdefault('landings', []).append(r)
        elif 'check' in r:
            res.setdefault('checks', []).append((r['check'], r['ok']))


def lt_seeks(q, arch, d, end, n, rng, res):
    """replay-seek to @n random positions, each timed to its STOP, then
    the machine's state there noted as a landing.  Each time is also
    filed under 'seek visited' or 'seek first': a seek within the
    history the replay has run through so far, or past the furthest
    point it reached (a first visit, which can only run forward)."""
    furthest = max([q.qmp.ok('query-replay')['icount']] +
                   [x['icount'] for x in res.get('landings', [])])
    for target in [rng.randrange(1, end - 1000) for _ in range(n)]:
        qmp_settled(q)
        t0 = time.monotonic()
        try:
            q.qmp.ok('replay-seek', icount=target)
            q.qmp.wait_event('STOP')
        except socket.timeout:
            res.setdefault('seek', []).append('timeout')
            return False
        secs = time.monotonic() - t0
        res.setdefault('seek', []).append(secs)
        res.setdefault('seek first' if target > furthest else
                       'seek visited', []).append(secs)
        furthest = max(furthest, target)
        got = q.qmp.ok('query-replay')['icount']
        regs, ram = qmp_state(q, arch, d)
        res.setdefault('landings', []).append(
            dict(landing='replay-seek', icount=got, regs=regs, ram=ram,
                 ok=got == target))
    return True


def lt_replay(flavour, arch, d, guest, addr, end, rng, timeout, res):
    """The time-travel replay: gdb's reverse moves, then the seeks (in a
    fresh replay if gdb timed out); the snapshots held and the peak
    RSS."""
    q = TTQemu(flavour, arch, 'replay', d, 'tt', timeout, guest=guest)
    try:
        lt_gdb_results(*lt_debug(q, arch, addr, flavour, d, timeout, res),
                       res)
        if q.proc.poll() is not None or res['gdb timed out']:
            res['rss'] = q.peak_rss()
            q.stop()
            q = TTQemu(flavour, arch, 'replay', d, 'tt-seeks', timeout,
                       guest=guest)
        lt_seeks(q, arch, d, end, LT_SEEKS[flavour], rng, res)
        if flavour == 'qrr':
            s = q.qmp.ok('query-replay-snapshots')
            res['snapshots'] = (s['used'], len(s['snapshots']), s['budget'])
        res['rss'] = max(res.get('rss') or 0, q.peak_rss() or 0)
    except (OSError, EOFError, RuntimeError) as e:
        res.setdefault('errors', []).append(f'replay: {e}')
    finally:
        res['stderr'] = q.stderr()
        q.stop()


def lt_reference(flavour, arch, d, guest, icounts, timeout):
    """{icount: (registers, RAM digest)} of a forward-only replay (no
    time travel) stopped at each of @icounts by replay-break."""
    q = TTQemu(flavour, arch, 'replay', d, 'reference', timeout, guest=guest,
               tt=False)
    want = {}
    try:
        for t in sorted(set(icounts)):
            qmp_settled(q)
            q.qmp.ok('replay-break', icount=t)
            q.qmp.ok('cont')
            q.qmp.wait_event('STOP')
            if q.qmp.ok('query-replay')['icount'] == t:
                want[t] = qmp_state(q, arch, d)
    except (OSError, EOFError, RuntimeError) as e:
        print(f'    reference replay: {e}', file=sys.stderr)
    finally:
        q.stop()
    return want


def lt_mismatch(landing, want):
    """Why @landing is not the forward-only replay's machine; None if it
    is."""
    w = want.get(landing['icount'])
    if not landing['ok']:
        return 'landed at the wrong place'
    if w is None:
        return 'the reference replay did not stop there'
    if landing['regs'] != w[0]:
        diff = [f'{a.strip()} / {b.strip()}' for a, b in
                zip(landing['regs'].splitlines(), w[0].splitlines())
                if a != b]
        return 'registers differ: ' + '; '.join(diff[:2])
    if landing['ram'] != w[1]:
        return 'RAM differs'
    return None


def lt_check(flavour, arch, d, guest, timeout, res):
    """Compare every landing with the forward-only replay."""
    lands = res.get('landings', [])
    want = lt_reference(flavour, arch, d, guest,
                        [x['icount'] for x in lands], timeout)
    res['mismatches'] = []
    for x in lands:
        why = lt_mismatch(x, want)
        if why:
            res['mismatches'].append(
                f'{x["landing"]} at icount {x["icount"]}: {why}')


LT_FORWARD = 3


def lt_measure_one(flavour, arch, d, url, rng, timeout):
    """One recording of the Linux guest and its replays; a dict."""
    res = {}
    guest = lt_args(flavour, arch, d, url)
    for disk in ('disk', 'blank'):
        qcow2_create(flavour, d / f'{disk}.qcow2', '16M')
    res['record'], end = tt_record(flavour, arch, d, timeout, guest)
    addr, uptime = lt_marks(arch, d / 'record.serial')
    res['end'], res['guest secs'] = end, uptime
    # The noisiest figure of the table (two single runs differed by more
    # than 10 %): LT_FORWARD replays each way, alternating; a flavour
    # whose replay failed or timed out is not tried again.
    for _ in range(LT_FORWARD):
        for tt in (False, True):
            res.setdefault(f'forward {tt}', []).append(
                lt_forward(flavour, arch, d, guest, tt, timeout))
        if any(isinstance(v, str)
               for tt in (False, True) for v in res[f'forward {tt}']):
            break
    lt_replay(flavour, arch, d, guest, addr, end, rng, timeout, res)
    if flavour == 'upstream':
        res['qcow2'] = (d / 'snap.qcow2').stat().st_blocks * 512
    lt_check(flavour, arch, d, guest, timeout, res)
    return res


def lt_report(arch, flavour, i, runs, r, secs, d):
    """One run's summary on stderr; keep @d if it went wrong."""
    print(f'  {arch} run {i + 1}/{runs} linuxtt {flavour:8} {secs:7.1f} s: '
          + ', '.join(f'{k} {tt_fmt(v)}' for k, v in r.items()
                      if k in LT_ROWS_KEYS) +
          f', landings {len(r.get("landings", []))}, '
          f'mismatches {len(r.get("mismatches", []))}', file=sys.stderr)
    for e in r.get('errors', []) + r.get('mismatches', []):
        print(f'    {e}', file=sys.stderr)
    if r.get('errors') or r.get('mismatches'):
        print('    QEMU said: ' + r['stderr'][-1000:], file=sys.stderr)
        print(f'    kept {d} (logs of each QEMU and gdb)', file=sys.stderr)
    else:
        shutil.rmtree(d)


def lt_measure(arches, runs, tmp, timeout):
    """{(arch, flavour): [result dict per run]}, runs interleaved: run i
    of each architecture and flavour before run i + 1."""
    (tmp / 'www').mkdir()
    server = LTServer(tmp / 'www')
    flavours = [f for f in FLAVOURS if qemu(f, arches[0]).exists()]
    results = {(a, f): [] for a in arches for f in flavours}
    try:
        for i in range(runs):
            for arch in arches:
                for flavour in flavours:
                    d = tmp / f'lt-{flavour}-{arch}-{i}'
                    d.mkdir()
                    t0 = time.monotonic()
                    rng = random.Random(f'{arch}-{i}')
                    r = lt_measure_one(flavour, arch, d, server.url, rng,
                                       timeout)
                    results[arch, flavour].append(r)
                    lt_report(arch, flavour, i, runs, r,
                              time.monotonic() - t0, d)
    finally:
        server.httpd.shutdown()
        shutil.rmtree(tmp / 'www')
    return results


LT_ROWS = [('record', 'record (s)', 1),
           ('forward False', 'replay forward, time travel off (s)', 1),
           ('forward True', 'replay forward, time travel on (s)', 1)]
LT_ROWS_KEYS = {k for k, _, _ in LT_ROWS} | {'reverse-stepi', 'seek'}


def percentile(vals, p):
    """The nearest-rank @p-th percentile of @vals."""
    v = sorted(vals)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def lt_pooled(runs, key, timeout):
    """(values of @key pooled over the runs, a timeout or error text)"""
    vals = [v for r in runs for v in r.get(key, [])]
    nums = [v for v in vals if isinstance(v, (int, float))]
    bad = [v for v in vals if isinstance(v, str)] + \
        [r[key] for r in runs if isinstance(r.get(key), str)]
    note = f'timeout (> {timeout:.0f} s)' if bad else None
    return nums, note


def lt_cell(runs, key, stat, scale, timeout):
    """A pooled statistic of @key as a table cell."""
    nums, note = lt_pooled(runs, key, timeout)
    if not nums:
        return note or '–'
    cell = tt_fmt(stat(nums), scale)
    return cell + (f' ({len(nums)} measured, then {note})' if note else '')


class LTTable:
    """The markdown table of one architecture: a row per measure, a
    column per flavour."""

    def __init__(self, arch, runs, results, timeout):
        self.results = {f: results.get((arch, f)) for f in FLAVOURS}
        self.timeout = timeout
        self.rows = [f'### {arch} ({" ".join(GUEST[arch][0])}, Linux guest '
                     f'with disk, network and qrr.load={LT_LOAD}, '
                     f'{LT_MEM} RAM, median of {runs})', '',
                     '| | qrr | upstream | qrr / upstream | target |',
                     '|---|---|---|---|---|']

    def row(self, name, cell, target='', ratio=None):
        cells = [cell(r) if r else 'not built in this run'
                 for r in self.results.values()]
        nums = [ratio(r) if ratio and r else None
                for r in self.results.values()]
        self.rows.append(f'| {name} | {cells[0]} | {cells[1]} | '
                         f'{fmt_ratio_tt(*nums)} | {target} |')

    def median(self, key, scale=1):
        def cell(runs):
            v = tt_value([r[key] for r in runs if key in r], self.timeout)
            if v is None and any(r.get('gdb timed out') for r in runs):
                return 'not tried (gdb timed out before)'
            return tt_fmt(v, scale)

        def num(runs):
            return tt_value([r[key] for r in runs if key in r], self.timeout)
        return cell, num

    def pooled(self, key, stat, scale=1):
        def num(runs):
            nums, _ = lt_pooled(runs, key, self.timeout)
            return stat(nums) if nums else None
        return (lambda runs: lt_cell(runs, key, stat, scale, self.timeout),
                num)

    def text(self):
        return '\n'.join(self.rows) + '\n'


def lt_recording(runs):
    gi = statistics.median(r['end'] for r in runs) / 1e9
    up = [r['guest secs'] for r in runs if r.get('guest secs')]
    return (f'{statistics.median(up):.0f} s, ' if up else '') + f'{gi:.1f} G'


def lt_tt_cost(runs):
    on = tt_value([r['forward True'] for r in runs], 0)
    off = tt_value([r['forward False'] for r in runs], 0)
    return fmt_ratio_tt(on, off)


def lt_rc_back(runs, dist):
    """The median distance back of reverse-continue's landings: in
    instructions, and in guest time by the instruction rate of the 10 s
    between the last two sethostname hits (the marks' schedule)."""
    key, ten = (f'reverse-continue {d} back' for d in (dist, '10 s'))
    back = [r[key] for r in runs if key in r]
    ms = [r[key] / (r[ten] / 10) * 1000 for r in runs
          if key in r and r.get(ten)]
    if not back:
        return '–'
    return (f'{statistics.median(back) / 1e6:,.1f} M instructions' +
            (f', {statistics.median(ms):,.1f} ms' if ms and dist != '10 s'
             else ''))


def lt_snapshots(runs):
    snaps = [r['snapshots'] for r in runs if 'snapshots' in r]
    qcow = [r['qcow2'] for r in runs if 'qcow2' in r]
    if qcow:
        return (f'1 snapshot, {statistics.median(qcow) / 2**20:.1f} MiB '
                f'qcow2 image on disk')
    if not snaps:
        return '–'
    used = statistics.median(s[0] for s in snaps)
    return (f'{used / 2**20:.1f} MiB in '
            f'{statistics.median(s[1] for s in snaps):.0f} snapshots '
            f'({used / LT_RAM:.2f}× RAM; rrbudget '
            f'{statistics.median(s[2] for s in snaps) / 2**20:.0f} MiB)')


def lt_rss(runs):
    rss = [r['rss'] for r in runs if r.get('rss')]
    return f'{statistics.median(rss) / 2**20:,.0f}' if rss else '–'


def lt_landings(runs):
    """Landings equal to the reference, and how many distinct states they
    were (so that equal digests are not the same dump every time)."""
    lands = [x for r in runs for x in r.get('landings', [])]
    bad = sum(len(r.get('mismatches', [])) for r in runs)
    return (f'{len(lands) - bad}/{len(lands)} ({len({x["ram"] for x in lands})} '
            f'distinct RAM digests at {len({x["icount"] for x in lands})} '
            f'instruction counts)')


def lt_table(arch, runs, results, timeout):
    t = LTTable(arch, runs, results, timeout)
    t.row('recording: guest time, instructions', lt_recording)
    for key, name, scale in LT_ROWS:
        cell, num = t.median(key, scale)
        t.row(name, cell, ratio=num)
    t.row('time travel on / off', lt_tt_cost, '≤ 1.10×')
    for name, stat, target in (('median', statistics.median, '≤ 50 ms'),
                               ('p95', lambda v: percentile(v, 95), '')):
        cell, num = t.pooled('reverse-stepi', stat, 1000)
        t.row(f'reverse-stepi at sync hits, {name} (ms)', cell, target, num)
    for mark, dist in LT_MARKS:
        key = f'reverse-continue {dist}'
        cell, num = t.median(key)
        t.row(f'reverse-continue to the previous {mark} (about {dist}) (s)',
              cell, ratio=num)
        t.row('… how far back its hit was',
              lambda runs, d=dist: lt_rc_back(runs, d))
    for key, what, targets in (
            ('seek', 'to random positions', ('', '', '')),
            ('seek visited', 'within the history replayed so far',
             ('', '≤ 0.5 s', '')),
            ('seek first', 'past the furthest point replayed (first visits)',
             ('', '', ''))):
        if key != 'seek':
            t.row(f'replay-seek {what}: how many', lambda runs, k=key:
                  str(len(lt_pooled(runs, k, timeout)[0])))
        for name, stat, target in zip(
                ('median', 'p90', 'max'),
                (statistics.median, lambda v: percentile(v, 90), max),
                targets):
            cell, num = t.pooled(key, stat)
            t.row(f'replay-seek {what}, {name} (s)', cell, target, num)
    t.row('snapshots held', lt_snapshots, '≤ rrbudget')
    t.row('replay peak RSS (MiB)', lt_rss)
    t.row('landings equal to a forward-only replay (registers, RAM)',
          lt_landings, 'all')
    return t.text()


def lt_bad(results):
    """qrr mismatched, failed or timed out."""
    return any(r.get('errors') or r.get('mismatches') or
               r.get('gdb timed out') or 'timeout' in r.get('seek', [])
               for (_, f), runs in results.items() if f == 'qrr'
               for r in runs)


LT_LEGEND = f'''\
Reverse debugging on a recording of the Linux test guest (Debian kernel,
busybox initramfs, {LT_MEM} RAM) with a virtio disk behind blkreplay and a
virtio NIC behind filter-replay, running `qrr.load={LT_LOAD}` after the
boot: for {LT_LOAD} s of guest time, gzip a file of 64 KiB random and
100 KiB of text, gunzip and md5 it, write it to the disk with fsync,
fetch 1 MiB from an HTTP server on the host; meanwhile a shell loop
sleeps 1 ms (clock_nanosleep(2)) between two looks at the clock, calls
sync(2) each second and sethostname(2) every 10 s.  Upstream records
and replays with `rrsnapshot=init`, a qcow2 image for its snapshot and
the disk image writable (its snapshot holds the disk too); qrr with
neither, and it never writes the image.  Each
replay starts paused (`-S`) and gdb sets hardware breakpoints on the
marks' system calls (addresses from /proc/kallsyms, `nokaslr`).  Times
are wall clock: QMP `replay-seek` until the `STOP` event; a gdb command
around `gdb.execute()` in gdb's Python.

* *replay forward*: `cont` at icount 0 to the recorded power-off
  (`SHUTDOWN`); time travel off is qrr's `rrbudget=0` and upstream
  without `rrsnapshot`.  {LT_FORWARD} replays each way per recording,
  off and on alternating; the median (a flavour is not tried again
  after a failed or timed-out one).
* *reverse-stepi*: `continue` from sync hit to sync hit, a reverse-stepi
  at each of the first {LT_RSTEPI["qrr"]} (upstream:
  {LT_RSTEPI["upstream"]}) and a stepi back; median and p95 over every
  position of every run.
* *reverse-continue*: stopped at the {LT_AT}th sethostname hit, with the
  only breakpoint on clock_nanosleep, sync or sethostname; the hit it
  lands on is about 1 ms, 1 s or 10 s of guest time back.  The next row
  says how far: in instructions, and in guest time by the instruction
  rate of the 10 s between the two sethostname hits.
* *replay-seek*: after the gdb session, {LT_SEEKS["qrr"]} (upstream:
  {LT_SEEKS["upstream"]}) positions drawn uniformly from the whole
  recording, in that random order.  A seek *within the history replayed
  so far* goes to a position at or before the furthest point the replay
  has reached (the gdb session's last stop, then the furthest seek); a
  *first visit* goes past it and can only replay forward to it, at the
  forward replay's speed: no snapshot exists there yet.  The target
  speaks of the first kind; the second is the forward replay row's
  speed over the distance, and is shown for what it is.
* *snapshots held*: QMP `query-replay-snapshots` at the end.
* *landings*: after each reverse-stepi, reverse-continue and seek, the
  registers (HMP `info registers`) and a SHA-256 of guest RAM (`pmemsave`
  of all of it) are compared with those of a separate replay without
  time travel stopped at the same instruction count by `replay-break`.
  A mismatch, a landing elsewhere than asked, an error or a timeout makes
  the bench fail for qrr.
* *timeout*: no answer within `--tt-timeout`; the replay is given up
  (the rows after it stay empty).
'''


def host_stamp():
    """Today's date, the host's kernel, CPU count and model."""
    cpu = re.search(r'^model name\s*:\s*(.*)$',
                    Path('/proc/cpuinfo').read_text(), re.M)
    return (f'{time.strftime("%Y-%m-%d")}, {os.uname().sysname} '
            f'{os.uname().release}, {os.cpu_count()} CPUs '
            f'({cpu.group(1) if cpu else "CPU unknown"})')


def linuxtt(arches, runs, timeout):
    """The linuxtt section's text, and whether qrr failed."""
    tmp = Path(tempfile.mkdtemp(prefix='qrr-bench-lt-'))
    text = [SECTIONS['linuxtt'], '', f'{host_stamp()}; runs interleaved.',
            '', LT_LEGEND]
    results = lt_measure(arches, runs, tmp, timeout)
    for arch in arches:
        text.append(lt_table(arch, runs, results, timeout))
    try:
        tmp.rmdir()
    except OSError:
        pass
    return '\n'.join(text), lt_bad(results)


# ---- ttcost: what time travel costs a forward replay ----

def tc_vcpu_seconds(q):
    """CPU seconds of @q's vCPU threads: "ALL CPUs/TCG" (one thread
    runs every vCPU in turn with -icount) or "CPU n/TCG"."""
    total = 0
    try:
        for t in Path(f'/proc/{q.proc.pid}/task').iterdir():
            f = (t / 'stat').read_text()
            comm = f[f.index('(') + 1:f.rindex(')')]
            if comm.startswith('CPU ') or comm.startswith('ALL CPUs'):
                utime, stime = f.rsplit(')', 1)[1].split()[11:13]
                total += int(utime) + int(stime)
    except (OSError, ValueError):
        return None
    return total / os.sysconf('SC_CLK_TCK')


def tc_named(guest):
    """@guest with its threads named (-name debug-threads=on), so that
    tc_vcpu_seconds() finds the vCPU's."""
    return lambda serial, tt: guest(serial, tt) + \
        ['-name', 'qrr-bench,debug-threads=on']


def tc_run(q, tt, recorded):
    """@q's replay from icount 0 to the recorded power-off: wall seconds,
    the process's and the vCPU thread's CPU seconds, and with time travel
    what query-replay-snapshots says of the snapshots taken;
    {'error': ...} if it failed or its serial output is not the
    recording's."""
    try:
        t0, cpu0, vcpu0 = time.monotonic(), q.cpu_seconds(), \
            tc_vcpu_seconds(q)
        q.qmp.ok('cont')
        q.qmp.wait_event('SHUTDOWN')
        r = {'wall': time.monotonic() - t0, 'cpu': q.cpu_seconds() - cpu0,
             'vcpu': tc_vcpu_seconds(q) - vcpu0}
        if tt:
            s = q.qmp.ok('query-replay-snapshots')
            r.update(taken=s['taken'], take=s['take-us'] / 1e6,
                     held=len(s['snapshots']), interval=s['interval'])
        if q.serial.read_bytes() != recorded:
            r = {'error': 'the serial output differs from the recording'}
        return r
    except (OSError, EOFError, RuntimeError, TypeError) as e:
        return {'error': f'{e}: {q.stderr()[-300:]}'}


def tc_forward(arch, d, guest, tt, timeout, recorded):
    """One forward replay of the recording in @d, as tc_run() gives it."""
    q = TTQemu('qrr', arch, 'replay', d, f'cost-{tt}', timeout,
               guest=tc_named(guest), tt=tt)
    try:
        return tc_run(q, tt, recorded)
    finally:
        q.stop()


def tc_measure(arches, runs, tmp, timeout):
    """{arch: [(off, on) per pair]} and {arch: the recording's last
    icount}: one recording per architecture, then @runs pairs of forward
    replays, pair i of each architecture before pair i + 1, off first in
    even pairs and on first in odd ones (so that a drift of the host's
    speed does not favour one)."""
    (tmp / 'www').mkdir()
    server = LTServer(tmp / 'www')
    rec = {}
    pairs = {arch: [] for arch in arches}
    try:
        for arch in arches:
            d = tmp / f'tc-{arch}'
            d.mkdir()
            guest = lt_args('qrr', arch, d, server.url)
            qcow2_create('qrr', d / 'disk.qcow2', '16M')
            secs, end = tt_record('qrr', arch, d, timeout, guest)
            rec[arch] = (d, guest, (d / 'record.serial').read_bytes(), end)
            print(f'  {arch} ttcost: recorded {end / 1e9:.1f} G instructions '
                  f'in {secs:.1f} s', file=sys.stderr)
        for i in range(runs):
            for arch in arches:
                d, guest, recorded, _ = rec[arch]
                got = {}
                for tt in (False, True) if i % 2 == 0 else (True, False):
                    got[tt] = tc_forward(arch, d, guest, tt, timeout,
                                         recorded)
                pairs[arch].append((got[False], got[True]))
                print(f'  {arch} ttcost pair {i + 1}/{runs}: off '
                      f'{pairs[arch][-1][0]}, on {pairs[arch][-1][1]}',
                      file=sys.stderr)
    finally:
        server.httpd.shutdown()
    return pairs, {a: rec[a][3] for a in rec}


def tc_table(arch, pairs, end):
    """The markdown table of one architecture's pairs."""
    good = [(a, b) for a, b in pairs if 'error' not in a and
            'error' not in b]
    errors = [x['error'] for p in pairs for x in p if 'error' in x]
    rows = [f'### {arch} ({" ".join(GUEST[arch][0])}, the Linux recording '
            f'of {end / 1e9:.1f} G instructions, {len(good)} of '
            f'{len(pairs)} pairs)', '']
    if not good:
        return '\n'.join(rows + ['No pair completed: ' +
                                 '; '.join(errors), ''])
    med = statistics.median

    def line(name, key):
        if not all(p[k].get(key) for p in good for k in (0, 1)):
            rows.append(f'| {name} | – | – | – | – |')
            return
        off, on = (med([p[k][key] for p in good]) for k in (0, 1))
        ratios = sorted(p[1][key] / p[0][key] for p in good)
        rows.append(f'| {name} | {off:.1f} | {on:.1f} | '
                    f'{on / off:.3f}× | {med(ratios):.3f}× '
                    f'({ratios[0]:.3f}–{ratios[-1]:.3f}) |')
    rows += ['| median over the pairs | time travel off | on | on / off '
             '(medians) | on / off per pair: median (range) |',
             '|---|---|---|---|---|']
    line('wall clock (s)', 'wall')
    line('CPU time, all threads (s)', 'cpu')
    line('CPU time, vCPU thread (s)', 'vcpu')
    take = med([p[1]['take'] for p in good])
    extra = med([(p[1]['vcpu'] or 0) - (p[0]['vcpu'] or 0) for p in good])
    off = med([p[0]['vcpu'] or p[0]['wall'] for p in good])
    rows += ['', f'With time travel, medians: '
             f'{med([p[1]["taken"] for p in good]):.0f} snapshots taken '
             f'({med([p[1]["held"] for p in good]):.0f} held at the end, '
             f'interval at the end '
             f'{med([p[1]["interval"] for p in good]) / 1e6:.1f} M '
             f'instructions); the vCPU thread spent {take:.2f} s taking '
             f'them ({take / off * 100:.1f} % of its CPU time without time '
             f'travel) and {extra:.2f} s more in all ({extra / off * 100:.1f}'
             f' %); the rest, {extra - take:.2f} s, is the vCPU running '
             'slower between snapshots and the host\'s noise, not told '
             'apart here.', '']
    if errors:
        rows += ['Failed: ' + '; '.join(errors), '']
    return '\n'.join(rows)


TC_LEGEND = '''\
The forward cost of time travel alone, on the Linux recording of the
*Reverse debugging on Linux* section (the same guest, load and devices;
one recording per architecture): replays from icount 0 to the recorded
power-off with time travel (the default budget, 2× RAM) and without
(`rrbudget=0`), in pairs, one after the other, alternating which goes
first, pair i of each architecture before pair i + 1.  Wall clock from
`cont` to the `SHUTDOWN` event; CPU time from /proc over the same span,
of the whole process (the snapshots' packing thread included, which
runs on another host CPU) and of the vCPU thread alone; the snapshots
taken and the vCPU thread's CPU time taking them from
`query-replay-snapshots` (`taken`, `take-us`).  Each replay's serial
output is compared with the recording's.  Target: on ≤ 1.10× off.  On
this host the speed drifts by more than that within minutes (one
replay alone took 68.6 s and 88.6 s in two runs): the per-pair ratios
are the figure to read, their median and their range.
'''


def ttcost(arches, runs, timeout):
    """The ttcost section's text, and whether a replay failed."""
    tmp = Path(tempfile.mkdtemp(prefix='qrr-bench-tc-'))
    text = [SECTIONS['ttcost'], '',
            f'{host_stamp()}; {runs} pairs per architecture, interleaved.',
            '', TC_LEGEND]
    try:
        pairs, end = tc_measure(arches, runs, tmp, timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for arch in arches:
        text.append(tc_table(arch, pairs[arch], end[arch]))
    return '\n'.join(text), any('error' in x for p in pairs.values()
                               for pair in p for x in pair)


SECTIONS = {
    'boot': '## Record and replay: Linux boot',
    'timetravel': '## Reverse debugging',
    'smp': '## Multi-vCPU record and replay',
    'linuxtt': '## Reverse debugging on Linux',
    'ttcost': '## The forward cost of time travel on Linux',
}


def merge(old, header, sections):
    """@old (an earlier --out file) with @sections ({name: text}) in
    place of its own; an old file without section headings is taken as
    the boot section.  Sections that this script does not write (another
    tool's, e.g. tooling/fsync-cost.py's) are kept, after its own."""
    have, others = {}, []
    if old:
        parts = re.split(r'^(## .*)$', old, flags=re.M)
        if len(parts) == 1:
            have['boot'] = SECTIONS['boot'] + '\n\n' + old.strip() + '\n'
        for i in range(1, len(parts), 2):
            text = parts[i] + parts[i + 1].rstrip() + '\n'
            name = [n for n, head in SECTIONS.items() if parts[i] == head]
            if name:
                have[name[0]] = text
            else:
                others.append(text)
    have.update(sections)
    return '\n'.join([header] + [have[n] for n in SECTIONS if n in have] +
                      others)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.
                                 RawDescriptionHelpFormatter)
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--arch', default='x86_64,aarch64')
    ap.add_argument('--only', choices=sorted(SECTIONS),
                    help='run one section (default: all)')
    ap.add_argument('--tt-timeout', type=float, default=900,
                    help='seconds a reverse-debugging command may take '
                    '(default 900)')
    ap.add_argument('--out', type=Path)
    a = ap.parse_args()
    # killed: still end the QEMUs and gdbs (the finally clauses)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sections = [a.only] if a.only else list(SECTIONS)
    arches = a.arch.split(',')
    # smp and linuxtt do without upstream's build
    for f in (FLAVOURS + ('upstream-warp',) if 'boot' in sections else
              FLAVOURS if set(sections) - {'smp', 'linuxtt', 'ttcost'}
              else ('qrr',)):
        for arch in arches:
            if not qemu(f, arch).exists():
                sys.exit(f'bench: {qemu(f, arch)} is missing: run make bench')
            if 'timetravel' in sections and not tt_elf(arch).exists():
                sys.exit(f'bench: {tt_elf(arch)} is missing: run make guests')
    if {'timetravel', 'linuxtt'} & set(sections) and not shutil.which(GDB):
        sys.exit(f'bench: {GDB} is missing (apt-get install gdb-multiarch)')
    host = subprocess.run(['uname', '-srm'], capture_output=True,
                          text=True).stdout.strip()
    stamp = (f'{time.strftime("%Y-%m-%d")}, {host}, {os.cpu_count()} CPUs')
    header = ('# qrr benchmark\n\n'
              'Written by `make bench` (`tooling/bench.sh`, '
              '`tooling/bench.py`); `--only boot`, `--only smp`, '
              '`--only timetravel`, `--only linuxtt` or `--only ttcost` '
              'rewrites one '
              'section.\n')
    out = {}
    bad = False
    with tempfile.TemporaryDirectory(prefix='qrr-bench-') as tmp:
        if 'boot' in sections:
            text = [SECTIONS['boot'], '',
                    f'qrr benchmark, {stamp}; runs interleaved: run i of '
                    'every architecture, configuration and flavour before '
                    'run i + 1.', '']
            res = measure(arches, a.runs, Path(tmp))
            for arch in arches:
                times, sizes, mismatch = res[arch]
                text.append(table(arch, a.runs, times, sizes, mismatch))
                bad |= mismatch['qrr'] > 0
            out['boot'] = '\n'.join(text)
    if 'smp' in sections:
        text = [SECTIONS['smp'], '',
                f'qrr benchmark, {stamp}; runs interleaved.', '']
        with tempfile.TemporaryDirectory(prefix='qrr-bench-smp-') as tmp:
            for arch in arches:
                res = smp_measure(arch, a.runs, Path(tmp))
                text.append(smp_table(arch, a.runs, res,
                                      smp_upstream(arch, Path(tmp))))
                bad |= any(res[4].values())
        out['smp'] = '\n'.join(text)
    if 'timetravel' in sections:
        # not removed at the end: the directories of runs with errors or
        # timeouts are kept for their logs
        tmp = Path(tempfile.mkdtemp(prefix='qrr-bench-tt-'))
        text = [SECTIONS['timetravel'], '', f'{stamp}.', '', TT_LEGEND]
        for arch in arches:
            results = tt_measure(arch, a.runs, tmp, a.tt_timeout)
            text.append(tt_table(arch, a.runs, results, a.tt_timeout))
            bad |= tt_bad(results)
        out['timetravel'] = '\n'.join(text)
        try:
            tmp.rmdir()
        except OSError:
            pass
    if 'linuxtt' in sections:
        out['linuxtt'], failed = linuxtt(arches, a.runs, a.tt_timeout)
        bad |= failed
    if 'ttcost' in sections:
        out['ttcost'], failed = ttcost(arches, a.runs, a.tt_timeout)
        bad |= failed
    doc = merge(a.out.read_text() if a.out and a.out.exists() else '',
                header, out)
    print('\n'.join(out[n] for n in SECTIONS if n in out))
    if a.out:
        a.out.write_text(doc)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
