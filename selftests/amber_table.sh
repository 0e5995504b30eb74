#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The amber target's interface: table lines good and bad, the status line,
# messages good and bad, views good and bad, and module unloading.
. "$(dirname "$0")/amber_lib.sh"

require_module dm-amber
slice t-origin origin 0 16
origin=$(dm_dev t-origin)
slice t-store store 0 16
store=$(dm_dev t-store)
slice t-other origin2 0 8
other=$(dm_dev t-other)
slice t-big-store store2 0 256
big_store=$(dm_dev t-big-store)
len=$(sectors "$origin")

# refused <reason in the kernel log> <table>: the table is refused, says why.
refused() {
	local why=$1
	shift
	klog_mark
	fails dmsetup create t-bad --table "$*"
	[ ! -e "$(dm_dev t-bad)" ]
	klog_has "$why"
}

bad_tables_are_refused() {
	dd if=/dev/zero of="$store" bs=4k count=1 oflag=direct status=none
	refused "no amber superblock" "$(amber_table "$origin" "$store" 128)"
	amber_format "$store" "$origin" 128
	refused "chunk size differs" "$(amber_table "$origin" "$store" 64)"
	refused "power of two" "$(amber_table "$origin" "$store" 100)"
	refused "power of two" "$(amber_table "$origin" "$store" 4096)"
	refused "expected <origin>" "0 $len amber $origin $store"
	refused "unknown feature" "$(amber_table "$origin" "$store" 128 overwrite=block)"
	refused "overflow must be" "$(amber_table "$origin" "$store" 128 overflow=sometimes)"
	refused "given twice" "$(amber_table "$origin" "$store" 128 overflow=block overflow=invalidate)"
	refused "given twice" "$(amber_table "$origin" "$store" 128 intent_sectors=128 intent_sectors=256)"
	refused "unexpected words after" "$(amber_table "$origin" "$store" 128) extra"
	refused "unexpected words after" "0 $len amber $origin $store 128 0 extra"
	refused "block_timeout_ms must be" "$(amber_table "$origin" "$store" 128 block_timeout_ms=0)"
	refused "drain_timeout_ms must be" "$(amber_table "$origin" "$store" 128 drain_timeout_ms=x)"
	refused "intent_sectors must be" "$(amber_table "$origin" "$store" 128 intent_sectors=64)"
	refused "intent_sectors must be" "$(amber_table "$origin" "$store" 128 intent_sectors=3000)"
	refused "number of features" "0 $len amber $origin $store 128 7 overflow=block"
	refused "another device" "$(amber_table "$origin" "$origin" 128)"
	refused "cover the whole origin" "0 $((len - 8)) amber $origin $store 128"
	refused "origin size differs" "$(amber_table "$other" "$store" 128)"
}

table_is_echoed() {
	local o s
	o=$(stat -L -c '%t:%T' "$origin" | awk -F: '{ printf "%d:%d", "0x" $1, "0x" $2 }')
	s=$(stat -L -c '%t:%T' "$store" | awk -F: '{ printf "%d:%d", "0x" $1, "0x" $2 }')
	[ "$(dmsetup table t-vol)" = "0 $len amber $o $s 128 4 overflow=invalidate block_timeout_ms=30000 drain_timeout_ms=5000 intent_sectors=8192" ]
}

status_starts_idle() {
	amber_expect t-vol state idle
	amber_expect t-vol epoch 0
	amber_expect t-vol chunk 128
	amber_expect t-vol used 0
	amber_expect t-vol copied 0
	amber_expect t-vol overflow invalidate
	amber_expect t-vol cbt exact
	amber_expect t-vol reason -
	[ "$(amber_field t-vol total)" -gt 0 ]
}

# msg_refused <reason in the kernel log> <message...>: t-vol refuses the
# message and says why.
msg_refused() {
	local why=$1
	shift
	klog_mark
	fails amber_msg t-vol "$@"
	klog_has "$why"
}

messages_work_and_bad_ones_fail() {
	msg_refused "unknown message 'bogus'" bogus
	msg_refused "no snapshot is active" drop
	msg_refused "no snapshot is active" release 0 1
	[ "$(amber_msg t-vol snap)" = 1 ]
	amber_expect t-vol state active
	amber_expect t-vol epoch 1
	msg_refused "a snapshot is active" snap
	msg_refused "must be numbers" release x 1
	msg_refused "are not within" release 0 999999
	fails amber_msg t-vol release 0
	amber_msg t-vol release 0 2
	amber_expect t-vol released 2
	amber_msg t-vol drop
	amber_expect t-vol state idle
	[ "$(amber_msg t-vol snap)" = 2 ]
	amber_msg t-vol drop
}

# view_refused <reason in the kernel log> <dmsetup create options...>
view_refused() {
	local why=$1
	shift
	klog_mark
	fails dmsetup create t-view "$@"
	[ ! -e "$(dm_dev t-view)" ]
	klog_has "$why"
}

bad_views_are_refused() {
	view_refused "view is read-only" --table "0 $len amber-view $(dm_dev t-vol)"
	view_refused "cannot find the amber device" \
		--readonly --table "0 $len amber-view /dev/nonexistent"
	view_refused "not an amber device" \
		--readonly --table "0 $len amber-view $(dm_dev t-other)"
	view_refused "the view must start at 0" \
		--readonly --table "0 $((len / 2)) amber-view $(dm_dev t-vol)"
	fails dmsetup create t-view --readonly --table "0 $len amber-view"
	[ ! -e "$(dm_dev t-view)" ]
}

second_table_on_a_store_is_refused() {
	refused "store is in use" "$(amber_table "$origin" "$store" 128)"
}

# Past 2^31 chunks the kernel's bitmap helpers would overflow: the table and
# amber format refuse it, naming the limit. Below it, an origin whose
# per-chunk bitmaps are larger than kmalloc gives (256 GiB at 4 KiB chunks:
# 8 MiB each) works.
huge_origins() {
	local max=$((2 ** 31)) big=$((256 * 2 ** 21)) err=/tmp/t-format.err
	dmsetup create t-past --table "0 $(((max + 1) * 8)) zero"
	dmsetup create t-2p32 --table "0 $((2 ** 32 * 8)) zero"
	dmsetup create t-big --table "0 $big zero"
	refused "more than 2^31 chunks" "0 $(((max + 1) * 8)) amber $(dm_dev t-past) $store 8"
	refused "more than 2^31 chunks" "0 $((2 ** 32 * 8)) amber $(dm_dev t-2p32) $store 8"
	if amber format --force --store "$big_store" --origin "$(dm_dev t-past)" \
		--chunk 4096 >/dev/null 2>"$err"; then
		echo "# amber format took an origin of 2^31 + 1 chunks"
		return 1
	fi
	grep -q "more than 2^31 chunks" "$err"
	amber format --force --store "$big_store" --origin "$(dm_dev t-big)" --chunk 4096 >/dev/null
	dmsetup create t-big-vol --table "0 $big amber $(dm_dev t-big) $big_store 8"
	[ "$(amber_msg t-big-vol snap)" = 1 ]
	dd if=/dev/zero of="$(dm_dev t-big-vol)" bs=4k count=1 seek=$((big / 8 - 1)) \
		oflag=direct status=none
	amber_expect t-big-vol copied 1
	amber_msg t-big-vol release $((big / 8 - 2)) 2
	amber_msg t-big-vol drop
	dm_remove t-big-vol
	dm_remove t-big
	dm_remove t-2p32
	dm_remove t-past
}

# kmem: the kernel's slab and vmalloc bytes, after dropping what it can.
kmem() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	awk '$1 == "Slab:" || $1 == "VmallocUsed:" { s += $2 * 1024 } END { print s }' \
		/proc/meminfo
}

# per_tib <what> <before> <after> <TiB> <most MiB>: the growth per TiB of
# origin is at most <most MiB>.
per_tib() {
	local per
	per=$(awk -v a="$2" -v b="$3" -v t="$4" 'BEGIN { printf "%.2f", (b - a) / t / 1048576 }')
	ktap_print_msg "kernel memory per TiB $1: $per MiB (at most $5)"
	awk -v p="$per" -v m="$5" 'BEGIN { exit !(p <= m) }'
}

# The change map is a bit per chunk, in memory only while the table is
# live (2 MiB per TiB at 64 KiB chunks); a backup that releases chunks adds
# a bit per chunk until the drop; a table loaded beside the live one (a
# reload) holds no map: the maps are read at resume and freed at suspend.
memory_per_tib() {
	local tib=4 len m0 m1
	len=$((tib * 2 ** 31))
	dmsetup create t-4t --table "0 $len zero"
	amber format --force --store "$big_store" --origin "$(dm_dev t-4t)" --chunk 65536 >/dev/null
	m0=$(kmem)
	dmsetup create t-4t-vol --table "0 $len amber $(dm_dev t-4t) $big_store 128"
	m1=$(kmem)
	per_tib "at rest" "$m0" "$m1" "$tib" 3
	amber_msg t-4t-vol snap >/dev/null
	amber_msg t-4t-vol release 0 1
	amber_msg t-4t-vol release $((len / 128 - 1)) 1
	m1=$(kmem)
	per_tib "during a backup" "$m0" "$m1" "$tib" 6
	amber_msg t-4t-vol drop
	m0=$(kmem)
	dmsetup load t-4t-vol --table "$(dmsetup table t-4t-vol)"
	m1=$(kmem)
	per_tib "of an inactive table" "$m0" "$m1" "$tib" 0.5
	dmsetup resume t-4t-vol
	m1=$(kmem)
	per_tib "after the reload" "$m0" "$m1" "$tib" 0.5
	dm_remove t-4t-vol
	dm_remove t-4t
}

module_unloads_only_when_unused() {
	fails rmmod dm_amber
	dm_remove t-vol
	rmmod dm_amber || { dmsetup table; return 1; }
	modprobe dm-amber
}

ktap_print_header
ktap_set_plan 9
ktap_step "bad table lines are refused with a reason" bad_tables_are_refused
ktap_step "origins past 2^31 chunks are refused, large ones work" huge_origins
ktap_step "kernel memory per TiB: a bit per chunk, none for a reloaded table" memory_per_tib
dm_create t-vol "$(amber_table "$origin" "$store" 128 overflow=invalidate)"
ktap_step "the table is echoed with every feature" table_is_echoed
ktap_step "a new volume's status is idle" status_starts_idle
ktap_step "messages work, bad ones fail with a reason" messages_work_and_bad_ones_fail
ktap_step "bad view tables are refused" bad_views_are_refused
ktap_step "a second device on the same store is refused" second_table_on_a_store_is_refused
ktap_step "rmmod is refused while a volume exists" module_unloads_only_when_unused
ktap_finished
