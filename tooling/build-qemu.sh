#!/bin/bash
# Configure (once) and build QEMU in $QRR_BUILD/<flavour>/qemu.
#   build-qemu.sh qrr|upstream|upstream-warp
#   build-qemu.sh sanitize    qrr's tree with ASan and UBSan, in
#                             $QRR_BUILD/sanitize/qemu (make sanitize)
#   build-qemu.sh tsan        qrr's tree with ThreadSanitizer, in
#                             $QRR_BUILD/tsan/qemu
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=${1:-qrr}
src=$QRR_BUILD/$flavour/src
bld=$QRR_BUILD/$flavour/qemu
werror=--enable-werror
# zstd packs time travel's snapshot pages (replay/replay-tt-pack.c);
# upstream's replay has no use for it
extra=(--enable-zstd)
case "$flavour" in
upstream|upstream-warp)
    extra=()
    ;;
sanitize|tsan)
    src=$QRR_BUILD/qrr/src
    # the sanitizers' instrumentation makes gcc warn where it does not
    werror=--disable-werror
    extra+=(--enable-asan --enable-ubsan)
    # ThreadSanitizer cannot share a build with ASan
    [ "$flavour" = tsan ] && extra=(--enable-zstd --enable-tsan)
    ;;
esac

opts=(
    --python=/usr/bin/python3
    --target-list="$QRR_TARGETS"
    --with-devices-x86_64=qrr --with-devices-aarch64=qrr
    --without-default-features --without-default-devices --enable-tcg --enable-slirp
    --enable-fdt=system --enable-tools --disable-docs
    --disable-install-blobs $werror --enable-trace-backends=log
    --firmwarepath="$QRR_FIRMWARE" "${extra[@]}"
)
optstamp=$(printf '%s\n' "${opts[@]}" | sha256sum | cut -d' ' -f1)

if [ ! -f "$bld/build.ninja" ] || [ "$(cat "$bld/.qrr-opts" 2>/dev/null)" != "$optstamp" ]; then
    qrr_log "configuring $flavour QEMU in $bld"
    rm -rf "$bld"
    mkdir -p "$bld"
    (cd "$bld" && "$src/configure" "${opts[@]}") > "$bld.configure.log" 2>&1 ||
        { tail -30 "$bld.configure.log" >&2; qrr_die "configure failed (log: $bld.configure.log)"; }
    echo "$optstamp" > "$bld/.qrr-opts"
fi

qrr_log "building $flavour QEMU (ninja in $bld)"
ninja -C "$bld" ${QRR_NINJA_JOBS:+-j "$QRR_NINJA_JOBS"} \
    qemu-system-x86_64 qemu-system-aarch64 qemu-img

# A binary run from the build dir looks for firmware under qemu-bundle/
# (the relocatable install tree): point those dirs at Debian's firmware.
IFS=: read -ra fwdirs <<< "$QRR_FIRMWARE"
for d in "${fwdirs[@]}"; do
    link=$bld/qemu-bundle$d
    if [ ! -e "$link" ]; then
        mkdir -p "$(dirname "$link")"
        ln -sfn "$d" "$link"
    fi
done
