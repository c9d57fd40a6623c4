# Multi-vCPU machines: record then replay the Linux guest with -smp N.
# The guest runs one shell per vCPU, each adding 1 to a shared counter
# file without locking (qrr.race=): updates get lost, and how many depends
# on how the vCPUs interleaved, so the counter differs between recordings
# and only a replay that reproduces the interleaving prints the recorded
# one.  The line typed on the console differs between record and replay.
#
#   QRR_REPEAT=N          N record/replay pairs per configuration
#   QRR_SMP_MACHINES=...  machines (default: all four of qrrtest)
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import hashlib
import json
import os
import random
import re

import pytest

import qrrtest as q
from test_devices import check_disk_and_net, disk, field, server  # noqa

REPEAT = int(os.environ.get('QRR_REPEAT', '1'))
MACHINES = os.environ.get('QRR_SMP_MACHINES',
                          'pc q35 virt-a57 virt-max').split()
RACE = 400                      # increments per shell


def smp_args(machine, ncpus, append=''):
    return q.linux_args(machine, f'qrr.race={RACE} {append}') + \
        ['-smp', str(ncpus)]


def race_result(out):
    m = re.search(rb'^race: counter (\d+) of (\d+)', out, re.M)
    assert m, 'the guest printed no race result'
    return int(m.group(1)), int(m.group(2))


def sched_count(log):
    """vCPU switches in @log, by scripts/replay-dump.py --stats."""
    import json
    import subprocess
    r = subprocess.run(['python3', str(q.TOP / 'scripts' / 'replay-dump.py'),
                        '--stats', '--json', str(log)],
                       capture_output=True, check=True)
    kinds = json.loads(r.stdout).get('kinds', {})
    return kinds.get('sched', {}).get('events', 0)


@pytest.mark.parametrize('run', range(REPEAT))
@pytest.mark.parametrize('ncpus', [2, 4])
@pytest.mark.parametrize('machine', MACHINES)
def test_smp_boot_replays_identically(tmp_path, machine, ncpus, run):
    arch = q.MACHINES[machine][0]
    args = smp_args(machine, ncpus, 'qrr.prompt=1')
    log = tmp_path / 'smp.rr'

    rec, rep = q.record_replay(arch, args, log)

    q.assert_same_output(rec, rep)
    out = rep.guest_output()
    assert field(out, 'nproc') == str(ncpus), rep.describe()
    assert race_result(out)[1] == ncpus * RACE
    assert b'line: [recorded line]' in out, rep.describe()
    assert b'replayed line' not in out
    assert re.search(rb'replay reached (the end of the log|the recorded '
                     rb'shutdown)', rep.err), rep.describe()
    assert b'error' not in rep.err.lower(), rep.describe()
    # the vCPUs took turns, and the log says where
    assert sched_count(log) > 0


def test_smp_race_differs_between_recordings(tmp_path):
    """The racy outcome is not fixed: two recordings differ (with chaos
    mode, which varies the schedule from its seed), and each replay
    prints its own recording's outcome."""
    machine = MACHINES[0]
    arch = q.MACHINES[machine][0]
    args = smp_args(machine, 2)
    outcomes = []
    for seed in (1, 2, 3):
        log = tmp_path / f'race{seed}.rr'
        rec = q.run(arch, args + q.icount_opt('record', log,
                                              f'rrchaos={seed}'))
        assert rec.rc == 0, rec.describe()
        rep = q.run(arch, args + q.icount_opt('replay', log))
        assert rep.rc == 0, rep.describe()
        q.assert_same_output(rec, rep)
        outcomes.append(race_result(rec.guest_output())[0])
        if len(set(outcomes)) > 1:
            break
    assert len(set(outcomes)) > 1, f'every recording counted {outcomes[0]}'


@pytest.mark.parametrize('machine,disk_kind,nic',
                         [('q35', 'virtio-blk-pci', 'virtio-net-pci'),
                          ('virt-max', 'virtio-blk-pci', 'virtio-net-pci')])
def test_smp_disk_and_net_replay(tmp_path, disk, server, machine, disk_kind,
                                 nic):
    rep = check_disk_and_net(tmp_path, disk, server, machine, disk_kind, nic,
                             'on two vCPUs', ['-smp', '2'])
    assert b'Brought up 1 node, 2 CPUs' in rep.out, rep.describe()


def refused(arch, args, tmp_path, mode='record', extra=''):
    log = tmp_path / 'refused.rr'
    if mode == 'replay':
        rec = q.run(arch, q.linux_args('pc') + q.icount_opt('record', log))
        assert rec.rc == 0, rec.describe()
    r = q.run(arch, args + q.icount_opt(mode, log, extra), timeout=60)
    assert r.rc not in (None, 0), r.describe()
    assert b'QRR-GUEST begin' not in r.out
    lines = r.err.decode().strip().splitlines()
    assert len(lines) == 1, r.describe()
    return lines[0]


def test_vcpu_hotplug_is_refused(tmp_path):
    err = refused('x86_64', q.linux_args('pc') + ['-smp', '2,maxcpus=4'],
                  tmp_path)
    assert 'does not support vCPU hotplug' in err
    assert 'maxcpus=4' in err


def test_mttcg_is_refused(tmp_path):
    err = refused('aarch64', q.linux_args('virt-a57') +
                  ['-smp', '2', '-accel', 'tcg,thread=multi'], tmp_path)
    assert 'MTTCG' in err


def test_chaos_in_replay_is_refused(tmp_path):
    err = refused('x86_64', q.linux_args('pc'), tmp_path, mode='replay',
                  extra='rrchaos=5')
    assert 'rrchaos' in err


def test_smp_topology_forms(tmp_path):
    """sockets/cores/threads give the same vCPU count as -smp N."""
    args = q.linux_args('pc', f'qrr.race={RACE}') + \
        ['-smp', 'sockets=1,cores=2,threads=2']
    rec, rep = q.record_replay('x86_64', args, tmp_path / 'topo.rr',
                               typed=(None, None))
    q.assert_same_output(rec, rep)
    assert field(rep.guest_output(), 'nproc') == '4'


@pytest.mark.parametrize('vcpu,why', [(3, 'which this machine lacks'),
                                      (0, 'which is already running'),
                                      (64, 'which is not one of the 64')])
def test_crafted_sched_event_is_refused(tmp_path, vcpu, why):
    """A vCPU switch to a vCPU that the machine lacks, or to the one
    that runs: a one-line error naming the event and its icount."""
    import craftlog
    args = q.linux_args('pc') + ['-smp', '2']
    log = tmp_path / 'sched.rr'
    rec = q.run('x86_64', args + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()
    c = craftlog.Log(log)
    # the first switch, from vCPU 0 (which runs first) to vCPU 1
    ev = c.find('sched')[0]
    assert ev.args[0] == 1
    ev.args[0] = vcpu
    bad = tmp_path / 'bad.rr'
    c.write(bad)
    r = q.run('x86_64', args + q.icount_opt('replay', bad), timeout=120)
    assert r.rc not in (None, 0), r.describe()
    err = r.err.decode(errors='replace')
    assert 'Assertion' not in err, r.describe()
    last = err.strip().splitlines()[-1]
    assert re.search(r'record/replay: the log.s (vCPU switch|sched event) '
                     rf'at icount {ev.icount} .*{why}', last), last


def test_qrr_tool_with_smp(tmp_path):
    """scripts/qrr records and replays -smp 2; info and report show the
    vCPU count and what each vCPU executed."""
    import qrrcmd
    trace = tmp_path / 'trace'
    args = smp_args('pc', 2)
    r = qrrcmd.run(['record', '-o', trace, '--qemu-dir', q.QEMU_BUILD, '--',
                    'qemu-system-x86_64'] + args, timeout=300)
    assert r.rc == 0, 'qrr record failed: ' + r.describe()
    r = qrrcmd.run(['replay', trace, '--qemu-dir', q.QEMU_BUILD],
                   timeout=300)
    assert r.rc == 0, 'qrr replay failed: ' + r.describe()
    assert 'the output matches the recording' in r.err.decode()
    r = qrrcmd.run(['info', trace], timeout=120)
    out = r.out.decode()
    assert re.search(r'^vcpus: +2$', out, re.M), out
    rows = re.findall(r'^([01]) +(\d+) +(\d+)$', out, re.M)
    assert [v for v, _, _ in rows] == ['0', '1'], out
    assert all(int(n) > 0 and int(t) > 0 for _, n, t in rows), out
    page = tmp_path / 'r.html'
    r = qrrcmd.run(['report', trace, '-o', page], timeout=120)
    assert r.rc == 0, r.describe()
    assert '<h2>vCPUs</h2>' in page.read_text()


# ---- time travel on a multi-vCPU replay ----

RAM_BASE = {'x86_64': 0, 'aarch64': 0x40000000}


def smp_state(r, tmp_path, arch):
    """A digest of the paused machine: its RAM and every vCPU's registers."""
    dump = tmp_path / 'ram.bin'
    r.qmp.ok('pmemsave', val=RAM_BASE[arch], size=256 << 20,
             filename=str(dump))
    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    dump.unlink()
    regs = r.qmp.ok('human-monitor-command',
                    **{'command-line': 'info registers -a'})
    return digest, regs


@pytest.mark.parametrize('machine', ['pc', 'virt-max'])
def test_smp_seek_lands_exactly(tmp_path, machine):
    """Seeks back and forth on a 2-vCPU replay land on the state that a
    replay which only ever went forward has there: the RAM and the
    registers of both vCPUs.  Then the replay runs on to the recording's
    output."""
    from test_timetravel import Replay, log_end
    arch = q.MACHINES[machine][0]
    args = smp_args(machine, 2)
    log = tmp_path / 'smp.rr'
    rec = q.run(arch, args + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()

    a = Replay(tmp_path, arch, args, log)
    try:
        end = log_end(a)
        rng = random.Random(f'{machine}-smp-seek')
        targets = [rng.randrange(end // 4, end) for _ in range(5)]
        travelled = {}
        for t in targets:           # random order: back and forth
            assert a.qmp.seek(t) == t
            travelled[t] = smp_state(a, tmp_path, arch)
        assert a.qmp.ok('query-replay-snapshots')['restores'] > 0
        text = a.qmp.ok('human-monitor-command',
                        **{'command-line': 'info replay'})
        counts = [int(n) for n in re.findall(
            r'^vCPU \d: instruction count = (\d+)', text, re.M)]
        assert len(counts) == 2 and sum(counts) == targets[-1], text
        assert a.qmp.seek(0) == 0
        before = a.serial.stat().st_size if a.serial.exists() else 0
        a.qmp.ok('cont')
        assert a.wait() == 0, a.stderr()
        assert a.serial.read_bytes()[before:] == rec.guest_output()
    finally:
        a.quit()

    b_dir = tmp_path / 'forward'
    b_dir.mkdir()
    b = Replay(b_dir, arch, args, log)
    try:
        for t in sorted(targets):   # forward only: no snapshot restored
            assert b.qmp.seek(t) == t
            assert smp_state(b, b_dir, arch) == travelled[t], \
                f'the state at icount {t} differs after time travel'
        assert b.qmp.ok('query-replay-snapshots')['restores'] == 0
    finally:
        b.quit()


# a system call that every shell of the racy workload makes on its own
# vCPU (it opens the counter file twice per increment)
SMP_SYSCALL = {'x86_64': '__x64_sys_openat', 'aarch64': '__arm64_sys_openat'}


@pytest.mark.parametrize('machine', ['pc', 'virt-max'])
def test_smp_gdb_threads_and_reverse(tmp_path, machine):
    """gdb on a 2-vCPU replay: one thread per vCPU; a breakpoint on a
    system call hit on both vCPUs; reverse-continue lands on each earlier
    hit with its PC, icount and thread; reverse-stepi on a thread that did
    not run last steps back one instruction of that thread's own."""
    from test_timetravel import Replay
    arch = q.MACHINES[machine][0]
    func_name = SMP_SYSCALL[arch]
    args = smp_args(machine, 2, f'nokaslr qrr.syms={func_name}')
    log = tmp_path / 'smp.rr'
    rec = q.run(arch, args + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()
    m = re.search(rb'^sym: ([0-9a-f]+) ' + func_name.encode(), rec.out, re.M)
    assert m, 'the guest printed no address for ' + func_name
    func = int(m.group(1), 16)
    r = Replay(tmp_path, arch, args, log)
    try:
        n = 40
        steps = [f'!hbreak *{func:#x}'] + ['continue'] * n + \
            ['reverse-continue'] * 3 + ['info threads', '!delete']
        res = r.gdb(arch, None, steps, timeout=900)
        dump = json.dumps(res, indent=1)
        hits = res[:n]
        assert all(s['pc'] == func for s in hits), dump
        assert len({s['icount'] for s in hits}) == n, dump
        assert {s['thread'] for s in hits} == {1, 2}, \
            'the breakpoint was not hit on both vCPUs: ' + dump
        back = res[n:n + 3]
        want = list(reversed(hits[-4:-1]))
        assert [(s['pc'], s['icount'], s['thread']) for s in back] == \
            [(s['pc'], s['icount'], s['thread']) for s in want], dump
        assert re.search(r'Thread 1\.2|Thread 2 ', res[n + 3]['text']), dump
        # on the thread that did not hit last: one of its own instructions
        # back, whatever the other vCPU ran since (info replay counts each
        # vCPU's instructions)
        other = 3 - back[-1]['thread']
        res2 = r.gdb(arch, None, [f'!thread {other}', 'monitor info replay',
                                  'reverse-stepi', 'monitor info replay'],
                     timeout=300)
        dump = json.dumps(res2, indent=1)
        here, rev, after = res2

        def own(s):
            return int(re.search(rf'vCPU {other - 1}: instruction count = '
                                 rf'(\d+)', s['text']).group(1))
        assert here['thread'] == rev['thread'] == other, dump
        assert own(after) == own(here) - 1, dump
        assert rev['icount'] < here['icount'], dump
        assert rev['pc'] != here['pc'], dump
    finally:
        r.quit()


def test_qrr_record_says_why_qemu_refused(tmp_path):
    """A command line that QEMU refuses before it writes the log: qrr
    says so, with QEMU's reason, not that the log is corrupt."""
    import qrrcmd
    r = qrrcmd.run(['record', '-o', tmp_path / 'trace', '--qemu-dir',
                    q.QEMU_BUILD, '--', 'qemu-system-x86_64'] +
                   q.linux_args('pc') + ['-smp', '2,maxcpus=4'],
                   timeout=120)
    assert r.rc == 1, r.describe()
    err = r.err.decode()
    assert re.search(r'QEMU refused to start \(exit status 1\): .*record/'
                     r'replay does not support vCPU hotplug', err), err
    assert 'corrupt' not in err, err


def test_smp_divergence_names_the_vcpu(tmp_path):
    """A register of the vCPU that does not take a sync point's event,
    flipped right before it: the sync point holds every vCPU's registers,
    so it sees the flip at once and names that vCPU.  gdb stops the
    replay at the icount of the first sync point at or after 400M
    instructions (monitor replay_break; the event is not taken yet),
    selects the other vCPU's thread and flips bit 40 of its x2."""
    import gdbperturb as gp
    args = smp_args('virt-a57', 2)
    log = tmp_path / 'div.rr'
    rec = q.run('aarch64', args + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()
    sync, seq, taker = next(p for p in gp.sync_points(log)
                            if p[0] >= 400_000_000)
    other = 1 - taker
    rep = gp.flip_register(tmp_path, 'aarch64', args, log, sync, 'x2', 40,
                           thread=other + 1)
    assert rep.result.rc == 1, rep.describe()
    assert rep.stopped_at == sync and rep.thread == other + 1, \
        rep.describe()
    err = rep.result.err.decode()
    m = re.search(r'replay diverged at icount (\d+) \(sync point (\d+) on '
                  r'vCPU (\d), after \w+\): vCPU (\d) register 2: recorded '
                  r'(0x[0-9a-f]+) replayed (0x[0-9a-f]+)', err)
    assert m, rep.describe()
    assert int(m.group(1)) == sync and int(m.group(2)) == seq, err
    assert int(m.group(3)) == taker and int(m.group(4)) == other, err
    assert int(m.group(5), 16) ^ int(m.group(6), 16) == 1 << 40, err
    assert (int(m.group(5), 16), int(m.group(6), 16)) == \
        (rep.before, rep.after), rep.describe()


@pytest.mark.parametrize('ncpus', [8])
def test_smp_gicv3_and_eight_vcpus(tmp_path, ncpus):
    """AArch64 virt with a GICv3 (SGIs through the redistributors and
    ICC_SGI1R, not the GICv2 distributor) and 8 vCPUs brought up by PSCI
    CPU_ON: the replay matches."""
    args = smp_args('virt-max', ncpus) + ['-M', 'virt,gic-version=3']
    rec, rep = q.record_replay('aarch64', args, tmp_path / 'gic3.rr',
                               typed=(None, None))
    q.assert_same_output(rec, rep)
    out = rep.guest_output()
    assert field(out, 'nproc') == str(ncpus), rep.describe()
    assert b'GICv3' in rep.out, rep.describe()
