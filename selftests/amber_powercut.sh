#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A power cut at every moment of a workload, in the manner of xfstests'
# generic/482, over the origin and the store together.
#
# The origin, the store and an acknowledgement log are dm-linear slices of
# one dm-log-writes device, so one log orders what reached stable media on
# all three: dm-log-writes logs a write once it is durable (at its FUA, or
# at the next FLUSH after it completed), never one that a power cut could
# still lose. A full backup is taken before the log starts; then fio writes
# with fsyncs while acklog writes O_DSYNC blocks and logs each one once it
# is acknowledged, and three incremental backups (barriers, copies,
# releases as the chunks stream) run through it.
#
# The log is then replayed, point by point, to its FLUSH and FUA entries
# (every one with AMBER_POWERCUT_POINTS=all; by default a number of them
# spread over the whole log), and at each point, on a copy of the replayed
# store:
#   - the amber table loads, with no snapshot, tracking exact or superset,
#     an epoch at least the previous point's;
#   - every write acklog logged as acknowledged is on the origin;
#   - an incremental from the full backup taken before the log, and one from
#     the workload's backup of the store's epoch, each restored with its
#     chain, are the replayed origin, byte for byte: change tracking missed
#     nothing, and each barrier's backup holds only what the origin had made
#     durable when it was cut.
# Replayed whole, the log gives the data device as the workload left it.
. "$(dirname "$0")/amber_backup_lib.sh"

require_module dm-amber
require_module dm-log-writes
POINTS=${AMBER_POWERCUT_POINTS:-60}
MIN_POINTS=$([ "$POINTS" = all ] && echo 1000 || echo "$POINTS")
bk=/mnt/backups
entries=/tmp/powercut.entries
# The data device, in sectors: origin 8 MiB, store 16 MiB, ack log 1 MiB.
origin_len=16384
store_at=16384 store_len=32768
ack_at=49152 ack_len=2048
blocks=$((origin_len / 8))
slice pc-data origin 0 32
slice pc-log origin2 0 768
slice pc-base store 0 32
slice pc-replay store 32 32
slice pc-copy store 64 16
slice pc-target store 96 8
data=$(dm_dev pc-data)
log=$(dm_dev pc-log)
replay=$(dm_dev pc-replay)

# parts <prefix> <dev>: <prefix>-origin, -store and -ack on <dev>.
parts() {
	dm_create "$1-origin" "0 $origin_len linear $2 0"
	dm_create "$1-store" "0 $store_len linear $2 $store_at"
	dm_create "$1-ack" "0 $ack_len linear $2 $ack_at"
}

# volume <name> <origin> <store>: the amber table and its view. A chunk per
# write-intent region: every first write to a chunk in an epoch waits for an
# intent commit, the store's busiest metadata path.
volume() {
	dm_create "$1" "$(amber_table "$2" "$3" "$AMBER_CHUNK" intent_sectors="$AMBER_CHUNK")"
	dm_create "$1-view" "0 $origin_len amber-view $(dm_dev "$1")" --readonly
}

unvolume() {
	dm_remove "$1-view"
	dm_remove "$1"
}

epoch_of() {
	amber info "$1" | awk '$1 == "epoch" { print $2 }'
}

# The full backup, before the log: the store formatted, the origin filled,
# the volume removed cleanly. The data device is then copied to pc-base,
# where every replay starts.
full_backup_before_the_log() {
	parts pre "$data"
	amber_format "$(dm_dev pre-store)" "$(dm_dev pre-origin)"
	volume pre-vol "$(dm_dev pre-origin)" "$(dm_dev pre-store)"
	fill_volume "$(dm_dev pre-vol)"
	amber backup pre-vol --to "$bk/full.amb" | sed 's/^/# /'
	unvolume pre-vol
	dm_remove pre-ack
	dm_remove pre-store
	dm_remove pre-origin
	copy_dev "$data" "$(dm_dev pc-base)"
	[ "$(epoch_of "$bk/full.amb")" = 1 ]
}

# The workload, logged: fio with fsyncs on the first half of the volume,
# acklog's O_DSYNC writes on the second, three incrementals through them.
workload() {
	local fio_pid ack_pid i parent=$bk/full.amb
	dm_create pc "0 $(sectors "$data") log-writes $data $log"
	parts pc "$(dm_dev pc)"
	volume pc-vol "$(dm_dev pc-origin)" "$(dm_dev pc-store)"
	fio --name=pc --filename="$(dm_dev pc-vol)" --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=4k --iodepth=4 --size=$((origin_len / 4))k \
		--rate_iops=150 --fsync=8 --runtime=3600 --time_based \
		--output=/tmp/pc-fio.log >/dev/null &
	fio_pid=$!
	acklog write "$(dm_dev pc-vol)" "$(dm_dev pc-ack)" $((blocks / 2)) \
		$((blocks / 2)) dsync &
	ack_pid=$!
	# A failed backup must not leave the writers on the volume.
	trap 'kill "$fio_pid" "$ack_pid" 2>/dev/null; wait' EXIT
	for i in 1 2 3; do
		sleep 2
		amber backup pc-vol --incremental-from "$parent" --to "$bk/incr-$i.amb" |
			sed 's/^/# /'
		parent=$bk/incr-$i.amb
	done
	wait "$ack_pid"
	kill -INT "$fio_pid"
	wait "$fio_pid" || true
	trap - EXIT
	grep -q 'err= 0' /tmp/pc-fio.log || { sed 's/^/# /' /tmp/pc-fio.log; return 1; }
	[ "$(amber_field pc-vol copied)" -gt 0 ]
	[ "$(amber_field pc-vol released)" -gt 0 ]
	ktap_print_msg "$(amber_field pc-vol copied) chunks copied, $(amber_field pc-vol released) released"
	unvolume pc-vol
	dm_remove pc-ack
	dm_remove pc-store
	dm_remove pc-origin
	dmsetup message pc 0 mark end
	dm_remove pc
}

# The log ends with the end mark; its FLUSH and FUA entries are the points.
log_is_whole() {
	logreplay list "$log" >"$entries"
	ktap_print_msg "$(wc -l <"$entries") entries, $(flush_points | wc -l) with FLUSH or FUA"
	grep -q ' M 0 0 end$' "$entries" ||
		{ echo "# no end mark; the log ends:"; tail -n 3 "$entries" | sed 's/^/# /'; return 1; }
}

flush_points() {
	awk '$2 ~ /[FU]/ { print $1 }' "$entries"
}

# points: the entries to cut the power after: all, or POINTS spread evenly
# over the log, its last among them.
points() {
	if [ "$POINTS" = all ]; then
		flush_points
		return
	fi
	flush_points | awk -v n="$POINTS" '{ p[NR] = $1 }
		END { for (i = 1; i <= n && NR; i++) print p[int(i * NR / n + 0.5)] }' |
		awk 'NF && !seen[$1]++'
}

# chain <backup>: the files to restore it, the full first.
chain() {
	local e=$(($(epoch_of "$1") - 1))
	echo "$bk/full.amb"
	[ "$e" -lt 1 ] || seq 1 "$e" | sed "s|.*|$bk/incr-&.amb|"
}

# incremental_restores <parent>: an incremental of pc-cut from <parent>,
# restored with <parent>'s chain onto a zeroed target, is the replayed
# origin. Called as a plain statement, so that errexit holds in it.
incremental_restores() {
	local files
	mapfile -t files < <(chain "$1")
	[ "${#files[@]}" -ge 1 ]
	rm -f /tmp/pc-point.amb
	amber backup pc-cut --incremental-from "$1" --to /tmp/pc-point.amb \
		>/tmp/pc-backup.out 2>&1 || { sed 's/^/# /' /tmp/pc-backup.out; return 1; }
	scratch_wipe "$(dm_dev pc-target)"
	amber restore "${files[@]}" /tmp/pc-point.amb --to "$(dm_dev pc-target)" \
		>/tmp/pc-restore.out 2>&1 || { sed 's/^/# /' /tmp/pc-restore.out; return 1; }
	cmp "$(dm_dev pc-target)" "$(dm_dev r-origin)" >/tmp/pc-cmp.out 2>&1 ||
		{ echo "# from $(basename "$1"): $(cat /tmp/pc-cmp.out)"; return 1; }
}

# cut_at <entry>: the power cut after <entry>: on a copy of the replayed
# store, the table loads and all that the header says holds. Every line
# runs under errexit; the step's exit trap names the entry of a failure.
last_epoch=1
cut_at() {
	local epoch cbt
	cut_entry=$1
	copy_dev "$(dm_dev r-store)" "$(dm_dev pc-copy)"
	volume pc-cut "$(dm_dev r-origin)" "$(dm_dev pc-copy)"
	amber_expect pc-cut state idle
	cbt=$(amber_field pc-cut cbt)
	[ "$cbt" = exact ] || [ "$cbt" = superset ] || { echo "# tracking is $cbt"; return 1; }
	epoch=$(amber_field pc-cut epoch)
	cut_epoch=$epoch
	if [ "$epoch" -lt "$last_epoch" ] || [ "$epoch" -gt 4 ]; then
		echo "# epoch $epoch after $last_epoch"
		return 1
	fi
	last_epoch=$epoch
	acklog check "$(dm_dev r-origin)" "$(dm_dev r-ack)" >/tmp/pc-ack.out ||
		{ sed 's/^/# /' /tmp/pc-ack.out | head -n 20; return 1; }
	incremental_restores "$bk/full.amb"
	if [ "$epoch" -gt 1 ]; then
		incremental_restores "$bk/incr-$((epoch - 1)).amb"
	fi
	unvolume pc-cut
	cut_entry=
}

# name_the_cut: at the exit of a failed step, the cut it failed at, the
# store's epoch there and the log entries around it.
cut_entry=
cut_epoch=
name_the_cut() {
	[ -n "$cut_entry" ] || return 0
	echo "# at the power cut after entry $cut_entry: $(sed -n "$((cut_entry + 1))p" "$entries")"
	echo "# the store's epoch there: ${cut_epoch:-not read}; the entries before it:"
	sed -n "$((cut_entry > 12 ? cut_entry - 12 : 1)),$((cut_entry + 1))p" "$entries" | sed 's/^/#   /'
}

every_point_recovers() {
	local at done=0 checked=0 acked
	trap name_the_cut EXIT
	copy_dev "$(dm_dev pc-base)" "$replay"
	parts r "$replay"
	for at in $(points); do
		logreplay replay "$log" "$replay" "$done" $((at + 1))
		done=$((at + 1))
		cut_at "$at"
		checked=$((checked + 1))
	done
	acked=$(tail -n 1 /tmp/pc-ack.out)
	ktap_print_msg "$checked power cuts, the last at entry $done: epoch $last_epoch, $acked writes acknowledged"
	[ "$checked" -ge "$MIN_POINTS" ] || { echo "# only $checked cuts"; return 1; }
	[ "$acked" -gt 0 ] && [ "$last_epoch" -eq 4 ]
}

# The rest of the log: replayed whole it is the data device.
whole_log_is_the_data() {
	logreplay replay "$log" "$replay" 0 "$(wc -l <"$entries")"
	same_image "$replay" "$data"
}

# The steps make and remove devices of their own; whatever a failed one
# leaves is removed at exit, the last made first.
for dev in pre-origin pre-store pre-ack pre-vol pre-vol-view \
	pc pc-origin pc-store pc-ack pc-vol pc-vol-view \
	r-origin r-store r-ack pc-cut pc-cut-view; do
	defer dm_remove "$dev"
done
scratch_wipe "$data"
scratch_wipe "$log"
backup_fs store2 "$bk"

ktap_print_header
ktap_set_plan 5
ktap_step "a full backup is taken before the log starts" full_backup_before_the_log
ktap_step "fio with fsyncs and acknowledged O_DSYNC writes run through three incrementals" \
	workload
ktap_step "the log holds the workload to its end mark" log_is_whole
ktap_step "at each power cut the table loads, acknowledged writes are there, incrementals restore the origin" \
	every_point_recovers
ktap_step "replayed whole, the log is the data device" whole_log_is_the_data
ktap_finished
