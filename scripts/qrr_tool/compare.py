# qrr: a replay's outputs against the recording's
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""What `qrr replay` compares: QEMU's standard output, and each output
file the command line names (-serial file:, -chardev file, -D ...), the
recording's copy in outputs/record/ against the replay's in
outputs/replay/.  Each comparison is named on stderr with its outcome."""

import os

from qrr_tool.common import warn


def read_or_none(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError:
        return None


def first_difference(a, b):
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def compare_files(rec, rep):
    """(same, detail): same is None when there is nothing to compare."""
    a = read_or_none(rec)
    if a is None:
        return None, f'no recorded copy {os.path.basename(rec)}'
    b = read_or_none(rep)
    if b is None:
        return False, f'the replay wrote no {rep}'
    if a == b:
        return True, f'same as the recording ({len(a)} bytes)'
    return False, (f'DIFFERS from the recording (recorded {len(a)} bytes, '
                   f'replayed {len(b)}; first difference at byte '
                   f'{first_difference(a, b)})')


def comparisons(trace, record_out, replay_out):
    """[(what, same, detail)] for the standard output and each output."""
    same, detail = compare_files(record_out, replay_out)
    if same is None:
        detail = 'not compared (no recorded standard output)'
    out = [('standard output', same, detail)]
    for o in trace.outputs:
        same, detail = compare_files(trace.path(o['record']),
                                     trace.path(o['replay']))
        out.append((f"{o['option']} (kept as {o['record']})", same, detail))
    return out


def verdict(results):
    """True if all compared match, False if one differs, None: nothing."""
    seen = [same for _, same, _ in results if same is not None]
    if False in seen:
        return False
    return True if seen else None


def report(results):
    """Name each comparison on stderr; the verdict."""
    for what, _, detail in results:
        warn(f'{what}: {detail}')
    return verdict(results)


VERDICT_TEXT = {True: 'the output matches the recording',
                False: 'the output DIFFERS from the recording',
                None: 'no recorded output to compare'}
