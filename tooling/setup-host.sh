#!/bin/bash
# Install what building and testing qrr needs on a Debian 12 (bookworm) host.
# Idempotent: a second run installs nothing new.  Needs root (or sudo).
set -euo pipefail

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# Bump the version when the package list grows.
stamp=/var/lib/qrr-setup-host.v4
if [ -f "$stamp" ] && [ -z "${QRR_FORCE_SETUP:-}" ]; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive

# bookworm-backports for meson >= 1.5; trixie sources (deb-src only) for the
# QEMU 10.0 source package.  Neither changes what bookworm's binaries resolve to.
$SUDO tee /etc/apt/sources.list.d/qrr.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

# Foreign architectures for the guest kernels (tests/guest/build-guest.sh):
# arm64 for AArch64, i386 and armhf for the 32-bit guests.
for a in arm64 i386 armhf; do
    if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
        $SUDO dpkg --add-architecture "$a"
    fi
done

$SUDO apt-get update -qq

$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential ccache ninja-build pkg-config dpkg-dev xz-utils \
    python3 python3-venv python3-pytest python3-pytest-xdist \
    libglib2.0-dev libpixman-1-dev libslirp-dev libfdt-dev zlib1g-dev \
    libzstd-dev \
    seabios ipxe-qemu qemu-system-data \
    busybox-static cpio gzip gdb-multiarch file \
    gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports meson >/dev/null
# clang and its libFuzzer runtime, for tooling/build-fuzz.sh
$SUDO apt-get install -y -qq --no-install-recommends \
    clang libclang-rt-14-dev >/dev/null

$SUDO touch "$stamp"
