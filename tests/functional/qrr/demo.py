#!/usr/bin/python3
# The README's main job: record the default guest, replay it, compare, and
# print a summary.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import qrrtest as q  # noqa: E402

MACHINE = 'pc'


def log_stats(log):
    dump = q.TOP / 'scripts' / 'replay-dump.py'
    out = subprocess.run([sys.executable, str(dump), '--verify', str(log)],
                         capture_output=True, text=True)
    m = re.search(r'(\d+) chunks, (\d+) events, last icount (\d+)',
                  out.stdout)
    return (int(m.group(2)), int(m.group(3))) if m else (None, None)


def main():
    arch = q.MACHINES[MACHINE][0]
    args = q.linux_args(MACHINE, 'qrr.prompt=1')
    with tempfile.TemporaryDirectory(prefix='qrr-demo-') as d:
        log = Path(d) / 'boot.rr'
        print(f'[qrr] recording the default guest ({arch} {MACHINE}, '
              'Debian kernel + busybox) ...', flush=True)
        rec = q.run(arch, args + q.icount_opt('record', log),
                    typed='hello from the recording')
        if rec.rc != 0:
            print(rec.describe())
            return 1
        print('[qrr] replaying it (typing a different line) ...', flush=True)
        rep = q.run(arch, args + q.icount_opt('replay', log),
                    typed='this line must not appear')
        events, icount = log_stats(log)
        size = log.stat().st_size
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
