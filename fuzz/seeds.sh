#!/bin/bash
# Generates the seed corpora of the fuzz harnesses into DIR (default .build-fuzz/seeds):
#   DIR/iso    small real images: xorriso (Rock Ridge + Joliet, El Torito, zisofs-free),
#              genisoimage (plain, RR, Joliet, UDF bridge), mkudffs (UDF 2.01 / 2.50 / 1.02)
#   DIR/scsi   CDB sequences in the harness's record format (fuzz/scsi/main.swift)
#   DIR/iscsi  login / text / command PDU sequences (fuzz/iscsi/main.swift)
#   DIR/control  what users write to media, sharable, initiators, chap
# Nothing here is committed: the images are made from a tree built on the spot, so the seeds
# follow the tools installed. Usage: fuzz/seeds.sh [DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../.build-fuzz/seeds}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out"/iso "$out"/scsi "$out"/iscsi "$out"/control
mkdir -p "$out"/iso "$out"/scsi "$out"/iscsi "$out"/control
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- disc images --------------------------------------------------------------------------
src=$work/src
mkdir -p "$src/dir/sub/deeper" "$src/empty" "$src/Long Directory Name With Spaces"
printf 'hello\n' > "$src/hello.txt"
head -c 3000 /dev/zero | tr '\0' 'x' > "$src/dir/three-k.bin"
printf 'deep\n' > "$src/dir/sub/deeper/leaf"
printf 'caf\xc3\xa9\n' > "$src/Long Directory Name With Spaces/caf$(printf '\xc3\xa9').txt"
printf 'x' > "$src/a-rather-long-file-name-that-needs-joliet-long-or-rock-ridge.txt"
ln -s hello.txt "$src/link-to-hello"
ln -s ../../hello.txt "$src/dir/sub/up-link"
ln -s /nonexistent/absolute/target "$src/dangling"
mkfifo "$src/fifo" 2>/dev/null || true
chmod 0750 "$src/dir"
touch -d '2001-02-03 04:05:06' "$src/hello.txt"
head -c 2048 /dev/zero > "$work/boot.img"

iso() { local name=$1; shift; "$@" >/dev/null 2>&1 && echo "seed iso/$name" || echo "skipped iso/$name (tool failed)" >&2; }
iso xorriso-rr-joliet.iso xorriso -as mkisofs -quiet -R -J -joliet-long -no-pad -o "$out/iso/xorriso-rr-joliet.iso" "$src"
cp "$work/boot.img" "$src/boot.img"
iso xorriso-eltorito.iso xorriso -as mkisofs -quiet -R -J -no-pad -b boot.img -no-emul-boot -boot-load-size 4 \
    -o "$out/iso/xorriso-eltorito.iso" "$src"
iso genisoimage-eltorito.iso genisoimage -quiet -R -b boot.img -no-emul-boot -c boot.cat \
    -o "$out/iso/genisoimage-eltorito.iso" "$src"
rm -f "$src/boot.img"
iso genisoimage-plain.iso genisoimage -quiet -o "$out/iso/genisoimage-plain.iso" "$src"
iso genisoimage-level3.iso genisoimage -quiet -iso-level 3 -r -o "$out/iso/genisoimage-level3.iso" "$src"
iso genisoimage-rr.iso genisoimage -quiet -R -o "$out/iso/genisoimage-rr.iso" "$src"
iso genisoimage-joliet.iso genisoimage -quiet -J -o "$out/iso/genisoimage-joliet.iso" "$src"
iso genisoimage-udf.iso genisoimage -quiet -udf -R -J -o "$out/iso/genisoimage-udf.iso" "$src"
for rev in 1.02 1.50 2.01; do
    f=$out/iso/mkudffs-$rev.udf
    truncate -s 600K "$f"
    if mkudffs --media-type=hd --blocksize=2048 --udfrev=$rev "$f" >/dev/null 2>&1; then
        echo "seed iso/mkudffs-$rev.udf"
    else
        rm -f "$f"; echo "skipped iso/mkudffs-$rev.udf" >&2
    fi
done
f=$out/iso/mkudffs-dvdr-vat.udf
truncate -s 600K "$f"
mkudffs --media-type=dvdr --blocksize=2048 --udfrev=2.50 "$f" >/dev/null 2>&1 && echo "seed iso/mkudffs-dvdr-vat.udf" || rm -f "$f"
# The harness takes sparse images (fuzz/iso/main.swift, fuzz/iso/sparse.py).
python3 "$here/iso/sparse.py" "$out"/iso/*

# --- CDB sequences (fuzz/scsi/main.swift: a setup byte, then records [kind, length, bytes]) -----
python3 - "$out/scsi" <<'EOF'
import sys, os
d = sys.argv[1]
def rec(kind, b): return bytes([kind, len(b)]) + bytes(b)
def cdb(b): return rec(0, b)          # CDB from initiator 0
def host(op): return rec(0xF0 | op, [])  # host side op
TUR = [0, 0, 0, 0, 0, 0]
seqs = {
 'inquiry': [cdb([0x12, 0, 0, 0, 96, 0]), cdb([0x12, 1, 0x00, 0, 255, 0]), cdb([0x12, 1, 0x80, 0, 255, 0]), cdb([0x12, 1, 0x83, 0, 255, 0])],
 'read': [cdb(TUR), cdb([0x25] + [0] * 9), cdb([0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0]), cdb([0xA8, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0]),
          cdb([0x88, 0] + [0] * 7 + [2] + [0, 0, 0, 1, 0, 0]), cdb([0x9E, 0x10] + [0] * 10 + [0, 32, 0, 0])],
 'toc': [cdb([0x43, 0, 0, 0, 0, 0, 0, 0x03, 0x24, 0]), cdb([0x43, 2, 1, 0, 0, 0, 0, 0, 12, 0]), cdb([0x43, 0, 2, 0, 0, 0, 0, 0x10, 0, 0])],
 'config': [cdb([0x46, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]), cdb([0x46, 2, 0, 0x1E, 0, 0, 0, 0, 0x40, 0]), cdb([0x46, 1, 0, 0, 0, 0, 0, 0, 0x80, 0])],
 'events': [host(1), cdb([0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]), cdb([0x4A, 1, 0, 0, 0x7E, 0, 0, 0, 255, 0]), cdb([0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0]), cdb([0xBD] + [0] * 7 + [0, 8, 0, 0])],
 'mode': [cdb([0x1A, 0, 0x2A, 0, 255, 0]), cdb([0x5A, 0, 0x3F, 0, 0, 0, 0, 1, 0, 0]), cdb([0x5A, 8, 0x0A, 0, 0, 0, 0, 0, 64, 0]),
          rec(0x20, [0x55, 0x10, 0, 0, 0, 0, 0, 0, 20, 0]) + bytes([20]) + bytes([0, 0, 0, 0, 0, 0, 0, 0, 0x0A, 10, 4] + [0] * 9)],
 'tray': [cdb([0x1E, 0, 0, 0, 1, 0]), host(2), cdb([0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]), cdb([0x1B, 0, 0, 0, 2, 0]), cdb([0x1E, 0, 0, 0, 0, 0]),
          cdb([0x1B, 0, 0, 0, 2, 0]), cdb(TUR), cdb([0x03, 0, 0, 0, 252, 0]), cdb([0x1B, 0, 0, 0, 3, 0]), host(1), cdb(TUR), cdb([0x03, 1, 0, 0, 252, 0])],
 'nexus': [host(4), rec(0x10, TUR), rec(0x11, [0x1E, 0, 0, 0, 1, 0]), host(5), host(2), host(6), rec(0x12, [0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]), host(7), host(3)],
 'report': [cdb([0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]), cdb([0xA3, 0x0C, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]), cdb([0xA3, 0x0C, 1, 0x28, 0, 0, 0, 0, 0, 64, 0, 0]),
            cdb([0x5C, 0, 0, 0, 0, 0, 0, 0, 0x20, 0]), cdb([0x52, 1, 0, 0, 0, 1, 0, 0, 0x28, 0]), cdb([0x2A] + [0] * 9)],
}
for name, recs in seqs.items():
    for setup in (0x00, 0x05):
        open(os.path.join(d, f'{name}-{setup:02x}'), 'wb').write(bytes([setup]) + b''.join(recs))
        print(f'seed scsi/{name}-{setup:02x}')
EOF

# --- iSCSI PDU sequences (fuzz/iscsi/main.swift) -------------------------------------------
python3 "$here/iscsi/seeds.py" "$out/iscsi"

# --- control texts ------------------------------------------------------------------------
c=$out/control
# [0] selects the parser (fuzz/control/main.swift): 0 media, 1 sharable, 2 initiators, 3 chap
printf '\000/srv/iso/debian-12.iso\n' > "$c/media-abs"
printf '\000debian-12.iso' > "$c/media-name"
printf '\000/srv/iso/caf\xc3\xa9 disc.iso\r\n\n' > "$c/media-utf8"
printf '\001yes\n' > "$c/sharable-yes"
printf '\001 No \n' > "$c/sharable-no"
printf '\002iqn.1993-08.org.debian:01:abcdef\n# comment\n\neui.0123456789ABCDEF\nIQN.1993-08.org.debian:01:ABCDEF\nnaa.52004567BA64678D\n' > "$c/initiators"
printf '\003guest1:averylongsecret\n' > "$c/chap"
printf '\003\n' > "$c/chap-empty"
echo "seed control/*: $(ls "$c" | wc -l) files"
