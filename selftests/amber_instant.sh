#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Instant restore and amber mount. A full and an incremental of a plain
# device (backup --image) are restored with --instant to a wiped target:
# the device is readable and writable at once, reads give the chain's image
# before the background copy reached them, writes made during the restore
# survive it, and at the end the device is a linear one over the target,
# which holds the image plus those writes. A server killed with SIGKILL
# fails the reads of chunks not yet restored only; --resume finishes the
# restore without losing a write. amber mount serves a chain read-only, and
# a chunk whose record was damaged fails alone.
. "$(dirname "$0")/amber_backup_lib.sh"

require_module dm-clone
require_module nbd
bk=/mnt/backups
mib=128
slice is-src origin 0 "$mib"
slice is-ref origin "$mib" "$mib"
slice is-target origin2 0 $((mib + 8))	# the image, then the restore's metadata
backup_fs store2 "$bk"
src=$(dm_dev is-src)
ref=$(dm_dev is-ref)
target=$(dm_dev is-target)
chunk_sectors=$AMBER_CHUNK
chunks=$((mib * 2048 / chunk_sectors))
# show_logs: the servers' logs, into the test's.
show_logs() {
	local f
	for f in /run/amber-restore/*.log; do
		[ -e "$f" ] && sed "s|^|# $(basename "$f"): |" "$f"
	done
	return 0
}
defer show_logs
for name in is-inst-meta is-inst is-mnt is-bad; do	# removed last to first
	defer dm_remove "$name"
done

# fresh_target: no instant device left by an earlier step, a zeroed target.
fresh_target() {
	dm_remove is-inst
	dm_remove is-inst-meta
	scratch_wipe "$target" 2>/dev/null
}

# The chain: a full of random data, then an incremental after two writes;
# the reference is its plain restore.
fill_volume "$src"
amber backup --image "$src" --to "$bk/full.amb" 2>/dev/null
pattern_write "$src" 4096 256 inc-a
pattern_write "$src" $((chunks * chunk_sectors - 64)) 64 inc-b
amber backup --image "$src" --incremental-from "$bk/full.amb" --to "$bk/inc.amb" 2>/dev/null
amber restore "$bk/full.amb" "$bk/inc.amb" --to "$ref" >/dev/null
chain=("$bk/full.amb" "$bk/inc.amb")

# The writes made through the restored device, in regions the background
# copy has not reached (it is paused first): half of chunk 1000, the whole
# of chunk 1007, the last sectors. write_during <dev>, then the same on the
# reference with the same seeds.
write_during() {
	pattern_write "$1" $((1000 * chunk_sectors + 16)) 64 during-a
	pattern_write "$1" $((1007 * chunk_sectors)) "$chunk_sectors" during-b
	pattern_write "$1" $((chunks * chunk_sectors - 8)) 8 during-c
}

writes_hold() {
	pattern_verify "$1" $((1000 * chunk_sectors + 16)) 64 during-a &&
		pattern_verify "$1" $((1007 * chunk_sectors)) "$chunk_sectors" during-b &&
		pattern_verify "$1" $((chunks * chunk_sectors - 8)) 8 during-c
}

# status_says <name> <ERE>: amber status of <name> matches.
status_says() {
	amber status "$1" | grep -Eq -- "$2"
}

is_linear() {
	[ "$(dmsetup table "$1" | awk '{ print $3 }')" = linear ]
}

# hydrated <name>: dm-clone's hydrated/total regions.
hydrated() {
	dmsetup status "$1" | awk '{ print $7 }'
}

# server_pid <name>: the process serving <name>, as its log names it.
server_pid() {
	sed -n 's/.*serving .* (pid \([0-9]*\)).*/\1/p' "/run/amber-restore/$1.log" | tail -n 1
}

# The device answers at once, with the chain's image, and takes writes;
# the background copy ends in a linear device over a target that holds
# the image and the writes.
instant_restore_serves_at_once() {
	fresh_target
	amber restore --instant "${chain[@]}" --to "$target" --name is-inst | sed 's/^/# /'
	dmsetup message is-inst 0 disable_hydration
	ktap_print_msg "hydrated when the copy was paused: $(hydrated is-inst)"
	[ "$(hydrated is-inst | cut -d/ -f1)" -lt 1000 ]	# the reads below are on demand
	[ "$(blockdev --getss "$(dm_dev is-inst)")" = "$(blockdev --getss "$target")" ]
	pattern_verify "$(dm_dev is-inst)" 4096 256 inc-a || { echo "# inc-a"; return 1; }
	pattern_verify "$(dm_dev is-inst)" $((chunks * chunk_sectors - 64)) 64 inc-b ||
		{ echo "# inc-b"; return 1; }
	write_during "$(dm_dev is-inst)"
	writes_hold "$(dm_dev is-inst)" || { echo "# the writes made during it"; return 1; }
	wait_until 10 status_says is-inst 'is-inst: instant restore, restoring'
	dmsetup message is-inst 0 enable_hydration
	wait_until 600 is_linear is-inst
	wait_until 10 status_says is-inst 'is-inst: instant restore, restored, 100.0 %'
	amber status | grep -q '^is-inst: instant restore, restored'
	amber status --json is-inst | grep -q '"read_errors":0'
	amber status is-inst | sed 's/^/# /'
	[ ! -e "$(dm_dev is-inst-meta)" ]
	grep -q 'is a linear device over' /run/amber-restore/is-inst.log
	write_during "$ref"
	same_image "$(dm_dev is-inst)" "$ref"
	same_image "$target" "$ref"
	dm_remove is-inst
	amber restore "${chain[@]}" --to "$ref" >/dev/null	# the reference again
}

# SIGKILL to the server: what was restored (the region written first)
# still reads, the last region (copied last) fails with EIO, and --resume
# finishes the restore with the writes made before the kill kept.
killed_server_then_resume() {
	local pid hydrated
	fresh_target
	amber restore --instant "${chain[@]}" --to "$target" --name is-inst >/dev/null
	dmsetup message is-inst 0 disable_hydration
	write_during "$(dm_dev is-inst)"
	pid=$(server_pid is-inst)
	ktap_print_msg "killing the server, pid $pid"
	kill -9 "$pid"
	wait_until 10 test ! -e "/proc/$pid"
	hydrated=$(hydrated is-inst)
	ktap_print_msg "hydrated when the server was killed: $hydrated"
	[ "${hydrated%/*}" -lt "${hydrated#*/}" ]
	writes_hold "$(dm_dev is-inst)" || { echo "# a write made before the kill is gone"; return 1; }
	if dd if="$(dm_dev is-inst)" of=/dev/null bs=512 count=8 iflag=direct \
		skip=$((chunks * chunk_sectors - 2 * chunk_sectors)) status=none 2>/tmp/eio.err; then
		echo "# a region not restored was read with no server"
		return 1
	fi
	grep -q 'Input/output error' /tmp/eio.err || { cat /tmp/eio.err; return 1; }
	status_says is-inst 'stopped: its server is not running'
	exits_with 2 "exists .--resume continues" \
		amber restore --instant "${chain[@]}" --to "$target" --name is-inst
	exits_with 2 "records the instant restore of another chain" \
		amber restore --instant --resume "$bk/full.amb" --to "$target" --name is-inst
	exits_with 2 "is the target" amber restore --instant --resume "${chain[@]}" \
		--to "$target" --metadata "$target" --name is-inst
	amber restore --instant --resume "${chain[@]}" --to "$target" --name is-inst |
		sed 's/^/# /'
	dmsetup message is-inst 0 enable_hydration
	wait_until 600 is_linear is-inst
	write_during "$ref"
	same_image "$(dm_dev is-inst)" "$ref"
	dm_remove is-inst
	amber restore "${chain[@]}" --to "$ref" >/dev/null
}

# amber mount: the chain read-only, nothing written to any device; umount
# refuses a device it did not make.
mount_serves_read_only() {
	amber mount "${chain[@]}" --name is-mnt | sed 's/^/# /'
	[ "$(blockdev --getro "$(dm_dev is-mnt)")" = 1 ]
	same_image "$(dm_dev is-mnt)" "$ref"
	exits_with 2 "is not a device amber mount made" amber umount is-src
	exits_with 2 "not starting with '.'" amber mount "${chain[@]}" --name ../x
	exits_with 2 "letters, digits" amber mount "${chain[@]}" --name a/b
	amber umount is-mnt
	[ ! -e "$(dm_dev is-mnt)" ]
}

# A flipped byte in one record: the mount serves every other chunk, and a
# read of that one fails with EIO instead of returning unproven data.
damaged_chunk_fails_alone() {
	local bad
	cp "$bk/full.amb" "$bk/bad.amb"
	flip_at "$bk/bad.amb" $(($(stat -c %s "$bk/bad.amb") / 2))
	amber verify "$bk/bad.amb" >/tmp/bad.out 2>&1 || true
	sed 's/^/# /' /tmp/bad.out
	bad=$(grep -oE 'chunk [0-9]+' /tmp/bad.out | head -n 1 | cut -d' ' -f2)
	ktap_print_msg "the damaged chunk: $bad"
	[ -n "$bad" ]
	amber mount "$bk/bad.amb" --name is-bad >/dev/null
	if dd if="$(dm_dev is-bad)" of=/dev/null bs=$((chunk_sectors * 512)) count=1 \
		skip="$bad" iflag=direct status=none 2>/dev/null; then
		echo "# chunk $bad was read"
		return 1
	fi
	cmp <(dd if="$(dm_dev is-bad)" bs=$((chunk_sectors * 512)) count=1 \
		skip=$((bad + 1)) iflag=direct status=none) \
		<(dd if="$src" bs=$((chunk_sectors * 512)) count=1 skip=$((bad + 1)) \
		iflag=direct status=none) ||
		[ "$bad" -eq $((chunks - 1)) ]
	amber umount is-bad
	sed 's/^/# /' /run/amber-restore/is-bad.log
	grep -q "chunk $bad: " /run/amber-restore/is-bad.log
}

# flip_at <file> <offset>: invert one byte in place.
flip_at() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((b ^ 0xff)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

ktap_print_header
ktap_set_plan 4
ktap_step "an instant restore serves the chain at once and ends as a linear device" \
	instant_restore_serves_at_once
ktap_step "a killed server fails unrestored reads only; --resume finishes" \
	killed_server_then_resume
ktap_step "amber mount serves a chain read-only" mount_serves_read_only
ktap_step "a damaged chunk of a mounted backup fails alone" damaged_chunk_fails_alone
ktap_finished
