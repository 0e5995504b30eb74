#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# SQLite in WAL mode with synchronous=NORMAL (commits are not fsynced) on an
# amber volume (ext4), under a write loop: one connection inserts 1, 2, 3,
# ... one transaction each, and each acknowledged number goes to a file on
# tmpfs. Mid-run three backup sets are taken through the hook
# (scripts/hooks/sqlite/amber-sqlite: it checks the database, flushes its
# file system, asks amberd; the group has flush = no, so that flush is the
# hook's). Each set restores from its chain, SQLite recovers its WAL there,
# PRAGMA integrity_check is ok, and the rows are exactly a prefix holding
# every number acknowledged before the hook was called and none issued after
# it returned.
. "$(dirname "$0")/amberd_lib.sh"

require_module dm-amber
command -v sqlite3 >/dev/null || skip_all "sqlite3 is not in the VM"

hook=/usr/share/amber/hooks/sqlite/amber-sqlite
db=/mnt/sq/app.db
sets=3

mounted() {
	grep -q " $1 " /proc/mounts
}

setup_database() {
	mkfs.ext4 -q -F "$(dm_dev sqv)"
	mkdir -p /mnt/sq
	mount "$(dm_dev sqv)" /mnt/sq
	sqlite3 "$db" "PRAGMA journal_mode=WAL;
		CREATE TABLE t (n INTEGER PRIMARY KEY, pad BLOB NOT NULL);" >/dev/null
	sync
	[ "$(sqlite3 "$db" 'PRAGMA journal_mode;')" = wal ]
	# the hook refuses what it cannot back up
	sqlite3 /tmp/other.db "CREATE TABLE x (a);"
	refused 1 "/tmp/other.db is on device .*, not on a device-mapper device" \
		"$hook" backup /tmp/other.db sq
	echo "not a database" >/mnt/sq/plain.txt
	refused 1 "is not a SQLite 3 database" "$hook" backup /mnt/sq/plain.txt sq
	refused 1 "amberd has no group nogroup" "$hook" backup "$db" nogroup
	refused 2 "'half' is not full or incremental" "$hook" backup "$db" sq half
}

unmount_live() {
	! mounted /mnt/sq || umount /mnt/sq
}

# One connection, synchronous=NORMAL; a number goes to acked.txt once
# sqlite3 has printed it, after its INSERT committed. One statement in
# flight at a time.
write_loop() {
	local n=0 ack
	coproc SQ { stdbuf -oL sqlite3 -bail -cmd "PRAGMA synchronous=NORMAL" "$db"; }
	while [ ! -e stop.flag ]; do
		n=$((n + 1))
		echo "INSERT INTO t VALUES ($n, randomblob(3000)); SELECT $n;" >&"${SQ[1]}"
		read -r ack <&"${SQ[0]}" || { echo "write loop: sqlite3 died at $n" >&2; return 1; }
		[ "$ack" = "$n" ] || { echo "write loop: '$ack' for $n" >&2; return 1; }
		echo "$n" >>acked.txt
	done
	eval "exec ${SQ[1]}>&-"
	wait "$SQ_PID"
}

last_acked() {
	local n
	n=$(tail -n 1 acked.txt 2>/dev/null) || true
	echo "${n:-0}"
}

acked_at_least() {
	[ "$(last_acked)" -ge "$1" ]
}

# One set through the hook; barriers.txt gets "SET BEFORE AFTER".
backup_through_hook() {
	local before after set
	before=$(last_acked)
	"$hook" "$@" >hook.out
	after=$(last_acked)
	sed 's/^/# hook: /' hook.out
	set=$(sed -nE 's/^barrier group sq set ([0-9]+) .*/\1/p' hook.out)
	[ -n "$set" ]
	echo "$set $before $after" >>barriers.txt
}

backups_under_writes() {
	local writer start=$SECONDS
	: >acked.txt
	write_loop &
	writer=$!
	wait_until 60 acked_at_least 200
	backup_through_hook backup "$db" sq
	sleep 3
	backup_through_hook backup "$db" sq incremental
	sleep 3
	# the group's trigger socket (amberd lets root use it too)
	backup_through_hook backup "$db" sq --socket /run/amber/sq.trigger
	sleep 1
	touch stop.flag
	wait "$writer"
	echo "# $(last_acked) numbers acknowledged; barriers (set, before, after):" \
		"$(xargs <barriers.txt)"
	[ "$(catalog_sets "$PWD/backups" sq | xargs)" = "1 full 2 incremental 3 incremental" ]
	# the WAL was checkpointed into the database meanwhile (every 1000 pages)
	[ "$(sqlite3 "$db" 'SELECT count(*) FROM t;')" -eq "$(last_acked)" ]
	echo "# load and backups: $((SECONDS - start)) s"
}

restore_and_check() {
	local set=$1 before after count lo hi
	read -r _ before after < <(awk -v s="$set" '$1 == s' barriers.txt)
	! mounted /mnt/sqr || umount /mnt/sqr
	# shellcheck disable=SC2046
	amber restore $(chain_of sq sqv "$set") --to "$(dm_dev "sq-r$set")" --force >/dev/null
	mkdir -p /mnt/sqr
	mount "$(dm_dev "sq-r$set")" /mnt/sqr
	ls /mnt/sqr/app.db-wal >/dev/null	# WAL mode: recovery has work to do
	"$hook" check /mnt/sqr/app.db | sed 's/^/# /'
	read -r count lo hi < <(sqlite3 -separator ' ' /mnt/sqr/app.db \
		"SELECT count(*), coalesce(min(n), 0), coalesce(max(n), 0) FROM t;")
	echo "# set $set: numbers 1..$hi present ($count rows); acknowledged before the" \
		"hook: $before, when it returned: $after"
	umount /mnt/sqr
	[ "$count" -eq "$hi" ]
	[ "$count" -eq 0 ] || [ "$lo" -eq 1 ]
	[ "$hi" -ge "$before" ]
	[ "$hi" -le $((after + 1)) ]
}

cleanup_restored() {
	! mounted /mnt/sqr || umount /mnt/sqr
}

slice sq-o origin 0 64
slice sq-s store 0 64
for s in $(seq "$sets"); do
	slice "sq-r$s" origin2 $(((s - 1) * 64)) 64
done
scratch_wipe "$(dm_dev sq-s)"
defer remove_volumes sqv
cat >amberd.conf <<EOF
[daemon]
backup_dir = $PWD/backups
level = 1

[volume sqv]
origin = $(dm_dev sq-o)
store = $(dm_dev sq-s)

[group sq]
volumes = sqv
flush = no
trigger_user = nobody
EOF
mkdir backups
amberd_start amberd.conf
defer unmount_live
defer cleanup_restored

ktap_print_header
ktap_set_plan $((sets + 2))
ktap_step "a WAL-mode database on an amber volume; the hook refuses what it cannot back up" setup_database
ktap_step "three backup sets through the hook while a writer commits" backups_under_writes
for s in $(seq "$sets"); do
	ktap_step "set $s restores; integrity_check is ok; the rows are the acknowledged prefix" \
		restore_and_check "$s"
done
ktap_finished
