#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# dm-linear on the scratch disks: checks the VM, dmsetup, fio and lib.sh
# end to end, and is the model for the shell tests of amber.
. "$(dirname "$0")/lib.sh"

origin=$(scratch_disk origin)
origin2=$(scratch_disk origin2)
off=2048		# the first segment starts 1 MiB into origin
len=$((128 * 2048))	# 128 MiB per segment
dev=$(dm_dev amber-linear)

table_is_echoed() {
	local majmin
	majmin=$(cat "/sys/class/block/${origin#/dev/}/dev")
	[ "$(sectors "$dev")" -eq "$len" ]
	[ "$(dmsetup table amber-linear)" = "0 $len linear $majmin $off" ]
}

# Sectors written through the target land at the table's offset: at the
# start, in the middle and at the very end of the device.
writes_land_at_offset() {
	local at
	for at in 0 1000 $((len - 8)); do
		pattern_write "$dev" "$at" 8 "linear-$at"
		pattern_verify "$origin" $((off + at)) 8 "linear-$at"
	done
}

# fio keeps to 64..96 MiB, away from the sectors the other steps check.
fio_verifies() {
	fio --name=linear --filename="$dev" --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=4k --iodepth=8 --offset=64M --size=32M \
		--verify=crc32c --verify_fatal=1 --do_verify=1 \
		--output=fio.log ||
		{ cat fio.log; return 1; }
}

# A live table swap (load, then resume) appends a segment on origin2; the
# old data stays, and a write across the boundary is split between disks.
table_swap_keeps_data() {
	dmsetup load amber-linear --table "0 $len linear $origin $off
$len $len linear $origin2 0"
	dmsetup resume amber-linear
	[ "$(sectors "$dev")" -eq $((2 * len)) ]
	pattern_verify "$dev" 1000 8 linear-1000
	pattern_write "$dev" $((len - 4)) 8 boundary
	pattern_verify "$origin" $((off + len - 4)) 4 boundary
	cmp <(pattern boundary 8 | tail -c 2048) \
		<(dd if="$origin2" bs=2048 count=1 iflag=direct status=none)
}

bad_table_is_refused() {
	if dmsetup create amber-bad --table "0 2048 linear $origin" 2>/dev/null; then
		dmsetup remove amber-bad
		return 1
	fi
	[ ! -e "$(dm_dev amber-bad)" ]
}

ktap_print_header
ktap_set_plan 5
dm_create amber-linear "0 $len linear $origin $off"
ktap_step "the table is echoed and sized" table_is_echoed
ktap_step "writes land at the table's offset" writes_land_at_offset
ktap_step "fio random writes verify (crc32c)" fio_verifies
ktap_step "a live table swap keeps the data" table_swap_keeps_data
ktap_step "a malformed table is refused" bad_table_is_refused
ktap_finished
