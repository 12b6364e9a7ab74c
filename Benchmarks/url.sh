#!/usr/bin/env bash
# URL media: a sequential read of a URL disc, cold and warm, against curl fetching the same
# image from the same nginx in the same run, and against the same image loaded as a local file.
#
#   Benchmarks/url.sh [--size MIB] [--runs N]
#
# Cold: the page cache is dropped and vmediafs's block cache is empty (a fresh daemon), so
# nginx reads its disk and vmediafs fetches every chunk; curl's cold run drops the page cache
# first too. Warm: the image is ejected and inserted again (a new media generation, so no
# kernel pages of disc are kept) while the block cache holds it; the local-file reference is
# the same, for the image inserted by path. The hit rate is what nginx's access log shows:
# 1 - bytes nginx sent for the warm read / the image's size. Prints ratios; asserts nothing.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SIZE=512 RUNS=3
while (($#)); do
    case $1 in
        --size) SIZE=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $(id -u) == 0 ]] || { echo "run as root (drop of caches, mounts)" >&2; exit 1; }
"$ROOT/mountscripts/install-deps.sh" --test >/dev/null
export PATH=/opt/swift/usr/bin:$PATH
BIN=$ROOT/.build/release/vmediafs
if [[ ! -x $BIN ]] || [[ -n $(find "$ROOT/Sources" "$ROOT/Package.swift" -newer "$BIN" -print -quit) ]]; then
    echo "building release" >&2
    (cd "$ROOT" && swift build -c release --product vmediafs >&2)
fi

W=$(mktemp -d /var/tmp/vmediafs-url-bench.XXXXXX)
PID=""
cleanup() {
    mountpoint -q "$W/mnt" && umount "$W/mnt" 2>/dev/null || fusermount3 -uz "$W/mnt" 2>/dev/null || true
    [[ -n $PID ]] && kill "$PID" 2>/dev/null || true
    [[ -f $W/nginx.pid ]] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/www" "$W/mnt"
echo "image: $SIZE MiB of random bytes" >&2
head -c "${SIZE}M" /dev/urandom > "$W/www/image.iso"
chmod 644 "$W/www/image.iso"
PORT=$((20000 + RANDOM % 30000))
cat > "$W/nginx.conf" <<CONF
user root; worker_processes 2; pid $W/nginx.pid; error_log $W/nginx-error.log;
events { worker_connections 256; }
http { access_log $W/access.log; sendfile on; client_body_temp_path $W/b; proxy_temp_path $W/p;
       fastcgi_temp_path $W/f; uwsgi_temp_path $W/u; scgi_temp_path $W/s;
       server { listen 127.0.0.1:$PORT; root $W/www; } }
CONF
nginx -p "$W" -c "$W/nginx.conf"
URL=http://127.0.0.1:$PORT/image.iso
for _ in $(seq 50); do curl -s -o /dev/null "$URL" -r 0-0 && break; sleep 0.1; done

mbps() { python3 -c "import sys; print(f'{$1 / 1048576 / $2:.0f}')"; }
timed() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); python3 -c "print($t1 - $t0)"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
BYTES=$((SIZE << 20))

start_daemon() {
    rm -rf "$W/state"
    "$BIN" "$W/mnt" --state "$W/state/state.db" --media-dir "$W/www" --media-url "http://127.0.0.1:$PORT/" -f 2>"$W/daemon.log" &
    PID=$!
    for _ in $(seq 100); do mountpoint -q "$W/mnt" && break; sleep 0.05; done
    mkdir -p "$W/mnt/guests/bench/cd0"
}
stop_daemon() { umount "$W/mnt"; wait "$PID" 2>/dev/null || true; PID=""; }
read_disc() { dd if="$W/mnt/guests/bench/cd0/disc" of=/dev/null bs=1M status=none; }
insert() { echo "$1" > "$W/mnt/guests/bench/cd0/media"; }
eject() { rm "$W/mnt/guests/bench/cd0/media"; }
sent_bytes() { awk '{ s += $10 } END { print s + 0 }' "$W/access.log"; }

median() { python3 -c "import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
declare -a cc cw vc vw lw hit
for r in $(seq "$RUNS"); do
    drop; cc+=("$(timed curl -s -o /dev/null "$URL")")
    cw+=("$(timed curl -s -o /dev/null "$URL")")
    start_daemon
    drop; insert "$URL"; vc+=("$(timed read_disc)")
    eject; insert "$URL"; before=$(sent_bytes); vw+=("$(timed read_disc)"); after=$(sent_bytes)
    hit+=("$(python3 -c "print(1 - ($after - $before) / $BYTES)")")
    eject; insert "$W/www/image.iso"; read_disc; eject; insert "$W/www/image.iso"; lw+=("$(timed read_disc)")
    eject; stop_daemon
done
c_cold=$(mbps $BYTES "$(median "${cc[@]}")"); c_warm=$(mbps $BYTES "$(median "${cw[@]}")")
v_cold=$(mbps $BYTES "$(median "${vc[@]}")"); v_warm=$(mbps $BYTES "$(median "${vw[@]}")")
l_warm=$(mbps $BYTES "$(median "${lw[@]}")")
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
printf '%-44s %10s %12s %7s  %s\n' case vmediafs reference ratio reference
printf '%-44s %8s MB/s %8s MB/s %7s  %s\n' "cold sequential read of a URL disc" "$v_cold" "$c_cold" "$(ratio "$v_cold" "$c_cold")" "curl, cold page cache"
printf '%-44s %8s MB/s %8s MB/s %7s  %s\n' "warm read (block cache), new generation" "$v_warm" "$l_warm" "$(ratio "$v_warm" "$l_warm")" "same image as a local file"
printf '%-44s %8s MB/s %8s MB/s %7s  %s\n' "warm read against curl, warm page cache" "$v_warm" "$c_warm" "$(ratio "$v_warm" "$c_warm")" "curl, warm"
printf '%-44s %13s\n' "block cache hit rate on the warm read" "$(median "${hit[@]}")"
echo "($RUNS runs, medians; image $SIZE MiB; $(nproc) CPUs)"
