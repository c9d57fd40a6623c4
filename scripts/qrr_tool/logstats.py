# qrr: a replay log's summary (replay-dump.py --stats, qrr info)
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""The summary of a replay log: events and bytes per kind, sizes, the vCPU
schedule, guest time; as a dict (--stats --json) or as text."""

import collections
import os

from qrr_tool.logreader import (CLOCK_VIRTUAL_RT, KIND_CLOCK, KIND_SCHED,
                                KINDS, LogError, LogReader)


class Stats:
    def __init__(self):
        self.kinds = collections.OrderedDict(
            (name, [0, 0]) for name, _, _ in KINDS)
        self.vrt_min = None
        self.vrt_max = None
        # the vCPU schedule: instructions per vCPU, switches to each
        self.vcpu = 0
        self.vcpu_since = 0
        self.vcpu_insns = collections.Counter()
        self.vcpu_turns = collections.Counter({0: 1})

    def add(self, event):
        if event.kind == KIND_SCHED:
            self.vcpu_insns[self.vcpu] += event.icount - self.vcpu_since
            self.vcpu, self.vcpu_since = event.args[0], event.icount
            self.vcpu_turns[self.vcpu] += 1
        entry = self.kinds[event.name]
        entry[0] += 1
        entry[1] += event.size
        if event.kind == KIND_CLOCK and event.args[0] == CLOCK_VIRTUAL_RT:
            value = event.args[1]
            if self.vrt_min is None:
                self.vrt_min = self.vrt_max = value
            self.vrt_min = min(self.vrt_min, value)
            self.vrt_max = max(self.vrt_max, value)

    def vcpus(self, last_icount):
        insns = collections.Counter(self.vcpu_insns)
        insns[self.vcpu] += max(0, (last_icount or 0) - self.vcpu_since)
        return {str(v): {'instructions': insns[v],
                         'turns': self.vcpu_turns[v]}
                for v in sorted(set(insns) | set(self.vcpu_turns))}

    def guest_ns(self):
        if self.vrt_min is None or self.vrt_max == self.vrt_min:
            return None
        return self.vrt_max - self.vrt_min


def stats_dict(reader, stats, problem):
    events = sum(n for n, _ in stats.kinds.values())
    guest_ns = stats.guest_ns()
    stored = reader.stored_bytes
    if not problem:
        status = 'complete'
    elif problem.status == LogError.TRUNCATED:
        status = 'truncated'
    else:
        status = 'corrupt'
    return {
        'file': reader.path,
        'file_size': reader.size,
        'header': {'version': reader.header.version,
                   'size': reader.header.size,
                   'fingerprint': reader.header.fingerprint},
        'status': status,
        'problem': str(problem) if problem else None,
        'chunks': len(reader.chunks),
        'events': events,
        'last_icount': reader.last_icount(),
        'raw_bytes': reader.raw_bytes,
        'stored_bytes': stored,
        'compression_ratio': reader.raw_bytes / stored if stored else None,
        'guest_ns': guest_ns,
        'events_per_guest_second':
            events * 1e9 / guest_ns if guest_ns else None,
        'kinds': {name: {'events': n, 'bytes': b}
                  for name, (n, b) in stats.kinds.items() if n},
        'vcpus': stats.vcpus(reader.last_icount()),
    }


def print_stats(s):
    ratio = s['compression_ratio']
    rate = s['events_per_guest_second']
    guest = s['guest_ns']
    rows = (
        ('file', s['file']),
        ('file size', f"{s['file_size']} bytes"),
        ('format version', s['header']['version']),
        ('status', s['status']),
        ('chunks', s['chunks']),
        ('events', s['events']),
        ('instructions', f"{s['last_icount']} (last icount)"),
        ('raw bytes', f"{s['raw_bytes']} (payloads decoded)"),
        ('stored bytes', f"{s['stored_bytes']} (payloads in the file)"),
        ('compression', f'{ratio:.2f}x' if ratio else 'n/a'),
        ('guest time', f'{guest / 1e9:.6f} s (virtual-rt clock span)'
         if guest else 'n/a (no virtual-rt clock span)'),
        ('events/s', f'{rate:.1f} per guest second' if rate else 'n/a'),
    )
    for label, value in rows:
        print(f'{label + ":":<16}{value}')
    print()
    print(f"{'kind':<16}{'events':>12}{'bytes':>14}")
    for name, entry in s['kinds'].items():
        print(f"{name:<16}{entry['events']:>12}{entry['bytes']:>14}")
    total = sum(e['bytes'] for e in s['kinds'].values())
    print(f"{'total':<16}{s['events']:>12}{total:>14}")
    if len(s['vcpus']) > 1:
        print()
        print(f"{'vcpu':<16}{'instructions':>16}{'turns':>10}")
        for v, e in s['vcpus'].items():
            print(f"{v:<16}{e['instructions']:>16}{e['turns']:>10}")
    print()
    print('fingerprint:')
    for line in s['header']['fingerprint'].splitlines():
        print('    ' + line)


def read_stats(reader):
    """Read the whole log of @reader: (Stats, LogError or None)."""
    reader.read_header()
    stats = Stats()
    problem = None
    try:
        for event in reader.events_iter():
            stats.add(event)
    except LogError as e:
        problem = e
    return stats, problem


def log_stats(log):
    """replay-dump.py --stats --json as a dict; None without a log."""
    if not os.path.exists(log):
        return None
    try:
        reader = LogReader(str(log))
    except LogError as e:
        return {'status': 'corrupt', 'problem': str(e)}
    try:
        try:
            stats, problem = read_stats(reader)
        except LogError as e:
            return {'status': 'corrupt', 'problem': str(e)}
        return stats_dict(reader, stats, problem)
    finally:
        reader.close()


def fingerprint_values(stats):
    """The recording's fingerprint lines (but devices) as a dict."""
    out = {}
    fp = (stats or {}).get('header', {}).get('fingerprint', '')
    for line in fp.splitlines():
        k, _, v = line.partition('=')
        if k != 'device':
            out[k] = v
    return out
