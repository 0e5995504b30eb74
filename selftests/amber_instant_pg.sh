#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Instant restore of PostgreSQL. Data (ext4) and WAL (initdb --waldir) on
# two amber volumes under pgbench; a full and an incremental of both are
# taken at barriers over the pair (the incremental with the server idle, its
# row counts noted). The volumes are gone, and both chains are restored with
# --instant onto wiped slices: PostgreSQL starts there (crash recovery),
# answers with the counts of the incremental's barrier before 10 % of the
# data volume is copied (the background copy held until then), then
# pgbench runs through the whole background copy. At the end both devices
# are linear over their targets, pg_amcheck is clean and pgbench's balances
# add up.
. "$(dirname "$0")/amber_backup_lib.sh"
. "$(dirname "$0")/postgres_lib.sh"

require_module dm-amber
require_module dm-clone
require_module nbd
[ -x /usr/lib/postgresql/15/bin/postgres ] || skip_all "PostgreSQL 15 is not in the VM"

bk=/mnt/backups
slice ip-data-o origin 0 512
slice ip-data-s store 0 96
slice ip-wal-o origin2 0 128
slice ip-wal-s store 96 64
slice ip-data-t store 160 520	# the image, then the restore's metadata
slice ip-wal-t origin2 128 136
for s in ip-data-o ip-wal-o; do
	scratch_wipe "$(dm_dev "$s")"
done
amber_volume ip-data "$(dm_dev ip-data-o)" "$(dm_dev ip-data-s)"
amber_volume ip-wal "$(dm_dev ip-wal-o)" "$(dm_dev ip-wal-s)"
backup_fs store2 "$bk"
for name in ip-rdata-meta ip-rdata ip-rwal-meta ip-rwal; do	# removed last to first
	defer dm_remove "$name"
done
defer unmount_pair /mnt/pg		# after the server stops
defer pg_stop /mnt/pg/data/pgdata

start_server() {
	as_pg pg_ctl -D /mnt/pg/data/pgdata -l /tmp/pg-instant.log -w -t 600 start >/dev/null ||
		{ sed 's/^/# server: /' /tmp/pg-instant.log; return 1; }
}

# logged <log> <command...>: run it with its output in <log>, shown if it fails.
logged() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 || { sed "s|^|# $(basename "$log"): |" "$log"; return 1; }
}

# mount_pair <data dev> <wal dev>
mount_pair() {
	mkdir -p /mnt/pg/data /mnt/pg/wal
	mount "$1" /mnt/pg/data
	mount "$2" /mnt/pg/wal
}

# The counts a restore of the incremental must answer with.
counts() {
	sql "SELECT count(*), sum(abalance) FROM pgbench_accounts" &&
		sql "SELECT count(*) FROM pgbench_history"
}

# backup_pair <full|inc>: one barrier over both volumes, then their backups.
backup_pair() {
	local v parent=()
	logged /tmp/snap.log amber snap ip-data ip-wal
	for v in data wal; do
		[ "$1" = full ] || parent=(--incremental-from "$bk/$v-full.amb")
		logged /tmp/backup.log amber backup "ip-$v" --use-snapshot "${parent[@]}" \
			--to "$bk/$v-$1.amb"
	done
}

backed_up_under_load() {
	pg_cluster "$(dm_dev ip-data)" "$(dm_dev ip-wal)" "max_wal_size = 32MB" \
		"max_parallel_maintenance_workers = 0" "max_parallel_workers_per_gather = 0"
	logged /tmp/pgbench-init.log pgbench "${PG[@]}" -i -s 1 -q bench
	logged /tmp/pgbench-1.log pgbench "${PG[@]}" -c 2 -T 20 bench &
	sleep 10
	backup_pair full
	wait $!
	logged /tmp/pgbench-2.log pgbench "${PG[@]}" -c 2 -T 10 bench
	counts >/tmp/counts.expected
	backup_pair inc
	sed 's/^/# at the incremental: /' /tmp/counts.expected
	pg_stop /mnt/pg/data/pgdata
	unmount_pair /mnt/pg
	ls -l "$bk" | sed 's/^/# /'
}

# hydrated_percent <name>: how much dm-clone has copied, in whole percent.
hydrated_percent() {
	dmsetup status "$1" | awk '{ split($7, h, "/"); print h[2] ? int(100 * h[1] / h[2]) : 100 }'
}

is_linear() {
	[ "$(dmsetup table "$1" | awk '{ print $3 }')" = linear ]
}

restore_pair() {
	local v
	for v in data wal; do
		scratch_wipe "$(dm_dev "ip-$v-t")" 2>/dev/null
		amber restore --instant "$bk/$v-full.amb" "$bk/$v-inc.amb" \
			--to "$(dm_dev "ip-$v-t")" --name "ip-r$v" | sed 's/^/# /'
		dmsetup message "ip-r$v" 0 disable_hydration
	done
}

# The server answers before 10 % of the data volume is copied, with the
# counts of the incremental's barrier.
answers_at_once() {
	local start=$SECONDS pct v
	for v in data wal; do
		dm_remove "ip-$v-view"
		dm_remove "ip-$v"
	done
	restore_pair
	mount_pair "$(dm_dev ip-rdata)" "$(dm_dev ip-rwal)"
	rm -f /mnt/pg/data/pgdata/postmaster.pid
	start_server
	counts >/tmp/counts.restored
	pct=$(hydrated_percent ip-rdata)
	ktap_print_msg "answered $((SECONDS - start)) s after the restore began, $pct % copied"
	cmp /tmp/counts.expected /tmp/counts.restored
	[ "$pct" -lt 10 ]
}

# pgbench through the whole background copy; then pg_amcheck and the
# balances.
pgbench_through_the_copy() {
	local start=$SECONDS runs=0
	dmsetup message ip-rdata 0 enable_hydration
	dmsetup message ip-rwal 0 enable_hydration
	until is_linear ip-rdata && is_linear ip-rwal; do
		[ $((SECONDS - start)) -lt 1200 ] || { echo "# the copy did not end"; return 1; }
		pgbench "${PG[@]}" -c 2 -T 5 bench >/tmp/pgbench-3.log 2>&1 ||
			{ sed 's/^/# pgbench: /' /tmp/pgbench-3.log; return 1; }
		runs=$((runs + 1))
		grep -E '^number of transactions actually processed' /tmp/pgbench-3.log |
			sed "s/^/# run $runs, $(hydrated_percent ip-rdata) % copied: /"
	done
	ktap_print_msg "copied in $((SECONDS - start)) s under $runs pgbench runs of 5 s"
	amber status | sed 's/^/# /'
	[ "$runs" -gt 0 ]
	pg_amcheck "${PG[@]}" -d bench --install-missing --heapallindexed >/tmp/amcheck.log 2>&1 ||
		{ sed 's/^/# amcheck: /' /tmp/amcheck.log; return 1; }
	[ "$(sql "SELECT sum(abalance) = (SELECT sum(bbalance) FROM pgbench_branches) \
		FROM pgbench_accounts")" = t ]
}

ktap_print_header
ktap_set_plan 3
ktap_step "a full and an incremental of data and WAL under pgbench" backed_up_under_load
ktap_step "restored with --instant, PostgreSQL answers before 10 % is copied" answers_at_once
ktap_step "pgbench runs through the background copy; amcheck and balances hold" \
	pgbench_through_the_copy
ktap_finished
