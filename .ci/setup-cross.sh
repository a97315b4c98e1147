#!/usr/bin/env bash
# Prepares this Debian 12 amd64 machine to build linegate for the Raspberry Pi (arm64, armhf)
# and run its tests under qemu, from Debian's packages alone (no Docker, no rustup targets):
# Debian's rustc-web with its ARM standard libraries unpacked into a private sysroot, the GNU
# cross linkers, qemu-user-static. Idempotent; run as root. (../shared/cross/README.md)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SYSROOT=/opt/rust-web-cross   # -> $SYSROOT/usr/lib/rustlib/<triple>/lib

apt-get install -y --no-install-recommends \
  rustc-web cargo-web \
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross \
  binutils-aarch64-linux-gnu binutils-arm-linux-gnueabihf \
  qemu-user-static curl ca-certificates xz-utils

# The ARM std must be the exact rustc-web version: unpack (not install) libstd-rust-web-dev.
# Adding the armhf architecture would break apt-get update (the mirror's armhf index is stale).
V=$(dpkg-query -W -f='${Version}' rustc-web)
if [ "$(cat "$SYSROOT/.version" 2>/dev/null || true)" != "$V" ]; then
  url=$(apt-get download --print-uris "libstd-rust-web-dev:amd64=$V" | awk -F"'" '{print $2}')
  declare -A SHA=(
    [1.96.0+dfsg1-1~deb12u2_arm64]=02419380801b9f61391294823659b17b90f7a863ca3bbccb9140d2f0f8a2c910
    [1.96.0+dfsg1-1~deb12u2_armhf]=b9f9dd1d03a903680f918cb2bba00a2a3d76558545d5e6a8061072ab461bb989
  )
  tmp=$(mktemp -d); rm -rf "$SYSROOT"; mkdir -p "$SYSROOT"
  for arch in arm64 armhf; do
    curl -fsS -o "$tmp/$arch.deb" "${url%_amd64.deb}_${arch}.deb"
    want=${SHA[${V}_${arch}]:-}
    if [ -n "$want" ]; then echo "$want  $tmp/$arch.deb" | sha256sum -c --quiet -
    else echo "WARNING: no pinned SHA256 for libstd-rust-web-dev $V $arch; not verified" >&2; fi
    dpkg -x "$tmp/$arch.deb" "$SYSROOT"
  done
  echo "$V" > "$SYSROOT/.version"; rm -rf "$tmp"
fi
