#!/usr/bin/env bash
# Sets up and starts vmediafs on its default state, mounted on /mnt/vmedia (or $1), with a
# media repository in /var/lib/vmediafs/media holding one small sample ISO, and one guest
# with one drive to try things on. Run as root. Stop with: umount /mnt/vmedia
set -euo pipefail
cd "$(dirname "$0")/.."
MNT="${1:-/mnt/vmedia}"
MEDIA=/var/lib/vmediafs/media
mountscripts/install-deps.sh
command -v xorriso >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xorriso >/dev/null
export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release
mkdir -p "$MNT" "$MEDIA"
if [[ ! -e "$MEDIA/sample.iso" ]]; then
  src=$(mktemp -d)
  echo "Hello from a vmediafs sample disc." > "$src/README.TXT"
  xorriso -as mkisofs -quiet -R -J -V SAMPLE -o "$MEDIA/sample.iso" "$src" 2>/dev/null
  chmod 644 "$MEDIA/sample.iso"
  rm -rf "$src"
fi
if grep -q " $MNT fuse.vmediafs " /proc/mounts; then
  echo "vmediafs is already mounted on $MNT"
else
  .build/release/vmediafs "$MNT" --media-dir "$MEDIA" -o allow_other
fi
mkdir -p "$MNT/guests/demo" 2>/dev/null || true
[[ -d "$MNT/guests/demo/vtopt0" ]] || mkdir "$MNT/guests/demo/vtopt0"
cat <<TXT
vmediafs is mounted on $MNT (state: /var/lib/vmediafs/state.db, media: $MEDIA).
Try:
  echo sample.iso > $MNT/guests/demo/vtopt0/media     # insert
  cat $MNT/guests/demo/vtopt0/status                    # what the drive holds
  cmp $MNT/guests/demo/vtopt0/disc $MEDIA/sample.iso    # the disc is the image
  rm $MNT/guests/demo/vtopt0/media                      # eject
  umount $MNT                                           # stop
TXT
