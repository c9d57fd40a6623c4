#!/usr/bin/python3
# What the log writer's sync schedule (-icount rrfsync=) costs in record
# time: records the Linux test guest's boot with rrfsync=off, the default
# (1000 ms) and every (after every chunk), interleaved, RUNS times each,
# and prints the median wall time of each with its ratio to "off", and
# the log's size.  qrr only: upstream's replay has no sync schedule.
#
#   fsync-cost.py [--arch x86_64|aarch64] [--runs N]
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests' /
                       'functional' / 'qrr'))
import qrrtest as q  # noqa: E402

SCHEDULES = ('off', '1000', 'every')
MACHINE = {'x86_64': 'pc', 'aarch64': 'virt-a57'}


def record(arch, log, schedule):
    """One recording: its wall time in seconds."""
    r = q.run(arch, q.linux_args(MACHINE[arch]) +
              q.icount_opt('record', log, f'rrfsync={schedule}'))
    if r.rc != 0:
        sys.exit('fsync-cost: the recording failed: ' + r.describe())
    return r.elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--arch', default='aarch64', choices=MACHINE)
    ap.add_argument('--runs', type=int, default=5)
    args = ap.parse_args()
    times = {s: [] for s in SCHEDULES}
    size = {}
    with tempfile.TemporaryDirectory(prefix='qrr-fsync-') as d:
        for _ in range(args.runs):
            for s in SCHEDULES:
                log = Path(d) / f'{s}.rr'
                times[s].append(record(args.arch, log, s))
                size[s] = log.stat().st_size
    base = statistics.median(times['off'])
    print(f'| rrfsync= | record wall time, median of {args.runs} (s) | '
          'vs off | log bytes |')
    print('|---|---|---|---|')
    for s in SCHEDULES:
        m = statistics.median(times[s])
        print(f'| {s} | {m:.2f} | {m / base:.3f}x | {size[s]} |')


if __name__ == '__main__':
    main()
