# virtio-rng with an rng-random backend: the guest reads /dev/hwrng
# (qrr.hwrng=N prints N bytes of it, twice), and the bytes come from a
# host file or FIFO whose content the test sets.  The content changes
# between record and replay: only a replay that takes the recorded bytes
# from the log, at the recorded positions, prints what the recording did
# (the guest's /dev/urandom line too: the kernel mixes the hwrng's bytes
# into its pool).  rng-egd, whose chardev input is not logged, is refused.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import random
import re
import threading
import time

import pytest

import craftlog
import qrrtest as q
from test_timetravel import Replay, log_end

# virtio-rng-pci on pc, the MMIO virtio-rng-device on AArch64 virt
RNG_DEVICE = {'pc': 'virtio-rng-pci', 'virt-a57': 'virtio-rng-device'}
HWRNG_BYTES = 16


def rng_args(machine, source):
    return q.linux_args(machine, f'qrr.hwrng={HWRNG_BYTES}') + [
        '-object', f'rng-random,filename={source},id=rng0',
        '-device', f'{RNG_DEVICE[machine]},rng=rng0']


def hwrng_lines(out):
    """The guest's hwrng lines: (rng in use, hex bytes) each."""
    got = re.findall(rb'^hwrng \d: (\S+) ([0-9a-f]*)\r?$', out, re.M)
    assert len(got) == 2, out.decode(errors='replace')
    return got


def check_rng_replay(rec, rep):
    """The replay printed the recording's output; the guest read the
    hwrng through virtio-rng and got bytes."""
    q.assert_same_output(rec, rep)
    for current, data in hwrng_lines(rep.guest_output()):
        assert current.startswith(b'virtio_rng'), current
        assert len(data) == 2 * HWRNG_BYTES, data
    assert b'error' not in rep.err.lower(), rep.describe()


@pytest.mark.parametrize('machine', ['pc', 'virt-a57'])
def test_rng_random_file_replays(tmp_path, machine):
    """Record from a file of random bytes, replay with other bytes in it:
    the replay prints the recorded bytes, and never reads the file."""
    arch = q.MACHINES[machine][0]
    source = tmp_path / 'entropy'
    source.write_bytes(random.Random(f'{machine}-rec').randbytes(1 << 20))
    args = rng_args(machine, source)
    log = tmp_path / 'rng.rr'
    rec = q.run(arch, args + q.icount_opt('record', log))
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    events = craftlog.Log(log).find('random', lambda e: e.args[0] > 0)
    assert events, 'the recording logged no read of the file'

    source.write_bytes(random.Random(f'{machine}-rep').randbytes(1 << 20))
    os.utime(source, (0, 0))
    rep = q.run(arch, args + q.icount_opt('replay', log))
    assert rep.rc == 0, 'replay failed: ' + rep.describe()
    check_rng_replay(rec, rep)
    assert os.stat(source).st_atime == 0, 'the replay read the file'


class Dripper:
    """Writes @chunk random bytes into the FIFO @path every @period
    seconds until stopped, from @delay seconds after go is set: until
    then the backend finds it empty (-EAGAIN)."""

    def __init__(self, path, seed, chunk=4096, period=0.2, delay=2):
        self.path = path
        self.rng = random.Random(seed)
        self.chunk = chunk
        self.period = period
        self.delay = delay
        self.go = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            fd = os.open(self.path, os.O_WRONLY)    # until QEMU opens it
        except OSError:
            return
        try:
            while not self.go.wait(0.1):
                if self.stop.is_set():
                    return
            self.stop.wait(self.delay)
            while not self.stop.is_set():
                os.write(fd, self.rng.randbytes(self.chunk))
                time.sleep(self.period)
        except OSError:
            pass                                    # QEMU went away
        finally:
            os.close(fd)

    def close(self):
        self.go.set()
        self.stop.set()
        try:        # a writer still waiting for a reader: be the reader
            os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))
        except OSError:
            pass
        self.thread.join(10)


def run_feeding(args, dripper, marker=b'dmesg-tail:'):
    """Run QEMU on pc like q.run(); @dripper goes once the guest has
    printed @marker (after it loaded virtio-rng, before it reads
    /dev/hwrng), however long the boot took on this host."""
    def watch(out):
        if marker in out:
            dripper.go.set()

    return q.run('x86_64', args, watch=watch)


def test_rng_random_fifo_replays(tmp_path):
    """A FIFO fed only once the guest has loaded virtio-rng, and 2 s
    later: the recording finds it empty and tries again later (logged as
    -EAGAIN), and the guest waits for the bytes.  The replay's FIFO gets
    other bytes, at once: the output is still the recording's."""
    source = tmp_path / 'entropy.fifo'
    os.mkfifo(source)
    args = rng_args('pc', source)
    log = tmp_path / 'fifo.rr'
    d = Dripper(source, 'fifo-rec')
    try:
        rec = run_feeding(args + q.icount_opt('record', log), d)
    finally:
        d.close()
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    c = craftlog.Log(log)
    assert c.find('random', lambda e: e.args[0] == -11), \
        'the FIFO was never found empty (no -EAGAIN logged)'
    assert c.find('random', lambda e: e.args[0] > 0)

    d = Dripper(source, 'fifo-rep', delay=0)
    d.go.set()
    try:
        rep = q.run('x86_64', args + q.icount_opt('replay', log))
    finally:
        d.close()
    assert rep.rc == 0, 'replay failed: ' + rep.describe()
    check_rng_replay(rec, rep)


def test_rng_random_seek_back(tmp_path):
    """Time travel: seeks back and forth in a replay with rng-random, then
    from the start to the end: the recording's output, from the log and
    not from the (changed) file."""
    source = tmp_path / 'entropy'
    source.write_bytes(random.Random('seek-rec').randbytes(1 << 20))
    args = rng_args('pc', source)
    log = tmp_path / 'rng.rr'
    rec = q.run('x86_64', args + q.icount_opt('record', log))
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    recorded = rec.guest_output()
    source.write_bytes(random.Random('seek-rep').randbytes(1 << 20))
    # The guest powers off: its vCPU runs on for a few thousand instructions
    # (a number the host's timing sets) until the main loop stops it, and
    # the log ends after them.  A replay stops at the recorded shutdown, so
    # that is the last position a seek reaches.
    shutdown = craftlog.Log(log).find('shutdown')[-1].icount
    r = Replay(tmp_path, 'x86_64', args, log)
    try:
        end = log_end(r)
        assert shutdown <= end
        for t in (end * 3 // 4, end // 4, end // 2, shutdown - 1000):
            assert r.qmp.seek(t) == t
        if shutdown < end:
            assert r.qmp.seek(end) == shutdown
        assert r.qmp.seek(0) == 0
        before = r.serial.stat().st_size
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        assert r.serial.read_bytes()[before:] == recorded
        assert 'diverged' not in r.stderr(), r.stderr()
    finally:
        r.quit()


@pytest.mark.parametrize('mode', ['record', 'replay'])
def test_rng_egd_is_refused(tmp_path, mode):
    """rng-egd reads a -chardev, whose input the log does not hold."""
    log = tmp_path / 'egd.rr'
    if mode == 'replay':
        r = q.run('x86_64', q.linux_args('pc') + q.icount_opt('record', log),
                  timeout=3)
        assert r.rc is None or r.rc == 0, r.describe()
    sock = tmp_path / 'egd.sock'
    args = q.linux_args('pc') + [
        '-chardev', f'socket,id=egdchr,path={sock},server=on,wait=off',
        '-object', 'rng-egd,chardev=egdchr,id=egd0',
        '-device', 'virtio-rng-pci,rng=egd0']
    r = q.run('x86_64', args + q.icount_opt(mode, log), timeout=60)
    assert r.rc not in (None, 0), r.describe()
    assert b'QRR-GUEST begin' not in r.out
    lines = r.err.decode(errors='replace').strip().splitlines()
    assert len(lines) == 1, r.describe()
    assert "record/replay: rng-egd 'egd0' gets its bytes from chardev " \
           "'egdchr', whose input a replay cannot reproduce; use -object " \
           "rng-random or rng-builtin instead" in lines[0], lines[0]
