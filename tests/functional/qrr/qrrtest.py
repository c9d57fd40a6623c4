# qrr functional test harness: run QEMU built with qrr, record, replay and
# compare what the guest printed.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import subprocess
import threading
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[3]
BUILD = Path(os.environ.get('QRR_BUILD', TOP / 'build'))
# make sanitize points this at the ASan/UBSan build
QEMU_BUILD = Path(os.environ.get('QRR_QEMU_BUILD', BUILD / 'qrr' / 'qemu'))
# What a sanitizer prints when it finds something (make sanitize).
SANITIZER_REPORTS = (b'ERROR: AddressSanitizer', b'ERROR: LeakSanitizer',
                     b'runtime error:', b'ThreadSanitizer:')

# What each machine configuration needs on the command line.
MACHINES = {
    'pc': ('x86_64', ['-M', 'pc', '-cpu', 'max'], 'ttyS0'),
    'q35': ('x86_64', ['-M', 'q35', '-cpu', 'max'], 'ttyS0'),
    'virt-a57': ('aarch64', ['-M', 'virt', '-cpu', 'cortex-a57'], 'ttyAMA0'),
    'virt-max': ('aarch64', ['-M', 'virt', '-cpu', 'max'], 'ttyAMA0'),
    # 32-bit guests: an i386 kernel on pc/q35, an ARMv7 (armhf) kernel on
    # a cortex-a15 (AArch32 only; highmem=off keeps the memory map 32-bit)
    'pc-i386': ('x86_64', ['-M', 'pc', '-cpu', 'max'], 'ttyS0'),
    'q35-i386': ('x86_64', ['-M', 'q35', '-cpu', 'max'], 'ttyS0'),
    'virt-a15': ('aarch64', ['-M', 'virt,highmem=off', '-cpu', 'cortex-a15'],
                 'ttyAMA0'),
}

# The Linux guest (build/guest/<name>) of the machines that do not run
# the one named after their QEMU architecture.
GUESTS = {
    'pc-i386': 'i386',
    'q35-i386': 'i386',
    'virt-a15': 'arm',
}

DEFAULT_TIMEOUT = int(os.environ.get('QRR_TEST_TIMEOUT', '600'))


def qemu_binary(arch):
    return QEMU_BUILD / f'qemu-system-{arch}'


def guest_files(arch):
    """The Linux test guest of @arch: a QEMU architecture (x86_64,
    aarch64) or a name of GUESTS' (i386, arm)."""
    d = BUILD / 'guest' / arch
    return d / 'vmlinuz', d / 'initrd.gz'


def machine_guest(machine):
    """The name of the Linux guest that @machine boots (guest_files)."""
    return GUESTS.get(machine, MACHINES[machine][0])


def linux_args(machine, append='', mem='256M'):
    """QEMU arguments (without the binary) booting the test guest."""
    arch, margs, console = MACHINES[machine]
    kernel, initrd = guest_files(machine_guest(machine))
    return margs + [
        '-m', mem, '-nodefaults', '-display', 'none', '-no-reboot',
        '-serial', 'stdio', '-monitor', 'none',
        '-kernel', str(kernel), '-initrd', str(initrd),
        '-append', f'console={console} panic=-1 printk.devkmsg=on {append}',
    ]


def baremetal_guest(arch):
    """The bare-metal test guest (tests/guest/build-baremetal.sh)."""
    return BUILD / 'guest' / 'baremetal' / {'x86_64': 'x86'}.get(arch, arch) \
        / 'guest.elf'


def baremetal_args(machine, mem='64M'):
    """QEMU arguments (without the binary) running the bare-metal guest."""
    arch, margs, _ = MACHINES[machine]
    return margs + [
        '-m', mem, '-nodefaults', '-display', 'none', '-no-reboot',
        '-serial', 'stdio', '-monitor', 'none',
        '-kernel', str(baremetal_guest(arch)),
    ]


class Result:
    def __init__(self, rc, out, err, elapsed):
        self.rc = rc
        self.out = out
        self.err = err
        self.elapsed = elapsed

    def guest_output(self):
        """All the serial output of a guest that ran to its end marker."""
        assert b'QRR-GUEST begin' in self.out, \
            'the guest never started: ' + self.describe()
        assert b'QRR-GUEST end' in self.out, \
            'the guest never finished: ' + self.describe()
        return self.out

    def describe(self):
        return (f'exit {self.rc}\n--- serial (last 2000 bytes) ---\n'
                f'{self.out[-2000:].decode(errors="replace")}\n'
                f'--- stderr ---\n{self.err.decode(errors="replace")}')


def run(arch, args, typed=None, timeout=DEFAULT_TIMEOUT, env=None,
        preexec_fn=None, watch=None):
    """Run QEMU; when the guest prompts (QRR-PROMPT), type @typed; call
    @watch, if given, with the serial output so far each time it grows.

    Returns a Result; a run that outlives @timeout is killed and its
    Result has rc None.
    """
    cmd = [str(qemu_binary(arch))] + args
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env,
                         preexec_fn=preexec_fn)
    out = bytearray()
    err = bytearray()

    def pump_out():
        sent = False
        while True:
            b = p.stdout.read1(65536)
            if not b:
                return
            out.extend(b)
            if watch:
                watch(out)
            if typed is not None and not sent and b'QRR-PROMPT' in out:
                sent = True
                try:
                    p.stdin.write(typed.encode() + b'\r')
                    p.stdin.flush()
                except BrokenPipeError:
                    pass

    def pump_err():
        while True:
            b = p.stderr.read1(65536)
            if not b:
                return
            err.extend(b)

    threads = [threading.Thread(target=pump_out, daemon=True),
               threading.Thread(target=pump_err, daemon=True)]
    for t in threads:
        t.start()
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = None
    for t in threads:
        t.join(10)
    check_sanitizers(cmd, bytes(err))
    return Result(rc, bytes(out), bytes(err), time.monotonic() - t0)


def check_sanitizers(cmd, err):
    """A sanitizer's report in QEMU's stderr fails the test, whatever the
    test expected of the run (a bad log's error exit included)."""
    for s in SANITIZER_REPORTS:
        if s in err:
            i = err.index(s)
            raise AssertionError(f'{s.decode()} in {cmd[0]}:\n' +
                                 err[max(0, i - 200):i + 3000].decode(
                                     errors='replace'))


def icount_opt(mode, logfile, extra=''):
    s = f'shift=auto,rr={mode},rrfile={logfile}'
    return ['-icount', s + (',' + extra if extra else '')]


def record_replay(arch, args, logfile, typed=('recorded line',
                                              'replayed line')):
    """Record then replay; returns (record Result, replay Result)."""
    rec = run(arch, args + icount_opt('record', logfile), typed=typed[0])
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    rep = run(arch, args + icount_opt('replay', logfile), typed=typed[1])
    assert rep.rc == 0, 'replay failed: ' + rep.describe()
    return rec, rep


def log_events(log):
    """The events of the replay log @log, as replay-dump.py --json gives
    them: dicts with icount, kind, args."""
    r = subprocess.run([str(TOP / 'scripts' / 'replay-dump.py'), '--json',
                        str(log)], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in r.stdout.splitlines()]


def assert_same_output(rec, rep):
    a = rec.guest_output()
    b = rep.guest_output()
    if a != b:
        al = a.splitlines()
        bl = b.splitlines()
        for i, (x, y) in enumerate(zip(al, bl)):
            if x != y:
                raise AssertionError(
                    f'replay diverged at line {i + 1} of the guest output:\n'
                    f'  record: {x!r}\n  replay: {y!r}')
        raise AssertionError(f'output lengths differ: record {len(a)} '
                             f'bytes, replay {len(b)} bytes')
