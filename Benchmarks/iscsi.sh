#!/usr/bin/env bash
# iSCSI read speed of vmediafs against Linux tgt (tgtd) serving the same image as a CD LUN,
# both on loopback, read by QEMU's iSCSI initiator (libiscsi) in the same run.
# Prints: case | vmediafs | tgt | ratio (time, vmediafs/tgt; lower is better). Measures only.
#   Benchmarks/iscsi.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0; [[ "${1:-}" == "--quick" ]] && QUICK=1
SIZE_MB=$(( QUICK ? 256 : 1024 )); RANDOM_READS=$(( QUICK ? 2000 : 10000 )); RUNS=$(( QUICK ? 3 : 5 ))
export PATH="/opt/swift/usr/bin:$PATH"
mountscripts/install-deps.sh --test
for p in tgt bc; do dpkg -s $p >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null; done
swift build -c release --product vmediafs >/dev/null
BIN=$(swift build -c release --show-bin-path)

work=$(mktemp -d /tmp/vmediafs-bench-iscsi-XXXXXX)
TGT_PID=""; VM_PID=""
cleanup() {
  [[ -n "$VM_PID" ]] && kill "$VM_PID" 2>/dev/null && wait "$VM_PID" 2>/dev/null || true
  grep -q " $work/mnt " /proc/mounts && fusermount3 -uz "$work/mnt" || true
  # tgtd ignores SIGTERM while it serves targets: ask it to stop, then make sure.
  if [[ -n "$TGT_PID" ]]; then
    tgtadm -C 17 --op delete --mode system >/dev/null 2>&1 || true
    sleep 0.5; kill -9 "$TGT_PID" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/mnt" "$work/media"
img="$work/media/bench.iso"
head -c $((SIZE_MB << 20)) /dev/urandom > "$img"; chmod 644 "$img"
cat "$img" > /dev/null   # hot in the host's page cache for both servers
ME=iqn.2026-11.bench:qemu

# tgt on 3261 with the image as a CD/DVD LUN.
tgtd -f -C 17 --iscsi portal=127.0.0.1:3261 >/dev/null 2>&1 & TGT_PID=$!; disown
sleep 1
TT=iqn.2026-11.bench:tgt
tgtadm -C 17 --lld iscsi --op new --mode target --tid 1 -T $TT
tgtadm -C 17 --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$img" --device-type cd
tgtadm -C 17 --lld iscsi --op bind --mode target --tid 1 -I ALL

# vmediafs on 3262: one guest, one drive, the same image.
"$BIN/vmediafs" "$work/mnt" --state "$work/state.db" --media-dir "$work/media" --iscsi 127.0.0.1:3262 -f 2>"$work/log" & VM_PID=$!
for _ in $(seq 100); do grep -q " $work/mnt " /proc/mounts && break; sleep 0.1; done
mkdir "$work/mnt/guests/bench" "$work/mnt/guests/bench/cd0"
echo $ME > "$work/mnt/guests/bench/initiators"
echo bench.iso > "$work/mnt/guests/bench/cd0/media"
VT=iqn.2026-11.io.vmediafs:bench

opts() { echo "driver=iscsi,transport=tcp,portal=127.0.0.1:$1,target=$2,lun=$3,initiator-name=$ME"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
seq_time() {  # qemu-img bench: sequential 128 KiB reads, 16 in flight, the whole image
  for _ in $(seq $RUNS); do
    qemu-img bench --image-opts "$(opts "$@")" -c $(( SIZE_MB * 8 )) -s 128K -d 16 -t none 2>&1 |
      sed -n 's/.*completed in \([0-9.]*\) seconds.*/\1/p'
  done | median
}
python3 - "$RANDOM_READS" "$((SIZE_MB << 20))" > "$work/random.cmds" <<'PY'
import random, sys
n, size = int(sys.argv[1]), int(sys.argv[2]); r = random.Random(7)
for _ in range(n): print("read %d 4k" % (r.randrange(size // 4096) * 4096))
PY
rand_time() {  # qemu-io: 4 KiB reads at random offsets, one at a time
  for _ in $(seq $RUNS); do
    s=$(date +%s.%N); qemu-io --image-opts "$(opts "$@")" < "$work/random.cmds" >/dev/null; e=$(date +%s.%N)
    echo "$e - $s" | bc -l
  done | median
}
v_seq=$(seq_time 3262 $VT 0);  t_seq=$(seq_time 3261 $TT 1)
v_rnd=$(rand_time 3262 $VT 0); t_rnd=$(rand_time 3261 $TT 1)
printf '%-44s | %10s | %10s | %s\n' "case (seconds, median of $RUNS)" vmediafs tgt "ratio (time)"
printf '%-44s | %10.3f | %10.3f | %.2f\n' "sequential ${SIZE_MB} MiB, 128 KiB x 16 in flight" "$v_seq" "$t_seq" "$(echo "$v_seq / $t_seq" | bc -l)"
printf '%-44s | %10.3f | %10.3f | %.2f\n' "random 4 KiB x $RANDOM_READS, one at a time" "$v_rnd" "$t_rnd" "$(echo "$v_rnd / $t_rnd" | bc -l)"
echo "reference: Linux tgt $(dpkg-query -W -f='${Version}' tgt) serving the same file as a CD LUN; initiator: QEMU $(qemu-img --version | head -1 | awk '{print $3}') (libiscsi)"
