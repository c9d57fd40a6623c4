#!/bin/bash
# Install QEMU with qrr and the qrr tool under a prefix (make install).
#
#   install.sh PREFIX     install what tooling/build-qemu.sh built
#   install.sh --built    exit 0 if there is something to install
#
# PREFIX/bin              qemu-system-x86_64, qemu-system-aarch64, qemu-img,
#                         qrr
# PREFIX/share/qemu       QEMU's data files (keymaps, trace events) and a
#                         copy of the firmware the emulators load (SeaBIOS,
#                         iPXE option ROMs, linuxboot...), found there when
#                         the Debian firmware packages are not installed
# PREFIX/share/qrr        the qrr_tool package, replay-dump.py, the commit
#
# The emulators are relocatable: installed, they look for their data in
# ../share/qemu next to their bin directory, and qrr finds them next to
# itself, so PREFIX/bin/qrr works without --qemu-dir.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bld=$QRR_BUILD/qrr/qemu
BINARIES=(qemu-system-x86_64 qemu-system-aarch64 qemu-img)

built() {
    local b
    for b in "${BINARIES[@]}"; do
        [ -x "$bld/$b" ] || return 1
    done
}

# QEMU's own data directory inside the build's qemu-bundle.
bundle_datadir() {
    local d
    d=$(sed -n 's/^#define CONFIG_QEMU_DATADIR "\(.*\)"$/\1/p' \
        "$bld/config-host.h")
    echo "$bld/qemu-bundle$d"
}

install_qemu() {
    local prefix=$1 d
    install -d "$prefix/bin" "$prefix/share/qemu"
    install -m 755 "${BINARIES[@]/#/$bld/}" "$prefix/bin/"
    # what the build generated there (a link to a file it did not build
    # is left out)
    (cd "$(bundle_datadir)" && find -L . -type f -print0 |
        xargs -0 -r cp -L --parents -t "$prefix/share/qemu/")
    IFS=: read -ra fwdirs <<< "$QRR_FIRMWARE"
    for d in "${fwdirs[@]}"; do
        [ -d "$d" ] || continue
        find -L "$d" -maxdepth 1 -type f -exec cp -L -t "$prefix/share/qemu/" {} +
    done
}

install_qrr() {
    local prefix=$1 home=$1/share/qrr
    rm -rf "$home/qrr_tool"
    install -d "$prefix/bin" "$home/qrr_tool"
    install -m 644 "$QRR_TOP"/scripts/qrr_tool/*.py "$home/qrr_tool/"
    install -m 755 "$QRR_TOP/scripts/replay-dump.py" "$home/"
    install -m 755 "$QRR_TOP/scripts/qrr" "$prefix/bin/qrr"
    git -C "$QRR_TOP" rev-parse HEAD > "$home/commit" 2>/dev/null ||
        rm -f "$home/commit"
}

case "${1:-}" in
    --built) built; exit ;;
    ''|-*) qrr_die "usage: $0 PREFIX | --built" ;;
esac
prefix=$(realpath -m "$1")
built || qrr_die "nothing built in $bld: run make build first"
install_qemu "$prefix"
install_qrr "$prefix"
qrr_log "installed into $prefix: ${BINARIES[*]} qrr"
