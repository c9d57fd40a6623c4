#!/bin/bash
# Build and run qrr's C unit tests (meson test, suite "unit").
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bld=$QRR_BUILD/qrr/qemu
UNIT_TESTS=(test-replay-log test-replay-timers test-replay-tt-policy
            test-replay-tt-pack)

ninja -C "$bld" "${UNIT_TESTS[@]/#/tests/unit/}" >/dev/null
qrr_log "unit tests: ${UNIT_TESTS[*]}"
meson test -C "$bld" --no-rebuild --print-errorlogs "${UNIT_TESTS[@]}"

# Python unit tests (pytest): the qrr tool, no QEMU needed.
qrr_log "python unit tests: tests/unit/test_*.py"
/usr/bin/python3 -m pytest -q -p no:cacheprovider "$QRR_TOP"/tests/unit/test_*.py
