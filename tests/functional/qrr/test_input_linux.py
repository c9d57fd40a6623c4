# Keyboard and pointer input on USB HID (qemu-xhci with usb-kbd and
# usb-tablet) and on virtio-input (virtio-keyboard and virtio-tablet, on
# PCI and on virtio-mmio), on x86_64 (pc, q35) and AArch64 (virt), and on
# the 32-bit guests (i386 on pc, ARMv7 on virt with a cortex-a15): record
# the Linux test guest with qrr.evdev=, which loads the input drivers and
# prints every event it reads from /dev/input/event* (device, guest time,
# type, code, value), while keys, pointer positions and buttons are
# injected through QMP input-send-event and HMP sendkey once it reads.
# The recording must show exactly the injected keys and moves on the
# right device.  Then replay the log twice: once as it is, once paused
# (replay-break) a few instructions before each recorded input and given
# other input there while it runs on.  Each replay must print exactly what
# the recording printed, hand the devices exactly the recorded events
# (ui's input_event_* trace points) and exit 0.  A third replay travels
# in time over the input: to the recorded end, back to before the first
# input (a restore of the USB or virtio controller with the guest's
# transfers queued on it) and on to the end: the guest reads the recorded
# events once more.  The PS/2 keyboard and mouse are test_input.py's (a
# bare-metal guest).
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re
import time

import pytest

import qrrtest as q
from qrrlive import DELIVERED, LiveQemu, TRACE, abs_, btn, delivered, \
    inject_steps, input_icounts, key
from qrrlive import replay_with_live_input as live_replay

FULL = os.environ.get('QRR_FULL') == '1'
full_only = pytest.mark.skipif(not FULL, reason='QRR_FULL=1 (make '
                               'check-full)')

USB = ['-device', 'qemu-xhci', '-device', 'usb-kbd', '-device', 'usb-tablet']
VIRTIO_PCI = ['-device', 'virtio-keyboard-pci', '-device',
              'virtio-tablet-pci']
# virt's virtio-mmio transports are legacy (virtio 0.9) unless told
# otherwise, and Linux's virtio_input drives virtio 1.0 devices only.
VIRTIO_MMIO = ['-global', 'virtio-mmio.force-legacy=false',
               '-device', 'virtio-keyboard-device',
               '-device', 'virtio-tablet-device']

# cell: machine, devices, the Linux input bus type they are on (USB 0003,
# virtio 0006)
CELLS = {
    'pc-usb': ('pc', USB, '0003'),
    'q35-virtio-pci': ('q35', VIRTIO_PCI, '0006'),
    'virt-usb': ('virt-a57', USB, '0003'),
    'virt-virtio-mmio': ('virt-a57', VIRTIO_MMIO, '0006'),
    'q35-usb': ('q35', USB, '0003'),
    'pc-virtio-pci': ('pc', VIRTIO_PCI, '0006'),
    'virt-virtio-pci': ('virt-a57', VIRTIO_PCI, '0006'),
    # 32-bit guests (an i386 and an ARMv7 kernel): their struct input_event
    # is 16 bytes, the USB and virtio drivers are their kernels' own
    'pc-i386-usb': ('pc-i386', USB, '0003'),
    'virt-a15-virtio-mmio': ('virt-a15', VIRTIO_MMIO, '0006'),
}
FULL_CELLS = {'q35-usb', 'pc-virtio-pci', 'virt-virtio-pci',
              'virt-a15-virtio-mmio'}

SECONDS = 10        # of guest time the guest reads input for
WAIT = 60           # seconds for the guest to show an injection's effect
BEFORE = 500        # stop the replay this many instructions before an input
TT_BACK = 20000000  # the time-travel replay goes back this far before it

# Linux event types and codes (linux/input-event-codes.h)
EV_KEY, EV_ABS = 1, 3
KEY_ESC, KEY_Q, KEY_A, KEY_LEFTSHIFT, KEY_B = 1, 16, 30, 42, 48
BTN_LEFT, BTN_RIGHT = 0x110, 0x111
ABS_X, ABS_Y = 0, 1


def kbd(*events):
    return [('kbd', EV_KEY, c, v) for c, v in events]


def tablet(*events):
    return [('tablet',) + e for e in events]


# What the recording is given, step by step, and the key and pointer
# events the guest reads of it (a key press 1, a release 0).
RECORDED = [
    ([key('a', True), key('a', False)], kbd((KEY_A, 1), (KEY_A, 0))),
    ([abs_('x', 1000), abs_('y', 2000)],
     tablet((EV_ABS, ABS_X, 1000), (EV_ABS, ABS_Y, 2000))),
    ([btn('left', True)], tablet((EV_KEY, BTN_LEFT, 1))),
    ([abs_('x', 3000), abs_('y', 500)],             # a drag
     tablet((EV_ABS, ABS_X, 3000), (EV_ABS, ABS_Y, 500))),
    ([btn('left', False)], tablet((EV_KEY, BTN_LEFT, 0))),
    ('shift-b', kbd((KEY_LEFTSHIFT, 1), (KEY_B, 1), (KEY_B, 0),
                    (KEY_LEFTSHIFT, 0))),
    ([key(0x10, True), key(0x10, False)], kbd((KEY_Q, 1), (KEY_Q, 0))),
    # a press and a release in one input-send-event would make one report
    # of neither (the buttons' state at the sync)
    ([btn('right', True)], tablet((EV_KEY, BTN_RIGHT, 1))),
    ([btn('right', False)], tablet((EV_KEY, BTN_RIGHT, 0))),
    ([abs_('x', 0x7fff), abs_('y', 0x7fff)],
     tablet((EV_ABS, ABS_X, 0x7fff), (EV_ABS, ABS_Y, 0x7fff))),
    ([key('esc', True), key('esc', False)], kbd((KEY_ESC, 1), (KEY_ESC, 0))),
]

# What the replay is given instead, one item at each stop (cycled).
LIVE = [
    [key('esc', True), key('esc', False)],
    [abs_('x', 123), abs_('y', 456)],
    'ctrl-z',
    [btn('middle', True), btn('middle', False)],
    [key(0x2c, True), key(0x2c, False)],
    [abs_('x', 20000), abs_('y', 30000), btn('left', True),
     btn('left', False)],
    'x',
]

DEVICE = re.compile(rb'^evdev: (event\d+) bus (\w+) \w+:\w+ (.*?)\r?$', re.M)
EVENT = re.compile(rb'^(event\d+) time \d+\+\d+ \d+\+\d+ '
                   rb'type (\d+) code (\d+) value (-?\d+)\r?$', re.M)


def devices(out):
    """The guest's input devices: {eventN: (bus type, name)}."""
    return {m.group(1): (m.group(2).decode(), m.group(3).decode())
            for m in DEVICE.finditer(out)}


def kind(name):
    return 'kbd' if 'Keyboard' in name else \
        'tablet' if 'Tablet' in name else name


def events_seen(out):
    """The key and pointer events the guest read, in order, as (kind of
    device, type, code, value); the others (synchronisation, the
    keyboard's scan codes) left out."""
    devs = devices(out)
    return [(kind(devs.get(m.group(1), ('', m.group(1).decode()))[1]),) +
            tuple(int(m.group(i)) for i in (2, 3, 4))
            for m in EVENT.finditer(out)
            if int(m.group(2)) in (EV_KEY, EV_ABS)]


def guest_args(machine, devs):
    return q.linux_args(machine, f'qrr.evdev={SECONDS} qrr.evdevs=2') + \
        devs + TRACE


def cells():
    return [pytest.param(c, marks=full_only) if c in FULL_CELLS else c
            for c in CELLS]


@pytest.mark.parametrize('cell', cells())
def test_input_replays(tmp_path, cell):
    machine, devs, bus = CELLS[cell]
    arch = q.MACHINES[machine][0]
    args = guest_args(machine, devs)
    log = tmp_path / 'input.rr'

    g = LiveQemu([str(q.qemu_binary(arch))] + args +
                 q.icount_opt('record', log), tmp_path / 'qmp-record.sock')
    try:
        g.wait_for(b'QRR-EVDEV reading', time.monotonic() + 300)
        want = inject_steps(g, RECORDED, events_seen, WAIT)
        g.wait_for(b'QRR-EVDEV done', time.monotonic() + 300)
    finally:
        rec = g.finish(300)
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    out = rec.guest_output()
    assert sorted(d for d in devices(out).values() if d[0] == bus) == \
        [(bus, 'QEMU QEMU USB Keyboard'), (bus, 'QEMU QEMU USB Tablet')] \
        if bus == '0003' else \
        [(bus, 'QEMU Virtio Keyboard'), (bus, 'QEMU Virtio Tablet')], \
        rec.describe()
    # the guest read exactly the injected keys and moves, each from the
    # device it was meant for
    assert events_seen(out) == want, rec.describe()
    assert len(delivered(rec)) >= sum(len(w) for w, _ in RECORDED
                                      if not isinstance(w, str)), \
        rec.describe()

    stops = [i - BEFORE for i in input_icounts(log)]
    assert len(stops) >= len(RECORDED), stops

    # a plain replay, no monitor input
    plain = q.run(arch, args + q.icount_opt('replay', log), timeout=300)
    assert plain.rc == 0, 'replay failed: ' + plain.describe()
    q.assert_same_output(rec, plain)
    assert delivered(plain) == delivered(rec), plain.describe()

    # a replay given other input at each recorded input's moment
    g = LiveQemu([str(q.qemu_binary(arch))] + args + ['-S'] +
                 q.icount_opt('replay', log), tmp_path / 'qmp-replay.sock')
    rep, sent, running = live_replay(g, stops, LIVE)
    assert rep.rc == 0, 'replay failed: ' + rep.describe()
    q.assert_same_output(rec, rep)
    # live input reached the running replay at several moments
    assert sent >= 4 and running >= sent - 1, (sent, running, len(stops))
    # and none of it reached a device
    assert delivered(rep) == delivered(rec), rep.describe()
    assert b'error' not in rep.err.lower(), rep.describe()

    travel(tmp_path, arch, args, log, rec, stops[0] - TT_BACK)


def travel(tmp_path, arch, args, log, rec, back):
    """Replay @log paused under QMP: seek to the recorded end, then back
    to @back (before the first input) and run on to the end.  From @back
    on, the guest prints the recording's output again, with every input
    event it read, and the devices get the recorded events again."""
    from test_timetravel import Replay, log_end

    recorded = rec.guest_output()
    r = Replay(tmp_path, arch, args, log)
    try:
        end = log_end(r)
        assert 0 < r.qmp.seek(end) <= end, r.stderr()
        assert r.serial.read_bytes() == recorded, r.stderr()
        first = len(DELIVERED.findall(r.stderr()))
        assert r.qmp.seek(back) == back, r.stderr()
        before = r.serial.stat().st_size
        r.qmp.ok('cont')
        rc = r.wait()
        assert rc == 0, r.stderr()
        tail = r.serial.read_bytes()[before:]
        err = r.stderr()
    finally:
        r.quit()
    assert 'diverged' not in err and 'error' not in err.lower(), err
    assert recorded.endswith(tail), (tail[-2000:], recorded[-2000:])
    raw = [m.groups() for m in EVENT.finditer(recorded)]
    assert raw and [m.groups() for m in EVENT.finditer(tail)] == raw, tail
    again = DELIVERED.findall(err)[first:]
    want = delivered(rec)
    # @back is before the first input: all of it again
    assert again == want, (again, want)
