#!/bin/bash
# Fuzz the replay log reader with libFuzzer for a bounded time.
#
#   run-fuzz.sh [SECONDS]           (default 60; make fuzz runs 600)
#
# Builds build/fuzz/fuzz-replay-log if needed (tooling/build-fuzz.sh).
# The first run records seed logs with the qrr QEMU build: the test guest
# (if built) to its end and killed after 2 s, and firmware-only runs of
# both targets ended by SIGTERM and by SIGKILL.  tests/fuzz/replay-log-seeds
# re-chunks their first events into small logs and cuts them like killed
# recordings; all of that goes to build/fuzz/seeds and from there into
# build/fuzz/corpus, which the fuzzer keeps growing from run to run
# (rm -rf build/fuzz/seeds build/fuzz/corpus to start afresh).
#
# Exits nonzero on any crash, sanitizer report, leak, timeout (-timeout=30,
# far above the slowest input on a loaded host: a hang, not a slow run)
# or memory blow-up (-rss_limit_mb=2048); the input is then in
# build/fuzz/artifacts/ and reproduces with
#   build/fuzz/fuzz-replay-log build/fuzz/artifacts/<file>
# The whole libFuzzer output is in build/fuzz/fuzz.log.
#
# QRR_FUZZ_CORPUS=DIR fuzzes with DIR (made from the seeds if new) as the
# corpus instead, and writes its log next to it (the test suite's short run
# uses a fresh one).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-60}
[[ $secs =~ ^[1-9][0-9]*$ ]] ||
    qrr_die "run-fuzz.sh: SECONDS must be a positive integer (got '$secs')"

bld=$QRR_BUILD/qrr/qemu
out=$QRR_BUILD/fuzz
seeds=$out/seeds
corpus=${QRR_FUZZ_CORPUS:-$out/corpus}
artifacts=$out/artifacts
log=$(dirname "$corpus")/fuzz.log
fuzzer=$out/fuzz-replay-log

bash "$QRR_TOP/tooling/build-fuzz.sh"

# record NAME ARCH SIGNAL SECONDS QEMU-ARGS...: a recording ended by SIGNAL
# after SECONDS (or earlier, by the guest).
record() {
    local name=$1 arch=$2 sig=$3 t=$4
    shift 4
    local bin=$bld/qemu-system-$arch rr=$out/recordings/$name.rr
    [ -x "$bin" ] || return 0
    rm -f "$rr"
    # (the outer 2>/dev/null keeps bash from announcing the SIGKILL)
    { nice -n 10 timeout -s "$sig" "$t" "$bin" "$@" \
        -icount "shift=auto,rr=record,rrfile=$rr" \
        </dev/null >/dev/null 2>"$out/recordings/$name.err"; } 2>/dev/null ||
        true
    if [ -s "$rr" ]; then
        qrr_log "seed recording $name: $(stat -c %s "$rr") bytes"
    else
        qrr_log "seed recording $name: no log (see $out/recordings/$name.err)"
        rm -f "$rr"
    fi
}

make_seeds() {
    local arch machine console g common
    rm -rf "$seeds" "$out/recordings"
    mkdir -p "$seeds" "$out/recordings"
    common=(-m 256M -nodefaults -display none -no-reboot -monitor none)
    for arch in aarch64 x86_64; do
        if [ "$arch" = aarch64 ]; then
            machine=(-M virt -cpu cortex-a57) console=ttyAMA0
        else
            machine=(-M pc -cpu max) console=ttyS0
        fi
        g=$QRR_BUILD/guest/$arch
        if [ -f "$g/vmlinuz" ] && [ -f "$g/initrd.gz" ]; then
            local linux=("${machine[@]}" "${common[@]}" -serial stdio
                         -kernel "$g/vmlinuz" -initrd "$g/initrd.gz"
                         -append "console=$console panic=-1")
            record "linux-$arch" "$arch" TERM 300 "${linux[@]}"
            record "linux-$arch-killed" "$arch" KILL 2 "${linux[@]}"
        fi
        # firmware only (SeaBIOS / an empty arm virt board): always there
        record "fw-$arch" "$arch" TERM 3 "${machine[@]}" "${common[@]}" \
            -serial stdio
        record "fw-$arch-killed" "$arch" KILL 2 "${machine[@]}" \
            "${common[@]}" -serial stdio
    done
    compgen -G "$out/recordings/*.rr" >/dev/null ||
        qrr_die "no seed recording could be made (see $out/recordings/*.err)"
    "$out/replay-log-seeds" "$seeds" "$out"/recordings/*.rr
    # the recordings themselves, as they are (the fuzzer reads at most
    # -max_len bytes of each), and two trivial files
    cp "$out"/recordings/*.rr "$seeds"/
    : > "$seeds/empty"
    printf 'QRRLOG\r\n' > "$seeds/magic-only"
    touch "$seeds/.done"
}

[ -f "$seeds/.done" ] || make_seeds
mkdir -p "$corpus" "$artifacts"
# plus the inputs of past findings (tests/fuzz/regressions)
cp -n "$seeds"/* "$QRR_TOP"/tests/fuzz/regressions/* "$corpus"/

before=$(ls "$artifacts" | wc -l)
qrr_log "fuzzing the log reader for $secs s ($(ls "$corpus" | wc -l) inputs in $corpus)"
set +e
(cd "$(dirname "$corpus")" && nice -n 10 "$fuzzer" \
    -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -max_len=65536 \
    -dict="$QRR_TOP/tests/fuzz/replay-log.dict" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus") > "$log" 2>&1
rc=$?
set -e
after=$(ls "$artifacts" | wc -l)

grep '^stat::' "$log" || true
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
if [ "$rc" -ne 0 ] || [ "$after" -ne "$before" ] || [ -z "$execs" ]; then
    tail -n 60 "$log" >&2
    qrr_die "the fuzzer failed (exit $rc); input in $artifacts, log in $log"
fi
qrr_log "fuzz-replay-log: $execs executions in $secs s, no crash, leak, timeout or sanitizer report"
