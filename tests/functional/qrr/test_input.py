# Keyboard and mouse input on the i8042 (PS/2) of pc and q35: record the
# bare-metal input guest (tests/guest/baremetal/x86/input.c, input.elf)
# while keys and pointer moves and buttons are injected at several moments
# through QMP input-send-event and HMP sendkey; the guest polls the
# controller and prints every keyboard byte and mouse packet it reads,
# with the timer tick and the poll it read it at.  Then replay the log
# twice: once as it is, once paused (replay-break) a few instructions
# before each recorded input and, at each of these moments, let run on
# and given other input at once (Escape, which would end the guest, other
# keys, moves and buttons).  Each replay must print exactly what the
# recording printed, hand the devices exactly the recorded events (ui's
# input_event_* trace points) and exit 0: only a replay that delivers the
# logged input at its recorded instruction and ignores live input can.
# USB HID and virtio-input, on x86_64 and AArch64, are
# test_input_linux.py's (virt has no PS/2).
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import re
import time

import pytest

import qrrtest as q
from qrrlive import LiveQemu, TRACE, btn, delivered, inject_steps, \
    input_icounts, key, rel
from qrrlive import replay_with_live_input as live_replay

MACHINES = ['pc', 'q35']
WAIT = 30           # seconds for the guest to show an injection's effect
PAUSE = 0.15        # seconds between one injection's effect and the next
# stop the replay this many instructions before each recorded input
BEFORE = 500

LINE = re.compile(rb'^(key|mouse): (.*) at tick \d+ poll \d+$', re.M)


def input_guest():
    return q.baremetal_guest('x86_64').with_name('input.elf')


def input_args(machine):
    """QEMU arguments (without the binary) running the input guest."""
    guest = str(q.baremetal_guest('x86_64'))
    return [str(input_guest()) if a == guest else a
            for a in q.baremetal_args(machine)]


def setup_module():
    assert input_guest().exists(), \
        f'{input_guest()} missing: run tests/guest/build-baremetal.sh x86'


# What the recording is given, step by step, and what the guest prints
# for each step (scan code set 1 bytes; mouse packets as buttons LMR, dx,
# dy with y up: a move of y -5 is dy 5).
RECORDED = [
    ([key('a', True), key('a', False)], ['key: 0x1e', 'key: 0x9e']),
    ([rel('x', 10), rel('y', -5)], ['mouse: buttons --- dx 10 dy 5']),
    ([btn('left', True), rel('x', 200)],          # two packets: 127 + 73
     ['mouse: buttons L-- dx 127 dy 0', 'mouse: buttons L-- dx 73 dy 0']),
    ([btn('left', False)], ['mouse: buttons --- dx 0 dy 0']),
    ('shift-b', ['key: 0x2a', 'key: 0x30', 'key: 0xb0', 'key: 0xaa']),
    ([key(0x10, True), key(0x10, False)], ['key: 0x10', 'key: 0x90']),
    ([btn('right', True), rel('y', 7)], ['mouse: buttons --R dx 0 dy -7']),
    ([btn('right', False)], ['mouse: buttons --- dx 0 dy 0']),
    ('esc', ['key: 0x01', 'key: 0x81']),
]

# What the replay is given instead, one item at each stop (cycled).
LIVE = [
    [key('esc', True), key('esc', False)],
    [rel('x', -33), rel('y', 17)],
    'ctrl-z',
    [btn('middle', True), rel('y', 99), btn('middle', False)],
    [key(0x2c, True), key(0x2c, False)],
    'esc',
    [btn('left', True), btn('left', False)],
    'x',
]


class Guest(LiveQemu):
    """QEMU running the input guest with its serial port on stdout and a
    QMP socket."""

    def __init__(self, tmp_path, machine, mode, log, extra=()):
        super().__init__([str(q.qemu_binary('x86_64'))] +
                         input_args(machine) + q.icount_opt(mode, log) +
                         list(extra), tmp_path / f'qmp-{mode}.sock')


def events_seen(out):
    """The guest's input lines, without their ticks and polls."""
    return [f'{m.group(1).decode()}: {m.group(2).decode()}'
            for m in LINE.finditer(out)]


def record(tmp_path, machine, log):
    g = Guest(tmp_path, machine, 'record', log, TRACE)
    try:
        g.wait_for(b'QRR-INPUT ready\n', time.monotonic() + WAIT)
        want = inject_steps(g, RECORDED, events_seen, WAIT, PAUSE)
    finally:
        rec = g.finish()
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    return rec, want


def replay_with_live_input(tmp_path, machine, log, stops):
    """A replay paused before each of @stops and given LIVE input there
    (qrrlive.replay_with_live_input)."""
    g = Guest(tmp_path, machine, 'replay', log, TRACE + ['-S'])
    return live_replay(g, stops, LIVE)


@pytest.mark.parametrize('machine', MACHINES)
def test_ps2_input_replays(tmp_path, machine):
    log = tmp_path / 'input.rr'
    rec, want = record(tmp_path, machine, log)
    out = rec.guest_output()
    assert events_seen(out) == want, rec.describe()
    assert len(delivered(rec)) >= 2 * len(RECORDED), rec.describe()
    assert b'i8042: firmware config' in out and \
        b'keyboard ack 0xfa, mouse acks 0xfa 0xfa' in out, rec.describe()
    assert b', escape after ' in out, rec.describe()
    polls = [int(t) for t in re.findall(rb' at tick \d+ poll (\d+)\n', out)]
    assert polls == sorted(polls) and polls[-1] > polls[0], rec.describe()

    stops = [i - BEFORE for i in input_icounts(log)]
    assert len(stops) >= len(RECORDED), stops

    # a plain replay, no monitor input
    plain = q.run('x86_64', input_args(machine) + TRACE +
                  q.icount_opt('replay', log), timeout=60)
    assert plain.rc == 0, 'replay failed: ' + plain.describe()
    q.assert_same_output(rec, plain)
    assert delivered(plain) == delivered(rec), plain.describe()

    rep, sent, running = replay_with_live_input(tmp_path, machine, log,
                                                stops)
    assert rep.rc == 0, 'replay failed: ' + rep.describe()
    q.assert_same_output(rec, rep)
    # live input reached the running replay at several moments (nothing
    # can stop it between the cont and the query-status but its end)
    assert sent >= 4 and running >= sent - 1, (sent, running, len(stops))
    # no live event reached the keyboard or the mouse: the replay delivered
    # exactly the recorded ones
    assert delivered(rep) == delivered(rec), rep.describe()
    assert b'error' not in rep.err.lower(), rep.describe()
