#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Crash consistency of what amber sends to the origin, in the style of
# xfstests' generic/482: dm-log-writes under the origin records every write
# that completes, with its FLUSH and FUA flags, while ext4 on the amber
# volume runs a write load with fsyncs and backups take snapshots (copies,
# releases, drops). Replaying the log onto a blank device up to any FUA
# write gives what a power cut at that moment would have left: each such
# prefix, after ext4 replays its journal, must check clean. amber reorders
# writes (held for copies, map commits, the barrier), so a FLUSH or FUA it
# let pass too early, or a write acknowledged before it reached the origin,
# shows here as a file system that does not check.
. "$(dirname "$0")/amber_backup_lib.sh"

require_module dm-amber
require_module dm-log-writes
mib=64
CHECKPOINTS=${AMBER_LOGWRITES_CHECKPOINTS:-24}
slice lw-data origin 0 "$mib"
slice lw-store store 0 "$mib"
slice lw-log origin2 0 512
slice lw-replay origin2 512 "$mib"
slice lw-check origin2 640 "$mib"
data=$(dm_dev lw-data)
log=$(dm_dev lw-log)
replay=$(dm_dev lw-replay)
check=$(dm_dev lw-check)
bk=/mnt/backups
entries=/tmp/logwrites.entries

unmount_volume() {
	! grep -q " /mnt/lw " /proc/mounts || umount /mnt/lw
}

# The load: fio on ext4, fsync every 16 writes, 4 files; meanwhile three
# backups, each a barrier, copies of the chunks fio overwrites, releases
# and a drop.
load_with_backups() {
	local pid i
	fio --name=lw --directory=/mnt/lw --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=4k --iodepth=8 --size=8M --nrfiles=4 \
		--runtime=20 --time_based --fsync=16 \
		--output=/tmp/lw-fio.log >/dev/null &
	pid=$!
	for i in 1 2 3; do
		sleep 3
		amber backup lw-vol --to "$bk/lw-$i.amb" >/dev/null ||
			{ kill "$pid"; wait "$pid"; return 1; }
	done
	wait "$pid"
	[ "$(amber_field lw-vol copied)" -gt 0 ]
}

# The log is complete: the volume's last write is in it, and a replay of all
# of it is the origin's content.
log_is_complete() {
	umount /mnt/lw
	dm_remove lw-vol-view
	dm_remove lw-vol
	dmsetup message lw 0 mark end
	dm_remove lw
	logreplay list "$log" >"$entries"
	ktap_print_msg "$(wc -l <"$entries") entries, $(awk '$2 ~ /U/' "$entries" | wc -l) with FUA"
	grep -q ' M 0 0 end$' "$entries" ||
		{ echo "# no end mark; the log ends:"; tail -n 3 "$entries" | sed 's/^/# /'; return 1; }
	logreplay replay "$log" "$replay" 0 "$(wc -l <"$entries")"
	same_image "$replay" "$data"
}

# fua_points: up to CHECKPOINTS entries written with FUA after mkfs, spread
# over the log, the last one among them.
fua_points() {
	awk '$NF == "mkfs" { on = 1 } on && $2 ~ /U/ { print $1 }' "$entries" |
		awk -v n="$CHECKPOINTS" '{ p[NR] = $1 }
			END { for (i = 1; i <= n && NR; i++) print p[int(i * NR / n + 0.5)] }' |
		awk 'NF && !seen[$1]++'
}

# Replay up to each FUA point: each prefix is a file system that checks
# clean once its journal has been replayed (on a copy: the replay goes on).
every_fua_prefix_checks_clean() {
	local at done=0 checked=0
	scratch_wipe "$replay"
	for at in $(fua_points); do
		logreplay replay "$log" "$replay" "$done" $((at + 1))
		done=$((at + 1))
		copy_dev "$replay" "$check"
		mount "$check" /mnt/lw-check
		umount /mnt/lw-check
		e2fsck -fn "$check" >/tmp/lw-fsck.log 2>&1 ||
			{ echo "# replayed to entry $at:"; sed 's/^/# /' /tmp/lw-fsck.log; return 1; }
		checked=$((checked + 1))
	done
	ktap_print_msg "$checked prefixes checked clean, the last at entry $done"
	[ "$checked" -ge $((CHECKPOINTS / 2)) ]
}

scratch_wipe "$data"
scratch_wipe "$log"
dm_create lw "0 $(sectors "$data") log-writes $data $log"
amber_volume lw-vol "$(dm_dev lw)" "$(dm_dev lw-store)"
backup_fs store2 "$bk"
mkfs.ext4 -q -F -E nodiscard "$(dm_dev lw-vol)"
dmsetup message lw 0 mark mkfs
mkdir -p /mnt/lw /mnt/lw-check
mount "$(dm_dev lw-vol)" /mnt/lw
defer unmount_volume

ktap_print_header
ktap_set_plan 3
ktap_step "ext4 on amber over dm-log-writes runs a load through three backups" \
	load_with_backups
ktap_step "the log holds every write: replayed whole it is the origin" log_is_complete
ktap_step "the origin replayed to each FUA write checks clean (generic/482)" \
	every_fua_prefix_checks_clean
ktap_finished
