# qrr record
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""qrr record: rewrite the user's command line, make the trace directory
(overlays, command line, manifest), run QEMU, then hand the user the
output files their command line names and summarise the log."""

import datetime
import os
import shutil

from qrr_tool import BASE, QRR_VERSION, layout
from qrr_tool.common import QrrError, warn
from qrr_tool.logstats import fingerprint_values, log_stats
from qrr_tool.plan import OUTPUT_DIRS
from qrr_tool.qemu import (arch_of, file_sha256, find_program, find_qemu_img,
                           image_format, qemu_version, run_qemu_img)
from qrr_tool.rewrite import LOG, rewrite
from qrr_tool.runner import exit_status, run_qemu
from qrr_tool.trace import (CMDLINE, MANIFEST, RECORD_ERR, RECORD_OUT,
                            file_sizes, free_trace_dir, write_json)


def check_inputs(plan, tdir):
    """Refuse before anything is made: missing images, no place for an
    output, a trace directory in use."""
    for d in plan.disks:
        if not os.path.isfile(d.source):
            raise QrrError(f'{d.source}: no such disk image')
    for o in plan.outputs:
        if not os.path.isdir(os.path.dirname(o.user_path)):
            raise QrrError(f'{o.option}: {os.path.dirname(o.user_path)}: '
                           'no such directory')
    if os.path.exists(tdir) and (not os.path.isdir(tdir) or
                                 os.listdir(tdir)):
        raise QrrError(f'{tdir}: already exists and is not an empty '
                       'directory')


def make_overlays(plan, tdir, qemu_img):
    """The pristine and the scratch overlay of each disk: manifest rows."""
    disks = []
    for d in plan.disks:
        if not d.format:
            d.format = image_format(qemu_img, d.source)
        run_qemu_img(qemu_img, 'create', '-q', '-f', 'qcow2', '-F', d.format,
                     '-b', d.source, os.path.join(tdir, d.base))
        shutil.copyfile(os.path.join(tdir, d.base),
                        os.path.join(tdir, d.overlay))
        st = os.stat(d.source)
        disks.append(dict(d.as_dict(), size=st.st_size, mtime=st.st_mtime))
    return disks


def first_manifest(plan, qemu, arch, qemu_argv, cwd, disks):
    return {
        'format': 'qrr-trace-1',
        'qrr_version': QRR_VERSION,
        'qrr_commit': layout.qrr_commit(),
        'qemu_version': qemu_version(qemu),
        'base': BASE,
        'qemu_binary': qemu,
        'qemu_binary_sha256': file_sha256(qemu),
        'arch': arch,
        'machine': plan.machine,
        'ram': plan.ram,
        'user_argv': qemu_argv,
        'user_cwd': cwd,
        'record_argv': [qemu] + plan.args,
        'disks': disks,
        'netdevs': [{'netdev': n, 'filter': f} for n, f in plan.netdevs],
        'outputs': [o.as_dict() for o in plan.outputs],
        'notes': plan.notes,
        'date': datetime.datetime.now(datetime.timezone.utc)
        .isoformat(timespec='seconds'),
        'record_wall_time': None,
        'exit_status': None,
    }


def record_results(manifest, plan, stats, rc, wall):
    fp = fingerprint_values(stats)
    manifest.update({
        'record_wall_time': round(wall, 3),
        'exit_status': rc,
        'machine_type': fp.get('machine'),
        'ram': int(fp['ram']) if fp.get('ram') else plan.ram,
        'icount': (stats or {}).get('last_icount'),
        'events': (stats or {}).get('events'),
        'log_status': (stats or {}).get('status'),
    })


def deliver_outputs(plan, tdir):
    """Copy each output the recording kept in the trace to the user's
    path, as QEMU would have written it (appended for append=on)."""
    for o in plan.outputs:
        kept = os.path.join(tdir, o.path('record'))
        if not os.path.exists(kept):
            continue            # QEMU stopped before it opened the file
        try:
            with open(kept, 'rb') as src, \
                    open(o.user_path, 'ab' if o.append else 'wb') as dst:
                shutil.copyfileobj(src, dst)
        except OSError as e:
            warn(f'{o.option}: {e.filename}: {e.strerror} (the recorded '
                 f'output is in {kept})')


def last_line(path):
    """The last non-empty line of @path, or a note that there is none."""
    try:
        with open(path, errors='replace') as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        lines = []
    return lines[-1] if lines else '(it printed nothing)'


def summarise(tdir, stats, rc, wall):
    if stats and stats.get('status') == 'complete':
        warn(f'recorded {stats["last_icount"]} instructions, '
             f'{stats["events"]} events, {stats["file_size"]} bytes of log '
             f'in {wall:.1f} s: {os.path.relpath(tdir)}')
    elif rc and not file_sizes(tdir).get(LOG):
        # QEMU stopped before it wrote the log's header: say why
        warn(f'QEMU refused to start (exit status {rc}): '
             f'{last_line(os.path.join(tdir, RECORD_ERR))}')
    else:
        warn(f'QEMU exited with status {rc}; the log is '
             f'{(stats or {}).get("status", "missing")}')


def cmd_record(opts, qemu_argv):
    if not qemu_argv:
        raise QrrError('record: give the QEMU command line after --')
    qemu = find_program(qemu_argv[0], opts.qemu_dir)
    arch = arch_of(qemu)
    cwd = os.getcwd()
    tdir = os.path.abspath(opts.output or free_trace_dir())
    plan = rewrite(qemu_argv[1:], arch, 'record', tdir, cwd, os.path.isfile)
    replay_plan = rewrite(qemu_argv[1:], arch, 'replay', None, cwd,
                          os.path.isfile)
    check_inputs(plan, tdir)
    os.makedirs(tdir, exist_ok=True)
    if plan.outputs:
        os.makedirs(os.path.join(tdir, OUTPUT_DIRS['record']))
    qemu_img = find_qemu_img(qemu, opts.qemu_dir) if plan.disks else None
    disks = make_overlays(plan, tdir, qemu_img)
    for note in plan.notes:
        warn(note)
    write_json(os.path.join(tdir, CMDLINE),
               [os.path.basename(qemu_argv[0])] + replay_plan.args)
    manifest = first_manifest(plan, qemu, arch, qemu_argv, cwd, disks)
    mpath = os.path.join(tdir, MANIFEST)
    write_json(mpath, manifest)
    warn(f'recording into {tdir}')
    rc, wall = run_qemu([qemu] + plan.args, cwd,
                        [os.path.join(tdir, RECORD_OUT), opts.serial_out],
                        [os.path.join(tdir, RECORD_ERR)])
    deliver_outputs(plan, tdir)
    stats = log_stats(os.path.join(tdir, LOG))
    record_results(manifest, plan, stats, rc, wall)
    manifest['files'] = file_sizes(tdir)
    write_json(mpath, manifest)
    summarise(tdir, stats, rc, wall)
    return exit_status(rc)
