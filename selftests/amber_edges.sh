#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# dm-amber at the edges of a volume's life: a view whose volume is removed
# and whose device number is taken by another; a store that fails across a
# suspend and resume under writes; a barrier on a table that is loaded but
# not resumed; a store that refuses the barrier's superblock write; and the
# barrier's flush of the origin, seen in a dm-log-writes log.
. "$(dirname "$0")/amber_lib.sh"

require_module dm-amber
require_module dm-log-writes
require_module dm-delay

# set_slice <name> error|linear <disk role> <offset MiB> <size MiB>: give
# the slice made by slice() dm-error's table, or its own back.
set_slice() {
	local table="0 $(($5 * 2048)) linear $(scratch_disk "$3") $(($4 * 2048))"
	[ "$2" = linear ] || table="0 $(($5 * 2048)) error"
	dmsetup load "$1" --table "$table"
	dmsetup resume "$1"
}

# snap_gives <name> <what ctlabuse snap must print>
snap_gives() {
	local got
	got=$(ctlabuse snap "$1") || true
	[ "$got" = "$2" ] || { echo "# snap of $1 gave '$got', expected '$2'"; return 1; }
}

minor_of() {
	dmsetup info -c --noheadings -o minor "$1"
}

slice e-a-origin origin 0 8
slice e-a-store store 0 8
slice e-b-origin origin 8 8
slice e-b-store store 8 8
slice e-f-store store 16 16
slice e-f-origin origin 16 16
slice e-n-origin origin 32 8
slice e-n-store store 32 8
slice e-c-store store 40 8
slice e-c-origin origin 40 8
slice e-lw-data origin 48 8
slice e-lw-log origin2 0 64
slice e-lw-store store 48 8
slice e-r-origin origin 64 8
slice e-h-origin origin 96 8
slice e-h-store store 96 8
slice e-p-origin origin 104 8
slice e-p-store0 store 104 8

# dm reuses the lowest free minor: once A is gone, B takes A's number, and
# A's view, which finds its volume by number, must not serve B's snapshot.
view_never_reads_another_volume() {
	local a_minor
	amber_volume e-a "$(dm_dev e-a-origin)" "$(dm_dev e-a-store)"
	chunk_pattern_write "$(dm_dev e-a)" 0 4 AAAA
	[ "$(amber_msg e-a snap)" = 1 ]
	chunk_pattern_verify "$(dm_dev e-a-view)" 0 4 AAAA
	a_minor=$(minor_of e-a)
	dm_remove e-a
	[ "$(dmsetup status e-a-view | awk '{ print $4 }')" = gone ]

	chunk_pattern_write "$(dm_dev e-b-origin)" 0 4 BBBB
	amber_format "$(dm_dev e-b-store)" "$(dm_dev e-b-origin)"
	dm_create e-b "$(amber_table "$(dm_dev e-b-origin)" "$(dm_dev e-b-store)" "$AMBER_CHUNK")"
	[ "$(minor_of e-b)" = "$a_minor" ] ||
		{ echo "# B took minor $(minor_of e-b), not A's $a_minor: nothing tested"; return 1; }
	[ "$(amber_msg e-b snap)" = 1 ]
	chunk_unreadable "$(dm_dev e-a-view)" 0
	[ "$(dmsetup status e-a-view | awk '{ print $4 }')" = gone ]
	amber_msg e-b drop
	dm_remove e-b
	dm_remove e-a-view
}

# Verified 4 KiB random writes on <dev> for <seconds>, in the background.
fio_writes() {
	fio --name=edge --filename="$1" --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=4k --iodepth=4 --size=8M --runtime="$2" \
		--time_based --verify=crc32c --verify_backlog=32 \
		--output=/tmp/edge-fio.log >/dev/null &
	fio_pid=$!
}

# After a failed step: the store back, e-f resumed and gone.
f_cleanup() {
	set_slice e-f-store linear store 16 16
	[ -e "$(dm_dev e-f)" ] || return 0
	dmsetup resume e-f
	dm_remove e-f
}

# Rule: no store fault ever holds or fails the origin.
store_fault_never_holds_the_origin() {
	local before
	amber_format "$(dm_dev e-f-store)" "$(dm_dev e-f-origin)"
	dm_create e-f "$(amber_table "$(dm_dev e-f-origin)" "$(dm_dev e-f-store)" "$AMBER_CHUNK")"
	[ "$(amber_msg e-f snap)" = 1 ]
	fio_writes "$(dm_dev e-f)" 8
	sleep 2
	dmsetup suspend e-f
	set_slice e-f-store error store 16 16
	timeout 20 dmsetup resume e-f
	dmsetup info e-f | grep -q '^State: *ACTIVE'
	before=$(amber_field e-f waited)
	wait "$fio_pid" || { cat /tmp/edge-fio.log; return 1; }
	amber_expect e-f state invalid
	amber_expect e-f reason store_io_error
	amber_expect e-f cbt invalid
	klog_has "the store failed at resume"
	# The origin still takes writes, and the view is given up.
	chunk_pattern_write "$(dm_dev e-f)" 0 2 after
	chunk_pattern_verify "$(dm_dev e-f)" 0 2 after
	[ "$(amber_field e-f waited)" = "$before" ]
	set_slice e-f-store linear store 16 16
	amber_msg e-f drop
	dm_remove e-f
}

# A table that is loaded but not resumed has not read the store: a barrier
# there would cut an epoch the store already used.
barrier_needs_a_live_table() {
	amber_format "$(dm_dev e-n-store)" "$(dm_dev e-n-origin)"
	dm_create e-n "$(amber_table "$(dm_dev e-n-origin)" "$(dm_dev e-n-store)" "$AMBER_CHUNK")"
	[ "$(amber_msg e-n snap)" = 1 ]
	amber_msg e-n drop
	[ "$(amber_msg e-n snap)" = 2 ]
	amber_msg e-n drop
	dm_remove e-n
	dmsetup create e-n --notable
	dmsetup mknodes e-n
	dmsetup load e-n --table "$(amber_table "$(dm_dev e-n-origin)" "$(dm_dev e-n-store)" "$AMBER_CHUNK")"
	snap_gives e-n "error Resource temporarily unavailable"
	klog_has "the volume is suspended or its table is not resumed"
	dmsetup resume e-n
	snap_gives e-n 3
	amber_msg e-n drop
	dmsetup suspend e-n
	snap_gives e-n "error Resource temporarily unavailable"
	dmsetup resume e-n
	dm_remove e-n
}

# The barrier's superblock write fails: the snap fails, nothing is cut, and
# the next one (store back) takes the next number, which the store keeps.
failed_cut_cuts_nothing() {
	local origin store
	origin=$(dm_dev e-c-origin) store=$(dm_dev e-c-store)
	amber_format "$store" "$origin"
	dm_create e-c "$(amber_table "$origin" "$store" "$AMBER_CHUNK")"
	[ "$(amber_msg e-c snap)" = 1 ]
	amber_msg e-c drop
	set_slice e-c-store error store 40 8
	fails amber_msg e-c snap
	klog_has "the store did not take epoch 2"
	amber_expect e-c state idle
	amber_expect e-c epoch 1
	set_slice e-c-store linear store 40 8
	[ "$(amber_msg e-c snap)" = 2 ]
	amber_msg e-c drop
	dm_remove e-c
	dm_create e-c "$(amber_table "$origin" "$store" "$AMBER_CHUNK")"
	amber_expect e-c epoch 2
	[ "$(amber_msg e-c snap)" = 3 ]
	amber_msg e-c drop
	dm_remove e-c
}

# Writes acknowledged before the barrier may sit in the origin's volatile
# cache: between the marks around the snap, the log must hold a flush.
barrier_flushes_the_origin() {
	local log entries=/tmp/edge-lw.entries
	log=$(dm_dev e-lw-log)
	scratch_wipe "$log"
	dm_create e-lw "0 $(sectors "$(dm_dev e-lw-data)") log-writes $(dm_dev e-lw-data) $log"
	amber_format "$(dm_dev e-lw-store)" "$(dm_dev e-lw)"
	dm_create e-lw-vol "$(amber_table "$(dm_dev e-lw)" "$(dm_dev e-lw-store)" "$AMBER_CHUNK")"
	chunk_pattern_write "$(dm_dev e-lw-vol)" 0 4 unflushed
	dmsetup message e-lw 0 mark before-snap
	[ "$(amber_msg e-lw-vol snap)" = 1 ]
	dmsetup message e-lw 0 mark after-snap
	amber_msg e-lw-vol drop
	dm_remove e-lw-vol
	dm_remove e-lw
	logreplay list "$log" >"$entries"
	awk '$5 == "before-snap" { on = 1; next }
	     $5 == "after-snap" { exit !(on && flushed) }
	     on && $2 ~ /F/ { flushed = 1 }
	     END { if (!on) exit 1 }' "$entries" ||
		{ echo "# no flush between the marks:"; grep -A3 before-snap "$entries" | sed 's/^/# /'; return 1; }
}

# delayed_reads <name> <disk role> <offset sectors> <sectors> <first> <count>
# [<ms>]: a dm device on the disk's [offset, offset + sectors) whose reads
# of sectors [first, first + count) wait <ms> (4000) in dm-delay;
# everything else, and every write, passes at once.
delayed_reads() {
	local name=$1 disk off=$3 len=$4 first=$5 count=$6 ms=${7:-4000}
	disk=$(scratch_disk "$2")
	dm_create "$name" "0 $first linear $disk $off
$first $count delay $disk $((off + first)) $ms $disk $((off + first)) 0
$((first + count)) $((len - first - count)) linear $disk $((off + first + count))"
}

# read_chunk_bg <dev> <chunk> <file>: read one chunk in the background into
# <file>, its dd status into <file>.rc.
read_chunk_bg() {
	{
		local rc=0
		dd if="$1" of="$3" bs=$((AMBER_CHUNK * 512)) skip="$2" count=1 \
			iflag=direct status=none || rc=$?
		echo "$rc" >"$3.rc"
	} &
}

# A view read already at the origin when the snapshot is invalidated must
# fail, or return frozen data: the writes that pass once it is invalid would
# overtake it. The read of chunk 10 waits in dm-delay meanwhile.
view_read_across_invalidation() {
	local vol view out=/tmp/edge-read
	rm -f "$out" "$out.rc"
	amber_format "$(dm_dev e-d-store)" "$(dm_dev e-d-dly)"
	dmsetup create e-d --table "$(amber_table "$(dm_dev e-d-dly)" "$(dm_dev e-d-store)" \
		"$AMBER_CHUNK" overflow=invalidate)"
	dmsetup create e-d-view --readonly --table "0 $(sectors "$(dm_dev e-d-dly)") amber-view $(dm_dev e-d)"
	vol=$(dm_dev e-d) view=$(dm_dev e-d-view)
	amber_expect e-d total 2
	chunk_pattern_write "$vol" 0 16 before
	[ "$(amber_msg e-d snap)" = 1 ]
	read_chunk_bg "$view" 10 "$out"
	sleep 1
	chunk_pattern_write "$vol" 0 3 after	# the third finds the store full
	amber_expect e-d reason store_full
	chunk_pattern_write "$vol" 10 1 after
	wait
	if [ "$(cat "$out.rc")" = 0 ]; then
		cmp "$out" <(chunk_pattern before 10 1) ||
			{ echo "# the view returned data written after the barrier"; return 1; }
	fi
	amber_msg e-d drop
	dmsetup remove e-d-view
	dmsetup remove e-d
}

# A view read already at the origin when the table is reloaded returns the
# barrier's data however long it takes (here 8 s in dm-delay, against a
# drain_timeout_ms of 200): the new table shares the snapshot, and its first
# write to the chunk, which copies it, never overtakes the read. Nor does
# the reload wait for the read: the read holds the snapshot, not the old
# table, which dm destroys as the resume returns.
view_read_across_reload() {
	local vol view t out=/tmp/edge-reload start ms
	rm -f "$out" "$out.rc"
	amber_format "$(dm_dev e-d-store)" "$(dm_dev e-d-dly)"
	dmsetup create e-d --table "$(amber_table "$(dm_dev e-d-dly)" "$(dm_dev e-d-store)" \
		"$AMBER_CHUNK" drain_timeout_ms=200)"
	dmsetup create e-d-view --readonly --table "0 $(sectors "$(dm_dev e-d-dly)") amber-view $(dm_dev e-d)"
	vol=$(dm_dev e-d) view=$(dm_dev e-d-view)
	chunk_pattern_write "$vol" 0 16 before
	[ "$(amber_msg e-d snap)" = 1 ]
	read_chunk_bg "$view" 10 "$out"
	sleep 1
	t=$(dmsetup table e-d)
	klog_mark
	dmsetup load e-d --table "$t"
	start=$(date +%s%N)
	dmsetup resume e-d
	ms=$((($(date +%s%N) - start) / 1000000))
	[ ! -e "$out.rc" ] && [ "$ms" -lt 4000 ] ||
		{ echo "# the resume took $ms ms: it waited for the old table's view read"; return 1; }
	klog_has "reload: the snapshot of epoch 1 goes on"
	chunk_pattern_write "$vol" 10 1 after
	wait
	ktap_print_msg "resume in $ms ms; the view read ended with $(cat "$out.rc")"
	[ "$(cat "$out.rc")" = 0 ] ||
		{ echo "# the view read across the reload failed"; return 1; }
	cmp "$out" <(chunk_pattern before 10 1) ||
		{ echo "# the view returned data written after the barrier"; return 1; }
	# The chunk is in the store now, still the barrier's.
	cmp <(dd if="$view" bs=$((AMBER_CHUNK * 512)) skip=10 count=1 iflag=direct status=none) \
		<(chunk_pattern before 10 1)
	cmp <(dd if="$vol" bs=$((AMBER_CHUNK * 512)) skip=10 count=1 iflag=direct status=none) \
		<(chunk_pattern after 10 1)
	amber_expect e-d state active
	amber_msg e-d drop
	dmsetup remove e-d-view
	dmsetup remove e-d
}

# slow_slot_read <chunks> <file>: volume e-r and its view e-r-view, whose
# store's slot 0 is read through dm-delay (10 s); <chunks> chunks written,
# a snapshot, chunk 0 overwritten (copied into slot 0), and a view read of
# chunk 0 started in the background into <file> (see read_chunk_bg).
slow_slot_read() {
	local data_offset
	rm -f "$2" "$2.rc"
	amber_format "$(dm_dev e-r-store0)" "$(dm_dev e-r-origin)"
	data_offset=$(od -An -t u8 -j 64 -N 8 "$(dm_dev e-r-store0)" | tr -d ' ')
	delayed_reads e-r-store store $((72 * 2048)) 2048 "$data_offset" "$AMBER_CHUNK" 10000
	dmsetup create e-r --table "$(amber_table "$(dm_dev e-r-origin)" "$(dm_dev e-r-store)" "$AMBER_CHUNK")"
	dmsetup create e-r-view --readonly --table "0 $(sectors "$(dm_dev e-r-origin)") amber-view $(dm_dev e-r)"
	chunk_pattern_write "$(dm_dev e-r)" 0 "$1" before
	[ "$(amber_msg e-r snap)" = 1 ]
	chunk_pattern_write "$(dm_dev e-r)" 0 1 after
	read_chunk_bg "$(dm_dev e-r-view)" 0 "$2"
}

slow_slot_remove() {
	amber_msg e-r drop
	dmsetup remove e-r-view
	dmsetup remove e-r
	dmsetup remove e-r-store
}

# A release (the ioctl, as amber backup sends it) waits for the view reads
# of its chunk before the slot is reused, but holds nothing else back
# meanwhile: status, the view's status and a first write to another chunk
# go on, and are done while the read is still in flight (a blocked one
# ends after it, 9 s on). The view read of chunk 0's slot waits 10 s in
# dm-delay: the debug kernel takes 2 s to start the three commands.
release_holds_nothing_back() {
	local vol view start ms out=/tmp/edge-slot release
	slow_slot_read 4 "$out"
	vol=$(dm_dev e-r) view=$(dm_dev e-r-view)
	sleep 0.5
	ctlabuse release e-r 0 1 &
	release=$!
	sleep 0.5
	start=$(date +%s%N)
	dmsetup status e-r >/dev/null
	dmsetup status e-r-view >/dev/null	# takes the registry lock
	chunk_pattern_write "$vol" 2 1 after
	ms=$((($(date +%s%N) - start) / 1000000))
	if [ -e "$out.rc" ] || [ "$ms" -ge 8000 ]; then
		echo "# status and a first write waited for the view read ($ms ms)"
		return 1
	fi
	kill -0 "$release" || { echo "# the release did not wait for the view read"; return 1; }
	ktap_print_msg "status and a first write took $ms ms behind the release"
	wait "$release"
	wait
	[ "$(cat "$out.rc")" = 0 ]
	cmp "$out" <(chunk_pattern before 0 1)
	amber_expect e-r released 1
	amber_expect e-r copied 2
	slow_slot_remove
}

# proc_state <pid>: its state letter (R, S, D, Z...), or nothing once gone.
proc_state() {
	awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true
}

# exited <pid>: the process is gone or a zombie (kill -0 still finds one).
exited() {
	case $(proc_state "$1") in "" | Z) return 0 ;; esac
	return 1
}

# sleeping_in_kernel <pid>: in an uninterruptible or killable wait (D).
sleeping_in_kernel() {
	[ "$(proc_state "$1")" = D ]
}

# A release waiting for a view read dies at once when killed, as a backup
# stuck behind a hung read must: its chunk stays released (the view fails
# it), its slot in use until a later release, which frees it. The view read
# of chunk 0's slot waits 10 s in dm-delay, the killed release at most 3 s.
release_is_killable() {
	local vol view used out=/tmp/edge-kill release
	slow_slot_read 2 "$out"
	vol=$(dm_dev e-r) view=$(dm_dev e-r-view)
	sleep 0.5
	ctlabuse release e-r 0 1 &
	release=$!
	wait_until 5 sleeping_in_kernel "$release" ||
		{ echo "# the release did not wait for the view read"; return 1; }
	kill -KILL "$release"
	wait_until 3 exited "$release" ||
		{ echo "# the killed release still waits for the view read"; return 1; }
	[ ! -e "$out.rc" ] || { echo "# the view read was over before the kill"; return 1; }
	wait "$release" && { echo "# the killed release succeeded"; return 1; }
	wait
	[ "$(cat "$out.rc")" = 0 ]
	cmp "$out" <(chunk_pattern before 0 1)
	amber_expect e-r released 1
	chunk_unreadable "$view" 0
	used=$(amber_field e-r used)
	[ "$used" -ge 1 ]
	ctlabuse release e-r 0 1
	[ "$(amber_field e-r used)" -eq $((used - 1)) ]
	slow_slot_remove
}

# A suspend does not wait for a free slot: a noflush one has the waiting
# write requeued for after the resume (the snapshot goes on), a plain one
# gives up the snapshot and lets it through. Both return at once.
suspend_never_waits_for_a_slot() {
	local vol pid waits
	amber_format "$(dm_dev e-s-store)" "$(dm_dev e-s-origin)"
	dmsetup create e-s --table "$(amber_table "$(dm_dev e-s-origin)" "$(dm_dev e-s-store)" \
		"$AMBER_CHUNK" block_timeout_ms=60000)"
	vol=$(dm_dev e-s)
	chunk_pattern_write "$vol" 0 8 before
	[ "$(amber_msg e-s snap)" = 1 ]
	chunk_pattern_write "$vol" 0 2 after	# the store is full
	waits=$(amber_field e-s waited)
	chunk_pattern_write "$vol" 2 1 after &
	pid=$!
	wait_until 10 waited_more e-s
	suspend_within e-s --noflush
	amber_expect e-s state active
	dmsetup resume e-s
	wait_until 10 waited_more e-s
	amber_msg e-s release 0 1
	wait "$pid"
	chunk_pattern_write "$vol" 3 1 after &
	pid=$!
	wait_until 10 waited_more e-s
	suspend_within e-s
	wait "$pid"
	amber_expect e-s state invalid
	amber_expect e-s reason store_full
	dmsetup resume e-s
	chunk_pattern_verify "$vol" 0 4 after
	amber_msg e-s drop
	dmsetup remove e-s
}

# waited_more <name>: one more write of the volume waited since $waits (a
# write parked for a slot is not in /sys/block/*/inflight on 6.12: dm
# counts it only once it is remapped).
waited_more() {
	local now
	now=$(amber_field "$1" waited)
	[ "$now" -gt "$waits" ] && waits=$now
}

# A table whose first resume cannot read the store runs untracked; once the
# store is back, the store must say so, across suspends and reloads, until a
# barrier starts maps that can be trusted again.
untracked_writes_are_recorded() {
	local origin store
	origin=$(dm_dev e-u-origin) store=$(dm_dev e-u-store)
	amber_format "$store" "$origin"
	dmsetup create e-u --notable
	dmsetup load e-u --table "$(amber_table "$origin" "$store" "$AMBER_CHUNK")"
	set_slice e-u-store error store 88 8
	timeout 20 dmsetup resume e-u
	amber_expect e-u cbt invalid
	chunk_pattern_write "$(dm_dev e-u)" 0 4 untracked
	set_slice e-u-store linear store 88 8
	dmsetup suspend e-u
	dmsetup resume e-u
	amber_expect e-u cbt invalid
	dm_remove e-u
	dm_create e-u "$(amber_table "$origin" "$store" "$AMBER_CHUNK")"
	amber_expect e-u cbt invalid
	[ "$(amber_msg e-u snap)" = 1 ]
	amber_expect e-u cbt exact
	amber_msg e-u drop
	dm_remove e-u
}

STORE_TIMEOUT=/sys/module/dm_amber/parameters/store_timeout_ms

# within <ms> <command...>: the command (a function too) succeeds within
# <ms>, and says how long it took; one still running at twice that is left
# behind, killed if it can be.
within() {
	local bound=$1 start ms pid rc=0
	shift
	start=$(date +%s%N)
	"$@" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null &&
	      [ $((($(date +%s%N) - start) / 1000000)) -lt $((bound * 2)) ]; do
		sleep 0.1
	done
	ms=$((($(date +%s%N) - start) / 1000000))
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		echo "# $* still runs after $ms ms"
		return 1
	fi
	wait "$pid" || rc=$?
	ktap_print_msg "$* took $ms ms"
	[ "$rc" = 0 ] || { echo "# $* failed ($rc) after $ms ms"; return 1; }
	[ "$ms" -lt "$bound" ] || { echo "# $* took $ms ms, more than $bound"; return 1; }
}

# A store that stops answering (its dm-linear suspended under it) is given
# up after store_timeout_ms: a first write that needs a copy, one that needs
# a map commit, a suspend and a resume all go on within the bound. A reload
# once the store answers again still does not trust the maps, which missed
# writes; a barrier starts trusted ones.
store_that_hangs_never_holds_the_origin() {
	local origin store table
	origin=$(dm_dev e-h-origin) store=$(dm_dev e-h-store)
	amber_format "$store" "$origin"
	table=$(amber_table "$origin" "$store" "$AMBER_CHUNK")
	dm_create e-h "$table"
	chunk_pattern_write "$(dm_dev e-h)" 0 1 before
	[ "$(amber_msg e-h snap)" = 1 ]
	# A module without the parameter has no bound: the writes below hang.
	if [ -e "$STORE_TIMEOUT" ]; then
		echo 2000 >"$STORE_TIMEOUT"
	fi
	dmsetup suspend e-h-store
	# Chunk 100's region has no intent yet: its map commit times out, and
	# its copy (started ahead of the commit). Chunk 0's region took its
	# intent at the barrier, and the snapshot is given up by then.
	within 7000 chunk_pattern_write "$(dm_dev e-h)" 100 1 commit
	klog_has "did not complete an I/O in 2000 ms"
	klog_has "does not answer: it counts as failed"
	klog_has "no copy to the store ended in 2000 ms"
	amber_expect e-h cbt invalid
	amber_expect e-h state invalid
	amber_expect e-h reason store_io_error
	within 7000 chunk_pattern_write "$(dm_dev e-h)" 0 1 copy
	within 7000 dmsetup suspend e-h
	within 7000 dmsetup resume e-h
	dmsetup info e-h | grep -q '^State: *ACTIVE'
	chunk_pattern_verify "$(dm_dev e-h)" 0 1 copy
	chunk_pattern_verify "$(dm_dev e-h)" 100 1 commit
	dmsetup resume e-h-store
	echo 30000 >"$STORE_TIMEOUT"
	# A new table reads the store, which answers again.
	dmsetup load e-h --table "$table"
	dmsetup suspend e-h
	dmsetup resume e-h
	amber_expect e-h cbt invalid
	amber_expect e-h reason store_io_error
	amber_msg e-h drop
	# As after a crash: the old table could not mark the store clean.
	[ "$(amber_msg e-h snap)" = 2 ]
	amber_expect e-h cbt superset
	amber_msg e-h drop
	dm_remove e-h
}

# A store that hangs only some writes (here those to slot 0, through a dm
# device suspended under that one slot) while others end: the copy stuck
# there is bounded by itself, not by the copies that go on around it.
copy_that_hangs_alone_is_bounded() {
	local origin disk data_offset off=$((104 * 2048)) i ms
	origin=$(dm_dev e-p-origin) disk=$(scratch_disk store)
	amber_format "$(dm_dev e-p-store0)" "$origin"
	data_offset=$(od -An -t u8 -j 64 -N 8 "$(dm_dev e-p-store0)" | tr -d ' ')
	dm_create e-p-slot0 "0 $AMBER_CHUNK linear $disk $((off + data_offset))"
	dm_create e-p-store "0 $data_offset linear $disk $off
$data_offset $AMBER_CHUNK linear $(dm_dev e-p-slot0) 0
$((data_offset + AMBER_CHUNK)) $((8 * 2048 - data_offset - AMBER_CHUNK)) linear $disk $((off + data_offset + AMBER_CHUNK))"
	dm_create e-p "$(amber_table "$origin" "$(dm_dev e-p-store)" "$AMBER_CHUNK")"
	chunk_pattern_write "$(dm_dev e-p)" 0 32 before
	[ "$(amber_msg e-p snap)" = 1 ]
	echo 2000 >"$STORE_TIMEOUT"
	dmsetup suspend e-p-slot0
	rm -f /tmp/e-p.ms
	{
		local start
		start=$(date +%s%N)
		chunk_pattern_write "$(dm_dev e-p)" 0 1 stuck
		echo $((($(date +%s%N) - start) / 1000000)) >/tmp/e-p.ms
	} &
	# Its copy takes slot 0 (the first free) before any other starts; if
	# one did first, the write would not wait the bound, and fail below.
	sleep 1
	# First writes to other chunks, whose copies end, for about 8 s.
	for i in $(seq 1 24); do
		chunk_pattern_write "$(dm_dev e-p)" "$i" 1 flowing
		sleep 0.3
	done
	wait_until 30 test -s /tmp/e-p.ms ||
		{ echo "# the write whose copy hung still waits"; return 1; }
	ms=$(cat /tmp/e-p.ms)
	ktap_print_msg "the write whose copy hung took $ms ms while other copies ended"
	# It did wait for the bound (its copy hung), and not much longer.
	[ "$ms" -ge 1900 ] && [ "$ms" -lt 6000 ]
	klog_has "no copy to the store ended in 2000 ms"
	amber_expect e-p reason store_io_error
	dmsetup resume e-p-slot0
	echo 30000 >"$STORE_TIMEOUT"
	chunk_pattern_verify "$(dm_dev e-p)" 0 1 stuck
	chunk_pattern_verify "$(dm_dev e-p)" 1 24 flowing
	amber_msg e-p drop
	dm_remove e-p
	dm_remove e-p-store
	dm_remove e-p-slot0
}

# suspend_within <name> [--noflush]: dmsetup suspend returns within 10 s,
# where one that waited for a slot would wait block_timeout_ms (60 s). A
# stock kernel takes milliseconds, the debug one under TCG up to 4 s.
suspend_within() {
	local start ms
	start=$(date +%s%N)
	timeout 20 dmsetup suspend "$@"
	ms=$((($(date +%s%N) - start) / 1000000))
	ktap_print_msg "dmsetup suspend $* took $ms ms"
	[ "$ms" -lt 10000 ] || { echo "# dmsetup suspend $* took $ms ms"; return 1; }
}

defer f_cleanup
ktap_print_header
# A store of two slots for e-d, and the origin whose reads of chunk 10
# wait 8 s in dm-delay.
dm_create e-d-store "0 512 linear $(scratch_disk store) $((56 * 2048))"
delayed_reads e-d-dly origin $((56 * 2048)) 16384 $((10 * AMBER_CHUNK)) "$AMBER_CHUNK" 8000
# e-r's store, first plain (for amber format), then with delayed slot 0.
slice e-r-store0 store 72 1
slice e-s-origin origin 80 8
dm_create e-s-store "0 512 linear $(scratch_disk store) $((80 * 2048))"
slice e-u-origin origin 88 8
slice e-u-store store 88 8
# What a failed step leaves, removed before the slices under it.
for dev in e-r-store e-r e-r-view e-d e-d-view e-s e-u e-h e-p e-p-store e-p-slot0; do
	defer dm_remove "$dev"
done
# A step that failed may leave a store suspended, and the bound low.
defer dmsetup resume e-h-store
defer sh -c "[ ! -e /dev/mapper/e-p-slot0 ] || dmsetup resume e-p-slot0"
defer sh -c "[ ! -e $STORE_TIMEOUT ] || echo 30000 >$STORE_TIMEOUT"
ktap_set_plan 13
ktap_step "a view never reads the volume that took its number" view_never_reads_another_volume
ktap_step "a store failing across suspend/resume never holds the origin" store_fault_never_holds_the_origin
ktap_step "a barrier needs a live table; epochs follow the store" barrier_needs_a_live_table
ktap_step "a cut the store refuses cuts nothing; epochs stay unique" failed_cut_cuts_nothing
ktap_step "the barrier flushes the origin" barrier_flushes_the_origin
ktap_step "a view read across an invalidation never returns newer data" view_read_across_invalidation
ktap_step "a view read across a reload returns the barrier's data" view_read_across_reload
ktap_step "a release waiting for a view read holds nothing else back" release_holds_nothing_back
ktap_step "a release waiting for a view read can be killed" release_is_killable
ktap_step "a suspend never waits for a free slot" suspend_never_waits_for_a_slot
ktap_step "writes the maps missed are recorded once the store is back" untracked_writes_are_recorded
ktap_step "a store that stops answering never holds the origin" store_that_hangs_never_holds_the_origin
ktap_step "a copy the store never ends is bounded while others end" copy_that_hangs_alone_is_bounded
ktap_finished
