# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Helpers of the backup selftests (amber_backup.sh, amber_incremental.sh,
# the crash tests), on top of amber_lib.sh: a file system for the backup
# files, a write load, references, and checks of the tool's exit status.
. "$(dirname "${BASH_SOURCE[0]}")/amber_lib.sh"

# backup_fs <disk role> <mount point>: a fresh ext4 for backup files,
# unmounted at exit. Call at top level (not in $(...) or a ktap_step).
backup_fs() {
	mkfs.ext4 -q -F "$(scratch_disk "$1")"
	mkdir -p "$2"
	mount "$(scratch_disk "$1")" "$2"
	defer umount "$2"
}

# fill_volume <dev>: every byte written, half-compressible random data (so
# zstd has work and chunks differ).
fill_volume() {
	fio --name=fill --filename="$1" --ioengine=libaio --direct=1 --rw=write \
		--bs=1M --iodepth=4 --buffer_compress_percentage=50 --refill_buffers \
		--output=/tmp/fill-fio.log >/dev/null
}

# load_start <dev> [fio options]: 4 KiB random writes until load_stop, in
# the background; the options add to the job, or add jobs (--name=...) that
# share its settings. One load at a time.
load_start() {
	local dev=$1
	shift
	fio --filename="$dev" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
		--iodepth=8 --runtime=3600 --time_based --refill_buffers \
		--group_reporting --output-format=json --output=/tmp/load-fio.json \
		--name=load "$@" >/dev/null &
	LOAD_PID=$!
}

# load_stop: stop the load; fail unless fio ran without an error and wrote.
# fio exits non-zero when stopped by a signal: its report is what counts.
load_stop() {
	kill -INT "$LOAD_PID"
	wait "$LOAD_PID" || true
	grep -q '"error" : 0,' /tmp/load-fio.json || { cat /tmp/load-fio.json; return 1; }
	! grep -q '"error" : [1-9]' /tmp/load-fio.json
	[ "$(load_written)" -gt 0 ]
}

# fio_io_bytes <json report> <read|write>: bytes fio moved that way (the
# first job, or all of them with group_reporting).
fio_io_bytes() {
	awk -v dir="\"$2\"" '$1 == dir && $3 == "{" { in_dir = 1 }
		in_dir && /"io_bytes"/ { gsub(/[^0-9]/, "", $3); print $3; exit }' "$1"
}

# load_written: bytes the last load wrote (all its jobs), from fio's report.
load_written() {
	fio_io_bytes /tmp/load-fio.json write
}

# sectors_written <dm name>: sectors written to a dm device since it was made.
sectors_written() {
	awk '{ print $7 }' "/sys/block/$(dmsetup info -c --noheadings -o blkdevname "$1")/stat"
}

# copy_dev <from> <to>: the whole of <from> onto <to>, O_DIRECT both ways.
copy_dev() {
	dd if="$1" of="$2" bs=1M iflag=direct oflag=direct status=none
}

# same_image <dev> <reference>: <dev> holds the reference (its size).
same_image() {
	cmp -n "$(blockdev --getsize64 "$2")" "$1" "$2" ||
		{ echo "# $1 differs from $2"; return 1; }
}

# dev_sum <dev>: SHA-256 of the whole device.
dev_sum() {
	sha256sum <"$1" | cut -d' ' -f1
}

# exits_with <status> <message ERE> <command...>: the command must exit
# with that status and say so on stderr; its message goes to the log.
exits_with() {
	local want=$1 pattern=$2 rc=0
	shift 2
	"$@" >/tmp/exits.out 2>/tmp/exits.err || rc=$?
	echo "# exit $rc: $(head -c 400 /tmp/exits.err)"
	[ "$rc" -eq "$want" ] || { echo "# $*: exit $rc, expected $want"; return 1; }
	grep -Eq -- "$pattern" /tmp/exits.err || { echo "# message lacks /$pattern/"; return 1; }
}

# backup_chunks <file>: the chunks (records) a backup holds, per amber verify.
backup_chunks() {
	amber verify "$1" | awk '$1 == "chunks" { print $2 }'
}

# backup_digest <file>: its image digest, per amber verify.
backup_digest() {
	amber verify "$1" | awk '$1 == "digest" { print $2 }'
}

# acklog_all_there <dev> <log>: every write that acklog logged as
# acknowledged before a crash is on <dev>, and there was at least one.
acklog_all_there() {
	local n
	acklog check "$1" "$2" >/tmp/acklog.out || { sed 's/^/# /' /tmp/acklog.out; return 1; }
	n=$(tail -n 1 /tmp/acklog.out)
	ktap_print_msg "$n writes were logged as acknowledged before the kill"
	[ "$n" -gt 0 ]
}
