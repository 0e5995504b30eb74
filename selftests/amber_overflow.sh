#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A full store under both policies. overflow=invalidate gives the snapshot
# up at the first write that finds no slot; overflow=block makes that write
# wait for a release, and gives up after block_timeout_ms without one. The
# origin takes every write either way.
. "$(dirname "$0")/amber_lib.sh"

require_module dm-amber
slice o-origin1 origin 0 16
slice o-origin2 origin 16 16
slice o-store1 store 0 1
slice o-store2 store 1 1
chunks=$((16 * 2048 / AMBER_CHUNK))

# fill <name>: a known image, snapshot, then use every slot of the store.
fill() {
	chunk_pattern_write "$(dm_dev "$1")" 0 "$chunks" base
	amber_msg "$1" snap >/dev/null
	chunk_pattern_write "$(dm_dev "$1")" 0 "$(amber_field "$1" total)" full
	amber_expect "$1" used "$(amber_field "$1" total)"
	amber_expect "$1" state active
}

invalidate_policy() {
	local total
	fill o-inv
	total=$(amber_field o-inv total)
	chunk_pattern_write "$(dm_dev o-inv)" "$total" 2 beyond
	amber_expect o-inv state invalid
	amber_expect o-inv reason store_full
	amber_expect o-inv used 0
	chunk_unreadable "$(dm_dev o-inv-view)" 0
	chunk_pattern_verify "$(dm_dev o-inv)" 0 "$total" full
	chunk_pattern_verify "$(dm_dev o-inv)" "$total" 2 beyond
	klog_has "invalidated: store_full"
	amber_msg o-inv drop
	amber_expect o-inv state idle
}

block_policy() {
	local total pid
	fill o-blk
	total=$(amber_field o-blk total)
	[ "$total" -lt $((chunks - 2)) ]
	# One more chunk: the write waits for a slot ...
	chunk_pattern_write "$(dm_dev o-blk)" "$total" 1 waits &
	pid=$!
	sleep 1
	kill -0 "$pid"
	amber_expect o-blk state active
	# ... which a release frees.
	amber_msg o-blk release 0 1
	wait "$pid"
	amber_expect o-blk state active
	chunk_pattern_verify "$(dm_dev o-blk-view)" "$total" 1 base
	chunk_pattern_verify "$(dm_dev o-blk)" "$total" 1 waits
	# No release this time: after the timeout the snapshot is given up.
	chunk_pattern_write "$(dm_dev o-blk)" $((total + 1)) 1 late
	amber_expect o-blk state invalid
	amber_expect o-blk reason block_timeout
	chunk_pattern_verify "$(dm_dev o-blk)" $((total + 1)) 1 late
	amber_msg o-blk drop
}

amber_volume o-inv "$(dm_dev o-origin1)" "$(dm_dev o-store1)" overflow=invalidate
amber_volume o-blk "$(dm_dev o-origin2)" "$(dm_dev o-store2)" overflow=block block_timeout_ms=4000

ktap_print_header
ktap_set_plan 2
ktap_step "overflow=invalidate: the view is given up, no write lost" invalidate_policy
ktap_step "overflow=block: writes wait for a release, then time out" block_policy
ktap_finished
