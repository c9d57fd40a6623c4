# A perturbed replay is reported as a divergence soon after the
# perturbation, with the instruction count, never a hang or a silent
# difference.  The replays are perturbed from outside, as a user could
# (gdbperturb.py): gdb stops the replay with the monitor's replay_break,
# flips one bit of a register and continues; or the log is crafted
# (craftlog.py) so that the recording's timer runs earlier than the
# guest's timer is due.  The emulator has no test hook.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import re

import pytest

import craftlog
import gdbperturb as gp
import qrrtest as q

MACHINE = 'virt-a57'
ARCH = q.MACHINES[MACHINE][0]
POINTS = [50_000_000 + i * 110_000_000 for i in range(10)]
# detection must come within this many instructions of the perturbation
WINDOW = 50_000_000


@pytest.fixture(scope='module')
def log(tmp_path_factory):
    p = tmp_path_factory.mktemp('div') / 'a.rr'
    rec = q.run(ARCH, q.linux_args(MACHINE) + q.icount_opt('record', p))
    assert rec.rc == 0, rec.describe()
    return p


def test_unperturbed_replay_matches(log):
    rep = q.run(ARCH, q.linux_args(MACHINE) + q.icount_opt('replay', log))
    assert rep.rc == 0, rep.describe()
    assert b'diverged' not in rep.err


# Bit 4 of the PC flipped at the first instruction of the vector of the
# first interrupt or exception that the vCPU takes at or after the point:
# the replay stops at the icount of that event in the log, before the
# vCPU takes it, and gdb's stepi takes it (no instruction is counted).
# The flip skips or repeats instructions of the kernel's entry code, so
# the guest goes astray at once.  (A flip at an arbitrary instruction may
# land in an idle loop that it does not change.)
@pytest.mark.parametrize('point', POINTS)
def test_perturbation_is_reported(log, tmp_path, point):
    flip = gp.first_vcpu_event(log, point)
    rep = gp.flip_register(tmp_path, ARCH, q.linux_args(MACHINE), log, flip,
                           'pc', 4, stepi=1)
    assert rep.result.rc == 1, rep.describe()
    assert rep.stopped_at == rep.flipped_at == flip, rep.describe()
    # Arm's vectors are 128 bytes apart
    assert rep.before % 0x80 == 0, f'not at a vector: {rep.describe()}'
    assert rep.before ^ rep.after == 1 << 4, rep.describe()
    err = rep.result.err.decode()
    m = re.search(r'replay diverged at icount (\d+)', err)
    assert m, rep.describe()
    at = int(m.group(1))
    assert point <= flip <= at < flip + WINDOW, err


# A register the next instructions may overwrite is caught by the sync
# point's comparison when the flip comes right at one (the replay stops
# at the sync point's icount, before its interrupt or exception is
# taken): the report names the register with its recorded and replayed
# values, those gdb saw before and after the flip.
REG_POINTS = [120_000_000 + i * 105_000_000 for i in range(10)]
X2_REGNUM = 2


@pytest.mark.parametrize('point', REG_POINTS)
def test_register_flip_is_reported_with_its_diff(log, tmp_path, point):
    sync, seq, _ = next(p for p in gp.sync_points(log) if p[0] >= point)
    rep = gp.flip_register(tmp_path, ARCH, q.linux_args(MACHINE), log, sync,
                           f'x{X2_REGNUM}', 40)
    assert rep.result.rc == 1, rep.describe()
    assert rep.stopped_at == sync, rep.describe()
    err = rep.result.err.decode()
    m = re.search(r'replay diverged at icount (\d+) \(sync point (\d+) on '
                  r'vCPU 0, after '
                  rf'\w+\): register {X2_REGNUM}: recorded (0x[0-9a-f]+) '
                  r'replayed (0x[0-9a-f]+); the log.s next event is \w+ at '
                  r'icount \d+', err)
    assert m, rep.describe()
    assert int(m.group(1)) == sync and int(m.group(2)) == seq, err
    assert int(m.group(3), 16) ^ int(m.group(4), 16) == 1 << 40, err
    assert (int(m.group(3), 16), int(m.group(4), 16)) == \
        (rep.before, rep.after), rep.describe()


# A guest that diverged and programmed its timers otherwise meets, at the
# recording's next timer checkpoint, no timer due.  That is reported where
# it happens, within a second, not by the watchdog after 20 s.  The log is
# crafted: a QEMU_CLOCK_VIRTUAL checkpoint (the recording running a guest
# timer) is moved EARLY instructions earlier, with no event in between, so
# the replay meets it while the guest's timer (on the x86 bare-metal
# guest, the PIT's, pending at every instruction) is still EARLY
# instructions' worth of virtual time ahead.
EARLY = 976


def move_timer_checkpoint_earlier(log, after, by):
    """Move the first CLOCK_VIRTUAL checkpoint of @log at or after icount
    @after whose previous event is more than @by instructions before it,
    @by instructions earlier; returns its new icount."""
    evs = log.events
    for prev, e in zip(evs, evs[1:]):
        if e.kind == 'checkpoint' and \
                e.args[0] == craftlog.CHECKPOINT['clock-virtual'] and \
                e.icount >= after and prev.icount < e.icount - by:
            e.icount -= by
            return e.icount
    raise AssertionError(f'no timer checkpoint after icount {after} with '
                         f'{by} instructions free before it')


@pytest.mark.parametrize('machine', ['pc', 'q35'])
def test_late_timer_is_reported_where_it_happens(tmp_path, machine):
    arch = q.MACHINES[machine][0]
    args = q.baremetal_args(machine)
    log = tmp_path / 'bm.rr'
    rec = q.run(arch, args + q.icount_opt('record', log), typed='r')
    assert rec.rc == 0, rec.describe()
    crafted = craftlog.Log(log)
    moved = move_timer_checkpoint_earlier(crafted, 20_000_000, EARLY)
    crafted.write(tmp_path / 'early.rr')
    rep = q.run(arch, args + q.icount_opt('replay', tmp_path / 'early.rr'),
                typed='r', timeout=60)
    assert rep.rc == 1, rep.describe()
    err = rep.err.decode()
    m = re.search(r'replay diverged at icount (\d+) \(after \w+\): the '
                  r'recording ran a guest timer here, the replay has its '
                  r'next guest timer due in (\d+) ns', err)
    assert m, err
    assert int(m.group(1)) == moved, err
    # EARLY instructions of virtual time at icount=auto's shift s (0 to
    # 10: 2**s ns an instruction), less under one instruction's (the
    # timer fired at the first instruction that reached its deadline)
    due = int(m.group(2))
    assert any((EARLY - 1) << s < due <= EARLY << s for s in range(11)), err
    assert rep.elapsed < 15, f'reported after {rep.elapsed:.1f} s'
