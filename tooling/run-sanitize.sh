#!/bin/bash
# make sanitize: build qrr with AddressSanitizer and UndefinedBehaviorSanitizer
# and run the C unit tests and a subset of the functional suite against it.
# Any sanitizer report fails the test that made it (qrrtest.check_sanitizers).
#   run-sanitize.sh [pytest args]     (default: the subset below)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QRR_TOP"

bash tooling/build-qemu.sh sanitize
bld=$QRR_BUILD/sanitize/qemu

# QEMU frees little at exit: leaks are not what this looks for.  A report
# stops QEMU with a status of its own, so a test that expects an error
# exit (a bad log) still fails on a sanitizer's report.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:exitcode=86
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87
export QRR_QEMU_BUILD=$bld
export QRR_TEST_TIMEOUT=${QRR_TEST_TIMEOUT:-1800}

UNIT_TESTS=(test-replay-log test-replay-timers test-replay-tt-policy
            test-replay-tt-pack)
ninja -C "$bld" "${UNIT_TESTS[@]/#/tests/unit/}" >/dev/null
qrr_log "unit tests under ASan/UBSan: ${UNIT_TESTS[*]}"
meson test -C "$bld" --no-rebuild --print-errorlogs "${UNIT_TESTS[@]}"

# The subset: every consumer of a crafted log, the bad logs, the disk and
# network paths, multi-vCPU scheduling and time travel's restores.
if [ $# -eq 0 ]; then
    set -- tests/functional/qrr/test_crafted_logs.py \
        tests/functional/qrr/test_bad_logs.py \
        tests/functional/qrr/test_devices.py \
        tests/functional/qrr/test_smp.py \
        tests/functional/qrr/test_timetravel.py \
        -k "(test_smp.py and (crafted or identically and 2-0)) or $(
            )(test_timetravel.py and (seek_random or restore_exact or $(
            )reverse_stepi)) or not (test_smp.py or test_timetravel.py)"
fi
qrr_log "functional subset under ASan/UBSan ($bld)"
export PYTHONPATH=$QRR_BUILD/qrr/src/python${PYTHONPATH:+:$PYTHONPATH}
exec /usr/bin/python3 -m pytest -v -p no:cacheprovider "$@"
