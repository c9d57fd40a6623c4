#!/usr/bin/python3
# The README's main job: record the default guest with `scripts/qrr record`,
# replay it with `scripts/qrr replay`, compare, and print a summary.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import qrrcmd  # noqa: E402
import qrrtest as q  # noqa: E402

MACHINE = 'pc'


def main():
    arch = q.MACHINES[MACHINE][0]
    args = q.linux_args(MACHINE, 'qrr.prompt=1')
    with tempfile.TemporaryDirectory(prefix='qrr-demo-') as d:
        trace = Path(d) / 'trace'
        print(f'[qrr] recording the default guest ({arch} {MACHINE}, '
              'Debian kernel + busybox) with scripts/qrr record ...',
              flush=True)
        rec = qrrcmd.run(['record', '-o', trace, '--qemu-dir', q.QEMU_BUILD,
                          '--', f'qemu-system-{arch}'] + args,
                         typed='hello from the recording')
        if rec.rc != 0:
            print(rec.describe())
            return 1
        print('[qrr] replaying it with scripts/qrr replay (typing a '
              'different line) ...', flush=True)
        rep = qrrcmd.run(['replay', trace, '--qemu-dir', q.QEMU_BUILD,
                          '--no-progress'],
                         typed='this line must not appear')
        manifest = json.loads((trace / 'manifest.json').read_text())
        events, icount = manifest.get('events'), manifest.get('icount')
        size = (trace / 'replay.rr').stat().st_size
        matched = rep.rc == 0 and rec.out == rep.out
        print()
        print('| | |')
        print('|---|---|')
        print(f'| instructions | {icount} |')
        print(f'| events | {events} |')
        print(f'| log size | {size} bytes |')
        print(f'| record time | {rec.elapsed:.1f} s |')
        print(f'| replay time | {rep.elapsed:.1f} s |')
        print(f'| serial output | {len(rec.out)} bytes |')
        print(f'| replay matched | {"yes" if matched else "NO"} |')
        if not matched:
            print(rep.describe())
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
