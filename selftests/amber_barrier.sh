#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The commit barrier under load: every write acknowledged before it is in
# the view and none submitted after it (seqwriter checks the prefix of every
# writer), atomically over two volumes (a dependent write on the second
# volume is never in a view without its cause on the first), and a barrier
# that cannot drain gives up cleanly within its bound.
. "$(dirname "$0")/amber_lib.sh"

require_module dm-amber

one_volume_prefix() {
	seqwriter -t 4 -n 20 -i 150 -b 256 b-one
}

two_volumes_atomic() {
	seqwriter -t 4 -n 20 -i 150 -b 256 b-one b-two
}

# The check has teeth: two barriers 300 ms apart instead of one tear the
# pair (dependent writes complete in the gap even on the debug kernel), and
# seqwriter must say so (exit 1).
torn_pair_is_caught() {
	local rc=0
	seqwriter -t 4 -n 5 -i 150 -b 256 -s 300 b-one b-two >/tmp/torn.log || rc=$?
	grep -q "dependent write without its cause" /tmp/torn.log
	[ "$rc" -eq 1 ]
}

# The prefix check has teeth too: the live volume, read in the view's place
# while the writers go on, holds records submitted after the barrier.
live_volume_is_caught() {
	local rc=0
	seqwriter -t 4 -n 3 -i 150 -b 256 -l b-one >/tmp/live.log || rc=$?
	grep -q "submitted after\|not a prefix" /tmp/live.log ||
		{ sed 's/^/# /' /tmp/live.log; return 1; }
	[ "$rc" -eq 1 ]
}

# Writes that take 6 s each cannot drain within 300 ms: the barrier fails,
# nothing is cut, and the writes complete.
undrainable_barrier_gives_up() {
	[ -e "$(dm_dev b-three)" ] || skip "dm-delay is not available"
	chunk_pattern_write "$(dm_dev b-three)" 0 1 warm
	chunk_pattern_write "$(dm_dev b-three)" 0 1 slow &
	wait_until 20 writing b-three
	fails amber_msg b-three snap
	klog_has "did not drain in time"
	amber_expect b-three state idle
	amber_expect b-three epoch 0
	wait $!
	chunk_pattern_verify "$(dm_dev b-three)" 0 1 slow
}

# stat <stats answer> <name>: a field of the stats message ("gate" gives
# "<n>/<max us>/<total us>").
stat() {
	tr ' ' '\n' <<<"$1" | sed -n "s|^$2=||p"
}

# The module times a barrier's steps and the writes it held (the stats
# message, which make bench reads): under 4 KiB random writes at iodepth 8
# over the first half of the volume every step is timed, the gates stay
# closed at least as long as the steps they cover, writes wait at the gate
# and for their copy, and each stage's longest wait is within its total.
# The regions fio wrote took the new epoch's write intent before the gates
# closed: the one write that waits for intent is a write outside them, and
# its chunk is copied meanwhile.
barrier_stats_time_the_writes() {
	local st f n max total fpid
	# An epoch that has written nothing yet: fio's regions are the hot ones.
	amber_msg b-one snap >/dev/null
	amber_msg b-one drop
	fio --name=stats --filename="$(dm_dev b-one)" --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=4k --iodepth=8 --size=32M --runtime=5 --time_based \
		--output=/dev/null &
	fpid=$!
	# fio starts slowly under TCG: the barrier must find its writes.
	wait_until 30 writing b-one
	sleep 1
	amber_msg b-one snap >/dev/null
	dd if=/dev/urandom of="$(dm_dev b-one)" bs=4k seek=$((48 * 256)) count=1 \
		oflag=direct conv=notrunc status=none
	sleep 1
	st=$(amber_msg b-one stats)
	wait "$fpid"
	amber_msg b-one drop
	ktap_print_msg "stats: $st"
	for f in prepare drain flush_closed record closed; do
		[[ $(stat "$st" $f) =~ ^[0-9]+$ ]] || { echo "# no step $f"; return 1; }
	done
	[ "$(stat "$st" closed)" -gt 0 ]
	[ "$(stat "$st" closed)" -ge $(($(stat "$st" drain) + $(stat "$st" flush_closed) + \
		$(stat "$st" record) - 3)) ]
	for f in gate intent copy readers slot; do
		IFS=/ read -r n max total <<<"$(stat "$st" $f)"
		[[ $n =~ ^[0-9]+$ && $max =~ ^[0-9]+$ && $total =~ ^[0-9]+$ ]] ||
			{ echo "# stage $f: '$(stat "$st" $f)'"; return 1; }
		[ "$max" -le "$total" ] || { echo "# stage $f: longest $max > total $total"; return 1; }
		case $f in
		gate|copy) [ "$n" -gt 0 ] || { echo "# no write waited at $f"; return 1; } ;;
		esac
	done
	IFS=/ read -r n max total <<<"$(stat "$st" intent)"
	[ "$n" -eq 1 ] || { echo "# $n writes waited for intent, not just the one outside fio's regions"; return 1; }
	[[ $(stat "$st" ahead) =~ ^[1-9][0-9]*$ ]] ||
		{ echo "# no copy started ahead of its write: '$(stat "$st" ahead)'"; return 1; }
	# The gate held its writes about as long as it was closed.
	IFS=/ read -r n max total <<<"$(stat "$st" gate)"
	[ "$max" -le "$(stat "$st" closed)" ]
}

# A write that arrives while a barrier's gates are closed has its chunk
# copied before they open (issue 19): the origin's flushes take 4 s here,
# so the gates stay closed that long after the drain, and the write then
# finds its chunk copied and does not wait for the copy. Its region was
# written in the last epoch, so its write intent was taken ahead of the
# gates too. The view keeps the chunk's old data, the volume has the new.
frozen() {
	[ "$(amber_field "$1" state)" = frozen ]
}

store_empty() {
	[ "$(amber_field "$1" used)" = 0 ]
}

gate_writes_are_copied_early() {
	local st n max total spid wpid
	[ -e "$(dm_dev b-four)" ] || skip "dm-delay is not available"
	chunk_pattern_write "$(dm_dev b-four)" 0 3 old
	amber_msg b-four snap >/dev/null &
	spid=$!
	wait_until 30 frozen b-four
	chunk_pattern_write "$(dm_dev b-four)" 2 1 new &
	wpid=$!
	wait "$spid"
	wait "$wpid"
	st=$(amber_msg b-four stats)
	ktap_print_msg "stats: $st"
	amber_expect b-four state active
	chunk_pattern_verify "$(dm_dev b-four-view)" 0 3 old
	chunk_pattern_verify "$(dm_dev b-four)" 2 1 new
	amber_msg b-four drop
	IFS=/ read -r n max total <<<"$(stat "$st" gate)"
	[ "$n" -ge 1 ] || { echo "# the write did not wait at the gate: $st"; return 1; }
	[[ $(stat "$st" ahead) =~ ^[1-9][0-9]*$ ]] ||
		{ echo "# no copy started while the gates were closed: '$(stat "$st" ahead)'"; return 1; }
	IFS=/ read -r n max total <<<"$(stat "$st" copy)"
	[ "$n" -eq 0 ] || { echo "# $n writes waited for their copy after the gates opened"; return 1; }
}

# The same with a store that fails: the record fails, nothing is cut, the
# early copy (which fails too) ends with the snapshot that never began (its
# slot comes back), the held write lands, and once the store is back the
# next barrier cuts the number that failed, with the right image. The
# store fails before the snap, not while the gates are closed: on the
# debug kernel a table swap can outlast the closed flush.
failed_record_ends_early_copies() {
	local spid wpid epoch
	[ -e "$(dm_dev b-four)" ] || skip "dm-delay is not available"
	epoch=$(amber_field b-four epoch)
	chunk_pattern_write "$(dm_dev b-four)" 0 3 old
	dmsetup load b-s4 --table "0 $((16 * 2048)) error"
	dmsetup resume b-s4
	amber_msg b-four snap >/dev/null &
	spid=$!
	wait_until 30 frozen b-four
	chunk_pattern_write "$(dm_dev b-four)" 2 1 new &
	wpid=$!
	fails wait "$spid"
	wait "$wpid"
	klog_has "the store did not take epoch $((epoch + 1))"
	amber_expect b-four state idle
	amber_expect b-four epoch "$epoch"
	wait_until 20 store_empty b-four
	slice_back b-s4 store 80 16
	chunk_pattern_verify "$(dm_dev b-four)" 2 1 new
	[ "$(amber_msg b-four snap)" = $((epoch + 1)) ]
	chunk_pattern_verify "$(dm_dev b-four-view)" 0 2 old
	chunk_pattern_verify "$(dm_dev b-four-view)" 2 1 new
	amber_msg b-four drop
}

# slice_back <name> <disk> <start MiB> <MiB>: a slice's linear table again.
slice_back() {
	dmsetup load "$1" --table "0 $(($4 * 2048)) linear $(scratch_disk "$2") $(($3 * 2048))"
	dmsetup resume "$1"
}

slice b-o1 origin 0 64
slice b-s1 store 0 64
slice b-o2 origin2 0 64
slice b-s2 store2 0 64
slice b-o3 origin 64 16
slice b-s3 store 64 16
slice b-o4 origin 80 16
slice b-s4 store 80 16
scratch_wipe "$(dm_dev b-o1)"
scratch_wipe "$(dm_dev b-o2)"
amber_volume b-one "$(dm_dev b-o1)" "$(dm_dev b-s1)"
amber_volume b-two "$(dm_dev b-o2)" "$(dm_dev b-s2)"
if modprobe dm-delay 2>/dev/null; then
	# Writes wait 6 s, reads and flushes none: the barrier's first flush
	# must not outwait the slow write it is to find in flight, and its
	# prepare step (the next intent written to the store) must end well
	# before the write does, even on the debug kernel.
	dm_create b-slow "0 $(sectors "$(dm_dev b-o3)") delay $(dm_dev b-o3) 0 0 $(dm_dev b-o3) 0 6000 $(dm_dev b-o3) 0 0"
	amber_format "$(dm_dev b-s3)" "$(dm_dev b-slow)"
	dm_create b-three "$(amber_table "$(dm_dev b-slow)" "$(dm_dev b-s3)" "$AMBER_CHUNK" drain_timeout_ms=300)"
	# Flushes wait 4 s, reads and writes none: long enough for a poll of
	# the status to see the gates closed, even on the debug kernel.
	dm_create b-flush "0 $(sectors "$(dm_dev b-o4)") delay $(dm_dev b-o4) 0 0 $(dm_dev b-o4) 0 0 $(dm_dev b-o4) 0 4000"
	amber_volume b-four "$(dm_dev b-flush)" "$(dm_dev b-s4)"
fi

ktap_print_header
ktap_set_plan 8
ktap_step "one volume: the view is exactly the acknowledged prefix" one_volume_prefix
ktap_step "the live volume in the view's place fails the prefix check" live_volume_is_caught
ktap_step "two volumes: one atomic barrier, dependent writes kept" two_volumes_atomic
ktap_step "two separate barriers tear the pair, and that is caught" torn_pair_is_caught
ktap_step "a barrier that cannot drain gives up cleanly" undrainable_barrier_gives_up
ktap_step "the module times the barrier's steps and the writes it held" barrier_stats_time_the_writes
ktap_step "a write held at the closed gates has its chunk copied before they open" gate_writes_are_copied_early
ktap_step "a barrier whose record fails ends its early copies" failed_record_ends_early_copies
ktap_finished
