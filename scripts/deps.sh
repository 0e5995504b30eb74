#!/usr/bin/env bash
# Install everything amber needs from Debian's archive, idempotently.
# Quiet when all is present. Nothing is fetched from anywhere else.
set -euo pipefail

BACKPORTS=/etc/apt/sources.list.d/amber-bookworm-backports.list

base_pkgs=(
	build-essential bc bison flex libelf-dev libssl-dev dwarves kmod cpio
	rsync xz-utils pkg-config sparse gnuplot-nox python3
	qemu-system-x86 busybox-static fio dmsetup libdevmapper-dev
	libzstd-dev zstd libxxhash-dev libjansson-dev e2fsprogs coreutils util-linux
	linux-image-amd64 linux-headers-amd64 linux-source-6.1
	postgresql-15 sqlite3 clang
	linux-source-6.12 perl bash systemd man-db
	python3-cryptography
)
bpo_pkgs=(linux-image-amd64 linux-headers-amd64)

missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q 'install ok installed' || echo "$p"
	done
}

# The 6.12 kernel must be the backports one: check the version, not the name.
bpo_kernel_present() {
	ls /lib/modules 2>/dev/null | grep -q '^6\.12\.' &&
		ls -d /usr/src/linux-headers-6.12.*-amd64 >/dev/null 2>&1
}

apt_update_done=
apt_update() {
	[ -n "$apt_update_done" ] && return
	apt-get update -qq
	apt_update_done=1
}

export DEBIAN_FRONTEND=noninteractive

if [ ! -f "$BACKPORTS" ]; then
	echo "deb http://deb.debian.org/debian bookworm-backports main" >"$BACKPORTS"
	apt_update
fi

mapfile -t need < <(missing "${base_pkgs[@]}")
if [ "${#need[@]}" -gt 0 ]; then
	echo "deps: installing ${need[*]}"
	apt_update
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! bpo_kernel_present; then
	echo "deps: installing the 6.12 kernel from bookworm-backports"
	apt_update
	apt-get install -y -qq --no-install-recommends -t bookworm-backports \
		"${bpo_pkgs[@]}" >/dev/null
	# The backports meta-package replaces the 6.1 one; keep 6.1 pinned by
	# installing its versioned packages explicitly.
fi

# Make sure a 6.1 image and headers stay installed next to 6.12.
if ! ls /lib/modules 2>/dev/null | grep -q '^6\.1\.'; then
	v=$(apt-cache depends linux-image-amd64/bookworm 2>/dev/null |
		awk '/Depends: linux-image-6\.1/{print $2; exit}')
	echo "deps: installing $v"
	apt_update
	apt-get install -y -qq --no-install-recommends "$v" \
		"${v/image/headers}" >/dev/null
fi
exit 0
