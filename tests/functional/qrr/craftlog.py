# Crafted replay logs for tests: read a real recording with the log reader
# that scripts/replay-dump.py and qrr share (scripts/qrr_tool/logreader.py),
# let a test change, insert or remove events, and write a log that is valid
# again (chunk sizes, event counts, last icounts and CRCs recomputed), so
# that what the replay meets is the crafted event, not a checksum mismatch.
#
# The format is that of the header comments of replay/replay-log.c (file,
# chunks) and replay/replay-event.c (events).
#
#   log = craftlog.Log(path)
#   ev = log.find('random')[0]
#   ev.data = ev.data + b'x'
#   log.write(tmp_path / 'bad.rr')
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import struct
import sys
import zlib
from pathlib import Path

TOP = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(TOP / 'scripts'))

from qrr_tool import logreader as rd  # noqa: E402

KIND = {name: i for i, (name, _, _) in enumerate(rd.KINDS)}
CHECKPOINT = {name: i for i, name in enumerate(rd.CHECKPOINTS)}
CLOCK = {name: i for i, name in enumerate(rd.CLOCKS)}


class Ev:
    """One event, free to change: kind (a name), icount, args, data."""

    def __init__(self, kind, icount, args=(), data=None):
        self.kind = kind
        self.icount = icount
        self.args = list(args)
        self.data = data

    def __repr__(self):
        data = '' if self.data is None else f' data={self.data[:16].hex()}'
        return f'<{self.kind} @{self.icount} {self.args}{data}>'


class _Chunk:
    def __init__(self, codec, final, events):
        self.codec = codec
        self.final = final
        self.events = events


def uleb(v):
    """v (0 <= v < 2**64) as the writer's canonical unsigned LEB128."""
    assert 0 <= v <= rd.U64
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def zigzag(v):
    """An int64 argument zigzag-mapped, as put_sleb()."""
    v = rd.to_s64(v)
    return ((v << 1) ^ (v >> 63)) & rd.U64


class Log:
    """A log read whole: its header bytes and its chunks' events."""

    def __init__(self, path):
        reader = rd.LogReader(str(path))
        try:
            header = reader.read_header()
            self.header = bytes(reader.read_at(0, header.size))
            by_chunk = {}
            for e in reader.events_iter():
                by_chunk.setdefault(e.chunk, []).append(
                    Ev(e.name, e.icount, e.args, e.data))
            self.chunks = [_Chunk(c.codec, c.final, by_chunk.get(c.seq, []))
                           for c in reader.chunks]
        finally:
            reader.close()

    @property
    def events(self):
        return [e for c in self.chunks for e in c.events]

    def find(self, kind, pred=lambda e: True):
        """The events of @kind (a name) for which @pred is true."""
        return [e for e in self.events if e.kind == kind and pred(e)]

    def _where(self, ev):
        for c in self.chunks:
            for i, e in enumerate(c.events):
                if e is ev:
                    return c.events, i
        raise ValueError(f'{ev} is not in this log')

    def insert_before(self, ev, new):
        """Put @new just before @ev, in its chunk; by default at its
        icount."""
        if new.icount is None:
            new.icount = ev.icount
        events, i = self._where(ev)
        events.insert(i, new)
        return new

    def remove(self, ev):
        events, i = self._where(ev)
        del events[i]

    def write(self, path):
        """Write the log to @path, valid but for what was crafted."""
        out = bytearray(self.header)
        base = 0
        for seq, c in enumerate(self.chunks):
            raw = encode_events(c.events, base)
            last = c.events[-1].icount if c.events else base
            stored = zlib.compress(raw) if c.codec == rd.CODEC_ZLIB else raw
            hdr = struct.pack('<4sIQQIIIBBH', rd.CHUNK_MAGIC, seq, base, last,
                              len(c.events), len(raw), len(stored), c.codec,
                              rd.FLAG_FINAL if c.final else 0, 0)
            hdr += struct.pack('<I', zlib.crc32(stored))
            hdr += struct.pack('<I', zlib.crc32(hdr))
            out += hdr + stored
            base = last
        Path(path).write_bytes(bytes(out))
        return Path(path)


def encode_events(events, base):
    """A chunk payload holding @events, as replay_event_encode()."""
    out = bytearray()
    icount = base
    clocks = [0] * rd.CLOCK_SLOTS
    for e in events:
        kind = KIND[e.kind]
        _, names, has_data = rd.KINDS[kind]
        assert len(e.args) == len(names), f'{e}: {len(names)} arguments'
        assert e.icount >= icount, f'{e}: icount goes backwards'
        out.append(kind)
        out += uleb(e.icount - icount)
        icount = e.icount
        for i, arg in enumerate(e.args):
            if kind == rd.KIND_CLOCK and i == 1:
                slot = e.args[0]
                assert 0 <= slot < rd.CLOCK_SLOTS, f'{e}: no such clock slot'
                out += uleb(zigzag(arg - clocks[slot]))
                clocks[slot] = rd.to_s64(arg)
            else:
                out += uleb(zigzag(arg))
        if has_data:
            data = e.data or b''
            out += uleb(len(data)) + data
        else:
            assert e.data is None, f'{e}: this kind carries no data'
    return bytes(out)
