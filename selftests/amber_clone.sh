#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The kernel's dm-clone target, which instant restore (issue 16) puts over
# an NBD source. Debian's 6.1 and 6.12 get the build of
# scripts/build-clone.sh, the debug kernels their own. On each: it loads
# with dm-persistent-data, reads as its source before any hydration,
# hydrates the regions a write touches, keeps its hydration count across
# a table re-created over the same metadata mid-hydration, and once
# hydrated the destination is the source with the writes; the source is
# never written. The source is random data on a read-only dm-linear slice
# under dm-delay (10 ms a bio), so that hydration one region at a time is
# slow enough to stop midway (Documentation/admin-guide/device-mapper/
# dm-clone.rst has the table, status and messages).
. "$(dirname "$0")/amber_lib.sh"

mib=32
len=$((mib * 2048))
region=128			# sectors: 64 KiB, 512 regions
regions=$((len / region))
clone=amber-clone
dev=$(dm_dev $clone)

clone_table() {
	echo "0 $len clone $(dm_dev cl-meta) $(dm_dev cl-dest) $(dm_dev cl-slow) $region 1 no_hydration"
}

# clone_field <field>: one field of the clone's status: hydrated, regions,
# hydrating (regions being copied), mode (rw, ro, Fail).
clone_field() {
	dmsetup status $clone | awk -v f="$1" '{
		split($7, h, "/")
		v["hydrated"] = h[1]; v["regions"] = h[2]; v["hydrating"] = $8
		v["mode"] = $NF
		print v[f]
	}'
}

clone_expect() {
	local got
	got=$(clone_field "$1")
	[ "$got" = "$2" ] || { echo "# clone $1 is '$got', expected '$2'"; return 1; }
}

clone_is() {
	[ "$(clone_field "$1")" = "$2" ]
}

hydrated_at_least() {
	[ "$(clone_field hydrated)" -ge "$1" ]
}

# same_as <dev> <file>: the device holds the file (read with O_DIRECT).
same_as() {
	cmp <(dd if="$1" bs=1M iflag=direct status=none) "$2"
}

# clone_write <sector> <count> <seed>: a pattern written through the
# clone, and into the image the clone must show.
clone_write() {
	pattern_write "$dev" "$1" "$2" "$3"
	pattern "$3" "$2" | dd of=expected.img bs=512 seek="$1" conv=notrunc status=none
}

# A module's holders are listed only when both are modules.
clone_loads() {
	local m target
	modprobe dm-clone
	target=$(dmsetup targets | awk '$1 == "clone" { print $1, $2 }')
	[ -n "$target" ]
	echo "# dm-clone: $(modinfo -F filename dm-clone), $target"
	for m in dm_persistent_data dm_mod; do
		[ ! -e /sys/module/dm_clone/refcnt ] || [ ! -e /sys/module/$m/refcnt ] ||
			[ -e /sys/module/$m/holders/dm_clone ] ||
			{ echo "# $m does not hold dm_clone"; return 1; }
	done
}

nbd_loads() {
	modinfo nbd >/dev/null 2>&1 || skip "the kernel has no nbd (CONFIG_BLK_DEV_NBD)"
	modprobe nbd
	[ -b /dev/nbd0 ]
	[ ! -e /sys/module/nbd/refcnt ] || rmmod nbd
}

reads_as_source() {
	dmsetup create $clone --table "$(clone_table)"
	clone_expect regions $regions
	clone_expect mode rw
	same_as "$dev" source.img
	clone_expect hydrated 0
}

# A write into an unhydrated region waits for its copy; one of a whole
# region needs none. Either way exactly the regions written are hydrated.
writes_hydrate_their_regions() {
	clone_write 1000 8 partial				# region 7
	clone_write $((100 * region)) $region whole		# region 100
	clone_write $((200 * region - 8)) 16 across		# 199 and 200
	clone_write $((len - 8)) 8 last				# 511
	clone_expect hydrated 5
	same_as "$dev" expected.img
}

# Stopped (disable_hydration) once it has copied some regions, the
# count is committed when the table goes (postsuspend), and a new table
# over the same metadata starts from it.
recreate_mid_hydration() {
	local stopped
	dmsetup message $clone 0 enable_hydration
	wait_until 120 hydrated_at_least 21
	dmsetup message $clone 0 disable_hydration
	wait_until 60 clone_is hydrating 0
	stopped=$(clone_field hydrated)
	echo "# stopped at $stopped of $regions regions"
	[ "$stopped" -lt "$regions" ] || { echo "# hydration ended before it was stopped"; return 1; }
	dmsetup remove $clone
	dmsetup create $clone --table "$(clone_table)"
	clone_expect hydrated "$stopped"
	same_as "$dev" expected.img
}

# The rest with 64 regions in flight; a table over the finished metadata
# has nothing left to hydrate.
hydration_completes() {
	dmsetup message $clone 0 hydration_threshold 64
	dmsetup message $clone 0 enable_hydration
	wait_until 600 clone_is hydrated $regions
	same_as "$dev" expected.img
	dmsetup remove $clone
	same_as "$(dm_dev cl-dest)" expected.img
	dmsetup create $clone --table "$(clone_table)"
	clone_expect hydrated $regions
	dmsetup remove $clone
}

source_untouched() {
	same_as "$(dm_dev cl-src)" source.img
}

clone_unloads() {
	[ -e /sys/module/dm_clone/refcnt ] || skip "dm-clone is built in"
	[ ! -e "$dev" ]
	rmmod dm_clone
	[ ! -e /sys/module/dm_clone ]
}

modinfo dm-clone >/dev/null 2>&1 || [ -d /sys/module/dm_clone ] ||
	skip_all "no dm-clone: the kernel lacks CONFIG_DM_CLONE and no build of scripts/build-clone.sh is installed"
require_module dm-delay

slice cl-fill origin 0 $mib
dm_create cl-src "0 $len linear $(scratch_disk origin) 0" --readonly
dm_create cl-slow "0 $len delay $(dm_dev cl-src) 0 10" --readonly
slice cl-dest origin2 0 $mib
slice cl-meta store 0 4
scratch_wipe "$(dm_dev cl-dest)"
scratch_wipe "$(dm_dev cl-meta)"
dd if=/dev/urandom of=source.img bs=1M count=$mib status=none
dd if=source.img of="$(dm_dev cl-fill)" bs=1M oflag=direct status=none
cp source.img expected.img
defer dm_remove $clone

ktap_print_header
ktap_set_plan 8
ktap_step "dm-clone loads, with dm-persistent-data and dm-mod" clone_loads
ktap_step "nbd loads (issue 16's source)" nbd_loads
ktap_step "a new clone reads as its source, nothing hydrated" reads_as_source
ktap_step "writes through the clone hydrate exactly their regions" writes_hydrate_their_regions
ktap_step "the hydration count survives a table re-created mid-hydration" recreate_mid_hydration
ktap_step "hydrated, the destination is the source with the writes" hydration_completes
ktap_step "the source was never written" source_untouched
ktap_step "dm-clone unloads" clone_unloads
ktap_finished
