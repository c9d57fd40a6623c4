# qrr: the machine a command line asks for
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""The machine family, what QEMU adds by default, the IDE slots.

scan() is the rewriter's first pass over the options: it learns the
machine, the RAM and the defaults before any option is rewritten."""

import re

from qrr_tool.common import QrrError
from qrr_tool.options import opt_get, parse_size, split_opts

# Per machine family: default -drive interface, IDE units per bus and
# buses, default NIC model, whether QEMU adds an empty CD-ROM at index 2.
FAMILIES = {
    'pc': {'if': 'ide', 'units': 2, 'buses': 2, 'nic': 'e1000',
           'cdrom': True},
    'q35': {'if': 'ide', 'units': 1, 'buses': 6, 'nic': 'e1000e',
            'cdrom': True},
    'virt': {'if': 'virtio', 'units': 0, 'buses': 0,
             'nic': 'virtio-net-pci', 'cdrom': False},
}


def machine_family(arch, machine):
    """'pc', 'q35', 'virt' or None for an unknown machine."""
    if arch in ('x86_64', 'i386'):
        if machine is None or machine == 'pc' or \
                machine.startswith('pc-i440fx'):
            return 'pc'
        if machine == 'q35' or machine.startswith('pc-q35'):
            return 'q35'
        if re.fullmatch(r'pc-\d.*', machine):
            return 'pc'
    if arch in ('aarch64', 'arm'):
        if machine and (machine == 'virt' or machine.startswith('virt-')):
            return 'virt'
    return None


def scan_machine(st, value):
    pairs = split_opts(value, 'type')
    st.plan.machine = opt_get(pairs, 'type', st.plan.machine)
    accel = opt_get(pairs, 'accel')
    if accel and accel.split(':')[0] != 'tcg':
        raise QrrError(f'-machine accel={accel}: record/replay needs TCG')


def scan_accel(st, value):
    accel = opt_get(split_opts(value, 'accel'), 'accel')
    if accel != 'tcg':
        raise QrrError(f'-accel {accel}: record/replay needs TCG')


def scan_ram(st, value):
    size = opt_get(split_opts(value, 'size'), 'size')
    st.plan.ram = parse_size(size) if size else None


def scan_nodefaults(st, value):
    st.nodefaults = True


def scan_net(st, value):
    st.has_net = True


def scan_device(st, value):
    drv = opt_get(split_opts(value, 'driver'), 'driver') \
        if not value.startswith('{') else None
    if drv in ('ide-hd', 'ide-cd', 'scsi-hd', 'scsi-cd'):
        st.no_default_cdrom = True


SCANNERS = {
    'M': scan_machine, 'machine': scan_machine, 'accel': scan_accel,
    'm': scan_ram, 'nodefaults': scan_nodefaults, 'nic': scan_net,
    'net': scan_net, 'netdev': scan_net, 'device': scan_device,
}


def scan(st, items, arch):
    """The first pass: machine, RAM, accelerator and what QEMU defaults."""
    for name, value in items:
        if name in SCANNERS:
            SCANNERS[name](st, value)
    st.fam = FAMILIES.get(machine_family(arch, st.plan.machine), {})


def free_ide_slot(st, bus, units):
    """The first free unit on @bus, or the first free slot of all."""
    if bus is not None:
        unit = 0
        while bus * units + unit in st.ide_used and unit < units - 1:
            unit += 1
        return bus, unit
    i = 0
    while i in st.ide_used:
        i += 1
    return divmod(i, units)


def ide_slot(st, index, bus, unit, what):
    """Take the IDE slot that index=, bus= and unit= name: (bus, unit)."""
    if not st.fam.get('units'):
        raise QrrError(f'{what}: machine {st.plan.machine or "(default)"} '
                       'has no IDE bus qrr knows (use if=virtio or '
                       'if=none with -device)')
    units, buses = st.fam['units'], st.fam['buses']
    if index is not None:
        bus, unit = divmod(index, units)
    elif unit is not None:
        bus = bus or 0
    else:
        bus, unit = free_ide_slot(st, bus, units)
    if bus >= buses or unit >= units:
        raise QrrError(f'{what}: no IDE slot bus={bus},unit={unit} on '
                       f'machine {st.plan.machine or "pc"}')
    if bus * units + unit in st.ide_used:
        raise QrrError(f'{what}: IDE slot bus={bus},unit={unit} is '
                       'used twice')
    st.ide_used.add(bus * units + unit)
    return bus, unit


def default_cdrom(st):
    """A -device ide-* turns QEMU's default CD-ROM off: put it back."""
    fam = st.fam
    if fam.get('cdrom') and not st.nodefaults and \
            not st.no_default_cdrom and \
            any(t.startswith(('ide-hd,', 'ide-cd,')) for t in st.tail) and \
            fam['units'] and 2 not in st.ide_used:
        bus, unit = divmod(2, fam['units'])
        st.tail.extend(['-device', f'ide-cd,bus=ide.{bus},unit={unit}'])
