# 32-bit guests: Debian's i386 kernel (linux-image-686) on pc and q35 in
# qemu-system-x86_64, and Debian's ARMv7 kernel (armhf, linux-image-armmp)
# on a cortex-a15 with virt,highmem=off in qemu-system-aarch64.  Each boots
# the test guest, records and replays with the live input changed during
# the replay (the line typed on the console; the file served over HTTP,
# with a disk behind blkreplay), and is reverse-debugged with gdb-multiarch
# as the 32-bit machine it is: stepi then reverse-stepi retrace, and
# reverse-continue lands on the earlier hits of a kernel breakpoint.  Two
# vCPUs racing replay their recorded outcome; scripts/qrr records and
# replays the user's command line.
#
#   QRR_32BIT_MACHINES=...   machines (default: pc-i386 virt-a15, and
#                            q35-i386 with QRR_FULL=1)
#   QRR_FULL=1               also the -smp 2 race, reverse-continue and
#                            the qrr tool (make check-full); make check
#                            leaves them out to stay in CI's time budget
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import random
import re
import subprocess

import pytest

import qrrcmd
import qrrtest as q
import test_timetravel as tt
from test_devices import check_disk_and_net, disk, field, server  # noqa
from test_smp import RACE, race_result, sched_count, smp_args

FULL = os.environ.get('QRR_FULL') == '1'
MACHINES = os.environ.get('QRR_32BIT_MACHINES',
                          'pc-i386 q35-i386 virt-a15' if FULL else
                          'pc-i386 virt-a15').split()
full_only = pytest.mark.skipif(not FULL, reason='QRR_FULL=1 (make '
                               'check-full) runs it')
# the reverse-debugging tests: one machine per architecture
GDB_MACHINES = [m for m in MACHINES if m in ('pc-i386', 'virt-a15')]

# machine -> (disk kind, NIC) of test_devices' device_args()
DEVICES = {
    'pc-i386': ('ide-hd', 'e1000'),
    'q35-i386': ('virtio-blk-pci', 'e1000e'),
    'virt-a15': ('virtio-blk-device', 'virtio-net-pci'),
}

# A system call that the guest's /init makes a few dozen times (its
# busybox runs an applet per command); neither kernel lists data symbols
# in /proc/kallsyms (no CONFIG_KALLSYMS_ALL), so no watchpoint here.
SYSCALL = {
    'i386': '__ia32_sys_execve',
    'arm': 'sys_execve',
}

# gdb-multiarch's view of each guest: qemu-system-x86_64 describes an
# x86-64's registers, which scripts/gdb-i386-on-x86_64.xml shows gdb as an
# i386's (only the 'g' and 'G' packets then); a cortex-a15 is described
# as the ARM it is.  Without an ELF file gdb takes ARM code for the old
# APCS, whose frames it finds through r11: where r11 holds no frame
# pointer, gdb's stepi failed before it stepped ("Cannot access memory at
# address 0x2fffff8", 3 of 40 random places of a boot).  The armhf kernel
# is AAPCS (EABI), which has gdb find no frame there.
GDB_PRE = {
    'i386': ['-ex', 'set architecture i386',
             '-ex', f'set tdesc filename {tt.I386_ON_X86_64}',
             '-ex', 'set remote fetch-register-packet off',
             '-ex', 'set remote set-register-packet off'],
    'arm': ['-ex', 'set architecture arm', '-ex', 'set arm abi AAPCS'],
}


def arch_of(machine):
    return q.MACHINES[machine][0]


def guest_present(machine):
    return (q.qemu_binary(arch_of(machine)).exists() and
            q.guest_files(q.machine_guest(machine))[0].exists())


def need_guest(machine):
    if not guest_present(machine):
        pytest.skip(f'no {q.machine_guest(machine)} guest '
                    '(tests/guest/build-guest.sh)')


class Replay32(tt.Replay):
    """test_timetravel's paused replay, debugged as a 32-bit machine."""

    def gdb32(self, guest, steps, timeout=300):
        out = self.tmp / 'gdb.json'
        script = self.tmp / 'driver.py'
        script.write_text(tt.GDB_DRIVER)
        if out.exists():
            out.unlink()
        cmd = [tt.GDB, '-nx', '-batch'] + GDB_PRE[guest] + [
            '-ex', f'target remote {self.gdb_path}', '-x', str(script)]
        env = dict(os.environ, QRR_TT_STEPS=json.dumps(steps),
                   QRR_TT_OUT=str(out))
        r = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
        self.gdb_output = r.stdout.decode(errors='replace')
        assert out.exists(), ('gdb failed:\n' + self.gdb_output +
                              r.stderr.decode() + '\n' + self.stderr())
        return json.loads(out.read_text())


@pytest.mark.parametrize('machine', MACHINES)
def test_boot_and_prompt_replay(tmp_path, machine):
    """Boot to the power-off; the replay prints what the recording did,
    the urandom and date lines and the line typed during the recording
    (the replay is typed another)."""
    need_guest(machine)
    arch = arch_of(machine)
    args = q.linux_args(machine, 'qrr.prompt=1')
    rec, rep = q.record_replay(arch, args, tmp_path / 'boot.rr')
    q.assert_same_output(rec, rep)
    out = rep.guest_output()
    for line in (b'urandom: ', b'date: ', b'line: [recorded line]'):
        assert line in out, rep.describe()
    assert b'replayed line' not in out, rep.describe()
    # the guest is the 32-bit one
    want = {'x86_64': b'686', 'aarch64': b'armmp'}[arch]
    assert want in rec.out, rec.describe()


@pytest.mark.parametrize('machine', MACHINES)
def test_disk_and_net_replay(tmp_path, disk, server, machine):
    """A disk behind blkreplay and a NIC behind filter-replay; the file
    served over HTTP changes before the replay, which prints the
    recorded one."""
    need_guest(machine)
    disk_kind, nic = DEVICES[machine]
    check_disk_and_net(tmp_path, disk, server, machine, disk_kind, nic,
                       f'32-bit {random.random()}')


@full_only
@pytest.mark.parametrize('machine', GDB_MACHINES)
def test_smp_race_replay(tmp_path, machine):
    """Two vCPUs racing on a shared counter (test_smp's workload): the
    replay prints the recorded outcome and typed line."""
    need_guest(machine)
    arch = arch_of(machine)
    log = tmp_path / 'smp.rr'
    rec, rep = q.record_replay(arch, smp_args(machine, 2, 'qrr.prompt=1'),
                               log)
    q.assert_same_output(rec, rep)
    out = rep.guest_output()
    assert field(out, 'nproc') == '2', rep.describe()
    assert race_result(out)[1] == 2 * RACE
    assert b'line: [recorded line]' in out, rep.describe()
    assert sched_count(log) > 0


# Where a system call enters the kernel: SYSENTER (from the vDSO) or int
# $0x80 on i386; on ARM, after the vector page, the SVC handler, or on a
# CPU with a Spectre-BHB mitigation (the cortex-a15: BPIALL) its variant,
# which joins vector_swi after its entry.  Those the kernel does not have
# are left out.
SYSCALL_ENTRY = {
    'i386': ('entry_SYSENTER_32', 'entry_INT80_32'),
    'arm': ('vector_swi', 'vector_bhb_bpiall_swi', 'vector_bhb_loop8_swi'),
}
# Both kernels split the address space 3G/1G: user space is below this.
PAGE_OFFSET = 0xc0000000


def kernel_record(tmp_path, machine):
    """Record the guest with the addresses of SYSCALL and SYSCALL_ENTRY's
    symbols printed."""
    guest = q.machine_guest(machine)
    arch = arch_of(machine)
    syms = ','.join((SYSCALL[guest],) + SYSCALL_ENTRY[guest])
    args = q.linux_args(machine, f'nokaslr qrr.syms={syms}')
    log = tmp_path / 'boot.rr'
    rec = q.run(arch, args + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()
    return args, log, rec


@pytest.mark.parametrize('machine', GDB_MACHINES)
def test_gdb_stepi_and_reverse(tmp_path, machine):
    """At a few places of the boot, seeked to: 10 stepi, then 10
    reverse-stepi retrace them (PC and instruction count); gdb sees the
    32-bit machine (4-byte PC, the 32-bit registers).  From the start, the
    replay then goes on to the recorded output."""
    need_guest(machine)
    guest = q.machine_guest(machine)
    arch = arch_of(machine)
    args, log, rec = kernel_record(tmp_path, machine)
    recorded = rec.guest_output()
    r = Replay32(tmp_path, arch, args, log)
    try:
        end = tt.log_end(r)
        for t in (end // 4, end // 2 + 12345, end * 3 // 4 + 1):
            assert r.qmp.seek(t) == t
            res = r.gdb32(guest, ['info registers pc', 'p sizeof($pc)'] +
                          ['stepi'] * 10 + ['reverse-stepi'] * 10)
            assert '= 4' in res[1]['text'], json.dumps(res[:2], indent=1)
            assert all(s['pc'] < 1 << 32 for s in res)
            fwd = [(s['pc'], s['icount']) for s in res[1:12]]
            back = [(s['pc'], s['icount']) for s in res[11:]]
            assert back == list(reversed(fwd)), json.dumps(res, indent=1)
            assert fwd[-1][1] > fwd[0][1], json.dumps(res, indent=1)
        regs = r.gdb32(guest, ['info registers'])[0]['text']
        want = {'i386': ('eax', 'eip', 'eflags'),
                'arm': ('r0', 'sp', 'cpsr')}[guest]
        names = {line.split()[0] for line in regs.splitlines() if line}
        assert set(want) <= names, regs
        assert not names & {'rax', 'rip', 'x0', 'pstate'}, regs
        assert r.qmp.seek(0) == 0
        before = r.serial.stat().st_size
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        assert r.serial.read_bytes()[before:] == recorded
    finally:
        r.quit()


@full_only
@pytest.mark.parametrize('machine', GDB_MACHINES)
def test_gdb_reverse_continue(tmp_path, machine):
    """A breakpoint on a system call: reverse-continue lands on each
    earlier hit with the forward run's PC and instruction count; stepi
    and reverse-stepi from a hit retrace."""
    need_guest(machine)
    guest = q.machine_guest(machine)
    arch = arch_of(machine)
    args, log, rec = kernel_record(tmp_path, machine)
    func = tt.kernel_symbol(rec.out, SYSCALL[guest])
    r = Replay32(tmp_path, arch, args, log)
    try:
        steps = [f'!hbreak *{func:#x}'] + ['continue'] * 4 + \
            ['reverse-continue'] * 3 + ['!delete'] + ['stepi'] * 5 + \
            ['reverse-stepi'] * 5
        res = r.gdb32(guest, steps, timeout=600)
        hits = res[:4]
        assert all(s['pc'] == func for s in hits), json.dumps(res, indent=1)
        assert len({s['icount'] for s in hits}) == 4, \
            json.dumps(res, indent=1)
        back = res[4:7]
        assert [(s['pc'], s['icount']) for s in back] == \
            [(s['pc'], s['icount']) for s in reversed(hits[:3])], \
            json.dumps(res, indent=1)
        fwd = [(s['pc'], s['icount']) for s in res[6:12]]
        rev = [(s['pc'], s['icount']) for s in res[11:]]
        assert rev == list(reversed(fwd)), json.dumps(res, indent=1)
        print(f'{machine}: {SYSCALL[guest]} hits at '
              f'{[s["icount"] for s in hits]}')
    finally:
        r.quit()


# The user's own command line for each 32-bit guest, through scripts/qrr:
# the machine's defaults, a virtio disk and a NIC given the short way.
USER_MACHINES = {
    'pc-i386': ['-m', '256', '-nic', 'user,model=e1000'],
    'virt-a15': ['-M', 'virt,highmem=off', '-cpu', 'cortex-a15', '-m', '256',
                 '-nic', 'user,model=virtio-net-pci'],
}


@full_only
@pytest.mark.parametrize('machine', [m for m in MACHINES
                                     if m in USER_MACHINES])
def test_qrr_tool_record_replay(tmp_path, disk, server, machine):
    """qrr record and qrr replay of the 32-bit guests, with a typed line
    and the served file changed for the replay."""
    need_guest(machine)
    arch = arch_of(machine)
    console = q.MACHINES[machine][2]
    kernel, initrd = q.guest_files(q.machine_guest(machine))
    image, md5_first_mib = disk
    args = USER_MACHINES[machine] + [
        '-kernel', str(kernel), '-initrd', str(initrd),
        '-append', f'console={console} panic=-1 qrr.prompt=1 '
        f'qrr.disk=/dev/vda qrr.net={server.url}',
        '-drive', f'file={image},if=virtio', '-nographic']
    trace = tmp_path / 'trace'
    recorded_md5 = server.set(f'recorded by qrr {random.random()}\n')
    rec = qrrcmd.run(['record', '-o', trace, '--qemu-dir', q.QEMU_BUILD,
                      '--', f'qemu-system-{arch}'] + args,
                     typed='recorded line', cwd=tmp_path)
    assert rec.rc == 0, 'qrr record failed: ' + rec.describe()
    server.set('the file changed after the recording\n')
    rep = qrrcmd.run(['replay', trace, '--qemu-dir', q.QEMU_BUILD],
                     typed='replayed line', cwd=tmp_path)
    assert rep.rc == 0, 'qrr replay failed: ' + rep.describe()
    q.assert_same_output(rec, rep)
    out = rep.guest_output()
    assert b'line: [recorded line]' in out, rep.describe()
    assert field(out, 'disk-md5') == md5_first_mib, rep.describe()
    assert field(out, 'http') == recorded_md5, rep.describe()


@pytest.mark.parametrize('machine', GDB_MACHINES)
def test_gdb_reverse_stepi_out_of_a_system_call(tmp_path, machine):
    """From the kernel's system call entry, reverse-stepi goes back into
    the user code that made the call (the instruction that entered the
    kernel counted once) and on; stepi retraces it."""
    need_guest(machine)
    guest = q.machine_guest(machine)
    arch = arch_of(machine)
    args, log, rec = kernel_record(tmp_path, machine)
    entries = set()
    for sym in SYSCALL_ENTRY[guest]:
        m = re.search(rb'^sym: ([0-9a-f]+) ' + sym.encode() + rb'\r?$',
                      rec.out, re.M)
        if m:
            entries.add(int(m.group(1), 16))
    assert entries, rec.describe()
    r = Replay32(tmp_path, arch, args, log)
    try:
        n = 12
        steps = [f'!hbreak *{e:#x}' for e in sorted(entries)] + \
            ['continue'] * 3 + ['!delete'] + ['reverse-stepi'] * n + \
            ['stepi'] * n
        res = r.gdb32(guest, steps)
        where = json.dumps(res, indent=1)
        assert all(s['pc'] in entries for s in res[:3]), where
        back = res[2:n + 3]
        fwd = res[n + 2:]
        assert [(s['pc'], s['icount']) for s in back] == \
            [(s['pc'], s['icount']) for s in reversed(fwd)], where
        i = next((i for i, s in enumerate(back) if s['pc'] < PAGE_OFFSET),
                 None)
        assert i, where
        # the instruction that entered the kernel (sysenter, int $0x80,
        # svc) ran and was counted; each step back one instruction
        assert back[i - 1]['icount'] - back[i]['icount'] == 1, where
        assert all(0 <= a['icount'] - b['icount'] <= 1
                   for a, b in zip(back, back[1:])), where
        print(f'{machine}: user pc {back[i]["pc"]:#x} at icount '
              f'{back[i]["icount"]}, kernel entry {back[i - 1]["pc"]:#x}')
    finally:
        r.quit()
