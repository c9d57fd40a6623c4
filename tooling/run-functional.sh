#!/bin/bash
# Run qrr's functional tests (pytest) against the qrr build.
#   run-functional.sh [pytest args or test files]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QRR_TOP"
if [ $# -eq 0 ]; then
    set -- tests/functional/qrr
fi
export PYTHONPATH=$QRR_BUILD/qrr/src/python${PYTHONPATH:+:$PYTHONPATH}
# One pytest worker per core (QRR_JOBS=N to choose; 1 runs them in this
# process).  A test runs one QEMU at a time, and a QEMU with record/replay
# keeps about one core busy, so on CI's two cores two workers halve the
# wall time.  --dist loadfile keeps each file's tests, and the module
# fixtures they share (recordings, disks, the fuzzer's build), on one
# worker.  No test measures a time: load changes where a recording's
# inputs fall, which the replay must then reproduce all the same.
jobs=${QRR_JOBS:-$(nproc)}
par=()
if [ "$jobs" -gt 1 ] && /usr/bin/python3 -c 'import xdist' 2>/dev/null; then
    par=(-n "$jobs" --dist loadfile)
fi
# --durations: the slowest tests, to keep make check within CI's budget
exec /usr/bin/python3 -m pytest -v -p no:cacheprovider --durations=25 \
    "${par[@]}" "$@"
