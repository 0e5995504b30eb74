#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Fault injection (the debug kernel; skipped where it is not built in).
# failslab makes the allocations of table loads and messages fail at
# random: each fails cleanly or works, and kmemleak (checked by the harness
# at the end) finds nothing. fail_make_request fails I/O to the store disk
# at random under a snapshot: the view is still the barrier's image or
# given up for the store's errors (and unreadable), and every origin write
# lands. failslab's stack filter aims the failures at dm-amber's own
# allocations, and then at one allocation at a time: the
# change maps at a resume, the next map at a barrier, the released bitmap
# at a first release; each fails alone, cleanly, and the next try works.
# Last, the copy pool starved under more first writes than it keeps.
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

# set_failslab <percent> [<interval>]: the allocations of failing commands
# fail with that probability; with an interval n, only every n-th is drawn.
# ->times counts the failures down from a million (see injected).
set_failslab() {
	echo Y >"$failslab/task-filter"
	echo N >"$failslab/ignore-gfp-wait"
	echo 0 >"$failslab/verbose"
	echo "${2:-1}" >"$failslab/interval"
	echo 1000000 >"$failslab/times"
	echo "$1" >"$failslab/probability"
}

# injected: how many failures failslab made since set_failslab or aim.
injected() {
	echo $((1000000 - $(cat "$failslab/times")))
}

# faults_off: no injected fault of any kind, whatever a step left behind.
# Every step starts with it and runs it at its end (an EXIT trap in the
# step's subshell), so a failed step cannot aim the next one's faults.
faults_off() {
	echo 0 >"$failslab/probability"
	echo 0 >"$failreq/probability"
	echo 0 >"/sys/block/$(basename "$(scratch_disk store)")/make-it-fail"
	[ ! -e "$failslab/require-start" ] || aim_range 0 0xffffffffffffffff
	echo N >"$failslab/cache-filter"
	echo 0 >/sys/kernel/slab/amber_copy/failslab 2>/dev/null || true
}

# fault_step <function>: run a step's function with no fault before or
# after it, and none of the volumes a failed step before left behind.
fault_step() {
	faults_off
	trap faults_off EXIT
	dm_remove s-vol-view
	dm_remove s-vol
	"$1"
}

# aim_range <start> <end>: failslab fails only allocations with an address
# in [start, end) on the call stack (0 0xffffffffffffffff: any).
aim_range() {
	echo "$1" >"$failslab/require-start"
	echo "$2" >"$failslab/require-end"
}

# Random failures of dm-amber's own allocations (failslab's stack filter
# aimed at the module) in table loads, resumes and messages. A load makes
# some 300 allocations (kcopyd's page reserve alone 256), so they fail at
# 1 in 400 (1 % of every 4th), and about half the loads are made; the snap
# and drop that follow, with a few each, at 1 in 4.
allocation_failures_are_clean() {
	local i made=0 snapped=0
	need_stack_filter
	aim_module
	for i in $(seq 1 60); do
		set_failslab 1 4
		if failing dmsetup create s-vol --table "$(amber_table "$origin" "$store" "$AMBER_CHUNK")" 2>/dev/null; then
			made=$((made + 1))
			set_failslab 25
			if failing dmsetup message s-vol 0 snap >/dev/null 2>&1; then
				snapped=$((snapped + 1))
			fi
			failing dmsetup message s-vol 0 drop >/dev/null 2>&1 || true
			dmsetup message s-vol 0 drop >/dev/null 2>&1 || true
			amber_expect s-vol state idle
		fi
		dm_remove s-vol
		! dmsetup info s-vol >/dev/null 2>&1 || dmsetup remove s-vol
	done
	set_failslab 0
	ktap_print_msg "60 table loads under failslab, $made made, $snapped snaps taken"
	# Both outcomes seen, or the failures did not reach the module.
	[ "$made" -gt 0 ] && [ "$made" -lt 60 ] ||
		{ echo "# $made of 60 loads made: the failures missed dm-amber"; return 1; }
}

need_stack_filter() {
	[ -e "$failslab/require-start" ] ||
		skip "failslab has no stack filter (FAULT_INJECTION_STACKTRACE_FILTER)"
}

# aim_module: failslab fails only allocations with dm-amber's code on the
# call stack: from its .text to the next of its sections.
aim_module() {
	local text end
	text=$(cat /sys/module/dm_amber/sections/.text)
	end=$(cat /sys/module/dm_amber/sections/.* | sort | awk -v t="$text" '$1 > t { print; exit }')
	[ -n "$end" ] || { echo "# no section of dm_amber after its .text"; return 1; }
	aim_range "$text" "$end"
}

# aim <function>: from now on failslab fails only the allocations made
# with <function> of dm-amber on the call stack (its text, from
# /proc/kallsyms, up to the module's next symbol), and counts its failures
# afresh (injected); "aim" alone: any allocation again.
aim() {
	local range=(0 0xffffffffffffffff)
	if [ $# = 1 ]; then
		read -ra range < <(awk '$4 == "[dm_amber]" && $2 ~ /^[tT]$/ { print $1, $3 }' /proc/kallsyms |
			sort | awk -v f="$1" 'at { print "0x" $1; exit } $2 == f { printf "0x%s ", $1; at = 1 }') || true
		[ "${#range[@]}" = 2 ] && [ "${range[0]}" != 0x0000000000000000 ] ||
			{ echo "# no address for $1 of dm_amber in /proc/kallsyms"; return 1; }
	fi
	aim_range "${range[0]}" "${range[1]}"
	[ $# = 0 ] || echo 1000000 >"$failslab/times"
}

# no_memory_at_resume: the change maps cannot be allocated at a resume. The
# resume succeeds, tracking is invalid until the next barrier, and writes
# pass untracked; the next barrier starts exact maps again.
no_memory_at_resume() {
	local epoch
	chunk_pattern_write "$(dm_dev s-vol)" 0 "$chunks" one
	epoch=$(amber_field s-vol epoch)
	dmsetup suspend s-vol
	aim amber_cbt_resume
	failing dmsetup resume s-vol
	aim
	[ "$(injected)" -gt 0 ] || { echo "# no allocation failed in the resume"; return 1; }
	klog_has "no memory for the change maps at resume: tracking invalid"
	amber_expect s-vol cbt invalid
	chunk_pattern_write "$(dm_dev s-vol)" 0 "$chunks" two
	chunk_pattern_verify "$(dm_dev s-vol)" 0 "$chunks" two
	amber_msg s-vol snap >/dev/null
	amber_expect s-vol epoch $((epoch + 1))
	amber_expect s-vol cbt exact
	amber_msg s-vol drop
}

# no_memory_at_barrier: the next epoch's map cannot be allocated. The snap
# fails naming it, nothing is cut, writes pass, and the next snap works.
no_memory_at_barrier() {
	local epoch
	epoch=$(amber_field s-vol epoch)
	aim amber_cbt_prepare_cut
	fails failing dmsetup message s-vol 0 snap
	aim
	[ "$(injected)" -gt 0 ] || { echo "# no allocation failed in the snap"; return 1; }
	klog_has "snap: cannot allocate the next change map"
	amber_expect s-vol epoch "$epoch"
	amber_expect s-vol state idle
	chunk_pattern_write "$(dm_dev s-vol)" 0 "$chunks" three
	amber_msg s-vol snap >/dev/null
	amber_expect s-vol epoch $((epoch + 1))
	# A few first writes: the store has fewer slots than the volume chunks.
	chunk_pattern_write "$(dm_dev s-vol)" 0 4 four
	amber_expect s-vol copied 4
	chunk_pattern_verify "$(dm_dev s-vol-view)" 0 "$chunks" three
}

# no_memory_at_first_release: the released chunks' bitmap cannot be
# allocated. The release fails with ENOMEM and changes nothing: the chunk
# still reads frozen in the view; a second release works.
no_memory_at_first_release() {
	local out
	aim amber_cow_release
	out=$(failing ctlabuse release s-vol 0 1 || true)
	aim
	[ "$(injected)" -gt 0 ] || { echo "# no allocation failed in the release"; return 1; }
	[ "$out" = "error Cannot allocate memory" ] || { echo "# release said: $out"; return 1; }
	amber_expect s-vol released 0
	chunk_pattern_verify "$(dm_dev s-vol-view)" 0 "$chunks" three
	ctlabuse release s-vol 0 1
	amber_expect s-vol released 1
	chunk_unreadable "$(dm_dev s-vol-view)" 0
	chunk_pattern_verify "$(dm_dev s-vol-view)" 1 $((chunks - 1)) three
	amber_msg s-vol drop
}

# One allocation at a time, aimed at with failslab's stack filter: the
# three that a live volume makes after its table load.
aimed_allocation_failures() {
	need_stack_filter
	amber_format "$store" "$origin"	# step 2 may have left it unclean
	dm_create s-vol "$(amber_table "$origin" "$store" "$AMBER_CHUNK")"
	dm_create s-vol-view "0 $(sectors "$origin") amber-view $(dm_dev s-vol)" --readonly
	set_failslab 100
	no_memory_at_resume
	no_memory_at_barrier
	no_memory_at_first_release
	set_failslab 0
	dm_remove s-vol-view
	dm_remove s-vol
}

# More first writes at once than the copy pool keeps (64), with every
# allocation from its cache failing: the writes past the 64th wait for a
# copy to finish and give its element back, and the copies do finish. The
# write path once waited in the pool holding cow_lock, which a finishing
# copy takes: the writes hung (7daf508 fixed it; this step fails before).
starved_copy_pool() {
	local slab=/sys/kernel/slab/amber_copy vol failed
	[ -e "$slab/failslab" ] || skip "no $slab/failslab"
	amber_format "$store" "$origin"
	dm_create s-vol "$(amber_table "$origin" "$store" "$AMBER_CHUNK")"
	dm_create s-vol-view "0 $(sectors "$origin") amber-view $(dm_dev s-vol)" --readonly
	vol=$(dm_dev s-vol)
	chunk_pattern_write "$vol" 0 128 before
	amber_msg s-vol snap >/dev/null
	# Merged caches refuse the flag: the harness boots with slab_nomerge.
	echo 1 >"$slab/failslab"
	echo Y >"$failslab/cache-filter"
	set_failslab 100
	echo N >"$failslab/task-filter"	# the copies' writes, whoever sends them
	# 4 KiB into each of chunks 0..127, all 128 submitted at once.
	timeout 100 fio --name=starve --filename="$vol" --ioengine=libaio \
		--direct=1 --rw=write --bs=4k --zonemode=strided --zonesize=4k \
		--zoneskip=$((AMBER_CHUNK * 512 - 4096)) --size=$((128 * AMBER_CHUNK * 512)) \
		--io_size=512k --iodepth=128 --iodepth_batch_submit=128 \
		--verify=crc32c --do_verify=1 --output=/tmp/starve.log ||
		{ echo "# fio did not finish"; cat /tmp/starve.log; return 1; }
	echo 0 >"$failslab/probability"
	# mempool_alloc() asks with __GFP_NOWARN: failslab logs nothing. Each
	# first write asks the cache once before the pool's reserve, and once
	# more before it waits when the reserve is empty.
	failed=$(injected)
	ktap_print_msg "$failed allocations from the copy cache failed: $((failed - 128)) waits for the pool"
	[ "$failed" -gt 128 ] || { echo "# the copy pool never ran empty"; return 1; }
	amber_expect s-vol state active
	amber_expect s-vol copied 128
	chunk_pattern_verify "$(dm_dev s-vol-view)" 0 128 before
	amber_msg s-vol drop
	dm_remove s-vol-view
	dm_remove s-vol
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
ktap_set_plan 4
ktap_step "allocation failures in table loads and messages are clean" fault_step allocation_failures_are_clean
ktap_step "random store I/O errors never lose an origin write" fault_step request_failures_lose_no_write
ktap_step "no memory at a resume, a barrier or a first release: each fails alone and cleanly" fault_step aimed_allocation_failures
ktap_step "first writes past the copy pool wait for copies, which finish" fault_step starved_copy_pool
ktap_finished
