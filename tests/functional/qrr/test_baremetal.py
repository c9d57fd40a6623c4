# Record then replay the bare-metal test guests (tests/guest/baremetal/):
# timer interrupts, exceptions taken on purpose, hardware random numbers,
# the RTC, counters and a byte typed on the serial port, in a second or
# two per run.  The replay must print exactly what the recording printed,
# including the recorded byte although another one is typed during replay.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re

import pytest

import qrrtest as q

MACHINES = os.environ.get('QRR_MACHINES', 'pc q35 virt-a57 virt-max').split()

# What each machine's guest must show: exceptions provoked, RNG lines.
EXPECT = {
    'pc': (4, [rb'rng: rdrand( 0x[0-9a-f]{8}){4}\n',
               rb'rng: rdseed( 0x[0-9a-f]{8}){4}\n']),
    'q35': (4, [rb'rng: rdrand( 0x[0-9a-f]{8}){4}\n',
                rb'rng: rdseed( 0x[0-9a-f]{8}){4}\n']),
    'virt-a57': (4, [rb'rng: no RNDR\n']),
    'virt-max': (4, [rb'rng: rndr( 0x[0-9a-f]{16}){4}\n',
                     rb'rng: rndrrs( 0x[0-9a-f]{16}){4}\n']),
}
TIMER_WAIT_TICKS = 100      # common/guest.h


def setup_module():
    for machine in MACHINES:
        guest = q.baremetal_guest(q.MACHINES[machine][0])
        assert guest.exists(), \
            f'{guest} missing: run tests/guest/build-baremetal.sh'


def record(machine, log, typed):
    arch = q.MACHINES[machine][0]
    r = q.run(arch, q.baremetal_args(machine) + q.icount_opt('record', log),
              typed=typed)
    assert r.rc == 0, 'record failed: ' + r.describe()
    return r


def check_guest_output(machine, r, typed):
    out = r.guest_output()
    desc = r.describe()
    nexc, rng = EXPECT[machine]
    assert b'FAIL' not in out and b'WRONG' not in out, desc
    assert out.count(b': handled\n') == nexc, desc
    assert f'exceptions handled: {nexc}/{nexc}\n'.encode() in out, desc
    m = re.search(rb'\ntimer: (\d+) irqs at 1000 Hz in (\d+) wake-ups', out)
    assert m and int(m.group(1)) >= TIMER_WAIT_TICKS, desc
    assert int(m.group(2)) >= TIMER_WAIT_TICKS // 2, desc
    # interrupts also landed in the middle of a computation
    m = re.search(rb'\nbusy: \d+ rounds, (\d+) irqs', out)
    assert m and int(m.group(1)) > 0, desc
    for pattern in rng:
        assert re.search(pattern, out), desc
    m = re.search(rb'\nrtc: (\d{4})-\d\d-\d\d \d\d:\d\d:\d\d\n', out)
    assert m and int(m.group(1)) >= 2024, desc
    assert re.search(rb'\ncounter: (tsc|cntvct) 0x[0-9a-f]+ \+0x', out), desc
    assert f"\ntyped: 0x{ord(typed):02x} '{typed}' after ".encode() in out, \
        desc
    m = re.search(rb'\ntimer irqs total: (\d+)\n', out)
    assert m and int(m.group(1)) > TIMER_WAIT_TICKS, desc
    assert re.search(rb'\nchecksum: 0x[0-9a-f]{8}\nQRR-GUEST end\n', out), \
        desc
    return out


@pytest.mark.parametrize('machine', MACHINES)
def test_baremetal_replays_identically(tmp_path, machine):
    arch = q.MACHINES[machine][0]
    log = tmp_path / 'baremetal.rr'

    rec, rep = q.record_replay(arch, q.baremetal_args(machine), log,
                               typed=('a', 'z'))

    check_guest_output(machine, rec, 'a')
    q.assert_same_output(rec, rep)
    # the byte typed during replay is ignored: the recorded one is read
    assert b"typed: 0x7a 'z'" not in rep.out, rep.describe()
    # the replay ran to the recorded poweroff, not to a cut-short prefix
    m = re.search(rb'replay reached (the end of the log|the recorded '
                  rb'shutdown) at icount (\d+)', rep.err)
    assert m and int(m.group(2)) > 0, rep.describe()
    assert b'error' not in rep.err.lower(), rep.describe()
    print(f'{machine}: record {rec.elapsed:.1f} s, replay {rep.elapsed:.1f} s')


@pytest.mark.parametrize('machine', MACHINES)
def test_baremetal_recordings_differ(tmp_path, machine):
    """Two recordings differ: the identical replays above are not a given."""
    outs = []
    for i, typed in enumerate('bc'):
        r = record(machine, tmp_path / f'{i}.rr', typed)
        outs.append(check_guest_output(machine, r, typed))
    assert outs[0] != outs[1]
    sums = [re.search(rb'\nchecksum: (\w+)', o).group(1) for o in outs]
    assert sums[0] != sums[1]
    rng = [re.findall(rb'\nrng: \w+ (.*)', o) for o in outs]
    if EXPECT[machine][1][0] != rb'rng: no RNDR\n':
        assert rng[0] and rng[1] and rng[0] != rng[1], \
            'two recordings read the same random numbers'
