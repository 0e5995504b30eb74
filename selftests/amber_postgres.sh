#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The acceptance test: PostgreSQL 15 with its data directory on one amber
# volume (ext4) and pg_wal on another (initdb --waldir), both in one amberd
# group, under pgbench. A client inserts 1, 2, 3, ... into a table, one
# transaction each, and appends each acknowledged number to a file on tmpfs.
# Mid-run, three backup sets are taken from SQL (the hook,
# scripts/hooks/postgresql/amber.sql: amber.backup() -> COPY FROM PROGRAM ->
# amberd's trigger socket -> one barrier over both volumes): a full one, an
# incremental after a CHECKPOINT, an incremental that returns at the barrier.
# The group's backups are encrypted with a data key (its passphrase in a
# root-only file) and signed with an Ed25519 key, as amberd.conf(5) allows.
# Each set is verified without the key (every stored byte, the links) and
# with the public key (who wrote it), refused by a restore without the key,
# then restored with it from its chain onto two fresh slices, and PostgreSQL
# started there (crash recovery: WAL replay) must pass pg_amcheck, keep
# pgbench's balances consistent, and hold exactly a prefix of the numbers:
# every one acknowledged before the backup was asked for, none issued after
# it returned.
. "$(dirname "$0")/amberd_lib.sh"
. "$(dirname "$0")/postgres_lib.sh"

require_module dm-amber
[ -x /usr/lib/postgresql/15/bin/postgres ] || skip_all "PostgreSQL 15 is not in the VM"

PGR=(-h /run/pgrestore -p 5433 -U postgres)
hook=/usr/share/amber/hooks/postgresql/amber.sql
sets=3
keys=/etc/amber
KEY=(--key $keys/pg.key --passphrase-file $keys/pg.pass)

sql_restored() {
	psql "${PGR[@]}" -d bench -qAtX -v ON_ERROR_STOP=1 -c "$1"
}

setup_cluster() {
	local start=$SECONDS
	pg_cluster "$(dm_dev pgdata)" "$(dm_dev pgwal)" "max_wal_size = 48MB" \
		"checkpoint_timeout = 30s"
	pgbench "${PG[@]}" -i -s 1 -q bench >pgbench-init.log 2>&1
	sql "CREATE TABLE acks (n integer PRIMARY KEY)"
	psql "${PG[@]}" -d bench -qX -v ON_ERROR_STOP=1 -f "$hook" >/dev/null
	# what reaches the shell is checked first
	refused 1 "amber: 'pg; touch /tmp/owned' is not a group name" \
		sql "SELECT * FROM amber.backup('pg; touch /tmp/owned')"
	refused 1 "kind is full, incremental or NULL" sql "SELECT * FROM amber.backup('pg', 'huge')"
	[ ! -e /tmp/owned ]
	echo "# initdb, pgbench -i, the hook: $((SECONDS - start)) s"
}

# One transaction per number; a number goes to acked.txt (tmpfs) only once
# its COMMIT was acknowledged.
ack_loop() {
	local n=0
	while [ ! -e stop.flag ]; do
		n=$((n + 1))
		sql "INSERT INTO acks VALUES ($n)" >/dev/null || {
			echo "ack loop: INSERT $n failed" >&2
			return 1
		}
		echo "$n" >>acked.txt
	done
}

last_acked() {
	local n
	n=$(tail -n 1 acked.txt 2>/dev/null) || true
	echo "${n:-0}"
}

acked_at_least() {
	[ "$(last_acked)" -ge "$1" ]
}

# One backup set through SQL. barriers.txt gets "SET BEFORE AFTER": the
# last number acknowledged before the call and the last one acknowledged
# when it returned.
backup_through_sql() {
	local call=$1 before after set
	before=$(last_acked)
	sql "SELECT * FROM $call" >"backup.out"
	after=$(last_acked)
	sed 's/^/# sql: /' backup.out
	set=$(sed -nE 's/^barrier group pg set ([0-9]+) .*/\1/p' backup.out)
	[ -n "$set" ]
	echo "$set $before $after" >>barriers.txt
}

# pgbench and the numbers, and three backup sets from SQL meanwhile.
backups_under_load() {
	local ack pgb start=$SECONDS
	: >acked.txt
	pgbench "${PG[@]}" -n -c 2 -j 1 -T 600 bench >pgbench.log 2>&1 &
	pgb=$!
	ack_loop &
	ack=$!
	# Deadlines, not pauses: the debug kernel under TCG needs minutes.
	wait_until 600 acked_at_least 20 ||
		{ echo "# $(last_acked) numbers acknowledged in 600 s"; return 1; }
	backup_through_sql "amber.backup('pg')"
	sleep 4
	backup_through_sql "amber.backup('pg', checkpoint_first => true)"
	sleep 4
	backup_through_sql "amber.backup('pg', wait => false)"
	sleep 2
	touch stop.flag
	wait "$ack"
	kill "$pgb"
	wait "$pgb" || true
	echo "# $(last_acked) numbers acknowledged; barriers (set, before, after):" \
		"$(xargs <barriers.txt)"
	# the last set finishes after its call returned
	wait_until 600 prints "^backup $sets pg pgwal " amber daemon list pg
	[ "$(catalog_sets /mnt/backups pg | xargs)" = \
		"1 full 1 full 2 incremental 2 incremental 3 incremental 3 incremental" ]
	amberd_log_has "request from uid 101 .*: backup pg"
	amberd_log_has "group pg: set 1: flushed /mnt/pg/data \(pgdata\), /mnt/pg/wal \(pgwal\)"
	pg_stop /mnt/pg/data/pgdata
	echo "# load and backups: $((SECONDS - start)) s"
}

cleanup_restored() {
	pg_stop /mnt/restore/data/pgdata || true
	unmount_pair /mnt/restore
}

# chain_is_sealed <volume> <set>: the chain that restores the volume's set
# is encrypted and signed by the group's keys: a keyless verify checks
# every stored byte and link, the public key proves the writer, and a
# restore without the key is refused before it writes anything.
chain_is_sealed() {
	local chain fp signer f
	# shellcheck disable=SC2207
	chain=($(chain_of pg "$1" "$2"))
	fp=$(amber key show $keys/pg.key | sed -n '1s/.*data key //p')
	for f in "${chain[@]}"; do
		amber info "$f" >info.log
		grep -q "encrypted key $fp" info.log
	done
	amber verify --no-key "${chain[@]}" >verify.log ||
		{ sed 's/^/# verify --no-key: /' verify.log; return 1; }
	amber verify --pubkey $keys/pg-sign.pub "${KEY[@]}" "${chain[@]}" >verify.log ||
		{ sed 's/^/# verify --pubkey: /' verify.log; return 1; }
	[ "$(grep -c '^  signer .* (verified with the public key given)$' verify.log)" = \
		"${#chain[@]}" ] || { sed 's/^/# verify --pubkey: /' verify.log; return 1; }
	# The catalog names the key and the signer of each of the volume's backups.
	signer=$(sed -n 's/^  signer *\([0-9a-f]*\) .*/\1/p' verify.log | sort -u)
	[ "$(awk -v v="$1" '$1 !~ /^#/ && $2 == "pg" && $3 == v { print $11, $12 }' \
		/mnt/backups/catalog | sort -u)" = "$fp $signer" ]
	refused 3 "encrypted with key ${fp:0:16}: give --key FILE" \
		amber restore "${chain[@]}" --to "$(dm_dev "r$2-data")" --force
}

# Restore set <n> from its chains onto two fresh slices, start PostgreSQL
# there, and check it.
restore_and_check() {
	local set=$1 before after count lo hi v balances start=$SECONDS
	cleanup_restored
	read -r _ before after < <(awk -v s="$set" '$1 == s' barriers.txt)
	for v in data wal; do
		chain_is_sealed "pg$v" "$set"
		# shellcheck disable=SC2046
		amber restore $(chain_of pg "pg$v" "$set") "${KEY[@]}" \
			--to "$(dm_dev "r$set-$v")" --force >restore.log
		mkdir -p "/mnt/restore/$v"
		mount "$(dm_dev "r$set-$v")" "/mnt/restore/$v"
	done
	# pg_wal is a symlink to the live WAL volume's mount: point it at the
	# restored one. The live server's pid file is stale here.
	echo "# set $set: restored in $((SECONDS - start)) s"
	ln -sfn /mnt/restore/wal/pg_wal /mnt/restore/data/pgdata/pg_wal
	rm -f /mnt/restore/data/pgdata/postmaster.pid
	mkdir -p /run/pgrestore
	chown postgres:postgres /run/pgrestore
	if ! as_pg pg_ctl -D /mnt/restore/data/pgdata -l "/tmp/pg-restored-$set.log" \
		-o "-p 5433 -k /run/pgrestore" -w -t 600 start >/dev/null; then
		sed 's/^/# restored server: /' "/tmp/pg-restored-$set.log"
		return 1
	fi
	grep -q "database system was not properly shut down; automatic recovery in progress" \
		"/tmp/pg-restored-$set.log"
	grep -E "redo (done at|is not required)" "/tmp/pg-restored-$set.log" | sed 's/^/# /'
	echo "# set $set: recovered by $((SECONDS - start)) s"
	pg_amcheck "${PGR[@]}" --all --install-missing >amcheck.log 2>&1 || {
		sed 's/^/# amcheck: /' amcheck.log
		return 1
	}
	read -r count lo hi < <(sql_restored "SELECT count(*), coalesce(min(n), 0),
		coalesce(max(n), 0) FROM acks" | tr '|' ' ')
	echo "# set $set: numbers 1..$hi present ($count rows); acknowledged before the" \
		"call: $before, when it returned: $after"
	[ "$count" -eq "$hi" ]			# a prefix: no gap
	[ "$count" -eq 0 ] || [ "$lo" -eq 1 ]
	[ "$hi" -ge "$before" ]			# nothing acknowledged is lost
	[ "$hi" -le $((after + 1)) ]		# nothing issued after the call
	balances=$(sql_restored "SELECT (SELECT sum(abalance) FROM pgbench_accounts),
		(SELECT sum(bbalance) FROM pgbench_branches),
		(SELECT sum(tbalance) FROM pgbench_tellers),
		(SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
	echo "# set $set: pgbench balances $balances"
	[ "$(tr '|' '\n' <<<"$balances" | sort -u | wc -l)" -eq 1 ]
	pg_stop /mnt/restore/data/pgdata
	unmount_pair /mnt/restore
	echo "# set $set: restored and checked in $((SECONDS - start)) s"
}

slice pg-data-o origin 0 160
slice pg-wal-o origin 160 96
slice pg-data-s store 0 160
slice pg-wal-s store 160 96
slice pg-bk store2 0 1024
for s in $(seq "$sets"); do
	slice "r$s-data" origin2 $(((s - 1) * 256)) 160
	slice "r$s-wal" origin2 $(((s - 1) * 256 + 160)) 96
done
scratch_wipe "$(dm_dev pg-data-s)"
scratch_wipe "$(dm_dev pg-wal-s)"
defer remove_volumes pgdata pgwal
mkfs.ext4 -q -F "$(dm_dev pg-bk)"
mkdir -p /mnt/backups
mount "$(dm_dev pg-bk)" /mnt/backups
defer umount /mnt/backups
mkdir -p -m 700 $keys
(umask 077 && echo "a passphrase for the pg group's backups" >$keys/pg.pass)
amber key new $keys/pg.key --passphrase-file $keys/pg.pass --scrypt-log2n 14 >/dev/null
amber key new-signing $keys/pg-sign.pem $keys/pg-sign.pub >/dev/null
cat >amberd.conf <<EOF
[daemon]
backup_dir = /mnt/backups
level = 1

[volume pgdata]
origin = $(dm_dev pg-data-o)
store = $(dm_dev pg-data-s)

[volume pgwal]
origin = $(dm_dev pg-wal-o)
store = $(dm_dev pg-wal-s)

[group pg]
volumes = pgdata, pgwal
trigger_user = postgres
encrypt_key = $keys/pg.key
passphrase_file = $keys/pg.pass
sign_key = $keys/pg-sign.pem
# the sets come back to back through the SQL hook
min_interval = 0
EOF
amberd_start amberd.conf
defer unmount_pair /mnt/pg
defer pg_stop /mnt/pg/data/pgdata
defer cleanup_restored

ktap_print_header
ktap_set_plan $((sets + 2))
ktap_step "PostgreSQL runs on two amber volumes with the SQL hook installed" setup_cluster
ktap_step "three backup sets from SQL while pgbench and the numbers run" backups_under_load
for s in $(seq "$sets"); do
	ktap_step "set $s restores; PostgreSQL recovers it; amcheck, balances and the prefix hold" \
		restore_and_check "$s"
done
ktap_finished
