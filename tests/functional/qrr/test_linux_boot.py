# Record then replay a Debian kernel + busybox boot; the replay must print
# exactly what the recording printed, including the line typed on the
# serial console during record (replay is typed a different one).
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re

import pytest

import qrrtest as q

MACHINES = os.environ.get('QRR_MACHINES', 'pc q35 virt-a57 virt-max').split()
REPEAT = int(os.environ.get('QRR_REPEAT', '1'))


@pytest.mark.parametrize('run', range(REPEAT))
@pytest.mark.parametrize('machine', MACHINES)
def test_boot_replays_identically(tmp_path, machine, run):
    arch = q.MACHINES[machine][0]
    args = q.linux_args(machine, 'qrr.prompt=1')
    log = tmp_path / 'boot.rr'

    rec, rep = q.record_replay(arch, args, log)

    q.assert_same_output(rec, rep)
    out = rep.guest_output()
    assert b'line: [recorded line]' in out, rep.describe()
    assert b'replayed line' not in out
    # the replay ran to the end of the log, not to a cut-short prefix
    m = re.search(rb'replay reached (the end of the log|the recorded '
                  rb'shutdown) at icount (\d+)', rep.err)
    assert m, rep.describe()
    assert int(m.group(2)) > 0
    assert b'error' not in rep.err.lower(), rep.describe()


def test_urandom_and_clock_differ_between_recordings(tmp_path):
    """Two recordings differ: the identical replays above are not a given."""
    machine = MACHINES[0]
    arch = q.MACHINES[machine][0]
    args = q.linux_args(machine)
    outs = []
    for i in range(2):
        r = q.run(arch, args + q.icount_opt('record', tmp_path / f'{i}.rr'))
        assert r.rc == 0, r.describe()
        outs.append(re.search(rb'urandom: (\w+)', r.guest_output()).group(1))
    assert outs[0] != outs[1]
