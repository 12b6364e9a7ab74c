#!/usr/bin/env bash
# Sets up a fresh Debian machine with Swift and runs every vmediafs test: unit tests of the
# SCSI emulator, disc reader, iSCSI target and domain, and the mount tests (real FUSE
# mounts, as root). Ends with one summary line: "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
mountscripts/install-deps.sh --test
export PATH="/opt/swift/usr/bin:$PATH"
swift build --build-tests
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# All tests are XCTest; Swift Testing would only add a "0 tests" closing line.
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
summary=$(grep -E 'Executed [0-9]+ tests?, with [0-9]+ failures?' "$log" | tail -1)
if [[ -n "$summary" ]]; then
  total=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")
  failed=$(sed -E 's/.*with ([0-9]+) failures?.*/\1/' <<<"$summary")
  echo "$((total - failed)) passed, $failed failed"
fi
# The libFuzzer harnesses (disc reader, CDB path, iSCSI codec and login, control files), a
# short run each; docs/reliability.md has the long runs. FUZZ_SECONDS=0 skips them.
fuzz_seconds=${FUZZ_SECONDS:-15}
if [[ "$fuzz_seconds" != 0 ]]; then
  fuzz/run.sh "$fuzz_seconds" || { echo "fuzz: a harness failed (crash, hang or out of memory)"; status=1; }
fi
exit "$status"
