# qrr report
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""qrr report: one self-contained HTML page about a recording: its
summary, an SVG timeline of the events per kind and of the log's size,
the events and vCPUs tables, the command line and the fingerprint."""

import html
import os
import re
import shlex

from qrr_tool.common import QrrError, human, warn
from qrr_tool.logreader import LogError, LogReader
from qrr_tool.logstats import fingerprint_values, log_stats
from qrr_tool.rewrite import LOG
from qrr_tool.trace import REPLAY_ERR, cleanup, open_trace

KIND_COLOURS = {
    'interrupt': '#1f77b4', 'exception': '#d62728', 'checkpoint': '#7f7f7f',
    'shutdown': '#000000', 'bh': '#2ca02c', 'bh-oneshot': '#98df8a',
    'block': '#8c564b', 'input': '#e377c2', 'input-sync': '#f7b6d2',
    'char-read': '#ff7f0e', 'net': '#9467bd', 'clock': '#17becf',
    'random': '#bcbd22', 'char-write': '#ffbb78', 'char-read-all': '#c49c94',
    'audio-out': '#aec7e8', 'audio-in': '#c5b0d5', 'sync': '#dbdb8d',
    'end': '#000000',
}
BINS = 200


def read_events(reader):
    """[(icount, kind, args)] of the log, and the problem that ended it."""
    reader.read_header()
    evs = []
    try:
        for e in reader.events_iter():
            evs.append((e.icount, e.name, e.named_args()))
    except LogError as e:
        return evs, str(e)
    return evs, None


def event_mark(icount, kind, args):
    """The vertical line an event gets in the timeline, if any."""
    if kind == 'shutdown':
        return (icount, 'shutdown', '#000')
    if kind == 'checkpoint' and args.get('checkpoint') in (2, 8):
        return (icount, 'reset', '#555')
    if kind == 'end':
        return (icount, 'end of log', '#000')
    return None


def report_data(log):
    reader = LogReader(str(log))
    bins = {}
    marks = []
    try:
        evs, problem = read_events(reader)
        last = max(reader.last_icount(), evs[-1][0] if evs else 0, 1)
        for icount, kind, args in evs:
            b = min(BINS - 1, icount * BINS // (last + 1))
            bins.setdefault(kind, [0] * BINS)[b] += 1
            mark = event_mark(icount, kind, args)
            if mark:
                marks.append(mark)
        chunks = [(c.base, c.last, c.stored_size) for c in reader.chunks]
        fingerprint = reader.header.fingerprint
    finally:
        reader.close()
    return {'last': last, 'bins': bins, 'marks': marks, 'chunks': chunks,
            'events': len(evs), 'problem': problem,
            'fingerprint': fingerprint, 'size': reader.size}


class Geometry:
    """Where things go in the timeline."""

    width, left, right = 960, 130, 20
    row_h, gap = 34, 6
    top = 20
    chart_h = 110

    def __init__(self, last, kinds):
        self.last = last
        self.plot = self.width - self.left - self.right
        self.height = self.top + self.chart_h + 40 + \
            kinds * (self.row_h + self.gap) + 40

    def x(self, icount):
        return self.left + self.plot * icount / self.last


def svg_log_bytes(g, chunks):
    """The log's bytes over icount (cumulative, per chunk)."""
    left, top, chart_h = g.left, g.top, g.chart_h
    total = sum(c[2] for c in chunks) or 1
    p = [f'<text x="4" y="{top + 12}">log bytes</text>',
         f'<rect x="{left}" y="{top}" width="{g.plot}" height="{chart_h}" '
         'fill="#f8f8f8" stroke="#ccc"/>']
    pts = [f'{left:.1f},{top + chart_h:.1f}']
    cum = 0
    for base, lst, size in chunks:
        cum += size
        pts.append(f'{g.x(lst):.1f},{top + chart_h * (1 - cum / total):.1f}')
    p.append(f'<polyline points="{" ".join(pts)}" fill="none" '
             'stroke="#1f77b4" stroke-width="1.5"/>')
    for base, lst, size in chunks:
        p.append(f'<circle cx="{g.x(lst):.1f}" cy="{top + chart_h - 2}" '
                 f'r="1.5" fill="#1f77b4"><title>chunk icount {base}..{lst}'
                 f': {size} bytes</title></circle>')
    p.append(f'<text x="{left + 4}" y="{top + 12}">{total} bytes in '
             f'{len(chunks)} chunks</text>')
    return p


def svg_kind_row(g, k, counts, y):
    """One row of the timeline: the events of kind @k per bin."""
    peak = max(counts) or 1
    p = [f'<text x="4" y="{y + g.row_h - 10}">{html.escape(k)} '
         f'({sum(counts)})</text>',
         f'<rect x="{g.left}" y="{y}" width="{g.plot}" height="{g.row_h}" '
         'fill="#fbfbfb" stroke="#eee"/>']
    bw = g.plot / BINS
    for i, c in enumerate(counts):
        if not c:
            continue
        h = max(1.0, g.row_h * c / peak)
        lo = g.last * i // BINS
        hi = g.last * (i + 1) // BINS
        p.append(f'<rect x="{g.left + i * bw:.1f}" '
                 f'y="{y + g.row_h - h:.1f}" '
                 f'width="{max(bw - 0.5, 0.5):.1f}" height="{h:.1f}" '
                 f'fill="{KIND_COLOURS[k]}"><title>{html.escape(k)}: {c}'
                 f' events at icount {lo}..{hi}</title></rect>')
    return p


def svg_axis(g, y):
    p = [f'<line x1="{g.left}" y1="{y + 4}" x2="{g.left + g.plot}" '
         f'y2="{y + 4}" stroke="#333"/>']
    for i in range(6):
        ic = g.last * i // 5
        p.append(f'<line x1="{g.x(ic):.1f}" y1="{y + 4}" '
                 f'x2="{g.x(ic):.1f}" y2="{y + 9}" stroke="#333"/>')
        anchor = 'start' if i == 0 else 'end' if i == 5 else 'middle'
        p.append(f'<text x="{g.x(ic):.1f}" y="{y + 22}" '
                 f'text-anchor="{anchor}">{ic:,}</text>')
    p.append(f'<text x="4" y="{y + 22}">guest icount</text>')
    return p


def svg_marks(g, marks, y):
    """Dashed lines at resets, shutdowns, the end and divergences."""
    p = []
    placed = []                 # (x, lane) of the mark labels so far
    for icount, label, colour in marks:
        mx = g.x(icount)
        lane = 0
        while any(abs(px - mx) < 80 and pl == lane for px, pl in placed):
            lane += 1
        placed.append((mx, lane))
        p.append(f'<line x1="{mx:.1f}" y1="{g.top}" x2="{mx:.1f}"'
                 f' y2="{y + 4}" stroke="{colour}" stroke-dasharray="4,3">'
                 f'<title>{label} at icount {icount}</title></line>')
        p.append(f'<text x="{mx - 3:.1f}" '
                 f'y="{g.top + g.chart_h + 12 - 11 * lane}"'
                 f' text-anchor="end" fill="{colour}">{label}</text>')
    return p


def svg_timeline(data, divergences):
    kinds = [k for k in KIND_COLOURS if k in data['bins']]
    g = Geometry(data['last'], len(kinds))
    p = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{g.width}" '
         f'height="{g.height}" font-family="sans-serif" font-size="11">']
    p += svg_log_bytes(g, data['chunks'])
    y = g.top + g.chart_h + 30
    for k in kinds:
        p += svg_kind_row(g, k, data['bins'][k], y)
        y += g.row_h + g.gap
    p += svg_axis(g, y)
    p += svg_marks(g, data['marks'] + [(d, 'divergence', '#d00')
                                       for d in divergences], y)
    p.append('</svg>')
    return '\n'.join(p)


def cmd_report(opts):
    stack = []
    try:
        trace = open_trace(opts.trace, stack)
        if stack:
            # an archive: the page goes next to it, not into the temp dir
            name = re.sub(r'(\.tar\.gz|\.tgz)?$', '.html',
                          os.path.basename(opts.trace), count=1)
            opts.output = opts.output or name
        return write_report(trace, opts.output or trace.path('report.html'))
    finally:
        cleanup(stack)


def find_divergences(trace):
    """The icounts at which a replay or debug run of @trace diverged."""
    found = []
    for f in (REPLAY_ERR, 'debug-stderr.txt'):
        try:
            with open(trace.path(f), errors='replace') as fh:
                found += [int(v) for v in re.findall(
                    r'replay diverged at icount (\d+)', fh.read())]
        except OSError:
            pass
    return found


def summary_rows(trace, data, stats, divergences):
    m = trace.manifest
    rows = [('trace', trace.dir), ('date', m.get('date')),
            ('QEMU', m.get('qemu_version')), ('base', m.get('base')),
            ('arch', m.get('arch')),
            ('machine', m.get('machine_type') or m.get('machine')),
            ('RAM', human(m['ram']) if m.get('ram') else '?'),
            ('vCPUs', fingerprint_values(stats).get('smp', '?')),
            ('instructions', f"{data['last']:,}"),
            ('events', f"{data['events']:,}"),
            ('log size', f"{data['size']:,} bytes"),
            ('record wall time', f"{m.get('record_wall_time')} s"),
            ('exit status', m.get('exit_status')),
            ('log status', stats.get('status') if stats else '?')]
    if data['problem']:
        rows.append(('log problem', data['problem']))
    for d in divergences:
        rows.append(('replay diverged', f'at icount {d:,}'))
    return rows


def html_rows(rows):
    """<tr> lines: a <th> and <td>s for each tuple of @rows."""
    esc = html.escape
    return '\n'.join(
        f'<tr><th>{esc(str(r[0]))}</th>' +
        ''.join(f'<td>{esc(str(v))}</td>' for v in r[1:]) + '</tr>'
        for r in rows)


def html_cells(rows):
    """<tr> lines of <td>s only."""
    esc = html.escape
    return '\n'.join('<tr>' + ''.join(f'<td>{esc(str(v))}</td>'
                                       for v in r) + '</tr>' for r in rows)


def page(trace, data, stats, divergences):
    esc = html.escape
    table = html_rows(summary_rows(trace, data, stats, divergences))
    kinds = html_cells((k, f"{v['events']:,}", f"{v['bytes']:,}")
                       for k, v in (stats or {}).get('kinds', {}).items())
    vcpus = html_cells((k, f"{v['instructions']:,}", f"{v['turns']:,}")
                       for k, v in (stats or {}).get('vcpus', {}).items())
    name = esc(os.path.basename(trace.dir))
    return f'''<!DOCTYPE html>
<html><head><meta charset="utf-8">
<title>qrr report: {name}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ text-align: left; padding: 2px 12px 2px 0; vertical-align: top; }}
th {{ font-weight: 600; }}
pre {{ background: #f4f4f4; padding: 1em; overflow-x: auto; }}
</style></head>
<body>
<h1>qrr recording {name}</h1>
<table>{table}</table>
<h2>Timeline</h2>
<p>Events per kind over the guest instruction count ({BINS} bins, each row
scaled to its own peak; hover for counts), and the log's size as its chunks
were written.</p>
{svg_timeline(data, divergences)}
<h2>Events per kind</h2>
<table><tr><th>kind</th><th>events</th><th>bytes</th></tr>
{kinds}</table>
<h2>vCPUs</h2>
<p>Instructions each vCPU executed and how many turns it took, from the
log's vCPU switches.</p>
<table><tr><th>vCPU</th><th>instructions</th><th>turns</th></tr>
{vcpus}</table>
<h2>Command line</h2>
<pre>{esc(shlex.join(trace.cmdline))}</pre>
<h2>Fingerprint</h2>
<pre>{esc(data['fingerprint'])}</pre>
</body></html>
'''


def write_report(trace, out):
    trace.check_log()
    log = trace.path(LOG)
    try:
        data = report_data(log)
    except LogError as e:
        raise QrrError(str(e)) from None
    text = page(trace, data, log_stats(log), find_divergences(trace))
    with open(out, 'w') as f:
        f.write(text)
    warn(f'wrote {out}')
    return 0
