#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The frozen view: after the barrier, overwriting every chunk of the origin
# (aligned, misaligned, across chunks, discard, write zeroes) leaves the view
# as it was; release and drop take chunks out of it; REQ_NOWAIT writes get
# EAGAIN instead of waiting.
. "$(dirname "$0")/amber_lib.sh"

require_module dm-amber
slice v-origin origin 0 32
origin=$(dm_dev v-origin)
slice v-store store 0 48
store=$(dm_dev v-store)
amber_volume v-vol "$origin" "$store"
vol=$(dm_dev v-vol)
view=$(dm_dev v-vol-view)
chunks=$(($(sectors "$origin") / AMBER_CHUNK))
# A disk of 4 KiB sectors (a loop device) and 512-byte slices beside it.
slice v-origin512 origin 32 8
slice v-store512 store 48 16
modprobe loop
truncate -s 16M /tmp/v-disk4k.img
disk4k=$(losetup --find --show --sector-size 4096 /tmp/v-disk4k.img)
defer rm -f /tmp/v-disk4k.img
defer losetup -d "$disk4k"

view_fails_without_snapshot() {
	chunk_pattern_write "$vol" 0 "$chunks" before
	chunk_unreadable "$view" 0
}

overwrites_leave_the_view() {
	[ "$(amber_msg v-vol snap)" = 1 ]
	# Misaligned, across a chunk boundary, then every chunk in full.
	pattern_write "$vol" $((3 * AMBER_CHUNK - 3)) 7 across
	chunk_pattern_write "$vol" 0 "$chunks" after
	chunk_pattern_verify "$view" 0 "$chunks" before
	chunk_pattern_verify "$vol" 0 "$chunks" after
	amber_expect v-vol copied "$chunks"
	amber_expect v-vol used "$chunks"
}

release_takes_chunks_out() {
	amber_msg v-vol release 0 100
	amber_expect v-vol released 100
	amber_expect v-vol used $((chunks - 100))
	chunk_unreadable "$view" 0
	chunk_unreadable "$view" 99
	chunk_pattern_verify "$view" 100 $((chunks - 100)) before
	# A released chunk takes writes without a copy and stays out.
	chunk_pattern_write "$vol" 5 1 later
	chunk_unreadable "$view" 5
	amber_expect v-vol used $((chunks - 100))
}

drop_ends_the_view() {
	amber_msg v-vol drop
	amber_expect v-vol state idle
	amber_expect v-vol used 0
	chunk_unreadable "$view" 200
}

discard_and_zeroes_keep_the_view() {
	chunk_pattern_write "$vol" 0 "$chunks" second
	[ "$(amber_msg v-vol snap)" = 2 ]
	blkop discard "$vol" $((10 * AMBER_CHUNK * 512)) $((4 * AMBER_CHUNK * 512))
	blkop zeroout "$vol" $((20 * AMBER_CHUNK * 512)) $((4 * AMBER_CHUNK * 512))
	chunk_pattern_verify "$view" 0 "$chunks" second
	cmp -n $((4 * AMBER_CHUNK * 512)) /dev/zero \
		<(dd if="$vol" bs=512 skip=$((20 * AMBER_CHUNK)) count=$((4 * AMBER_CHUNK)) iflag=direct status=none)
	amber_expect v-vol copied 4
}

nowait_writes_do_not_wait() {
	# Chunk 30 is untouched in this snapshot: its first write must copy.
	[ "$(blkop nowait "$vol" $((30 * AMBER_CHUNK * 512)))" = again ]
	chunk_pattern_write "$vol" 30 1 third
	[ "$(blkop nowait "$vol" $((30 * AMBER_CHUNK * 512)))" = ok ]
	chunk_pattern_verify "$view" 30 1 second
	amber_msg v-vol drop
}

# The view reads copied blocks from the store at the origin's block size:
# a store of 4 KiB sectors under an origin of 512-byte ones is refused,
# naming why. The other way round works, and the view stacks the limits of
# both devices it reads (4 KiB sectors from the origin here).
store_blocks_fit_the_origin() {
	local vol view
	amber_format "$disk4k" "$(dm_dev v-origin512)"
	klog_mark
	fails dmsetup create v-bad --table \
		"$(amber_table "$(dm_dev v-origin512)" "$disk4k" "$AMBER_CHUNK")"
	[ ! -e "$(dm_dev v-bad)" ]
	klog_has "the store's logical blocks are larger than the origin's"

	amber_format "$(dm_dev v-store512)" "$disk4k"
	dmsetup create v-4k --table "$(amber_table "$disk4k" "$(dm_dev v-store512)" "$AMBER_CHUNK")"
	dmsetup create v-4k-view --readonly --table "0 $(sectors "$disk4k") amber-view $(dm_dev v-4k)"
	vol=$(dm_dev v-4k)
	view=$(dm_dev v-4k-view)
	[ "$(blockdev --getss "$view")" = 4096 ]
	chunk_pattern_write "$vol" 0 8 before
	[ "$(amber_msg v-4k snap)" = 1 ]
	chunk_pattern_write "$vol" 0 4 after
	amber_expect v-4k copied 4
	chunk_pattern_verify "$view" 0 8 before
	amber_msg v-4k drop
	dmsetup remove v-4k-view
	dmsetup remove v-4k
}

ktap_print_header
ktap_set_plan 7
ktap_step "the view fails reads without a snapshot" view_fails_without_snapshot
ktap_step "overwriting every chunk leaves the view as it was" overwrites_leave_the_view
ktap_step "release frees slots and takes chunks out of the view" release_takes_chunks_out
ktap_step "drop ends the view and frees the store" drop_ends_the_view
ktap_step "discard and write zeroes keep the view" discard_and_zeroes_keep_the_view
ktap_step "REQ_NOWAIT writes get EAGAIN instead of waiting" nowait_writes_do_not_wait
ktap_step "a store's blocks are no larger than the origin's; the view stacks both" store_blocks_fit_the_origin
ktap_finished
