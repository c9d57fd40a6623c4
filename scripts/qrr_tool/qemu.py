# qrr: finding and asking QEMU
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""Find qemu-system-ARCH and qemu-img (--qemu-dir, $QRR_QEMU_DIR, next to
the recorded binary, qrr's own QEMU, PATH) and ask them things."""

import hashlib
import json
import os
import re
import shutil
import subprocess

from qrr_tool import layout
from qrr_tool.common import QrrError, warn


def arch_of(binary):
    m = re.fullmatch(r'qemu-system-([\w-]+)', os.path.basename(binary))
    if not m:
        raise QrrError(f'{binary}: not a qemu-system-ARCH binary')
    return m.group(1)


def search_dirs(qemu_dir=None, extra=()):
    dirs = []
    if qemu_dir:
        dirs.append(qemu_dir)
    if os.environ.get('QRR_QEMU_DIR'):
        dirs.append(os.environ['QRR_QEMU_DIR'])
    dirs.extend(extra)
    dirs.append(layout.default_qemu_dir())
    out = []
    for d in dirs:
        if os.path.abspath(d) not in map(os.path.abspath, out):
            out.append(d)
    return out


def is_program(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_program(name, qemu_dir=None, extra=()):
    """@name as a path, or looked up in the qrr directories, then PATH."""
    if '/' in name:
        if is_program(name):
            return os.path.abspath(name)
        raise QrrError(f'{name}: QEMU binary not found')
    dirs = search_dirs(qemu_dir, extra)
    for d in dirs:
        p = os.path.join(d, name)
        if is_program(p):
            return os.path.abspath(p)
    p = shutil.which(name)
    if p:
        return p
    raise QrrError(f'{name} not found (looked in {", ".join(dirs)} and '
                   'PATH; use --qemu-dir or $QRR_QEMU_DIR)')


def find_qemu_img(qemu, qemu_dir=None):
    return find_program('qemu-img', qemu_dir, [os.path.dirname(qemu)])


def qemu_version(qemu):
    try:
        r = subprocess.run([qemu, '--version'], capture_output=True,
                           text=True, timeout=30)
    except OSError as e:
        raise QrrError(f'{qemu}: {e.strerror}') from None
    return r.stdout.splitlines()[0].strip() if r.stdout else 'unknown'


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def image_format(qemu_img, path):
    r = subprocess.run([qemu_img, 'info', '--output=json', path],
                       capture_output=True, text=True)
    if r.returncode:
        raise QrrError(f'{path}: qemu-img info failed: '
                       f'{r.stderr.strip().splitlines()[-1:]}')
    return json.loads(r.stdout)['format']


def run_qemu_img(qemu_img, *args, cwd=None):
    r = subprocess.run([qemu_img, *args], capture_output=True, text=True,
                       cwd=cwd)
    if r.returncode:
        err = (r.stderr.strip().splitlines() or ['failed'])[-1]
        raise QrrError(f'qemu-img {args[0]}: {err}')


def find_trace_qemu(trace, qemu_dir=None):
    """The QEMU binary to replay @trace with."""
    rec = trace.manifest.get('qemu_binary')
    extra = [os.path.dirname(rec)] if rec else []
    return find_program(trace.cmdline[0], qemu_dir, extra)


def check_binary(manifest, qemu):
    """Warn when the replaying QEMU is not the recording's."""
    want = manifest.get('qemu_version')
    have = qemu_version(qemu)
    if want and have != want:
        warn(f'recorded with "{want}", replaying with "{have}": the replay '
             'may diverge')
    elif manifest.get('qemu_binary_sha256') and \
            file_sha256(qemu) != manifest['qemu_binary_sha256']:
        warn(f'{qemu} is not the binary the trace was recorded with '
             '(rebuilt?): the replay may diverge')
