#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Change tracking survives a crash: QEMU is killed while writes hammer the
# volume, and the next incremental still holds every chunk written since
# the full backup. A crash test: the harness boots the same disks twice
# (selftests/vm/vmtest.sh, AMBER_CRASH_PHASE).
#
# Boot 1: a full backup onto ext4 (synced), then fio writes the first half
# of the volume while acklog writes 4 KiB blocks into the second half, each
# at a new place with data only it makes, and logs each one on a raw device
# with O_DSYNC once its write is acknowledged. Midway the volume is
# suspended and resumed: the suspend writes the exact map over the
# write-intent regions on the store, so the writes after it must take write
# intent again. The test says "amber-vm: crash" and the host kills QEMU
# (SIGKILL: no shutdown, the store is left unclean).
# Boot 2: the table loads again: the store was not shut down cleanly, so
# change tracking is a superset. Every logged write is on the volume; an
# incremental from the full, restored with it, is the view of its barrier.
. "$(dirname "$0")/amber_backup_lib.sh"

require_module dm-amber
case ${AMBER_CRASH_PHASE:-} in
1 | 2) ;;
*) skip_all "a crash test: run by selftests/vm/vmtest.sh over two boots" ;;
esac
bk=/mnt/backups
mib=64
blocks=$((mib * 256))		# 4 KiB blocks of the volume
slice cr-origin origin 0 "$mib"
slice cr-store store 0 96
slice cr-log origin2 0 4	# a sector per write: 8192 writes
slice cr-ref origin2 64 "$mib"
slice cr-target origin2 128 "$mib"
origin=$(dm_dev cr-origin)
store=$(dm_dev cr-store)
log=$(dm_dev cr-log)
vol=$(dm_dev cr-vol)
target=$(dm_dev cr-target)

# ---- boot 1 -------------------------------------------------------------

full_backup_is_saved() {
	fill_volume "$vol"
	amber backup cr-vol --to "$bk/full.amb" | sed 's/^/# /'
	sync
}

# The loads run until QEMU dies. A VM still alive 120 s after the crash
# point has a harness that did not kill it: the test fails.
crash_under_load() {
	load_start "$vol" --size=$((mib / 2))M
	defer kill "$LOAD_PID"
	acklog write "$vol" "$log" $((blocks / 2)) $((blocks / 2)) &
	defer kill $!
	sleep 1.5
	dmsetup suspend cr-vol
	dmsetup resume cr-vol
	sleep 1.5
	echo "amber-vm: crash"
	sleep 120
	ktap_exit_fail_msg "the VM was not killed"
}

boot_1() {
	local s
	for s in cr-origin cr-log cr-ref cr-target; do
		scratch_wipe "$(dm_dev "$s")"
	done
	amber_volume cr-vol "$origin" "$store"
	backup_fs store2 "$bk"
	ktap_print_header
	ktap_set_plan 1
	ktap_step "a full backup is saved" full_backup_is_saved
	crash_under_load
}

# ---- boot 2 -------------------------------------------------------------

# The table loads the store as the crash left it.
superset_after_reload() {
	amber_expect cr-vol state idle
	amber_expect cr-vol epoch 1
	amber_expect cr-vol cbt superset
}

# The view of the new barrier is the reference: the full alone is not it,
# the full and the incremental are.
incremental_restores_the_barrier() {
	amber snap cr-vol >/dev/null
	copy_dev "$(dm_dev cr-vol-view)" "$(dm_dev cr-ref)"
	amber backup cr-vol --use-snapshot --incremental-from "$bk/full.amb" \
		--to "$bk/incr.amb" >/tmp/incr.out
	sed 's/^/# /' /tmp/incr.out
	grep -q '(change maps were a superset)' /tmp/incr.out
	amber restore "$bk/full.amb" --to "$target" >/dev/null
	! cmp -s "$target" "$(dm_dev cr-ref)" || { echo "# nothing was written"; return 1; }
	amber restore "$bk/full.amb" "$bk/incr.amb" --to "$target" >/dev/null
	same_image "$target" "$(dm_dev cr-ref)"
}

boot_2() {
	dm_create cr-vol "$(amber_table "$origin" "$store" "$AMBER_CHUNK")"
	dm_create cr-vol-view "0 $(sectors "$origin") amber-view $vol" --readonly
	mkdir -p "$bk"
	mount "$(scratch_disk store2)" "$bk"
	defer umount "$bk"
	ktap_print_header
	ktap_set_plan 3
	ktap_step "the reloaded store's change tracking is a superset" superset_after_reload
	ktap_step "every write acknowledged before the kill is on the volume" \
		acklog_all_there "$vol" "$log"
	ktap_step "full + incremental after the crash restore the new barrier's view" \
		incremental_restores_the_barrier
	ktap_finished
}

"boot_$AMBER_CRASH_PHASE"
