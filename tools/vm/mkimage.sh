#!/usr/bin/env bash
# Build the guest initramfs: busybox-static, the Debian 6.12 kernel's DRM
# modules, spt.ko, pvpanic and the in-guest test programs.
#
# Usage: tools/vm/mkimage.sh OUT_DIR KVER SPT_KO [TEST_BIN...]
#   OUT_DIR gets initramfs.cpio.gz; the kernel cache (vmlinux, modules)
#   lives in $SPT_KERNEL_CACHE (default /var/cache/spt/kernel-$KVER).
set -euo pipefail

out=$1 kver=$2 ko=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
cache=${SPT_KERNEL_CACHE:-/var/cache/spt/kernel-$kver}

"$here/fetch-kernel.sh" "$kver" "$cache"

moddir=$cache/lib/modules/$kver
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,mnt,lib/modules,tests,etc}

cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# Resolve a module and its dependencies, deepest first, once each.
declare -A seen=()
order=()
add_mod() {
	local name=$1 f dep
	[ -n "${seen[$name]:-}" ] && return 0
	seen[$name]=1
	f=$(find "$moddir/kernel" -name "$name.ko.xz" -o -name "$name.ko" | head -1)
	[ -n "$f" ] || f=$(find "$moddir/kernel" -name "${name//_/-}.ko.xz" | head -1)
	[ -n "$f" ] || { echo "mkimage: module $name not found" >&2; exit 1; }
	for dep in $(/sbin/modinfo -F depends "$f" | tr ',' ' '); do
		add_mod "$dep"
	done
	case $f in
	*.xz) xz -dc "$f" >"$root/lib/modules/$(basename "${f%.xz}")" ;;
	*) cp "$f" "$root/lib/modules/" ;;
	esac
	order+=("$(basename "${f%.xz}")")
}
for m in pvpanic-pci drm_shmem_helper gpu-sched; do
	add_mod "$m"
done
printf '%s\n' "${order[@]}" >"$root/lib/modules/order"
cp "$ko" "$root/lib/modules/spt.ko"

for t in "$@"; do
	cp "$t" "$root/tests/"
done
# The runtime: a static spt as /bin/spt, and Fashion-MNIST where spt train
# looks for it by default (both optional).
if [ -n "${SPT_GUEST_SPT:-}" ]; then
	cp "$SPT_GUEST_SPT" "$root/bin/spt"
fi
if [ -n "${SPT_GUEST_DATA:-}" ] && [ -d "$SPT_GUEST_DATA" ]; then
	mkdir -p "$root/usr/share/datasets/fashion-mnist"
	cp "$SPT_GUEST_DATA"/*-ubyte* "$root/usr/share/datasets/fashion-mnist/"
fi
cp "$here/init" "$root/init"
chmod 0755 "$root/init"

mkdir -p "$out"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) |
	gzip -1 >"$out/initramfs.cpio.gz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
ln -sf "$cache/vmlinux" "$out/vmlinux"
