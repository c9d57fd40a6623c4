# Bad input to a replay: every case ends quickly with a one-line error that
# names the problem and where, and a nonzero exit; never a hang or a crash.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re
import signal
import subprocess
import time

import pytest

import qrrtest as q

MACHINE = 'virt-a57'
ARCH = q.MACHINES[MACHINE][0]
TIMEOUT = 120


@pytest.fixture(scope='module')
def good_log(tmp_path_factory):
    log = tmp_path_factory.mktemp('bad') / 'good.rr'
    rec = q.run(ARCH, q.linux_args(MACHINE) + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()
    return log


def replay(log, extra=(), machine=MACHINE):
    arch = q.MACHINES[machine][0]
    r = q.run(arch, q.linux_args(machine) + list(extra) +
              q.icount_opt('replay', log), timeout=TIMEOUT)
    assert r.rc is not None, f'replay of {log} hung'
    assert r.rc != 0, f'replay of {log} succeeded: ' + r.describe()
    assert r.rc > 0, f'replay of {log} crashed: ' + r.describe()
    return r


def last_error(r):
    lines = r.err.decode(errors='replace').strip().splitlines()
    assert lines, 'no error message: ' + r.describe()
    return lines[-1]


def patched(tmp_path, good_log, name, fn):
    data = bytearray(good_log.read_bytes())
    data = fn(data)
    p = tmp_path / name
    p.write_bytes(bytes(data))
    return p


def header_size(data):
    return int.from_bytes(data[12:16], 'little')


def flip(data, off):
    data[off] ^= 0x10
    return data


def test_empty(tmp_path):
    p = tmp_path / 'empty.rr'
    p.write_bytes(b'')
    assert 'empty file, not a qrr replay log' in last_error(replay(p))


def test_not_a_log(tmp_path):
    p = tmp_path / 'text.rr'
    p.write_text('hello, world\n' * 10)
    assert 'offset 0: not a qrr replay log' in last_error(replay(p))


def test_missing(tmp_path):
    assert 'No such file' in last_error(replay(tmp_path / 'nope.rr'))


def test_directory(tmp_path):
    assert 'not a regular file' in last_error(replay(tmp_path))


def test_truncated_header(tmp_path, good_log):
    p = patched(tmp_path, good_log, 'hdr.rr', lambda d: d[:30])
    assert re.search(r'header truncated \(file is 30 bytes',
                     last_error(replay(p)))


def test_wrong_version(tmp_path, good_log):
    def v2(d):
        d[8] = 2
        return d
    p = patched(tmp_path, good_log, 'v2.rr', v2)
    assert 'offset 8: log format version 2 is not supported' in \
        last_error(replay(p))


def test_header_bit_flip(tmp_path, good_log):
    p = patched(tmp_path, good_log, 'hflip.rr', lambda d: flip(d, 40))
    assert re.search(r'offset \d+: header checksum mismatch',
                     last_error(replay(p)))


def test_chunk_header_bit_flip(tmp_path, good_log):
    p = patched(tmp_path, good_log, 'cflip.rr',
                lambda d: flip(d, header_size(d) + 10))
    assert re.search(r'offset \d+: chunk 0 header checksum mismatch',
                     last_error(replay(p)))


def test_payload_bit_flip(tmp_path, good_log):
    p = patched(tmp_path, good_log, 'pflip.rr',
                lambda d: flip(d, header_size(d) + 48 + 20))
    assert re.search(r'offset \d+: chunk 0 payload checksum mismatch',
                     last_error(replay(p)))


def test_truncated_in_chunk(tmp_path, good_log):
    """A cut log replays its valid part, then stops with an error."""
    p = patched(tmp_path, good_log, 'cut.rr', lambda d: d[:len(d) * 2 // 3])
    r = replay(p)
    assert re.search(r'payload truncated .*; replay stopped at icount \d+, '
                     r'the end of the log.s valid part', last_error(r)), \
        r.describe()
    assert b'QRR-GUEST end' not in r.out


def test_other_ram_size(good_log):
    err = last_error(replay(good_log, ['-m', '512M']))
    assert 'does not match the recording: ram is 268435456 in the log ' \
        'but 536870912 in this run' in err


def test_other_cpu(good_log):
    err = last_error(replay(good_log, machine='virt-max'))
    assert 'cpu is cortex-a57-arm-cpu in the log but max-arm-cpu' in err


def test_other_device_list(good_log):
    err = last_error(replay(good_log, ['-device', 'virtio-rng-pci']))
    assert 'does not match the recording' in err and 'device' in err


def test_other_architecture(tmp_path):
    """A log from x86_64 (a killed recording is enough) on AArch64."""
    log = tmp_path / 'x86.rr'
    cmd = [str(q.qemu_binary('x86_64'))] + q.linux_args('pc') + \
        q.icount_opt('record', log)
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert log.stat().st_size > 0
    err = last_error(replay(log))
    assert 'target is x86_64 in the log but aarch64 in this run' in err


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads any file')
def test_unreadable(tmp_path, good_log):
    p = patched(tmp_path, good_log, 'noperm.rr', lambda d: d)
    p.chmod(0)
    assert 'Permission denied' in last_error(replay(p))
