#!/usr/bin/env bash
# Build the kernel's own dm-clone target out of tree, unmodified, for a
# kernel that does not build it, from Debian's linux-source package of the
# kernel's series.
#
#   scripts/build-clone.sh <kdir>
#
# Instant restore (issue 16) clones a backup served over NBD with upstream
# dm-clone (drivers/md/dm-clone-target.c, dm-clone-metadata.c). Debian's
# 6.1 and 6.12 kernels leave CONFIG_DM_CLONE unset but build the metadata
# library it needs, dm-persistent-data.ko. The two files, with the
# drivers/md headers they include, are taken from
# /usr/src/linux-source-<series>.tar.xz (into build/ksrc/<series>/) and
# built by scripts/build-kmod.sh (W=1, -Werror) into
# build/<release>/clone/dm-clone.ko, whose directory is printed.
#
# Probed, not numbered: a kernel whose .config has CONFIG_DM_CLONE=y or =m
# has its own, and then nothing is built or printed (a dm-clone.ko of an
# earlier build for that release is removed, as on any failure).
#
# The persistent-data headers come from that source, not from the
# kernel's headers package (which lacks drivers/md), and the source may be
# a later stable release than the kernel (6.12). MODVERSIONS cannot catch
# a difference there: modpost gives dm-clone.ko the CRCs of the kernel's
# Module.symvers, whatever it was compiled against. So the library is
# built from the same source too, into build/<release>/clone-abi/ (never
# installed), for the CRCs genksyms computes for its exports from the
# source's types: every symbol dm-clone.ko imports from it must have the
# CRC the kernel has, or the build fails and no dm-clone.ko is left.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build=${AMBER_BUILD:-$top/build}

die() {
	echo "build-clone: $*" >&2
	exit 1
}

[ $# -eq 1 ] || { echo "usage: $0 <kdir>" >&2; exit 2; }
kdir=$1
release=$("$here/kernels.sh" "$kdir" release)
config=$kdir/.config
[ -f "$config" ] || die "$kdir: no .config"

config_has() {
	grep -qE "^CONFIG_$1=[ym]\$" "$config"
}

# No stale dm-clone.ko may be tested: a run that fails leaves none.
ko=$build/$release/clone/dm-clone.ko
trap 'rm -f "$ko"' EXIT
config_has DM_CLONE && exit 0
for sym in BLK_DEV_DM DM_PERSISTENT_DATA; do
	config_has "$sym" || die "$release: CONFIG_$sym is not set, dm-clone cannot be built"
done
grep -qx CONFIG_MODVERSIONS=y "$config" ||
	die "$release: no CONFIG_MODVERSIONS, the persistent-data ABI cannot be checked"

series=$(sed -nE 's/^([0-9]+\.[0-9]+)[.-].*/\1/p' <<<"$release")
tarball=/usr/src/linux-source-$series.tar.xz
[ -f "$tarball" ] || die "no $tarball for $release (scripts/deps.sh installs linux-source-$series)"

# The files taken from the source; extracted again when the package or
# this list changes.
files=(
	drivers/md/dm-clone-target.c drivers/md/dm-clone-metadata.c
	drivers/md/dm-clone-metadata.h drivers/md/dm.h drivers/md/dm-stats.h
	drivers/md/persistent-data
)
ksrc=$build/ksrc/$series
stamp=$ksrc/.dm-clone-files
if [ ! "$stamp" -nt "$tarball" ] || [ "$(cat "$stamp")" != "${files[*]}" ]; then
	mkdir -p "$ksrc"
	tar -C "$ksrc" --strip-components=1 -xJf "$tarball" \
		"${files[@]/#/linux-source-$series/}"
	echo "${files[*]}" >"$stamp"
fi

# put <file>: stdin into the file, left alone when unchanged (no rebuild).
put() {
	local text
	text=$(cat)
	[ -f "$1" ] && [ "$(cat "$1")" = "$text" ] || echo "$text" >"$1"
}

# The two source trees build-kmod.sh copies into build/<release>/: clone
# (dm-clone.ko, drivers/md/Makefile's dm-clone lines as its Kbuild) and
# clone-abi (persistent-data with its own Makefile). Files are copied by
# content (rsync -c, no times kept): a changed one gets a new mtime, so
# that kbuild rebuilds what uses it (the source's mtimes are older than
# any object).
md=$ksrc/drivers/md
src=$build/clone-src/$series
mkdir -p "$src/clone/persistent-data" "$src/clone-abi"
rsync -c "$md"/dm-clone-target.c "$md"/dm-clone-metadata.[ch] "$md"/dm.h \
	"$md"/dm-stats.h "$src/clone/"
rsync -c "$md"/persistent-data/*.h "$src/clone/persistent-data/"
put "$src/clone/Kbuild" <<-EOF
	# Written by scripts/build-clone.sh, as drivers/md/Makefile builds it.
	obj-m := dm-clone.o
	dm-clone-y := dm-clone-target.o dm-clone-metadata.o
EOF
rsync -c "$md"/persistent-data/*.[ch] "$src/clone-abi/"
put "$src/clone-abi/Kbuild" <"$md/persistent-data/Makefile"

abi=$("$here/build-kmod.sh" "$kdir" "$src/clone-abi" CONFIG_DM_PERSISTENT_DATA=m)
out=$("$here/build-kmod.sh" "$kdir" "$src/clone")

# dm-clone.ko's __versions (the kernel's CRCs) against the source's CRCs
# of the same symbols.
bad=$(modprobe --dump-modversions "$out/dm-clone.ko" | awk -v release="$release" '
	FILENAME == ARGV[1] { ours[$2] = tolower($1); next }
	$2 in ours {
		n++
		if (tolower($1) != ours[$2])
			print "  " $2 ": " $1 " in " release ", " ours[$2] " in the source"
	}
	END { if (n == 0) print "  no import from dm-persistent-data: is this dm-clone?" }' \
	"$abi/Module.symvers" -)
[ -z "$bad" ] || die "$release: $tarball's persistent-data differs from the kernel's:
$bad"
trap - EXIT
echo "$out"
