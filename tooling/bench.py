#!/usr/bin/python3
# qrr benchmark: qrr's build side by side with upstream QEMU's replay (the
# same Debian base, built with its own replay kept), one markdown table
# per architecture and section.
#
#   bench.py [--runs N] [--arch x86_64,aarch64]
#            [--only boot|smp|timetravel]
#            [--tt-timeout SECONDS] [--out FILE]
#
# Sections (both by default; --only picks one, and --out then rewrites
# only that section of FILE and keeps the other):
#
# boot        The default Linux guest, N runs of each configuration,
#             interleaved: plain TCG, icount-only (shift=auto), record,
#             replay; the log's size.  A replay whose serial output differs
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
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get('QRR_BUILD', TOP / 'build'))
sys.path.insert(0, str(TOP / 'tests' / 'functional' / 'qrr'))
from qrrqmp import QMP  # noqa: E402
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


def measure(arch, runs, tmp):
    """{(flavour, config): [seconds]}, {flavour: [log bytes]}, mismatches"""
    times = {(f, c): [] for f in FLAVOURS for c in CONFIGS}
    sizes = {f: [] for f in FLAVOURS}
    mismatch = {f: 0 for f in FLAVOURS}
    for i in range(runs):
        for config in CONFIGS:
            for flavour in FLAVOURS:
                log = tmp / f'{flavour}-{arch}-{i}.rr'
                t, out = run_one(flavour, arch, config, log)
                times[flavour, config].append(t)
                if config == 'record':
                    sizes[flavour].append(log.stat().st_size)
                    (tmp / f'{flavour}-{i}.out').write_bytes(out)
                elif config == 'replay':
                    if out != (tmp / f'{flavour}-{i}.out').read_bytes():
                        mismatch[flavour] += 1
                    log.unlink()
                print(f'  {arch} run {i + 1}/{runs} {config:7} {flavour:8} '
                      f'{t:7.2f} s', file=sys.stderr)
    return times, sizes, mismatch


def fmt_ratio(a, b):
    return f'{a / b:.2f}×' if b else '–'


def table(arch, runs, times, sizes, mismatch):
    med = {k: statistics.median(v) for k, v in times.items()}
    size = {f: statistics.median(v) for f, v in sizes.items()}
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
    """One QEMU of the timetravel bench, with QMP and a gdb server."""

    def __init__(self, flavour, arch, mode, d, tag, timeout, icount_extra=''):
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
        if flavour == 'upstream':
            icount += ',rrsnapshot=init'
            extra = ['-drive', f'file={d / "snap.qcow2"},if=none,id=rrdisk']
        cmd = [str(qemu(flavour, arch))] + \
            tt_args(arch, d / f'{tag}.serial') + extra + [
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


def tt_record(flavour, arch, d, timeout):
    """Record the bench guest; (seconds, last icount)."""
    if flavour == 'upstream':
        img = BUILD / flavour / 'qemu' / 'qemu-img'
        subprocess.run([str(img), 'create', '-q', '-f', 'qcow2',
                        str(d / 'snap.qcow2'), '64M'], check=True)
    q = TTQemu(flavour, arch, 'record', d, 'record', timeout)
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


def tt_gdb(q, arch, plan, d, timeout, res, at_done):
    """Run the gdb driver with @plan against @q, calling @at_done() when
    it is through; returns the phases left to do (after a timeout: those
    after the one that timed out)."""
    out = d / f'{q.tag}.gdb.jsonl'
    script = d / 'driver.py'
    script.write_text(TT_DRIVER)
    if out.exists():
        out.unlink()
    cmd = [GDB, '-nx', '-batch', '-ex', f'file {tt_elf(arch)}']
    if arch == 'x86_64':
        # the guest is a 32-bit ELF; the stub describes x86-64
        cmd += ['-ex', 'set architecture i386:x86-64']
    cmd += ['-ex', f'target remote {q.gdb_path}', '-x', str(script)]
    env = dict(os.environ, QRR_BENCH_PLAN=json.dumps(plan),
               QRR_BENCH_OUT=str(out))
    log = open(d / f'{q.tag}.gdb.log', 'ab')
    g = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT)
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


SECTIONS = {
    'boot': '## Record and replay: Linux boot',
    'timetravel': '## Reverse debugging',
    'smp': '## Multi-vCPU record and replay',
}


def merge(old, header, sections):
    """@old (an earlier --out file) with @sections ({name: text}) in
    place of its own; an old file without section headings is taken as
    the boot section."""
    have = {}
    if old:
        parts = re.split(r'^(## .*)$', old, flags=re.M)
        if len(parts) == 1:
            have['boot'] = SECTIONS['boot'] + '\n\n' + old.strip() + '\n'
        for i in range(1, len(parts), 2):
            for name, head in SECTIONS.items():
                if parts[i] == head:
                    have[name] = parts[i] + parts[i + 1].rstrip() + '\n'
    have.update(sections)
    return '\n'.join([header] + [have[n] for n in SECTIONS if n in have])


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
    for f in FLAVOURS if sections != ['smp'] else ('qrr',):
        for arch in arches:
            if not qemu(f, arch).exists():
                sys.exit(f'bench: {qemu(f, arch)} is missing: run make bench')
            if 'timetravel' in sections and not tt_elf(arch).exists():
                sys.exit(f'bench: {tt_elf(arch)} is missing: run make guests')
    if 'timetravel' in sections and not shutil.which(GDB):
        sys.exit(f'bench: {GDB} is missing (apt-get install gdb-multiarch)')
    host = subprocess.run(['uname', '-srm'], capture_output=True,
                          text=True).stdout.strip()
    stamp = (f'{time.strftime("%Y-%m-%d")}, {host}, {os.cpu_count()} CPUs')
    header = ('# qrr benchmark\n\n'
              'Written by `make bench` (`tooling/bench.sh`, '
              '`tooling/bench.py`); `--only boot`, `--only smp` or '
              '`--only timetravel` rewrites one section.\n')
    out = {}
    bad = False
    with tempfile.TemporaryDirectory(prefix='qrr-bench-') as tmp:
        if 'boot' in sections:
            text = [SECTIONS['boot'], '',
                    f'qrr benchmark, {stamp}; runs interleaved.', '']
            for arch in arches:
                times, sizes, mismatch = measure(arch, a.runs, Path(tmp))
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
    doc = merge(a.out.read_text() if a.out and a.out.exists() else '',
                header, out)
    print('\n'.join(out[n] for n in SECTIONS if n in out))
    if a.out:
        a.out.write_text(doc)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
