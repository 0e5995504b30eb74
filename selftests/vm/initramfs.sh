#!/usr/bin/env bash
# Build the test VM's initramfs (an uncompressed newc cpio).
#
#   selftests/vm/initramfs.sh <6.1|6.12|debug> <overlay-dir> <out.cpio>
#
# The image is three layers merged (into root/ next to <out.cpio>, removed
# once the cpio is written):
#   base     busybox-static, the host files of host-files.list with their
#            libraries, rootfs/ (cached in build/vm/stage/base)
#   modules  the kernel modules of modules.list with their dependencies
#            (cached per kernel release in build/vm/stage/modules-<release>)
#   overlay  this run's files: /init, /tests, the project's binaries and
#            out-of-tree modules under /lib/modules/<release>/extra
# The caches are rebuilt when their inputs change.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${AMBER_BUILD:-$top/build}
stage=$build/vm/stage

die() {
	echo "initramfs: $*" >&2
	exit 1
}

# Lines of a list file without comments and blank lines.
list() {
	sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$1"
}

# Where a host path lands under <root>: its directory resolved (usr-merge),
# its own name kept, so a symlinked command keeps its argv[0].
dest_of() {
	local root=$1 path=$2
	echo "$root$(realpath -e "$(dirname "$path")")/$(basename "$path")"
}

# Copy one host file (dereferenced) unless the root already has it.
put_file() {
	local root=$1 path=$2 dest
	dest=$(dest_of "$root" "$path")
	[ -e "$dest" ] && return
	mkdir -p "$(dirname "$dest")"
	cp -L "$path" "$dest"
}

# The shared libraries a dynamic ELF needs, as ldd resolves them on the host.
put_libs() {
	local root=$1 elf=$2 lib
	ldd "$elf" >/dev/null 2>&1 || return 0
	for lib in $(ldd "$elf" | awk '$1 ~ /^\// { print $1 } $3 ~ /^\// { print $3 }'); do
		put_file "$root" "$lib"
	done
}

# A host file or directory of host-files.list, with the libraries it needs.
put_host_path() {
	local root=$1 path=$2 dest f
	[ -e "$path" ] || die "$path: listed in host-files.list but missing on the host"
	if [ -d "$path" ]; then
		dest=$(dest_of "$root" "$path")
		mkdir -p "$dest"
		cp -a "$path/." "$dest/"
		while IFS= read -r -d '' f; do
			put_libs "$root" "$f"
		done < <(find "$path" -type f -print0)
	else
		dest=$(dest_of "$root" "$path")
		mkdir -p "$(dirname "$dest")"
		cp -L --remove-destination "$path" "$dest"
		put_libs "$root" "$path"
	fi
}

# busybox with every applet linked, except the applet named busybox.
put_busybox() {
	local root=$1 applet
	mkdir -p "$root/usr/bin"
	cp /usr/bin/busybox "$root/usr/bin/busybox"
	for applet in $(/usr/bin/busybox --list-full); do
		[ "$(basename "$applet")" = busybox ] && continue
		[ -e "$root/$applet" ] || ln -s /usr/bin/busybox "$root/$applet"
	done
}

# Rebuild a cache directory when the hash of its inputs changed.
#   cached <dir> <key> <builder> [args...]
cached() {
	local dir=$1 key=$2
	shift 2
	[ -f "$dir.key" ] && [ "$(cat "$dir.key")" = "$key" ] && return
	rm -rf "$dir" "$dir.key"
	mkdir -p "$dir"
	"$@" "$dir"
	echo "$key" >"$dir.key"
}

base_key() {
	{
		cat "$0" "$here/host-files.list"
		find "$here/rootfs" -type f -exec sha256sum {} +
		list "$here/host-files.list" | xargs stat -L -c '%n %s %Y' /usr/bin/busybox
	} | sha256sum | cut -d' ' -f1
}

build_base() {
	local root=$1 path
	mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$root/usr/lib64"
	ln -s usr/bin "$root/bin"
	ln -s usr/sbin "$root/sbin"
	ln -s usr/lib "$root/lib"
	ln -s usr/lib64 "$root/lib64"
	mkdir -p "$root"/{dev,proc,sys,tmp,run,mnt,root,var/tmp}
	# Modes that do not depend on the host's umask: amberd refuses a
	# backup_dir under a directory others may write to.
	chmod 755 "$root" "$root"/{dev,proc,sys,run,mnt,var}
	chmod 700 "$root/root"
	chmod 1777 "$root/tmp" "$root/var/tmp"
	cp -a "$here/rootfs/." "$root/"
	put_busybox "$root"
	for path in $(list "$here/host-files.list"); do
		put_host_path "$root" "$path"
	done
}

# Copy one module and those it needs from <modroot>, decompressed (the guest
# then spends no time on xz). Built-in modules need nothing.
put_module() {
	local root=$1 modroot=$2 release=$3 name=$4 ko dest
	for ko in $(modprobe -d "$modroot" -S "$release" --show-depends "$name" |
		awk '$1 == "insmod" { print $2 }'); do
		dest=$root/usr/lib/modules/${ko#*/lib/modules/}
		dest=${dest%.xz}
		dest=${dest%.zst}
		[ -e "$dest" ] && continue
		mkdir -p "$(dirname "$dest")"
		case $ko in
		*.xz) xz -dc "$ko" >"$dest" ;;
		*.zst) zstd -qdc "$ko" >"$dest" ;;
		*) cp "$ko" "$dest" ;;
		esac
	done
}

module_known() {
	modprobe -d "$1" -S "$2" --show-depends "$3" >/dev/null 2>&1
}

modules_key() {
	local modroot=$1 release=$2
	{
		cat "$0" "$here/modules.list"
		echo "$release"
		stat -c '%n %Y' "$modroot/lib/modules/$release/modules.dep"
	} | sha256sum | cut -d' ' -f1
}

build_modules() {
	local modroot=$1 release=$2 root=$3 name src=$1/lib/modules/$2
	mkdir -p "$root/usr/lib/modules/$release"
	cp "$src"/modules.{builtin,builtin.modinfo,order} "$root/usr/lib/modules/$release/"
	for name in $(list "$here/modules.list"); do
		if module_known "$modroot" "$release" "${name%\?}"; then
			put_module "$root" "$modroot" "$release" "${name%\?}"
		elif [ "${name%\?}" = "$name" ]; then
			die "module $name missing for $release"
		fi
	done
}

# Everything the overlay's files need from the host: libraries of its ELFs,
# and the modules its out-of-tree modules depend on.
complete_overlay() {
	local root=$1 overlay=$2 modroot=$3 release=$4 f dep
	while IFS= read -r -d '' f; do
		put_libs "$root" "$f"
	done < <(find "$overlay" -type f -print0)
	for f in "$root/usr/lib/modules/$release/extra/"*.ko; do
		[ -e "$f" ] || continue
		for dep in $(modinfo -F depends "$f" | tr ',' ' '); do
			put_module "$root" "$modroot" "$release" "$dep"
		done
	done
}

assemble() {
	local kernel=$1 overlay=$2 out=$3 release modroot root
	release=$("$top/scripts/kernels.sh" "$kernel" release)
	modroot=$("$top/scripts/kernels.sh" "$kernel" modroot)
	root=$(dirname "$out")/root
	rm -rf "$root"
	mkdir -p "$root" "$stage"
	(
		flock 9	# concurrent runs share the caches
		cached "$stage/base" "$(base_key)" build_base
		cached "$stage/modules-$release" "$(modules_key "$modroot" "$release")" \
			build_modules "$modroot" "$release"
		# Hard links: cheap, and nothing below writes into a linked file
		# (copies skip or replace files; depmod writes new ones and renames).
		cp -al "$stage/base/." "$root/"
		cp -al "$stage/modules-$release/." "$root/"
	) 9>"$stage/.lock"
	cp -a --remove-destination "$overlay/." "$root/"
	chmod 755 "$root"
	complete_overlay "$root" "$overlay" "$modroot" "$release"
	depmod -b "$root" "$release"
	(cd "$root" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc -R 0:0 --quiet) >"$out"
	rm -rf "$root"
}

[ $# -eq 3 ] || die "usage: $0 <6.1|6.12|debug> <overlay-dir> <out.cpio>"
assemble "$@"
