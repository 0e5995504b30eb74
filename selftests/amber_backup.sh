#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# amber backup, verify and restore end to end. A backup taken while fio
# writes to the volume restores to exactly the image at its barrier (a copy
# of the view taken first is the reference); a flipped byte or a truncated
# file is refused by verify and restore, naming where; a backup streams
# through a pipe and restores from standard input; a store far smaller than
# what fio writes during a backup suffices, because the backup releases what
# it has sent; restore refuses a target too small or holding a filesystem.
. "$(dirname "$0")/amber_backup_lib.sh"

require_module dm-amber
bk=/mnt/backups
slice bk-origin origin 0 64
slice bk-store store 0 96
slice bk-origin2 origin 64 128
slice bk-store2 store 96 2		# 30 slots of 64 KiB for 128 MiB
slice bk-ref origin2 0 64
slice bk-target origin2 64 128		# for either volume
slice bk-small origin2 192 32
slice bk-fs origin2 224 64
slice bk-ref2 origin2 288 128
for s in bk-origin bk-origin2 bk-ref bk-target bk-small bk-fs bk-ref2; do
	scratch_wipe "$(dm_dev "$s")"
done
amber_volume bk-vol "$(dm_dev bk-origin)" "$(dm_dev bk-store)"
amber_volume bk-tiny "$(dm_dev bk-origin2)" "$(dm_dev bk-store2)"
backup_fs store2 "$bk"
vol=$(dm_dev bk-vol)
view=$(dm_dev bk-vol-view)
ref=$(dm_dev bk-ref)
target=$(dm_dev bk-target)
chunks=$((64 * 2048 / AMBER_CHUNK))

# The reference is the view copied right after the barrier, fio writing all
# along; the backup then streams the same snapshot. fio keeps writing after
# the barrier, so the restored image must differ from the volume.
backup_under_load_restores_the_barrier() {
	local early
	fill_volume "$vol"
	load_start "$vol"
	sleep 1
	amber snap bk-vol >/dev/null
	copy_dev "$view" "$ref"
	amber backup bk-vol --use-snapshot --to "$bk/full.amb" >/tmp/full.out
	load_stop
	sed 's/^/# /' /tmp/full.out
	amber_expect bk-vol state idle
	early=$(sed -nE 's/.* ([0-9]+) from the store first.*/\1/p' /tmp/full.out)
	[ "$early" -gt 0 ] || { echo "# no chunk came from the store: no load?"; return 1; }
	amber verify "$bk/full.amb" | sed 's/^/# /'
	[ "$(backup_chunks "$bk/full.amb")" -eq "$chunks" ]
	amber restore "$bk/full.amb" --to "$target"
	same_image "$target" "$ref"
	! same_image "$target" "$vol" >/dev/null 2>&1 || { echo "# the load changed nothing"; return 1; }
}

# flip_byte <file> <offset>: invert one byte in place.
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf '%b' "\\x$(printf %02x $((b ^ 0xff)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# Half the records are written before the flipped one is found: the target
# is then reported incomplete. A truncated file is refused before writing.
damaged_backups_are_refused() {
	local size sum
	size=$(stat -c %s "$bk/full.amb")
	cp "$bk/full.amb" "$bk/flip.amb"
	flip_byte "$bk/flip.amb" $((size / 2))
	# Format 2 names a record "chunk C, record N at offset X"; half the file
	# may also fall in an index block, which lies among the records.
	exits_with 3 '^amber verify: .*flip.amb: (chunk [0-9]+, )?(record|index block) [0-9]+ at offset [0-9]+: ' \
		amber verify "$bk/flip.amb"
	exits_with 3 '(record|index block) [0-9]+ at offset [0-9]+: .*is incomplete \([1-9][0-9]* chunks written\)' \
		amber restore "$bk/flip.amb" --to "$target"
	head -c $((size / 2)) "$bk/full.amb" >"$bk/trunc.amb"
	exits_with 3 'trunc.amb: (chunk [0-9]+, )?(record|index block) [0-9]+ at offset [0-9]+: .*truncated at offset [0-9]+' \
		amber verify "$bk/trunc.amb"
	exits_with 3 '^amber verify: -: (chunk [0-9]+, )?(record|index block) [0-9]+ at offset [0-9]+: .*truncated at offset' \
		amber verify - <"$bk/trunc.amb"
	sum=$(dev_sum "$target")
	exits_with 3 'trunc.amb: .*offset [0-9]+' amber restore "$bk/trunc.amb" --to "$target"
	[ "$(dev_sum "$target")" = "$sum" ]
	rm "$bk/flip.amb" "$bk/trunc.amb"
}

# backup | cat > file, verify it, cat file | restore. The volume is idle: the
# image is the volume itself. The summary goes to stderr, not into the pipe.
# cat, not a redirection: standard input must be a pipe, not a seekable file.
pipe_round_trip() {
	amber backup bk-vol --to - 2>/tmp/pipe.err | cat >"$bk/pipe.amb"
	grep -q "^bk-vol: full backup of epoch [0-9]*: $chunks chunks" /tmp/pipe.err
	amber verify "$bk/pipe.amb" >/dev/null
	cat "$bk/pipe.amb" | amber verify - >/dev/null
	cat "$bk/pipe.amb" | amber restore - --to "$target"
	same_image "$target" "$vol"
	rm "$bk/pipe.amb"
}

# watch_store <name> <out>: until /tmp/watch.stop exists, poll the status
# every 0.1 s; <out> gets "<peak used> <most copied> <states seen>".
watch_store() {
	local used copied state peak=0 most=0 states=" "
	while [ ! -e /tmp/watch.stop ]; do
		read -r state used copied < <(dmsetup status "$1" |
			awk '{ split($7, s, "/"); print $4, s[1], $8 }')
		[ "$used" -le "$peak" ] || peak=$used
		[ "$copied" -le "$most" ] || most=$copied
		[[ $states == *" $state "* ]] || states="$states$state "
		echo "$peak $most$states" >"$2"
		sleep 0.1
	done
}

# fio overwrites the volume during the backup, as a database does: a hot
# MiB again and again, and 4 KiB writes scattered over the whole volume. The
# store holds 2 MiB for a 128 MiB volume. overflow=block holds a write that
# finds the store full until the backup releases a chunk it has made
# durable: the backup must complete, with more chunks copied than the store
# has slots and far more data written than the store holds, and restore to
# the image at the barrier.
release_driven_backup() {
	local vol2 before after total peak most states written store_bytes t0 secs watcher
	vol2=$(dm_dev bk-tiny)
	fill_volume "$vol2"
	copy_dev "$vol2" "$(dm_dev bk-ref2)"	# idle: the image the barrier cuts
	amber snap bk-tiny >/dev/null
	rm -f /tmp/watch.stop
	watch_store bk-tiny /tmp/watch.out &
	watcher=$!
	load_start "$vol2" --name=hot --size=1M
	sleep 1
	before=$(sectors_written bk-tiny)
	t0=$(date +%s.%N)
	amber backup bk-tiny --use-snapshot --to "$bk/tiny.amb" >/tmp/tiny.out
	secs=$(echo "$(date +%s.%N) $t0" | awk '{ printf "%.1f", $1 - $2 }')
	after=$(sectors_written bk-tiny)
	touch /tmp/watch.stop
	wait "$watcher"
	load_stop
	sed 's/^/# /' /tmp/tiny.out
	read -r peak most states </tmp/watch.out
	total=$(amber_field bk-tiny total)
	written=$(((after - before) * 512))
	store_bytes=$((total * AMBER_CHUNK * 512))
	ktap_print_msg "store $total slots ($((store_bytes >> 10)) KiB), peak use $peak slots" \
		"($((peak * AMBER_CHUNK / 2)) KiB), $most chunks copied; written during the" \
		"${secs} s backup: $((written >> 10)) KiB" \
		"($(awk -v w="$written" -v s="$store_bytes" 'BEGIN { printf "%.1f", w / s }') x the store);" \
		"writes that waited since load: $(amber_field bk-tiny waited); states seen:$states"
	[ "$peak" -eq "$total" ]		# the store filled up ...
	[ "$most" -gt "$total" ]		# ... and its slots were reused
	[ "$written" -gt $((4 * store_bytes)) ]
	[[ $states != *invalid* ]]
	amber_expect bk-tiny state idle
	amber restore "$bk/tiny.amb" --to "$target"
	same_image "$target" "$(dm_dev bk-ref2)"
	rm "$bk/tiny.amb"
}

restore_refuses_bad_targets() {
	local small fs sum
	small=$(dm_dev bk-small)
	fs=$(dm_dev bk-fs)
	sum=$(dev_sum "$small")
	exits_with 1 "bk-small is 33554432 bytes, the image needs 67108864" \
		amber restore "$bk/full.amb" --to "$small"
	[ "$(dev_sum "$small")" = "$sum" ]
	mkfs.ext4 -q -F "$fs"
	sum=$(dev_sum "$fs")
	exits_with 1 'bk-fs holds an ext2/3/4 filesystem: refusing to overwrite it \(--force' \
		amber restore "$bk/full.amb" --to "$fs"
	[ "$(dev_sum "$fs")" = "$sum" ]
	amber restore "$bk/full.amb" --to "$fs" --force >/dev/null
	same_image "$fs" "$ref"
}

# A plain dm-linear device backed up with --image restores to it, and an
# incremental against that backup carries exactly the chunks changed since.
# amber's volume, its view and the origin under it are refused, naming why.
image_backups_of_plain_devices() {
	local img
	img=$(dm_dev bk-ref)
	amber backup --image "$img" --to "$bk/img.amb" 2>/tmp/img.err
	sed 's/^/# /' /tmp/img.err
	amber restore "$bk/img.amb" --to "$target"
	same_image "$target" "$img"
	dd if=/dev/urandom of="$img" bs=4096 count=1 seek=5 oflag=direct status=none
	dd if=/dev/zero of="$img" bs=1M count=1 seek=40 oflag=direct status=none
	amber backup --image "$img" --incremental-from "$bk/img.amb" \
		--to "$bk/img-inc.amb" 2>/tmp/img.err
	sed 's/^/# /' /tmp/img.err
	# one 64 KiB chunk (the default) for the 4 KiB write, 16 zeroed
	[ "$(backup_chunks "$bk/img-inc.amb")" -eq 17 ]
	amber restore "$bk/img.amb" "$bk/img-inc.amb" --to "$target"
	same_image "$target" "$img"
	exits_with 1 "is an amber volume" amber backup --image "$vol" --to "$bk/x.amb"
	exits_with 1 "is the view of an amber snapshot" \
		amber backup --image "$view" --to "$bk/x.amb"
	exits_with 1 "lies under an amber volume" \
		amber backup --image "$(dm_dev bk-origin)" --to "$bk/x.amb"
	[ ! -e "$bk/x.amb" ]
	rm "$bk/img.amb" "$bk/img-inc.amb"
}

ktap_print_header
ktap_set_plan 6
ktap_step "a backup under fio load restores to the image at its barrier" \
	backup_under_load_restores_the_barrier
ktap_step "verify and restore refuse a flipped byte and a truncated file" \
	damaged_backups_are_refused
ktap_step "a backup through a pipe verifies and restores from stdin" pipe_round_trip
ktap_step "a store far smaller than the writes during a backup suffices" \
	release_driven_backup
ktap_step "restore refuses a target too small or holding a filesystem" \
	restore_refuses_bad_targets
ktap_step "--image backs up a plain device; amber's own are refused" \
	image_backups_of_plain_devices
ktap_finished
