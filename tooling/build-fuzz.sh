#!/bin/bash
# Build the libFuzzer target for the replay log reader with Debian's clang.
#
#   build-fuzz.sh [--selftest]
#
# Compiles tests/fuzz/fuzz-replay-log.c with this repo's replay/replay-log.c
# and replay/replay-event.c (-fsanitize=fuzzer,address,undefined -g -O1)
# against the qrr QEMU build's headers and links the build's libqemuutil.a.
# Writes build/fuzz/fuzz-replay-log and build/fuzz/replay-log-seeds (the
# seed corpus maker, tests/fuzz/replay-log-seeds.c).  With --selftest, also
# build/fuzz/fuzz-replay-log-selftest: the same target with a planted
# use-after-free (QRR_FUZZ_SELFTEST) that the test suite expects the fuzzer
# to report.  Needs the QEMU build (make build); does not run it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=$QRR_BUILD/qrr/src
bld=$QRR_BUILD/qrr/qemu
out=$QRR_BUILD/fuzz
CC=${QRR_FUZZ_CC:-clang}

selftest=false
[ "${1:-}" = --selftest ] && selftest=true

[ -f "$bld/config-host.h" ] && [ -f "$bld/libqemuutil.a" ] ||
    qrr_die "no QEMU build in $bld (run 'make build' first)"
command -v "$CC" >/dev/null ||
    qrr_die "$CC not found (tooling/setup-host.sh installs clang)"
rt=$("$CC" -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)
if [ ! -f "$rt" ]; then
    rt=$("$CC" -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a
fi
[ -f "$rt" ] ||
    qrr_die "clang's libFuzzer runtime is missing (apt-get install libclang-rt-14-dev)"

mkdir -p "$out"

# What meson passes for replay-log.c in the test-replay-log target, less
# gcc's own warnings and options, plus the sanitizers.
cflags=(
    -m64 -std=gnu11 -g -O1 -fno-omit-frame-pointer
    -Wall -Werror -Wno-unused-function
    -I"$bld" -I"$bld/qapi" -I"$bld/trace"
    $(pkg-config --cflags glib-2.0)
    -isystem "$src/linux-headers" -isystem "$bld/linux-headers"
    -iquote "$bld" -iquote "$src" -iquote "$src/include"
    -iquote "$src/host/include/x86_64" -iquote "$src/host/include/generic"
    -iquote "$src/tcg/i386"
    -mcx16 -msse2 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -D_LARGEFILE_SOURCE
    -fno-strict-aliasing -fno-common -fwrapv
)
# libqemuutil's main loop and thread contexts are QOM objects: link what
# the unit test links (see its line in build.ninja).
libs=(
    "$bld"/libqom.a.p/qom_container.c.o "$bld"/libqom.a.p/qom_object.c.o
    "$bld"/libqom.a.p/qom_object_interfaces.c.o
    "$bld"/libqom.a.p/qom_qom-qobject.c.o
    "$bld"/libevent-loop-base.a.p/event-loop-base.c.o
    -Wl,--start-group "$bld/libqemuutil.a" -lrt -lz -lm -pthread
    $(pkg-config --libs glib-2.0) -Wl,--end-group
)
reader=("$QRR_TOP/replay/replay-log.c" "$QRR_TOP/replay/replay-event.c")
deps=("${reader[@]}" "$QRR_TOP"/replay/replay-log.h
      "$QRR_TOP"/replay/replay-event.h "$bld/libqemuutil.a" "$0")

# Rebuild @1 when it is older than any of the other arguments.
stale() {
    local t=$1 f
    shift
    [ -f "$t" ] || return 0
    for f in "$@"; do
        [ "$f" -nt "$t" ] && return 0
    done
    return 1
}

build() {
    local target=$1 main=$2
    shift 2
    if stale "$target" "$main" "${deps[@]}"; then
        qrr_log "building $target"
        "$CC" "${cflags[@]}" "$@" -o "$target.tmp" "$main" "${reader[@]}" \
            "${libs[@]}"
        mv "$target.tmp" "$target"
    fi
}

san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
build "$out/fuzz-replay-log" "$QRR_TOP/tests/fuzz/fuzz-replay-log.c" \
    -fsanitize=fuzzer "${san[@]}"
build "$out/replay-log-seeds" "$QRR_TOP/tests/fuzz/replay-log-seeds.c" \
    "${san[@]}"
if $selftest; then
    build "$out/fuzz-replay-log-selftest" \
        "$QRR_TOP/tests/fuzz/fuzz-replay-log.c" \
        -fsanitize=fuzzer "${san[@]}" -DQRR_FUZZ_SELFTEST
fi
