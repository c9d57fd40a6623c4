# Time travel in a replay: replay-seek backwards and forwards, gdb's
# reverse-stepi (over interrupts and exceptions too), reverse-continue to
# breakpoints and watchpoints, reverse-step, reverse-next and
# reverse-finish in a call chain, the snapshots' memory budget.  The
# bare-metal guests first, then Linux.
#
# gdb (gdb-multiarch) runs in batch mode with a Python script of ours
# (GDB_DRIVER below) that carries out a list of commands and writes, after
# each, the PC, the replay's instruction count ("monitor info replay"),
# the source line and function, and what gdb printed, as JSON.  QMP is
# spoken over a UNIX socket.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import hashlib
import json
import math
import os
import random
import re
import statistics
import subprocess
import time

import pytest

import qrrtest as q
from qrrqmp import QMP

GDB = os.environ.get('QRR_GDB', 'gdb-multiarch')
BAREMETAL = os.environ.get('QRR_TT_MACHINES', 'pc virt-max').split()
LINUX = os.environ.get('QRR_TT_LINUX', 'pc virt-max').split()

GDB_DRIVER = r'''
import gdb, json, os, re, time

steps = json.loads(os.environ['QRR_TT_STEPS'])
out = []

def icount():
    s = gdb.execute('monitor info replay', to_string=True)
    return int(re.search(r'instruction count = (\d+)', s).group(1))

def state(cmd, text):
    pc = int(gdb.parse_and_eval('$pc')) & 0xffffffffffffffff
    block = gdb.block_for_pc(pc)
    while block is not None and block.function is None:
        block = block.superblock
    th = gdb.selected_thread()
    return {'cmd': cmd, 'pc': pc, 'icount': icount(), 'text': text,
            'thread': th.num if th is not None else None,
            'line': gdb.find_pc_line(pc).line,
            'func': block.function.name if block is not None else None,
            'entry': block.start if block is not None else None}

gdb.execute('set pagination off')
gdb.execute('set confirm off')
for cmd in steps:
    if cmd.startswith('!'):            # no state wanted
        gdb.execute(cmd[1:], to_string=True)
        continue
    if cmd.startswith('value '):
        v = int(gdb.parse_and_eval(cmd[6:]))
        out[-1]['value'] = v
        continue
    t0 = time.monotonic()
    try:
        text = gdb.execute(cmd, to_string=True)
    except gdb.error as e:
        text = 'ERROR: ' + str(e)
    secs = time.monotonic() - t0
    out.append(state(cmd, text))
    out[-1]['secs'] = secs
with open(os.environ['QRR_TT_OUT'], 'w') as f:
    json.dump(out, f)
# not detach, which resumes the replay: it would run to its end and exit
# before the test's next QMP command
gdb.execute('disconnect')
'''


def elf_class(path):
    """32 or 64, from the ELF header."""
    with open(path, 'rb') as f:
        return {1: 32, 2: 64}[f.read(5)[4]]


# gdb's view of 32-bit code in qemu-system-x86_64, as i386
I386_ON_X86_64 = q.TOP / 'scripts' / 'gdb-i386-on-x86_64.xml'


class Replay:
    """A replay started paused, with QMP and a gdb server."""

    def __init__(self, tmp_path, arch, args, log, extra=''):
        self.tmp = tmp_path
        self.qmp_path = tmp_path / 'qmp.sock'
        self.gdb_path = tmp_path / 'gdb.sock'
        self.serial = tmp_path / 'serial.out'
        for p in (self.qmp_path, self.gdb_path, self.serial):
            if p.exists():
                p.unlink()
        args = [a for a in args]
        i = args.index('-serial')
        args[i + 1] = f'file:{self.serial}'
        cmd = [str(q.qemu_binary(arch))] + args + \
            q.icount_opt('replay', log, extra) + [
                '-qmp', f'unix:{self.qmp_path},server=on,wait=off',
                '-gdb', f'unix:{self.gdb_path},server=on,wait=off', '-S']
        self.err = open(tmp_path / 'qemu.err', 'w+b')
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self.err)
        self.qmp = QMP(self.qmp_path)

    def stderr(self):
        self.err.flush()
        return (self.tmp / 'qemu.err').read_text(errors='replace')

    def wait(self, timeout=q.DEFAULT_TIMEOUT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.qmp.cmd('quit')
            except (OSError, EOFError):
                pass
            if self.wait(30) is None:
                raise AssertionError('QEMU did not quit: ' + self.stderr())
        self.qmp.close()

    def gdb(self, arch, elf, steps, timeout=300):
        """Run gdb's commands @steps against this replay."""
        out = self.tmp / 'gdb.json'
        script = self.tmp / 'driver.py'
        script.write_text(GDB_DRIVER)
        if out.exists():
            out.unlink()
        pre = []
        if arch == 'x86_64' and elf and elf_class(elf) == 32:
            # the bare-metal guest runs 32-bit code, which gdb can only
            # step through, unwind and finish as i386 (with "set
            # architecture i386:x86-64", it unwinds it as x86-64 code)
            pre = ['-ex', f'set tdesc filename {I386_ON_X86_64}',
                   '-ex', 'set remote fetch-register-packet off',
                   '-ex', 'set remote set-register-packet off']
        elif arch == 'x86_64':
            pre = ['-ex', 'set architecture i386:x86-64']
        cmd = [GDB, '-nx', '-batch']
        if elf:
            cmd += ['-ex', f'file {elf}']
        cmd += pre + ['-ex', f'target remote {self.gdb_path}',
                      '-x', str(script)]
        env = dict(os.environ, QRR_TT_STEPS=json.dumps(steps),
                   QRR_TT_OUT=str(out))
        r = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
        self.gdb_output = r.stdout.decode(errors='replace')
        assert out.exists(), ('gdb failed:\n' + self.gdb_output +
                              r.stderr.decode() + '\n' + self.stderr())
        return json.loads(out.read_text())


def baremetal_elf(machine):
    return q.baremetal_guest(q.MACHINES[machine][0])


@pytest.fixture(scope='module')
def recordings(tmp_path_factory):
    """One recording of the bare-metal guest per machine, made on demand."""
    made = {}

    def get(machine):
        if machine not in made:
            d = tmp_path_factory.mktemp(f'rec-{machine}')
            arch = q.MACHINES[machine][0]
            args = q.baremetal_args(machine)
            rec = q.run(arch, args + q.icount_opt('record', d / 'bm.rr'),
                        typed='t')
            assert rec.rc == 0, rec.describe()
            made[machine] = (d / 'bm.rr', rec.guest_output())
        return made[machine]
    return get


def log_end(r):
    """The last instruction count of the replay's log (info replay)."""
    text = r.qmp.ok('human-monitor-command', **{'command-line': 'info replay'})
    return int(re.search(r'Log ends at instruction count (\d+)',
                         text).group(1))


# ---- replay-seek ----

@pytest.mark.parametrize('machine', BAREMETAL)
def test_seek_random_positions(tmp_path, recordings, machine):
    """Seeks land exactly, backwards too; the replay then still matches."""
    log, recorded = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        info = r.qmp.ok('query-replay')
        assert info['icount'] == 0
        end = log_end(r)
        rng = random.Random(f'{machine}-seek')
        targets = [end // 2, end // 3, end - 1000, 1000, end // 2 + 1,
                   end // 2] + [rng.randrange(1, end) for _ in range(8)]
        times = []
        for t in targets:
            t0 = time.monotonic()
            got = r.qmp.seek(t)
            times.append(time.monotonic() - t0)
            assert got == t, f'seek to {t} landed at {got}'
        snaps = r.qmp.ok('query-replay-snapshots')
        assert snaps['enabled'] and len(snaps['snapshots']) >= 2, snaps
        assert snaps['restores'] > 0, snaps
        # the default budget is twice the guest's RAM (-m 64M), not
        # counting flash (virt's two 64 MiB pflash) or ROMs
        assert snaps['budget'] == 2 * 64 * 1024 * 1024, snaps
        # errors: outside the recording, negative
        for bad in (end + 1, -5):
            e = r.qmp.cmd('replay-seek', icount=bad)
            assert 'error' in e and 'outside the recording' in \
                e['error']['desc'], e
        # back to the start, then let it run to the end of the log: the
        # output from there is the recording's
        assert r.qmp.seek(0) == 0
        before = r.serial.stat().st_size if r.serial.exists() else 0
        r.qmp.ok('cont')
        rc = r.wait()
        assert rc == 0, r.stderr()
        out = r.serial.read_bytes()[before:]
        assert out == recorded, (
            f'serial output after seeking back differs from the recording'
            f'\n--- replay ---\n{out[-600:]!r}\n--- record ---\n'
            f'{recorded[-600:]!r}')
        assert 'diverged' not in r.stderr(), r.stderr()
        print(f'{machine}: {len(targets)} seeks, mean '
              f'{1000 * sum(times) / len(times):.1f} ms, max '
              f'{1000 * max(times):.1f} ms; snapshots '
              f'{snaps["used"] // 1024} KiB in {len(snaps["snapshots"])}')
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_seek_past_the_shutdown(tmp_path, recordings, machine):
    """The guest powers off a few instructions before the log ends: a seek
    there stops at the recorded shutdown, the machine's last position,
    instead of quitting; let go, it ends as the recording did."""
    log, recorded = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        end = log_end(r)
        # known from the log's end before the replay gets there
        down = r.qmp.ok('query-replay')['shutdown']
        assert down['cause'] == 'guest-shutdown' and \
            0 < down['icount'] <= end, down
        last = r.qmp.seek(end)
        assert r.proc.poll() is None, r.stderr()
        assert 0 < last <= end
        if last < end:
            # the power-off came first (x86: an I/O write); on AArch64 the
            # PSCI call is an exception taken at the end, after the stop
            m = re.search(r'recorded machine shuts down at icount (\d+)',
                          r.stderr())
            assert m and int(m.group(1)) == last == down['icount'], \
                r.stderr()
        # left alone, the replay ends as the recording did
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        assert 'diverged' not in r.stderr(), r.stderr()
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_gdb_continue_to_the_end_and_back(tmp_path, recordings, machine):
    """With gdb attached the replay stops at the recorded shutdown; gdb can
    go back from there."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        end = log_end(r)
        res = r.gdb(arch, baremetal_elf(machine),
                    ['continue', 'reverse-stepi', 'stepi'])
        assert r.proc.poll() is None, r.stderr()
        at_end, back, again = res
        assert 0 < at_end['icount'] <= end, res
        assert back['icount'] < at_end['icount'], res
        assert (again['pc'], again['icount']) == \
            (at_end['pc'], at_end['icount']), res
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_restore_leaves_no_device_state_behind(tmp_path, machine):
    """A restore resets the devices before loading the snapshot's state.

    The guest reads one of the three characters typed, so two stay in the
    UART's receive FIFO to the end.  A snapshot taken before the prompt has
    an empty FIFO, which the 16550 leaves out of its state (the
    serial/recv_fifo subsection is only sent when not empty): restored
    without a reset, the FIFO would still hold the later characters, and
    the guest would read one of them at the prompt.  (On virt-max the
    PL011 always saves its FIFO; the test runs there too.)"""
    arch = q.MACHINES[machine][0]
    log = tmp_path / 'typed.rr'
    rec = q.run(arch, q.baremetal_args(machine) +
                q.icount_opt('record', log), typed='abc')
    assert rec.rc == 0, rec.describe()
    recorded = rec.guest_output()
    assert b"typed: 0x61 'a'" in recorded, rec.describe()
    d = tmp_path / 'replay'
    d.mkdir()
    r = Replay(d, arch, q.baremetal_args(machine), log)
    try:
        end = log_end(r)
        # past the input, then back to a snapshot that is not the first
        assert r.qmp.seek(end - 100) == end - 100
        assert r.qmp.seek(end // 2) == end // 2
        snaps = r.qmp.ok('query-replay-snapshots')
        assert any(0 < x['icount'] <= end // 2
                   for x in snaps['snapshots']), snaps
        before = r.serial.stat().st_size
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        assert 'diverged' not in r.stderr(), r.stderr()
        out = r.serial.read_bytes()[before:]
        assert b"typed: 0x61 'a'" in out, out[-300:]
        assert recorded.endswith(out), out[-300:]
    finally:
        r.quit()


def machine_state(r, tmp_path, ram):
    """A digest of the paused machine: its RAM and its CPU registers."""
    dump = tmp_path / 'ram.bin'
    r.qmp.ok('pmemsave', val=0, size=ram, filename=str(dump))
    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    dump.unlink()
    regs = r.qmp.ok('human-monitor-command',
                    **{'command-line': 'info registers'})
    return digest, regs


def bench_args(machine):
    """The bare-metal bench guest (tests/guest/baremetal/common/bench.c),
    which writes all over a 1 MiB working set."""
    args = q.baremetal_args(machine)
    i = args.index('-kernel')
    args[i + 1] = str(q.baremetal_guest(q.MACHINES[machine][0]).with_name(
        'bench.elf'))
    return args


@pytest.fixture(scope='module')
def bench_recordings(tmp_path_factory):
    """The first seconds of the bench guest per machine: QEMU is killed,
    and what the log holds replays."""
    made = {}

    def get(machine):
        if machine not in made:
            d = tmp_path_factory.mktemp(f'bench-{machine}')
            arch = q.MACHINES[machine][0]
            r = q.run(arch, bench_args(machine) +
                      q.icount_opt('record', d / 'bench.rr'), timeout=4)
            assert r.rc is None or r.rc == 0, r.describe()
            made[machine] = d / 'bench.rr'
        return made[machine]
    return get


@pytest.mark.parametrize('guest', ['guest', 'bench'])
@pytest.mark.parametrize('machine', BAREMETAL)
def test_snapshots_restore_exact_state(tmp_path, recordings,
                                       bench_recordings, machine, guest):
    """Wherever a seek lands, the machine is the one a forward-only replay
    has there: its whole RAM and its registers.  Also through snapshots
    taken, after going back, in the gaps that thinning left: on the bench
    guest, which dirties 1 MiB between two snapshots, rrbudget is a
    twentieth of what keeping them all would take."""
    if guest == 'bench':
        log, args, budget = (bench_recordings(machine), bench_args(machine),
                             '12M')
    else:
        log, args, budget = (recordings(machine)[0],
                             q.baremetal_args(machine), '3M')
    arch = q.MACHINES[machine][0]
    ram = 64 << 20
    ref = Replay(tmp_path, arch, args, log, 'rrbudget=0')
    try:
        end = log_end(ref)
        rng = random.Random(f'{machine}-{guest}-state')
        checks = sorted(rng.sample(range(end // 10, end - 1000), 3))
        want = {}
        for t in checks:
            assert ref.qmp.seek(t) == t
            want[t] = machine_state(ref, tmp_path, ram)
    finally:
        ref.quit()
    d = tmp_path / 'tt'
    d.mkdir()
    r = Replay(d, arch, args, log, f'rrbudget={budget}')
    try:
        moves = [end - 1000, end // 20] + \
            [rng.randrange(1, end - 1000) for _ in range(6)]
        done = []
        for t in moves + checks[::-1] + checks:
            assert r.qmp.seek(t) == t
            done.append(t)
            if t in want:
                assert machine_state(r, d, ram) == want[t], \
                    f'the machine at icount {t} is not the recorded one ' \
                    f'after seeks to {done}'
        s = r.qmp.ok('query-replay-snapshots')
        assert s['used'] <= s['budget'], s
        assert s['restores'] >= len(moves), s
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_seek_back_into_rewritten_code(tmp_path, recordings, machine):
    """Back into the phase where the guest rewrites a function at every
    timer tick (guest.c, test_code_rewrite()), from the end of the
    recording where TCG has translated the last version: the replay runs
    the version that memory holds there, so it prints the recorded
    result and reaches the recorded end.  A restore keeps translated code
    but for the pages it writes (replay-tt-pages.c): one that kept the
    code page's would run the last version and diverge."""
    log, recorded = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        end = log_end(r)
        res = r.gdb(arch, baremetal_elf(machine),
                    ['!break code_rewrite_tick', '!ignore 1 150', 'continue',
                     '!delete'])
        mid = res[0]['icount']
        assert res[0]['func'] == 'code_rewrite_tick', res
        assert r.qmp.seek(end - 1000) == end - 1000
        assert r.qmp.seek(mid + 1000) == mid + 1000
        before = r.serial.stat().st_size
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        tail = r.serial.read_bytes()[before:]
        assert b'code: ' in tail and recorded.endswith(tail), \
            (tail, recorded)
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_seek_leaves_even_history(tmp_path, bench_recordings, machine):
    """A seek far ahead places its snapshots as evenly and as densely as
    the budget allows, so that a later seek anywhere back replays at most
    about one even gap.  On the bench guest every snapshot holds about
    1 MiB, so rrbudget=24M holds some 22 of them, a few of which form the
    ramp that leads to the landing (the gap wanted growing by half the
    distance from it, from the 10 M interval).  Thinning snapshots taken
    every interval (the way to place them without foresight) can only
    merge neighbours, and leaves gaps up to twice as wide as others."""
    log = bench_recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, bench_args(machine), log, 'rrbudget=24M')
    try:
        end = log_end(r)
        assert r.qmp.seek(end - 1000) == end - 1000
        s = r.qmp.ok('query-replay-snapshots')
        assert s['used'] <= s['budget'], s
        snaps = s['snapshots']
        at = [x['icount'] for x in snaps]
        span = end - at[0]
        # none taken in vain: each one taken is held (a seek takes them
        # only as densely as the budget keeps them), and each had a cost
        assert s['taken'] == len(snaps) and s['take-us'] > 0, \
            (s['taken'], len(snaps), s['take-us'])
        # the part far from the landing, before the ramp that leads there
        far = [b - a for a, b in zip(at, at[1:]) if b <= at[0] + span * 0.7]
        assert len(far) >= 8, at
        # each taken at the first quiet point once its gap is reached (on
        # virt-max the bench guest is quiet every 40 M instructions): up
        # to about an interval later
        assert max(far) <= 1.2 * statistics.median(far) + s['interval'], \
            (at, s['interval'])
        # as dense as the budget allows: what fits besides the first
        # snapshot, less the ramp; each taken at the first quiet point
        # once its gap is reached, up to about an interval later
        size = statistics.median(x['size'] for x in snaps[1:])
        fit = (s['budget'] - snaps[0]['size']) / size
        ramp = math.log(max(span / fit / 10e6, 1)) / math.log(1.5)
        assert max(far) <= 1.1 * span / (fit - ramp) + s['interval'], \
            (at, fit, ramp)
        # and a seek back into it replays at most one of those gaps
        t = at[0] + span // 3
        assert r.qmp.seek(t) == t
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_gdb_continue_at_the_end(tmp_path, recordings, machine):
    """Each continue from the end of the log stops there again, at once,
    as gdb expects of the end of the history; the replay does not wait
    for instructions that the log does not have."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        end = log_end(r)
        res = r.gdb(arch, baremetal_elf(machine), ['continue'] * 4, 120)
        assert r.proc.poll() is None, r.stderr()
        assert res[-1]['icount'] == res[-2]['icount'] == end, res
        for x in res[2:]:
            assert x['secs'] < 10, x
        assert 'diverged' not in r.stderr(), r.stderr()
    finally:
        r.quit()


def cpu_seconds(pid):
    """The CPU time process @pid has used (all its threads)."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def assert_idle(r, secs=3):
    """A stopped replay waits: it uses (almost) no CPU time."""
    t0 = cpu_seconds(r.proc.pid)
    time.sleep(secs)
    used = cpu_seconds(r.proc.pid) - t0
    assert used < secs / 5, \
        f'the stopped replay used {used:.2f} s of CPU in {secs} s'


@pytest.mark.parametrize('machine', BAREMETAL)
@pytest.mark.parametrize('how', ['gdb-shutdown', 'gdb-end', 'no-shutdown'])
def test_stopped_at_the_end_is_idle(tmp_path, recordings, machine, how):
    """A replay stopped at the end of its log sleeps until told what to
    do; it does not poll the log's end at full speed.  The stops: gdb's at
    the recorded power-off, gdb's at the log's end (x86 powers off a few
    instructions before it), the pause of -no-shutdown at the power-off."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    extra = ['-no-shutdown'] if how == 'no-shutdown' else []
    r = Replay(tmp_path, arch, q.baremetal_args(machine) + extra, log)
    try:
        end = log_end(r)
        if how.startswith('gdb'):
            n = 1 if how == 'gdb-shutdown' else 2
            res = r.gdb(arch, baremetal_elf(machine), ['continue'] * n, 120)
            assert 0 < res[0]['icount'] <= end, res
            assert res[-1]['icount'] == end or how == 'gdb-shutdown', res
        else:
            r.qmp.ok('cont')
            r.qmp.wait_event('SHUTDOWN')
            deadline = time.monotonic() + 30
            while r.qmp.ok('query-status')['status'] == 'running':
                assert time.monotonic() < deadline, r.stderr()
                time.sleep(0.1)
        assert r.proc.poll() is None, r.stderr()
        assert_idle(r)
        # and it still answers
        assert r.qmp.ok('query-replay')['icount'] <= end
    finally:
        r.quit()


def hmp(r, line):
    return r.qmp.ok('human-monitor-command', **{'command-line': line})


def vmstate_disk(tmp_path):
    """A qcow2 image for savevm to keep the machine's state in, attached
    to no device (so it needs no blkreplay)."""
    img = tmp_path / 'vmstate.qcow2'
    subprocess.run([str(q.QEMU_BUILD / 'qemu-img'), 'create', '-q', '-f',
                    'qcow2', str(img), '16M'], check=True)
    return ['-drive', f'file={img},if=none,id=vmstate,format=qcow2']


@pytest.mark.parametrize('machine', BAREMETAL)
def test_savevm_loadvm_in_replay(tmp_path, recordings, machine):
    """loadvm in a replay takes the replay back to where savevm was: the
    same instruction count, the same machine, time travel from there, and
    the rest of the replay as recorded."""
    log, recorded = recordings(machine)
    arch = q.MACHINES[machine][0]
    args = q.baremetal_args(machine) + vmstate_disk(tmp_path)
    d = tmp_path / 'replay'
    d.mkdir()
    r = Replay(d, arch, args, log)
    try:
        end = log_end(r)
        here = end // 3
        assert r.qmp.seek(here) == here
        out = hmp(r, 'savevm s1')
        assert 'rror' not in out, out
        saved = machine_state(r, d, 64 << 20)
        assert r.qmp.seek(end - 1000) == end - 1000
        out = hmp(r, 'loadvm s1')
        assert 'rror' not in out, out
        assert r.qmp.ok('query-replay')['icount'] == here
        assert machine_state(r, d, 64 << 20) == saved
        # time travel goes on from there
        assert r.qmp.seek(here // 2) == here // 2
        assert r.qmp.seek(here) == here
        assert machine_state(r, d, 64 << 20) == saved
        # and so does the replay, from the log's position that loadvm
        # brought back (no snapshot of time travel in between)
        assert r.qmp.seek(end - 1000) == end - 1000
        out = hmp(r, 'loadvm s1')
        assert 'rror' not in out, out
        assert r.qmp.ok('query-replay')['icount'] == here
        before = r.serial.stat().st_size
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        assert 'diverged' not in r.stderr(), r.stderr()
        rest = r.serial.read_bytes()[before:]
        assert rest and recorded.endswith(rest), rest[-300:]
        assert b'QRR-GUEST end' in rest
    finally:
        r.quit()


def test_rrsnapshot_and_loadvm_rules(tmp_path):
    """rrsnapshot=: the recording saves a snapshot at its start and the
    replay loads it; loading it again mid-replay goes back to the start.
    loadvm is refused while recording, with the reason."""
    args = q.baremetal_args('pc') + vmstate_disk(tmp_path)
    log = tmp_path / 'snap.rr'
    rec = q.run('x86_64', args + q.icount_opt('record', log,
                                              'rrsnapshot=init'), typed='t')
    assert rec.rc == 0, rec.describe()
    recorded = rec.guest_output()
    d = tmp_path / 'replay'
    d.mkdir()
    r = Replay(d, 'x86_64', args, log, 'rrsnapshot=init')
    try:
        assert r.qmp.ok('query-replay')['icount'] == 0
        start = machine_state(r, d, 64 << 20)
        assert r.qmp.seek(2000000) == 2000000
        out = hmp(r, 'loadvm init')
        assert 'rror' not in out, out
        assert r.qmp.ok('query-replay')['icount'] == 0
        assert machine_state(r, d, 64 << 20) == start
        before = r.serial.stat().st_size
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        assert r.serial.read_bytes()[before:] == recorded
    finally:
        r.quit()
    # while recording
    qmp_path = tmp_path / 'rec.qmp'
    p = subprocess.Popen([str(q.qemu_binary('x86_64'))] + args +
                         q.icount_opt('record', tmp_path / 'again.rr',
                                      'rrsnapshot=init') +
                         ['-qmp', f'unix:{qmp_path},server=on,wait=off',
                          '-S'], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        m = QMP(qmp_path)
        out = m.ok('human-monitor-command',
                   **{'command-line': 'loadvm init'})
        assert 'loadvm is refused while recording' in out, out
        m.cmd('quit')
        m.close()
    finally:
        p.wait(30)


def test_seek_without_time_travel(tmp_path, recordings):
    """rrbudget=0: forward seeks only, backwards is a clear error."""
    log, _ = recordings('pc')
    r = Replay(tmp_path, 'x86_64', q.baremetal_args('pc'), log,
               'rrbudget=0')
    try:
        assert r.qmp.seek(2000000) == 2000000
        e = r.qmp.cmd('replay-seek', icount=1000)
        assert 'error' in e and 'time travel is off' in e['error']['desc']
        assert not r.qmp.ok('query-replay-snapshots')['enabled']
    finally:
        r.quit()


def test_device_without_state_turns_time_travel_off(tmp_path):
    """nvme saves no device state (its vmstate is unmigratable): a restore
    would give it back reset, its queues lost, and the replay would
    diverge.  So time travel turns itself off at the first snapshot,
    naming the device, and a seek back says why."""
    img = tmp_path / 'nvme.qcow2'
    subprocess.run([str(q.QEMU_BUILD / 'qemu-img'), 'create', '-q', '-f',
                    'qcow2', str(img), '1M'], check=True)
    args = q.baremetal_args('q35') + [
        '-drive', f'file={img},if=none,id=nv-direct,format=qcow2',
        '-drive', 'driver=blkreplay,if=none,image=nv-direct,id=nv',
        '-device', 'nvme,drive=nv,serial=qrrtt']
    log = tmp_path / 'nvme.rr'
    rec = q.run('x86_64', args + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()
    r = Replay(tmp_path, 'x86_64', args, log)
    try:
        assert r.qmp.seek(2000000) == 2000000
        e = r.qmp.cmd('replay-seek', icount=1000)
        assert 'error' in e, e
        desc = e['error']['desc']
        assert 'time travel is off' in desc and 'nvme' in desc, desc
        assert not r.qmp.ok('query-replay-snapshots')['enabled']
        assert "non-migratable device" in r.stderr(), r.stderr()
    finally:
        r.quit()


def test_budget_below_a_mib_is_refused(tmp_path, recordings):
    """rrbudget=512 is 512 bytes, not 512M: refused at start-up with a
    line that says so, where it used to run with time travel keeping the
    first and the latest snapshot only, and a warning that the snapshots
    needed "0 MiB, more than rrbudget=0 MiB"."""
    machine = BAREMETAL[0]
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    res = q.run(arch, q.baremetal_args(machine) +
                q.icount_opt('replay', log, 'rrbudget=512'))
    assert res.rc == 1, res.describe()
    assert '-icount rrbudget=512: 512 bytes is less than 1 MiB' in \
        res.err.decode(errors='replace'), res.describe()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_budget(tmp_path, recordings, machine):
    """Snapshots stay within rrbudget, and seeks work everywhere."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    budget = 1024 * 1024
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log,
               f'rrbudget={budget}')
    try:
        end = log_end(r)
        first = None
        positions = []
        # inside the recording: the last few instructions of the log come
        # after the guest's shutdown (see test_seek_past_the_shutdown)
        for t in [k * end // 12 for k in range(1, 12)]:
            assert r.qmp.seek(t) == t
            s = r.qmp.ok('query-replay-snapshots')
            assert s['budget'] == budget
            assert s['used'] <= budget, s
            first = first or s['snapshots'][0]
            positions = [x['icount'] for x in s['snapshots']]
        # the first snapshot stays.  (Not compared: how dense recent
        # snapshots are against old ones.  The interval doubles while
        # snapshots cost more than a tenth of the replay's time, so on a
        # busy host the newest gap can be the widest.  Thinning itself is
        # exercised by test_snapshots_restore_exact_state, whose budget
        # is a twentieth of what the history needs.)
        assert positions[0] == first['icount']
        assert len(positions) >= 3
        # seeking still works everywhere
        for t in (1, end // 2 + 7, end // 7):
            assert r.qmp.seek(t) == t
    finally:
        r.quit()


# ---- gdb ----

def reverse_stepi_check(r, arch, elf, start_bp, n):
    """@n stepi from @start_bp (None: from where the replay starts), then
    @n reverse-stepi must retrace them."""
    if start_bp:
        start = ['!' + f'break {start_bp}', 'continue', '!delete']
    else:
        start = ['p $pc']
    steps = start + ['stepi'] * n + ['reverse-stepi'] * n
    res = r.gdb(arch, elf, steps)
    fwd = res[0:n + 1]              # the start, then after each stepi
    back = res[n:]                  # the end, then after each reverse-stepi
    assert len(back) == n + 1
    got = [(s['pc'], s['icount']) for s in back]
    want = [(s['pc'], s['icount']) for s in reversed(fwd)]
    assert got == want, (
        'reverse-stepi does not retrace the stepi:\n' +
        '\n'.join(f'  {hex(a[0])} {a[1]}  vs  {hex(b[0])} {b[1]}'
                  for a, b in zip(got, want)))
    # and they really moved
    assert len({s['icount'] for s in fwd}) > n // 2
    return res


@pytest.mark.parametrize('machine', BAREMETAL)
def test_reverse_stepi(tmp_path, recordings, machine):
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        reverse_stepi_check(r, arch, baremetal_elf(machine), 'arch_rng', 30)
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_reverse_stepi_from_the_start(tmp_path, recordings, machine):
    """Started with -S and single-stepped at once, the replay still takes
    its first snapshot and can go back to the first instruction."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        res = reverse_stepi_check(r, arch, baremetal_elf(machine), None, 5)
        assert res[0]['icount'] == 0
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_reverse_continue_breakpoint(tmp_path, recordings, machine):
    """reverse-continue lands on each earlier hit, then at the start."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        # guest_printf: every line; lines are far apart in time (timer
        # waits, compute loops), so the search crosses snapshot windows
        steps = ['!break guest_printf', 'continue', 'continue', 'continue',
                 'continue', 'continue', 'reverse-continue',
                 'reverse-continue',
                 'reverse-continue', 'reverse-continue', '!delete',
                 'reverse-continue', 'reverse-stepi']
        res = r.gdb(arch, baremetal_elf(machine), steps)
        hits = [s for s in res[:5]]
        back = res[5:9]
        want = [(s['pc'], s['icount']) for s in reversed(hits[:4])]
        assert [(s['pc'], s['icount']) for s in back] == want, \
            json.dumps(res, indent=1)
        # no breakpoints left: back to the start of history, where gdb
        # hears (replaylog:begin) that there is no more
        assert res[9]['icount'] == 0, res[9]
        assert res[10]['icount'] == 0, res[10]
        assert r.gdb_output.count('No more reverse-execution history') == 2, \
            r.gdb_output
        s = r.qmp.ok('query-replay-snapshots')
        print(f'{machine}: last reverse-continue {s["last-move-us"]} us')
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_reverse_continue_watchpoint(tmp_path, recordings, machine):
    """A write watchpoint is found backwards at the write."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        steps = ['!break arch_timer_start', 'continue', '!delete',
                 '!watch timer_ticks', 'continue', 'value timer_ticks',
                 'continue', 'value timer_ticks', 'continue',
                 'value timer_ticks', 'continue', 'value timer_ticks',
                 'reverse-continue', 'value timer_ticks',
                 'reverse-continue', 'value timer_ticks']
        res = r.gdb(arch, baremetal_elf(machine), steps)
        fwd = res[1:5]
        back = res[5:7]
        assert [s['value'] for s in fwd] == [1, 2, 3, 4], fwd
        assert r.gdb_output.count('Hardware watchpoint 2: timer_ticks') \
            == 6, r.gdb_output
        if arch == 'x86_64':
            # x86 watchpoints stop after the access, both ways: backwards
            # at the state a forward run stopped at
            assert [(s['icount'], s['pc'], s['value']) for s in back] == \
                [(s['icount'], s['pc'], s['value'])
                 for s in (fwd[2], fwd[1])], json.dumps(res, indent=1)
            assert 'Old value = 4\nNew value = 3' in r.gdb_output
            assert 'Old value = 3\nNew value = 2' in r.gdb_output
        else:
            # AArch64's stop before the access: gdb steps over it, forwards
            # after the stop, backwards before it: so backwards, gdb ends
            # at the store that wrote the value seen forwards
            assert [(s['icount'], s['value']) for s in back] == \
                [(s['icount'] - 1, s['value'] - 1)
                 for s in (fwd[2], fwd[1])], json.dumps(res, indent=1)
            assert back[0]['pc'] == back[1]['pc'] != fwd[2]['pc']
    finally:
        r.quit()


# ---- gdb: source-level stepping backwards ----
#
# The bare-metal guests' call chain (common/guest.c, run CHAIN_CALLS times
# before the timer starts): chain_outer calls chain_middle twice, which
# calls chain_leaf twice, each a few lines of one volatile update each.
# gdb builds reverse-step, reverse-next and reverse-finish on
# reverse-stepi and on reverse-continue to breakpoints that it sets itself
# (at a function's entry), so they must land exactly where the forward
# run was: same PC, same instruction count.
#
# One difference is gdb's own: stepping backwards, it stops at the start
# of a line unless that is the function's entry point, from where it goes
# on back to the call (infrun.c: "When stepping backward, stop at
# beginning of line range (unless it's the function entry point, in which
# case keep going back to the call point)").  A forward step into a
# function without a prologue (chain_leaf; all three on x86) stops at its
# entry; a reverse-step does not.  So the sequences start one line into a
# function, and the forward positions at an entry are not expected
# backwards.

def where(s):
    return (s['pc'], s['icount'], s['func'], s['line'])


def where_list(states):
    return '\n'.join(f'  {s["cmd"]:<16} {s["pc"]:#x} {s["icount"]} '
                     f'{s["func"]}:{s["line"]}' for s in states)


def calls(trace, caller, callee):
    """The positions of @trace (a stepi sequence) at an instruction of
    @caller that enters @callee: its call instructions, before they ran."""
    return [a for a, b in zip(trace, trace[1:])
            if a['func'] == caller and b['func'] == callee]


def retrace_check(res, n, func):
    """@res: the start (in @func), @n forward commands, then @n backward
    ones: the backward ones visit the forward positions in reverse order
    (but for those at a function's entry, see above) and then go on back
    before the start."""
    assert len(res) == 2 * n + 1, where_list(res)
    fwd = res[:n + 1]
    back = res[n:]
    assert fwd[0]['func'] == func and fwd[0]['pc'] != fwd[0]['entry'], \
        where_list(res)
    # each forward command moved on to another line
    assert all(a['icount'] < b['icount'] and
               (a['func'], a['line']) != (b['func'], b['line'])
               for a, b in zip(fwd, fwd[1:])), where_list(fwd)
    want = [s for s in reversed(fwd) if s['pc'] != s['entry'] or s is fwd[-1]]
    got = back[:len(want)]
    assert [where(s) for s in got] == [where(s) for s in want], (
        f'{back[1]["cmd"]} does not retrace {fwd[1]["cmd"]}:\n'
        f'forward:\n{where_list(fwd)}\nbackward:\n{where_list(back)}')
    for s in got[1:]:
        assert 'No more reverse-execution history' not in s['text'], s
    # the rest went on back, before the start
    assert all(s['icount'] < fwd[0]['icount'] for s in back[len(want):]), \
        where_list(back)
    return fwd


@pytest.mark.parametrize('machine', BAREMETAL)
def test_reverse_next(tmp_path, recordings, machine):
    """reverse-next retraces next, over the calls, in chain_middle and
    chain_outer."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        # the third call of chain_middle (earlier calls are in the history
        # that reverse-continue searches for gdb's breakpoints), one line
        # in; then the second call of chain_outer.  4 lines on, the next
        # stays in the function on both (aarch64 stops at chain_middle's
        # entry, before its prologue, and a line later; x86 at its first
        # line)
        n = 4
        steps = ['!break chain_middle', 'continue', 'continue', 'continue',
                 '!delete', 'next'] + ['next'] * n + ['reverse-next'] * n
        steps += ['!break chain_outer', 'reverse-continue', '!delete',
                  'next'] + ['next'] * n + ['reverse-next'] * n
        res = r.gdb(arch, baremetal_elf(machine), steps)
        middle = res[3:3 + 2 * n + 1]
        outer = res[3 + 2 * n + 2:]
        for part, func in ((middle, 'chain_middle'), (outer, 'chain_outer')):
            fwd = retrace_check(part, n, func)
            assert all(s['func'] == func for s in part), where_list(part)
            # two of the lines are calls, stepped over: these took more
            # instructions than any other line
            spans = sorted(b['icount'] - a['icount']
                           for a, b in zip(fwd, fwd[1:]))
            assert spans[-2] > 2 * spans[-3], where_list(fwd)
        assert outer[0]['icount'] < middle[0]['icount']
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_reverse_step(tmp_path, recordings, machine):
    """reverse-step retraces step into chain_leaf and back out, twice."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        n = 12
        steps = ['!break chain_middle', 'continue', 'continue', '!delete',
                 'next'] + ['step'] * n + ['reverse-step'] * n
        res = r.gdb(arch, baremetal_elf(machine), steps)
        fwd = retrace_check(res[2:], n, 'chain_middle')
        funcs = [s['func'] for s in fwd]
        # into the first leaf call, out, into the second, out
        assert funcs.count('chain_leaf') >= 6, where_list(fwd)
        assert sum(a != b for a, b in zip(funcs, funcs[1:])) >= 3, \
            where_list(fwd)
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_reverse_next_to_breakpoint(tmp_path, recordings, machine):
    """reverse-next over a call stops at a breakpoint inside the callee, as
    next does, in the same call: the breakpoint's hit is later than gdb's
    own at the callee's entry, and earlier calls hit it too."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        # the third chain_leaf call, its second line: a breakpoint there
        steps = ['!break chain_leaf', 'continue', 'continue', 'continue',
                 '!delete', 'next', '!break *$pc', 'finish', 'reverse-next',
                 'reverse-finish', 'next', 'continue', 'reverse-continue',
                 'reverse-continue']
        res = r.gdb(arch, baremetal_elf(machine), steps)
        entry, bp, fin, rnext, call, fnext, later, back, earlier = res[2:]
        assert bp['func'] == 'chain_leaf' and bp['pc'] != entry['pc'], \
            where_list(res)
        assert fin['func'] == 'chain_middle', where_list(res)
        assert where(rnext) == where(bp), where_list(res)
        assert call['func'] == 'chain_middle' and \
            call['icount'] == entry['icount'] - 1, where_list(res)
        assert where(fnext) == where(bp), where_list(res)
        # the next call's hit, back to this one, and the one before
        assert later['pc'] == bp['pc'] and \
            later['icount'] > fin['icount'], where_list(res)
        assert where(back) == where(bp), where_list(res)
        assert earlier['pc'] == bp['pc'] and \
            res[1]['icount'] < earlier['icount'] < entry['icount'], \
            where_list(res)
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_reverse_finish(tmp_path, recordings, machine):
    """reverse-finish goes back to the call instruction, at the count
    before the call ran: from each of chain_middle's calls of chain_leaf,
    then from chain_middle to chain_outer's call of it."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        # forward: stepi through the first chain_middle call of the second
        # chain_outer call, and back to where that began
        n = 56
        steps = ['!break chain_outer', 'continue', 'continue', '!delete'] + \
            ['stepi'] * n + ['!break chain_outer', 'reverse-continue',
                             '!delete']
        # into the second leaf call, one line in, reverse-finish; back into
        # the first one, the same; then out of chain_middle
        steps += ['!break chain_leaf', 'continue', 'continue', '!delete',
                  'next', 'reverse-finish', '!break chain_leaf',
                  'reverse-continue', '!delete', 'next', 'reverse-finish',
                  'reverse-finish']
        res = r.gdb(arch, baremetal_elf(machine), steps)
        trace = res[1:n + 2]
        leaf_calls = calls(trace, 'chain_middle', 'chain_leaf')[:2]
        middle_calls = calls(trace, 'chain_outer', 'chain_middle')[:1]
        assert len(leaf_calls) == 2 and middle_calls, where_list(trace)
        # the trace went on past the return to chain_outer
        assert calls(trace, 'chain_middle', 'chain_outer'), where_list(trace)
        got = res[n + 2:]
        start, _, entry2, in2, fin2, entry1, in1, fin1, fin0 = got
        assert where(start) == where(trace[0]), where_list(got)
        assert where(entry2) == where(trace[trace.index(leaf_calls[1]) + 1])
        assert where(entry1) == where(trace[trace.index(leaf_calls[0]) + 1])
        for inside, entry in ((in1, entry1), (in2, entry2)):
            assert inside['func'] == 'chain_leaf' and \
                inside['icount'] > entry['icount'], where_list(got)
        want = [leaf_calls[1], leaf_calls[0], middle_calls[0]]
        assert [where(s) for s in (fin2, fin1, fin0)] == \
            [where(s) for s in want], (
                f'reverse-finish is not at the calls:\n{where_list(got)}\n'
                f'calls in the forward run:\n{where_list(want)}')
        assert leaf_calls[0]['pc'] != leaf_calls[1]['pc']
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_finish_then_reverse(tmp_path, recordings, machine):
    """finish out of chain_leaf, reverse-step back into it (at its
    return), reverse-finish to the call, step in and finish again: each
    where the forward stepi run was."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        n = 24
        steps = ['!break chain_middle', 'continue', 'continue', '!delete'] + \
            ['stepi'] * n + ['!break chain_middle', 'reverse-continue',
                             '!delete', '!break chain_leaf', 'continue',
                             '!delete', 'next', 'finish', 'reverse-step',
                             'reverse-finish', 'step', 'reverse-finish',
                             'step', 'finish']
        res = r.gdb(arch, baremetal_elf(machine), steps)
        trace = res[1:n + 2]
        call = calls(trace, 'chain_middle', 'chain_leaf')[0]
        i = trace.index(call)
        ret = calls(trace[i:], 'chain_leaf', 'chain_middle')[0]
        j = trace.index(ret)
        got = res[n + 2:]
        start, entry, inside, fin, back, rfin, stepped, rfin2, stepped2, \
            fin2 = got
        assert where(start) == where(trace[0]), where_list(got)
        assert where(entry) == where(trace[i + 1]), where_list(got)
        assert inside['func'] == 'chain_leaf' and \
            inside['icount'] > entry['icount'], where_list(got)
        # finish: just after the return, in chain_middle
        assert where(fin) == where(trace[j + 1]), where_list(got)
        # reverse-step: back in chain_leaf, at its return instruction
        assert where(back) == where(ret), where_list(got)
        # reverse-finish: at the call; step: into chain_leaf again; from
        # its entry, reverse-finish is one reverse-stepi
        assert where(rfin) == where(call), where_list(got)
        assert where(stepped) == where(trace[i + 1]), where_list(got)
        assert where(rfin2) == where(call), where_list(got)
        assert where(stepped2) == where(trace[i + 1]), where_list(got)
        assert where(fin2) == where(fin), where_list(got)
    finally:
        r.quit()


# The C handler that the bare-metal guests' vectors call.
TRAP_HANDLER = {'x86_64': 'isr_handler', 'aarch64': 'exc_handler'}


def trap_crossing(back, handler):
    """@back: reverse-stepi from @handler's entry back through the vector
    into the code that trapped.  Returns the number of instructions
    between the first position there and the vector's first one: 0 for an
    interrupt or a fault (taken before the instruction), 1 for an
    exception that its instruction raises (ud2, int3, svc, brk)."""
    i = next((i for i, s in enumerate(back)
              if s['func'] not in (None, handler)), None)
    assert i, where_list(back)
    vector, trapped = back[i - 1], back[i]
    assert vector['pc'] != trapped['pc'], where_list(back)
    # and on back from there, an instruction at a time
    assert all(a['icount'] == b['icount'] + 1
               for a, b in zip(back[i:], back[i + 1:])), where_list(back)
    assert len(back) - i > 5, where_list(back)
    return vector['icount'] - trapped['icount']


def retrace_stepi(back, fwd):
    assert [where(s) for s in reversed(fwd)] == [where(s) for s in back], (
        f'stepi does not retrace reverse-stepi:\nbackward:\n'
        f'{where_list(back)}\nforward:\n{where_list(fwd)}')


@pytest.mark.parametrize('machine', BAREMETAL)
def test_reverse_stepi_over_interrupt(tmp_path, recordings, machine):
    """From the handler of a timer interrupt that came in the middle of a
    computation, reverse-stepi goes back through the vector into the
    interrupted code, before the interrupt was taken (the same count,
    where the forward run was), and on; stepi retraces it."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    handler = TRAP_HANDLER[arch]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        # test_timer_busy enables interrupts, then computes
        n = 40
        steps = ['!break arch_irq_enable', 'continue', '!delete', 'finish',
                 f'!break {handler}', 'continue', '!delete'] + \
            ['reverse-stepi'] * n + ['stepi'] * n
        res = r.gdb(arch, baremetal_elf(machine), steps)
        assert res[1]['func'] == 'test_timer_busy', where_list(res[:3])
        back = res[2:n + 3]
        retrace_stepi(back, res[n + 2:])
        assert trap_crossing(back, handler) == 0
        assert 'test_timer_busy' in {s['func'] for s in back}
    finally:
        r.quit()


@pytest.mark.parametrize('machine', BAREMETAL)
def test_reverse_stepi_over_exceptions(tmp_path, recordings, machine):
    """The same from the handler of each exception that the guests take
    on purpose (x86: ud2, divide by zero, int3, a bad selector; AArch64:
    svc, brk, udf, an unaligned load): back to where the forward run was
    before the instruction that raised it.  The faults (divide by zero, a
    bad selector, the unaligned load) undo their instruction, the others
    are raised after the icount counted theirs."""
    log, _ = recordings(machine)
    arch = q.MACHINES[machine][0]
    handler = TRAP_HANDLER[arch]
    r = Replay(tmp_path, arch, q.baremetal_args(machine), log)
    try:
        n, traps = 40, 4
        steps = [f'!break {handler}']
        for _ in range(traps):
            steps += ['continue', '!disable'] + ['reverse-stepi'] * n + \
                ['stepi'] * n + ['!enable']
        res = r.gdb(arch, baremetal_elf(machine), steps)
        counted = []
        for k in range(traps):
            part = res[k * (2 * n + 1):(k + 1) * (2 * n + 1)]
            assert part[0]['func'] == handler, where_list(part)
            back = part[:n + 1]
            retrace_stepi(back, part[n:])
            counted.append(trap_crossing(back, handler))
        # both kinds are there
        assert sorted(set(counted)) == [0, 1], counted
        print(f'{machine}: instructions counted before the vector: '
              f'{counted}')
    finally:
        r.quit()


# ---- Linux ----

PAGE = 4096
PACKED = 0.6        # at most this share of the pages' bytes once packed


def wait_packed(r, timeout=30):
    """Wait until the packer thread has packed the snapshots' pages to at
    most PACKED of their bytes, and return the share: a Linux guest's
    pages pack 2.6x (all of RAM) to 4x (what changed in a second).
    Without packing the share is over 1 (with the device state)."""
    end = time.monotonic() + timeout
    while True:
        s = r.qmp.ok('query-replay-snapshots')['snapshots']
        share = sum(x['size'] for x in s) / (sum(x['pages'] for x in s) *
                                             PAGE)
        if share <= PACKED or time.monotonic() > end:
            break
        time.sleep(0.5)
    assert share <= PACKED, f'snapshots hold {share:.2f} of their pages'
    return share

@pytest.mark.parametrize('machine', LINUX)
def test_linux_seek_and_reverse(tmp_path, machine):
    arch = q.MACHINES[machine][0]
    args = q.linux_args(machine)
    log = tmp_path / 'boot.rr'
    rec = q.run(arch, args + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()
    recorded = rec.guest_output()
    r = Replay(tmp_path, arch, args, log)
    try:
        end = log_end(r)
        times = []
        for t in (end * 3 // 4, end // 4, end // 2, end // 4 + 12345,
                  end * 3 // 4 + 1):
            t0 = time.monotonic()
            assert r.qmp.seek(t) == t
            times.append(time.monotonic() - t0)
        # gdb: stepi and reverse-stepi in the kernel, wherever it is
        res = r.gdb(arch, None, ['info registers pc'] + ['stepi'] * 10 +
                    ['reverse-stepi'] * 10)
        fwd = [(s['pc'], s['icount']) for s in res[:11]]
        back = [(s['pc'], s['icount']) for s in res[10:]]
        assert back == list(reversed(fwd)), json.dumps(res, indent=1)
        rstep = max(s['secs'] for s in res[11:])
        snaps = r.qmp.ok('query-replay-snapshots')
        assert snaps['used'] <= snaps['budget'], snaps
        packed = wait_packed(r)
        # from the start to the end: the recording's output again
        assert r.qmp.seek(0) == 0
        before = r.serial.stat().st_size
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        assert r.serial.read_bytes()[before:] == recorded
        print(f'{machine}: seeks {[round(t, 2) for t in times]} s, '
              f'reverse-stepi (gdb round trip) max {rstep:.3f} s, snapshots '
              f'{snaps["used"] // 1024} KiB of {snaps["budget"] // 1024} '
              f'in {len(snaps["snapshots"])}, {packed:.2f} of their pages\' '
              f'bytes once packed')
    finally:
        r.quit()


@pytest.mark.parametrize('machine', LINUX)
def test_linux_restore_writes_only_what_changed(tmp_path, machine):
    """A restore writes back the pages that the replay changed since the
    snapshot it came from, and no more: going back one instruction from
    right after a snapshot in the middle of the recording writes a
    handful.  Two ways it wrote thousands: counting the pages to write
    from the newest snapshot instead of from the one the replay came from
    (pc: 24,000 pages at every such step), and the machine reset that
    begins a restore copying the ROM blobs back into RAM, which on virt
    is the whole -kernel Image (8,700 pages, patch 0030)."""
    arch = q.MACHINES[machine][0]
    args = q.linux_args(machine)
    log = tmp_path / 'boot.rr'
    rec = q.run(arch, args + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()
    r = Replay(tmp_path, arch, args + ['-trace', 'replay_tt_restore'], log)
    try:
        end = log_end(r)
        assert r.qmp.seek(end * 3 // 4) == end * 3 // 4
        at = [s['icount'] for s in
              r.qmp.ok('query-replay-snapshots')['snapshots']]
        snap = max(a for a in at if a < end // 2)
        assert r.qmp.seek(snap + 2) == snap + 2
        assert r.qmp.seek(snap + 1) == snap + 1
        restores = re.findall(r'restored the snapshot at icount (\d+) '
                              r'\(\d+ events\): (\d+) pages', r.stderr())
        assert len(restores) >= 2, r.stderr()
        last_at, pages = (int(x) for x in restores[-1])
        assert last_at == snap, restores
        assert pages < 200, (restores, machine)
        print(f'{machine}: restores wrote {[int(p) for _, p in restores]}'
              f' pages')
    finally:
        r.quit()


@pytest.mark.parametrize('machine', LINUX)
def test_linux_snapshots_share_the_disk_overlay(tmp_path, machine):
    """Snapshots share blkreplay's overlay blocks instead of copying them:
    the guest writes 8 MiB to a disk behind blkreplay (qrr.diskmib=8,
    twice over, buffered and O_DIRECT), then sleeps; the snapshots taken
    while it sleeps hold their pages and less than 1 MiB besides, not the
    8 MiB overlay again (each held all of it before).  The overlay's blocks that snapshots
    hold are copied before the replay writes them again: after seeks
    back and forth, a replay from the start writes and reads the disk
    as the recording did (the output equal, blkreplay's read checks
    quiet)."""
    arch = q.MACHINES[machine][0]
    image = tmp_path / 'disk.qcow2'
    subprocess.run([str(q.QEMU_BUILD / 'qemu-img'), 'create', '-q', '-f',
                    'qcow2', str(image), '64M'], check=True)
    args = q.linux_args(machine, 'qrr.disk=/dev/vda qrr.diskmib=8 '
                        'qrr.sleep=4') + [
        '-drive', f'file={image},if=none,id=d0,format=qcow2',
        '-drive', 'driver=blkreplay,if=none,image=d0,id=d1',
        '-device', 'virtio-blk-pci,drive=d1']
    log = tmp_path / 'disk.rr'
    rec = q.run(arch, args + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()
    recorded = rec.guest_output()
    assert 'diskmib-disk:' in recorded.decode(errors='replace'), recorded
    r = Replay(tmp_path, arch, args, log, 'rrbudget=2G')
    try:
        end = log_end(r)
        assert r.qmp.seek(end) <= end
        snaps = r.qmp.ok('query-replay-snapshots')['snapshots']
        # what they hold besides their pages (at most 4 KiB each)
        rest = [s['size'] - s['pages'] * 4096 for s in snaps[-4:]]
        assert max(rest) < 1 << 20, (str(snaps[-4:]), len(snaps))
        for t in (end // 2, end // 4, end * 3 // 4):
            assert r.qmp.seek(t) == t
        assert r.qmp.seek(0) == 0
        before = r.serial.stat().st_size
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        assert r.serial.read_bytes()[before:] == recorded
        assert 'diverge' not in r.stderr(), r.stderr()
        print(f'{machine}: the last snapshots hold {rest} bytes besides '
              f'their pages')
    finally:
        r.quit()


def device_recording(tmp_path, machine, disk_kind, nic, lines, load):
    """A recording of the Linux guest with a disk and a NIC
    (test_devices.device_args()) running qrr.load=@load, fetching a file
    of @lines lines: (args, log, the recording's Result)."""
    import test_devices as td
    arch = q.MACHINES[machine][0]
    www = tmp_path / 'www'
    www.mkdir()
    srv = td.Server(www)
    image = tmp_path / 'disk.qcow2'
    subprocess.run([str(q.QEMU_BUILD / 'qemu-img'), 'create', '-q', '-f',
                    'qcow2', str(image), '64M'], check=True)
    try:
        srv.set(''.join(f'{i}\n' for i in range(lines)))
        args = td.device_args(machine, disk_kind, nic, image, srv.url)
        args[args.index('-append') + 1] += f' qrr.load={load}'
        log = tmp_path / 'devices.rr'
        rec = q.run(arch, args + q.icount_opt('record', log))
        assert rec.rc == 0, rec.describe()
    finally:
        srv.httpd.shutdown()
    return args, log, rec


@pytest.mark.parametrize('machine', LINUX)
def test_linux_snapshots_while_the_guest_sends(tmp_path, machine):
    """While the guest downloads a file, virtio-net's transmit bottom half
    is often queued, waiting for the position at which the log delivers
    it.  Snapshots may hold it (replay-async.c) and a restore puts it back
    in the queue: after seeks into the downloads, the replay goes on to
    the recorded end with the recorded output.  History has no long gap
    there.  (On this guest the queue is seldom busy at a slice's end; on
    the benchmark's, with gdb breakpoints set, a queue that had to be
    empty left gaps of 150 M instructions, see the commit.)

    With rrcheck=on, every snapshot is checked against the RAM: the
    downloads make the kernel age pages, and AArch64's page table walker
    then set their descriptors' Access Flag in a write that the dirty log
    did not see (patch 0036); the snapshots lacked it, and a replay
    restored to one went another way later.  Then the replay stops and
    resumes 40 times: virtio-net schedules its waiting transmit bottom half
    again as the machine resumes, and that second item for the log made
    the replay abort at its end (replay-async.c)."""
    arch = q.MACHINES[machine][0]
    args, log, rec = device_recording(tmp_path, machine, 'virtio-blk-pci',
                                      'virtio-net-pci', 300000, 4)
    recorded = rec.guest_output()
    assert b'load 1: ' in recorded, rec.describe()
    r = Replay(tmp_path, arch, args, log, 'rrbudget=768M,rrcheck=on')
    try:
        end = log_end(r)
        # forward as a debugger runs it (a seek far ahead would space its
        # snapshots as evenly as the budget allows, by design)
        r.gdb(arch, None, ['continue'])
        at = [s['icount'] for s in
              r.qmp.ok('query-replay-snapshots')['snapshots']]
        # the load and its downloads: the last 6 s of 13 s of guest time
        load = [a for a in at if a >= end * 0.6]
        gap = max(b - a for a, b in zip(load, load[1:]))
        assert gap <= 100_000_000, (gap, load)
        rng = random.Random(f'{machine}-send')
        for t in sorted(rng.sample(range(int(end * 0.6), end - 1000), 3),
                        reverse=True):
            assert r.qmp.seek(t) == t
        # stops the recording does not have, each with the machine resuming:
        # virtio-net schedules its waiting transmit bottom half again then
        for _ in range(40):
            now = r.qmp.ok('query-replay')['icount']
            r.qmp.ok('human-monitor-command',
                     **{'command-line': f'replay_break {now + 3_000_000}'})
            r.qmp.events.clear()
            r.qmp.ok('cont')
            r.qmp.wait_event('STOP')
        before = r.serial.stat().st_size
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        tail = r.serial.read_bytes()[before:]
        assert tail and recorded.endswith(tail), (tail, recorded)
        assert 'rrcheck' not in r.stderr(), r.stderr()
        print(f'{machine}: {len(load)} snapshots in the load, largest gap '
              f'{gap / 1e6:.1f} M instructions')
    finally:
        r.quit()


@pytest.mark.parametrize('machine,disk_kind,nic',
                         [('pc', 'ahci', 'e1000'),
                          ('virt-max', 'usb-storage', 'e1000')])
def test_linux_restore_across_a_memory_map_change(tmp_path, machine,
                                                  disk_kind, nic):
    """A restore resets the machine and loads the snapshot inside one
    memory transaction where it can, so the post_load hooks that read
    guest memory through a PCI device's bus master address space (AHCI's
    FIS areas, xhci's slot and endpoint contexts) read it through the
    memory map of the position left.  Going from the start of the replay
    (no BAR mapped, bus mastering off) to a snapshot taken while the
    guest uses its disk, that map is the wrong one: batched anyway, six
    pages of RAM were zero at the landing on pc (AHCI), and the replay
    diverged after it on virt (xhci).  The restore must see that the map
    differs from the snapshot's (query-replay-snapshots:
    restores-remapped) and not batch; the landing is then the forward
    replay's, registers and RAM, and the replay reaches the recorded end
    with the recorded output.  (virtio without iommu_platform reads
    through address_space_memory, whose RAM stays mapped: no test.)"""
    arch = q.MACHINES[machine][0]
    args, log, rec = device_recording(tmp_path, machine, disk_kind, nic,
                                      100000, 2)
    recorded = rec.guest_output()
    assert b'load 1: ' in recorded, rec.describe()
    ram = 256 << 20
    d = tmp_path / 'ref'
    d.mkdir()
    ref = Replay(d, arch, args, log, 'rrbudget=0')
    try:
        end = log_end(ref)
        target = end - end // 8
        assert ref.qmp.seek(target) == target
        want = machine_state(ref, d, ram)
    finally:
        ref.quit()
    d = tmp_path / 'tt'
    d.mkdir()
    r = Replay(d, arch, args, log)
    try:
        # history up to near the end (the guest powers off somewhat
        # before the log ends), then the start
        late = end - end // 16
        assert r.qmp.seek(late) == late
        assert r.qmp.seek(1000) == 1000
        before = r.qmp.ok('query-replay-snapshots')['restores-remapped']
        assert r.qmp.seek(target) == target
        after = r.qmp.ok('query-replay-snapshots')['restores-remapped']
        assert after == before + 1, (before, after)
        assert machine_state(r, d, ram) == want, \
            f'the machine at icount {target} is not the recorded one'
        size = r.serial.stat().st_size
        r.qmp.ok('cont')
        assert r.wait() == 0, r.stderr()
        assert 'diverged' not in r.stderr(), r.stderr()
        tail = r.serial.read_bytes()[size:]
        assert tail and recorded.endswith(tail), (tail[-300:], r.stderr())
    finally:
        r.quit()


KERNEL_SYMS = {
    # a system call the guest's /init makes a few dozen times, and a
    # variable every timer tick writes
    'x86_64': ('__x64_sys_execve', 'jiffies_64'),
    # Debian's arm64 kernel lists no data symbols in /proc/kallsyms
    # (no CONFIG_KALLSYMS_ALL): the watchpoint half is x86 only there
    'aarch64': ('__arm64_sys_execve',),
}


def kernel_symbol(out, name):
    """The address the guest printed for @name (qrr.syms=)."""
    m = re.search(rb'^sym: ([0-9a-f]+) ' + name.encode() + rb'\r?$', out,
                  re.M)
    assert m, f'the guest printed no address for {name}'
    return int(m.group(1), 16)


@pytest.mark.parametrize('machine', LINUX)
def test_linux_kernel_breakpoint_and_watchpoint(tmp_path, machine):
    """In a Linux guest: reverse-continue lands on each earlier hit of a
    breakpoint on a system call with the forward run's PC and icount, and
    finds the last write of a timer-tick variable backwards."""
    arch = q.MACHINES[machine][0]
    args = q.linux_args(machine, 'nokaslr qrr.syms=' +
                        ','.join(KERNEL_SYMS[arch]))
    log = tmp_path / 'boot.rr'
    rec = q.run(arch, args + q.icount_opt('record', log))
    assert rec.rc == 0, rec.describe()
    syms = [kernel_symbol(rec.out, s) for s in KERNEL_SYMS[arch]]
    func = syms[0]
    r = Replay(tmp_path, arch, args, log)
    try:
        steps = [f'!hbreak *{func:#x}'] + ['continue'] * 4 + \
            ['reverse-continue'] * 3
        if len(syms) > 1:
            watch = f'*(long *){syms[1]:#x}'
            steps += ['!delete', f'!watch {watch}', 'reverse-continue',
                      f'value {watch}', 'reverse-continue', f'value {watch}']
        res = r.gdb(arch, None, steps, timeout=600)
        hits = res[:4]
        assert all(s['pc'] == func for s in hits), json.dumps(res, indent=1)
        assert len({s['icount'] for s in hits}) == 4
        back = res[4:7]
        assert [(s['pc'], s['icount']) for s in back] == \
            [(s['pc'], s['icount']) for s in reversed(hits[:3])], \
            json.dumps(res, indent=1)
        if len(syms) > 1:
            # each reverse-continue goes back to an earlier write of the
            # tick count, which the tick before had one lower
            w1, w2 = res[7], res[8]
            assert hits[0]['icount'] > w1['icount'] > w2['icount'] > 0, \
                json.dumps(res, indent=1)
            assert w1['value'] == w2['value'] + 1, json.dumps(res, indent=1)
            assert 'Hardware watchpoint' in r.gdb_output, r.gdb_output
    finally:
        r.quit()
