#!/usr/bin/env bash
# Build an out-of-tree kernel module against one kernel tree, in a private
# copy of its sources so that several kernels never share object files.
#
#   scripts/build-kmod.sh <kdir> <srcdir> [kbuild args...]
#
# The copy lives in build/<release>/<basename of srcdir>/ and is printed on
# stdout. The build runs with W=1 and -Werror; any other warning (modpost,
# kernel-doc, sparse with C=2) fails it too.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")

[ $# -ge 2 ] || { echo "usage: $0 <kdir> <srcdir> [kbuild args...]" >&2; exit 2; }
kdir=$1 src=$(cd "$2" && pwd)
shift 2

release=$("$here/kernels.sh" "$kdir" release)
out=${AMBER_BUILD:-$top/build}/$release/$(basename "$src")
mkdir -p "$out"

# Mirror the sources; keep the objects of earlier builds for incremental make.
rsync -a --delete \
	--filter='P *.o' --filter='P *.ko' --filter='P *.mod' \
	--filter='P *.mod.c' --filter='P .*.cmd' --filter='P *.a' \
	--filter='P Module.symvers' --filter='P modules.order' \
	"$src/" "$out/"

log=$out/.build.log
status=0
make -C "$kdir" M="$out" W=1 KCFLAGS=-Werror "$@" modules >"$log" 2>&1 || status=$?
if [ "$status" -ne 0 ] || grep -qiE '\b(warning|error):' "$log"; then
	grep -vE '^make(\[[0-9]+\])?: (Entering|Leaving) directory' "$log" >&2
	echo "build-kmod: $(basename "$src") for $release failed" >&2
	rm -f "$out"/*.ko	# no stale module may be tested

	exit 1
fi
echo "$out"
