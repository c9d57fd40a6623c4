#!/bin/bash
# Assemble a QEMU source tree in $QRR_BUILD/<flavour>/src.
#
#   assemble.sh qrr       Debian's QEMU 10.0 with upstream's replay
#                         implementation deleted, ours copied in at the same
#                         paths and patches/series applied.
#   assemble.sh upstream  Debian's QEMU 10.0 as it is (for the benchmark),
#                         plus only our device configs, so both builds have
#                         the same devices.
#   assemble.sh upstream-warp
#                         upstream plus our patch 0006 alone (the benchmark
#                         measures how much of upstream's log that fix of
#                         its icount code saves, apart from our log design).
#
# The tree is unpacked afresh when the base or the series changes; otherwise
# only our files are synced (files whose content is unchanged keep their
# mtime, so ninja rebuilds only what changed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=${1:-qrr}
case "$flavour" in qrr|upstream|upstream-warp) ;;
*) qrr_die "usage: $0 qrr|upstream|upstream-warp" ;;
esac
WARP_PATCH=0006-icount-account-warp-only-when-in-progress.patch

src=$QRR_BUILD/$flavour/src
dl=$QRR_BUILD/downloads

# What we delete from the base: upstream's replay implementation.
UPSTREAM_SET=(
    replay include/system/replay.h stubs/replay-mode.c stubs/replay-tools.c
    stubs/replay.c block/blkreplay.c net/filter-replay.c qapi/replay.json
    scripts/replay-dump.py docs/system/replay.rst docs/devel/replay.rst
    tests/functional/replay_kernel.py tests/functional/reverse_debugging.py
)
# Directories of this repo that mirror QEMU's tree.
OUR_DIRS=(replay include stubs block net qapi scripts docs tests configs)

stamp_of() {
    {
        cat "$dl"/*.dsc
        echo "$flavour"
        if [ "$flavour" = qrr ]; then
            cat "$QRR_TOP/patches/series"
            while read -r p; do
                case "$p" in ''|'#'*) continue ;; esac
                cat "$QRR_TOP/patches/$p"
            done < "$QRR_TOP/patches/series"
        elif [ "$flavour" = upstream-warp ]; then
            cat "$QRR_TOP/patches/$WARP_PATCH"
        fi
    } | sha256sum | cut -d' ' -f1
}

unpack() {
    qrr_log "unpacking the base into $src"
    rm -rf "$src" "$src.tmp"
    mkdir -p "$(dirname "$src")"
    dpkg-source --no-check -x "$dl"/*.dsc "$src.tmp" >/dev/null
    mv "$src.tmp" "$src"
}

delete_upstream_replay() {
    local p
    for p in "${UPSTREAM_SET[@]}"; do
        rm -rf "${src:?}/$p"
    done
    find "$src/tests/functional" -maxdepth 1 \
        \( -name 'test_*_replay.py' -o -name 'test_*_reverse_debug.py' \) \
        -delete
}

apply_series() {
    local p n=0
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        n=$((n + 1))
        if ! patch -d "$src" -p1 -s --no-backup-if-mismatch \
                -i "$QRR_TOP/patches/$p" >"$src.patchlog" 2>&1; then
            cat "$src.patchlog" >&2
            qrr_die "patch $p (number $n in patches/series) does not apply"
        fi
    done < "$QRR_TOP/patches/series"
    rm -f "$src.patchlog"
    qrr_log "applied $n patches"
}

# Copy a file only when its content differs, keeping mtimes stable.
sync_file() {
    local from=$1 to=$2
    if ! cmp -s "$from" "$to"; then
        mkdir -p "$(dirname "$to")"
        cp "$from" "$to"
    fi
}

sync_ours() {
    local d f
    for d in "${OUR_DIRS[@]}"; do
        [ -d "$QRR_TOP/$d" ] || continue
        if [ "$flavour" != qrr ] && [ "$d" != configs ]; then
            continue
        fi
        while IFS= read -r -d '' f; do
            sync_file "$QRR_TOP/$f" "$src/$f"
        done < <(cd "$QRR_TOP" && find "$d" -type f ! -name '*.pyc' \
                     ! -path '*/__pycache__/*' -print0)
    done
}

assemble() {
    unpack
    if [ "$flavour" = qrr ]; then
        delete_upstream_replay
        sync_ours
        apply_series
    else
        sync_ours
        if [ "$flavour" = upstream-warp ]; then
            patch -d "$src" -p1 -s --no-backup-if-mismatch \
                -i "$QRR_TOP/patches/$WARP_PATCH" ||
                qrr_die "patch $WARP_PATCH does not apply to the base"
        fi
    fi
}

# A tree that exists is brought to the new one file by file, so that a
# change to the series recompiles only the files that it changed.
stamp=$(stamp_of)
if [ ! -f "$src/.qrr-stamp" ]; then
    assemble
    echo "$stamp" > "$src/.qrr-stamp"
elif [ "$(cat "$src/.qrr-stamp")" != "$stamp" ]; then
    old=$src.old
    rm -rf "$old"
    mv "$src" "$old"
    assemble
    python3 "$QRR_TOP/tooling/sync-tree.py" "$src" "$old" \
        --keep .qrr-stamp
    rm -rf "$src"
    mv "$old" "$src"
    echo "$stamp" > "$src/.qrr-stamp"
else
    sync_ours
fi
