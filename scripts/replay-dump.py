#!/usr/bin/env python3
#
# qrr: dump, summarise and check a replay log
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""Dump, summarise and check a qrr replay log (-icount rr=record,rrfile=F).

The file format (header, chunks, checksums, validity rules) is specified in
the header comment of replay/replay-log.c; the encoding of the events inside
a chunk payload in the header comment of replay/replay-event.c.  The reader
is qrr_tool/logreader.py next to this script, shared with scripts/qrr.

Exit status: 0 for a complete log, 1 for a corrupt log or any other error,
2 for a truncated log (what a killed recording leaves: its valid prefix can
still be replayed; everything in that prefix is shown).
"""

import argparse
import collections
import json
import os
import sys

# the reader lives in the qrr_tool package next to this script
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from qrr_tool.logreader import ENUM_ARGS, LogError, LogReader  # noqa: E402
from qrr_tool.logstats import (print_stats, read_stats,  # noqa: E402
                               stats_dict)

LIST_DATA_BYTES = 16

# ---- output ----

def enum_name(kind_name, arg_name, value):
    names = ENUM_ARGS.get((kind_name, arg_name))
    if names is not None and 0 <= value < len(names):
        return names[value]
    return None


def format_arg(event, arg_name, value):
    label = enum_name(event.name, arg_name, value)
    if event.name == 'checkpoint' and label:
        return label
    if event.name == 'shutdown' and label:
        return f'cause={value} ({label})'
    if event.name == 'input' and arg_name == 'console':
        return f'console={value - 1}' if value else 'console=none'
    return f'{arg_name}={label or value}'


def format_event(event):
    parts = [format_arg(event, n, v) for n, v in event.named_args().items()]
    if event.data is not None:
        shown = event.data[:LIST_DATA_BYTES].hex()
        more = '...' if len(event.data) > LIST_DATA_BYTES else ''
        parts.append(f'len={len(event.data)}')
        if event.data:
            parts.append(f'data={shown}{more}')
    line = f'{event.icount:>12}  {event.name:<13}  {" ".join(parts)}'
    return line.rstrip()


def event_json(event):
    """An event as a JSON object; args hold the values as stored."""
    obj = {'chunk': event.chunk, 'icount': event.icount,
           'kind': event.name, 'args': event.named_args()}
    names = {}
    for arg_name, value in obj['args'].items():
        label = enum_name(event.name, arg_name, value)
        if label:
            names[arg_name] = label
    if names:
        obj['names'] = names
    if event.data is not None:
        obj['len'] = len(event.data)
        obj['data'] = event.data.hex()
    return obj


def print_event(event, as_json, mark=None):
    """Print @event; @mark, when given, is a one-character margin."""
    if as_json:
        print(json.dumps(event_json(event)))
    elif mark is None:
        print(format_event(event))
    else:
        print(f'{mark} {format_event(event)}')


# ---- modes ----

def cmd_list(reader, args):
    for event in reader.events_iter():
        print_event(event, args.json)


def cmd_at(reader, args):
    """The --context events before @args.at and as many from it on."""
    before = collections.deque(maxlen=args.context)
    after = []
    try:
        for event in reader.events_iter():
            if event.icount < args.at:
                before.append(event)
            else:
                after.append(event)
                if len(after) > args.context:
                    break
    finally:
        print_context(before, after, args)


def print_context(before, after, args):
    """Print the events of --at; '>' marks where ICOUNT falls."""
    for event in before:
        print_event(event, args.json, ' ')
    if not after and not args.json:
        print(f'> {args.at:>12}  (no event at or after this icount)')
    for i, event in enumerate(after):
        mark = '>' if i == 0 or event.icount == args.at else ' '
        print_event(event, args.json, mark)


def cmd_stats(reader, args):
    stats, problem = read_stats(reader)
    s = stats_dict(reader, stats, problem)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print_stats(s)
    if problem:
        raise problem


def cmd_verify(reader, args):
    try:
        for _ in reader.events_iter():
            pass
    except LogError as e:
        if e.status == LogError.TRUNCATED:
            raise LogError(f'{e}; truncated log: its valid prefix of '
                           f'{len(reader.chunks)} chunks, {reader.events} '
                           f'events, up to icount {reader.last_icount()} '
                           'can be replayed', e.status) from None
        raise
    print(f'OK: {len(reader.chunks)} chunks, {reader.events} events, '
          f'last icount {reader.last_icount()}')


def cmd_fingerprint(reader, args):
    fingerprint = reader.read_header().fingerprint
    if args.json:
        print(json.dumps({'fingerprint': fingerprint}))
    else:
        sys.stdout.write(fingerprint)


class ArgumentParser(argparse.ArgumentParser):
    """Usage errors exit with 1: 2 means a truncated log here."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(1, f'{self.prog}: error: {message}\n')


def parse_args(argv):
    p = ArgumentParser(
        description='Dump, summarise or check a qrr replay log.',
        epilog='Exit status: 0 complete log, 1 corrupt log or error, '
               '2 truncated log (its valid prefix is shown).')
    p.add_argument('log', help='the replay log (rrfile=)')
    mode = p.add_mutually_exclusive_group()
    mode.add_argument('--stats', action='store_true',
                      help='summary: events and bytes per kind, sizes, '
                      'compression, guest time')
    mode.add_argument('--verify', action='store_true',
                      help='check the whole log against the format rules')
    mode.add_argument('--at', type=int, metavar='ICOUNT',
                      help='show the events around instruction count ICOUNT')
    mode.add_argument('--fingerprint', action='store_true',
                      help='print the fingerprint of the recording')
    p.add_argument('--context', type=int, default=10, metavar='N',
                   help='with --at: events shown before and after '
                   '(default 10)')
    p.add_argument('--json', action='store_true',
                   help='JSON output: one event per line, or one object '
                   'with --stats')
    args = p.parse_args(argv)
    if args.context < 0:
        p.error('--context must not be negative')
    return args


def run(args):
    if args.stats:
        command = cmd_stats
    elif args.verify:
        command = cmd_verify
    elif args.at is not None:
        command = cmd_at
    elif args.fingerprint:
        command = cmd_fingerprint
    else:
        command = cmd_list
    reader = LogReader(args.log)
    try:
        command(reader, args)
    finally:
        reader.close()


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
        sys.stdout.flush()
    except LogError as e:
        sys.stdout.flush()
        print(e, file=sys.stderr)
        return e.status
    except BrokenPipeError:
        raise
    except OSError as e:
        print(f'{args.log}: {e.strerror or e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except BrokenPipeError:
        # The reader went away (| head): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
