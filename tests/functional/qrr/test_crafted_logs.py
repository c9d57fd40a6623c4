# Crafted logs: the log is untrusted input.  A real recording is rewritten
# with craftlog.py so that one event is wrong in a way that only its
# consumer can see (the checksums are valid again), and the replay must
# stop with a one-line "record/replay: ..." error naming the event and
# its instruction count, and a nonzero exit: never a crash, an assertion
# or a replay that ends as if nothing were wrong.
#
# Not here: a char-read-all event longer than the device's buffer
# (replay_char_read_all_load()).  Only qemu_chr_fe_read_all() consumes
# char-read-all events, and only vhost-user, the TPM emulator and ivshmem
# call it: no test guest has any of them, so a crafted event there would
# never be read and a test could not fail.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import re
import struct
import subprocess

import pytest

import craftlog
import qrrtest as q
import test_timetravel as tt

MACHINE = 'virt-a57'
ARCH = q.MACHINES[MACHINE][0]
TIMEOUT = 120


def plain_args():
    return q.linux_args(MACHINE)


def disk_args(image):
    """A disk behind blkreplay (block events) and virtio-rng (bottom
    halves)."""
    return q.linux_args(MACHINE, 'qrr.disk=/dev/vda') + [
        '-drive', f'file={image},if=none,id=img-direct,format=qcow2',
        '-drive', 'driver=blkreplay,if=none,image=img-direct,'
        'id=img-blkreplay',
        '-device', 'virtio-blk-device,drive=img-blkreplay',
        '-device', 'virtio-rng-device']


def record(args, log):
    r = q.run(ARCH, args + q.icount_opt('record', log), timeout=TIMEOUT)
    assert r.rc == 0, 'record failed: ' + r.describe()
    return log


@pytest.fixture(scope='module')
def plain_log(tmp_path_factory):
    return record(plain_args(), tmp_path_factory.mktemp('crafted') / 'p.rr')


@pytest.fixture(scope='module')
def disk(tmp_path_factory):
    img = tmp_path_factory.mktemp('crafted-disk') / 'disk.qcow2'
    subprocess.run([str(q.QEMU_BUILD / 'qemu-img'), 'create', '-q', '-f',
                    'qcow2', str(img), '4M'], check=True)
    return img


@pytest.fixture(scope='module')
def disk_log(tmp_path_factory, disk):
    log = record(disk_args(disk),
                 tmp_path_factory.mktemp('crafted') / 'd.rr')
    events = craftlog.Log(log)
    assert len(events.find('bh')) >= 2 and len(events.find('block')) >= 4, \
        'the disk recording has too few bh and block events'
    return log


def crafted(log, tmp_path, fn):
    """@log with @fn applied to its craftlog.Log; returns (path, what @fn
    returned)."""
    c = craftlog.Log(log)
    what = fn(c)
    return c.write(tmp_path / 'crafted.rr'), what


def replay(args, log):
    return q.run(ARCH, args + q.icount_opt('replay', log), timeout=TIMEOUT)


def refused(args, log, pattern, icount):
    """Replay @log: it must fail cleanly with a last line matching
    @pattern and naming @icount.  Returns that line."""
    r = replay(args, log)
    err = r.err.decode(errors='replace')
    assert r.rc is not None, 'the replay hung: ' + r.describe()
    assert r.rc > 0, 'the replay crashed or succeeded: ' + r.describe()
    assert 'Assertion' not in err and 'AddressSanitizer' not in err, \
        r.describe()
    lines = err.strip().splitlines()
    assert lines, 'no error message: ' + r.describe()
    last = lines[-1]
    assert re.match(r'qemu-system-\w+: record/replay: ', last), r.describe()
    assert re.search(pattern, last), last
    assert f'icount {icount}' in last, last
    return last


def mid(events):
    return events[len(events) // 2]


# ---- input ----

def input_words(*w):
    """The data of an input event: six little-endian int64 words."""
    return struct.pack('<6q', *(list(w) + [0] * (6 - len(w))))


# InputEventKind, KeyValueKind (qapi/ui.json)
KEY, BTN, REL, ABS, MTT = range(5)
NUMBER, QCODE = range(2)


def insert_input(data, console=0):
    """Insert an input event before an interrupt in the middle of the
    log: a point where the replay delivers events."""
    def fn(c):
        at = mid(c.find('interrupt'))
        c.insert_before(at, craftlog.Ev('input', None, [console], data))
        return at.icount
    return fn


def test_valid_input_event_replays(tmp_path, plain_log):
    """The control: a valid input event inserted the same way (a left
    button press, which no device of the machine takes) replays."""
    log, _ = crafted(plain_log, tmp_path,
                     insert_input(input_words(BTN, 0, 1)))
    r = replay(plain_args(), log)
    assert r.rc == 0, r.describe()


BAD_INPUT = {
    'button': (input_words(BTN, 99, 1), 'bad button'),
    'negative-button': (input_words(BTN, -1, 1), 'bad button'),
    'button-down': (input_words(BTN, 0, 2), 'bad button down flag'),
    'key-code': (input_words(KEY, QCODE, 99999, 1), 'bad key code'),
    'key-number': (input_words(KEY, NUMBER, -5, 1), 'bad key number'),
    'key-value-kind': (input_words(KEY, 7, 1, 1), 'bad key value kind'),
    'rel-axis': (input_words(REL, 77, 5), 'bad axis'),
    'abs-axis': (input_words(ABS, -3, 5), 'bad axis'),
    'mtt-type': (input_words(MTT, 50, 0, 0, 0, 0), 'bad multi-touch type'),
    'mtt-axis': (input_words(MTT, 0, 0, 0, 9, 0), 'bad multi-touch axis'),
    'event-kind': (input_words(9), 'bad input event kind'),
    'short-data': (input_words(BTN, 0, 1)[:40], 'has 40 bytes of data'),
}


@pytest.mark.parametrize('case', BAD_INPUT)
def test_input_out_of_range(tmp_path, plain_log, case):
    data, why = BAD_INPUT[case]
    log, icount = crafted(plain_log, tmp_path, insert_input(data))
    refused(plain_args(), log, r"the log's input event at icount \d+ .*" +
            re.escape(why), icount)


def test_input_for_no_console(tmp_path, plain_log):
    log, icount = crafted(plain_log, tmp_path,
                          insert_input(input_words(BTN, 0, 1), 1000))
    refused(plain_args(), log, r'console argument 1000, which names no '
            'console', icount)


# ---- network ----

def net_args():
    """A NIC whose netdev goes through filter-replay (filter index 0)."""
    return plain_args() + [
        '-netdev', 'user,id=net0', '-device', 'virtio-net-device,netdev=net0',
        '-object', 'filter-replay,id=replay0,netdev=net0']


@pytest.fixture(scope='module')
def net_log(tmp_path_factory):
    return record(net_args(), tmp_path_factory.mktemp('crafted') / 'n.rr')


def insert_packet(index):
    """Insert a 60-byte packet for filter @index before an interrupt in
    the middle of the log."""
    def fn(c):
        at = mid(c.find('interrupt'))
        c.insert_before(at, craftlog.Ev('net', None, [index, 0],
                                        bytes(60)))
        return at.icount
    return fn


def test_valid_packet_replays(tmp_path, net_log):
    """The control: a packet for the machine's one filter replays."""
    log, _ = crafted(net_log, tmp_path, insert_packet(0))
    r = replay(net_args(), log)
    assert r.rc == 0, r.describe()


@pytest.mark.parametrize('index', [1, -1, 1 << 40])
def test_packet_for_no_filter(tmp_path, net_log, index):
    log, icount = crafted(net_log, tmp_path, insert_packet(index))
    refused(net_args(), log, rf'a packet for network filter {index}, which '
            'does not exist in this run', icount)


# ---- value events ----

def test_random_length(tmp_path, plain_log):
    """Random bytes: one more in the log than the guest asks for."""
    def fn(c):
        ev = c.find('random')[0]
        ev.data += b'x'
        return ev.icount
    log, icount = crafted(plain_log, tmp_path, fn)
    refused(plain_args(), log, r'random bytes, the recording has \d+',
            icount)


def rng_args(source):
    """virtio-rng reading a host file through rng-random."""
    return q.linux_args(MACHINE, 'qrr.hwrng=16') + [
        '-object', f'rng-random,filename={source},id=rng0',
        '-device', 'virtio-rng-device,rng=rng0']


@pytest.fixture(scope='module')
def rng_log(tmp_path_factory):
    d = tmp_path_factory.mktemp('crafted-rng')
    (d / 'entropy').write_bytes(bytes(range(256)) * 256)
    args = rng_args(d / 'entropy')
    return args, record(args, d / 'r.rr')


@pytest.mark.parametrize('result,length', [(70000, 70000), (-1, 0),
                                           (-5, 0), (None, -1)],
                         ids=['more-than-asked', 'result-negative-one',
                              'errno-not-eagain', 'result-not-length'])
def test_entropy_read_impossible(tmp_path, rng_log, result, length):
    """rng-random's read of its file (a random event with the count
    read): a count beyond the request, a result a non-blocking read
    that the recording went on from cannot have, or bytes that are not
    that many.  The backend used to copy the bytes in unchecked."""
    args, log = rng_log

    def fn(c):
        ev = mid(c.find('random', lambda e: e.args[0] > 0))
        if result is None:
            ev.args[0] = len(ev.data) + length
        else:
            ev.args[0] = result
            ev.data = bytes(length)
        return ev.icount
    log, icount = crafted(log, tmp_path, fn)
    refused(args, log, r"the log's random event at icount \d+ has result "
            r'-?\d+ and \d+ bytes, which a read of at most \d+ bytes from '
            'an entropy source cannot have', icount)


@pytest.mark.parametrize('field,value', [(1, 1 << 20), (1, -1),
                                         (0, 1 << 20)],
                         ids=['count-too-large', 'count-negative',
                              'result-too-large'])
def test_char_write_out_of_range(tmp_path, plain_log, field, value):
    """A serial write's logged count or result beyond the write's length:
    the device would be told it wrote what it never had (and QEMU used to
    assert)."""
    def fn(c):
        ev = mid(c.find('char-write'))
        ev.args[field] = value
        return ev.icount
    log, icount = crafted(plain_log, tmp_path, fn)
    refused(plain_args(), log, r"the log's char-write event at icount \d+ "
            r'has result -?\d+ and offset -?\d+, which a write of \d+ bytes '
            'cannot have', icount)


def test_clock_of_the_other_clock(tmp_path, plain_log):
    """A host clock read logged as a virtual-rt one."""
    def fn(c):
        ev = c.find('clock', lambda e: e.args[0] == craftlog.CLOCK['host'])[0]
        ev.args[0] = craftlog.CLOCK['virtual-rt']
        return ev.icount
    log, icount = crafted(plain_log, tmp_path, fn)
    refused(plain_args(), log, 'the host clock was read, but the recording '
            'has no read there', icount)


def test_clock_unknown(tmp_path, plain_log):
    """Clock 2: the byte encoding has room for it, QEMU has no such clock."""
    def fn(c):
        ev = mid(c.find('clock'))
        ev.args[0] = 2
        return ev.icount
    log, icount = crafted(plain_log, tmp_path, fn)
    refused(plain_args(), log, r'the log.s clock event at icount \d+ has '
            r'argument 2, which is not one of the 2 that this QEMU knows',
            icount)


def sync_event(c):
    return c.find('sync')[3]


def test_sync_payload_short(tmp_path, plain_log):
    def fn(c):
        ev = sync_event(c)
        ev.data = ev.data[:-8]
        return ev.icount
    log, icount = crafted(plain_log, tmp_path, fn)
    refused(plain_args(), log, r'sync point \d+.*register block size: '
            r'recorded \d+, replayed \d+', icount)


def test_sync_payload_flipped(tmp_path, plain_log):
    def fn(c):
        ev = sync_event(c)
        ev.data = bytes([ev.data[0] ^ 1]) + ev.data[1:]
        return ev.icount
    log, icount = crafted(plain_log, tmp_path, fn)
    refused(plain_args(), log, r'sync point \d+.*register 0: recorded',
            icount)


# ---- ordered events ----

# The shutdown cause reaches qemu_system_shutdown_request() and QAPI's
# enum lookup: a cause QEMU does not have is refused when decoded.
@pytest.mark.parametrize('cause', [99, -1])
def test_shutdown_cause(tmp_path, plain_log, cause):
    def fn(c):
        ev = c.find('shutdown')[0]
        ev.args[0] = cause
        return ev.icount
    log, icount = crafted(plain_log, tmp_path, fn)
    refused(plain_args(), log, rf'the log.s shutdown event at icount \d+ '
            rf'has argument {cause}, which is not one', icount)


# A replay reads the recorded shutdown from the log's end when it opens
# it, for query-replay and info replay to name: the cause read there is
# checked as the replay checks it when it gets there (above).  2 is
# ShutdownCause's host-qmp-quit (qapi/run-state.json).
@pytest.mark.parametrize('cause', [2, 99])
def test_shutdown_named_at_open(tmp_path, plain_log, cause):
    def fn(c):
        ev = c.find('shutdown')[-1]
        ev.args[0] = cause
        return ev.icount
    log, icount = crafted(plain_log, tmp_path, fn)
    r = tt.Replay(tmp_path, ARCH, plain_args(), log)
    try:
        info = r.qmp.ok('query-replay')
        text = r.qmp.ok('human-monitor-command',
                        **{'command-line': 'info replay'})
        assert info['icount'] == 0 and info['end'] == tt.log_end(r), info
        if cause == 2:
            assert info['shutdown'] == {'icount': icount,
                                        'cause': 'host-qmp-quit'}, info
            assert re.search(r'was asked to shut down \(host-qmp-quit\) at '
                             rf'instruction count {icount}\r?\n', text), text
        else:
            assert 'shutdown' not in info and 'shut down' not in text, \
                (info, text)
    finally:
        r.quit()
    assert 'Assertion' not in r.stderr(), r.stderr()


def test_checkpoint_kind(tmp_path, plain_log):
    """A checkpoint that QEMU does not have is refused when decoded."""
    def fn(c):
        ev = mid(c.find('checkpoint'))
        ev.args[0] = 99
        return ev.icount
    log, icount = crafted(plain_log, tmp_path, fn)
    refused(plain_args(), log, r'the log.s checkpoint event at icount \d+ '
            r'has argument 99, which is not one', icount)


def set_id(kind, index, new_id):
    def fn(c):
        ev = c.find(kind)[index]
        ev.args[0] = new_id
        return ev.icount
    return fn


def test_bh_delivered_already(tmp_path, disk, disk_log):
    """The second bottom half names the first one's id, which was
    delivered: that is known at once."""
    log, icount = crafted(disk_log, tmp_path, set_id('bh', 1, 0))
    refused(disk_args(disk), log, r"the log's bh event at icount \d+ names "
            'bottom half 0, which was delivered already', icount)


def test_bh_never_issued(tmp_path, disk, disk_log):
    """An id that no bottom half gets in this run: the replay cannot know
    that none will come before the stall detector fires."""
    log, icount = crafted(disk_log, tmp_path, set_id('bh', 1, 1000))
    refused(disk_args(disk), log, r'next event is bh \(argument 1000\)',
            icount)


@pytest.mark.parametrize('new_id', [1000, 1], ids=['never-issued', 'twice'])
def test_block_id(tmp_path, disk, disk_log, new_id):
    """A block completion whose request was never made, or one delivered
    already.  Block ids are given when a request starts, not when its
    completion is queued, so only the stall detector can tell."""
    log, icount = crafted(disk_log, tmp_path, set_id('block', 3, new_id))
    refused(disk_args(disk), log, rf'next event is block \(argument '
            rf'{new_id}\)', icount)
