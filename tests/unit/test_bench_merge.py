# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later
"""tooling/bench.py's merge(): a run rewrites its own sections of
docs/system/replay-bench.md and keeps the others, its own and other
tools' (tooling/fsync-cost.py writes one)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'tooling'))
import bench  # noqa: E402

OLD = '''# Title

## Record and replay: Linux boot

boot tables

## Reverse debugging on Linux

old linux tables

## Sync schedule of the log writer (qrr only)

fsync tables
'''


def test_rewrites_its_section_and_keeps_the_others():
    new = bench.merge(OLD, '# Title\n',
                      {'linuxtt': '## Reverse debugging on Linux\n\nnew\n'})
    assert 'new' in new and 'old linux tables' not in new
    assert 'boot tables' in new
    assert '## Sync schedule of the log writer (qrr only)\n\nfsync tables' \
        in new
    assert new.index('Reverse debugging on Linux') < \
        new.index('Sync schedule')


def test_no_old_file():
    new = bench.merge(None, '# Title\n', {'boot': '## Record and replay: '
                                          'Linux boot\n\nb\n'})
    assert new == '# Title\n\n## Record and replay: Linux boot\n\nb\n'
