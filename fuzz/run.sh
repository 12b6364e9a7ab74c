#!/bin/bash
# Builds and runs every libFuzzer harness for SECONDS each (default 60): fuzz-iso (the disc
# reader), fuzz-scsi (CDBs through the emulator), fuzz-iscsi (PDU codec, login, negotiation),
# fuzz-control (control-file parsers). Two run at a time (FUZZ_JOBS=1 runs them one by one).
# Prints executions, exec/s, coverage and the outcome per harness; exits non-zero on any crash,
# hang (1 s per input) or OOM (512 MB). Inputs that failed are kept in .build-fuzz/artifacts/;
# once fixed, copy them to fuzz/regressions/NAME/, which every run replays first.
# Usage: fuzz/run.sh [SECONDS]      (FUZZ_HARNESSES="iso scsi" to run only some; FUZZ_RUNS=N stops
#        each harness after N executions instead, with SECONDS, if given and not 0, as a cap)
set -uo pipefail
seconds=${1:-60}
cd "$(dirname "$0")/.."
root=$(pwd)
if ! command -v swiftc >/dev/null; then export PATH=/opt/swift/usr/bin:$PATH; fi

# What the build and the seeds need, installed when missing.
missing=()
for tool in xorriso:xorriso genisoimage:genisoimage mkudffs:udftools python3:python3; do
    command -v "${tool%%:*}" >/dev/null || [ -x "/usr/sbin/${tool%%:*}" ] || missing+=("${tool#*:}")
done
[ -e /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "run.sh: installing ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q "${missing[@]}" >/dev/null \
        || { "${apt_get[@]}" update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q "${missing[@]}" >/dev/null; } \
        || { echo "run.sh: cannot install ${missing[*]}" >&2; exit 2; }
fi

started=$(date +%s)
fuzz/build.sh || { echo "run.sh: the harnesses did not build" >&2; exit 2; }
fuzz/seeds.sh "$root/.build-fuzz/seeds" >/dev/null || { echo "run.sh: seed generation failed" >&2; exit 2; }
built=$(date +%s)

scratch=$root/.build-fuzz
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp:print_suppressions=0}
harnesses=${FUZZ_HARNESSES:-iso scsi iscsi control}
jobs=${FUZZ_JOBS:-2}
limits=(-max_total_time="$seconds")
if [ -n "${FUZZ_RUNS:-}" ]; then
    limits=(-runs="$FUZZ_RUNS")
    [ "$#" -gt 0 ] && [ "$seconds" != 0 ] && limits+=(-max_total_time="$seconds")
fi

run_one() {  # NAME: runs one harness; its log is .build-fuzz/logs/NAME.log
    local name=$1
    mkdir -p "$scratch/corpus/$name" "$scratch/artifacts/$name" "$scratch/logs"
    # Inputs that once crashed or ran over the time limit (fuzz/regressions/NAME/) are run first,
    # with the seeds, under the same limits: one that fails again fails the run.
    local inputs=("$scratch/seeds/$name")
    [ -d "fuzz/regressions/$name" ] && inputs+=("fuzz/regressions/$name")
    "$scratch/bin/fuzz-$name" "${limits[@]}" -timeout=1 -rss_limit_mb=512 -print_final_stats=1 \
        -artifact_prefix="$scratch/artifacts/$name/" "$scratch/corpus/$name" "${inputs[@]}" \
        >"$scratch/logs/$name.log" 2>&1
    echo $? >"$scratch/logs/$name.status"
}

running=0
for name in $harnesses; do
    run_one "$name" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait

failed=0
printf '%-8s %12s %8s %7s %8s  %s\n' harness executions exec/s cov ft outcome
for name in $harnesses; do
    log=$scratch/logs/$name.log
    status=$(cat "$scratch/logs/$name.status" 2>/dev/null || echo 99)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    outcome=ok
    if [ "$status" -ne 0 ]; then
        failed=1
        outcome="FAILED (exit $status): $(grep -m1 -E 'ERROR: libFuzzer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|Fatal error|precondition|out-of-memory|timeout' "$log" | cut -c1-120)"
        artifact=$(grep -m1 -o "Test unit written to [^ ]*" "$log" | cut -d' ' -f5)
        [ -n "$artifact" ] && outcome+=" input: ${artifact#"$root"/}"
        outcome+=" log: ${log#"$root"/}"
    fi
    printf '%-8s %12s %8s %7s %8s  %s\n' "$name" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$outcome"
done
echo "run.sh: build and seeds $((built - started)) s, fuzzing $(( $(date +%s) - built )) s"
exit $failed
