#!/bin/bash
# Build one of qrr's bare-metal test guests (tests/guest/baremetal/).
#
#   build-baremetal.sh x86|aarch64 [OUTDIR]
#
# Writes OUTDIR/guest.elf (default $QRR_BUILD/guest/baremetal/<arch>),
# the test guest (common/guest.c), and OUTDIR/bench.elf, the benchmark
# guest (common/bench.c, for tooling/bench.py), both linked with the same
# console output (common/console.c), arch.c and start.S.  x86 also gets
# OUTDIR/input.elf (x86/input.c: the i8042's keyboard and mouse, for
# tests/functional/qrr/test_input.py).
# x86 is built with the host gcc (-m32, freestanding: only gcc's own
# headers, no libc, no multilib), aarch64 with aarch64-linux-gnu-gcc
# (Debian's gcc-aarch64-linux-gnu; CROSS_COMPILE overrides the prefix).
# Nothing is rebuilt when the sources, this script and the compiler are
# unchanged.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tooling/lib.sh"

arch=${1:?usage: build-baremetal.sh x86|aarch64 [OUTDIR]}
case "$arch" in
x86|x86_64|i386)
    arch=x86
    cross=${CROSS_COMPILE:-}
    cflags=(-m32 -march=i686)
    ldflags=(-m elf_i386)
    ;;
aarch64|arm64)
    arch=aarch64
    cross=${CROSS_COMPILE:-aarch64-linux-gnu-}
    cflags=(-mgeneral-regs-only -mstrict-align)
    ldflags=()
    ;;
*) qrr_die "unknown bare-metal guest arch '$arch' (want x86 or aarch64)" ;;
esac
src=$here/baremetal
out=${2:-$QRR_BUILD/guest/baremetal/$arch}
cc=${cross}gcc
ld=${cross}ld
command -v "$cc" >/dev/null && command -v "$ld" >/dev/null ||
    qrr_die "$cc/$ld not found (run tooling/setup-host.sh)"

arch_srcs=("$src/common/console.c" "$src/$arch/arch.c" "$src/$arch/start.S")
# OUTDIR/NAME.elf: NAME.c + arch_srcs
guest_srcs=("$src/common/guest.c" "$src/common/bench.c")
arch_hdrs=()
if [ "$arch" = x86 ]; then
    guest_srcs+=("$src/x86/input.c")
    arch_hdrs+=("$src/x86/io.h")
fi
stamp=$( (cat "$0" "$src/common/guest.h" "${guest_srcs[@]}" \
              "${arch_srcs[@]}" "$src/$arch/link.ld" "${arch_hdrs[@]}"
          "$cc" --version; "$ld" --version) | sha256sum)
elfs=()
for g in "${guest_srcs[@]}"; do
    elfs+=("$out/$(basename "${g%.c}").elf")
done
built=true
for e in "${elfs[@]}"; do
    [ -f "$e" ] || built=false
done
if $built && [ -f "$out/.stamp" ] &&
   [ "$(cat "$out/.stamp")" = "$stamp" ]; then
    exit 0
fi

mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=("${cflags[@]}" -std=gnu11 -O2 -g -Wall -Wextra -Werror
       -ffreestanding -nostdlib -fno-pic -fno-pie -fno-stack-protector
       -fno-asynchronous-unwind-tables -fno-builtin
       -I "$src/common")
compile() {
    local o=$tmp/$(basename "${1%.*}").o
    "$cc" "${flags[@]}" -c "$1" -o "$o"
    echo "$o"
}
arch_objs=()
for f in "${arch_srcs[@]}"; do
    o=$(compile "$f")
    arch_objs+=("$o")
done
for g in "${guest_srcs[@]}"; do
    o=$(compile "$g")
    "$ld" "${ldflags[@]}" -n --no-warn-rwx-segments -T "$src/$arch/link.ld" \
        "$o" "${arch_objs[@]}" -o "$tmp/$(basename "${g%.c}").elf"
done
for e in "${elfs[@]}"; do
    mv "$tmp/$(basename "$e")" "$e"
done
echo "$stamp" > "$out/.stamp"
qrr_log "bare-metal $arch guests ready: ${elfs[*]}"
