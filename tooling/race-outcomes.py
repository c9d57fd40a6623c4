#!/usr/bin/python3
# How often a race between vCPUs changes its outcome from one recording to
# the next, with and without chaos mode (-icount rrchaos=SEED).
#
#   race-outcomes.py [--arch x86_64,aarch64] [--smp 2] [--runs 10]
#
# Records the Linux test guest with -smp N running the racy workload
# (qrr.race=: one shell per vCPU adding 1 to a shared counter file without
# locking) --runs times plain and --runs times in chaos mode (seeds 1..runs),
# interleaved, and prints the counters each recording ended with and how
# many distinct ones there were.  With --replay, each recording is also
# replayed and must print its own counter.  qrr only; measures outcomes,
# not time.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get('QRR_BUILD', TOP / 'build'))
GUEST = {
    'x86_64': (['-M', 'pc', '-cpu', 'max'], 'ttyS0'),
    'aarch64': (['-M', 'virt', '-cpu', 'cortex-a57'], 'ttyAMA0'),
}
RACE = 400


def args(arch, n, mode, log, extra=''):
    machine, console = GUEST[arch]
    g = BUILD / 'guest' / arch
    icount = f'shift=auto,rr={mode},rrfile={log}' + (',' + extra
                                                     if extra else '')
    return [str(BUILD / 'qrr' / 'qemu' / f'qemu-system-{arch}')] + \
        machine + ['-smp', str(n), '-m', '256M', '-nodefaults',
                   '-display', 'none', '-no-reboot', '-serial', 'stdio',
                   '-monitor', 'none', '-kernel', str(g / 'vmlinuz'),
                   '-initrd', str(g / 'initrd.gz'),
                   '-append', f'console={console} panic=-1 qrr.race={RACE}',
                   '-icount', icount]


def counter(out):
    m = re.search(rb'^race: counter (\d+) of (\d+)', out, re.M)
    if not m:
        sys.exit('race-outcomes: the guest printed no race result')
    return int(m.group(1))


def run(cmd):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=1800)
    if p.returncode != 0:
        sys.exit(f'race-outcomes: {" ".join(cmd[:2])} ... failed (exit '
                 f'{p.returncode}):\n{p.stderr.decode()[-2000:]}')
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--arch', default='x86_64,aarch64')
    ap.add_argument('--smp', type=int, default=2)
    ap.add_argument('--runs', type=int, default=10)
    ap.add_argument('--replay', action='store_true')
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix='qrr-race-') as tmp:
        for arch in a.arch.split(','):
            got = {'plain': [], 'chaos': []}
            for i in range(a.runs):
                for mode in got:
                    log = Path(tmp) / f'{arch}-{mode}-{i}.rr'
                    extra = f'rrchaos={i + 1}' if mode == 'chaos' else ''
                    out = run(args(arch, a.smp, 'record', log, extra))
                    c = counter(out)
                    rep = run(args(arch, a.smp, 'replay', log)) \
                        if a.replay else None
                    if rep is not None and counter(rep) != c:
                        sys.exit(f'race-outcomes: {arch} {mode} run {i}: the '
                                 'replay counted otherwise')
                    log.unlink()
                    got[mode].append(c)
                    print(f'  {arch} -smp {a.smp} {mode} {i + 1}/{a.runs}: '
                          f'{c}', file=sys.stderr)
            for mode, cs in got.items():
                rows.append(f'| {arch} | {mode} | {len(set(cs))} of '
                            f'{len(cs)} | {", ".join(map(str, cs))} |')
    print(f'Racy workload, -smp {a.smp}, {RACE} increments per vCPU'
          f'{", each recording replayed" if a.replay else ""}:\n')
    print('| arch | recording | distinct outcomes | counters |')
    print('|---|---|---|---|')
    print('\n'.join(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
