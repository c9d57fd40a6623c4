#!/bin/bash
# ThreadSanitizer on qrr's threads: build qrr with --enable-tsan
# (build/tsan/qemu; it cannot share the ASan build) and run the C unit
# tests on it: the log writer's thread against its appenders, the
# timers' notes against their restores.  The system emulators are not
# run: under TSan (Debian's gcc 12) QEMU dies in TSan's own runtime within
# a second of a Linux boot ("CHECK failed: sanitizer_stackdepot.cpp:83",
# a stack of 65543 frames, then a SEGV), before any replay code runs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QRR_TOP"

bash tooling/build-qemu.sh tsan
bld=$QRR_BUILD/tsan/qemu
export TSAN_OPTIONS=halt_on_error=1:exitcode=88

UNIT_TESTS=(test-replay-log test-replay-timers test-replay-tt-policy
            test-replay-tt-pack)
ninja -C "$bld" "${UNIT_TESTS[@]/#/tests/unit/}" >/dev/null
qrr_log "unit tests under ThreadSanitizer: ${UNIT_TESTS[*]}"
meson test -C "$bld" --no-rebuild --print-errorlogs "${UNIT_TESTS[@]}"
