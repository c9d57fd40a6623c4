# qrr info and qrr dump
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""qrr info: a trace's manifest and its log's summary; qrr dump: run
replay-dump.py on a trace's log."""

import json
import os
import shlex
import subprocess
import sys

from qrr_tool import layout
from qrr_tool.common import QrrError, human
from qrr_tool.logstats import fingerprint_values, log_stats, print_stats
from qrr_tool.rewrite import LOG
from qrr_tool.trace import cleanup, open_trace


def info_rows(trace, stats):
    """(label, value) rows about the recording."""
    m = trace.manifest
    ram = m.get('ram')
    rows = [
        ('trace', trace.dir),
        ('recorded', f"{m.get('date')}, {m.get('record_wall_time')} s, "
         f"exit status {m.get('exit_status')}"),
        ('qrr', m.get('qrr_version')),
        ('qemu', m.get('qemu_version')),
        ('base', m.get('base')),
        ('arch', m.get('arch')),
        ('machine', f"{m.get('machine') or '(default)'} "
         f"({m.get('machine_type') or '?'})"),
        ('ram', human(ram) if ram else '?'),
        ('vcpus', fingerprint_values(stats).get('smp', '?')),
        ('instructions', m.get('icount')),
        ('events', m.get('events')),
        ('packed', 'yes' if m.get('packed') else 'no'),
    ]
    for d in m.get('disks', []):
        rows.append((f"disk {d['n']}",
                     f"{d.get('packed') or d['source']} "
                     f"({d['format']}, if={d['if']}, {d['media']})"))
    for n in m.get('netdevs', []):
        rows.append(('netdev', f"{n['netdev']} (filter {n['filter']})"))
    for o in trace.outputs:
        rows.append(('output', f"{o['option']} (kept as {o['record']})"))
    for f, size in m.get('files', {}).items():
        rows.append(('file', f'{f}: {size} bytes'))
    rows.append(('command', shlex.join(trace.cmdline)))
    return rows


def print_info(trace, stats):
    for k, v in info_rows(trace, stats):
        print(f'{k + ":":<14}{v}')
    print()
    if stats is None:
        print('no log')
    elif 'header' not in stats:
        print(f"log: {stats['problem']}")
    else:
        print('log:')
        print_stats(stats)


def cmd_info(opts):
    stack = []
    try:
        trace = open_trace(opts.trace, stack)
        stats = log_stats(trace.path(LOG))
        if opts.json:
            print(json.dumps({'trace': trace.dir, 'manifest': trace.manifest,
                              'cmdline': trace.cmdline, 'log': stats},
                             indent=2))
        else:
            print_info(trace, stats)
        return 0
    finally:
        cleanup(stack)


def cmd_dump(argv):
    if not argv or argv[0].startswith('-'):
        raise QrrError('usage: qrr dump DIR [replay-dump.py arguments]')
    stack = []
    try:
        trace = open_trace(argv[0], stack)
        log = trace.path(LOG)
        if not os.path.exists(log):
            raise QrrError(f'{log}: no log in the trace')
        return subprocess.call([sys.executable, str(layout.REPLAY_DUMP)] +
                               argv[1:] + [log])
    finally:
        cleanup(stack)
