#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Fault injection (the debug kernel; skipped where it is not built in).
# failslab makes the allocations of table loads and messages fail at
# random: each fails cleanly or works, and kmemleak (checked by the harness
# at the end) finds nothing. fail_make_request fails I/O to the store disk
# at random under a snapshot: the view is still the barrier's image or
# given up for the store's errors (and unreadable), and every origin write
# lands.
. "$(dirname "$0")/amber_lib.sh"

require_module dm-amber
failslab=/sys/kernel/debug/failslab
failreq=/sys/kernel/debug/fail_make_request
[ -d "$failslab" ] && [ -d "$failreq" ] || skip_all "no fault injection in this kernel"

slice s-origin origin 0 16
slice s-store store 0 16
origin=$(dm_dev s-origin)
store=$(dm_dev s-store)
amber_format "$store" "$origin"
chunks=$(($(sectors "$origin") / AMBER_CHUNK))

# failing <command...>: run a command whose slab allocations fail at random.
failing() {
	(echo 1 >/proc/self/make-it-fail && exec "$@")
}

set_failslab() {
	echo Y >"$failslab/task-filter"
	echo N >"$failslab/ignore-gfp-wait"
	echo 0 >"$failslab/verbose"
	echo 1 >"$failslab/interval"
	echo -1 >"$failslab/times"
	echo "$1" >"$failslab/probability"
}

allocation_failures_are_clean() {
	local i made=0
	set_failslab 3
	for i in $(seq 1 60); do
		if failing dmsetup create s-vol --table "$(amber_table "$origin" "$store" "$AMBER_CHUNK")" 2>/dev/null; then
			made=$((made + 1))
			failing dmsetup message s-vol 0 snap >/dev/null 2>&1 || true
			failing dmsetup message s-vol 0 drop >/dev/null 2>&1 || true
			dmsetup message s-vol 0 drop >/dev/null 2>&1 || true
			amber_expect s-vol state idle
		fi
		dm_remove s-vol
		! dmsetup info s-vol >/dev/null 2>&1 || dmsetup remove s-vol
	done
	set_failslab 0
	ktap_print_msg "60 table loads under failslab, $made made"
}

# after_store_faults: the snapshot is still active with the view the image
# of its barrier, or given up for the store's errors with the view failing
# its reads; nothing else.
after_store_faults() {
	local state reason
	state=$(amber_field s-vol state)
	reason=$(amber_field s-vol reason)
	ktap_print_msg "after random store errors: $state $reason, cbt $(amber_field s-vol cbt)"
	case $state in
	active) chunk_pattern_verify "$(dm_dev s-vol-view)" 0 "$chunks" before ;;
	invalid)
		[ "$reason" = store_io_error ] || { echo "# given up for $reason"; return 1; }
		chunk_unreadable "$(dm_dev s-vol-view)" 0
		;;
	*) echo "# state $state"; return 1 ;;
	esac
}

request_failures_lose_no_write() {
	local disk
	dm_create s-vol "$(amber_table "$origin" "$store" "$AMBER_CHUNK")"
	dm_create s-vol-view "0 $(sectors "$origin") amber-view $(dm_dev s-vol)" --readonly
	chunk_pattern_write "$(dm_dev s-vol)" 0 "$chunks" before
	amber_msg s-vol snap >/dev/null
	disk=$(basename "$(scratch_disk store)")
	echo 0 >"$failreq/verbose"
	echo -1 >"$failreq/times"
	echo 10 >"$failreq/probability"
	echo 1 >"/sys/block/$disk/make-it-fail"
	chunk_pattern_write "$(dm_dev s-vol)" 0 "$chunks" during
	echo 0 >"/sys/block/$disk/make-it-fail"
	echo 0 >"$failreq/probability"
	after_store_faults
	chunk_pattern_verify "$(dm_dev s-vol)" 0 "$chunks" during
	amber_msg s-vol drop
	dm_remove s-vol-view
	dm_remove s-vol
}

# The volume of a failed step, removed before the slices under it.
defer dm_remove s-vol
defer dm_remove s-vol-view
ktap_print_header
ktap_set_plan 2
ktap_step "allocation failures in table loads and messages are clean" allocation_failures_are_clean
ktap_step "random store I/O errors never lose an origin write" request_failures_lose_no_write
ktap_finished
