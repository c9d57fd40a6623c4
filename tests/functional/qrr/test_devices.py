# Disks and NICs: record then replay the Linux guest with a disk behind
# blkreplay and a slirp NIC behind filter-replay.  The guest prints the md5
# of the disk's first MiB, writes a block and reads it back after dropping
# its caches, and fetches a file over HTTP from a server on the host.  The
# file changes between record and replay: the replay must print the
# recorded content.  The disk image is never written.  A cell may have two
# disks of different models and two NICs of different models
# ('ahci+scsi-hd', 'e1000e+virtio-net-pci'): the guest checks both disks
# (each its own image) and fetches the file through each NIC.
#
# Each cell of the matrix (test_disk_and_net_replay) also loads the hooks:
# the guest writes HEAVY's tens of MiB to its first disk with writers in
# parallel whose O_DIRECT requests overlap in flight, downloads a file of
# several MiB (it too changes before the replay) and uploads several MiB
# that the server answers with their size, md5 and the upload's number.
# The replay must print the recorded answer while the server sees no new
# upload (filter-replay gives the guest the recorded packets).  The cell's
# replay then travels in time: from the recorded end back to the middle of
# the guest's workloads and on to the end again, printing what the
# recording printed from there once more, byte for byte.  A cell whose
# device keeps no state (nvme) has time travel turned off: its seek back
# must be refused naming the device.  (This step found that a snapshot
# aborted QEMU with a SCSI disk: scsi-hd, usb-storage.)
#
#   QRR_MATRIX=full   every cell of the device matrix (else a subset)
#   QRR_REPEAT=N      N record/replay pairs per cell
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import functools
import hashlib
import http.server
import json
import os
import random
import re
import subprocess
import threading

import pytest

import qrrtest as q

REPEAT = int(os.environ.get('QRR_REPEAT', '1'))

# disk kind -> (extra -device wiring, the guest's qrr.disk); {drive} is the
# id of the blkreplay drive, {n} tells a machine's disks apart.  The disks
# that Linux names sdX are found by their sysfs path (tests/guest/init's
# sys:PATTERN), whatever order their drivers probe in.
DISKS = {
    'ide-hd': (['-device', 'ide-hd,drive={drive}'], 'sys:*/ata*'),
    'ahci': (['-device', 'ahci,id=qrrahci{n}',
              '-device', 'ide-hd,drive={drive},bus=qrrahci{n}.0'],
             'sys:*/ata*'),
    'virtio-blk-pci': (['-device', 'virtio-blk-pci,drive={drive}'],
                       '/dev/vda'),
    'virtio-blk-device': (['-device', 'virtio-blk-device,drive={drive}'],
                          '/dev/vda'),
    'scsi-hd': (['-device', 'virtio-scsi-pci,id=qrrscsi{n}',
                 '-device', 'scsi-hd,drive={drive},bus=qrrscsi{n}.0'],
                'sys:*/virtio*/host*'),
    'scsi-hd-mmio': (['-device', 'virtio-scsi-device,id=qrrscsi{n}',
                      '-device', 'scsi-hd,drive={drive},bus=qrrscsi{n}.0'],
                     'sys:*/virtio*/host*'),
    'nvme': (['-device', 'nvme,drive={drive},serial=qrrnvme{n}'],
             '/dev/nvme0n1'),
    'usb-storage': (['-device', 'qemu-xhci,id=qrrxhci{n}',
                     '-device', 'usb-storage,drive={drive},bus=qrrxhci{n}.0'],
                    'sys:*/usb*'),
}

NEW_DISKS = ['scsi-hd', 'nvme', 'usb-storage']
X86_DISKS = ['ide-hd', 'virtio-blk-pci', 'ahci'] + NEW_DISKS
X86_NICS = ['e1000', 'rtl8139', 'virtio-net-pci', 'e1000e']
ARM_DISKS = ['virtio-blk-pci', 'virtio-blk-device', 'scsi-hd-mmio'] + \
    NEW_DISKS
ARM_NICS = ['virtio-net-pci', 'e1000']
# Several disks and several NICs in one machine, mixed models.
MIXED = [('q35', 'ahci+scsi-hd', 'e1000e+virtio-net-pci'),
         ('virt-a57', 'nvme+usb-storage', 'e1000+virtio-net-pci')]

FULL = ([(m, d, n) for m in ('pc', 'q35') for d in X86_DISKS
         for n in X86_NICS] +
        [('virt-a57', d, n) for d in ARM_DISKS for n in ARM_NICS] + MIXED)
# CI's cells: the two mixed machines stand for the new disk kinds
# (scsi-hd, nvme, usb-storage), one cell more each than the three before.
SUBSET = [('pc', 'ide-hd', 'e1000'),
          ('q35', 'virtio-blk-pci', 'virtio-net-pci'),
          ('virt-a57', 'virtio-blk-device', 'virtio-net-pci')] + MIXED
CELLS = FULL if os.environ.get('QRR_MATRIX') == 'full' else SUBSET

DISK_SIZE = 4 << 20
# The image's virtual size: room for qrr.diskmib's N MiB from 8 MiB on
# (the content past DISK_SIZE reads as zeros).
IMAGE_SIZE = 64 << 20

# The matrix's loads: qrr.diskmib (MiB), the download (bytes), the upload
# (KiB).  CI's subset runs them smaller.
HEAVY = ({'diskmib': 32, 'get': 8 << 20, 'put': 4096}
         if os.environ.get('QRR_MATRIX') == 'full' else
         {'diskmib': 8, 'get': 2 << 20, 'put': 1024})


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_disk(tmp_path_factory, seed):
    d = tmp_path_factory.mktemp('disk')
    raw = d / 'disk.raw'
    data = random.Random(seed).randbytes(DISK_SIZE)
    raw.write_bytes(data)
    os.truncate(raw, IMAGE_SIZE)
    img = d / 'disk.qcow2'
    subprocess.run([str(q.QEMU_BUILD / 'qemu-img'), 'convert', '-f', 'raw',
                    '-O', 'qcow2', str(raw), str(img)], check=True)
    return img, hashlib.md5(data[:1 << 20]).hexdigest()


@pytest.fixture(scope='module')
def disk(tmp_path_factory):
    """A qcow2 image with random content; returns (path, md5 of 1st MiB)."""
    return make_disk(tmp_path_factory, 1234)


@pytest.fixture(scope='module')
def disk2(tmp_path_factory):
    """The second disk of a machine with two, other content."""
    return make_disk(tmp_path_factory, 5678)


class Server:
    """An HTTP server on 127.0.0.1 serving files whose content we set,
    and taking uploads (POST): it answers each with the size and md5 it
    received and the upload's number, and counts them."""

    def __init__(self, root):
        self.root = root
        handler = functools.partial(Quiet, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     handler)
        self.httpd.uploads = []
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def set(self, text):
        (self.root / 'file.txt').write_text(text)
        return hashlib.md5(text.encode()).hexdigest()

    def set_big(self, size, seed):
        """big.bin: @size random bytes; returns (size, md5)."""
        data = random.Random(seed).randbytes(size)
        (self.root / 'big.bin').write_bytes(data)
        return size, hashlib.md5(data).hexdigest()

    @property
    def uploads(self):
        """(size, md5) of every upload so far."""
        return list(self.httpd.uploads)

    @property
    def url(self):
        return f'http://10.0.2.2:{self.port}/file.txt'

    @property
    def big_url(self):
        return f'http://10.0.2.2:{self.port}/big.bin'

    @property
    def upload_url(self):
        return f'http://10.0.2.2:{self.port}/upload'


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        data = self.rfile.read(int(self.headers['Content-Length']))
        uploads = self.server.uploads
        uploads.append((len(data), hashlib.md5(data).hexdigest()))
        body = f'{len(data)} {uploads[-1][1]} upload {len(uploads)}\n'
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp('www'))
    yield s
    s.httpd.shutdown()


def device_args(machine, disk_kind, nic, image, url, image2=None):
    """The guest with a disk of DISK_KIND on IMAGE and a NIC of model NIC;
    'A+B' gives two disks (the second on IMAGE2) or two NICs (the second
    on a slirp of its own, 10.0.3.0/24)."""
    append, args = [], []
    for n, (kind, img) in enumerate(zip(disk_kind.split('+'),
                                        (image, image2))):
        wiring, dev = DISKS[kind]
        sfx = str(n + 1) if n else ''
        append.append(f'qrr.disk{sfx}={dev}')
        args += ['-drive', f'file={img},if=none,id=img-direct{sfx},'
                 'format=qcow2',
                 '-drive', f'driver=blkreplay,if=none,image=img-direct{sfx},'
                 f'id=img-blkreplay{sfx}']
        args += [w.format(drive=f'img-blkreplay{sfx}', n=n) for w in wiring]
    nics = nic.split('+')
    for n, model in enumerate(nics):
        sfx = str(n + 1) if n else ''
        netdev, dev = 'user,id=net0', f'{model},netdev=net0'
        nurl = url
        if len(nics) > 1:
            mac = f'52:54:00:12:34:{0x56 + n:02x}'
            nurl = f'{mac}@' + url.replace('10.0.2.2', f'10.0.{2 + n}.2')
            netdev = f'user,id=net{n},net=10.0.{2 + n}.0/24'
            dev = f'{model},netdev=net{n},mac={mac}'
        append.append(f'qrr.net{sfx}={nurl}')
        args += ['-netdev', netdev, '-device', dev,
                 '-object', f'filter-replay,id=replay{n},netdev=net{n}']
    return q.linux_args(machine, ' '.join(append)) + args


def field(out, name):
    m = re.search(rb'^' + name.encode() + rb': *(\S+)', out, re.M)
    assert m, f'the guest printed no {name}'
    return m.group(1).decode()


@pytest.mark.parametrize('run', range(REPEAT))
@pytest.mark.parametrize('machine,disk_kind,nic', CELLS,
                         ids=['-'.join(c) for c in CELLS])
def test_disk_and_net_replay(tmp_path, disk, disk2, server, machine,
                             disk_kind, nic, run):
    check_heavy_and_time_travel(tmp_path, disk, disk2, server, machine,
                                disk_kind, nic, f'{run} {random.random()}')


def test_upload_answer_numbers_each_upload(server):
    """The server's answer to an upload names its number: a replay that
    really uploaded again (instead of getting the recorded packets) would
    print another answer than the recording's, and the server would count
    one upload more."""
    import urllib.request
    url = f'http://127.0.0.1:{server.port}/upload'
    body = random.Random(3).randbytes(100000)
    before = len(server.uploads)
    answers = [urllib.request.urlopen(url, data=body).read()
               for _ in range(2)]
    md5 = hashlib.md5(body).hexdigest()
    assert answers == [f'100000 {md5} upload {before + k}\n'.encode()
                       for k in (1, 2)], answers
    assert server.uploads[before:] == [(100000, md5)] * 2


def heavy_append(server):
    """The kernel command line's part for HEAVY's loads."""
    return (f' qrr.diskmib={HEAVY["diskmib"]} qrr.netget={server.big_url}'
            f' qrr.netput={HEAVY["put"]}@{server.upload_url}')


def upload_answer(out):
    """The guest's netput-sent (size, md5) and the server's answer
    (size, md5, upload number) that it printed."""
    sent = re.search(rb'^netput-sent: (\d+) ([0-9a-f]{32})\r?$', out, re.M)
    got = re.search(rb'^netput-answer: (\d+) ([0-9a-f]{32}) upload (\d+)'
                    rb'\r?$', out, re.M)
    assert sent and got, 'no upload in the guest output'
    return ((int(sent.group(1)), sent.group(2).decode()),
            (int(got.group(1)), got.group(2).decode(), int(got.group(3))))


def check_heavy_and_time_travel(tmp_path, disk, disk2, server, machine,
                                disk_kind, nic, tag):
    """A cell of the matrix under HEAVY's loads: record with the files
    served as "recorded content @tag" and a random big.bin, replay with
    both changed; the replay prints the recorded disk, files and upload
    answer, the server sees no upload, and the replay's time travel (see
    time_travel_step) prints what the recording printed from the middle
    of the workloads on once more."""
    image, md5_first_mib = disk
    image2, md5_2 = disk2 if '+' in disk_kind else (None, None)
    arch = q.MACHINES[machine][0]
    args = device_args(machine, disk_kind, nic, image, server.url, image2)
    args[args.index('-append') + 1] += heavy_append(server)
    log = tmp_path / 'dev.rr'
    images = [image] + ([image2] if image2 else [])
    image_sha = [sha256(i) for i in images]

    recorded_md5 = server.set(f'recorded content {tag}\n')
    big = server.set_big(HEAVY['get'], tag)
    uploads = len(server.uploads)
    rec = q.run(arch, args + q.icount_opt('record', log))
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    assert [sha256(i) for i in images] == image_sha, \
        'record wrote the disk image'
    recorded = rec.guest_output()
    (tmp_path / 'record.out').write_bytes(recorded)
    assert b'failed' not in recorded, rec.describe()
    assert len(server.uploads) == uploads + 1, server.uploads
    sent, answer = upload_answer(recorded)
    assert sent == (HEAVY['put'] * 1024, sent[1]), sent
    assert answer == sent + (uploads + 1,), (sent, answer)
    assert server.uploads[-1] == sent

    server.set('the file changed after the recording\n')
    server.set_big(HEAVY['get'] // 2, f'changed {tag}')
    out = time_travel_step(tmp_path, arch, args, log, recorded, disk_kind)
    assert [sha256(i) for i in images] == image_sha, \
        'replay wrote the disk image'
    assert len(server.uploads) == uploads + 1, \
        f'the replay uploaded again: {server.uploads}'
    assert field(out, 'disk-md5') == md5_first_mib
    assert field(out, 'write-md5') == field(out, 'read-md5')
    assert field(out, 'diskmib-cache') == field(out, 'diskmib-disk')
    assert field(out, 'http') == recorded_md5
    assert re.search(rb'^netget: ' + f'{big[0]} {big[1]}'.encode() +
                     rb'\r?$', out, re.M), 'not the recorded download'
    assert upload_answer(out) == (sent, answer)
    if image2:
        assert field(out, 'disk2-md5') == md5_2
        assert field(out, 'write2-md5') == field(out, 'read2-md5')
    if '+' in nic:
        assert field(out, 'http2') == recorded_md5
    assert b'recorded content' in out
    assert b'the file changed' not in out


def workload_middle(log, recorded):
    """The instruction count halfway between the guest's first line
    (QRR-GUEST begin) and its last (QRR-GUEST end), from the log's
    char-write events (one per byte the guest printed).  Not the middle
    of the whole recording: that is in the boot, before the guest's
    /init has printed anything (the kernel's decompression and firmware
    take about half the instructions)."""
    at = [e['icount'] for e in q.log_events(log) if e['kind'] == 'char-write'
          for _ in range(e['args']['result'])]
    first = recorded.index(b'QRR-GUEST begin')
    last = recorded.index(b'QRR-GUEST end')
    assert len(at) >= last, (len(at), last)
    return (at[first] + at[last]) // 2


def time_travel_step(tmp_path, arch, args, log, recorded, disk_kind):
    """Replay @log paused under QMP: seek forward to the middle of the
    guest's workloads (noting how much the guest had printed there) and
    on to the recorded end, where the guest has printed all of
    @recorded; then back to the middle and on to the end: from the middle
    on, the serial output is the recording's again.  With nvme (no device
    state) the seek back is refused, naming it, and the replay goes on to
    the end as recorded.  Returns the output of the replay's first pass."""
    from test_timetravel import Replay, log_end

    mid = workload_middle(log, recorded)
    r = Replay(tmp_path, arch, args, log)
    try:
        end = log_end(r)
        assert r.qmp.seek(mid) == mid, r.stderr()
        at_mid = r.serial.stat().st_size
        assert b'QRR-GUEST begin' in recorded[:at_mid], recorded[:at_mid]
        assert 0 < r.qmp.seek(end) <= end, r.stderr()
        first = r.serial.read_bytes()
        assert first == recorded, 'replay differs from the recording: ' + \
            diff_at(recorded, first)
        e = r.qmp.cmd('replay-seek', icount=mid)
        if 'nvme' in disk_kind:
            assert 'error' in e, e
            desc = e['error']['desc']
            assert 'time travel is off' in desc and 'nvme' in desc, desc
            print(f'time travel step refused as it must be: {desc}')
            r.qmp.ok('cont')
            assert r.wait() == 0, r.stderr()
            assert r.serial.read_bytes() == recorded
        else:
            assert 'return' in e, e
            r.qmp.wait_event('STOP')
            assert r.qmp.ok('query-replay')['icount'] == mid
            before = r.serial.stat().st_size
            r.qmp.ok('cont')
            assert r.wait() == 0, r.stderr()
            tail = r.serial.read_bytes()[before:]
            assert tail == recorded[at_mid:], \
                'after the seek back to the middle: ' + \
                diff_at(recorded[at_mid:], tail)
            # the second half holds the workloads' random data
            assert b'netput-answer' in tail, tail
        err = r.stderr()
        assert 'diverged' not in err and 'error' not in err.lower(), err
        return first
    finally:
        r.quit()


def diff_at(want, got):
    """Where @got first differs from @want, lines around it."""
    i = next((k for k, (a, b) in enumerate(zip(want, got)) if a != b),
             min(len(want), len(got)))
    return (f'first difference at byte {i} (lengths {len(want)}, '
            f'{len(got)})\n  want: {want[max(0, i - 200):i + 200]!r}\n'
            f'  got:  {got[max(0, i - 200):i + 200]!r}')


def check_disk_and_net(tmp_path, disk, server, machine, disk_kind, nic,
                       tag, extra=(), disk2=None):
    """Record with the file served as "recorded content @tag", replay
    with it changed: the replay prints the recorded disk and file (of
    each disk and through each NIC, with two)."""
    image, md5_first_mib = disk
    image2, md5_2 = disk2 if '+' in disk_kind else (None, None)
    arch = q.MACHINES[machine][0]
    args = device_args(machine, disk_kind, nic, image, server.url,
                       image2) + list(extra)
    log = tmp_path / 'dev.rr'
    images = [image] + ([image2] if image2 else [])
    image_sha = [sha256(i) for i in images]

    recorded_md5 = server.set(f'recorded content {tag}\n')
    rec = q.run(arch, args + q.icount_opt('record', log))
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    assert [sha256(i) for i in images] == image_sha, \
        'record wrote the disk image'

    server.set('the file changed after the recording\n')
    rep = q.run(arch, args + q.icount_opt('replay', log))
    assert rep.rc == 0, 'replay failed: ' + rep.describe()
    assert [sha256(i) for i in images] == image_sha, \
        'replay wrote the disk image'

    q.assert_same_output(rec, rep)
    out = rep.guest_output()
    assert field(out, 'disk-md5') == md5_first_mib, rep.describe()
    assert field(out, 'write-md5') == field(out, 'read-md5'), rep.describe()
    assert field(out, 'http') == recorded_md5, rep.describe()
    if image2:
        assert field(out, 'disk2-md5') == md5_2, rep.describe()
        assert field(out, 'write2-md5') == field(out, 'read2-md5'), \
            rep.describe()
    if '+' in nic:
        assert field(out, 'http2') == recorded_md5, rep.describe()
    assert b'recorded content' in out
    assert b'the file changed' not in out
    assert b'error' not in rep.err.lower(), rep.describe()
    return rep


def test_changed_image_is_named(tmp_path, server):
    """The image changed after the recording: the replay stops at the
    first read whose data differs, naming the drive, the offset and the
    length, instead of diverging later somewhere else."""
    image = tmp_path / 'disk.raw'
    image.write_bytes(random.Random(99).randbytes(DISK_SIZE))
    args = [a.replace('format=qcow2', 'format=raw') for a in
            device_args('pc', 'virtio-blk-pci', 'virtio-net-pci', image,
                        server.url)]
    log = tmp_path / 'img.rr'
    server.set('recorded\n')
    rec = q.run('x86_64', args + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()
    changed = 700_000               # in the first MiB, which the guest reads
    data = bytearray(image.read_bytes())
    data[changed] ^= 0xff
    image.write_bytes(bytes(data))
    rep = q.run('x86_64', args + q.icount_opt('replay', log), timeout=120)
    assert rep.rc == 1, rep.describe()
    err = rep.err.decode()
    m = re.search(r"drive 'img-blkreplay' returned other data than in the "
                  r'recording for the read of (\d+) bytes at offset (\d+) '
                  r'.*: the disk image changed since the recording', err)
    assert m, err
    length, offset = int(m.group(1)), int(m.group(2))
    assert offset <= changed < offset + length, err
    assert b'disk-md5' not in rep.out, 'the guest went on with other data'


def startup_error(machine, args):
    arch = q.MACHINES[machine][0]
    r = q.run(arch, args, timeout=60)
    assert r.rc not in (None, 0), r.describe()
    assert b'QRR-GUEST begin' not in r.out
    return r.err.decode(errors='replace').strip().splitlines()[-1]


@pytest.fixture(scope='module')
def short_log(tmp_path_factory):
    """The first seconds of a recording on pc with no disk and no NIC."""
    log = tmp_path_factory.mktemp('short') / 'short.rr'
    r = q.run('x86_64', q.linux_args('pc') + q.icount_opt('record', log),
              timeout=3)
    assert r.rc is None or r.rc == 0, r.describe()
    assert log.stat().st_size > 0
    return log


@pytest.mark.parametrize('mode', ['record', 'replay'])
def test_drive_without_blkreplay_is_refused(tmp_path, disk, short_log, mode):
    image, _ = disk
    log = tmp_path / 'x.rr' if mode == 'record' else short_log
    args = q.linux_args('pc') + [
        '-drive', f'file={image},if=none,id=mydisk,format=qcow2,'
        'snapshot=on', '-device', 'virtio-blk-pci,drive=mydisk,id=vd0']
    err = startup_error('pc', args + q.icount_opt(mode, log))
    assert "drive 'mydisk' (virtio-blk-pci 'vd0') does not go through " \
           "blkreplay; add -drive driver=blkreplay,if=none," \
           "image=mydisk" in err, err


@pytest.mark.parametrize('mode', ['record', 'replay'])
def test_iothread_disk_is_refused(tmp_path, disk, short_log, mode):
    """A disk served by an iothread cannot be replayed exactly, even behind
    blkreplay (see replay/replay-devices.c).  Under TCG virtio-blk refuses
    iothread= by itself (no ioeventfd); record/replay's own check names
    any other device that would take it."""
    image, _ = disk
    log = tmp_path / 'x.rr' if mode == 'record' else short_log
    args = q.linux_args('pc') + [
        '-object', 'iothread,id=io0',
        '-drive', f'file={image},if=none,id=img-direct,format=qcow2',
        '-drive', 'driver=blkreplay,if=none,image=img-direct,'
        'id=img-blkreplay',
        '-device', 'virtio-blk-pci,drive=img-blkreplay,iothread=io0,id=vd0']
    err = startup_error('pc', args + q.icount_opt(mode, log))
    assert re.search(r"drive 'img-blkreplay' is served by iothread 'io0'.*"
                     r"from virtio-blk-pci 'vd0'|vd0: ioeventfd is required "
                     r'for iothread', err), err


def test_netdev_without_filter_replay_is_refused(tmp_path):
    args = q.linux_args('pc') + ['-netdev', 'user,id=mynet',
                                 '-device', 'e1000,netdev=mynet']
    err = startup_error('pc', args + q.icount_opt('record', tmp_path / 'x'))
    assert "netdev 'mynet'" in err and 'has no filter-replay; add -object ' \
           'filter-replay,id=ID,netdev=mynet' in err, err


def test_legacy_net_hub_is_refused(tmp_path):
    args = q.linux_args('pc') + ['-net', 'nic,model=e1000', '-net', 'user']
    err = startup_error('pc', args + q.icount_opt('record', tmp_path / 'x'))
    assert 'legacy -net hub' in err, err


def test_without_rr_blkreplay_passes_through(tmp_path, disk):
    """rr off: blkreplay is a plain filter and writes reach the image."""
    image, _ = disk
    copy = tmp_path / 'copy.qcow2'
    copy.write_bytes(image.read_bytes())
    before = sha256(copy)
    args = device_args('pc', 'virtio-blk-pci', 'e1000', copy,
                       'http://10.0.2.2:9/none')
    r = q.run('x86_64', args + ['-icount', 'shift=auto'])
    assert r.rc == 0, r.describe()
    out = r.guest_output()
    assert field(out, 'write-md5') == field(out, 'read-md5')
    assert sha256(copy) != before


TT_CELLS = [('pc', 'ide-hd', 'e1000'),
            ('virt-a57', 'virtio-blk-device', 'virtio-net-pci')]


def block_completions(log):
    """The instruction counts at which the log delivers a disk request's
    completion (replay-dump.py --json)."""
    r = subprocess.run([str(q.TOP / 'scripts' / 'replay-dump.py'), '--json',
                        str(log)], capture_output=True, text=True, check=True)
    return [e['icount'] for e in map(json.loads, r.stdout.splitlines())
            if e['kind'] == 'block']


# This test found that a restore must put back the guest's pending timers
# (replay/replay-timers.c): e1000's post_load arms its mitigation timer
# 1 ns ahead, and the replay then waited for a CLOCK_VIRTUAL checkpoint
# that the log has elsewhere ("replay stuck", a few instructions after the
# restore), on pc and on virt.  The timers participant is the one fix for
# every device whose post_load arms a timer: with its load made a no-op
# both cells fail (2026-12-06): pc-e1000 "replay stuck ... interrupt", and
# virt's virtio-net, whose post_load starts the self-announcement (5
# rounds from now), "replay diverged ... the guest wrote to a character
# device".  And with e1000 as upstream has it (patch 0017 reverted) and
# the participant on, pc-e1000 is stuck again: post_load's mit_timer_on
# outlived the timer that the participant stopped.
@pytest.mark.parametrize('machine,disk_kind,nic', TT_CELLS,
                         ids=['-'.join(c) for c in TT_CELLS])
def test_time_travel_with_disk_requests_in_flight(tmp_path, disk, server,
                                                  machine, disk_kind, nic):
    """Seeks that leave a position with disk requests in flight, then a
    replay from the start: the recording's output again, the image never
    written.  Each seek lands a few instructions before a recorded
    completion, where that request is in flight, and the next seek leaves
    it there (replay_async_abandon traces each request so dropped)."""
    from test_timetravel import Replay

    image, _ = disk
    arch = q.MACHINES[machine][0]
    args = device_args(machine, disk_kind, nic, image, server.url)
    log = tmp_path / 'dev.rr'
    image_sha = sha256(image)
    server.set(f'recorded content {random.random()}\n')
    rec = q.run(arch, args + q.icount_opt('record', log))
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    recorded = rec.guest_output()
    server.set('the file changed after the recording\n')

    done = block_completions(log)
    assert len(done) >= 8, done
    rnd = random.Random(7)
    targets = [done[i] - 100 for i in
               rnd.sample(range(1, len(done)), 6)]
    r = Replay(tmp_path, arch,
               args + ['-trace', 'replay_async_abandon',
                       '-trace', 'replay_timers_restore',
                       '-trace', 'virtio_net_announce_timer'], log)
    try:
        for t in targets:
            assert r.qmp.seek(t) == t, r.stderr()
        assert r.qmp.seek(0) == 0
        before = r.serial.stat().st_size
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        assert r.serial.read_bytes()[before:] == recorded
        dropped = re.findall(r'replay_async_abandon block id \d+',
                             r.stderr())
        assert dropped, 'no seek left a disk request in flight: ' + \
            r.stderr()[-2000:]
        assert 'diverged' not in r.stderr(), r.stderr()
        # the seeks back restored snapshots, and what the devices'
        # post_load armed (e1000's flush, virtio-net's announcement) was
        # stopped there and never ran
        assert re.search(r'replay_timers_restore \d+ guest timers',
                         r.stderr()), 'no restore: ' + r.stderr()[-2000:]
        assert 'virtio_net_announce_timer' not in r.stderr()
    finally:
        r.quit()
    assert sha256(image) == image_sha, 'the replay wrote the disk image'

    # quit with a request in flight: the drain at exit must not wait for a
    # completion that only the log would deliver
    first = min(targets)
    r = Replay(tmp_path, arch,
               args + ['-trace', 'replay_async_abandon'], log)
    try:
        assert r.qmp.seek(first) == first, r.stderr()
        r.qmp.cmd('quit')
        assert r.wait(60) == 0, 'QEMU did not quit: ' + r.stderr()[-2000:]
        assert re.search(r'replay_async_abandon block id \d+',
                         r.stderr()), 'no request in flight at the quit'
    finally:
        r.quit()
