#!/bin/bash
# The main job: with scripts/qrr, record the default guest (x86_64 pc, Debian kernel +
# busybox initramfs), replay it, and say whether the replay matched.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
exec /usr/bin/python3 "$QRR_TOP/tests/functional/qrr/demo.py" "$@"
