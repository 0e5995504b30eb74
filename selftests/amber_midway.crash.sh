#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A crash in the middle of a backup and of a barrier: QEMU is killed while
# volume mw-a streams a backup (blocked on a full pipe, copy-on-write busy
# under fio's and acklog's acknowledged writes) and volume mw-b raises a
# barrier that is still draining a write dm-delay holds for 30 s. A crash
# test: the harness boots the same disks twice (selftests/vm/vmtest.sh).
#
# Boot 2: both tables load again, with no snapshot, mw-a's change tracking a
# superset (its store was not shut down), mw-b's too; every write fio had
# completed when its trigger, the power cut, saved its verify state
# (verify_state_save, checked with verify_only) and every write acklog saw
# acknowledged is on mw-a; the barrier of mw-b never cut its epoch; and a
# new backup of each volume restores to its view.
. "$(dirname "$0")/amber_backup_lib.sh"

require_module dm-amber
require_module dm-delay
case ${AMBER_CRASH_PHASE:-} in
1 | 2) ;;
*) skip_all "a crash test: run by selftests/vm/vmtest.sh over two boots" ;;
esac
mib=64
blocks=$((mib * 256))
slice mw-ao origin 0 "$mib"
slice mw-as store 0 "$mib"
slice mw-bo origin 64 16
slice mw-bs store 64 16
slice mw-log origin2 0 4
slice mw-fio-state origin2 8 1
slice mw-ref origin2 64 "$mib"
slice mw-target origin2 128 "$mib"
a=$(dm_dev mw-a)
b=$(dm_dev mw-b)
log=$(dm_dev mw-log)

# mw-b's origin: reads and flushes at once, writes after 30 s (the debug
# kernel takes seconds from the write to the crash point). A delayed flush
# would hold the barrier in its first flush, before the gates close.
slow_origin() {
	local o
	o=$(dm_dev mw-bo)
	dm_create mw-slow "0 $(sectors "$o") delay $o 0 0 $o 0 30000 $o 0 0"
}

volumes() {
	dm_create mw-a "$(amber_table "$(dm_dev mw-ao)" "$(dm_dev mw-as)" "$AMBER_CHUNK")"
	dm_create mw-b "$(amber_table "$(dm_dev mw-slow)" "$(dm_dev mw-bs)" "$AMBER_CHUNK" \
		drain_timeout_ms=60000)"
	dm_create mw-b-view "0 $(sectors "$b") amber-view $b" --readonly
	dm_create mw-a-view "0 $(sectors "$a") amber-view $a" --readonly
}

# crash_writer <fio options>: fio's power-cut verification over the first
# half of mw-a: 4 KiB random writes, each with a crc32c header, in an order
# a later run replays. Boot 1 writes (do_verify=0), boot 2 verifies.
crash_writer() {
	fio --name=crashw --filename="$a" --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=4k --iodepth=8 --size=$((mib / 2))M \
		--verify=crc32c --aux-path=/tmp/fio-state "$@"
}

# ---- boot 1 -------------------------------------------------------------

# write_arrived <name>: a write has reached the volume's map stage.
write_arrived() {
	[ "$(amber_field "$1" waited)" -gt 0 ]
}

# fail_midway <why>: boot 1 went wrong before the crash point. The VM powers
# off instead of being killed, and the harness fails the test.
fail_midway() {
	echo "# $*"
	kill $(jobs -p) 2>/dev/null
	ktap_exit_fail_msg "the crash point was not reached"
}

# written_since <dm name> <sectors>: the device has more sectors written.
written_since() {
	[ "$(sectors_written "$1")" -gt "$2" ]
}

# fio's power-cut verification, as fio does it: when the trigger file
# appears, fio saves the state of its completed writes (verify_state_save),
# stops its threads and runs the trigger command, which stands for the
# power cut: it stores the state on mw-fio-state, which outlives the kill,
# and tells the test to print the crash line. fio has not written all it
# was given (100 writes/s for 80 s), or nothing would be left to crash on.
crash_trigger() {
	printf '%s' "tar -C /tmp/fio-state -cf /tmp/fio-state.tar . &&" \
		" dd if=/tmp/fio-state.tar of=$(dm_dev mw-fio-state) bs=64k conv=fsync 2>/dev/null &&" \
		" touch /tmp/fio-cut"
}

# The kill comes right after fio's trigger (fio stops its threads to save
# its state, as its power-cut testing does) while acklog writes to mw-a,
# mw-a's backup waits on a pipe nobody reads yet and mw-b's barrier waits
# for the write in flight.
# A VM still alive 120 s after the crash point has a harness that did not
# kill it.
crash_midway() {
	local writer filled
	fill_volume "$a"
	mkdir -p /tmp/fio-state
	filled=$(sectors_written mw-a)
	crash_writer --do_verify=0 --rate_iops=100 --trigger-file=/tmp/fio-trigger \
		--trigger="$(crash_trigger)" --output=/tmp/crashw.log &
	writer=$!
	# fio takes seconds to start under TCG; a trigger before is no test.
	wait_until 60 written_since mw-a "$filled" ||
		fail_midway "fio did not start writing: $(cat /tmp/crashw.log)"
	acklog write "$a" "$log" $((blocks / 2)) $((blocks / 2)) &
	defer kill $!
	amber backup mw-a --to - | { sleep 600; cat >/dev/null; } &
	wait_until 30 amber_is mw-a state active ||
		fail_midway "mw-a has no snapshot: $(dmsetup status mw-a)"
	chunk_pattern_write "$b" 0 1 slow &
	# Its first write since the load waits for a map commit (status
	# 'waited'), then goes on to dm-delay, where it stays 30 s.
	wait_until 30 write_arrived mw-b ||
		fail_midway "the slow write did not arrive: $(dmsetup status mw-b)"
	sleep 1
	amber snap mw-b >/tmp/mw-snap.out 2>&1 &
	wait_until 10 amber_is mw-b state frozen ||
		fail_midway "mw-b is not frozen: $(dmsetup status mw-b) $(cat /tmp/mw-snap.out)"
	amber_is mw-a state active || fail_midway "mw-a: $(dmsetup status mw-a)"
	kill -0 "$writer" || fail_midway "fio ended before the crash point: $(cat /tmp/crashw.log)"
	touch /tmp/fio-trigger
	wait_until 60 test -e /tmp/fio-cut ||
		fail_midway "fio's trigger did not run: $(cat /tmp/crashw.log)"
	echo "amber-vm: crash"
	sleep 120
	ktap_exit_fail_msg "the VM was not killed"
}

started_clean() {
	local v
	for v in mw-a mw-b; do
		amber_expect "$v" state idle
		amber_expect "$v" epoch 0
		amber_expect "$v" cbt exact
	done
}

boot_1() {
	local s
	for s in mw-ao mw-bo mw-log mw-fio-state; do
		scratch_wipe "$(dm_dev "$s")"
	done
	slow_origin
	amber_format "$(dm_dev mw-as)" "$(dm_dev mw-ao)"
	amber_format "$(dm_dev mw-bs)" "$(dm_dev mw-slow)"
	volumes
	ktap_print_header
	ktap_set_plan 1
	ktap_step "the volumes start idle with exact tracking" started_clean
	crash_midway
}

# ---- boot 2 -------------------------------------------------------------

# The maps of the epochs the kill interrupted (1 on mw-a, 0 on mw-b, which
# never cut an epoch) may name extra chunks now: both are supersets.
reloaded_as_superset() {
	local v
	for v in mw-a mw-b; do
		amber_expect "$v" state idle
		amber_expect "$v" used 0
	done
	amber_expect mw-a epoch 1
	amber_expect mw-a cbt superset
	amber_expect mw-b epoch 0
	amber_expect mw-b cbt superset
}

# backup_restores <name>: a new backup of the volume restores to its view.
backup_restores() {
	local ref target
	ref=$(dm_dev mw-ref)
	target=$(dm_dev mw-target)
	amber snap "$1" >/dev/null
	copy_dev "$(dm_dev "$1-view")" "$ref"
	amber backup "$1" --use-snapshot --to /tmp/mw.amb >/dev/null
	amber restore /tmp/mw.amb --to "$target" --force >/dev/null
	rm /tmp/mw.amb
	cmp -n "$(blockdev --getsize64 "$(dm_dev "$1")")" "$target" "$ref"
}

# fio_writes_there: fio, given the state it saved in boot 1, reads back and
# checks every write it had completed (and read some). It saves no state
# of its own, which would overwrite what it loaded.
fio_writes_there() {
	local bytes
	mkdir -p /tmp/fio-state
	tar -C /tmp/fio-state -xf "$(dm_dev mw-fio-state)"
	crash_writer --do_verify=1 --verify_only --verify_state_load=1 --verify_state_save=0 \
		--output-format=json --output=/tmp/crashw.json ||
		{ cat /tmp/crashw.json; return 1; }
	bytes=$(fio_io_bytes /tmp/crashw.json read)
	echo "# fio verified $bytes bytes"
	[ "$bytes" -gt 0 ]
}

new_backups_restore() {
	backup_restores mw-a
	backup_restores mw-b
}

boot_2() {
	slow_origin
	volumes
	ktap_print_header
	ktap_set_plan 4
	ktap_step "both tables load: no snapshot, mw-b not cut, both supersets" \
		reloaded_as_superset
	ktap_step "every write fio completed before its power-cut trigger is on mw-a" \
		fio_writes_there
	ktap_step "every write acknowledged before the kill is on mw-a" \
		acklog_all_there "$a" "$log"
	ktap_step "a new backup of each volume restores to its view" new_backups_restore
	ktap_finished
}

"boot_$AMBER_CRASH_PHASE"
