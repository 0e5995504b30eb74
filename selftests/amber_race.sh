#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# View reads race origin writes to the same chunks: fio overwrites random
# chunks of the origin while the whole view is read again and again; the
# view must hold the barrier's image every time. Then fio with crc32c verify
# runs on the origin through repeated snapshot, release and drop cycles:
# the origin never loses a write.
. "$(dirname "$0")/amber_lib.sh"

require_module dm-amber
slice r-origin origin 0 64
origin=$(dm_dev r-origin)
slice r-store store 0 96
store=$(dm_dev r-store)
amber_volume r-vol "$origin" "$store"
vol=$(dm_dev r-vol)
view=$(dm_dev r-vol-view)
chunks=$(($(sectors "$origin") / AMBER_CHUNK))

random_writes() {
	fio --name=race --filename="$vol" --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=4k --iodepth=16 --runtime="$1" --time_based \
		--output=/tmp/race-fio.log >/dev/null
}

view_reads_never_see_new_data() {
	local pass pid
	chunk_pattern_write "$vol" 0 "$chunks" frozen
	amber_msg r-vol snap >/dev/null
	random_writes 20 &
	pid=$!
	for pass in 1 2 3 4 5; do
		chunk_pattern_verify "$view" 0 "$chunks" frozen ||
			{ echo "# pass $pass saw new data"; kill "$pid"; return 1; }
	done
	wait "$pid"
	chunk_pattern_verify "$view" 0 "$chunks" frozen
	[ "$(amber_field r-vol copied)" -gt 0 ]
	amber_msg r-vol drop
}

snapshot_cycles() {
	local i
	for i in $(seq 1 "$1"); do
		sleep 1
		amber_msg r-vol snap >/dev/null
		dd if="$view" of=/dev/null bs=1M iflag=direct status=none
		amber_msg r-vol release 0 $((chunks / 2))
		sleep 0.5
		amber_msg r-vol drop
	done
}

fio_verifies_through_snapshots() {
	local pid
	snapshot_cycles 8 &
	pid=$!
	fio --name=verify --filename="$vol" --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=4k --iodepth=8 --size=48M \
		--verify=crc32c --verify_fatal=1 --do_verify=1 \
		--output=/tmp/verify-fio.log >/dev/null ||
		{ cat /tmp/verify-fio.log; kill "$pid"; return 1; }
	wait "$pid"
	amber_expect r-vol state idle
}

ktap_print_header
ktap_set_plan 2
ktap_step "view reads racing origin writes see the barrier's image" view_reads_never_see_new_data
ktap_step "fio crc32c verify through snapshot/release/drop cycles" fio_verifies_through_snapshots
ktap_finished
