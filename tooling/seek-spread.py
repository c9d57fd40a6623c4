#!/usr/bin/python3
# How long far seeks take: records the bench guest of tooling/bench.py
# (section timetravel) once with qrr, then, for each rrbudget given,
# replays it, seeks to 99 % and then to N random positions (seeded, so
# every budget and every run sees the same targets), each far from the
# one before on average, and prints each seek's time, the instructions
# replayed (from the snapshot before the target) and a summary.  A
# diagnostic for qrr's snapshot placement, not a comparison: upstream
# takes some 30 s per seek here (see docs/system/replay-bench.md).
# --guest linux records the Linux guest of the bench's linuxtt section
# instead (disk, network, qrr.load=60): the same seeks, after a first
# one to 99 % that crosses the whole recording (the bench's own seeks
# come after a gdb session); a budget of "default" passes none (2x RAM).
#
#   seek-spread.py [--arch x86_64|aarch64] [--guest bench|linux]
#                  [--budgets 128M,256M,default] [--seeks N] [--keep DIR]
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def seek(q, target):
    """Seek @q to @target; seconds, CPU seconds."""
    q.qmp.events.clear()
    t0, c0 = time.monotonic(), q.cpu_seconds()
    q.qmp.ok('replay-seek', icount=target)
    q.qmp.wait_event('STOP')
    secs, cpu = time.monotonic() - t0, q.cpu_seconds() - c0
    got = q.qmp.ok('query-replay')['icount']
    if got != target:
        sys.exit(f'seek-spread: seek to {target} landed at {got}')
    return secs, cpu


def spread(arch, d, end, budget, n, guest=None):
    q = bench.TTQemu('qrr', arch, 'replay', d, f'replay-{budget}', 600,
                     '' if budget == 'default' else f',rrbudget={budget}',
                     guest=guest)
    try:
        secs, _ = seek(q, end * 99 // 100)
        print(f'rrbudget={budget}: seek to 99 % {secs:.1f} s', flush=True)
        rnd = random.Random(1)
        times = []
        for _ in range(n):
            t = rnd.randrange(end * 2 // 100, end * 97 // 100)
            snaps = q.qmp.ok('query-replay-snapshots')['snapshots']
            prev = max(s['icount'] for s in snaps if s['icount'] <= t)
            here = q.qmp.ok('query-replay')['icount']
            secs, cpu = seek(q, t)
            times.append(secs)
            print(f'  {secs:6.3f} s (CPU {cpu:5.2f} s) {here / 1e9:6.2f} G'
                  f' -> {t / 1e9:6.2f} G: {(t - prev) / 1e6:4.0f} M from'
                  f' the snapshot before', flush=True)
        s = q.qmp.ok('query-replay-snapshots')
        print(f'rrbudget={budget}: {len(s["snapshots"])} snapshots, '
              f'{s["used"] / 2**20:.1f} MiB; {n} seeks: median '
              f'{statistics.median(times):.3f} s, max {max(times):.3f} s, '
              f'mean {statistics.mean(times):.3f} s', flush=True)
    finally:
        q.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--arch', default='x86_64', choices=sorted(bench.GUEST))
    ap.add_argument('--guest', default='bench', choices=('bench', 'linux'))
    ap.add_argument('--budgets', default='128M')
    ap.add_argument('--seeks', type=int, default=24)
    ap.add_argument('--keep', type=Path,
                    help='directory for the recording (kept, and reused '
                    'if it holds one)')
    args = ap.parse_args()
    d = args.keep or Path(tempfile.mkdtemp(prefix='qrr-seek-spread-'))
    d.mkdir(parents=True, exist_ok=True)
    guest = server = None
    if args.guest == 'linux':
        (d / 'www').mkdir(exist_ok=True)
        server = bench.LTServer(d / 'www')
        # the replay's command line must be the recording's: same URL
        url = d / 'url'
        if not url.exists():
            url.write_text(server.url)
        guest = bench.lt_args('qrr', args.arch, d, url.read_text().strip())
    try:
        if (d / 'end').exists():
            end = int((d / 'end').read_text())
        else:
            if guest:
                bench.qcow2_create('qrr', d / 'disk.qcow2', '16M')
            secs, end = bench.tt_record('qrr', args.arch, d, 600, guest)
            (d / 'end').write_text(f'{end}\n')
            print(f'recorded {end / 1e9:.1f} G instructions in {secs:.1f} s',
                  flush=True)
        for budget in args.budgets.split(','):
            spread(args.arch, d, end, budget, args.seeks, guest)
    finally:
        if server:
            server.httpd.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
