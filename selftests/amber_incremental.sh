#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Incremental backups. A full and three incrementals taken while fio writes
# restore, as chains FULL, FULL+I1, ..., to exactly the image at each
# barrier (the view copied first is the reference). With the volume idle,
# an incremental holds exactly the chunks written since its parent. A chain
# with a link missing, out of order or of another volume is refused before
# anything is written. A consolidated FULL+I1+I2 restores to what the chain
# restores to, and the next incremental continues it. When the change maps
# since the parent are gone (more barriers than the store keeps) or the
# store was formatted anew, an incremental is refused.
. "$(dirname "$0")/amber_backup_lib.sh"

require_module dm-amber
bk=/mnt/backups
mib=64
slice in-origin origin 0 "$mib"
slice in-store store 0 96
slice in-other-origin origin "$mib" "$mib"
slice in-other-store store 96 8
for i in 0 1 2 3; do
	slice "in-ref$i" origin2 $((i * mib)) "$mib"
done
slice in-target origin2 $((4 * mib)) "$mib"
slice in-target2 origin2 $((5 * mib)) "$mib"
for s in in-origin in-other-origin in-target in-target2; do
	scratch_wipe "$(dm_dev "$s")"
done
amber_volume in-vol "$(dm_dev in-origin)" "$(dm_dev in-store)"
amber_volume in-other "$(dm_dev in-other-origin)" "$(dm_dev in-other-store)"
backup_fs store2 "$bk"
vol=$(dm_dev in-vol)
target=$(dm_dev in-target)
target2=$(dm_dev in-target2)
chunks=$((mib * 2048 / AMBER_CHUNK))

# backup_at <n>: barrier, view copied to in-ref<n>, backup <n> of that
# snapshot: full for 0, else incremental from backup <n - 1>.
backup_at() {
	local n=$1 parent=()
	[ "$n" -eq 0 ] || parent=(--incremental-from "$bk/b$((n - 1)).amb")
	amber snap in-vol >/dev/null
	copy_dev "$(dm_dev in-vol-view)" "$(dm_dev "in-ref$n")"
	amber backup in-vol --use-snapshot "${parent[@]}" --to "$bk/b$n.amb" |
		sed -n 's/^/# /; 1p'
}

# chain <n>: the files of backups 0 .. n.
chain() {
	local i
	for ((i = 0; i <= $1; i++)); do
		echo "$bk/b$i.amb"
	done
}

# fio writes about 30 random 4 KiB blocks a second all along: each
# incremental gets part of the volume, chunks change again in later ones.
chain_under_load_restores_each_barrier() {
	local n
	fill_volume "$vol"
	load_start "$vol" --rate_iops=30
	for n in 0 1 2 3; do
		sleep 2
		backup_at "$n"
	done
	load_stop
	for n in 0 1 2 3; do
		# shellcheck disable=SC2046 # one file per line, no spaces
		amber restore $(chain "$n") --to "$target" | sed 's/^/# /'
		same_image "$target" "$(dm_dev "in-ref$n")"
	done
	[ "$(backup_chunks "$bk/b0.amb")" -eq "$chunks" ]
	for n in 1 2 3; do
		[ "$(backup_chunks "$bk/b$n.amb")" -lt "$chunks" ]
	done
}

# write_chunks <seed> <count>: random data into <count> distinct chunks,
# chunk (seed + 97 k) % chunks for k = 0 .. count - 1: a whole chunk for
# even k, one 4 KiB block inside it for odd k.
write_chunks() {
	local k c
	for ((k = 0; k < $2; k++)); do
		c=$((($1 + 97 * k) % chunks))
		if ((k % 2 == 0)); then
			dd if=/dev/urandom of="$vol" bs=$((AMBER_CHUNK * 512)) seek="$c" count=1 \
				oflag=direct conv=notrunc status=none
		else
			dd if=/dev/urandom of="$vol" bs=4096 seek=$((c * AMBER_CHUNK / 8 + k % 16)) \
				count=1 oflag=direct conv=notrunc status=none
		fi
	done
}

# incremental <n>: incremental backup <n> from backup <n - 1>, no snap first.
incremental() {
	amber backup in-vol --incremental-from "$bk/b$(($1 - 1)).amb" --to "$bk/b$1.amb" >/dev/null
}

# Backup 4 takes what fio wrote after backup 3's barrier; then only the
# chunks written here change.
incrementals_hold_the_chunks_written() {
	local full n size
	incremental 4
	write_chunks 5 16
	incremental 5
	write_chunks 1000 64
	incremental 6
	full=$(stat -c %s "$bk/b0.amb")
	for n in 5 6; do
		size=$(stat -c %s "$bk/b$n.amb")
		ktap_print_msg "incremental $n: $(backup_chunks "$bk/b$n.amb") of $chunks chunks," \
			"$size bytes, $(awk -v s="$size" -v f="$full" 'BEGIN { printf "%.4f", s / f }')" \
			"of the full backup's $full"
	done
	[ "$(backup_chunks "$bk/b5.amb")" -eq 16 ]
	[ "$(backup_chunks "$bk/b6.amb")" -eq 64 ]
	# Four times the chunks, written alike: four times the bytes.
	awk -v a="$(stat -c %s "$bk/b5.amb")" -v b="$(stat -c %s "$bk/b6.amb")" \
		'BEGIN { exit !(b / a > 3.5 && b / a < 4.5) }'
	# shellcheck disable=SC2046
	amber restore $(chain 6) --to "$target" >/dev/null
	same_image "$target" "$vol"
}

bad_chains_are_refused_before_writing() {
	local sum
	amber backup in-other --to "$bk/other.amb" >/dev/null
	sum=$(dev_sum "$target")
	exits_with 3 'chain broken: .*b2.amb continues epoch [0-9]+, but .*b0.amb, is epoch' \
		amber restore "$bk/b0.amb" "$bk/b2.amb" --to "$target"
	exits_with 3 'chain broken: .*b2.amb continues epoch' \
		amber restore "$bk/b0.amb" "$bk/b2.amb" "$bk/b1.amb" --to "$target"
	exits_with 3 'b1.amb is of volume [-0-9a-f]+, .*other.amb of volume' \
		amber restore "$bk/other.amb" "$bk/b1.amb" --to "$target"
	exits_with 3 'b1.amb is an incremental backup: a chain starts with a full one' \
		amber restore "$bk/b1.amb" "$bk/b2.amb" --to "$target"
	exits_with 3 'b2.amb continues epoch' \
		amber consolidate "$bk/b0.amb" "$bk/b2.amb" --to "$bk/bad.amb"
	[ ! -e "$bk/bad.amb" ]
	[ "$(dev_sum "$target")" = "$sum" ]
}

consolidated_chain_restores_the_same() {
	amber consolidate "$bk/b0.amb" "$bk/b1.amb" "$bk/b2.amb" --to "$bk/c012.amb"
	amber verify "$bk/c012.amb" >/tmp/c012.verify
	grep -q '^  kind      full (consolidated)$' /tmp/c012.verify
	[ "$(backup_chunks "$bk/c012.amb")" -eq "$chunks" ]
	amber restore "$bk/b0.amb" "$bk/b1.amb" "$bk/b2.amb" --to "$target" >/dev/null
	amber restore "$bk/c012.amb" --to "$target2" >/dev/null
	cmp "$target" "$target2"
	same_image "$target2" "$(dm_dev in-ref2)"
	# Incremental 3 continues the consolidated backup as it does the chain.
	amber restore "$bk/c012.amb" "$bk/b3.amb" --to "$target2" >/dev/null
	same_image "$target2" "$(dm_dev in-ref3)"
}

# no_backup <file>: a refused backup leaves no file and no snapshot behind.
no_backup() {
	[ ! -e "$1" ] || { echo "# $1 was left behind"; return 1; }
	amber_expect in-vol state idle
}

# The store keeps 16 change maps: 16 more barriers and those since backup
# 6 are gone. A store formatted anew is another volume's. Either way a full
# backup starts a new chain.
incremental_needs_its_change_maps() {
	local i
	for i in $(seq 16); do
		amber snap in-vol >/dev/null
		amber_msg in-vol drop
	done
	exits_with 1 'change maps since epoch [0-9]+ are gone or untrusted: take a full backup' \
		amber backup in-vol --incremental-from "$bk/b6.amb" --to "$bk/b7.amb"
	no_backup "$bk/b7.amb"
	dmsetup remove in-vol-view
	dmsetup remove in-vol
	amber_format "$(dm_dev in-store)" "$(dm_dev in-origin)"
	dmsetup create in-vol --table "$(amber_table "$(dm_dev in-origin)" \
		"$(dm_dev in-store)" "$AMBER_CHUNK")"
	dmsetup create in-vol-view --readonly --table "0 $(sectors "$vol") amber-view $vol"
	exits_with 3 'b6.amb is not a backup of in-vol' \
		amber backup in-vol --incremental-from "$bk/b6.amb" --to "$bk/b7.amb"
	no_backup "$bk/b7.amb"
	amber backup in-vol --to "$bk/new0.amb" >/dev/null
	write_chunks 7 3
	amber backup in-vol --incremental-from "$bk/new0.amb" --to "$bk/new1.amb" >/dev/null
	[ "$(backup_chunks "$bk/new1.amb")" -eq 3 ]
	amber restore "$bk/new0.amb" "$bk/new1.amb" --to "$target" >/dev/null
	same_image "$target" "$vol"
}

# A suspend writes the change map and frees it, a resume reads it back, and
# a reloaded table reads what the table it replaces wrote: writes on every
# side of those are in the next incremental, and only they.
maps_survive_suspend_and_reload() {
	write_chunks 11 6
	dmsetup suspend in-vol
	dmsetup resume in-vol
	write_chunks 500 6
	dmsetup load in-vol --table "$(dmsetup table in-vol)"
	dmsetup resume in-vol
	write_chunks 900 6
	dmsetup suspend --noflush in-vol
	dmsetup resume in-vol
	amber_expect in-vol cbt exact
	amber backup in-vol --incremental-from "$bk/new1.amb" --to "$bk/new2.amb" >/dev/null
	[ "$(backup_chunks "$bk/new2.amb")" -eq 18 ]
	amber restore "$bk/new0.amb" "$bk/new1.amb" "$bk/new2.amb" --to "$target" >/dev/null
	same_image "$target" "$vol"
}

store_holds_chunks() {
	[ "$(amber_field "$1" used)" -gt 0 ]
}

# A reload with the same origin and store (here to change block_timeout_ms)
# keeps the snapshot: a full backup that runs across reloads, under fio,
# completes and restores to the view copied at the barrier.
reload_keeps_the_snapshot() {
	local t pid used during=0 i=0
	t=$(dmsetup table in-vol)
	load_start "$vol" --rate_iops=30
	# However the step ends, nothing it started keeps the volume busy.
	trap 'kill $LOAD_PID $pid 2>/dev/null; wait' EXIT
	amber snap in-vol >/dev/null
	copy_dev "$(dm_dev in-vol-view)" "$(dm_dev in-ref0)"
	# fio's first writes are in the store: the new table must have them.
	wait_until 30 store_holds_chunks in-vol
	used=$(amber_field in-vol used)
	klog_mark
	dmsetup load in-vol --table "$t"
	dmsetup resume in-vol
	klog_has "reload: the snapshot of epoch"
	ktap_print_msg "$used chunks in the store before the first reload, $(amber_field in-vol used) after"
	[ "$used" -gt 0 ]
	[ "$(amber_field in-vol used)" -ge "$used" ]
	amber_expect in-vol state active
	amber backup in-vol --use-snapshot --to "$bk/reload.amb" >/tmp/reload.out 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		dmsetup load in-vol --table "$(sed "s/block_timeout_ms=[0-9]*/block_timeout_ms=$((4000 + i))/" <<<"$t")"
		dmsetup resume in-vol
		# Reloads that ended while the backup still ran.
		! kill -0 "$pid" 2>/dev/null || during=$((during + 1))
		sleep 0.3
	done
	wait "$pid" || { sed 's/^/# /' /tmp/reload.out; return 1; }
	load_stop
	trap - EXIT
	ktap_print_msg "$during reloads while the backup ran: $(head -n 1 /tmp/reload.out)"
	[ "$during" -ge 1 ]
	dmsetup table in-vol | grep -q "block_timeout_ms=$((4000 + i))"
	amber_expect in-vol state idle
	amber restore "$bk/reload.amb" --to "$target" >/dev/null
	same_image "$target" "$(dm_dev in-ref0)"
}

# A reload onto another origin cannot go on with the snapshot: it ends, and
# the view fails its reads rather than serve the other origin's data.
reload_elsewhere_ends_the_snapshot() {
	local t other
	t=$(dmsetup table in-vol)
	other=$(dmsetup table in-other | awk '{ print $4 }')
	amber snap in-vol >/dev/null
	klog_mark
	dmsetup load in-vol --table "$(awk -v o="$other" '{ $4 = o; print }' <<<"$t")"
	dmsetup resume in-vol
	klog_has "reload: another origin, store or chunk size"
	amber_expect in-vol state idle
	fails dd if="$(dm_dev in-vol-view)" of=/dev/null bs=64k count=1 iflag=direct
	dmsetup load in-vol --table "$t"
	dmsetup resume in-vol
	amber_expect in-vol state idle
}

ktap_print_header
ktap_set_plan 8
ktap_step "a full and 3 incrementals under fio load restore to each barrier" \
	chain_under_load_restores_each_barrier
ktap_step "an idle volume's incrementals hold exactly the chunks written" \
	incrementals_hold_the_chunks_written
ktap_step "a chain missing a link, out of order or of another volume is refused" \
	bad_chains_are_refused_before_writing
ktap_step "consolidated FULL+I1+I2 restores as the chain does and is continued" \
	consolidated_chain_restores_the_same
ktap_step "an incremental needs the change maps since its parent" \
	incremental_needs_its_change_maps
ktap_step "the change maps survive suspends and a reload, and stay exact" \
	maps_survive_suspend_and_reload
ktap_step "a reload keeps the snapshot: a backup across it restores to its view" \
	reload_keeps_the_snapshot
ktap_step "a reload onto another origin ends the snapshot; the view fails" \
	reload_elsewhere_ends_the_snapshot
ktap_finished
