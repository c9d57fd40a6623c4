# Reset, reboot and suspend replay exactly.  The Linux test guest runs
# without -no-reboot; each test records it while something resets or
# suspends the machine, then replays the log with other live input (a
# system_reset or system_wakeup from QMP at another moment, or none), and
# compares the guest's serial output and QEMU's exit status:
#  - system_reset from QMP during the recording (pc, q35, virt): the replay
#    resets at the recorded instruction count, and a system_reset sent to
#    the replay is refused;
#  - the guest's own reboot (reboot -f, qrr.reboot=DEV): the first boot
#    writes a mark on a disk behind blkreplay and reboots, the second boot
#    finds the mark and goes on to the end;
#  - S3 suspend (qrr.suspend=1, echo mem > /sys/power/state; pc, whose
#    ACPI offers S3 by default; q35 see below) and system_wakeup after the
#    SUSPEND event: the replay wakes the guest at the recorded moment by
#    itself, without a system_wakeup and whatever system_wakeup it gets.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import subprocess
import time

import pytest

import qrrtest as q
from qrrlive import LiveQemu

WAIT = 300          # seconds for the guest to reach a line
DISK_SIZE = 1 << 20


def args(machine, append, extra=()):
    """The test guest's arguments, without -no-reboot."""
    return [a for a in q.linux_args(machine, append) if a != '-no-reboot'] \
        + list(extra)


def disk_args(image):
    """A raw disk behind blkreplay, on virtio-blk-pci (/dev/vda)."""
    return ['-drive', f'file={image},if=none,id=img-direct,format=raw',
            '-drive', 'driver=blkreplay,if=none,image=img-direct,'
            'id=img-blkreplay',
            '-device', 'virtio-blk-pci,drive=img-blkreplay']


def blank_disk(path):
    path.write_bytes(bytes(DISK_SIZE))
    return path


class Guest(LiveQemu):
    """QEMU running the test guest, serial on stdout, with a QMP socket."""

    def __init__(self, tmp_path, machine, mode, log, qargs):
        arch = q.MACHINES[machine][0]
        super().__init__([str(q.qemu_binary(arch))] + qargs +
                         q.icount_opt(mode, log),
                         tmp_path / f'qmp-{mode}.sock', qmp_timeout=WAIT)

    def wait_for(self, what, count=1):
        """Wait until the guest printed @what @count times."""
        deadline = time.monotonic() + WAIT
        while bytes(self.out).count(what) < count:
            assert self.proc.poll() is None, \
                f'QEMU exited before {what!r}: ' + self.describe()
            assert time.monotonic() < deadline, \
                f'the guest did not print {what!r}: ' + self.describe()
            time.sleep(0.01)

    def finish(self, timeout=WAIT):
        return super().finish(timeout)


def try_cmd(g, name):
    """Send @name to a replay; its answer, or None if QEMU went away."""
    try:
        return g.qmp.cmd(name)
    except (OSError, EOFError):
        return None


def checkpoints(log, name):
    """The instruction counts of the log's checkpoints called @name
    (replay-dump.py --json)."""
    r = subprocess.run([str(q.TOP / 'scripts' / 'replay-dump.py'), '--json',
                        str(log)], capture_output=True, text=True, check=True)
    return [e['icount'] for e in map(json.loads, r.stdout.splitlines())
            if e['kind'] == 'checkpoint' and
            e['names'].get('checkpoint') == name]


def resets_refused(g, after):
    """Send system_reset to the replay in @g (started with -S) as it
    starts, once it printed @after, and stopped and running again at the
    break that @g.brk names; the answers."""
    answers = []
    g.qmp.ok('cont')
    answers.append(try_cmd(g, 'system_reset'))
    g.wait_for(after)
    answers.append(try_cmd(g, 'system_reset'))
    g.qmp.ok('replay-break', icount=g.brk)
    g.qmp.wait_event('STOP')
    answers.append(try_cmd(g, 'system_reset'))
    g.qmp.ok('cont')
    answers.append(try_cmd(g, 'system_reset'))
    return answers


def check_refused(answers, rep):
    for a in answers:
        assert a is not None and 'error' in a and \
            'replay' in a['error']['desc'], (answers, rep.describe())


def check_replay(rec, rep):
    assert rep.rc == rec.rc == 0, 'replay failed: ' + rep.describe()
    q.assert_same_output(rec, rep)
    assert b'diverge' not in rep.err, rep.describe()


# --- system_reset from the monitor -------------------------------------

RESET_MACHINES = ['pc', 'q35', 'virt-a57']
RESET_APPEND = 'qrr.sleep=4'


@pytest.mark.parametrize('machine', RESET_MACHINES)
def test_qmp_system_reset(tmp_path, machine):
    log = tmp_path / 'reset.rr'
    qargs = args(machine, RESET_APPEND)
    g = Guest(tmp_path, machine, 'record', log, qargs)
    try:
        g.wait_for(b'tick 2 ')
        g.qmp.ok('system_reset')
        g.qmp.wait_event('RESET')
    finally:
        rec = g.finish()
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    out = rec.guest_output()
    assert out.count(b'QRR-GUEST begin') == 2, rec.describe()
    assert b'tick 2 ' in out.split(b'QRR-GUEST begin')[1], rec.describe()

    # no reset from the monitor: the log's resets the machine
    plain = q.run(q.MACHINES[machine][0],
                  qargs + q.icount_opt('replay', log))
    check_replay(rec, plain)

    # system_reset at other moments (at the start, before the recorded
    # reset, in the second boot, at a stop): refused, the replay goes on
    resets = checkpoints(log, 'reset-requested')
    assert resets, 'no reset in the log'
    g = Guest(tmp_path, machine, 'replay', log, qargs + ['-S'])
    g.brk = resets[0] + 50_000_000
    try:
        answers = resets_refused(g, b'tick 1 ')
    finally:
        rep = g.finish()
    check_replay(rec, rep)
    check_refused(answers, rep)


# --- the guest reboots itself -------------------------------------------

@pytest.mark.parametrize('machine', RESET_MACHINES)
def test_guest_reboot(tmp_path, machine):
    log = tmp_path / 'reboot.rr'
    append = 'qrr.reboot=/dev/vda qrr.sleep=2'
    rimg = blank_disk(tmp_path / 'rec.img')
    rec = q.run(q.MACHINES[machine][0],
                args(machine, append, disk_args(rimg)) +
                q.icount_opt('record', log))
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    out = rec.guest_output()
    assert out.count(b'QRR-GUEST begin') == 2, rec.describe()
    assert b'reboot: first boot, rebooting' in out and \
        b'reboot: second boot' in out, rec.describe()

    # the replay reads the disk as it was when the recording started
    pimg = blank_disk(tmp_path / 'plain.img')
    plain = q.run(q.MACHINES[machine][0],
                  args(machine, append, disk_args(pimg)) +
                  q.icount_opt('replay', log))
    check_replay(rec, plain)

    # and system_resets during each boot change nothing
    resets = checkpoints(log, 'reset-requested')
    assert resets, 'no reset in the log'
    img = blank_disk(tmp_path / 'rep.img')
    g = Guest(tmp_path, machine, 'replay', log,
              args(machine, append, disk_args(img)) + ['-S'])
    g.brk = resets[0] + 50_000_000
    try:
        answers = resets_refused(g, b'urandom: ')
    finally:
        rep = g.finish()
    check_replay(rec, rep)
    check_refused(answers, rep)


# --- S3 suspend and system_wakeup ------------------------------------------

# q35 is not run: after an S3 resume its ACPI PM timer reads 0xffffff, in
# QEMU without record/replay too (measured 2026-12-06); the kernel's
# clocksource watchdog then switches to that frozen timer and the guest's
# sleep never ends.
SUSPEND_MACHINES = [
    'pc',
    pytest.param('q35', marks=pytest.mark.xfail(
        run=False, reason="q35's ACPI PM timer stops after an S3 resume, "
        "without record/replay too")),
]
SUSPEND_APPEND = 'qrr.suspend=1 qrr.sleep=2'


@pytest.mark.parametrize('machine', SUSPEND_MACHINES)
def test_suspend_wakeup(tmp_path, machine):
    log = tmp_path / 'suspend.rr'
    qargs = args(machine, SUSPEND_APPEND)
    g = Guest(tmp_path, machine, 'record', log, qargs)
    try:
        g.qmp.wait_event('SUSPEND')
        time.sleep(1.5)
        assert g.qmp.ok('query-status')['status'] == 'suspended'
        g.qmp.ok('system_wakeup')
        g.qmp.wait_event('WAKEUP')
    finally:
        rec = g.finish()
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    out = rec.guest_output()
    assert b'suspend: states [' in out and b'mem' in out, rec.describe()
    assert b'resumed: rc 0' in out, rec.describe()

    # nobody wakes the replay: the log does, at the recorded moment
    plain = q.run('x86_64', qargs + q.icount_opt('replay', log))
    check_replay(rec, plain)

    assert checkpoints(log, 'wakeup-requested'), 'no wake-up in the log'

    # a system_wakeup as soon as the replay is suspended, and another once
    # it runs again: refused; the replay wakes by itself
    g = Guest(tmp_path, machine, 'replay', log, qargs)
    answers = []
    try:
        g.qmp.wait_event('SUSPEND')
        answers.append(try_cmd(g, 'system_wakeup'))
        g.wait_for(b'resumed: ')
        answers.append(try_cmd(g, 'system_wakeup'))
        g.qmp.wait_event('WAKEUP')
    finally:
        rep = g.finish()
    check_replay(rec, rep)
    check_refused(answers, rep)
