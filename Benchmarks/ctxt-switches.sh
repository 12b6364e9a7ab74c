#!/bin/bash
set -euo pipefail
# Context switches per request in the daemon: the own layer reading /dev/fuse against the
# same over io_uring queues (fio 4 KiB O_DIRECT random reads, 4 jobs, 3 s each; root).
# Prints IOPS and the daemon threads' voluntary + involuntary switches per request.
# Usage: Benchmarks/ctxt-switches.sh
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/.build/release/vmediafs
command -v fio >/dev/null || apt-get install -y fio >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y fio >/dev/null; }
[[ -x $BIN ]] || (cd "$ROOT" && PATH=/opt/swift/usr/bin:$PATH swift build -c release --product vmediafs >&2)
P=/sys/module/fuse/parameters/enable_uring
was=$(cat "$P")
W=$(mktemp -d /tmp/ctxt.XXXX); mkdir -p $W/mnt $W/media
trap 'fusermount3 -uz $W/mnt 2>/dev/null || true; echo "$was" > "$P"; rm -rf $W' EXIT
dd if=/dev/urandom of=$W/media/d.iso bs=1M count=64 status=none
for mode in dev uring; do
  args=(); [[ $mode == uring ]] && { echo Y > "$P"; args=(-o io_uring); }
  $BIN $W/mnt --state $W/$mode.db --media-dir $W/media -f "${args[@]}" > $W/$mode.log 2>&1 &
  pid=$!; sleep 1.5
  mkdir -p $W/mnt/guests/g/d$mode; echo $W/media/d.iso > $W/mnt/guests/g/d$mode/media
  iops=$(fio --name=r --filename=$W/mnt/guests/g/d$mode/disc --rw=randread --bs=4k --ioengine=psync --direct=1 --numjobs=4 --group_reporting --time_based --runtime=3 --output-format=json 2>/dev/null | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))')
  tot=0; for t in /proc/$pid/task/*; do s=$(awk '/^voluntary_ctxt_switches/{v=$2} /^nonvoluntary_ctxt_switches/{n=$2} END{print v+n}' $t/status); tot=$((tot+s)); done
  echo "$mode: $iops IOPS; daemon threads' context switches in all: $tot (about $(python3 -c "print(round($tot/($iops*3.0),2))") per request)"
  fusermount3 -u $W/mnt; wait $pid 2>/dev/null || true
done
