#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Memory pressure from outside the module, while snapshots copy on write:
#  - a memory cgroup too small for its page cache: buffered fio writes
#    (verified, crc32c) on ext4 over amber in a 32 MiB cgroup, and the
#    backup streaming the snapshot in a 64 MiB one (it holds about 36 MiB
#    of buffers with 2 CPUs), so both write back and reclaim inside their
#    limit;
#  - the whole machine short of memory: a tmpfs hog leaves about 96 MiB
#    free while buffered writes copy on write and the view is read.
# Each step shows the pressure was real (the cgroup hit its limit; the
# kernel scanned pages to reclaim them), that nobody was killed, that fio
# verified, and that the backup and the view are the barrier's image.
. "$(dirname "$0")/amber_backup_lib.sh"

require_module dm-amber
mib=160
slice p-origin origin 0 "$mib"
slice p-store store 0 "$mib"
slice p-ref origin2 0 "$mib"
slice p-target origin2 256 "$mib"
vol=$(dm_dev p-vol)
view=$(dm_dev p-vol-view)
ref=$(dm_dev p-ref)
target=$(dm_dev p-target)
cg=/sys/fs/cgroup
bk=/mnt/backups

# ---- a cgroup at its limit -------------------------------------------------

# cgroup_ready: cgroup v2 with the memory controller, or a skip.
cgroup_ready() {
	grep -q " $cg cgroup2 " /proc/mounts || mount -t cgroup2 none "$cg"
	grep -qw memory "$cg/cgroup.controllers" || return 1
	echo +memory >"$cg/cgroup.subtree_control"
}

# in_cgroup <name> <command...>: run the command in cgroup <name>.
in_cgroup() {
	local name=$1
	shift
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg/$name" "$@"
}

# make_cgroup <name> <bytes>: a fresh memory cgroup, removed at exit.
make_cgroup() {
	mkdir "$cg/$1"
	echo "$2" >"$cg/$1/memory.max"
	defer rmdir "$cg/$1"
}

# memory_event <cgroup> <event>: its count in memory.events.
memory_event() {
	awk -v e="$2" '$1 == e { print $2 }' "$cg/$1/memory.events"
}

# cgroup_pressed <cgroup>: it reached its limit and nothing in it was killed.
cgroup_pressed() {
	local max oom
	max=$(memory_event "$1" max)
	oom=$(memory_event "$1" oom_kill)
	ktap_print_msg "cgroup $1: limit reached $max times, $oom killed"
	[ "$max" -gt 0 ] && [ "$oom" -eq 0 ]
}

# fio_verified <log>: the fio run of that log wrote and verified.
fio_verified() {
	grep -q 'err= 0' "$1" && ! grep -q 'verify: bad' "$1" ||
		{ sed 's/^/# /' "$1"; return 1; }
}

cgroup_writes_and_backup() {
	local fio_pid rc=0
	rm -f "$bk/p.amb"
	fio --name=lay --directory=/mnt/p --rw=write --bs=1M --size=64M \
		--output=/tmp/p-lay.log >/dev/null
	sync
	amber snap p-vol >/dev/null
	copy_dev "$view" "$ref"
	in_cgroup p-fio fio --name=pressed --directory=/mnt/p --rw=randwrite \
		--bs=4k --size=48M --io_size=24M --fsync=256 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --output=/tmp/p-fio.log >/dev/null &
	fio_pid=$!
	in_cgroup p-backup amber backup p-vol --use-snapshot --to "$bk/p.amb" \
		>/dev/null || rc=$?
	wait "$fio_pid"
	[ "$rc" -eq 0 ]
	fio_verified /tmp/p-fio.log
	cgroup_pressed p-fio
	amber_expect p-vol state idle
	amber verify "$bk/p.amb" >/dev/null
	amber restore "$bk/p.amb" --to "$target" --force >/dev/null
	same_image "$target" "$ref"
}

# ---- the whole machine -----------------------------------------------------

# pages_scanned: pages the kernel has scanned to reclaim, so far.
pages_scanned() {
	awk '$1 ~ /^pgscan_(kswapd|direct)$/ { n += $2 } END { print n }' /proc/vmstat
}

# hog_memory <MiB left>: fill a tmpfs (no swap: it cannot be reclaimed)
# until about that much memory is available; freed at exit.
hog_memory() {
	local avail
	avail=$(awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo)
	mkdir -p /mnt/hog
	mount -t tmpfs -o size=100% hog /mnt/hog
	defer umount /mnt/hog
	defer rm -f /mnt/hog/fill
	dd if=/dev/zero of=/mnt/hog/fill bs=1M count=$((avail - $1)) status=none
	ktap_print_msg "hog holds $((avail - $1)) MiB, $(awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo) MiB left available"
}

machine_short_of_memory() {
	local scanned fio_pid
	umount /mnt/p
	copy_dev "$vol" "$ref"
	amber snap p-vol >/dev/null
	hog_memory 96
	scanned=$(pages_scanned)
	fio --name=short --filename="$vol" --rw=randwrite --bs=16k \
		--io_size=32M --fsync=512 --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --output=/tmp/p-short.log >/dev/null &
	fio_pid=$!
	dd if="$view" of="$target" bs=1M status=none
	wait "$fio_pid"
	rm -f /mnt/hog/fill
	fio_verified /tmp/p-short.log
	ktap_print_msg "$(($(pages_scanned) - scanned)) pages scanned for reclaim"
	[ "$(pages_scanned)" -gt "$scanned" ]
	same_image "$target" "$ref"
	same_image "$view" "$ref"
	klog_lacks "invoked oom-killer"
	amber_msg p-vol drop >/dev/null
	amber_expect p-vol used 0
}

amber_volume p-vol "$(dm_dev p-origin)" "$(dm_dev p-store)"
backup_fs store2 "$bk"
ext4_mounted "$vol" /mnt/p

ktap_print_header
ktap_set_plan 2
if cgroup_ready; then
	make_cgroup p-fio $((32 << 20))
	make_cgroup p-backup $((64 << 20))
	ktap_step "verified writes and a backup in small memory cgroups" \
		cgroup_writes_and_backup
else
	ktap_test_skip "no memory cgroup controller on this kernel"
fi
ktap_step "buffered copy-on-write and the view read with 96 MiB left" \
	machine_short_of_memory
ktap_finished
