# qrr: the rewriter's network
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""-netdev, -nic and -net: every network backend gets a filter-replay
object; -nic becomes -netdev plus -device; the legacy -net is refused
(but -net none); a machine that would add a NIC by itself gets -net
none."""

import json

from qrr_tool.common import QrrError
from qrr_tool.options import join_opts, opt_get, split_opts


def add_filter(st, netdev_id):
    fid = f'qrr-net{len(st.plan.netdevs)}'
    st.plan.netdevs.append((netdev_id, fid))
    st.tail.extend(['-object', f'filter-replay,id={fid},netdev={netdev_id}'])


def netdev_id(value, what):
    if value.startswith('{'):
        try:
            return json.loads(value).get('id')
        except (ValueError, AttributeError):
            raise QrrError(f'{what}: bad JSON') from None
    return opt_get(split_opts(value, 'type'), 'id')


def opt_netdev(st, name, value, what):
    nid = netdev_id(value, what)
    if not nid:
        raise QrrError(f'{what}: id= is missing')
    st.out.extend(['-netdev', value])
    add_filter(st, nid)


def nic_model(st, pairs, ntype, what):
    model = opt_get(pairs, 'model') or st.fam.get('nic')
    if not model:
        raise QrrError(f'{what}: qrr does not know the default NIC '
                       f'of machine {st.plan.machine}: give model=')
    if model == 'help' or ntype == 'help':
        raise QrrError(f'{what}: ask QEMU itself for help')
    return model


def opt_nic(st, name, value, what):
    pairs = split_opts(value, 'type')
    ntype = opt_get(pairs, 'type', 'user')
    if ntype == 'none':
        st.out.extend(['-nic', value])
        return
    model = nic_model(st, pairs, ntype, what)
    nid = opt_get(pairs, 'id') or f'qrr-nic{st.nics}'
    st.nics += 1
    nd = [('type', ntype), ('id', nid)]
    nd += [(k, v) for k, v, *_ in pairs
           if k not in ('type', 'id', 'model', 'mac')]
    dev = [('driver', model), ('netdev', nid)]
    mac = opt_get(pairs, 'mac')
    if mac:
        dev.append(('mac', mac))
    st.out.extend(['-netdev', join_opts(nd, 'type')])
    st.tail.extend(['-device', join_opts(dev, 'driver')])
    add_filter(st, nid)


def opt_net(st, name, value, what):
    if value != 'none':
        raise QrrError(f'{what}: the legacy -net option is not supported by '
                       'qrr (use -nic TYPE,model=MODEL or -netdev '
                       'TYPE,id=ID with -device)')
    st.out.extend(['-net', value])


HANDLERS = {'netdev': opt_netdev, 'nic': opt_nic, 'net': opt_net}


def default_net(st):
    """No network given: -net none keeps QEMU from adding a NIC whose
    packets nothing would record."""
    if not st.has_net and not st.nodefaults:
        st.out.extend(['-net', 'none'])
        st.plan.notes.append('no network on the command line: added -net '
                             'none (give -nic user,model=... to record a '
                             'NIC)')
