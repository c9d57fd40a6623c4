# qrr pack
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""qrr pack: a self-contained .tar.gz of a trace.  The disk images are
flattened into images/, the kernel, initrd, dtb and bios into files/ (the
command line then names them there), the outputs the recording kept go
along; the scratch overlays and the replay's outputs stay behind."""

import datetime
import os
import shutil
import tarfile
import tempfile

from qrr_tool.common import human, warn
from qrr_tool.options import NOARG
from qrr_tool.plan import OUTPUT_DIRS
from qrr_tool.qemu import find_qemu_img, find_trace_qemu, run_qemu_img
from qrr_tool.rewrite import FILE_OPTS
from qrr_tool.trace import (CMDLINE, MANIFEST, Trace, file_sizes,
                            write_json)

SUBDIRS = ('images', 'files', OUTPUT_DIRS['record'])


def stage_files(trace, stage):
    """The trace's own files, but overlays and what pack rewrites."""
    skip = {d['overlay'] for d in trace.disks} | \
        {d['base'] for d in trace.disks} | {CMDLINE, MANIFEST}
    for f in os.listdir(trace.dir):
        p = trace.path(f)
        if f not in skip and os.path.isfile(p) and not f.endswith('.tmp'):
            shutil.copy2(p, os.path.join(stage, f))
    for sub in SUBDIRS:
        if os.path.isdir(trace.path(sub)):
            shutil.rmtree(os.path.join(stage, sub), ignore_errors=True)
            shutil.copytree(trace.path(sub), os.path.join(stage, sub))


def stage_disks(trace, stage, qemu_dir):
    """Each disk flattened into images/, with a new pristine overlay."""
    disks = []
    if trace.disks:
        qemu = find_trace_qemu(trace, qemu_dir)
        qemu_img = find_qemu_img(qemu, qemu_dir)
    for d in trace.disks:
        d = dict(d)
        img = f"images/disk-{d['n']}.qcow2"
        if not d.get('packed'):
            # flatten the user's image (and its backing chain) as seen
            # through the pristine overlay
            run_qemu_img(qemu_img, 'convert', '-O', 'qcow2',
                         trace.path(d['base']), os.path.join(stage, img))
        run_qemu_img(qemu_img, 'create', '-q', '-f', 'qcow2', '-F',
                     'qcow2', '-b', img, d['base'], cwd=stage)
        d['packed'] = img
        disks.append(d)
    return disks


def free_name(base, used):
    dest = base
    k = 1
    while dest in used:
        dest = f'{k}-{base}'
        k += 1
    used.add(dest)
    return dest


def stage_inputs(cmdline, stage):
    """Copy the input files into files/; the command line naming them."""
    cmdline = list(cmdline)
    used = set(os.listdir(os.path.join(stage, 'files')))
    i = 1
    while i < len(cmdline) - 1:
        opt = cmdline[i].lstrip('-')
        val = cmdline[i + 1]
        if opt in FILE_OPTS and os.path.isabs(val) and os.path.isfile(val):
            dest = free_name(os.path.basename(val), used)
            shutil.copy2(val, os.path.join(stage, 'files', dest))
            cmdline[i + 1] = f'files/{dest}'
        i += 1 if opt in NOARG else 2
    return cmdline


def cmd_pack(opts):
    trace = Trace(opts.trace)
    trace.check_log()
    m = dict(trace.manifest)
    out = os.path.abspath(opts.output or trace.dir.rstrip('/') + '.tar.gz')
    name = os.path.basename(trace.dir.rstrip('/'))
    stage_root = tempfile.mkdtemp(prefix='qrr-pack-')
    try:
        stage = os.path.join(stage_root, name)
        os.makedirs(os.path.join(stage, 'images'))
        os.makedirs(os.path.join(stage, 'files'))
        stage_files(trace, stage)
        m['disks'] = stage_disks(trace, stage, opts.qemu_dir)
        m['packed'] = True
        m['pack_date'] = datetime.datetime.now(datetime.timezone.utc) \
            .isoformat(timespec='seconds')
        write_json(os.path.join(stage, CMDLINE),
                   stage_inputs(trace.cmdline, stage))
        m['files'] = file_sizes(stage)
        write_json(os.path.join(stage, MANIFEST), m)
        with tarfile.open(out + '.tmp', 'w:gz') as tf:
            tf.add(stage, arcname=name)
        os.replace(out + '.tmp', out)
    finally:
        shutil.rmtree(stage_root, ignore_errors=True)
    warn(f'packed {trace.dir} into {out} ({human(os.path.getsize(out))})')
    return 0
