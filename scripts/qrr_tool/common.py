# qrr: what every module of the tool uses
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""The error qrr reports in one line, its messages, sizes for people."""

import sys


class QrrError(Exception):
    """A problem qrr reports in one line and exits 2 for."""


def warn(msg):
    print(f'qrr: {msg}', file=sys.stderr, flush=True)


def human(n):
    for unit in ('bytes', 'KiB', 'MiB', 'GiB', 'TiB'):
        if n < 1024 or unit == 'TiB':
            return f'{n} {unit}' if unit == 'bytes' else f'{n:.1f} {unit}'
        n /= 1024
