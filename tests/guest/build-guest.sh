#!/bin/bash
# Build qrr's test guest from Debian packages only: a Debian kernel and a
# busybox-static initramfs whose /init is tests/guest/init.
#
#   build-guest.sh x86_64|aarch64|i386|arm [OUTDIR]
#
# Writes OUTDIR/vmlinuz and OUTDIR/initrd.gz (default
# $QRR_BUILD/guest/<arch>).  Packages are fetched with apt-get download
# into $QRR_BUILD/downloads/guest and reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tooling/lib.sh"

arch=${1:?usage: build-guest.sh x86_64|aarch64|i386|arm [OUTDIR]}
# Debian architecture and kernel meta package: i386 and arm are the 32-bit
# guests (run by qemu-system-x86_64 and, as a cortex-a15 on virt, by
# qemu-system-aarch64).
case "$arch" in
x86_64)  darch=amd64 kmeta=linux-image-amd64 ;;
aarch64) darch=arm64 kmeta=linux-image-arm64 ;;
i386)    darch=i386  kmeta=linux-image-686 ;;
arm)     darch=armhf kmeta=linux-image-armmp ;;
*) qrr_die "unknown guest arch '$arch' (want x86_64, aarch64, i386 or arm)" ;;
esac
out=${2:-$QRR_BUILD/guest/$arch}
dl=$QRR_BUILD/downloads/guest
mkdir -p "$dl" "$out"

# Modules the workloads need (dependencies are added from .modinfo).
MODULES="virtio_pci virtio_blk virtio_net virtio_mmio virtio-rng e1000 e1000e
8139too 8139cp ahci ata_piix sd_mod virtio_scsi nvme xhci_pci usb_storage"
# The input drivers, loaded only under qrr.evdev= (lib/modules/order.evdev).
MODULES_EVDEV="usbhid hid_generic evdev virtio_input"
# The HD audio driver (its generic codec first: no modprobe to load it on
# demand), USB audio and the OSS emulation (/dev/dsp), loaded only under
# qrr.audio=.
MODULES_AUDIO="snd_hda_codec_generic snd_hda_intel snd_usb_audio snd_pcm_oss"

# The kernel meta package names the ABI-versioned image package.
kpkg=$(apt-cache depends "$kmeta:$darch" 2>/dev/null |
       sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1)
[ -n "$kpkg" ] || qrr_die "apt knows no $kmeta:$darch (run tooling/setup-host.sh)"
kpkg=${kpkg%%:*}

fetch() {
    local pkg=$1 f
    f=$(ls "$dl/${pkg}_"*"_$darch.deb" 2>/dev/null | head -n1 || true)
    if [ -z "$f" ]; then
        qrr_log "downloading $pkg:$darch"
        (cd "$dl" && apt-get download "$pkg:$darch" >/dev/null 2>&1) ||
            qrr_die "apt-get download $pkg:$darch failed"
        f=$(ls "$dl/${pkg}_"*"_$darch.deb" | head -n1)
    fi
    echo "$f"
}

kdeb=$(fetch "$kpkg")
bdeb=$(fetch busybox-static)
stamp="$(sha256sum "$kdeb" "$bdeb" "$here/init" "$0" | sha256sum)"
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
    exit 0
fi

qrr_log "building $arch guest in $out from $(basename "$kdeb")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$kdeb" "$tmp/k"
dpkg-deb -x "$bdeb" "$tmp/b"
cp "$tmp"/k/boot/vmlinuz-* "$out/vmlinuz"

root=$tmp/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$tmp/b/bin/busybox" "$root/bin/busybox"
cp "$here/init" "$root/init"
chmod 755 "$root/init" "$root/bin/busybox"

# Module name -> path (names compare with '-' and '_' folded).
declare -A modpath
while IFS= read -r f; do
    n=$(basename "$f" .ko)
    modpath[${n//-/_}]=$f
done < <(find "$tmp/k/lib/modules" -name '*.ko')

declare -A added
order=()
add_module() {
    local n=${1//-/_} dep
    [ -n "${added[$n]:-}" ] && return 0
    added[$n]=1
    [ -n "${modpath[$n]:-}" ] || return 0     # built in
    for dep in $(tr '\0' '\n' < "${modpath[$n]}" | sed -n 's/^depends=//p' | tr ',' ' '); do
        add_module "$dep"
    done
    cp "${modpath[$n]}" "$root/lib/modules/$n.ko"
    order+=("$n.ko")
}
for m in $MODULES; do
    add_module "$m"
done
printf '%s\n' "${order[@]}" > "$root/lib/modules/order"
nbase=${#order[@]}
for m in $MODULES_EVDEV; do
    add_module "$m"
done
printf '%s\n' "${order[@]:$nbase}" > "$root/lib/modules/order.evdev"
nbase=${#order[@]}
for m in $MODULES_AUDIO; do
    add_module "$m"
done
printf '%s\n' "${order[@]:$nbase}" > "$root/lib/modules/order.audio"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) |
    gzip -9n > "$out/initrd.gz"
echo "$stamp" > "$out/.stamp"
qrr_log "guest ready: $out/vmlinuz $out/initrd.gz (${#order[@]} modules)"
