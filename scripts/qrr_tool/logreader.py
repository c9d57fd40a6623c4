# qrr: the replay log reader, shared by scripts/replay-dump.py and qrr
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""Read and check a qrr replay log (-icount rr=record,rrfile=F).

The file format (header, chunks, checksums, validity rules) is specified in
the header comment of replay/replay-log.c; the encoding of the events inside
a chunk payload in the header comment of replay/replay-event.c, whose
shapes[] table is mirrored by KINDS below (numbered as ReplayEventKind in
replay/replay-event.h).  Error messages follow those of the C reader.
"""

import os
import stat
import struct
import zlib

LOG_MAGIC = b'QRRLOG\r\n'
CHUNK_MAGIC = b'QRCK'
LOG_VERSION = 1
HDR_FIXED = 20
CHUNK_HDR = 48
MAX_FINGERPRINT = 1 << 20
MAX_PAYLOAD = 16 << 20
MAX_DATA = 1 << 20
FLAG_FINAL = 1
CODEC_STORED, CODEC_ZLIB = 0, 1
CODEC_NAMES = ('stored', 'zlib')
U64 = (1 << 64) - 1

# Chunk header after its magic: seq, base, last, nevents, U, C, codec,
# flags, two zero bytes, payload CRC, header CRC.
CHUNK_STRUCT = struct.Struct('<4sIQQIIIBBHII')

# replay-event.c shapes[]: name, argument names, carries data.
KINDS = (
    ('end', ('cut',), False),
    ('interrupt', (), False),
    ('exception', (), False),
    ('checkpoint', ('checkpoint',), False),
    ('shutdown', ('cause',), False),
    ('bh', ('id',), False),
    ('bh-oneshot', ('id',), False),
    ('block', ('id',), False),
    ('input', ('console',), True),
    ('input-sync', (), False),
    ('char-read', ('chardev',), True),
    ('net', ('filter', 'flags'), True),
    ('clock', ('clock', 'value'), False),
    ('random', ('ret',), True),
    ('char-write', ('result', 'offset'), False),
    ('char-read-all', ('result',), True),
    ('audio-out', ('played',), False),
    ('audio-in', ('captured', 'wpos'), True),
    ('sync', ('seq',), True),
    ('sched', ('vcpu',), False),
    ('block-data', ('id', 'crc'), False),
)
KIND_CLOCK = 12
KIND_SCHED = 19
CLOCK_SLOTS = 4                 # ReplayCoder.clock[]

# enum ReplayClockKind in include/system/replay.h
CLOCKS = ('host', 'virtual-rt')
CLOCK_VIRTUAL_RT = 1
# enum ReplayCheckpoint in include/system/replay.h
CHECKPOINTS = ('clock-warp-start', 'clock-warp-account', 'reset-requested',
               'suspend-requested', 'clock-virtual', 'clock-host',
               'clock-virtual-rt', 'init', 'reset', 'wakeup-requested')
# enum ShutdownCause in qapi/run-state.json
SHUTDOWN_CAUSES = ('none', 'host-error', 'host-qmp-quit',
                   'host-qmp-system-reset', 'host-signal', 'host-ui',
                   'guest-shutdown', 'guest-reset', 'guest-panic',
                   'subsystem-reset', 'snapshot-load')
# Arguments whose values are enumerations: kind, argument -> names.
ENUM_ARGS = {
    ('checkpoint', 'checkpoint'): CHECKPOINTS,
    ('shutdown', 'cause'): SHUTDOWN_CAUSES,
    ('clock', 'clock'): CLOCKS,
}


class LogError(Exception):
    """A problem with the log; status is the exit status it leads to."""

    CORRUPT = 1
    TRUNCATED = 2

    def __init__(self, message, status=CORRUPT):
        super().__init__(message)
        self.status = status


class Header:
    def __init__(self, version, size, fingerprint):
        self.version = version
        self.size = size
        self.fingerprint = fingerprint


class Chunk:
    def __init__(self, offset, fields):
        (_, self.seq, self.base, self.last, self.nevents, self.raw_size,
         self.stored_size, self.codec, self.flags, self.pad,
         self.payload_crc, self.header_crc) = fields
        self.offset = offset

    @property
    def final(self):
        return bool(self.flags & FLAG_FINAL)


class Event:
    __slots__ = ('chunk', 'icount', 'kind', 'args', 'data', 'size')

    def __init__(self, chunk, icount, kind, args, data, size):
        self.chunk = chunk
        self.icount = icount
        self.kind = kind
        self.args = args
        self.data = data
        self.size = size

    @property
    def name(self):
        return KINDS[self.kind][0]

    def named_args(self):
        return dict(zip(KINDS[self.kind][1], self.args))


# ---- event decoding (replay-event.c) ----

class Coder:
    """Per-chunk decoding state, as ReplayCoder and replay_coder_reset()."""

    def __init__(self, base):
        self.icount = base
        self.clock = [0] * CLOCK_SLOTS


def get_uleb(buf, pos, end):
    """Return (value, next position) as get_uleb(): (None, pos) when the
    varint is truncated, longer than 10 bytes, or not canonical (a last
    byte 0x00 after another one, bits above bit 63 in the 10th byte)."""
    value = 0
    for i in range(min(10, end - pos)):
        b = buf[pos + i]
        if i == 9 and b > 1:
            return None, pos
        value |= (b & 0x7f) << (7 * i)
        if not b & 0x80:
            if i > 0 and b == 0:
                return None, pos
            return value, pos + i + 1
    return None, pos


def to_s64(u):
    u &= U64
    return u - (1 << 64) if u >> 63 else u


def get_sleb(buf, pos, end):
    u, nxt = get_uleb(buf, pos, end)
    if u is None:
        return None, pos
    return to_s64((u >> 1) ^ -(u & 1)), nxt


def decode_args(coder, kind, buf, pos, end):
    args = []
    for _ in KINDS[kind][1]:
        value, pos = get_sleb(buf, pos, end)
        if value is None:
            raise ValueError('event argument truncated')
        args.append(value)
    if kind == KIND_CLOCK:
        if not 0 <= args[0] < CLOCK_SLOTS:
            raise ValueError('unknown clock')
        args[1] = to_s64(args[1] + coder.clock[args[0]])
        coder.clock[args[0]] = args[1]
    return args, pos


def decode_data(buf, pos, end):
    dlen, nxt = get_uleb(buf, pos, end)
    if dlen is None or dlen > MAX_DATA or dlen > end - nxt:
        raise ValueError('event data truncated or too long')
    return bytes(buf[nxt:nxt + dlen]), nxt + dlen


def decode_event(coder, buf, pos, chunk_seq):
    """Decode the event at buf[pos:] as replay_event_decode() does.

    Returns (Event, next position); raises ValueError with the reason.
    """
    end = len(buf)
    if end - pos < 2:
        raise ValueError('event truncated')
    kind = buf[pos]
    if kind >= len(KINDS):
        raise ValueError('unknown event kind')
    delta, nxt = get_uleb(buf, pos + 1, end)
    if delta is None or delta > U64 - coder.icount:
        raise ValueError('bad instruction count')
    icount = coder.icount + delta
    args, nxt = decode_args(coder, kind, buf, nxt, end)
    data = None
    if KINDS[kind][2]:
        data, nxt = decode_data(buf, nxt, end)
    coder.icount = icount
    return Event(chunk_seq, icount, kind, tuple(args), data, nxt - pos), nxt


# ---- the file (replay-log.c) ----

class LogReader:
    """Reads and checks a log; events() yields its events in order.

    A problem raises LogError once everything before it has been yielded.
    """

    def __init__(self, path):
        self.path = path
        self.file = open_regular(path)
        self.size = os.fstat(self.file.fileno()).st_size
        self.header = None
        self.chunks = []        # the valid chunks
        self.events = 0
        self.raw_bytes = 0
        self.stored_bytes = 0
        self.complete = False

    def close(self):
        self.file.close()

    def fail(self, offset, message, status=LogError.CORRUPT):
        where = '' if offset is None else f'offset {offset}: '
        raise LogError(f'{self.path}: {where}{message}', status)

    def read_at(self, offset, length):
        self.file.seek(offset)
        data = self.file.read(length)
        if len(data) != length:
            self.fail(offset, 'read error (the file shrank)')
        return data

    def read_header(self):
        """Read and check the header, as reader_header()."""
        if self.size == 0:
            self.fail(None, 'empty file, not a qrr replay log')
        if self.size < 8 or self.read_at(0, 8) != LOG_MAGIC:
            self.fail(0, 'not a qrr replay log (bad magic)')
        if self.size < HDR_FIXED + 4:
            self.fail(None, f'header truncated (file is {self.size} bytes)')
        _, version, hlen, fplen = struct.unpack(
            '<8sIII', self.read_at(0, HDR_FIXED))
        if version != LOG_VERSION:
            self.fail(8, f'log format version {version} is not supported '
                      f'(this script reads version {LOG_VERSION})')
        if fplen > MAX_FINGERPRINT or hlen != HDR_FIXED + fplen + 4:
            self.fail(12, 'bad header size')
        if self.size < hlen:
            self.fail(None, f'header truncated (file is {self.size} bytes, '
                      f'header {hlen})')
        hdr = self.read_at(0, hlen)
        if zlib.crc32(hdr[:-4]) != struct.unpack('<I', hdr[-4:])[0]:
            self.fail(hlen - 4, 'header checksum mismatch')
        nul = hdr.find(b'\0', HDR_FIXED, hlen - 4)
        if nul >= 0:
            self.fail(nul, 'NUL byte in the fingerprint')
        fingerprint = hdr[HDR_FIXED:-4].decode('utf-8', errors='replace')
        self.header = Header(version, hlen, fingerprint)
        return self.header

    def events_iter(self):
        """Yield every event, checking each chunk before its events."""
        if self.header is None:
            self.read_header()
        offset = self.header.size
        while True:
            chunk = self.read_chunk(offset)
            raw = self.read_payload(chunk)
            yield from self.decode_chunk(chunk, raw)
            self.chunks.append(chunk)
            self.events += chunk.nevents
            self.raw_bytes += chunk.raw_size
            self.stored_bytes += chunk.stored_size
            offset += CHUNK_HDR + chunk.stored_size
            if chunk.final:
                break
        if offset != self.size:
            self.fail(offset, 'unexpected data after the final chunk')
        self.complete = True

    def read_chunk(self, offset):
        """Read and check the header of the chunk at @offset."""
        seq = len(self.chunks)
        left = self.size - offset
        if left == 0:
            where = (f'after chunk {seq - 1} without a final chunk' if seq
                     else 'before its first chunk')
            self.fail(offset, f'the log ends {where} (the recording did not '
                      'finish)', LogError.TRUNCATED)
        if left < CHUNK_HDR:
            self.fail(offset, f'chunk {seq} header truncated',
                      LogError.TRUNCATED)
        h = self.read_at(offset, CHUNK_HDR)
        if h[:4] != CHUNK_MAGIC:
            self.fail(offset, f'bad chunk magic (chunk {seq})')
        chunk = Chunk(offset, CHUNK_STRUCT.unpack(h))
        if zlib.crc32(h[:44]) != chunk.header_crc:
            self.fail(offset, f'chunk {seq} header checksum mismatch')
        problem = self.header_problem(chunk)
        if problem:
            self.fail(offset, f'chunk {seq} header is inconsistent '
                      f'(sequence {chunk.seq}, base icount {chunk.base}): '
                      f'{problem}')
        return chunk

    def header_problem(self, chunk):
        """What makes a chunk header inconsistent, as chunk_header_parse()."""
        seq = len(self.chunks)
        base = self.chunks[-1].last if self.chunks else 0
        checks = (
            (chunk.seq != seq, f'expected sequence {seq}'),
            (chunk.base != base, f'expected base icount {base}'),
            (chunk.last < chunk.base,
             f'last icount {chunk.last} is below the base'),
            (chunk.raw_size > MAX_PAYLOAD,
             f'raw size {chunk.raw_size} is too large'),
            (chunk.stored_size > MAX_PAYLOAD,
             f'stored size {chunk.stored_size} is too large'),
            (chunk.codec > CODEC_ZLIB, f'unknown codec {chunk.codec}'),
            (chunk.flags & ~FLAG_FINAL or chunk.pad,
             'reserved bits are set'),
            (chunk.codec == CODEC_STORED and
             chunk.stored_size != chunk.raw_size,
             'stored payload with different raw and stored sizes'),
        )
        return next((why for bad, why in checks if bad), None)

    def read_payload(self, chunk):
        """Read, check and decode the payload of @chunk to its U bytes."""
        start = chunk.offset + CHUNK_HDR
        present = self.size - start
        if present < chunk.stored_size:
            self.fail(chunk.offset, f'chunk {chunk.seq} payload truncated '
                      f'({present} of {chunk.stored_size} bytes present)',
                      LogError.TRUNCATED)
        stored = self.read_at(start, chunk.stored_size)
        if zlib.crc32(stored) != chunk.payload_crc:
            self.fail(start, f'chunk {chunk.seq} payload checksum mismatch')
        if chunk.codec == CODEC_STORED:
            return stored
        raw = inflate(stored, chunk.raw_size)
        if raw is None:
            self.fail(chunk.offset, f'chunk {chunk.seq} does not decompress '
                      f'to {chunk.raw_size} bytes')
        return raw

    def decode_chunk(self, chunk, raw):
        """Yield the events of @chunk, checking them against its header."""
        coder = Coder(chunk.base)
        pos = 0
        for _ in range(chunk.nevents):
            try:
                event, nxt = decode_event(coder, raw, pos, chunk.seq)
            except ValueError as e:
                self.fail(chunk.offset, f'chunk {chunk.seq}, payload byte '
                          f'{pos}: {e}')
            pos = nxt
            yield event
        if pos != len(raw):
            self.fail(chunk.offset, f'chunk {chunk.seq} has bytes after its '
                      'last event')
        # Given base chaining, this also keeps icounts monotonic across
        # chunks (within a chunk they are by construction).
        if coder.icount != chunk.last:
            self.fail(chunk.offset, f'chunk {chunk.seq} last icount '
                      f'{chunk.last} is not the icount of its last event '
                      f'({coder.icount})')

    def last_icount(self):
        return self.chunks[-1].last if self.chunks else 0


def inflate(stored, raw_size):
    """The zlib stream @stored decoded, or None unless it is raw_size bytes.

    Like zlib's uncompress(): bytes after the end of the stream are ignored.
    """
    d = zlib.decompressobj()
    try:
        raw = d.decompress(stored, raw_size + 1)
    except zlib.error:
        return None
    if len(raw) != raw_size or not d.eof:
        return None
    return raw


def open_regular(path):
    """Open @path for reading; LogError unless it is a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise LogError(f"Could not open '{path}': {e.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LogError(f'{path}: not a regular file')
        return os.fdopen(fd, 'rb')
    except BaseException:
        os.close(fd)
        raise
