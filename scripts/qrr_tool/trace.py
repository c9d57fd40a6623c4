# qrr: the trace directory
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""A trace directory holds what a replay needs: manifest.json, the replay
command line (cmdline.json), the log, the disk overlays, the outputs the
command line names (outputs/record/, and outputs/replay/ once replayed);
a pack (.tar.gz) holds one such directory."""

import json
import os
import shutil
import tarfile
import tempfile

from qrr_tool.common import QrrError, warn
from qrr_tool.plan import OUTPUT_DIRS
from qrr_tool.rewrite import LOG

MANIFEST = 'manifest.json'
CMDLINE = 'cmdline.json'
RECORD_OUT = 'record-stdout.txt'
RECORD_ERR = 'record-stderr.txt'
REPLAY_OUT = 'replay-stdout.txt'
REPLAY_ERR = 'replay-stderr.txt'


def load_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise QrrError(f'{path}: no {what}') from None
    except (ValueError, UnicodeDecodeError) as e:
        raise QrrError(f'{path}: corrupt {what} ({e})') from None
    except OSError as e:
        raise QrrError(f'{path}: {e.strerror}') from None


def write_json(path, obj):
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=2)
        f.write('\n')
    os.replace(tmp, path)


def empty_dir(path):
    """Make @path an empty directory."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


class Trace:
    """A trace directory: manifest.json, cmdline.json, the log, overlays."""

    def __init__(self, path):
        self.dir = os.path.abspath(path)
        if not os.path.isdir(self.dir):
            raise QrrError(f'{path}: no such trace directory')
        mpath = os.path.join(self.dir, MANIFEST)
        if not os.path.exists(mpath):
            raise QrrError(f'{path}: not a qrr trace (no {MANIFEST})')
        self.manifest = load_json(mpath, 'manifest')
        if not isinstance(self.manifest, dict) or \
                self.manifest.get('format') != 'qrr-trace-1':
            raise QrrError(f'{mpath}: corrupt manifest (not a qrr-trace-1 '
                           'manifest)')
        self.cmdline = load_json(self.path(CMDLINE), 'command line')
        if not isinstance(self.cmdline, list) or not self.cmdline or \
                not all(isinstance(a, str) for a in self.cmdline):
            raise QrrError(f'{self.path(CMDLINE)}: corrupt command line '
                           '(not a list of strings)')

    def path(self, name):
        return os.path.join(self.dir, name)

    @property
    def disks(self):
        return self.manifest.get('disks', [])

    @property
    def outputs(self):
        """The output files of the command line (manifest 'outputs')."""
        return self.manifest.get('outputs', [])

    def fresh_overlays(self):
        """Copy every pristine overlay to the scratch one QEMU writes."""
        for d in self.disks:
            base = self.path(d['base'])
            if not os.path.exists(base):
                raise QrrError(f'{base}: missing overlay of disk {d["n"]}')
            src = d.get('packed') or d['source']
            src = src if os.path.isabs(src) else self.path(src)
            if not os.path.exists(src):
                raise QrrError(f'{src}: image of disk {d["n"]} is missing '
                               '(moved or deleted? "qrr pack" makes a '
                               'self-contained trace)')
            st = os.stat(src)
            if not d.get('packed') and (st.st_size != d.get('size') or
                                        st.st_mtime != d.get('mtime')):
                warn(f'{src} changed since the recording: the replay '
                     'may diverge')
            shutil.copyfile(base, self.path(d['overlay']))

    def fresh_outputs(self):
        """An empty outputs/replay/ for the replay's output files."""
        if self.outputs:
            empty_dir(self.path(OUTPUT_DIRS['replay']))

    def check_log(self):
        if not os.path.exists(self.path(LOG)):
            raise QrrError(f'{self.path(LOG)}: no log in the trace (did the '
                           'recording start?)')


def free_trace_dir():
    n = 1
    while os.path.exists(f'qrr-trace-{n}'):
        n += 1
    return f'qrr-trace-{n}'


def file_sizes(d):
    return {f: os.path.getsize(os.path.join(d, f))
            for f in sorted(os.listdir(d))
            if os.path.isfile(os.path.join(d, f)) and not f.endswith('.tmp')}


def open_trace(path, stack):
    """A Trace for a directory or a .tar.gz (unpacked into a temp dir)."""
    if os.path.isfile(path) and tarfile.is_tarfile(path):
        tmp = tempfile.mkdtemp(prefix='qrr-')
        stack.append(tmp)
        try:
            with tarfile.open(path) as tf:
                extract(tf, tmp)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise QrrError(f'{path}: cannot unpack ({e})') from None
        entries = [e for e in os.listdir(tmp)
                   if os.path.exists(os.path.join(tmp, e, MANIFEST))]
        if len(entries) != 1:
            raise QrrError(f'{path}: not a qrr pack (no single trace '
                           'directory inside)')
        return Trace(os.path.join(tmp, entries[0]))
    if os.path.isfile(path):
        raise QrrError(f'{path}: neither a trace directory nor a .tar.gz')
    return Trace(path)


def extract(tf, dest):
    """Extract @tf into @dest, refusing anything that leaves it."""
    for m in tf.getmembers():
        name = os.path.normpath(m.name)
        if name.startswith(('/', '..')) or not (m.isfile() or m.isdir()):
            raise QrrError(f'{tf.name}: unsafe member {m.name!r}')
    if hasattr(tarfile, 'data_filter'):
        tf.extractall(dest, filter='data')
    else:
        tf.extractall(dest)


def cleanup(stack):
    for d in stack:
        shutil.rmtree(d, ignore_errors=True)
