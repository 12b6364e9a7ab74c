#!/usr/bin/env bash
# Sets up and starts vmediafs on its default state, mounted on /mnt/vmedia (or $1), with a
# media repository in /var/lib/vmediafs/media holding one small sample ISO, and one guest
# with one drive to try things on; links vmediafs and vmedia into /usr/local/bin. Run as
# root. Stop with: umount /mnt/vmedia
set -euo pipefail
cd "$(dirname "$0")/.."
MNT="${1:-/mnt/vmedia}"
MEDIA=/var/lib/vmediafs/media
mountscripts/install-deps.sh
command -v xorriso >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xorriso >/dev/null
export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release
# On PATH, so that `vmedia` runs as typed and `mount -t fuse.vmediafs` (through mount.fuse3,
# which looks the daemon up on PATH) and fstab lines work straight away. Links, so a later
# build is what runs; mountscripts/install.sh copies them instead, with the man pages and unit.
BIN=$(swift build -c release --show-bin-path)
for tool in vmediafs vmedia; do ln -sf "$BIN/$tool" "/usr/local/bin/$tool"; done
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
  vmediafs "$MNT" --media-dir "$MEDIA" -o allow_other
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
  vmedia --mount $MNT lsvopt                            # the same drives, the administrator's way
  umount $MNT                                           # stop
  mount -t fuse.vmediafs vmediafs $MNT -o media_dir=$MEDIA,allow_other   # start it again
TXT
