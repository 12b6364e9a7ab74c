#!/usr/bin/env bash
# vmediafs benchmarks: every figure next to a reference measured in the same run.
#
#   Benchmarks/run.sh [--quick] [--only a,b,c,d,e,f] [--markdown FILE] [--keep]
#
# Builds the release daemon, the floor (fuse-floor.c) and folios.c if needed, installs what it needs
# (mountscripts/install-deps.sh, then fio, fuseiso, e2fsprogs, genisoimage, gcc), works in its own
# temporary directory, and always unmounts.
# Generated test data (the tree, its ISO and ext4 images) is kept in
# /var/tmp/vmediafs-bench/ between runs. Prints: case | vmediafs | reference | ratio | reference.
# ratio = vmediafs / reference: for MB/s and IOPS higher is better, for ms lower is better.
# Benchmarks measure; they never assert.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
QUICK=0 ONLY="a,b,c,d,e,f" MARKDOWN="" KEEP=0
while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --only) ONLY=$2; shift ;;
        --markdown) MARKDOWN=$2; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n 2,11p "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }
[[ $(id -u) == 0 ]] || { echo "run as root (loop mounts, drop of caches, bdi settings)" >&2; exit 1; }

if ((QUICK)); then
    RUNS=3 FIO_SECS=3 TREE_FILES=2000 BIG_MIB=64 SCALE="100 1000" LOADED=200 ROUNDTRIPS=100
else
    RUNS=5 FIO_SECS=6 TREE_FILES=20000 BIG_MIB=200 SCALE="100 1000 10000" LOADED=1000 ROUNDTRIPS=500
fi

# ---- tools -------------------------------------------------------------------------------
"$ROOT/mountscripts/install-deps.sh"   # what vmediafs builds with (libfuse3-dev, fuse3, SQLite)
need=()
for t in fio:fio fuseiso:fuseiso mkfs.ext4:e2fsprogs genisoimage:genisoimage gcc:gcc; do
    command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if ((${#need[@]})); then
    echo "installing ${need[*]}" >&2
    apt-get install -y "${need[@]}" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "${need[@]}" >/dev/null; }
fi
export PATH=/opt/swift/usr/bin:$PATH
BIN=$ROOT/.build/release/vmediafs
if [[ ! -x $BIN ]] || [[ -n $(find "$ROOT/Sources" "$ROOT/Package.swift" -newer "$BIN" -print -quit) ]]; then
    echo "building release" >&2
    (cd "$ROOT" && swift build -c release --product vmediafs >&2)
fi
PY="python3 $HERE/helpers.py"

FLOOR=$ROOT/.build/fuse-floor
if [[ ! -x $FLOOR ]] || [[ $HERE/fuse-floor.c -nt $FLOOR ]]; then
    gcc -O2 -Wall -o "$FLOOR" "$HERE/fuse-floor.c" $(pkg-config --cflags --libs fuse3)
fi
FOLIOS=$ROOT/.build/folios
if [[ ! -x $FOLIOS ]] || [[ $HERE/folios.c -nt $FOLIOS ]]; then
    gcc -O2 -Wall -o "$FOLIOS" "$HERE/folios.c"
fi

# ---- work space, mounts, cleanup ---------------------------------------------------------
W=$(mktemp -d /tmp/vmfs-bench.XXXXXX)
CACHE=/var/tmp/vmediafs-bench/$( ((QUICK)) && echo quick || echo full )
PIDS=()
cleanup() {
    set +e
    # The fuse module's enable_uring, if an io_uring case set it and did not get to put it back.
    uring_off
    grep -o " $W/[^ ]*" /proc/mounts | sort -r | while read -r m; do
        fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || fusermount3 -uz "$m"
    done
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.2
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    grep -o " $W/[^ ]*" /proc/mounts | while read -r m; do umount -l "$m" 2>/dev/null || fusermount3 -uz "$m"; done
    ((KEEP)) || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RESULTS=$W/results
: > "$RESULTS"
# result CASE VMEDIAFS REFERENCE REFNAME
result() {
    local ratio
    ratio=$(awk -v a="$2" -v b="$3" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }')
    printf '%s|%s|%s|%s|%s\n' "$1" "$2" "$3" "$ratio" "$4" >> "$RESULTS"
    printf '  %-46s %12s %12s %6s  %s\n' "$1" "$2" "$3" "$ratio" "$4" >&2
}
note() { printf '%s\n' "$*" >> "$W/notes"; echo "  note: $*" >&2; }

now() { date +%s%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# ms N PREP CMD: median wall time in ms of CMD over N runs, PREP (untimed) before each.
ms() {
    local n=$1 prep=$2 cmd=$3 i t0
    for ((i = 0; i < n; i++)); do
        [[ -n $prep ]] && eval "$prep" >/dev/null 2>&1
        t0=$(now); eval "$cmd" >/dev/null 2>&1; echo $((($(now) - t0) / 1000))
    done | median | awk '{ printf "%.1f", $1 / 1000 }'
}
# mbps FILE: one sequential read with 1 MiB blocks, MB/s as dd measures it.
mbps() { LC_ALL=C dd if="$1" of=/dev/null bs=1M 2>&1 | awk '/copied/ { printf "%.0f", $1 / $(NF - 3) / 1e6 }'; }
# mbps_n N PREP FILE: median of N.
mbps_n() {
    local i
    for ((i = 0; i < $1; i++)); do [[ -n $2 ]] && eval "$2" >/dev/null 2>&1; mbps "$3"; echo; done | median | awk '{ printf "%.0f", $1 }'
}
# floor_mount cached|direct: mounts fuse-floor serving $ISO on $W/floor (FLOORPID);
# floor_umount. floor_mbps cached|direct: median MB/s, a fresh mount per run.
floor_mount() {
    mkdir -p "$W/floor"
    "$FLOOR" "$ISO" "$W/floor" "$1" 2>>"$W/floor.log" &
    FLOORPID=$!
    PIDS+=("$FLOORPID")
    for _ in $(seq 100); do grep -q " $W/floor fuse.floor " /proc/mounts && break; sleep 0.05; done
    echo 2016 > "/sys/class/bdi/$(mountpoint -d "$W/floor")/read_ahead_kb"
}
floor_umount() { fusermount3 -u "$W/floor"; wait "$FLOORPID" 2>/dev/null || true; }
floor_mbps() {
    local i
    for ((i = 0; i < RUNS; i++)); do floor_mount "$1"; mbps "$W/floor/f"; echo; floor_umount; done |
        median | awk '{ printf "%.0f", $1 }'
}
# iops FILE JOBS [fio options]: 4 KiB random reads, median IOPS of 3 runs.
iops() {
    local f=$1 j=$2; shift 2
    for _ in 1 2 3; do
        fio --name=r --filename="$f" --rw=randread --bs=4k --ioengine=psync --invalidate=0 --numjobs="$j" \
            --group_reporting --time_based --runtime="$FIO_SECS" --ramp_time=1 --output-format=json "$@" 2>/dev/null |
            python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))'
    done | median | awk '{ printf "%.0f", $1 }'
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# folio_note WHAT FILE REFNAME REF: notes how much of each file's page cache is in large
# folios (Benchmarks/folios.c; the kernel reads a cached file one folio at a time).
folio_note() {
    local a b
    a=$(folio_share "$2") b=$(folio_share "$4")
    note "$1: page cache in large folios: $a; $3: $b"
}
folio_share() { "$FOLIOS" "$1" | awk '{ printf "%d of %d pages (%.0f%%)", $1, $2, $2 ? 100 * $1 / $2 : 0 }'; }
# uring_on: sets the fuse module's enable_uring for an io_uring mount (false if this kernel
# has no FUSE over io_uring); uring_off puts it back (cleanup does too, if a run stops early).
URING_PARAM=/sys/module/fuse/parameters/enable_uring
uring_on() { [[ -w $URING_PARAM ]] || return 1; uring_was=$(cat "$URING_PARAM"); echo Y > "$URING_PARAM"; }
uring_off() { [[ -n ${uring_was:-} ]] && echo "$uring_was" > "$URING_PARAM"; uring_was=; }

# start_vmfs NAME MOUNTPOINT STATE [daemon args]: sets VPID.
start_vmfs() {
    local name=$1 mnt=$2 state=$3; shift 3
    mkdir -p "$mnt"
    "$BIN" "$mnt" --state "$state" -f "$@" > "$W/$name.log" 2>&1 &
    VPID=$!
    PIDS+=("$VPID")
    for _ in $(seq 300); do
        grep -q " $mnt fuse.vmediafs " /proc/mounts && return 0
        kill -0 "$VPID" 2>/dev/null || break
        sleep 0.05
    done
    echo "vmediafs did not mount:" >&2; cat "$W/$name.log" >&2; exit 1
}
stop_vmfs() {
    local mnt=$1 pid=$2
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
}

echo "vmediafs benchmarks ($( ((QUICK)) && echo quick || echo full )): $(date -u +%FT%TZ), nproc $(nproc)," \
     "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)" >&2

# ---- test data ---------------------------------------------------------------------------
mkdir -p "$CACHE"
if [[ ! -f $CACHE/tree.ext4 ]]; then
    echo "generating a tree of $TREE_FILES files + ${BIG_MIB} MiB file, its ISO and ext4 image (kept in $CACHE)" >&2
    rm -rf "$CACHE/tree"
    $PY gen-tree "$CACHE/tree" "$TREE_FILES" "$BIG_MIB"
    genisoimage -quiet -R -J -o "$CACHE/tree.iso" "$CACHE/tree"
    kib=$(du -sk "$CACHE/tree" | cut -f1)
    rm -f "$CACHE/tree.ext4.tmp"
    truncate -s $(((kib + kib / 4 + 65536) * 1024)) "$CACHE/tree.ext4.tmp"
    mkfs.ext4 -q -F -O ^has_journal -d "$CACHE/tree" "$CACHE/tree.ext4.tmp"
    mv "$CACHE/tree.ext4.tmp" "$CACHE/tree.ext4"
fi
ISO=$CACHE/tree.iso
ISO_MIB=$(($(stat -c %s "$ISO") >> 20))
cat "$ISO" "$CACHE/tree.ext4" > /dev/null   # hot in the host page cache

MNT=$W/vmfs
start_vmfs main "$MNT" "$W/state.db"
MAINPID=$VPID
mkdir "$MNT/guests/bench" "$MNT/guests/bench/cd0"
DRIVE=$MNT/guests/bench/cd0
DISC=$DRIVE/disc
echo "$ISO" > "$DRIVE/media"
# A fresh media generation: a new `disc` inode, nothing of it in the kernel's cache.
reinsert() { rm "$DRIVE/media"; echo "$ISO" > "$DRIVE/media"; }
echo "disc: $ISO_MIB MiB ISO; readahead of the mount: $(cat /sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb 2>/dev/null || echo "?") KiB" >&2

if want a || want b; then
    echo "(a)(b) sequential reads, 1 MiB blocks" >&2
    direct=$(mbps_n "$RUNS" "" "$ISO")
    want a && result "(a) seq read, FUSE cache cold [MB/s]" "$(mbps_n "$RUNS" reinsert "$DISC")" "$direct" "image read directly (page cache)"
    if want b; then
        reinsert; cat "$DISC" > /dev/null
        result "(b) seq read, kept cache [MB/s]" "$(mbps_n "$RUNS" "" "$DISC")" "$direct" "image read directly (page cache)"
        folio_note "(b) disc, kept cache" "$DISC" "the image" "$ISO"
    fi
    if want a; then
        # The same cold read on a second mount with -o disc_io=direct (every read spliced
        # from the image into the reader's buffer; nothing kept).
        DMNT=$W/vmfs-direct
        start_vmfs direct "$DMNT" "$W/state-direct.db" -o disc_io=direct
        DPID=$VPID
        mkdir "$DMNT/guests/bench" "$DMNT/guests/bench/cd0"
        echo "$ISO" > "$DMNT/guests/bench/cd0/media"
        vdirect=$(mbps_n "$RUNS" "" "$DMNT/guests/bench/cd0/disc")
        result "(a) seq read, -o disc_io=direct [MB/s]" "$vdirect" "$direct" "image read directly (page cache)"
        stop_vmfs "$DMNT" "$DPID"
        # The floor: the least a libfuse 3.14 filesystem can do to serve the same image
        # (fuse-floor.c: one file, reads spliced from the image, the same max_read and
        # readahead, no emulator and no checks), cold (a fresh mount per run) and direct.
        vcold=$(awk -F'|' '$1 == "(a) seq read, FUSE cache cold [MB/s]" { print $2 }' "$RESULTS")
        result "(a) cold read vs the floor, cached [MB/s]" "$vcold" "$(floor_mbps cached)" "fuse-floor.c, keep_cache, fresh mount"
        result "(a) disc_io=direct vs the floor, direct [MB/s]" "$vdirect" "$(floor_mbps direct)" "fuse-floor.c, direct_io"
    fi
fi
if want a || want d; then
    # The same disc on a second mount of each other kind: libfuse 3.14 instead of vmediafs's
    # own wire layer, and the own layer with FUSE passthrough (the kernel reads the image).
    # And the own layer over io_uring queues (the fuse module's enable_uring is set for it
    # and put back after).
    for kind in libfuse passthrough uring; do
        case $kind in
            libfuse) args=(-o fuse_layer=libfuse) ;;
            passthrough) args=(-o passthrough) ;;
            uring)
                uring_on || { note "no FUSE over io_uring in this kernel"; continue; }
                args=(-o io_uring) ;;
        esac
        KMNT=$W/vmfs-$kind
        start_vmfs "$kind" "$KMNT" "$W/state-$kind.db" "${args[@]}"
        KPID=$VPID
        mkdir "$KMNT/guests/bench" "$KMNT/guests/bench/k$kind"
        KDRIVE=$KMNT/guests/bench/k$kind
        echo "$ISO" > "$KDRIVE/media"
        kreinsert() { rm "$KDRIVE/media"; echo "$ISO" > "$KDRIVE/media"; }
        if want a; then
            [[ -n ${direct:-} ]] || direct=$(mbps_n "$RUNS" "" "$ISO")
            result "(a) seq read cold, ${args[*]} [MB/s]" "$(mbps_n "$RUNS" kreinsert "$KDRIVE/disc")" "$direct" "image read directly (page cache)"
        fi
        if want d && [[ $kind == libfuse ]]; then
            result "(d) 4K to the daemon, own layer vs libfuse [IOPS]" "${vd:=$(iops "$DISC" 4 --direct=1)}" "$(iops "$KDRIVE/disc" 4 --direct=1)" "the same on -o fuse_layer=libfuse"
        fi
        if want d && [[ $kind == passthrough ]]; then
            result "(d) 4K rand read, passthrough, 4 readers [IOPS]" "$(iops "$KDRIVE/disc" 4)" "$(iops "$ISO" 4)" "image read directly (page cache)"
        fi
        if want d && [[ $kind == uring ]]; then
            vu=$(iops "$KDRIVE/disc" 4 --direct=1)
            result "(d) 4K to the daemon, io_uring vs /dev/fuse [IOPS]" "$vu" "${vd:=$(iops "$DISC" 4 --direct=1)}" "the own layer reading /dev/fuse"
        fi
        stop_vmfs "$KMNT" "$KPID"
        if [[ $kind == uring ]]; then uring_off; fi
    done
fi
if want c; then
    echo "(c) 4 KiB random reads, warm cache, 1 reader" >&2
    reinsert; cat "$DISC" > /dev/null
    result "(c) 4K rand read, warm cache [IOPS]" "$(iops "$DISC" 1)" "$(iops "$ISO" 1)" "image read directly (page cache)"
fi
if want d; then
    echo "(d) 4 KiB random reads reaching the daemon (O_DIRECT), 4 readers" >&2
    vd=$(iops "$DISC" 4 --direct=1)
    result "(d) 4K rand read to daemon, 4 readers [IOPS]" "$vd" "$(iops "$ISO" 4)" "image read directly (page cache)"
    floor_mount direct
    vfloor=$(iops "$W/floor/f" 4 --direct=1)
    result "(d) 4K to the daemon vs the floor [IOPS]" "$vd" "$vfloor" "fuse-floor.c, direct_io"
    [[ -n ${vu:-} ]] && result "(d) 4K to the daemon over io_uring vs the floor [IOPS]" "$vu" "$vfloor" "fuse-floor.c, direct_io"
    floor_umount
fi

# ---- (e) contents/ -------------------------------------------------------------------------
if want e; then
    echo "(e) contents/: $TREE_FILES files vs ext4 (loop, ro) and fuseiso on the same tree" >&2
    EXT=$W/ext4 FISO=$W/fuseiso
    mkdir -p "$EXT" "$FISO"
    mount -o loop,ro "$CACHE/tree.ext4" "$EXT"
    fuseiso -n "$ISO" "$FISO"
    C=$DRIVE/contents
    cold_vmfs() { reinsert; }
    cold_ext4() { umount "$EXT"; mount -o loop,ro "$CACHE/tree.ext4" "$EXT"; }
    cold_fuseiso() { fusermount3 -u "$FISO"; fuseiso -n "$ISO" "$FISO"; }
    declare -A dir=([vmfs]=$C [ext4]=$EXT [fuseiso]=$FISO)
    declare -A r
    for fs in vmfs ext4 fuseiso; do
        d=${dir[$fs]}
        r[$fs,find_cold]=$(ms "$RUNS" "cold_$fs" "find '$d'")
        find "$d" > /dev/null
        r[$fs,find]=$(ms "$RUNS" "" "find '$d'")
        r[$fs,stat]=$(ms "$RUNS" "" "find '$d' -printf '%i %s %m %n %T@\n'")
        r[$fs,tar_cold]=$(ms 3 "cold_$fs" "tar -C '$d' -cf - . | cat")
        r[$fs,tar]=$(ms "$RUNS" "" "tar -C '$d' -cf - . | cat")
        r[$fs,big_cold]=$(mbps_n "$RUNS" "cold_$fs" "$d/big.bin")
        r[$fs,big]=$(mbps_n "$RUNS" "" "$d/big.bin")
    done
    folio_note "(e) contents/big.bin, warm" "$C/big.bin" "ext4's" "$EXT/big.bin"
    # The warm walk and read again over io_uring queues, where the kernel has them: every
    # file's OPEN is a round trip to the daemon, and a queue's waiter runs on the CPU that
    # asked (the fuse module's enable_uring is set for it and put back after).
    if uring_on; then
        UMNT=$W/vmfs-uring-e
        start_vmfs uring-e "$UMNT" "$W/state-uring-e.db" -o io_uring
        UPID=$VPID
        mkdir "$UMNT/guests/bench" "$UMNT/guests/bench/cd0"
        echo "$ISO" > "$UMNT/guests/bench/cd0/media"
        UC=$UMNT/guests/bench/cd0/contents
        find "$UC" > /dev/null; tar -C "$UC" -cf - . | cat > /dev/null
        result "(e) tree walk (find), warm, -o io_uring [ms]" "$(ms "$RUNS" "" "find '$UC'")" "${r[ext4,find]}" "ext4 loop mount (kernel)"
        result "(e) whole-tree read (tar), warm, -o io_uring [ms]" "$(ms "$RUNS" "" "tar -C '$UC' -cf - . | cat")" "${r[ext4,tar]}" "ext4 loop mount (kernel)"
        stop_vmfs "$UMNT" "$UPID"
        uring_off
    else
        note "(e) no FUSE over io_uring in this kernel"
    fi
    for c in "find_cold|tree walk (find), cold [ms]" "find|tree walk (find), warm [ms]" \
             "stat|stat every entry (find -printf), warm [ms]" "tar_cold|whole-tree read (tar into a pipe), cold [ms]" \
             "tar|whole-tree read (tar into a pipe), warm [ms]" "big_cold|${BIG_MIB} MiB file, cold [MB/s]" \
             "big|${BIG_MIB} MiB file, warm [MB/s]"; do
        k=${c%%|*} label=${c#*|}
        result "(e) $label" "${r[vmfs,$k]}" "${r[ext4,$k]}" "ext4 loop mount (kernel)"
        result "(e) $label" "${r[fuseiso,$k]}" "${r[ext4,$k]}" "fuseiso vs ext4 (not vmediafs)"
    done
    umount "$EXT"; fusermount3 -u "$FISO"
fi
stop_vmfs "$MNT" "$MAINPID"

# ---- (f) scale -----------------------------------------------------------------------------
if want f; then
    echo "(f) scale: guests with 4 drives each (state on tmpfs while populating)" >&2
    SMNT=$W/scale SHM=$(mktemp -d /dev/shm/vmfs-bench.XXXXXX) TREF=$W/tmpfs-ref
    trap 'cleanup; rm -rf "$SHM"' EXIT
    mkdir -p "$TREF" "$W/lib"
    mount -t tmpfs tmpfs "$TREF"
    mkdir "$TREF/guests"
    genisoimage -quiet -R -o "$W/lib/small.iso" "$HERE" 2>/dev/null
    SMALL=$W/lib/small.iso
    start_vmfs scale "$SMNT" "$SHM/state.db" --media-dir "$W/lib"
    SPID=$VPID
    rss0=$(rss_kb "$SPID") have=0 prev_rss=$rss0 prev_drives=0
    for n in $SCALE; do
        t=$($PY populate "$SMNT/guests" "$have" "$n")
        $PY tmpfs-shape "$TREF/guests" "$have" "$n"
        have=$n
        rss=$(rss_kb "$SPID")
        note "$n guests: populating $(( (n - ${prev_guests:-0}) * 5 )) dirs by mkdir took ${t}s (state on tmpfs); daemon VmRSS ${rss} KiB"
        ls -R "$SMNT/guests" > /dev/null; ls -R "$TREF/guests" > /dev/null
        result "(f) ls -R guests, $n guests x 4 drives [ms]" "$(ms "$RUNS" "" "ls -R '$SMNT/guests'")" \
               "$(ms "$RUNS" "" "ls -R '$TREF/guests'")" "tmpfs tree of the same shape"
        drives=$((n * 4))
        result "(f) RSS growth per drive, $prev_drives -> $drives drives [KiB]" \
               "$(awk -v a="$rss" -v b="$prev_rss" -v n=$((drives - prev_drives)) 'BEGIN { printf "%.2f", (a - b) / n }')" 16 "target (issue 7)"
        prev_rss=$rss prev_drives=$drives prev_guests=$n
    done
    echo yes > "$SMNT/library/small.iso/sharable"
    rss=$(rss_kb "$SPID")
    t=$($PY load "$SMNT/guests" "$LOADED" "$SMALL")
    rss2=$(rss_kb "$SPID")
    note "loading $LOADED drives took ${t}s; VmRSS $rss -> $rss2 KiB"
    result "(f) RSS growth per loaded drive ($LOADED) [KiB]" "$(awk -v a="$rss2" -v b="$rss" -v n="$LOADED" 'BEGIN { printf "%.2f", (a - b) / n }')" 16 "target (issue 7)"
    # The round trip on a drive past the loaded ones: p50 and p99 of insert+eject, and a
    # note with the insert and the eject alone.
    roundtrip() {
        local out
        out=$($PY roundtrip "$RT" "$SMALL" "$ROUNDTRIPS")
        read -r p50 p99 _ <<< "$(sed -n 1p <<< "$out")"
        note "insert+eject, state on $1: insert alone p50/p99/mean $(sed -n 2p <<< "$out") ms; eject alone $(sed -n 3p <<< "$out") ms"
    }
    last=$(( $(echo $SCALE | awk '{ print $NF }') - 1 ))
    RT=$SMNT/guests/$(printf 'g%05d/g%05dd3' "$last" "$last")
    roundtrip tmpfs
    result "(f) insert+eject p50, $LOADED loaded, state on tmpfs [ms]" "$p50" 2 "target p99 (issue 7)"
    result "(f) insert+eject p99, $LOADED loaded, state on tmpfs [ms]" "$p99" 2 "target p99 (issue 7)"
    stop_vmfs "$SMNT" "$SPID"
    # The same state on disk (synchronous=FULL: an fsync per change).
    DISKSTATE=$(mktemp -d /var/tmp/vmfs-bench-state.XXXXXX)
    cp "$SHM"/state.db* "$DISKSTATE"/
    start_vmfs scale-disk "$SMNT" "$DISKSTATE/state.db" --media-dir "$W/lib"
    roundtrip disk
    result "(f) insert+eject p50, $LOADED loaded, state on disk [ms]" "$p50" 2 "target p99 (issue 7)"
    result "(f) insert+eject p99, $LOADED loaded, state on disk [ms]" "$p99" 2 "target p99 (issue 7)"
    # The device's own floor: two write+fdatasync pairs on the same filesystem.
    read -r f50 f99 _ < <($PY commit-floor "$DISKSTATE" "$ROUNDTRIPS")
    result "(f) insert+eject p50 on disk vs two commits alone [ms]" "$p50" "$f50" "2 x (4 KiB write + fdatasync), same fs"
    result "(f) insert+eject p99 on disk vs two commits alone [ms]" "$p99" "$f99" "2 x (4 KiB write + fdatasync), same fs"
    stop_vmfs "$SMNT" "$VPID"
    rm -rf "$DISKSTATE"
    umount "$TREF"
fi

# ---- the table -----------------------------------------------------------------------------
{
    echo "| case | vmediafs | reference | ratio | reference name |"
    echo "|---|---:|---:|---:|---|"
    awk -F'|' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$RESULTS"
    if [[ -f $W/notes ]]; then echo; sed 's/^/- /' "$W/notes"; fi
} > "$W/table.md"
echo
column -t -s'|' -N "case,vmediafs,reference,ratio,reference name" "$RESULTS" 2>/dev/null || cat "$RESULTS"
[[ -f $W/notes ]] && { echo; cat "$W/notes"; }
if [[ -n $MARKDOWN ]]; then
    {
        echo "Measured $(date -u +%F) on $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
             "kernel $(uname -r), $( ((QUICK)) && echo "--quick" || echo "full run" ), commit $(git -C "$ROOT" rev-parse --short HEAD)."
        echo
        cat "$W/table.md"
    } > "$MARKDOWN"
fi
