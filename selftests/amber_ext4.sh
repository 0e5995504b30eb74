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
	umount /mnt/view
	e2fsck -fn "$copy" >/tmp/fsck.log 2>&1 || { cat /tmp/fsck.log; return 1; }
}

# One snapshot: the view mounts, lists, and checks clean after a replay.
check_one_view() {
	amber_msg e-vol snap >/dev/null
	mount -o ro,noload "$view" /mnt/view
	echo /mnt/view/* | grep -q ext4.0.0
	umount /mnt/view
	view_checks_clean
	amber_msg e-vol drop
}

views_are_clean_file_systems() {
	local i pid
	load 40 &
	pid=$!
	for i in 1 2 3; do
		sleep 5
		check_one_view || { kill "$pid"; wait "$pid"; return 1; }
	done
	wait "$pid"
}

origin_checks_clean() {
	umount /mnt/origin
	fsck.ext4 -fn "$vol"
}

mkdir -p /mnt/view
ext4_mounted "$vol" /mnt/origin

ktap_print_header
ktap_set_plan 2
ktap_step "each view of ext4 under load mounts and checks clean" views_are_clean_file_systems
ktap_step "the origin checks clean afterwards" origin_checks_clean
ktap_finished
