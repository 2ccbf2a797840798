#!/usr/bin/env bash
# Install what SPT needs from Debian's packages, using the mirror the
# machine's own apt configuration already names.  Idempotent and quiet when
# nothing is missing.  Usage: tools/deps.sh [group...]  (groups: base qemu guest lint)
set -euo pipefail

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(base qemu guest lint)

pkgs_base="gcc make pkg-config check libsubunit-dev libopenblas-dev libdrm-dev libnl-genl-3-dev zlib1g-dev \
clang libclang-rt-14-dev llvm xz-utils cpio"
pkgs_qemu="dpkg-dev ninja-build libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev \
python3-venv python3-setuptools flex bison qemu-system-data/bookworm-backports seabios/bookworm-backports \
meson/bookworm-backports python3-pycotap/bookworm-backports"
pkgs_guest="busybox-static dataset-fashion-mnist kmod"
pkgs_lint="sparse shellcheck cppcheck"
# The guest kernel and headers come from bookworm-backports; KVER pins them.
KVER_SERIES=6.12

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing packages: $*; run 'make deps' as root" >&2
		exit 1
	fi
}

# First URI of a deb822 or one-line source that serves Debian itself.
debian_mirror() {
	local f uri=""
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
		[ -n "$uri" ] && break
	done
	if [ -z "$uri" ]; then
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] || continue
			uri=$(awk '$1 == "deb" && $0 !~ /security/ && $0 ~ /bookworm/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
			[ -n "$uri" ] && break
		done
	fi
	[ -n "$uri" ] || { echo "deps: no Debian mirror found in the apt configuration" >&2; exit 1; }
	echo "$uri"
}

SRC=/etc/apt/sources.list.d/spt-extra.sources
ensure_sources() {
	[ -f "$SRC" ] && return 0
	need_root "(apt sources)"
	local m keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	m=$(debian_mirror)
	cat >"$SRC" <<SRCEOF
# Added by SPT tools/deps.sh: backports for the 6.12 kernel and meson,
# trixie sources for QEMU 10.0.  Mirror taken from this machine's apt setup.
Types: deb
URIs: $m
Suites: bookworm-backports
Components: main
Signed-By: $keyring

Types: deb-src
URIs: $m
Suites: trixie
Components: main
Signed-By: $keyring
SRCEOF
	# Never let trixie binaries in: only its sources are used.
	cat >/etc/apt/preferences.d/spt-extra <<'PREFEOF'
Package: *
Pin: release n=trixie
Pin-Priority: -1
PREFEOF
	rm -f /var/lib/spt-apt-updated
}

# pkg[/suite] -> installed?  A package wanted from backports must be the
# backports build (bookworm's meson, say, is too old).
is_installed() {
	local p=${1%%/*}
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || return 1
	case $1 in
	*/bookworm-backports) dpkg-query -W -f='${Version}' "$p" | grep -q '~bpo' ;;
	esac
}

missing=()
for g in "${groups[@]}"; do
	case $g in
	base) list=$pkgs_base ;;
	qemu) list=$pkgs_qemu ;;
	guest) list="$pkgs_guest" ;;
	lint) list=$pkgs_lint ;;
	*) echo "deps: unknown group $g" >&2; exit 2 ;;
	esac
	for p in $list; do
		is_installed "$p" || missing+=("$p")
	done
	if [ "$g" = guest ]; then
		if ! ls /usr/lib/linux-image-${KVER_SERIES}* >/dev/null 2>&1 &&
		   ! dpkg-query -W -f='${Package}\n' "linux-headers-${KVER_SERIES}*-amd64" 2>/dev/null | grep -q .; then
			missing+=("linux-headers-amd64/bookworm-backports")
		fi
	fi
	if [ "$g" = lint ] && ! ls /usr/src/linux-source-${KVER_SERIES}* >/dev/null 2>&1; then
		missing+=("linux-source-${KVER_SERIES}/bookworm-backports")
	fi
done

# The Debian kernel image itself is downloaded, not installed (tools/vm).
ensure_sources
if [ ${#missing[@]} -eq 0 ]; then
	# New sources need their indices even when no package is missing
	# (apt-get source qemu and apt-get download read them).
	if [ ! -f /var/lib/spt-apt-updated ] && [ "$(id -u)" = 0 ]; then
		apt-get update -qq >/tmp/spt-deps.log 2>&1 || { cat /tmp/spt-deps.log >&2; exit 1; }
		touch /var/lib/spt-apt-updated
	fi
	exit 0
fi
need_root "${missing[@]}"
export DEBIAN_FRONTEND=noninteractive
if [ ! -f /var/lib/spt-apt-updated ] || ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/spt-deps.log 2>&1; then
	echo "deps: apt-get update" >&2
	apt-get update -qq >/tmp/spt-deps.log 2>&1 || { cat /tmp/spt-deps.log >&2; exit 1; }
	touch /var/lib/spt-apt-updated
	echo "deps: installing ${missing[*]}" >&2
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/spt-deps.log 2>&1 || { tail -30 /tmp/spt-deps.log >&2; exit 1; }
fi
