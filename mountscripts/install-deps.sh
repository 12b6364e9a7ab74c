#!/usr/bin/env bash
# Installs what vmediafs needs to build (libfuse3, SQLite) and, with --test, the tools its
# tests drive (xorriso, genisoimage, mkudffs, 7-Zip, libcdio's iso-info, losetup/blkid, nginx and
# curl for URL media).
# Debian 12; run as root (or through sudo). Safe to run again.
set -euo pipefail
pkgs=(libfuse3-dev fuse3 libsqlite3-dev pkg-config)
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(xorriso genisoimage udftools p7zip-full libcdio-utils util-linux python3 libiscsi-bin qemu-utils qemu-block-extra nginx-light curl openssl)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Redfish tests drive the service with real clients from PyPI: OpenStack's sushy and
# DMTF's protocol validator.
if [[ "${1:-}" == "--test" ]] && ! python3 -c "import sushy, redfish_protocol_validator" 2>/dev/null; then
  python3 -m pip install -q --root-user-action=ignore sushy redfish-protocol-validator redfish-service-validator >/dev/null 2>&1 ||
    python3 -m pip install -q sushy redfish-protocol-validator redfish-service-validator
fi
# /dev/fuse must exist for mounting (containers sometimes lack the node).
[[ -e /dev/fuse ]] || { mknod /dev/fuse c 10 229 && chmod 666 /dev/fuse; } || true
