#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Faults: a store that fails every I/O, a flakey store (dm-flakey), an
# origin that fails every I/O, a backup killed with SIGKILL in the middle.
# The origin never loses an acknowledged write, errors reach the caller
# unchanged, nothing hangs, the store is reclaimed and the module unloads.
. "$(dirname "$0")/amber_backup_lib.sh"

require_module dm-amber
require_module dm-flakey
slice f-origin origin 0 32
slice f-store store 0 48
origin=$(dm_dev f-origin)
store=$(dm_dev f-store)
amber_volume f-vol "$origin" "$store"
vol=$(dm_dev f-vol)
chunks=$(($(sectors "$origin") / AMBER_CHUNK))

# break_dev / mend_dev <slice> <disk role> <offset MiB>: swap a slice's table
# between an error target and its linear mapping, live.
break_dev() {
	dmsetup load "$1" --table "0 $(sectors "$(dm_dev "$1")") error"
	dmsetup resume "$1"
}

mend_dev() {
	dmsetup load "$1" --table "0 $(sectors "$(dm_dev "$1")") linear $(scratch_disk "$2") $(($3 * 2048))"
	dmsetup resume "$1"
}

store_errors_invalidate_only_the_view() {
	chunk_pattern_write "$vol" 0 "$chunks" before
	# An epoch that writes nothing: the next barrier takes no region's
	# intent ahead, so the writes after it need a map write each.
	amber_msg f-vol snap >/dev/null
	amber_msg f-vol drop
	amber_msg f-vol snap >/dev/null
	break_dev f-store
	chunk_pattern_write "$vol" 0 8 during
	mend_dev f-store store 0
	amber_expect f-vol state invalid
	amber_expect f-vol reason store_io_error
	amber_expect f-vol cbt invalid
	chunk_unreadable "$(dm_dev f-vol-view)" 20
	chunk_pattern_verify "$vol" 0 8 during
	chunk_pattern_verify "$vol" 8 $((chunks - 8)) before
	klog_has "invalidated: store_io_error"
	amber_msg f-vol drop
	amber_expect f-vol used 0
}

# tracking_given_up_on_map_write_errors: f-vol's tracking is 'invalid' if
# the kernel logged a failed change map write since the step began, else
# still 'exact'.
tracking_given_up_on_map_write_errors() {
	case $(klog_find "change map write failed") in
	yes)
		echo "# a change map write failed: the tracking is given up"
		amber_expect f-vol cbt invalid
		;;
	no)
		echo "# every change map write landed: the tracking holds"
		amber_expect f-vol cbt exact
		;;
	*)
		echo "# the kernel log no longer holds the step's mark"
		return 1
		;;
	esac
}

# dm-flakey under the store, up 1 s and failing every I/O the next second,
# while verified writes overwrite the volume under a snapshot: a failed
# copy gives the snapshot up and never fails a write. The tracking is given
# up exactly when one of its map writes failed, which here depends on the
# second the first write to each intent region fell in (the step before
# fails them for sure).
flakey_store_costs_only_the_view() {
	amber_msg f-vol snap >/dev/null
	dmsetup load f-store --table "0 $(sectors "$store") flakey $(scratch_disk store) 0 1 1"
	dmsetup resume f-store
	fio --name=flakey --filename="$vol" --ioengine=libaio --direct=1 \
		--rw=randwrite --bs=4k --iodepth=8 --io_size=48M --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --output=/tmp/flakey-fio.log >/dev/null ||
		{ sed 's/^/# /' /tmp/flakey-fio.log; return 1; }
	mend_dev f-store store 0
	grep -q 'err= 0' /tmp/flakey-fio.log
	amber_expect f-vol state invalid
	amber_expect f-vol reason store_io_error
	tracking_given_up_on_map_write_errors
	chunk_unreadable "$(dm_dev f-vol-view)" 3
	amber drop f-vol >/dev/null
	amber_expect f-vol used 0
	chunk_pattern_write "$vol" 0 "$chunks" before
}

origin_errors_reach_the_caller() {
	break_dev f-origin
	fails dd if=/dev/zero of="$vol" bs=64k count=1 oflag=direct status=none
	fails dd if="$vol" of=/dev/null bs=64k count=1 iflag=direct status=none
	mend_dev f-origin origin 0
	chunk_pattern_verify "$vol" 8 $((chunks - 8)) before
	# Under a snapshot the copy's read fails: the view is given up, the
	# write itself still reaches the (mended) origin and its own error.
	amber_msg f-vol snap >/dev/null
	break_dev f-origin
	fails dd if=/dev/zero of="$vol" bs=64k seek=30 count=1 oflag=direct status=none
	mend_dev f-origin origin 0
	amber_expect f-vol state invalid
	amber_expect f-vol reason origin_io_error
	amber status f-vol | grep -q 'invalid.*origin_io_error'
	amber drop f-vol | grep -qx 'f-vol dropped (epoch 4)'
	exits_with 1 'f-vol: no snapshot to drop' amber drop f-vol
	chunk_pattern_write "$vol" 30 1 after
	chunk_pattern_verify "$vol" 30 1 after
}

# The backup streams into a pipe nobody reads, so it is surely mid-stream
# (blocked on a full pipe) when it is killed.
killed_backup_leaves_nothing_frozen() {
	local pid reader
	mkfifo /tmp/stalled
	sleep 60 </tmp/stalled &
	reader=$!
	amber backup f-vol --to - --no-compress >/tmp/stalled &
	pid=$!
	wait_until 20 amber_is f-vol state active
	sleep 1
	kill -9 "$pid"
	wait "$pid" || true
	kill "$reader"
	amber_expect f-vol state active
	# Writes are not frozen: they go on (and copy) with the snapshot left.
	timeout 20 dd if=/dev/zero of="$vol" bs=64k seek=40 count=4 oflag=direct status=none
	amber drop f-vol >/dev/null
	amber_expect f-vol state idle
	amber_expect f-vol used 0
	# The backup can simply start again.
	amber backup f-vol --to /tmp/again.amb --no-compress
	amber verify /tmp/again.amb >/dev/null
	amber_expect f-vol state idle
}

ktap_print_header
ktap_set_plan 4
ktap_step "store I/O errors invalidate the view, never an origin write" store_errors_invalidate_only_the_view
ktap_step "a flakey store (dm-flakey) costs the view, never a write" flakey_store_costs_only_the_view
ktap_step "origin I/O errors reach the caller unchanged, no hang" origin_errors_reach_the_caller
ktap_step "a backup killed with SIGKILL leaves nothing frozen" killed_backup_leaves_nothing_frozen
ktap_finished
