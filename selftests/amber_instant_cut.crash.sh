#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A power cut in the middle of an instant restore. Boot 1 restores a chain
# with --instant, lets the background copy pass 40 %, and kills QEMU while
# acklog writes through the restored device (each write O_DSYNC, logged once
# acknowledged) and the copy goes on. A crash test: the harness boots the
# same disks twice (selftests/vm/vmtest.sh).
#
# Boot 2: --resume starts from what dm-clone's metadata recorded (not from
# zero), the restore ends as a linear device, every write acklog saw
# acknowledged is on the target, and every block it did not write holds the
# chain's image.
. "$(dirname "$0")/amber_backup_lib.sh"

require_module dm-clone
require_module nbd
case ${AMBER_CRASH_PHASE:-} in
1 | 2) ;;
*) skip_all "a crash test: run by selftests/vm/vmtest.sh over two boots" ;;
esac
mib=64
blocks=$((mib * 256))			# 4 KiB blocks
chunks=$((mib * 16))			# 64 KiB, amber backup's default
slice ic-src origin 0 "$mib"
slice ic-ref origin "$mib" "$mib"
slice ic-target origin2 0 $((mib + 8))
slice ic-log origin2 80 4
slice ic-seen origin2 88 1		# the hydrated count boot 1 saw last
bk=/mnt/backups
target=$(dm_dev ic-target)
chain=("$bk/full.amb" "$bk/inc.amb")
for name in ic-inst-meta ic-inst; do	# removed last to first
	defer dm_remove "$name"
done

# hydrated <name>: dm-clone's hydrated regions (all once it is linear);
# total_regions <name>.
hydrated() {
	if is_linear "$1"; then
		echo "$chunks"
	else
		dmsetup status "$1" | awk '{ split($7, h, "/"); print h[1] }'
	fi
}
total_regions() {
	dmsetup status "$1" | awk '{ split($7, h, "/"); print h[2] }'
}

past() {
	[ "$(hydrated ic-inst)" -ge "$1" ]
}

is_linear() {
	[ "$(dmsetup table "$1" | awk '{ print $3 }')" = linear ]
}

# ---- boot 1 -------------------------------------------------------------

fail_midway() {
	echo "# $*"
	kill $(jobs -p) 2>/dev/null
	ktap_exit_fail_msg "the crash point was not reached"
}

# The chain (a full, then an incremental after a write), its plain restore
# as the reference, and the instant restore under way.
chain_restoring() {
	local s
	for s in ic-src ic-log ic-seen; do
		scratch_wipe "$(dm_dev "$s")"
	done
	fill_volume "$(dm_dev ic-src)"
	amber backup --image "$(dm_dev ic-src)" --to "$bk/full.amb" 2>/dev/null
	pattern_write "$(dm_dev ic-src)" 2048 512 inc
	amber backup --image "$(dm_dev ic-src)" --incremental-from "$bk/full.amb" \
		--to "$bk/inc.amb" 2>/dev/null
	amber restore "${chain[@]}" --to "$(dm_dev ic-ref)" >/dev/null
	sync
	scratch_wipe "$target"
	amber restore --instant "${chain[@]}" --to "$target" --name ic-inst | sed 's/^/# /'
}

# At 40 % the copy is paused while acklog starts (its first writes each
# need their region copied on demand), then goes on one region at a time,
# so that it is still going when the kill comes, 2 s after the count is
# noted (past a metadata commit: dm-clone commits every second).
crash_restoring() {
	local total seen
	total=$(total_regions ic-inst)
	wait_until 300 past $((total * 2 / 5)) ||
		fail_midway "the copy did not reach 40 %: $(dmsetup status ic-inst)"
	dmsetup message ic-inst 0 disable_hydration
	acklog write "$(dm_dev ic-inst)" "$(dm_dev ic-log)" $((blocks / 2)) $((blocks / 4)) dsync &
	defer kill $!
	sleep 3
	dmsetup message ic-inst 0 hydration_threshold 1
	dmsetup message ic-inst 0 hydration_batch_size 1
	dmsetup message ic-inst 0 enable_hydration
	sleep 1
	seen=$(hydrated ic-inst)
	echo "$seen" | dd of="$(dm_dev ic-seen)" bs=512 conv=sync,fsync status=none
	echo "# $seen of $total regions hydrated 2 s before the cut"
	sleep 2
	[ "$(hydrated ic-inst)" -lt "$total" ] || fail_midway "the restore ended before the cut"
	echo "amber-vm: crash"
	sleep 120
	ktap_exit_fail_msg "the VM was not killed"
}

boot_1() {
	backup_fs store2 "$bk"
	ktap_print_header
	ktap_set_plan 1
	ktap_step "an instant restore is under way" chain_restoring
	crash_restoring
}

# ---- boot 2 -------------------------------------------------------------

# --resume continues from the metadata: at least what boot 1 saw a commit
# before the cut is hydrated at once, and the restore ends.
resume_continues() {
	local seen now
	seen=$(dd if="$(dm_dev ic-seen)" bs=512 count=1 status=none | tr -dc 0-9)
	amber restore --instant --resume "${chain[@]}" --to "$target" --name ic-inst |
		sed 's/^/# /'
	now=$(hydrated ic-inst)
	echo "# hydrated at resume: $now of $chunks (boot 1 saw $seen before the cut)"
	[ "$now" -ge "$seen" ]
	wait_until 600 is_linear ic-inst
}

# Outside the blocks acklog may have written, the target holds the image.
image_elsewhere() {
	local half=$((mib * 1024 * 1024 / 2)) quarter=$((mib * 1024 * 1024 / 4))
	cmp -n "$half" "$target" "$(dm_dev ic-ref)"
	cmp -n "$quarter" -i $((half + quarter)) "$target" "$(dm_dev ic-ref)"
}

boot_2() {
	mkdir -p "$bk"
	mount "$(scratch_disk store2)" "$bk"
	defer umount "$bk"
	ktap_print_header
	ktap_set_plan 3
	ktap_step "--resume continues from the recorded progress and ends" resume_continues
	ktap_step "every write acknowledged before the cut is on the target" \
		acklog_all_there "$target" "$(dm_dev ic-log)"
	ktap_step "every block not written holds the chain's image" image_elsewhere
	ktap_finished
}

"boot_$AMBER_CRASH_PHASE"
