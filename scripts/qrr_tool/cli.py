# qrr: the command line
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""qrr's arguments, and main(): which subcommand runs, how errors end."""

import argparse
import os
import sys

from qrr_tool import QRR_VERSION
from qrr_tool.common import QrrError
from qrr_tool.debug import cmd_debug
from qrr_tool.info import cmd_dump, cmd_info
from qrr_tool.pack import cmd_pack
from qrr_tool.record import cmd_record
from qrr_tool.replay import cmd_replay
from qrr_tool.report import cmd_report

COMMANDS = {'replay': cmd_replay, 'debug': cmd_debug, 'info': cmd_info,
            'pack': cmd_pack, 'report': cmd_report}


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f'qrr: error: {message}\n')


def add_record(sub):
    r = sub.add_parser('record', help='record a run: qrr record [-o DIR] -- '
                       'qemu-system-ARCH ARGS...')
    r.add_argument('-o', '--output', metavar='DIR',
                   help='trace directory (default ./qrr-trace-N)')
    r.add_argument('--qemu-dir', metavar='D',
                   help='where to look for qemu-system-ARCH and qemu-img')
    r.add_argument('--serial-out', metavar='FILE',
                   help='also write QEMU\'s standard output to FILE')


def add_replayer(sub, name, helptext):
    """A subcommand replaying a trace: its parser."""
    s = sub.add_parser(name, help=helptext)
    s.add_argument('trace', metavar='DIR',
                   help='trace directory or qrr pack archive')
    s.add_argument('--qemu-dir', metavar='D',
                   help='where to look for qemu-system-ARCH')
    return s


def add_replay(sub):
    s = add_replayer(sub, 'replay', 'replay a trace')
    s.add_argument('--serial-out', metavar='FILE',
                   help="also write QEMU's standard output to FILE")
    s.add_argument('--progress', action='store_true', default=None,
                   help='show the progress on stderr (default when '
                   'stderr is a terminal)')
    s.add_argument('--no-progress', dest='progress', action='store_false')
    s.add_argument('--verify', action='store_true',
                   help='decode the whole log before the replay starts '
                   '(-icount rrverify=on): a log that does not decode is '
                   'refused at once')


def add_debug(sub):
    s = add_replayer(sub, 'debug', 'replay a trace under gdb')
    s.add_argument('--vmlinux', metavar='FILE',
                   help='the guest kernel with symbols, for gdb')
    s.add_argument('--gdb', default='gdb-multiarch',
                   help='the debugger (default gdb-multiarch)')
    s.add_argument('--port', type=int, help='gdb port (default: a '
                   'free one)')
    s.add_argument('--at', type=int, metavar='ICOUNT',
                   help='run to instruction count ICOUNT before '
                   'handing over to gdb (monitor replay_break)')


def add_others(sub):
    s = sub.add_parser('info', help='show a trace: manifest and log')
    s.add_argument('trace', metavar='DIR')
    s.add_argument('--json', action='store_true')
    sub.add_parser('dump', help='run replay-dump.py on the log: qrr dump '
                   'DIR [ARGS]', add_help=False)
    s = sub.add_parser('pack', help='make a self-contained .tar.gz')
    s.add_argument('trace', metavar='DIR')
    s.add_argument('-o', '--output', metavar='FILE.tar.gz')
    s.add_argument('--qemu-dir', metavar='D')
    s = sub.add_parser('report', help='write an HTML timeline')
    s.add_argument('trace', metavar='DIR')
    s.add_argument('-o', '--output', metavar='FILE.html',
                   help='default DIR/report.html (NAME.html for an '
                   'archive NAME.tar.gz)')


def parse(argv):
    p = Parser(prog='qrr', description='Record and replay QEMU runs '
               '(qrr).  See "The qrr command" in docs/system/replay.rst.')
    p.add_argument('--version', action='version',
                   version=f'qrr {QRR_VERSION}')
    sub = p.add_subparsers(dest='cmd', metavar='COMMAND',
                           parser_class=Parser)
    sub.required = True
    add_record(sub)
    add_replay(sub)
    add_debug(sub)
    add_others(sub)
    return p.parse_args(argv)


def split_record(argv):
    """qrr's own arguments and the QEMU command line of `qrr record`."""
    if '--' in argv:
        i = argv.index('--')
        return argv[:i], argv[i + 1:]
    # no '--': the QEMU command starts at the first qemu-system-*
    for i in range(1, len(argv)):
        if 'qemu-system-' in os.path.basename(argv[i]):
            return argv[:i], argv[i:]
    return argv, []


def run(argv):
    if argv and argv[0] == 'dump':
        return cmd_dump(argv[1:])
    qemu_argv = []
    if argv and argv[0] == 'record':
        argv, qemu_argv = split_record(argv)
    opts = parse(argv)
    if opts.cmd == 'record':
        return cmd_record(opts, qemu_argv)
    return COMMANDS[opts.cmd](opts)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except QrrError as e:
        print(f'qrr: error: {e}', file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except OSError as e:
        where = f'{e.filename}: ' if e.filename else ''
        print(f'qrr: error: {where}{e.strerror or e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
