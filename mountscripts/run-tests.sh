#!/usr/bin/env bash
# Sets up a fresh Debian machine with Swift and runs every vmediafs test: unit tests of the
# SCSI emulator, disc reader and domain, and the mount tests (real FUSE mounts, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
mountscripts/install-deps.sh --test
export PATH="/opt/swift/usr/bin:$PATH"
swift build --build-tests
swift test --skip-build "$@"
