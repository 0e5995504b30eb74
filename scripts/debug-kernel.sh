#!/usr/bin/env bash
# Build (once) and cache a debug kernel from Debian's linux-source-<series>:
# KASAN, KFENCE, SLUB debug, lockdep, kmemleak, fault injection, UBSAN,
# DM_CLONE. The cache lives outside the repository (AMBER_CACHE, default
# /var/cache/amber) and is reused by every clone.
#
#   scripts/debug-kernel.sh [6.1|6.12]          build if missing, print the build dir
#   scripts/debug-kernel.sh [6.1|6.12] --check  exit 0 if the cache is complete
#
# 6.1 (the default) is the kernel `KERNEL=debug` boots; 6.12 is `KERNEL=debug-6.12`.
#
# The stamp holds the hash of debug-kernel.config: a changed fragment
# rebuilds the cached tree (incrementally).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${AMBER_CACHE:-/var/cache/amber}
series=6.1
case ${1:-} in 6.1 | 6.12) series=$1; shift ;; esac
dir=$cache/linux-debug-$series
stamp=$dir/.amber-complete
want=$(sha256sum <"$here/debug-kernel.config")

if [ "${1:-}" = --check ]; then
	[ "$(cat "$stamp" 2>/dev/null)" = "$want" ]
	exit
fi
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
	echo "$dir"
	exit 0
fi

"$here/deps.sh" >&2
mkdir -p "$cache"
if [ ! -f "$dir/Makefile" ]; then
	rm -rf "$dir" "$cache/linux-source-$series"
	tar -C "$cache" -xf "/usr/src/linux-source-$series.tar.xz"
	mv "$cache/linux-source-$series" "$dir"
fi
cd "$dir"
make -s x86_64_defconfig kvm_guest.config >&2
scripts/kconfig/merge_config.sh -m .config "$here/debug-kernel.config" >&2
make -s olddefconfig >&2
# Every option of the fragment must have survived olddefconfig.
grep -v '^#' "$here/debug-kernel.config" | grep . | while read -r opt; do
	grep -qx "$opt" .config || { echo "debug-kernel: $opt lost" >&2; exit 1; }
done
make -s -j"$(nproc)" bzImage modules >&2
make -s modules_prepare >&2
echo "$want" >"$stamp"
echo "$dir"
