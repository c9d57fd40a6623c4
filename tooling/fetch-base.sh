#!/bin/bash
# Fetch Debian's QEMU 10.0 source package into $QRR_BUILD/downloads and
# verify it.  Order: apt (deb-src trixie), then ../shared/base, then the
# newest 10.0.x apt offers (with a loud warning).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dl=$QRR_BUILD/downloads
mkdir -p "$dl"
cd "$dl"

verify() {
    echo "$QRR_SHA_ORIG  $QRR_BASE_ORIG" | sha256sum --quiet -c - &&
    echo "$QRR_SHA_DEBIAN  $QRR_BASE_DEBIAN" | sha256sum --quiet -c -
}

if [ -f "$QRR_BASE_DSC" ] && verify 2>/dev/null; then
    exit 0
fi

qrr_log "fetching source package $QRR_BASE_PKG=$QRR_BASE_VERSION with apt"
if apt-get source --download-only -qq "$QRR_BASE_PKG=$QRR_BASE_VERSION" \
        >/dev/null 2>&1 && verify; then
    exit 0
fi

if [ -f "$QRR_SHARED/base/$QRR_BASE_DSC" ]; then
    qrr_log "apt did not serve $QRR_BASE_VERSION; using $QRR_SHARED/base"
    cp -f "$QRR_SHARED/base/$QRR_BASE_DSC" "$QRR_SHARED/base/$QRR_BASE_ORIG" \
          "$QRR_SHARED/base/$QRR_BASE_DEBIAN" .
    verify || qrr_die "checksum mismatch for the base in $QRR_SHARED/base"
    exit 0
fi

cat >&2 <<WARN
******************************************************************
* WARNING: QEMU $QRR_BASE_VERSION is neither served by apt nor in
* $QRR_SHARED/base.  Falling back to the newest 10.0.x apt serves;
* the patch series may not apply and results are not comparable.
******************************************************************
WARN
apt-get source --download-only -qq "$QRR_BASE_PKG" >/dev/null
ls qemu_10.0.*.dsc >/dev/null 2>&1 || qrr_die "no QEMU 10.0.x source found"
