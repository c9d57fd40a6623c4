# Common settings for qrr's build scripts; sourced, not run.
# shellcheck shell=bash

QRR_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QRR_BUILD=${QRR_BUILD:-$QRR_TOP/build}
QRR_SHARED=${QRR_SHARED:-$QRR_TOP/../shared}

QRR_BASE_PKG=qemu
QRR_BASE_VERSION=1:10.0.13+ds-0+deb13u1
QRR_BASE_UPSTREAM=10.0.13+ds
QRR_BASE_DSC=qemu_10.0.13+ds-0+deb13u1.dsc
QRR_BASE_ORIG=qemu_10.0.13+ds.orig.tar.xz
QRR_BASE_DEBIAN=qemu_10.0.13+ds-0+deb13u1.debian.tar.xz
QRR_SHA_ORIG=6a0888e806c2ffc0c5f0733e974f9aea55491950d3c47c98669c8b236dde59ae
QRR_SHA_DEBIAN=da73c092f5684c551b0334d675eb16a3dec91e1edea94759cfb1102fa4a0364e

QRR_TARGETS=${QRR_TARGETS:-x86_64-softmmu,aarch64-softmmu}
QRR_FIRMWARE=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu

# One ccache for every build dir of ours: paths are made relative to
# $QRR_BUILD, so the upstream and the qrr build share objects.
export PATH=/usr/lib/ccache:$PATH
export CCACHE_BASEDIR=$QRR_BUILD
export CCACHE_NOHASHDIR=true
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-time_macros,include_file_mtime,include_file_ctime}

qrr_log() { printf '\033[1m[qrr]\033[0m %s\n' "$*" >&2; }
qrr_die() { printf '\033[1;31m[qrr] error:\033[0m %s\n' "$*" >&2; exit 1; }
