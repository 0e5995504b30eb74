#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The create / copy-on-write / remove cycle of make bench's copy-on-write
# phases, where a 6.12 VM once died of a double fault in the slab
# allocator: amber volumes (4 KiB and 64 KiB chunks) and dm-snapshot, each
# created, written under a snapshot and removed, round after round on the
# same disks. In each amber round a view read races the first writes, the
# snapshot is dropped while writes still copy, and the volume is removed
# the moment the writes end. Each round checks the view against the image
# the barrier froze. AMBER_CYCLE_ROUNDS sets the rounds (3); make cycle
# runs the long version.
. "$(dirname "$0")/amber_lib.sh"

require_module dm-amber
require_module dm-snapshot

ROUNDS=${AMBER_CYCLE_ROUNDS:-3}
MIB=32				# the region the writes and the checks cover
slice c-origin origin 0 128
slice c-store store 0 128
slice c-cow origin2 0 128
origin=$(dm_dev c-origin)
store=$(dm_dev c-store)
cow=$(dm_dev c-cow)

region_sum() {
	dd if="$1" bs=1M count=$MIB iflag=direct status=none | sha256sum
}

# first_writes <dev> <seed> [count]: 4 KiB random writes, iodepth 8, each
# likely the first of its chunk, as bench's replay logs are.
first_writes() {
	fio --name=cycle --filename="$1" --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=4k --iodepth=8 --size=${MIB}M \
		--number_ios="${3:-600}" --randseed="$2" --norandommap \
		--output=/dev/null
}

# One amber volume's life with <chunk bytes>, round <r>.
amber_round() {
	local chunk=$1 r=$2 before reader
	amber_format "$store" "$origin" $((chunk / 512))
	dmsetup create c-amb --table "$(amber_table "$origin" "$store" $((chunk / 512)))"
	dmsetup create c-amb-view --readonly \
		--table "0 $(sectors "$origin") amber-view $(dm_dev c-amb)"
	before=$(region_sum "$(dm_dev c-amb)")
	[ "$(amber_msg c-amb snap)" -gt 0 ]
	region_sum "$(dm_dev c-amb-view)" >/tmp/cycle.view &
	reader=$!
	first_writes "$(dm_dev c-amb)" "$r"
	wait "$reader"
	[ "$(cat /tmp/cycle.view)" = "$before" ] || { echo "# round $r: view read under writes differs"; return 1; }
	[ "$(region_sum "$(dm_dev c-amb-view)")" = "$before" ] ||
		{ echo "# round $r: view differs after the writes"; return 1; }
	# Drop while writes copy; remove as soon as they end.
	first_writes "$(dm_dev c-amb)" $((r + 1000)) &
	sleep 0.3
	amber_msg c-amb drop
	[ "$(amber_msg c-amb snap)" -gt 0 ]
	wait $!
	dmsetup remove c-amb-view
	dmsetup remove c-amb
}

# One dm-snapshot's life, as bench takes it: suspend, create, resume.
dmsnap_round() {
	local r=$1
	dd if=/dev/zero of="$cow" bs=4k count=1 oflag=direct,dsync conv=notrunc status=none
	dmsetup create c-so --table "0 $(sectors "$origin") snapshot-origin $origin"
	dmsetup suspend c-so
	dmsetup create c-snap --table "0 $(sectors "$origin") snapshot $origin $cow P 8"
	dmsetup resume c-so
	first_writes "$(dm_dev c-so)" $((r + 2000))
	dmsetup remove c-snap
	dmsetup remove c-so
}

cycle() {
	local r
	for ((r = 1; r <= ROUNDS; r++)); do
		amber_round 4096 "$r"
		dmsnap_round "$r"
		amber_round 65536 "$r"
	done
	echo "# $ROUNDS rounds"
}

ktap_print_header
ktap_set_plan 1
ktap_step "create, copy-on-write, remove: round after round" cycle
ktap_finished
