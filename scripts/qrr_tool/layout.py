# qrr: where the tool runs from
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""The two places qrr runs from, and what follows for finding QEMU:

    source tree   scripts/qrr, scripts/qrr_tool/, scripts/replay-dump.py;
                  QEMU in build/qrr/qemu/ (what tooling/build-qemu.sh
                  builds), the commit from git
    install       PREFIX/bin/qrr, PREFIX/share/qrr/qrr_tool/ and
                  replay-dump.py (make install PREFIX=...); QEMU in
                  PREFIX/bin, the commit in PREFIX/share/qrr/commit
"""

import subprocess
from pathlib import Path

PKG = Path(__file__).resolve().parent
HOME = PKG.parent                   # scripts/ or PREFIX/share/qrr
REPLAY_DUMP = HOME / 'replay-dump.py'
INSTALLED = HOME.name == 'qrr' and HOME.parent.name == 'share'
TOP = HOME.parent.parent if INSTALLED else HOME.parent
COMMIT_FILE = HOME / 'commit'


def default_qemu_dir():
    """Where this qrr's own QEMU binaries are."""
    return str(TOP / 'bin') if INSTALLED else str(TOP / 'build' / 'qrr' /
                                                   'qemu')


def git_commit():
    try:
        r = subprocess.run(['git', '-C', str(TOP), 'rev-parse', 'HEAD'],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def qrr_commit():
    """The qrr tree's git commit: of the checkout, or the installed one."""
    if not INSTALLED:
        return git_commit()
    try:
        return COMMIT_FILE.read_text().strip() or None
    except OSError:
        return None
