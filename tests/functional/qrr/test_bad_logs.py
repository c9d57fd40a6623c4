# Bad input to a replay: every case ends quickly with a one-line error that
# names the problem and where, and a nonzero exit; never a hang or a crash.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

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


def replay(log, extra=(), machine=MACHINE, append=''):
    arch = q.MACHINES[machine][0]
    r = q.run(arch, q.linux_args(machine, append) + list(extra) +
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


def chunks(data):
    """(offset, stored payload size) of each chunk, in order."""
    off, out = header_size(data), []
    while off + 48 <= len(data):
        size = int.from_bytes(data[off + 32:off + 36], 'little')
        out.append((off, size))
        off += 48 + size
    return out


def cut_in_payload(data):
    """Cut the log in the middle of the payload of its middle chunk."""
    cs = chunks(data)
    assert len(cs) >= 2, 'the good log has a single chunk'
    off, size = cs[len(cs) // 2]
    assert size >= 2
    return data[:off + 48 + size // 2]


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


@pytest.mark.parametrize('version', [0, 2], ids=['older', 'newer'])
def test_other_version(tmp_path, good_log, version):
    def set_version(d):
        d[8] = version
        return d
    p = patched(tmp_path, good_log, f'v{version}.rr', set_version)
    assert f'offset 8: log format version {version} is not supported' in \
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
    p = patched(tmp_path, good_log, 'cut.rr', cut_in_payload)
    r = replay(p)
    assert re.search(r'payload truncated .*; replay stopped at icount \d+, '
                     r'the end of the log.s valid part', last_error(r)), \
        r.describe()
    assert b'QRR-GUEST end' not in r.out


def test_truncated_between_chunks(tmp_path, good_log):
    """A log cut at a chunk boundary: what a recording killed between two
    flushes leaves."""
    off, _ = chunks(good_log.read_bytes())[1]
    p = patched(tmp_path, good_log, 'cut2.rr', lambda d: d[:off])
    err = last_error(replay(p))
    assert re.search(rf'the log ends at offset {off} after chunk 0 without a '
                     r'final chunk .*; replay stopped at icount \d+', err), err


def test_checksum_field_flip(tmp_path, good_log):
    """A bit flipped in the payload checksum itself, not in the payload."""
    p = patched(tmp_path, good_log, 'crcflip.rr',
                lambda d: flip(d, header_size(d) + 40))
    assert re.search(r'offset \d+: chunk 0 header checksum mismatch',
                     last_error(replay(p)))


def replay_output(log, extra=''):
    """Replay @log (expected to fail); return the Result."""
    r = q.run(ARCH, q.linux_args(MACHINE) +
              q.icount_opt('replay', log, extra), timeout=TIMEOUT)
    assert r.rc is not None, f'replay of {log} hung'
    return r


@pytest.fixture(scope='module')
def good_replay(good_log):
    r = replay_output(good_log)
    assert r.rc == 0, r.describe()
    return r


def zero_last_chunk_from_middle(data):
    """A host crash: the file's length reached the disk, the last chunk's
    second half did not."""
    off, size = chunks(data)[-1]
    cut = off + 48 + size // 2
    return data[:cut] + bytes(len(data) - cut)


def zeros_after_a_chunk(data):
    """A crash mid-write: the log up to its middle chunk, then 64 KiB of
    zeros."""
    cs = chunks(data)
    off, _ = cs[len(cs) // 2]
    return data[:off] + bytes(65536)


@pytest.mark.parametrize('torn', [zero_last_chunk_from_middle,
                                  zeros_after_a_chunk])
def test_torn_tail_replays_its_prefix(tmp_path, good_log, good_replay, torn):
    """A torn tail is the end of the log: the replay says so at the start,
    replays the valid part exactly (a prefix of the full replay's output)
    and stops there with an error."""
    p = patched(tmp_path, good_log, 'torn.rr', torn)
    r = replay_output(p)
    assert r.rc == 1, r.describe()
    err = r.err.decode()
    assert re.search(r'offset \d+: (bad chunk magic|chunk \d+ (header|payload)'
                     r' checksum mismatch).*; nothing valid follows: a torn '
                     r'tail, the log ends there; replaying its valid part',
                     err), err
    assert re.search(r"replay stopped at icount \d+, the end of the log's "
                     r'valid part', last_error(r)), r.describe()
    assert good_replay.out.startswith(r.out), 'the prefix differs'
    assert len(r.out) > 0


def bump_event_count(data):
    """The middle chunk claims one event more than it holds; checksums made
    right."""
    cs = chunks(data)
    off, _ = cs[len(cs) // 2]
    n = int.from_bytes(data[off + 24:off + 28], 'little') + 1
    data[off + 24:off + 28] = n.to_bytes(4, 'little')
    data[off + 44:off + 48] = zlib.crc32(bytes(data[off:off + 44])).to_bytes(
        4, 'little')
    return data


def test_rrverify_refuses_before_the_machine_runs(tmp_path, good_log):
    """A log whose checksums match but whose events do not decode: by
    default the replay meets it when it gets there; with rrverify=on it is
    refused at once, naming the chunk, before the guest runs."""
    p = patched(tmp_path, good_log, 'count.rr', bump_event_count)
    seq = len(chunks(p.read_bytes())) // 2
    bad = rf'offset \d+: chunk {seq}(,| has| last)'
    lazy = replay_output(p)
    assert lazy.rc == 1, lazy.describe()
    assert re.search(bad, last_error(lazy)), lazy.describe()
    assert lazy.out, 'the guest ran nothing before the bad chunk'
    strict = replay_output(p, 'rrverify=on')
    assert strict.rc == 1, strict.describe()
    assert re.search(bad, last_error(strict)), strict.describe()
    assert not strict.out, 'the guest ran before the log was refused'


@pytest.mark.parametrize('value', ['every', 'off', '250'])
def test_rrfsync_schedules_record_and_replay(tmp_path, value):
    """Each sync schedule records a log that replays exactly."""
    log = tmp_path / 'fsync.rr'
    rec = q.run(ARCH, q.linux_args(MACHINE) +
                q.icount_opt('record', log, f'rrfsync={value}'))
    assert rec.rc == 0, rec.describe()
    rep = replay_output(log)
    assert rep.rc == 0, rep.describe()
    q.assert_same_output(rec, rep)


@pytest.mark.parametrize('value', ['0', 'soon', '-5'])
def test_rrfsync_bad_value(tmp_path, value):
    r = q.run(ARCH, q.linux_args(MACHINE) +
              q.icount_opt('record', tmp_path / 'x.rr', f'rrfsync={value}'))
    assert r.rc == 1, r.describe()
    assert f'-icount rrfsync={value}: expected milliseconds' in \
        last_error(r), r.describe()


def test_other_machine(good_log):
    err = last_error(replay(good_log, ['-M', 'virt-9.2']))
    assert 'does not match the recording: machine is virt' in err, err


def test_killed_recording_replays_its_prefix(tmp_path):
    """SIGKILL during the recording: the log replays up to its last flush,
    printing a prefix of what the recording printed, then stops with an
    error."""
    log = tmp_path / 'killed.rr'
    args = q.linux_args(MACHINE, 'qrr.sleep=10')
    cmd = [str(q.qemu_binary(ARCH))] + args + q.icount_opt('record', log)
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = bytearray()
    while b'tick 2 ' not in out:
        b = p.stdout.read1(65536)
        assert b, 'the recording ended before /init'
        out.extend(b)
    time.sleep(1.5)
    p.send_signal(signal.SIGKILL)
    out.extend(p.stdout.read())
    p.wait()
    assert b'QRR-GUEST end' not in out
    r = q.run(ARCH, args + q.icount_opt('replay', log), timeout=TIMEOUT)
    assert r.rc == 1, r.describe()
    assert re.search(r"replay stopped at icount \d+, the end of the log's "
                     r'valid part', last_error(r)), r.describe()
    assert b'Booting Linux' in r.out or b'Linux version' in r.out
    assert bytes(out).startswith(r.out), \
        'the replayed prefix differs from the recording'


def fsize_limit(limit):
    def set_limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return set_limit


# The guest of a recording that fills its file system.  The boot alone
# writes about 20 KB of log in a few chunks, sealed every 500 ms of host
# time, and the limits are 8 KB: on a slow run the chunk that crosses the
# limit was the final one, written after the guest had printed everything
# (make check saw it once).  With 5 s of ticks after the boot, the
# recording meets the failure while the guest still runs.
FULL_APPEND = 'qrr.sleep=5'


def record_until_full(log, preexec_fn=None):
    """Record onto a file system that fills up; return the record Result."""
    r = q.run(ARCH, q.linux_args(MACHINE, FULL_APPEND) +
              q.icount_opt('record', log),
              timeout=TIMEOUT, preexec_fn=preexec_fn)
    assert r.rc is not None, 'the recording hung when the disk was full'
    assert r.rc == 1, r.describe()
    assert re.search(r'recording stopped at icount \d+, the log keeps what '
                     r'came before', r.err.decode()), r.describe()
    assert b'QRR-GUEST end' not in r.out, 'the guest ran on unrecorded'
    return r


def test_log_write_failing_near_the_end_exits_nonzero(tmp_path):
    """Even when only the last writes fail (at the final flush, or during
    the last flush interval), the recording is not a success."""
    log = tmp_path / 'last.rr'
    good = q.run(ARCH, q.linux_args(MACHINE) +
                 q.icount_opt('record', tmp_path / 'size.rr'))
    assert good.rc == 0
    size = (tmp_path / 'size.rr').stat().st_size
    r = q.run(ARCH, q.linux_args(MACHINE) + q.icount_opt('record', log),
              timeout=TIMEOUT, preexec_fn=fsize_limit(size * 9 // 10))
    assert r.rc == 1, r.describe()
    assert 'File too large' in r.err.decode(), r.describe()


def check_prefix_replays(log, rec):
    r = replay(log, append=FULL_APPEND)
    assert re.search(r"replay stopped at icount \d+, the end of the log's "
                     r'valid part', last_error(r)), r.describe()
    assert rec.out.startswith(r.out)
    assert len(r.out) > 0


def test_file_size_limit_while_recording(tmp_path):
    """The log hits RLIMIT_FSIZE (EFBIG): recording stops, QEMU exits 1,
    and what was written replays."""
    log = tmp_path / 'limited.rr'
    rec = record_until_full(log, fsize_limit(8000))
    assert 'File too large' in rec.err.decode(), rec.describe()
    check_prefix_replays(log, rec)


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / 'small'
    mnt.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=8k', 'tmpfs',
                        str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip('cannot mount a small tmpfs here: ' + r.stderr.decode())
    yield mnt
    subprocess.run(['umount', str(mnt)])


def test_full_disk_while_recording(tmp_path, small_fs):
    """The file system fills up (ENOSPC): recording stops, QEMU exits 1,
    and what was written replays."""
    log = small_fs / 'full.rr'
    rec = record_until_full(log)
    assert 'No space left on device' in rec.err.decode(), rec.describe()
    copy = tmp_path / 'full.rr'
    copy.write_bytes(log.read_bytes())
    check_prefix_replays(copy, rec)


def test_other_ram_size(good_log):
    err = last_error(replay(good_log, ['-m', '512M']))
    assert 'does not match the recording: ram is 268435456 in the log ' \
        'but 536870912 in this run' in err


def test_other_cpu(good_log):
    err = last_error(replay(good_log, machine='virt-max'))
    assert 'cpu is cortex-a57-arm-cpu in the log but max-arm-cpu' in err


def test_other_kernel_command_line(good_log):
    """Refused at start-up, naming -append, instead of diverging once the
    guest reads it."""
    err = last_error(replay(good_log, append='qrr.load=1'))
    assert 'does not match the recording: append is console=' in err, err
    assert 'qrr.load=1 in this run' in err, err


def test_other_initrd(good_log, tmp_path):
    """Files are compared by content, not by path: the recording's initrd
    copied elsewhere replays; one byte more is refused, naming it."""
    _, initrd = q.guest_files(ARCH)
    same = tmp_path / 'same.gz'
    same.write_bytes(initrd.read_bytes())
    more = tmp_path / 'more.gz'
    more.write_bytes(initrd.read_bytes() + b'\0')
    err = last_error(replay(good_log, ['-initrd', str(more)]))
    assert 'does not match the recording: initrd is ' in err, err
    r = q.run(ARCH, q.linux_args(MACHINE) + ['-initrd', str(same)] +
              q.icount_opt('replay', good_log), timeout=TIMEOUT)
    assert r.rc == 0, r.describe()


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


def be_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def test_unreadable(good_log):
    """A log without read permission.  Root reads any file, so as root the
    replay runs as nobody, who can read the guest but not the log."""
    d = Path(tempfile.mkdtemp(prefix='qrr-noperm-'))
    try:
        d.chmod(0o755)
        p = d / 'noperm.rr'
        p.write_bytes(good_log.read_bytes())
        p.chmod(0)
        r = q.run(ARCH, q.linux_args(MACHINE) + q.icount_opt('replay', p),
                  timeout=TIMEOUT,
                  preexec_fn=be_nobody if os.geteuid() == 0 else None)
        assert r.rc == 1, r.describe()
        err = last_error(r)
        assert 'noperm.rr' in err and 'Permission denied' in err, err
    finally:
        shutil.rmtree(d)
