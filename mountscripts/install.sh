#!/usr/bin/env bash
# Installs vmediafs: the daemon and the CLI in $PREFIX/bin, the man pages, the systemd
# unit and its defaults, and bash completion for vmedia. DESTDIR stages the install
# (for packaging). Builds a release build first, unless BIN names a folder that already
# holds the built vmediafs and vmedia.
#   PREFIX=/usr/local DESTDIR= mountscripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX="${PREFIX:-/usr/local}"
DESTDIR="${DESTDIR:-}"
if [[ -z "${BIN:-}" ]]; then
  export PATH="/opt/swift/usr/bin:$PATH"
  swift build -c release >/dev/null
  BIN=$(swift build -c release --show-bin-path)
fi
root="$DESTDIR$PREFIX"
install -d "$root/bin" "$root/share/man/man8" "$root/share/bash-completion/completions" \
           "$DESTDIR/etc/systemd/system" "$DESTDIR/etc/default"
install -m 0755 "$BIN/vmediafs" "$BIN/vmedia" "$root/bin/"
for page in vmediafs vmedia; do
  install -m 0644 "docs/$page.8.md" "$root/share/man/man8/$page.8.md"
done
"$BIN/vmedia" --generate-completion-script bash > "$root/share/bash-completion/completions/vmedia"
sed "s|@BINDIR@|$PREFIX/bin|" mountscripts/vmediafs.service > "$DESTDIR/etc/systemd/system/vmediafs.service"
chmod 0644 "$DESTDIR/etc/systemd/system/vmediafs.service"
[[ -e "$DESTDIR/etc/default/vmediafs" ]] || install -m 0644 mountscripts/vmediafs.default "$DESTDIR/etc/default/vmediafs"
echo "installed into ${DESTDIR:-/}$PREFIX"
echo "mount -t fuse.vmediafs works through mount.fuse3 once $PREFIX/bin is on PATH"
