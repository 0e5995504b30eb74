#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The soak: for AMBER_SOAK_SECONDS (60 in make check; make soak
# DURATION=... for hours), fio writes and verifies (crc32c) files on ext4
# over an amber volume without a pause, while snapshots are raised, read
# whole, streamed, verified, restored and dropped one after another. Every
# cycle's restore must equal the view read at its barrier and that image
# must be a file system that checks clean after its journal replay; every
# fio pass must verify; the origin checks clean at the end. Kernel reports
# fail the run (the harness).
. "$(dirname "$0")/amber_backup_lib.sh"

require_module dm-amber
SECONDS_WANTED=${AMBER_SOAK_SECONDS:-60}
mib=192
slice s-origin origin 0 "$mib"
slice s-store store 0 "$mib"
slice s-ref origin2 0 "$mib"
slice s-target origin2 256 "$mib"
vol=$(dm_dev s-vol)
view=$(dm_dev s-vol-view)
ref=$(dm_dev s-ref)
target=$(dm_dev s-target)
bk=/mnt/backups
stop=/tmp/soak.stop
failures=/tmp/soak.failures
runs=/tmp/soak.runs

# fio passes back to back until $stop appears: random 4 KiB writes with
# fsyncs over 4 files, each pass verified (crc32c) before the next.
verified_writes() {
	local n=0
	while [ ! -e "$stop" ]; do
		fio --name=soak --directory=/mnt/soak --ioengine=libaio --direct=1 \
			--rw=randwrite --bs=4k --iodepth=8 --size=24M --nrfiles=4 \
			--fsync=64 --verify=crc32c --verify_fatal=1 --do_verify=1 \
			--output=/tmp/soak-fio.log >/dev/null ||
			{ echo "fio pass $n:"; cat /tmp/soak-fio.log; } >>"$failures"
		n=$((n + 1))
	done
	echo "$n" >"$runs"
}

# The barrier's image is a file system: replay the journal of a copy of it.
image_checks_clean() {
	mount "$1" /mnt/soak-check
	umount /mnt/soak-check
	e2fsck -fn "$1" >/tmp/soak-fsck.log 2>&1 ||
		{ sed 's/^/# /' /tmp/soak-fsck.log; return 1; }
}

# One cycle: barrier, the view read whole, a backup of that snapshot
# (releases, then drop), verify, restore, compare, fsck.
soak_cycle() {
	rm -f "$bk/soak.amb"
	amber snap s-vol >/dev/null
	copy_dev "$view" "$ref"
	amber backup s-vol --use-snapshot --to "$bk/soak.amb" >/dev/null
	amber_expect s-vol state idle
	amber verify "$bk/soak.amb" >/dev/null
	amber restore "$bk/soak.amb" --to "$target" --force >/dev/null
	same_image "$target" "$ref"
	image_checks_clean "$ref"
}

# The cycles run as plain statements (errexit stops the step at the first
# failing line); the trap stops the writer however the step ends.
soak() {
	local cycles=0 end=$((SECONDS + SECONDS_WANTED))
	rm -f "$stop" "$failures" "$runs"
	trap 'touch "$stop"; wait; echo "# after $cycles complete cycles"' EXIT
	verified_writes &
	while [ "$SECONDS" -lt "$end" ]; do
		soak_cycle
		cycles=$((cycles + 1))
	done
	touch "$stop"
	wait
	trap - EXIT
	ktap_print_msg "$cycles snapshot cycles and $(cat "$runs") verified fio passes in ${SECONDS_WANTED}s"
	[ ! -s "$failures" ] || { sed 's/^/# /' "$failures"; return 1; }
	[ "$cycles" -ge 2 ] && [ "$(cat "$runs")" -ge 1 ]
}

origin_checks_clean() {
	umount /mnt/soak
	e2fsck -fn "$vol" >/tmp/soak-fsck.log 2>&1 ||
		{ sed 's/^/# /' /tmp/soak-fsck.log; return 1; }
	amber_expect s-vol used 0
}

amber_volume s-vol "$(dm_dev s-origin)" "$(dm_dev s-store)"
backup_fs store2 "$bk"
mkdir -p /mnt/soak-check
ext4_mounted "$vol" /mnt/soak

ktap_print_header
ktap_set_plan 2
ktap_step "verified writes on ext4 through back-to-back backup cycles" soak
ktap_step "the origin checks clean and the store is empty afterwards" origin_checks_clean
ktap_finished
