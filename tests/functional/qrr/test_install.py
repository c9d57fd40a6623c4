# make install PREFIX=...: the emulators, qemu-img and qrr installed under a
# prefix, and qrr working from PATH with no --qemu-dir: it finds the
# emulators next to itself, records and replays the bare-metal guest.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import subprocess

import pytest

import qrrtest as q

BINARIES = ('qemu-system-x86_64', 'qemu-system-aarch64', 'qemu-img')

pytestmark = pytest.mark.skipif(
    not all((q.QEMU_BUILD / b).exists() for b in BINARIES) or
    not q.baremetal_guest('x86_64').exists(),
    reason='needs the qrr build (make install would build it) and the '
    'bare-metal x86 guest')


@pytest.fixture(scope='module')
def prefix(tmp_path_factory):
    prefix = tmp_path_factory.mktemp('install') / 'prefix'
    r = subprocess.run(['make', '-C', str(q.TOP), 'install',
                        f'PREFIX={prefix}'], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return prefix


def qrr(prefix, *args, cwd):
    """`qrr ARGS` found on PATH, with nothing telling it where QEMU is."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('QRR_QEMU_DIR', 'PYTHONPATH')}
    env['PATH'] = f'{prefix}/bin:/usr/bin:/bin'
    return subprocess.run(['qrr'] + list(args), env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=240)


def test_installed_files(prefix):
    for b in BINARIES + ('qrr',):
        assert os.access(prefix / 'bin' / b, os.X_OK), b
    share = prefix / 'share'
    assert (share / 'qrr' / 'qrr_tool' / 'rewrite.py').exists()
    assert (share / 'qrr' / 'replay-dump.py').exists()
    assert (share / 'qemu' / 'keymaps' / 'en-us').exists()
    assert (share / 'qemu' / 'bios-256k.bin').exists()      # SeaBIOS
    assert (share / 'qemu' / 'linuxboot_dma.bin').exists()
    r = subprocess.run([str(prefix / 'bin' / 'qemu-img'), '--version'],
                       capture_output=True, text=True)
    assert r.returncode == 0 and 'qemu-img version 10.0' in r.stdout


def test_qrr_from_path_records_and_replays(prefix, tmp_path):
    r = qrr(prefix, '--help', cwd=tmp_path)
    assert r.returncode == 0 and b'usage: qrr' in r.stdout, r.stderr
    r = qrr(prefix, 'record', '-o', 'trace', '--', 'qemu-system-x86_64',
            *q.baremetal_args('pc'), cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    m = json.loads((tmp_path / 'trace' / 'manifest.json').read_text())
    assert m['qemu_binary'] == str(prefix / 'bin' / 'qemu-system-x86_64')
    assert m['log_status'] == 'complete'
    r = qrr(prefix, 'replay', 'trace', cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert b'the output matches the recording' in r.stderr, r.stderr
    r = qrr(prefix, 'dump', 'trace', '--verify', cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith(b'OK: '), r.stderr
