# Tests of scripts/replay-dump.py on logs written here, in Python, following
# the format of replay/replay-log.c and replay/replay-event.c.  They need no
# QEMU build.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest

from craftlog import uleb

TOP = Path(__file__).resolve().parents[3]
SCRIPT = TOP / 'scripts' / 'replay-dump.py'

U64 = (1 << 64) - 1
FINGERPRINT = 'format=qrr-fingerprint-1\nqemu=10.0.0\ntarget=x86_64\n'

# replay-event.c shapes[], in ReplayEventKind order: name, nargs, data.
SHAPES = [
    ('end', 1, False), ('interrupt', 0, False), ('exception', 0, False),
    ('checkpoint', 1, False), ('shutdown', 1, False), ('bh', 1, False),
    ('bh-oneshot', 1, False), ('block', 1, False), ('input', 1, True),
    ('input-sync', 0, False), ('char-read', 1, True), ('net', 2, True),
    ('clock', 2, False), ('random', 1, True), ('char-write', 2, False),
    ('char-read-all', 1, True), ('audio-out', 1, False),
    ('audio-in', 2, True),
    ('sync', 1, True),
]
KIND = {name: i for i, (name, _, _) in enumerate(SHAPES)}


# ---- a writer of logs ----

def sleb(v):
    return uleb(((v << 1) ^ (v >> 63)) & U64)


def wrap64(v):
    v &= U64
    return v - (1 << 64) if v >> 63 else v


def encode_events(events, base):
    """The payload of a chunk holding @events (icount, kind, args, data)."""
    out = bytearray()
    icount = base
    clocks = {}
    for ev_icount, kind, args, data in events:
        _, nargs, has_data = SHAPES[KIND[kind]]
        assert len(args) == nargs and ev_icount >= icount
        out.append(KIND[kind])
        out += uleb(ev_icount - icount)
        icount = ev_icount
        for i, arg in enumerate(args):
            if kind == 'clock' and i == 1:
                out += sleb(wrap64(arg - clocks.get(args[0], 0)))
                clocks[args[0]] = arg
            else:
                out += sleb(arg)
        if has_data:
            out += uleb(len(data)) + data
    return bytes(out)


def log_header(fingerprint=FINGERPRINT, version=1):
    fp = fingerprint.encode()
    h = b'QRRLOG\r\n' + struct.pack('<III', version, 24 + len(fp), len(fp))
    h += fp
    return h + struct.pack('<I', zlib.crc32(h))


def chunk_header(seq, base, last, nevents, raw_size, stored, codec, flags,
                 payload_crc=None):
    if payload_crc is None:
        payload_crc = zlib.crc32(stored)
    h = b'QRCK' + struct.pack('<IQQIIIBBHI', seq, base, last, nevents,
                              raw_size, len(stored), codec, flags, 0,
                              payload_crc)
    return h + struct.pack('<I', zlib.crc32(h))


class Log:
    """A log built from chunks of events; each chunk a dict of
    events, codec ('zlib' or 'stored') and optional header overrides
    (any chunk_header() argument) and 'suffix' (raw bytes appended)."""

    def __init__(self, chunks, final=True, fingerprint=FINGERPRINT,
                 version=1):
        self.data = bytearray(log_header(fingerprint, version))
        self.header_size = len(self.data)
        self.offsets = []
        self.payload_sizes = []
        self.raw_sizes = []
        self.events = []
        base = 0
        for seq, spec in enumerate(chunks):
            events = spec['events']
            last = events[-1][0] if events else base
            raw = encode_events(events, base) + spec.get('suffix', b'')
            zipped = spec.get('codec', 'zlib') == 'zlib'
            stored = zlib.compress(raw) if zipped else raw
            fields = dict(seq=seq, base=base, last=last,
                          nevents=len(events), raw_size=len(raw),
                          stored=stored, codec=int(zipped),
                          flags=int(final and seq == len(chunks) - 1))
            fields.update(spec.get('header', {}))
            self.offsets.append(len(self.data))
            self.payload_sizes.append(len(stored))
            self.raw_sizes.append(len(raw))
            self.data += chunk_header(**fields) + stored
            self.events += events
            base = last

    def write(self, path, data=None):
        path.write_bytes(self.data if data is None else data)
        return path


# One event of each kind, over three chunks.  Clock values are coded per
# chunk from 0: the host clock wraps, and its first value in chunk 1 lies
# below its last one in chunk 0.
DATA64 = bytes(range(64))
CHUNKS = [
    {'codec': 'zlib', 'events': [
        (0, 'clock', (1, 500), None),
        (0, 'clock', (0, 2**63 - 1), None),
        (0, 'clock', (0, -2**63), None),
        (10, 'checkpoint', (4,), None),
        (20, 'interrupt', (), None),
        (25, 'exception', (), None),
        (300, 'bh', (7,), None),
        (300, 'bh-oneshot', (8,), None),
        (1000, 'block', (2**63 - 1,), None),
        (1000, 'input', (1,), DATA64[:16]),
    ]},
    {'codec': 'stored', 'events': [
        (2000, 'clock', (0, 1_700_000_000_000_000_000), None),
        (2000, 'clock', (0, 1_699_999_999_999_999_000), None),
        (2001, 'clock', (1, 2_000_000_500), None),
        (2**40, 'input-sync', (), None),
        (2**40 + 1, 'char-read', (0,), b'hi'),
        (2**40 + 2, 'net', (0, 1), DATA64),
        (2**40 + 3, 'random', (0,), DATA64[:8]),
        (2**40 + 4, 'char-write', (-2**63, 5), None),
        (2**40 + 5, 'char-read-all', (-11,), b''),
        (2**40 + 6, 'audio-out', (441,), None),
        (2**40 + 7, 'audio-in', (2, 3), DATA64[:4]),
        (2**40 + 8, 'shutdown', (6,), None),
        (2**40 + 9, 'checkpoint', (99,), None),
    ]},
    {'codec': 'zlib', 'events': [
        (2**40 + 9, 'end', (0,), None),
    ]},
]
LAST = 2**40 + 9
NEVENTS = sum(len(c['events']) for c in CHUNKS)


def run_dump(*args, check_rc=None, preexec_fn=None):
    p = subprocess.run([sys.executable, str(SCRIPT)] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60,
                       preexec_fn=preexec_fn)
    assert 'Traceback' not in p.stderr, p.stderr
    if check_rc is not None:
        assert p.returncode == check_rc, p.stdout + p.stderr
    return p


@pytest.fixture
def log():
    return Log(CHUNKS)


@pytest.fixture
def good(tmp_path, log):
    return log.write(tmp_path / 'good.rr')


# ---- a valid log ----

def test_listing(good):
    out = run_dump(good, check_rc=0).stdout.splitlines()
    assert len(out) == NEVENTS
    assert out[0].split() == ['0', 'clock', 'clock=virtual-rt', 'value=500']
    assert out[1].split()[2:] == ['clock=host', f'value={2**63 - 1}']
    assert out[2].split()[2:] == ['clock=host', f'value={-2**63}']
    assert '          10  checkpoint     clock-virtual' in out
    assert out[9].split() == ['1000', 'input', 'console=0', 'len=16',
                              'data=' + DATA64[:16].hex()]
    text = '\n'.join(out)
    assert f'net            filter=0 flags=1 len=64 ' \
           f'data={DATA64[:16].hex()}...' in text
    assert 'shutdown       cause=6 (guest-shutdown)' in text
    assert 'checkpoint     checkpoint=99' in text
    assert 'char-write     result=-9223372036854775808 offset=5' in text
    assert 'char-read-all  result=-11 len=0' in text
    assert out[-1].split() == [str(LAST), 'end', 'cut=0']


def test_hand_encoded_payload(tmp_path):
    """Bytes written out by hand, not by this file's encoder."""
    payload = bytes([
        12, 5, 2, 0x90, 0x03,   # clock at 5: virtual-rt, delta +200
        12, 0, 2, 0x01,         # clock at 5: virtual-rt, delta -1
        3, 0x81, 0x01, 8,       # checkpoint at 134: clock-virtual
        13, 1, 0, 2, 0xab, 0xcd,    # random at 135: ret 0, 2 bytes
    ])
    data = (log_header() +
            chunk_header(0, 0, 135, 4, len(payload), payload, 0, 1) +
            payload)
    path = tmp_path / 'hand.rr'
    path.write_bytes(data)
    out = run_dump(path, check_rc=0).stdout.splitlines()
    assert [line.split() for line in out] == [
        ['5', 'clock', 'clock=virtual-rt', 'value=200'],
        ['5', 'clock', 'clock=virtual-rt', 'value=199'],
        ['134', 'checkpoint', 'clock-virtual'],
        ['135', 'random', 'ret=0', 'len=2', 'data=abcd'],
    ]


def test_json_round_trip(good, log):
    out = run_dump('--json', good, check_rc=0).stdout.splitlines()
    assert len(out) == NEVENTS
    chunk_of = [i for i, c in enumerate(CHUNKS) for _ in c['events']]
    rows = zip(out, log.events, chunk_of)
    for line, (icount, kind, args, data), chunk in rows:
        ev = json.loads(line)
        assert ev['icount'] == icount
        assert ev['kind'] == kind
        assert ev['chunk'] == chunk
        assert tuple(ev['args'].values()) == args
        if data is None:
            assert 'data' not in ev
        else:
            assert bytes.fromhex(ev['data']) == data
            assert ev['len'] == len(data)
    assert json.loads(out[3])['names'] == {'checkpoint': 'clock-virtual'}
    assert json.loads(out[0])['names'] == {'clock': 'virtual-rt'}


def test_stats(good, log):
    out = run_dump('--stats', good, check_rc=0).stdout
    fields = {}
    for line in out.splitlines():
        if ':' in line and not line.startswith(' '):
            key, value = line.split(':', 1)
            fields[key] = value.strip()
    raw = sum(log.raw_sizes)
    stored = sum(log.payload_sizes)
    assert fields['status'] == 'complete'
    assert fields['chunks'] == '3'
    assert fields['events'] == str(NEVENTS)
    assert fields['instructions'] == f'{LAST} (last icount)'
    assert fields['file size'] == f'{len(log.data)} bytes'
    assert fields['raw bytes'].startswith(f'{raw} ')
    assert fields['stored bytes'].startswith(f'{stored} ')
    assert fields['compression'] == f'{raw / stored:.2f}x'
    assert fields['guest time'].startswith('2.000000 s')
    assert fields['events/s'].startswith(f'{NEVENTS / 2:.1f} ')
    assert '    target=x86_64' in out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line and line.split()[0] in ('clock', 'net', 'total')}
    assert rows['clock'][0] == '6'
    assert rows['net'] == ['1', str(len(encode_events(
        [(0, 'net', (0, 1), DATA64)], 0)))]
    assert rows['total'] == [str(NEVENTS), str(raw)]


def test_stats_json(good, log):
    s = json.loads(run_dump('--stats', '--json', good, check_rc=0).stdout)
    assert s['header'] == {'version': 1, 'size': log.header_size,
                           'fingerprint': FINGERPRINT}
    assert s['status'] == 'complete' and s['problem'] is None
    assert (s['chunks'], s['events'], s['last_icount']) == (3, NEVENTS, LAST)
    assert s['file_size'] == len(log.data)
    assert s['raw_bytes'] == sum(log.raw_sizes)
    assert s['stored_bytes'] == sum(log.payload_sizes)
    assert s['guest_ns'] == 2_000_000_000
    assert s['kinds']['checkpoint']['events'] == 2
    assert sum(k['events'] for k in s['kinds'].values()) == NEVENTS
    assert sum(k['bytes'] for k in s['kinds'].values()) == s['raw_bytes']


def test_stats_without_guest_time(tmp_path):
    log = Log([{'events': [(5, 'interrupt', (), None)]}])
    out = run_dump('--stats', log.write(tmp_path / 'l.rr'), check_rc=0)
    assert 'guest time:     n/a' in out.stdout
    assert 'events/s:       n/a' in out.stdout


def test_verify_ok(good):
    p = run_dump('--verify', good, check_rc=0)
    assert p.stdout == f'OK: 3 chunks, {NEVENTS} events, last icount {LAST}\n'
    assert p.stderr == ''


def test_verify_empty_final_chunk(tmp_path):
    log = Log([{'events': CHUNKS[0]['events']},
               {'events': [], 'codec': 'stored'}])
    p = run_dump('--verify', log.write(tmp_path / 'l.rr'), check_rc=0)
    assert p.stdout == 'OK: 2 chunks, 10 events, last icount 1000\n'


def test_at(good):
    out = run_dump('--at', 2**40 + 2, '--context', 2, good,
                   check_rc=0).stdout.splitlines()
    assert [line[0] for line in out] == [' ', ' ', '>', ' ', ' ']
    assert [line[1:].split()[1] for line in out] == [
        'input-sync', 'char-read', 'net', 'random', 'char-write']
    out = run_dump('--at', 2000, '--context', 1, good,
                   check_rc=0).stdout.splitlines()
    assert [line[0] for line in out] == [' ', '>', '>']
    out = run_dump('--at', LAST + 1, '--context', 1, good,
                   check_rc=0).stdout.splitlines()
    assert out[-1].split()[1:] == [str(LAST + 1), '(no', 'event', 'at', 'or',
                                   'after', 'this', 'icount)']
    default = run_dump('--at', 2**40, good, check_rc=0).stdout.splitlines()
    assert len(default) == 21


def test_fingerprint(good):
    assert run_dump('--fingerprint', good, check_rc=0).stdout == FINGERPRINT


# ---- bad input ----

def flip(data, offset, bit=0):
    data = bytearray(data)
    data[offset] ^= 1 << bit
    return data


def rewrite_chunk(data, offset, **fields):
    """Change fields of the chunk header at @offset, with a valid CRC."""
    data = bytearray(data)
    names = ('seq', 'base', 'last', 'nevents', 'raw_size', 'stored_size',
             'codec', 'flags', 'pad', 'payload_crc')
    values = dict(zip(names, struct.unpack_from('<IQQIIIBBHI', data,
                                                offset + 4)))
    values.update(fields)
    struct.pack_into('<IQQIIIBBHI', data, offset + 4,
                     *(values[n] for n in names))
    struct.pack_into('<I', data, offset + 44,
                     zlib.crc32(bytes(data[offset:offset + 44])))
    return data


def corrupt_cases(log):
    h = log.header_size
    c1, c2 = log.offsets[1], log.offsets[2]
    end = len(log.data)
    d = log.data
    return {
        'header magic': (flip(d, 3), 'offset 0: not a qrr replay log '
                         '(bad magic)'),
        'not a log': (b'hello, world\n' * 4, 'offset 0: not a qrr replay '
                      'log (bad magic)'),
        'fingerprint': (flip(d, 30), f'offset {h - 4}: header checksum '
                        'mismatch'),
        'header crc': (flip(d, h - 1, 7), f'offset {h - 4}: header checksum '
                       'mismatch'),
        'version': (d[:8] + struct.pack('<I', 2) + d[12:],
                    'offset 8: log format version 2 is not supported'),
        'header size': (flip(d, 12), 'offset 12: bad header size'),
        'header cut short': (d[:10], 'header truncated (file is 10 bytes)'),
        'fingerprint cut short': (d[:h - 1], f'header truncated (file is '
                                  f'{h - 1} bytes, header {h})'),
        'chunk magic': (flip(d, c1), f'offset {c1}: bad chunk magic '
                        '(chunk 1)'),
        'chunk header': (flip(d, c1 + 9), f'offset {c1}: chunk 1 header '
                         'checksum mismatch'),
        'chunk header crc': (flip(d, c1 + 46), f'offset {c1}: chunk 1 '
                             'header checksum mismatch'),
        'payload': (flip(d, c1 + 50), f'offset {c1 + 48}: chunk 1 payload '
                    'checksum mismatch'),
        'payload crc': (rewrite_chunk(d, c1, payload_crc=1234),
                        f'offset {c1 + 48}: chunk 1 payload checksum '
                        'mismatch'),
        'sequence': (rewrite_chunk(d, c1, seq=5),
                     f'offset {c1}: chunk 1 header is inconsistent '
                     '(sequence 5, base icount 1000): expected sequence 1'),
        'base icount': (rewrite_chunk(d, c1, base=999),
                        f'offset {c1}: chunk 1 header is inconsistent '
                        '(sequence 1, base icount 999): expected base '
                        'icount 1000'),
        'last below base': (rewrite_chunk(d, c1, last=5),
                            'last icount 5 is below the base'),
        'codec': (rewrite_chunk(d, c1, codec=2), 'unknown codec 2'),
        'flags': (rewrite_chunk(d, c1, flags=4), 'reserved bits are set'),
        'stored sizes': (rewrite_chunk(d, c1, raw_size=5),
                         'stored payload with different raw and stored '
                         'sizes'),
        'raw size': (rewrite_chunk(d, c2, raw_size=5),
                     f'offset {c2}: chunk 2 does not decompress to 5 bytes'),
        'too many events': (rewrite_chunk(d, c2, nevents=2),
                            f'offset {c2}: chunk 2, payload byte 3: event '
                            'truncated'),
        'too few events': (rewrite_chunk(d, c1, nevents=12),
                           f'offset {c1}: chunk 1 has bytes after its last '
                           'event'),
        'last icount': (rewrite_chunk(d, c2, last=LAST + 1),
                        f'offset {c2}: chunk 2 last icount {LAST + 1} is '
                        f'not the icount of its last event ({LAST})'),
        'final flag early': (rewrite_chunk(d, c1, flags=1),
                             f'offset {c2}: unexpected data after the final '
                             'chunk'),
        'trailing garbage': (d + b'\0', f'offset {end}: unexpected data '
                             'after the final chunk'),
        'empty': (b'', 'empty file, not a qrr replay log'),
    }


def truncated_cases(log):
    h = log.header_size
    c2 = log.offsets[2]
    d = log.data
    return {
        'no chunk': (d[:h], f'offset {h}: the log ends before its first '
                     'chunk'),
        'no final chunk': (d[:c2], f'offset {c2}: the log ends after chunk '
                           '1 without a final chunk'),
        'chunk header cut short': (d[:c2 + 47], f'offset {c2}: chunk 2 '
                                   'header truncated'),
        'payload cut short': (d[:c2 + 50], f'offset {c2}: chunk 2 payload '
                              f'truncated (2 of {log.payload_sizes[2]} '
                              'bytes present)'),
    }


@pytest.mark.parametrize('case', sorted(corrupt_cases(Log(CHUNKS))))
def test_verify_corrupt(tmp_path, log, case):
    data, message = corrupt_cases(log)[case]
    path = log.write(tmp_path / 'bad.rr', data)
    p = run_dump('--verify', path, check_rc=1)
    assert p.stdout == ''
    assert p.stderr.count('\n') == 1
    assert p.stderr.startswith(f'{path}: ')
    assert message in p.stderr
    for mode in ([], ['--stats'], ['--json'], ['--at', LAST]):
        assert run_dump(*mode, path).returncode == 1


@pytest.mark.parametrize('case', sorted(truncated_cases(Log(CHUNKS))))
def test_verify_truncated(tmp_path, log, case):
    data, message = truncated_cases(log)[case]
    path = log.write(tmp_path / 'cut.rr', data)
    p = run_dump('--verify', path, check_rc=2)
    assert p.stdout == ''
    assert p.stderr.count('\n') == 1
    assert message in p.stderr
    chunks = 0 if case == 'no chunk' else 2
    events = 0 if case == 'no chunk' else 23
    last = 0 if case == 'no chunk' else LAST
    assert f'truncated log: its valid prefix of {chunks} chunks, ' \
           f'{events} events, up to icount {last} can be replayed' in p.stderr


def test_truncated_log_shows_its_prefix(tmp_path, log):
    path = log.write(tmp_path / 'cut.rr', log.data[:log.offsets[2] + 50])
    p = run_dump(path, check_rc=2)
    assert len(p.stdout.splitlines()) == NEVENTS - 1
    assert 'chunk 2 payload truncated' in p.stderr
    p = run_dump('--stats', '--json', path, check_rc=2)
    s = json.loads(p.stdout)
    assert s['status'] == 'truncated' and s['chunks'] == 2
    assert 'payload truncated' in s['problem']


def test_corrupt_log_lists_events_before_the_problem(tmp_path, log):
    c2 = log.offsets[2]
    path = log.write(tmp_path / 'bad.rr', flip(log.data, c2 + 49))
    p = run_dump(path, check_rc=1)
    assert len(p.stdout.splitlines()) == NEVENTS - 1
    assert 'chunk 2 payload checksum mismatch' in p.stderr


def check_bad_payloads(tmp_path, cases):
    """Each payload of @cases alone in a chunk: --verify names the
    problem given."""
    for payload, message in cases.items():
        data = (log_header() +
                chunk_header(0, 0, 0, 1, len(payload), payload, 0, 1) +
                payload)
        path = tmp_path / 'ev.rr'
        path.write_bytes(data)
        p = run_dump('--verify', path, check_rc=1)
        assert message in p.stderr, payload


def test_bad_event_bytes(tmp_path):
    cases = {
        bytes([255, 0]): 'payload byte 0: unknown event kind',
        bytes([1] + [0x80] * 10): 'payload byte 0: bad instruction count',
        bytes([3, 0]): 'payload byte 0: event argument truncated',
        bytes([12, 0, 8, 0]): 'payload byte 0: unknown clock',
        bytes([13, 0, 0, 5, 1]): 'payload byte 0: event data truncated or '
                                 'too long',
    }
    check_bad_payloads(tmp_path, cases)


def test_non_canonical_varints(tmp_path):
    """Only the form the writer makes is read, as by replay-event.c: not a
    last byte 0x00 after a continuation, not bits above bit 63."""
    cases = {
        bytes([1, 0x80, 0x00]): 'payload byte 0: bad instruction count',
        bytes([1] + [0x80] * 9 + [0x02]):
            'payload byte 0: bad instruction count',
        bytes([3, 0, 0x80, 0x00]): 'payload byte 0: event argument '
                                   'truncated',
        bytes([13, 0, 0, 0x80, 0x00]): 'payload byte 0: event data '
                                       'truncated or too long',
    }
    check_bad_payloads(tmp_path, cases)


def test_zlib_stream_cut_short(tmp_path):
    payload = encode_events(CHUNKS[0]['events'], 0)
    stored = zlib.compress(payload)[:-4]    # without its Adler-32
    data = (log_header() +
            chunk_header(0, 0, 1000, 10, len(payload), stored, 1, 1) +
            stored)
    path = tmp_path / 'zcut.rr'
    path.write_bytes(data)
    p = run_dump('--verify', path, check_rc=1)
    assert f'chunk 0 does not decompress to {len(payload)} bytes' in p.stderr


def test_directory(tmp_path):
    p = run_dump('--verify', tmp_path, check_rc=1)
    assert p.stderr == f'{tmp_path}: not a regular file\n'


def test_missing_file(tmp_path):
    path = tmp_path / 'nope.rr'
    p = run_dump(path, check_rc=1)
    assert p.stderr == f"Could not open '{path}': No such file or " \
                       'directory\n'


def be_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def test_unreadable_file(good):
    """Root reads any file: as root, the script runs as nobody, who can
    reach the file but not read it."""
    d = Path(tempfile.mkdtemp(prefix='qrr-noperm-'))
    try:
        d.chmod(0o755)
        f = d / 'noperm.rr'
        f.write_bytes(good.read_bytes())
        f.chmod(0)
        p = run_dump('--stats', f, check_rc=1,
                     preexec_fn=be_nobody if os.geteuid() == 0 else None)
        assert p.stderr == f"Could not open '{f}': Permission denied\n"
    finally:
        shutil.rmtree(d)


def test_usage_error(good):
    p = run_dump('--stats', '--verify', good, check_rc=1)
    assert 'not allowed with' in p.stderr


def test_nul_in_fingerprint(tmp_path):
    """As the C reader: a NUL would end the fingerprint early."""
    log = Log([{'events': CHUNKS[0]['events']}],
              fingerprint='target=x86_64\n\0machine=pc\n')
    p = run_dump('--verify', log.write(tmp_path / 'l.rr'), check_rc=1)
    assert re.search(r'offset 34: NUL byte in the fingerprint', p.stderr), \
        p.stderr
