#!/usr/bin/env bash
# Resolve a tested kernel's short name to its parts.
#
#   scripts/kernels.sh <name> release    kernel release (uname -r)
#   scripts/kernels.sh <name> kdir       tree to build modules against
#   scripts/kernels.sh <name> image      bzImage to boot
#   scripts/kernels.sh <name> modroot    root holding lib/modules/<release>
#   scripts/kernels.sh <debug> available exit 0 if that debug kernel is cached
#   scripts/kernels.sh <kdir> release    release of a configured kernel tree
#
# <name> is 6.1 or 6.12, Debian's packaged kernels (scripts/deps.sh), or
# debug (6.1) or debug-6.12, the cached builds of scripts/debug-kernel.sh,
# whose modules are installed here into the cache on first use.
set -euo pipefail

cache=${AMBER_CACHE:-/var/cache/amber}

die() {
	echo "kernels: $*" >&2
	exit 1
}

# Newest installed Debian release of a series: 6.1 -> 6.1.0-56-amd64.
stock_release() {
	local series=$1 r
	r=$(find /lib/modules -mindepth 1 -maxdepth 1 -printf '%f\n' |
		grep -E "^${series//./\\.}\.[0-9].*-amd64\$" | sort -V | tail -n 1)
	if [ -z "$r" ] || [ ! -e "/lib/modules/$r/build" ] || [ ! -f "/boot/vmlinuz-$r" ]; then
		die "no installed $series kernel with headers (run scripts/deps.sh)"
	fi
	echo "$r"
}

# The release modules built against a tree get (Debian's headers say 6.1.192
# in kernel.release but 6.1.0-56-amd64 here, which is what uname -r says).
kdir_release() {
	local h=$1/include/generated/utsrelease.h
	[ -f "$h" ] || die "$1: not a configured kernel tree"
	sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$h"
}

# The series of a debug kernel's name: debug -> 6.1, debug-6.12 -> 6.12.
debug_series() {
	case $1 in
	debug) echo 6.1 ;;
	debug-6.12) echo 6.12 ;;
	*) die "unknown kernel: $1" ;;
	esac
}

debug_available() {
	[ -f "$debug_dir/.amber-complete" ]
}

debug_release() {
	debug_available || die "$kname kernel not built (run scripts/debug-kernel.sh $(debug_series "$kname"))"
	kdir_release "$debug_dir"
}

# modules_install into the cache once per build of the debug kernel.
debug_modules() {
	local stamp=$debug_modroot/.amber-installed
	if [ ! "$stamp" -nt "$debug_dir/.amber-complete" ]; then
		rm -rf "$debug_modroot"
		make -s -C "$debug_dir" modules_install INSTALL_MOD_STRIP=1 \
			INSTALL_MOD_PATH="$debug_modroot" >&2
		touch "$stamp"
	fi
	echo "$debug_modroot"
}

[ $# -eq 2 ] || die "usage: $0 <6.1|6.12|debug|debug-6.12|kdir> <release|kdir|image|modroot|available>"
name=$1 field=$2 kname=$1
case $name in
debug | debug-6.12)
	debug_dir=$cache/linux-debug-$(debug_series "$name")
	debug_modroot=$debug_dir-modules
	name=debug
	;;
esac

case $name:$field in
6.1:release | 6.12:release) stock_release "$name" ;;
6.1:kdir | 6.12:kdir) echo "/lib/modules/$(stock_release "$name")/build" ;;
6.1:image | 6.12:image) echo "/boot/vmlinuz-$(stock_release "$name")" ;;
6.1:modroot | 6.12:modroot) stock_release "$name" >/dev/null && echo / ;;
debug:available) debug_available ;;
debug:release) debug_release ;;
debug:kdir) debug_release >/dev/null && echo "$debug_dir" ;;
debug:image) debug_release >/dev/null && echo "$debug_dir/arch/x86/boot/bzImage" ;;
debug:modroot) debug_release >/dev/null && debug_modules ;;
*/*:release) kdir_release "$name" ;;
*) die "unknown kernel or field: $name $field" ;;
esac
