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
# --durations: the slowest tests, to keep make check within CI's budget
exec /usr/bin/python3 -m pytest -v -p no:cacheprovider --durations=25 "$@"
