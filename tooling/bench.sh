#!/bin/bash
# Run the benchmark (tooling/bench.py) against the qrr and upstream builds
# and keep the tables in docs/system/replay-bench.md.
#   bench.sh [bench.py options]     e.g. RUNS=3 make bench,
#                                   ONLY=timetravel make bench,
#                                   ONLY=linuxtt make bench,
#                                   ONLY=ttcost make bench,
#                                   bench.sh --only timetravel --arch x86_64
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QRR_TOP"
exec /usr/bin/python3 tooling/bench.py --runs "${RUNS:-5}" \
    ${ONLY:+--only "$ONLY"} --out docs/system/replay-bench.md "$@"
