# A perturbed replay is reported as a divergence soon after the
# perturbation, with the instruction count, never a hang or a silent
# difference.  The perturbation (test-only environment variables, see
# replay/replay-sync.c) flips bit 4 of the PC at the first interrupt or
# exception at or after a chosen instruction count.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re

import pytest

import qrrtest as q

MACHINE = 'virt-a57'
ARCH = q.MACHINES[MACHINE][0]
PC_REGNUM = 32          # gdb's aarch64 numbering: x0-x30, sp, pc
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


@pytest.mark.parametrize('point', POINTS)
def test_perturbation_is_reported(log, point):
    env = dict(os.environ, QRR_TEST_PERTURB_ICOUNT=str(point),
               QRR_TEST_PERTURB_REG=str(PC_REGNUM), QRR_TEST_PERTURB_BIT='4')
    rep = q.run(ARCH, q.linux_args(MACHINE) + q.icount_opt('replay', log),
                env=env, timeout=120)
    assert rep.rc == 1, rep.describe()
    err = rep.err.decode()
    flipped = int(re.search(r'flipped bit 4 of register 32 at icount (\d+)',
                            err).group(1))
    m = re.search(r'replay diverged at icount (\d+)', err)
    assert m, rep.describe()
    at = int(m.group(1))
    assert point <= flipped <= at < flipped + WINDOW, err


# A register the next instructions may overwrite is caught by the sync
# point's comparison when the flip comes right at one: the report names
# the register with its recorded and replayed values.
REG_POINTS = [120_000_000 + i * 105_000_000 for i in range(10)]
X2_REGNUM = 2


@pytest.mark.parametrize('point', REG_POINTS)
def test_register_flip_is_reported_with_its_diff(log, point):
    env = dict(os.environ, QRR_TEST_PERTURB_ICOUNT=str(point),
               QRR_TEST_PERTURB_REG=str(X2_REGNUM), QRR_TEST_PERTURB_BIT='40',
               QRR_TEST_PERTURB_AT_SYNC='1')
    rep = q.run(ARCH, q.linux_args(MACHINE) + q.icount_opt('replay', log),
                env=env, timeout=120)
    assert rep.rc == 1, rep.describe()
    err = rep.err.decode()
    flipped = int(re.search(r'flipped bit 40 of register 2 at icount (\d+)',
                            err).group(1))
    m = re.search(r'replay diverged at icount (\d+) \(sync point \d+ on '
                  r'vCPU 0, after '
                  r'\w+\): register 2: recorded (0x[0-9a-f]+) replayed '
                  r'(0x[0-9a-f]+); the log.s next event is \w+ at icount \d+',
                  err)
    assert m, err
    assert int(m.group(1)) == flipped
    assert int(m.group(2), 16) ^ int(m.group(3), 16) == 1 << 40


# A guest that diverged and programmed its timers otherwise meets, at the
# recording's next timer checkpoint, no timer due.  That is reported where
# it happens, within a second, not by the watchdog after 20 s.  The test
# makes the guest's timers 1 ms late (QRR_TEST_PERTURB_TIMERS_NS) on the
# x86 bare-metal guest, whose PIT timer is pending at every interrupt.
@pytest.mark.parametrize('machine', ['pc', 'q35'])
def test_late_timer_is_reported_where_it_happens(tmp_path, machine):
    arch = q.MACHINES[machine][0]
    args = q.baremetal_args(machine)
    log = tmp_path / 'bm.rr'
    rec = q.run(arch, args + q.icount_opt('record', log), typed='r')
    assert rec.rc == 0, rec.describe()
    env = dict(os.environ, QRR_TEST_PERTURB_ICOUNT='20000000',
               QRR_TEST_PERTURB_TIMERS_NS='1000000')
    rep = q.run(arch, args + q.icount_opt('replay', log), typed='r',
                env=env, timeout=60)
    assert rep.rc == 1, rep.describe()
    err = rep.err.decode()
    late = int(re.search(r'made [1-9]\d* guest timers 1000000 ns late at '
                         r'icount (\d+)', err).group(1))
    m = re.search(r'replay diverged at icount (\d+) \(after \w+\): the '
                  r'recording ran a guest timer here, the replay has its '
                  r'next guest timer due in (\d+) ns', err)
    assert m, err
    assert late <= int(m.group(1)) < late + 2_000_000, err
    assert 0 < int(m.group(2)) <= 1_000_000, err
    assert rep.elapsed < 15, f'reported after {rep.elapsed:.1f} s'
