# The qrr command line rewriter (scripts/qrr_tool/rewrite.py), a pure
# function: real user command lines in, the exact record or replay command
# line, disks, network filters and output files out.  No QEMU runs.
#
#   /usr/bin/python3 -m pytest tests/unit/test_qrr_rewrite.py
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'scripts'))

from qrr_tool.common import QrrError  # noqa: E402
from qrr_tool.options import join_opts, split_opts  # noqa: E402
from qrr_tool.rewrite import rewrite  # noqa: E402

TRACE = '/trace'
CWD = '/home/u'
REC_ICOUNT = ['-icount', 'shift=auto,rr=record,rrfile=/trace/replay.rr']
REP_ICOUNT = ['-icount', 'shift=auto,rr=replay,rrfile=replay.rr']
NET_NONE = ['-net', 'none']
IMG0 = 'file=/trace/disk-0.qcow2,format=qcow2,if=none,id=qrr-img0'
BLK0 = 'driver=blkreplay,if=none,image=qrr-img0,id=qrr-blk0'
CDROM = ['-device', 'ide-cd,bus=ide.1,unit=0']   # QEMU's default CD-ROM


def rw(args, arch='x86_64', mode='record', is_file=lambda p: False):
    trace_dir = TRACE if mode == 'record' else None
    return rewrite(args, arch, mode, trace_dir, CWD, is_file)


# (name, user's arguments, arch, mode, the exact rewritten arguments)
CASES = [
    # ---- defaults ----
    ('nothing', [], 'x86_64', 'record', REC_ICOUNT + NET_NONE),
    ('nothing, replay', [], 'x86_64', 'replay', REP_ICOUNT + NET_NONE),
    ('nodefaults', ['-nodefaults', '-m', '256M'], 'x86_64', 'record',
     ['-nodefaults', '-m', '256M'] + REC_ICOUNT),
    ('arm virt', ['-M', 'virt', '-cpu', 'cortex-a57'], 'aarch64', 'record',
     ['-M', 'virt', '-cpu', 'cortex-a57'] + REC_ICOUNT + NET_NONE),
    ('icount merged', ['-icount', '5,sleep=off,rrsync=16'], 'x86_64',
     'record', ['-icount', 'shift=5,sleep=off,rrsync=16,rr=record,'
                'rrfile=/trace/replay.rr'] + NET_NONE),
    ('input files made absolute',
     ['-kernel', 'vmlinuz', '-initrd', '../i.gz', '-L', 'fw',
      '-bios', 'bios.bin', '-append', 'console=ttyS0'], 'x86_64', 'replay',
     ['-kernel', '/home/u/vmlinuz', '-initrd', '/home/i.gz',
      '-L', '/home/u/fw', '-bios', 'bios.bin',
      '-append', 'console=ttyS0'] + REP_ICOUNT + NET_NONE),
    # ---- -hda and -drive ----
    ('-hda', ['-hda', 'disk.img'], 'x86_64', 'record',
     ['-drive', IMG0, '-drive', BLK0] + REC_ICOUNT + NET_NONE +
     ['-device', 'ide-hd,drive=qrr-blk0,bus=ide.0,unit=0'] + CDROM),
    ('-hda, replay', ['-hda', 'disk.img'], 'x86_64', 'replay',
     ['-drive', 'file=disk-0.qcow2,format=qcow2,if=none,id=qrr-img0',
      '-drive', BLK0] + REP_ICOUNT + NET_NONE +
     ['-device', 'ide-hd,drive=qrr-blk0,bus=ide.0,unit=0'] + CDROM),
    ('bare image is -hda', ['disk.img', '-nodefaults'], 'x86_64', 'record',
     ['-drive', IMG0, '-drive', BLK0, '-nodefaults'] + REC_ICOUNT +
     ['-device', 'ide-hd,drive=qrr-blk0,bus=ide.0,unit=0']),
    ('-drive if=virtio, format=, snapshot=on, cache=',
     ['-drive', 'file=/img/d.qcow2,if=virtio,format=qcow2,snapshot=on,'
      'cache=writeback'], 'x86_64', 'record',
     ['-drive', IMG0 + ',cache=writeback', '-drive', BLK0] + REC_ICOUNT +
     NET_NONE + ['-device', 'virtio-blk,drive=qrr-blk0']),
    ('-drive file= only, id=: the machine\'s IDE',
     ['-drive', 'file=d.raw,format=raw,id=hd0'], 'x86_64', 'record',
     ['-drive', IMG0, '-drive', BLK0] + REC_ICOUNT + NET_NONE +
     ['-device', 'ide-hd,drive=qrr-blk0,bus=ide.0,unit=0'] + CDROM),
    ('-drive if=none,id= with -device',
     ['-drive', 'if=none,id=d0,file=d.raw,werror=stop',
      '-device', 'virtio-blk-pci,drive=d0,bootindex=1'], 'x86_64', 'record',
     ['-drive', IMG0, '-drive', BLK0 + ',werror=stop',
      '-device', 'virtio-blk-pci,drive=qrr-blk0,bootindex=1'] +
     REC_ICOUNT + NET_NONE),
    ('-drive readonly=on', ['-drive', 'file=a.img,if=virtio,readonly=on'],
     'x86_64', 'record',
     ['-drive', IMG0 + ',read-only=on', '-drive', BLK0 + ',read-only=on'] +
     REC_ICOUNT + NET_NONE + ['-device', 'virtio-blk,drive=qrr-blk0']),
    ('-drive on arm virt is virtio', ['-M', 'virt', '-drive', 'file=/i/d'],
     'aarch64', 'record',
     ['-M', 'virt', '-drive', IMG0, '-drive', BLK0] + REC_ICOUNT +
     NET_NONE + ['-device', 'virtio-blk,drive=qrr-blk0']),
    ('-snapshot dropped', ['-snapshot', '-hda', 'a.img', '-nodefaults'],
     'x86_64', 'record',
     ['-drive', IMG0, '-drive', BLK0, '-nodefaults'] + REC_ICOUNT +
     ['-device', 'ide-hd,drive=qrr-blk0,bus=ide.0,unit=0']),
    # ---- network ----
    ('-nic with model', ['-nic', 'user,model=virtio-net-pci,'
                         'hostfwd=tcp::2222-:22'], 'x86_64', 'record',
     ['-netdev', 'user,id=qrr-nic0,hostfwd=tcp::2222-:22'] + REC_ICOUNT +
     ['-device', 'virtio-net-pci,netdev=qrr-nic0',
      '-object', 'filter-replay,id=qrr-net0,netdev=qrr-nic0']),
    ('-nic, the machine\'s model', ['-M', 'q35', '-nic', 'user,mac=52:54:00:'
                                    '12:34:99'], 'x86_64', 'record',
     ['-M', 'q35', '-netdev', 'user,id=qrr-nic0'] + REC_ICOUNT +
     ['-device', 'e1000e,netdev=qrr-nic0,mac=52:54:00:12:34:99',
      '-object', 'filter-replay,id=qrr-net0,netdev=qrr-nic0']),
    ('-nic on pc: e1000', ['-nic', 'user'], 'x86_64', 'record',
     ['-netdev', 'user,id=qrr-nic0'] + REC_ICOUNT +
     ['-device', 'e1000,netdev=qrr-nic0',
      '-object', 'filter-replay,id=qrr-net0,netdev=qrr-nic0']),
    ('-nic on virt: virtio', ['-M', 'virt', '-nic', 'user,id=n'], 'aarch64',
     'record', ['-M', 'virt', '-netdev', 'user,id=n'] + REC_ICOUNT +
     ['-device', 'virtio-net-pci,netdev=n',
      '-object', 'filter-replay,id=qrr-net0,netdev=n']),
    ('-nic none', ['-nic', 'none'], 'x86_64', 'record',
     ['-nic', 'none'] + REC_ICOUNT),
    ('-net none', ['-net', 'none'], 'x86_64', 'record',
     ['-net', 'none'] + REC_ICOUNT),
    ('-netdev and JSON -netdev',
     ['-netdev', 'user,id=n0', '-device', 'e1000,netdev=n0',
      '-netdev', '{"type": "user", "id": "n1"}'], 'x86_64', 'record',
     ['-netdev', 'user,id=n0', '-device', 'e1000,netdev=n0',
      '-netdev', '{"type": "user", "id": "n1"}'] + REC_ICOUNT +
     ['-object', 'filter-replay,id=qrr-net0,netdev=n0',
      '-object', 'filter-replay,id=qrr-net1,netdev=n1']),
    # ---- serial and other outputs ----
    ('-serial stdio', ['-serial', 'stdio'], 'x86_64', 'record',
     ['-serial', 'stdio'] + REC_ICOUNT + NET_NONE),
    ('-serial mon:stdio', ['-serial', 'mon:stdio'], 'x86_64', 'record',
     ['-serial', 'mon:stdio'] + REC_ICOUNT + NET_NONE),
    ('-serial none', ['-serial', 'none', '-monitor', 'none'], 'x86_64',
     'record', ['-serial', 'none', '-monitor', 'none'] + REC_ICOUNT +
     NET_NONE),
    ('-serial file:, record', ['-serial', 'file:/abs/path/rec.txt'],
     'x86_64', 'record',
     ['-serial', 'file:/trace/outputs/record/0-rec.txt'] + REC_ICOUNT +
     NET_NONE),
    ('-serial file:, replay', ['-serial', 'file:/abs/path/rec.txt'],
     'x86_64', 'replay',
     ['-serial', 'file:outputs/replay/0-rec.txt'] + REP_ICOUNT + NET_NONE),
    ('-serial mon:file:', ['-serial', 'mon:file:b.txt'], 'x86_64', 'replay',
     ['-serial', 'mon:file:outputs/replay/0-b.txt'] + REP_ICOUNT +
     NET_NONE),
    ('-chardev file', ['-chardev', 'file,id=c0,path=logs/con.txt,append=on',
                       '-serial', 'chardev:c0'], 'x86_64', 'record',
     ['-chardev', 'file,id=c0,path=/trace/outputs/record/0-con.txt,'
      'append=on', '-serial', 'chardev:c0'] + REC_ICOUNT + NET_NONE),
    ('-chardev file, replay', ['-chardev', 'file,id=c0,path=/l/con.txt'],
     'x86_64', 'replay',
     ['-chardev', 'file,id=c0,path=outputs/replay/0-con.txt'] +
     REP_ICOUNT + NET_NONE),
    ('-chardev socket left alone',
     ['-chardev', 'socket,id=m,path=/tmp/m.sock,server=on,wait=off',
      '-mon', 'chardev=m'], 'x86_64', 'replay',
     ['-chardev', 'socket,id=m,path=/tmp/m.sock,server=on,wait=off',
      '-mon', 'chardev=m'] + REP_ICOUNT + NET_NONE),
    ('-D', ['-D', 'qemu.log', '-d', 'guest_errors'], 'x86_64', 'record',
     ['-D', '/trace/outputs/record/0-qemu.log', '-d', 'guest_errors'] +
     REC_ICOUNT + NET_NONE),
    ('-D, replay', ['-D', 'qemu.log'], 'x86_64', 'replay',
     ['-D', 'outputs/replay/0-qemu.log'] + REP_ICOUNT + NET_NONE),
    ('-debugcon file:, -monitor tcp', ['-debugcon', 'file:dbg.txt',
                                       '-monitor', 'tcp::4444,server=on'],
     'x86_64', 'replay',
     ['-debugcon', 'file:outputs/replay/0-dbg.txt',
      '-monitor', 'tcp::4444,server=on'] + REP_ICOUNT + NET_NONE),
]


@pytest.mark.parametrize('name,args,arch,mode,expected', CASES,
                         ids=[c[0] for c in CASES])
def test_rewrite(name, args, arch, mode, expected):
    assert rw(args, arch, mode).args == expected


def test_disks_and_netdevs_of_the_plan():
    p = rw(['-hda', 'a.img', '-drive', 'file=/x/b.raw,format=raw,'
            'if=virtio', '-cdrom', 'c.iso', '-nic', 'user'])
    assert [(d.source, d.format, d.media, d.iface, d.base, d.overlay)
            for d in p.disks] == [
        ('/home/u/a.img', None, 'disk', 'ide', 'disk-0.base.qcow2',
         'disk-0.qcow2'),
        ('/x/b.raw', 'raw', 'disk', 'virtio', 'disk-1.base.qcow2',
         'disk-1.qcow2'),
        ('/home/u/c.iso', None, 'cdrom', 'ide', 'disk-2.base.qcow2',
         'disk-2.qcow2')]
    assert p.netdevs == [('qrr-nic0', 'qrr-net0')]


def test_outputs_of_the_plan():
    p = rw(['-serial', 'file:/abs/path/rec.txt', '-chardev',
            'file,id=c,path=c.txt,append=on', '-D', 'q.log'])
    assert [o.as_dict() for o in p.outputs] == [
        {'n': 0, 'option': '-serial file:/abs/path/rec.txt',
         'user_path': '/abs/path/rec.txt', 'append': False,
         'record': 'outputs/record/0-rec.txt',
         'replay': 'outputs/replay/0-rec.txt'},
        {'n': 1, 'option': '-chardev file,id=c,path=c.txt,append=on',
         'user_path': '/home/u/c.txt', 'append': True,
         'record': 'outputs/record/1-c.txt',
         'replay': 'outputs/replay/1-c.txt'},
        {'n': 2, 'option': '-D q.log', 'user_path': '/home/u/q.log',
         'append': False, 'record': 'outputs/record/2-q.log',
         'replay': 'outputs/replay/2-q.log'}]
    # record and replay name the same files, in the same order
    assert [o.name for o in rw(['-serial', 'file:/abs/path/rec.txt'],
                               mode='replay').outputs] == ['0-rec.txt']


def test_no_user_output_file_on_a_replay_command_line():
    user = ['-serial', 'file:/abs/s.txt', '-chardev', 'file,id=c,path=/abs/c',
            '-D', '/abs/q.log', '-debugcon', 'file:/abs/d']
    args = ' '.join(rw(user, mode='replay').args)
    assert '/abs/' not in args


def test_notes():
    assert rw(['-snapshot', '-nic', 'user']).notes == [
        '-snapshot dropped: qrr never writes your images (it records on an '
        'overlay)']
    assert rw([]).notes == [
        'no network on the command line: added -net none (give -nic '
        'user,model=... to record a NIC)']
    assert rw(['-nodefaults']).notes == []


def test_bios_in_the_users_directory():
    local = rw(['-bios', 'b.bin'], is_file=lambda p: p == '/home/u/b.bin')
    assert local.args[:2] == ['-bios', '/home/u/b.bin']
    assert rw(['-bios', 'b.bin']).args[:2] == ['-bios', 'b.bin']


def test_commas_in_paths_are_escaped():
    p = rewrite(['-drive', 'file=a,,b.img,if=virtio'], 'x86_64', 'record',
                '/t,x', '/cwd')
    assert p.args[1].startswith('file=/t,,x/disk-0.qcow2,')
    assert p.disks[0].source == '/cwd/a,b.img'
    assert 'rrfile=/t,,x/replay.rr' in p.args[p.args.index('-icount') + 1]


def test_ide_slots_on_q35_and_pc():
    p = rw(['-M', 'q35', '-drive', 'file=a.img', '-drive', 'file=b.img',
            '-drive', 'file=c.img,if=ide,index=4'])
    devs = [p.args[i + 1] for i, a in enumerate(p.args) if a == '-device']
    assert devs[:3] == ['ide-hd,drive=qrr-blk0,bus=ide.0,unit=0',
                        'ide-hd,drive=qrr-blk1,bus=ide.1,unit=0',
                        'ide-hd,drive=qrr-blk2,bus=ide.4,unit=0']
    p = rw(['-hda', 'a.img', '-hdb', 'b.img', '-cdrom', 'c.iso'])
    devs = [p.args[i + 1] for i, a in enumerate(p.args) if a == '-device']
    assert devs == ['ide-hd,drive=qrr-blk0,bus=ide.0,unit=0',
                    'ide-hd,drive=qrr-blk1,bus=ide.0,unit=1',
                    'ide-cd,drive=qrr-blk2,bus=ide.1,unit=0']


def test_json_device_is_repointed():
    p = rw(['-drive', 'if=none,id=d0,file=/x/y.raw',
            '-device', '{"driver": "ide-hd", "drive": "d0"}'])
    dev = p.args[p.args.index('-device') + 1]
    assert json.loads(dev) == {'driver': 'ide-hd', 'drive': 'qrr-blk0'}


def test_option_strings_round_trip():
    text = 'file=a,,b.img,if=none,id=x,discard'
    pairs = split_opts(text)
    assert [p[:2] for p in pairs] == [['file', 'a,b.img'], ['if', 'none'],
                                      ['id', 'x'], ['discard', 'on']]
    assert join_opts(pairs) == text
    assert split_opts('user,id=n', 'type')[0][:2] == ['type', 'user']


NOT_KEPT = ('qrr cannot keep a copy of what the guest writes to a pipe, '
            'socket or pty, so no replay could be compared (write to a file '
            'or to stdio)')

# (user's arguments, arch, the exact error)
ERRORS = [
    (['-icount', 'shift=auto,rr=record'], 'x86_64',
     '-icount shift=auto,rr=record: qrr sets rr= itself; drop it from your '
     'command line'),
    (['-icount', 'rrfile=x.rr'], 'x86_64',
     '-icount rrfile=x.rr: qrr sets rrfile= itself; drop it from your '
     'command line'),
    (['-icount', 'rrsnapshot=s'], 'x86_64',
     '-icount rrsnapshot=s: rrsnapshot= is not supported by qrr'),
    (['-net', 'nic', '-net', 'user'], 'x86_64',
     '-net nic: the legacy -net option is not supported by qrr (use -nic '
     'TYPE,model=MODEL or -netdev TYPE,id=ID with -device)'),
    (['-netdev', 'user'], 'x86_64', '-netdev user: id= is missing'),
    (['-netdev', '{"type": '], 'x86_64', '-netdev {"type": : bad JSON'),
    (['-nic', 'user,model=help'], 'x86_64',
     '-nic user,model=help: ask QEMU itself for help'),
    (['-blockdev', 'driver=file,filename=x,node-name=n'], 'x86_64',
     '-blockdev is not supported by qrr: use -drive instead (qrr puts each '
     '-drive behind blkreplay)'),
    (['-drive', 'file=a.img,if=scsi'], 'x86_64',
     '-drive file=a.img,if=scsi: if=scsi is not supported by qrr '
     '(supported: none, virtio, ide)'),
    (['-drive', 'file=a.img,if=bogus'], 'x86_64',
     '-drive file=a.img,if=bogus: unknown interface if=bogus'),
    (['-drive', 'file=nbd://h/x,if=virtio'], 'x86_64',
     '-drive file=nbd://h/x,if=virtio: file=nbd://h/x: only local image '
     'files are supported'),
    (['-drive', 'file=a.img,driver=raw'], 'x86_64',
     '-drive file=a.img,driver=raw: driver= and file.* are not supported '
     '(give the image with file=)'),
    (['-drive', 'file=a.img,if=none'], 'x86_64',
     '-drive file=a.img,if=none: if=none needs id='),
    (['-drive', 'if=virtio'], 'x86_64', '-drive if=virtio: file= is missing'),
    (['-hda', 'a', '-drive', 'file=b,index=0'], 'x86_64',
     '-drive file=b,index=0: IDE slot bus=0,unit=0 is used twice'),
    (['-drive', 'file=a,if=ide,index=9'], 'x86_64',
     '-drive file=a,if=ide,index=9: no IDE slot bus=4,unit=1 on machine pc'),
    (['-drive', 'file=a,bus=x'], 'x86_64',
     '-drive file=a,bus=x: bus=x is not a number'),
    (['-M', 'sbsa-ref', '-drive', 'file=a.img'], 'aarch64',
     '-drive file=a.img: qrr does not know the default drive interface of '
     'machine sbsa-ref: give if=virtio, if=ide or if=none'),
    (['-M', 'virt', '-cdrom', 'a.iso'], 'aarch64',
     '-cdrom a.iso: media=cdrom needs if=ide'),
    (['-M', 'virt', '-drive', 'file=a.img,if=ide'], 'aarch64',
     '-drive file=a.img,if=ide: machine virt has no IDE bus qrr knows (use '
     'if=virtio or if=none with -device)'),
    (['-fda', 'f.img'], 'x86_64',
     '-fda is not supported by qrr: floppy disks are not supported'),
    (['-enable-kvm'], 'x86_64',
     '-enable-kvm is not supported by qrr: record/replay needs TCG'),
    (['-accel', 'kvm'], 'x86_64', '-accel kvm: record/replay needs TCG'),
    (['-M', 'pc,accel=kvm'], 'x86_64',
     '-machine accel=kvm: record/replay needs TCG'),
    (['-kernel'], 'x86_64', '-kernel needs an argument'),
    (['-serial', 'pipe:/tmp/guest'], 'x86_64',
     f'-serial pipe:/tmp/guest: {NOT_KEPT}'),
    (['-serial', 'tcp::4444,server=on,wait=off'], 'x86_64',
     f'-serial tcp::4444,server=on,wait=off: {NOT_KEPT}'),
    (['-serial', 'mon:telnet::4444,server=on'], 'x86_64',
     f'-serial mon:telnet::4444,server=on: {NOT_KEPT}'),
    (['-serial', 'unix:/tmp/s.sock,server=on'], 'x86_64',
     f'-serial unix:/tmp/s.sock,server=on: {NOT_KEPT}'),
    (['-serial', 'pty'], 'x86_64', f'-serial pty: {NOT_KEPT}'),
    (['-chardev', 'pipe,id=p,path=/tmp/p'], 'x86_64',
     f'-chardev pipe,id=p,path=/tmp/p: {NOT_KEPT}'),
    (['-chardev', 'file,id=c'], 'x86_64',
     '-chardev file,id=c: path= is missing'),
    (['-D', '/tmp/q-%d.log'], 'x86_64',
     '-D /tmp/q-%d.log: a log file name with %d (the process id) is not '
     'supported by qrr'),
]


@pytest.mark.parametrize('args,arch,message', ERRORS,
                         ids=[' '.join(e[0]) for e in ERRORS])
def test_rewrite_errors(args, arch, message):
    with pytest.raises(QrrError, match=f'^{re.escape(message)}$'):
        rw(args, arch)
