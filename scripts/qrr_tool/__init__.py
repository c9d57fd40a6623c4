# qrr: record, replay, debug, inspect and pack QEMU runs in one command
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""The qrr tool as a package; scripts/qrr is its launcher.

    common      QrrError, warn(), human()
    layout      where qrr runs from (source tree or install) and its QEMU
    options     QEMU option strings: split, join, the argv's items
    plan        what a rewrite yields: Plan, Disk, Output
    rewrite     the command line rewriter (pure), with machines, disks,
                netdevs and outputs for each kind of option
    trace       the trace directory and pack archives
    qemu        finding and asking QEMU and qemu-img
    runner      running QEMU with its output tee'd to files
    qmp         a QMP client and the replay's progress display
    compare     a replay's outputs against the recording's
    logreader   the replay log reader (shared with replay-dump.py)
    logstats    a log's summary
    record, replay, debug, info, pack, report   the subcommands
    cli         the command line
"""

QRR_VERSION = '1.0'
BASE = 'Debian qemu 1:10.0.13+ds-0+deb13u1'
