#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# ext4 on an amber volume under a write load: each snapshot's view mounts
# read-only (noload) while the origin keeps going, and is a crash-consistent
# file system: a copy of it, once its journal is replayed, checks clean. The
# origin itself is clean at the end. (Without the replay only the directory
# is sure to read: inodes may still live in the journal alone, as after a
# power cut, so the noload mount is only listed, not stat'ed.)
. "$(dirname "$0")/amber_lib.sh"

require_module dm-amber
slice e-origin origin 0 256
origin=$(dm_dev e-origin)
slice e-store store 0 256
store=$(dm_dev e-store)
amber_volume e-vol "$origin" "$store"
vol=$(dm_dev e-vol)
view=$(dm_dev e-vol-view)
slice e-copy origin2 0 256
copy=$(dm_dev e-copy)

load() {
	fio --name=ext4 --directory=/mnt/origin --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=4k --iodepth=8 --size=16M --nrfiles=8 \
		--runtime="$1" --time_based --fsync=32 \
		--output=/tmp/ext4-fio.log >/dev/null
}

# The kernel replays the journal of a copy of the view (a rw mount), after
# which the copy must check clean with nothing to fix (e2fsck exit 0).
view_checks_clean() {
	dd if="$view" of="$copy" bs=1M iflag=direct oflag=direct status=none
	mount "$copy" /mnt/view
	echo /mnt/view/* | grep -q ext4.0.0 ||
		{ echo "# no fio file in the view:" /mnt/view/*; umount /mnt/view; return 1; }
	umount /mnt/view
	e2fsck -fn "$copy" >/tmp/fsck.log 2>&1 || { cat /tmp/fsck.log; return 1; }
}

# One snapshot: the view mounts as it is (no journal replay), and a copy
# lists fio's files and checks clean after its replay.
check_one_view() {
	amber_msg e-vol snap >/dev/null
	mount -o ro,noload "$view" /mnt/view
	umount /mnt/view
	view_checks_clean
	amber_msg e-vol drop
}

# check_one_view runs as a plain statement, so errexit holds in it (under
# "||" every line but its last would be ignored); the trap stops the load
# when a check fails.
views_are_clean_file_systems() {
	local i
	load 40 &
	load_pid=$!
	trap 'kill "$load_pid" 2>/dev/null; wait "$load_pid"' EXIT
	# fio starts slowly under TCG: its first file before the first barrier.
	wait_until 60 test -e /mnt/origin/ext4.0.0
	for i in 1 2 3; do
		sleep 5
		check_one_view
	done
	trap - EXIT
	wait "$load_pid"
}

# The check has teeth: with the chunks copied for a snapshot zeroed on the
# store (every slot, from the superblock's data offset on), the view must
# fail it. It runs as a job of its own, so its errexit holds while the step
# waits for it to fail.
corrupt_view_is_caught() {
	local used data_offset rc=0
	amber_msg e-vol snap >/dev/null
	dd if=/dev/urandom of=/mnt/origin/overwrite bs=1M count=8 oflag=direct status=none
	sync
	used=$(amber_field e-vol used)
	[ "$used" -gt 0 ]
	data_offset=$(od -An -t u8 -j 64 -N 8 "$store" | tr -d ' ')
	blkdiscard -f -z -o $((data_offset * 512)) "$store"
	view_checks_clean >/tmp/corrupt-check.log 2>&1 &
	wait $! || rc=$?
	! grep -q " /mnt/view " /proc/mounts || umount /mnt/view
	amber_msg e-vol drop
	ktap_print_msg "$used slots zeroed: $(tail -n 1 /tmp/corrupt-check.log)"
	[ "$rc" -ne 0 ]
	# Failed as a file system check fails, not on a read error.
	! grep -q '^dd: ' /tmp/corrupt-check.log
}

origin_checks_clean() {
	umount /mnt/origin
	fsck.ext4 -fn "$vol" >/tmp/fsck.log 2>&1 || { cat /tmp/fsck.log; return 1; }
}

mkdir -p /mnt/view
ext4_mounted "$vol" /mnt/origin

ktap_print_header
ktap_set_plan 3
ktap_step "each view of ext4 under load mounts and checks clean" views_are_clean_file_systems
ktap_step "a view whose copied chunks are zeroed on the store fails the check" \
	corrupt_view_is_caught
ktap_step "the origin checks clean afterwards" origin_checks_clean
ktap_finished
