# qrr debug's gdb command line (scripts/qrr_tool/debug.py): no QEMU or
# gdb runs.
#
#   /usr/bin/python3 -m pytest tests/unit/test_qrr_debug.py
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'scripts'))

from qrr_tool.debug import gdb_command  # noqa: E402

OPTS = SimpleNamespace(vmlinux=None, at=None)


def commands(gcmd):
    """The -ex commands of @gcmd, in order."""
    return [gcmd[i + 1] for i, a in enumerate(gcmd) if a == '-ex']


@pytest.mark.parametrize('qemu,abi', [
    ('/usr/bin/qemu-system-aarch64', True),     # armhf or arm64 guest
    ('qemu-system-arm', True),
    ('/opt/qrr/bin/qemu-system-x86_64', False),
    ('qemu-system-i386', False),
])
def test_arm_abi(qemu, abi):
    """On ARM, gdb is told the armhf ABI before it connects: with its
    default it unwinds a 32-bit guest's frames wrongly."""
    ex = commands(gdb_command(OPTS, 'gdb-multiarch', 1234,
                              [qemu, '-M', 'virt']))
    assert ex[-1] == 'target remote 127.0.0.1:1234'
    assert ('set arm abi AAPCS' in ex) == abi
    if abi:
        assert ex.index('set arm abi AAPCS') < ex.index(ex[-1])


def test_vmlinux_and_break():
    """The symbol file comes first; --at breaks there after connecting."""
    opts = SimpleNamespace(vmlinux='vmlinux', at=12345)
    gcmd = gdb_command(opts, 'gdb', 1, ['qemu-system-x86_64'])
    assert gcmd[:2] == ['gdb', '-q'] and gcmd[2].endswith('/vmlinux')
    assert commands(gcmd)[-2:] == ['monitor replay_break 12345', 'continue']
