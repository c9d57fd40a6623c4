#!/usr/bin/python3
# qrr benchmark: the default guest run with qrr's build and with upstream
# QEMU's replay (the same Debian base, built with its own replay kept), N
# runs of each configuration, interleaved, and one markdown table of the
# medians and ratios.
#
#   bench.py [--runs N] [--arch x86_64,aarch64] [--out FILE]
#
# Configurations: plain TCG, icount-only (shift=auto), record, replay; the
# log's size.  A replay whose serial output differs from its recording's is
# reported in the table (and makes the exit status 1): a fast wrong replay
# is no result.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get('QRR_BUILD', TOP / 'build'))
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


def run_one(flavour, arch, config, log):
    args = [str(qemu(flavour, arch))] + guest_args(arch)
    if config == 'icount':
        args += ['-icount', 'shift=auto']
    elif config in ('record', 'replay'):
        args += ['-icount', f'shift=auto,rr={config},rrfile={log}']
    t0 = time.monotonic()
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=1800)
    elapsed = time.monotonic() - t0
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


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--arch', default='x86_64,aarch64')
    ap.add_argument('--out', type=Path)
    a = ap.parse_args()
    for f in FLAVOURS:
        for arch in a.arch.split(','):
            if not qemu(f, arch).exists():
                sys.exit(f'bench: {qemu(f, arch)} is missing: run make bench')
    host = subprocess.run(['uname', '-srm'], capture_output=True,
                          text=True).stdout.strip()
    text = [f'qrr benchmark, {time.strftime("%Y-%m-%d")}, {host}, '
            f'{os.cpu_count()} CPUs; runs interleaved.', '']
    bad = False
    with tempfile.TemporaryDirectory(prefix='qrr-bench-') as tmp:
        for arch in a.arch.split(','):
            times, sizes, mismatch = measure(arch, a.runs, Path(tmp))
            text.append(table(arch, a.runs, times, sizes, mismatch))
            bad |= mismatch['qrr'] > 0
    out = '\n'.join(text)
    print(out)
    if a.out:
        a.out.write_text(out)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
