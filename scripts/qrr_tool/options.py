# qrr: QEMU option strings
#
# Copyright (c) 2026 The qrr authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

"""QEMU's option syntax: 'key=value,flag' strings and the argv's items."""

import re

from qrr_tool.common import QrrError

# QEMU 10.0 options that take no argument (qemu-options.hx, DEF(..., 0)).
NOARG = frozenset('''
    h help version mem-prealloc snapshot usb nographic full-screen win2k-hack
    no-fd-bootchk preconfig S s enable-kvm xen-attach xen-domid-restrict
    no-reboot no-shutdown daemonize only-migratable nodefaults semihosting
    old-param no-user-config enable-sync-profile perfmap jitdump
'''.split())


def split_items(text):
    """@text cut at single commas; ',,' is a literal comma."""
    parts = ['']
    i = 0
    while i < len(text):
        if text[i] == ',' and text[i + 1:i + 2] == ',':
            parts[-1] += ','
            i += 2
            continue
        if text[i] == ',':
            parts.append('')
        else:
            parts[-1] += text[i]
        i += 1
    return parts


def split_opts(text, implied=None):
    """Split a QEMU option string into [key, value, bare] triples.

    ',,' is a literal comma.  A first element without '=' is the @implied
    key's value; any other element without '=' is a flag (bare=True).
    """
    out = []
    for n, p in enumerate(split_items(text)):
        if '=' in p:
            k, v = p.split('=', 1)
            out.append([k, v, False])
        elif n == 0 and implied:
            out.append([implied, p, False])
        elif p:
            out.append([p, 'on', True])
    return out


def escape(value):
    return str(value).replace(',', ',,')


def join_opts(pairs, implied=None):
    """Inverse of split_opts(): pairs of (key, value[, bare])."""
    items = []
    for n, pair in enumerate(pairs):
        k, v = pair[0], pair[1]
        bare = len(pair) > 2 and pair[2]
        if n == 0 and implied and k == implied:
            items.append(escape(v))
        elif bare:
            items.append(k)
        else:
            items.append(f'{k}={escape(v)}')
    return ','.join(items)


def opt_get(pairs, key, default=None):
    for k, v, *_ in reversed(pairs):
        if k == key:
            return v
    return default


def opt_int(pairs, key, what):
    """The number @key of @pairs; None when absent."""
    v = opt_get(pairs, key)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        raise QrrError(f'{what}: {key}={v} is not a number') from None


def parse_argv(args):
    """Split QEMU arguments into (name, value) items; value None for flags.

    A bare argument (not an option) is a disk image, as QEMU reads it.
    """
    items = []
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith('-') or a == '-':
            items.append(('hda', a))
            i += 1
            continue
        name = a.lstrip('-')
        if name in NOARG:
            items.append((name, None))
            i += 1
            continue
        if i + 1 >= len(args):
            raise QrrError(f'{a} needs an argument')
        items.append((name, args[i + 1]))
        i += 2
    return items


def parse_size(text, default_suffix='M'):
    """A QEMU size ('256M', '1G', '512') in bytes; None if unreadable."""
    m = re.fullmatch(r'(\d+(?:\.\d+)?)\s*([KMGTPE]?)i?[Bb]?', text.strip(),
                     re.I)
    if not m:
        return None
    suffix = (m.group(2) or default_suffix).upper()
    power = ' KMGTPE'.index(suffix) if suffix in 'KMGTPE' else 0
    return int(float(m.group(1)) * (1024 ** power))


def is_local_path(value):
    """False for protocol URLs and json: filenames QEMU would open."""
    if value.startswith('json:'):
        return False
    m = re.match(r'([a-z][a-z0-9+.-]*):', value)
    return not m or '/' in value[:m.end()]
