#!/bin/bash
# Builds the four libFuzzer harnesses into .build-fuzz/bin/ (fuzz-iso, fuzz-scsi, fuzz-iscsi,
# fuzz-control). Usage: fuzz/build.sh
#
# Each harness is compiled together with the sources of the module it fuzzes, as that module
# (`-module-name`), with `-sanitize=fuzzer,address -O`: coverage and ASan where the bugs would be,
# and the harness sees the module's internals without @testable. What those modules import
# (swift-nio for ISCSI; SCSI, CSQLite and CPosixShims for VirtualMedia) comes from one SwiftPM
# build (release, with ASan) in the scratch path .build-fuzz, whose compile flags (module maps,
# include paths) are read back from its llbuild manifest, so no path is spelled out here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if ! command -v swiftc >/dev/null; then export PATH=/opt/swift/usr/bin:$PATH; fi
scratch=$root/.build-fuzz
bin=$scratch/bin
mkdir -p "$bin"

toolchain=$(dirname "$(dirname "$(command -v swiftc)")")
if ! find "$toolchain/lib" -name 'libclang_rt.fuzzer-x86_64.a' | grep -q .; then
    echo "build.sh: the Swift toolchain at $toolchain has no libFuzzer runtime (libclang_rt.fuzzer-x86_64.a)" >&2
    exit 2
fi

# 1. The dependencies, with SwiftPM (incremental: a no-op when nothing changed). Release: NIO's
# pipeline machinery at -Onone makes the iSCSI harness several times slower.
config=${FUZZ_DEPS_CONFIG:-release}
for target in ISCSI NIOEmbedded VirtualMedia; do
    swift build -c "$config" --scratch-path "$scratch" --target "$target" -Xswiftc -sanitize=address 2>&1 \
        | grep -E "error|warning: unable|Compiling|Build of target" | grep -v "^\[" || true
    test "${PIPESTATUS[0]}" -eq 0 || { echo "build.sh: swift build --target $target failed" >&2; exit 1; }
done
deps=$scratch/$config

# The -I / -Xcc flags SwiftPM compiled a module with, from the llbuild manifest.
flags_of() {
    python3 - "$scratch/$config.yaml" "$1" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read()
start = text.index('"C.%s-' % sys.argv[2])
args = json.loads(re.search(r'args: (\[.*\])', text[start:]).group(1))
out, i = [], 0
while i < len(args):
    if args[i] in ('-Xcc', '-I') and i + 1 < len(args):
        out += args[i:i + 2]; i += 2
    else:
        i += 1
print('\n'.join(out))
EOF
}
# The object files of the given SwiftPM targets (C targets keep theirs in subfolders).
objects_of() {
    for t in "$@"; do find "$deps/$t.build" -name '*.o' ; done
}
# Every dependency target SwiftPM built, except the modules the harnesses compile themselves.
dependency_targets() {
    for d in "$deps"/*.build; do
        t=$(basename "$d" .build)
        case $t in
            ISCSI|VirtualMedia|ISO9660|*Tests|TestSupport|iscsi-demo|vmediafs|vmedia|VMediaFS|VMediaCLI|FuseKernel|ArgumentParser*) ;;
            *) [ -n "$(find "$d" -name '*.o' -print -quit)" ] && echo "$t" ;;
        esac
    done
}

common=(-sanitize=fuzzer,address -parse-as-library -O -swift-version 6 -use-ld=lld -g
        -module-cache-path "$scratch/ModuleCache")
log=$scratch/harness-build
mkdir -p "$log"
build() {  # NAME MODULE [extra swiftc arguments...]
    local name=$1 module=$2; shift 2
    # Up to date when no input (sources, harness, objects) is newer than the binary.
    local inputs=(fuzz/build.sh) arg
    for arg in "$@"; do [ -f "$arg" ] && inputs+=("$arg"); done
    if [ -x "$bin/fuzz-$name" ] && [ -z "$(find "${inputs[@]}" -newer "$bin/fuzz-$name" -print -quit)" ]; then
        echo "up to date .build-fuzz/bin/fuzz-$name"
        return 0
    fi
    if swiftc "${common[@]}" -module-name "$module" "$@" -o "$bin/fuzz-$name" >"$log/$name.log" 2>&1; then
        echo "built .build-fuzz/bin/fuzz-$name"
    else
        grep -E "error" "$log/$name.log" | head -20 >&2
        echo "build.sh: fuzz-$name failed (see $log/$name.log)" >&2
        return 1
    fi
}

mapfile -t iscsi_flags < <(flags_of ISCSI)
mapfile -t vm_flags < <(flags_of VirtualMedia)
mapfile -t iscsi_objects < <(objects_of $(dependency_targets))
mapfile -t vm_objects < <(objects_of SCSI CPosixShims)

pids=()
build iso ISO9660 Sources/ISO9660/*.swift fuzz/iso/main.swift & pids+=($!)
build scsi SCSI Sources/SCSI/*.swift fuzz/scsi/main.swift & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
pids=()
build iscsi ISCSI "${iscsi_flags[@]}" Sources/ISCSI/*.swift fuzz/iscsi/main.swift "${iscsi_objects[@]}" & pids+=($!)
build control VirtualMedia "${vm_flags[@]}" Sources/VirtualMedia/*.swift fuzz/control/main.swift "${vm_objects[@]}" -lsqlite3 & pids+=($!)
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
