#!/usr/bin/env bash
# Download (never install) Debian's linux-image for KVER, unpack it into
# CACHE and extract the uncompressed vmlinux for a PVH boot.
# Usage: tools/vm/fetch-kernel.sh KVER CACHE
set -euo pipefail

kver=$1 cache=$2
[ -f "$cache/vmlinux" ] && [ -d "$cache/lib/modules/$kver" ] && exit 0

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q "linux-image-$kver" >/dev/null 2>&1) || {
	echo "fetch-kernel: apt-get download linux-image-$kver failed" >&2
	exit 1
}
dpkg-deb -x "$tmp"/linux-image-*.deb "$tmp/x"
rm -rf "${cache:?}/lib"
mv "$tmp/x/lib" "$cache/lib"
cp "$tmp/x/boot/config-$kver" "$cache/config"

# scripts/extract-vmlinux, reduced to the gzip/xz/zstd cases Debian uses.
vmlinuz="$tmp/x/boot/vmlinuz-$kver"
try() {
	local magic=$1 cmd=$2 pos
	for pos in $(LC_ALL=C grep -abo "$magic" "$vmlinuz" | cut -d: -f1); do
		tail -c "+$((pos + 1))" "$vmlinuz" | $cmd >"$tmp/vmlinux" 2>/dev/null || true
		if head -c 4 "$tmp/vmlinux" | grep -q 'ELF'; then
			return 0
		fi
	done
	return 1
}
try $'\xfd7zXZ' 'xz -dc' || try $'\x28\xb5\x2f\xfd' 'zstd -dc' ||
	try $'\x1f\x8b\x08' 'gzip -dc' || { echo "fetch-kernel: no vmlinux found" >&2; exit 1; }
mv "$tmp/vmlinux" "$cache/vmlinux"
