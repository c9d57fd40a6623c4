# scripts/qrr, the one-command tool: its command errors, and
# record/replay/info/dump/report/pack/debug end to end on the x86 test
# guest.  The command line rewriting (a pure function) is unit tested in
# tests/unit/test_qrr_rewrite.py.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import threading
import zlib
from xml.etree import ElementTree

import pytest

import qrrcmd
import qrrtest as q

MACHINE = 'pc'
ARCH = 'x86_64'
BINARY = f'qemu-system-{ARCH}'
# a guest run is ~15 s: anything beyond this is a hang
E2E_TIMEOUT = 240


# ---- command line errors (a fake QEMU; no guest runs) ----

@pytest.fixture
def fake_qemu(tmp_path):
    d = tmp_path / 'fakebin'
    d.mkdir()
    for name in (BINARY, 'qemu-img'):
        (d / name).write_text('#!/bin/sh\necho "QEMU emulator version 0"\n')
        (d / name).chmod(0o755)
    return d


def check_error(r, message):
    assert r.rc == 2, r.describe()
    err = r.err.decode()
    assert err.startswith('qrr: error: '), err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err, err


@pytest.mark.parametrize('setup,args,message', [
    (None, ['replay', 'nowhere'], 'nowhere: no such trace directory'),
    ('empty', ['replay', 'tr'], 'not a qrr trace (no manifest.json)'),
    ('badmanifest', ['info', 'tr'], 'corrupt manifest'),
    ('badcmdline', ['replay', 'tr'], 'corrupt command line'),
    (None, ['record', '--', 'qemu-system-nosucharch', '-m', '1G'],
     'qemu-system-nosucharch not found'),
    ('fake', ['record', '-o', 'tr', '--', BINARY, '-icount', 'rr=record'],
     'qrr sets rr= itself'),
    ('fake', ['record', '-o', 'tr', '--', BINARY, '-blockdev', 'x'],
     '-blockdev is not supported'),
    ('fake', ['record', '-o', 'tr', '--', BINARY, '-hda', 'missing.img'],
     'missing.img: no such disk image'),
    ('fake', ['record', '--'], 'give the QEMU command line after --'),
    (None, ['dump'], 'usage: qrr dump DIR'),
    (None, ['pack', 'nowhere'], 'nowhere: no such trace directory'),
])
def test_command_errors(tmp_path, fake_qemu, setup, args, message):
    tr = tmp_path / 'tr'
    if setup in ('empty', 'badmanifest', 'badcmdline'):
        tr.mkdir()
    if setup == 'badmanifest':
        (tr / 'manifest.json').write_text('{"format": "qrr-trace-1", ')
    if setup == 'badcmdline':
        (tr / 'manifest.json').write_text('{"format": "qrr-trace-1"}')
        (tr / 'cmdline.json').write_text('{"argv": 1}')
    env = dict(os.environ, QRR_QEMU_DIR=str(fake_qemu))
    if setup != 'fake':
        env['QRR_QEMU_DIR'] = str(tmp_path)
    r = qrrcmd.run(args, env=env, cwd=tmp_path, timeout=60)
    check_error(r, message)
    if setup == 'fake' and 'record' in args:
        assert not (tr / 'manifest.json').exists()


def test_existing_trace_dir_is_not_overwritten(tmp_path, fake_qemu):
    (tmp_path / 'tr').mkdir()
    (tmp_path / 'tr' / 'x').write_text('')
    r = qrrcmd.run(['record', '-o', 'tr', '--qemu-dir', fake_qemu, '--',
                    BINARY], cwd=tmp_path, timeout=60)
    check_error(r, 'already exists and is not an empty directory')


def test_default_trace_dirs_and_no_double_dash(tmp_path, fake_qemu):
    env = dict(os.environ, QRR_QEMU_DIR=str(fake_qemu))
    for n in (1, 2):
        r = qrrcmd.run(['record', BINARY, '-m', '1G', '-nodefaults'],
                       env=env, cwd=tmp_path, timeout=60)
        assert r.rc == 0, r.describe()
        m = json.loads((tmp_path / f'qrr-trace-{n}' /
                        'manifest.json').read_text())
        assert m['exit_status'] == 0 and m['ram'] == 1 << 30
        assert m['qemu_binary'] == str(fake_qemu / BINARY)
    cmdline = json.loads((tmp_path / 'qrr-trace-1' /
                          'cmdline.json').read_text())
    assert cmdline == [BINARY, '-m', '1G', '-nodefaults', '-icount',
                       'shift=auto,rr=replay,rrfile=replay.rr']
    # the fake QEMU wrote no log
    r = qrrcmd.run(['replay', 'qrr-trace-1'], env=env, cwd=tmp_path,
                   timeout=60)
    check_error(r, 'no log in the trace')


# ---- end to end on the x86 guest ----

needs_build = pytest.mark.skipif(
    not (q.qemu_binary(ARCH).exists() and q.guest_files(ARCH)[0].exists()),
    reason='needs the qrr build and the x86_64 test guest')


def guest_args(guest_dir, append=''):
    """linux_args('pc') with the kernel and initrd copied to @guest_dir."""
    args = q.linux_args(MACHINE, append)
    for i, a in enumerate(args):
        if a in ('-kernel', '-initrd'):
            src = args[i + 1]
            dst = guest_dir / os.path.basename(src)
            if not dst.exists():
                shutil.copy(src, dst)
            args[i + 1] = str(dst)
    return args


def record(trace, args, typed=None, cwd=None):
    r = qrrcmd.run(['record', '-o', trace, '--qemu-dir', q.QEMU_BUILD, '--',
                    BINARY] + args, typed=typed, cwd=cwd,
                   timeout=E2E_TIMEOUT)
    assert r.rc == 0, 'qrr record failed: ' + r.describe()
    return r


def replay(trace, *extra, typed=None, cwd=None):
    r = qrrcmd.run(['replay', trace, '--qemu-dir', q.QEMU_BUILD] +
                   list(extra), typed=typed, cwd=cwd, timeout=E2E_TIMEOUT)
    assert r.rc == 0, 'qrr replay failed: ' + r.describe()
    return r


def sha256(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


@pytest.fixture(scope='module')
def boot(tmp_path_factory):
    """One recording of the guest with a typed line, shared by the tests."""
    if not (q.qemu_binary(ARCH).exists() and
            q.guest_files(ARCH)[0].exists()):
        pytest.skip('needs the qrr build and the x86_64 test guest')
    base = tmp_path_factory.mktemp('boot')
    guest = base / 'guest'
    guest.mkdir()
    trace = base / 'trace'
    rec = record(trace, guest_args(guest, 'qrr.prompt=1'),
                 typed='recorded line', cwd=base)
    return base, guest, trace, rec


@needs_build
def test_record_then_replay_matches(boot, tmp_path):
    base, guest, trace, rec = boot
    assert b'line: [recorded line]' in rec.guest_output()
    for f in ('manifest.json', 'cmdline.json', 'replay.rr',
              'record-stdout.txt'):
        assert (trace / f).exists(), f
    m = json.loads((trace / 'manifest.json').read_text())
    assert m['exit_status'] == 0 and m['arch'] == ARCH
    assert m['base'] == 'Debian qemu 1:10.0.13+ds-0+deb13u1'
    assert m['qemu_version'].startswith('QEMU emulator version 10.0')
    assert m['ram'] == 256 << 20 and m['machine'] == 'pc'
    assert m['icount'] > 0 and m['events'] > 0
    assert m['files']['replay.rr'] == (trace / 'replay.rr').stat().st_size
    cmdline = json.loads((trace / 'cmdline.json').read_text())
    assert cmdline[0] == BINARY
    assert 'shift=auto,rr=replay,rrfile=replay.rr' in cmdline
    assert ['-net', 'none'] not in [cmdline[i:i + 2]
                                    for i in range(len(cmdline))]

    serial = tmp_path / 'serial.txt'
    rep = replay(trace, '--serial-out', serial, '--progress',
                 typed='replayed line')
    q.assert_same_output(rec, rep)
    assert serial.read_bytes() == rep.out
    assert b'replayed line' not in rep.out
    err = rep.err.decode()
    assert 'the output matches the recording' in err, err
    # progress from QMP query-replay, against the recording's icount
    assert re.search(rf'replay at icount \d+ of {m["icount"]} \(', err), err


@needs_build
def test_replay_that_differs_exits_3(boot, tmp_path):
    """A replay whose output is not the recording's is no success: here
    the recorded output was changed after the recording."""
    base, guest, trace, rec = boot
    copy = tmp_path / 'trace'
    shutil.copytree(trace, copy)
    with open(copy / 'record-stdout.txt', 'ab') as f:
        f.write(b'not printed by the guest\n')
    r = qrrcmd.run(['replay', copy, '--qemu-dir', q.QEMU_BUILD],
                   timeout=E2E_TIMEOUT)
    assert r.rc == 3, r.describe()
    assert 'the output DIFFERS from the recording' in r.err.decode()


@needs_build
def test_replay_verify(boot, tmp_path):
    """--verify decodes the whole log first: a good trace replays as
    without it; one whose middle chunk claims an event more than it holds
    (checksums made right) is refused before the guest prints anything."""
    base, guest, trace, rec = boot
    rep = replay(trace, '--verify', typed='replayed line')
    q.assert_same_output(rec, rep)
    copy = tmp_path / 'trace'
    shutil.copytree(trace, copy)
    log = copy / 'replay.rr'
    data = bytearray(log.read_bytes())
    off = int.from_bytes(data[12:16], 'little')
    offs = []
    while off + 48 <= len(data):
        offs.append(off)
        off += 48 + int.from_bytes(data[off + 32:off + 36], 'little')
    mid = offs[len(offs) // 2]
    n = int.from_bytes(data[mid + 24:mid + 28], 'little') + 1
    data[mid + 24:mid + 28] = n.to_bytes(4, 'little')
    data[mid + 44:mid + 48] = zlib.crc32(bytes(data[mid:mid + 44])).to_bytes(
        4, 'little')
    log.write_bytes(bytes(data))
    r = qrrcmd.run(['replay', copy, '--verify', '--qemu-dir', q.QEMU_BUILD],
                   timeout=E2E_TIMEOUT)
    assert r.rc == 1, r.describe()
    assert re.search(rf'offset \d+: chunk {len(offs) // 2}(,| has| last)',
                     r.err.decode()), r.describe()
    assert b'QRR-GUEST' not in r.out, r.describe()


@needs_build
def test_info_dump_report(boot, tmp_path):
    base, guest, trace, rec = boot
    m = json.loads((trace / 'manifest.json').read_text())
    r = qrrcmd.run(['info', trace], timeout=120)
    assert r.rc == 0, r.describe()
    out = r.out.decode()
    assert f'instructions: {m["icount"]}' in out
    assert 'interrupt' in out and 'fingerprint:' in out
    r = qrrcmd.run(['info', trace, '--json'], timeout=120)
    info = json.loads(r.out)
    assert info['log']['last_icount'] == m['icount']
    assert info['log']['status'] == 'complete'

    r = qrrcmd.run(['dump', trace, '--verify'], timeout=120)
    assert r.rc == 0 and r.out.startswith(b'OK: '), r.describe()
    r = qrrcmd.run(['dump', trace, '--stats', '--json'], timeout=120)
    assert json.loads(r.out)['events'] == m['events']

    page = tmp_path / 'r.html'
    r = qrrcmd.run(['report', trace, '-o', page], timeout=120)
    assert r.rc == 0, r.describe()
    text = page.read_text()
    assert text.startswith('<!DOCTYPE html>') and '<svg' in text
    assert '<script' not in text and 'src="http' not in text
    assert 'interrupt' in text and f'{m["icount"]:,}' in text
    svg = re.search(r'<svg.*?</svg>', text, re.S).group(0)
    ElementTree.fromstring(svg)             # well-formed


class FakeGdb:
    """A 'gdb' speaking just enough of the remote protocol: it runs the
    monitor commands and 'continue' that qrr passes with -ex, asks the
    stub where the replay is (monitor info replay), and detaches."""

    SCRIPT = textwrap.dedent('''\
        import re, socket, sys, time
        args = sys.argv[1:]
        exs = [args[i + 1] for i, a in enumerate(args[:-1]) if a == '-ex']
        port = int(next(re.search(r'target remote [\\d.]*:(\\d+)', e)
                        .group(1) for e in exs if 'target remote' in e))
        for _ in range(100):
            try:
                s = socket.create_connection(('127.0.0.1', port), 2)
                break
            except OSError:
                time.sleep(0.2)
        s.settimeout(60)
        buf = b''

        def send(data):
            s.sendall(b'$%s#%02x' % (data, sum(data) & 0xff))

        def recv():
            global buf
            while True:
                m = re.search(rb'\\$([^#]*)#..', buf)
                if m:
                    buf = buf[m.end():]
                    s.sendall(b'+')
                    return m.group(1)
                buf += s.recv(4096)

        def monitor(cmd):
            send(b'qRcmd,' + cmd.encode().hex().encode())
            out = b''
            while True:
                r = recv()
                if r.startswith(b'O') and r != b'OK':
                    out += bytes.fromhex(r[1:].decode())
                else:
                    return out.decode()

        send(b'?')
        print('stop reply:', recv().decode())
        for e in exs:
            if e.startswith('monitor '):
                print(monitor(e[8:]), end='')
            elif e == 'continue':
                send(b'c')
                print('stopped:', recv().decode())
        print(monitor('info replay'), end='')
        send(b'D')
        recv()
        ''')

    def __init__(self, d):
        self.path = d / 'fake-gdb'
        self.path.write_text(f'#!{sys.executable}\n' + self.SCRIPT)
        self.path.chmod(0o755)


@needs_build
def test_debug_attaches_gdb(boot, tmp_path):
    base, guest, trace, rec = boot
    gdb = FakeGdb(tmp_path)
    r = qrrcmd.run(['debug', trace, '--qemu-dir', q.QEMU_BUILD,
                    '--gdb', gdb.path], timeout=120)
    assert r.rc == 0, r.describe()
    assert re.search(rb'stop reply: [ST]05', r.out), r.describe()
    assert b'instruction count = 0\r\n' in r.out, r.describe()
    assert b'replaying under gdb on port' in r.err
    # --at: the replay runs to that instruction count under gdb
    r = qrrcmd.run(['debug', trace, '--qemu-dir', q.QEMU_BUILD,
                    '--gdb', gdb.path, '--at', '123456789'], timeout=120)
    assert r.rc == 0, r.describe()
    assert b'stopped: T' in r.out or b'stopped: S' in r.out, r.describe()
    assert b'instruction count = 123456789\r\n' in r.out, r.describe()


@needs_build
def test_pack_replays_elsewhere(boot, tmp_path):
    base, guest, trace, rec = boot
    archive = tmp_path / 'boot.tar.gz'
    r = qrrcmd.run(['pack', trace, '-o', archive, '--qemu-dir',
                    q.QEMU_BUILD], timeout=300)
    assert r.rc == 0, r.describe()
    with tarfile.open(archive) as tf:
        names = tf.getnames()
    assert 'trace/files/vmlinuz' in names and 'trace/replay.rr' in names
    with tarfile.open(archive) as tf:
        cmdline = json.load(tf.extractfile('trace/cmdline.json'))
    assert 'files/vmlinuz' in cmdline and 'files/initrd.gz' in cmdline
    # move the originals away, replay the archive from another directory
    moved = tmp_path / 'moved'
    moved.mkdir()
    shutil.move(str(guest), moved / 'guest')
    shutil.move(str(trace), moved / 'trace')
    try:
        elsewhere = tmp_path / 'elsewhere'
        elsewhere.mkdir()
        rep = replay(archive, typed='replayed line', cwd=elsewhere)
        q.assert_same_output(rec, rep)
        assert b'the output matches the recording' in rep.err
    finally:
        shutil.move(str(moved / 'guest'), guest)
        shutil.move(str(moved / 'trace'), trace)


def make_disk(path):
    raw = path.with_suffix('.raw')
    raw.write_bytes(os.urandom(1 << 20) + bytes(7 << 20))
    subprocess.run([str(q.QEMU_BUILD / 'qemu-img'), 'convert', '-f', 'raw',
                    '-O', 'qcow2', str(raw), str(path)], check=True)
    raw.unlink()


@needs_build
def test_disk_record_replay_and_pack(tmp_path):
    disk = tmp_path / 'disk.qcow2'
    make_disk(disk)
    before = sha256(disk)
    trace = tmp_path / 'trace'
    args = guest_args(tmp_path, 'qrr.disk=/dev/vda') + [
        '-drive', 'file=disk.qcow2,if=virtio']
    rec = record(trace, args, cwd=tmp_path)
    out = rec.guest_output()
    assert sha256(disk) == before
    m = re.search(rb'write-md5: (\w+)\s+read-md5:  (\w+)', out)
    assert m and m.group(1) == m.group(2), rec.describe()
    rep = replay(trace)
    q.assert_same_output(rec, rep)
    assert sha256(disk) == before
    # packed: the image travels in the archive
    archive = tmp_path / 'disk.tar.gz'
    r = qrrcmd.run(['pack', trace, '-o', archive, '--qemu-dir',
                    q.QEMU_BUILD], timeout=300)
    assert r.rc == 0, r.describe()
    os.rename(disk, tmp_path / 'moved.qcow2')
    # unpacked elsewhere, the directory replays by itself
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    with tarfile.open(archive) as tf:
        tf.extractall(elsewhere)
    shutil.rmtree(trace)
    rep = replay(elsewhere / 'trace', cwd=elsewhere)
    q.assert_same_output(rec, rep)
    m = json.loads((elsewhere / 'trace' / 'manifest.json').read_text())
    assert m['packed'] and m['disks'][0]['packed'] == 'images/disk-0.qcow2'


class Http(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'qrr says hello\nsecond line\n'
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@needs_build
def test_net_record_replay(tmp_path):
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Http)
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        args = guest_args(tmp_path, f'qrr.net=http://10.0.2.2:{port}/x') + [
            '-nic', 'user,model=virtio-net-pci']
        trace = tmp_path / 'trace'
        rec = record(trace, args)
        assert b'qrr says hello' in rec.guest_output(), rec.describe()
    finally:
        srv.shutdown()
    cmdline = json.loads((trace / 'cmdline.json').read_text())
    assert 'filter-replay,id=qrr-net0,netdev=qrr-nic0' in cmdline
    rep = replay(trace)             # the server is gone: packets come from
    q.assert_same_output(rec, rep)  # the log


# The user's own command line, as the issue states it: a machine with its
# defaults (no -nodefaults), a virtio disk and a virtio NIC given the short
# way, nothing about record/replay.  qrr must make it replayable by itself.
USER_MACHINES = {
    'q35': ('x86_64', ['-M', 'q35'], 'ttyS0'),
    'virt': ('aarch64', ['-M', 'virt', '-cpu', 'cortex-a57'], 'ttyAMA0'),
}


@pytest.mark.parametrize('machine', sorted(USER_MACHINES))
def test_users_command_line_disk_and_net(tmp_path, machine):
    arch, margs, console = USER_MACHINES[machine]
    kernel, initrd = q.guest_files(arch)
    if not (q.qemu_binary(arch).exists() and kernel.exists()):
        pytest.skip(f'needs the qrr build and the {arch} test guest')
    disk = tmp_path / 'disk.qcow2'
    make_disk(disk)
    before = sha256(disk)
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Http)
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    append = (f'console={console} panic=-1 qrr.disk=/dev/vda '
              f'qrr.net=http://10.0.2.2:{port}/x')
    args = margs + ['-m', '512', '-kernel', str(kernel), '-initrd',
                    str(initrd), '-append', append,
                    '-drive', 'file=disk.qcow2,if=virtio',
                    '-nic', 'user,model=virtio-net-pci', '-nographic']
    trace = tmp_path / 'trace'
    try:
        r = qrrcmd.run(['record', '-o', trace, '--qemu-dir', q.QEMU_BUILD,
                        '--', f'qemu-system-{arch}'] + args, cwd=tmp_path,
                       timeout=E2E_TIMEOUT)
        assert r.rc == 0, 'qrr record failed: ' + r.describe()
    finally:
        srv.shutdown()
    out = r.guest_output()
    assert b'qrr says hello' in out, r.describe()
    m = re.search(rb'write-md5: (\w+)\s+read-md5:  (\w+)', out)
    assert m and m.group(1) == m.group(2), r.describe()
    assert sha256(disk) == before
    rep = replay(trace, cwd=tmp_path)   # the server is gone
    q.assert_same_output(r, rep)
    assert sha256(disk) == before


@needs_build
def test_serial_file_kept_and_compared(tmp_path):
    """-serial file:/abs/path: the recording keeps the serial output in the
    trace and gives the user their file; a replay writes into the trace,
    never the user's file, and compares its copy with the recorded one."""
    user_file = tmp_path / 'out' / 'rec.txt'
    user_file.parent.mkdir()
    args = guest_args(tmp_path)
    args[args.index('stdio')] = f'file:{user_file}'
    trace = tmp_path / 'trace'
    record(trace, args, cwd=tmp_path)
    recorded = user_file.read_bytes()
    assert b'QRR-GUEST begin' in recorded and b'QRR-GUEST end' in recorded
    kept = trace / 'outputs' / 'record' / '0-rec.txt'
    assert kept.read_bytes() == recorded
    cmdline = json.loads((trace / 'cmdline.json').read_text())
    assert cmdline[cmdline.index('-serial') + 1] == \
        'file:outputs/replay/0-rec.txt'

    user_file.write_bytes(b'the user changed this file\n')
    rep = replay(trace)
    assert user_file.read_bytes() == b'the user changed this file\n'
    assert (trace / 'outputs' / 'replay' / '0-rec.txt').read_bytes() == \
        recorded
    err = rep.err.decode()
    assert f'-serial file:{user_file} (kept as outputs/record/0-rec.txt): ' \
        f'same as the recording ({len(recorded)} bytes)' in err, err
    assert 'the output matches the recording' in err, err

    # a recorded copy that is not what the guest printed: the replay says so
    copy = tmp_path / 'tampered'
    shutil.copytree(trace, copy)
    with open(copy / 'outputs' / 'record' / '0-rec.txt', 'r+b') as f:
        f.seek(len(recorded) // 2)
        f.write(b'#')
    r = qrrcmd.run(['replay', copy, '--qemu-dir', q.QEMU_BUILD],
                   timeout=E2E_TIMEOUT)
    assert r.rc == 3, r.describe()
    err = r.err.decode()
    assert f'-serial file:{user_file} (kept as outputs/record/0-rec.txt): ' \
        'DIFFERS from the recording' in err, err
    assert f'first difference at byte {len(recorded) // 2}' in err, err
    assert 'the output DIFFERS from the recording' in err, err
    assert user_file.read_bytes() == b'the user changed this file\n'
