#!/usr/bin/env python3
# Make tree DST the same as tree SRC, touching only what differs.
#
#   sync-tree.py SRC DST
#
# Files whose content is the same in both keep their mtime in DST, so a
# build that uses DST recompiles only what the change reached (ninja goes
# by mtimes).  Files only in DST are deleted, except those named in
# --keep (relative paths).  Prints how many files it copied and deleted.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import filecmp
import os
import shutil
import sys


def files(top):
    out = set()
    for d, _, names in os.walk(top):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), top))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('src')
    ap.add_argument('dst')
    ap.add_argument('--keep', action='append', default=[])
    a = ap.parse_args()
    new, old = files(a.src), files(a.dst)
    copied = deleted = 0
    for f in sorted(new):
        s, d = os.path.join(a.src, f), os.path.join(a.dst, f)
        if f not in old or os.path.islink(s) or os.path.islink(d) or \
                not filecmp.cmp(s, d, shallow=False):
            os.makedirs(os.path.dirname(d), exist_ok=True)
            if os.path.lexists(d):
                os.unlink(d)
            if os.path.islink(s):
                os.symlink(os.readlink(s), d)
            else:
                shutil.copy(s, d)      # mtime now: ninja sees the change
            copied += 1
    for f in sorted(old - new):
        if f not in a.keep:
            os.unlink(os.path.join(a.dst, f))
            deleted += 1
    print(f'sync-tree: {copied} files copied, {deleted} deleted, '
          f'{len(new) - copied} unchanged', file=sys.stderr)


if __name__ == '__main__':
    main()
