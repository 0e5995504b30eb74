#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The inside of 'make demo' (scripts/demo.sh boots the VM and runs this in
# it as a test). PostgreSQL 15 on two disks that amberd wraps into amber
# volumes (data directory on /dev/vda, pg_wal on /dev/vdc), pgbench and a
# numbering client running; a full backup set asked for from SQL, an
# incremental one from the command line, both while the load runs; the
# chain restored onto two other disks; PostgreSQL started there (crash
# recovery); then what holds is printed.
#
# Disks: vda data, vdb its store, vdc WAL, vdd its store, vde backups,
# vdf and vdg the restore targets.
. "$(dirname "$0")/amberd_lib.sh"

export PATH=/usr/lib/postgresql/15/bin:$PATH
LIVE=(-h /run/postgresql -U postgres -d bench -qAtX -v ON_ERROR_STOP=1)
RESTORED=(-h /run/pgrestore -p 5433 -U postgres -d bench -qAtX -v ON_ERROR_STOP=1)
t0=$SECONDS

say() {
	printf '[%3ds] %s\n' $((SECONDS - t0)) "$*"
}

as_pg() {
	su -s /bin/bash postgres -c "cd /tmp && $(printf '%q ' "$@")"
}

last_acked() {
	local n
	n=$(tail -n 1 /tmp/acked.txt 2>/dev/null) || true
	echo "${n:-0}"
}

acked_at_least() {
	[ "$(last_acked)" -ge "$1" ]
}

ack_loop() {
	local n=0
	while [ ! -e /tmp/stop.flag ]; do
		n=$((n + 1))
		psql "${LIVE[@]}" -c "INSERT INTO acks VALUES ($n)" >/dev/null || return 1
		echo "$n" >>/tmp/acked.txt
	done
}

stop_everything() {
	touch /tmp/stop.flag
	for d in /mnt/restore/data/pgdata /mnt/pg/data/pgdata; do
		[ ! -f "$d/postmaster.pid" ] || as_pg pg_ctl -D "$d" -m fast -w stop >/dev/null || true
	done
	for m in /mnt/restore/data /mnt/restore/wal /mnt/pg/data /mnt/pg/wal; do
		! grep -q " $m " /proc/mounts || umount "$m"
	done
}

require_module dm-amber
for d in vda vdb vdc vdd vde vdf vdg; do
	[ -b /dev/$d ] || { echo "demo: /dev/$d is missing (VM_DISKS=7)"; exit 1; }
done
say "VM up: $(uname -r), $(nproc) vCPUs (TCG), $(amber --version)"

# ---- amberd wraps the two disks ----
mkfs.ext4 -q -F /dev/vde
mkdir -p /mnt/backups
mount /dev/vde /mnt/backups
defer umount /mnt/backups
cat >/tmp/amberd.conf <<EOF
[daemon]
backup_dir = /mnt/backups
level = 1

[volume pgdata]
origin = /dev/vda
store = /dev/vdb

[volume pgwal]
origin = /dev/vdc
store = /dev/vdd

[group pg]
volumes = pgdata, pgwal
trigger_user = postgres
EOF
defer remove_volumes pgdata pgwal
AMBERD_LOG=/tmp/amberd.log amberd_start /tmp/amberd.conf
defer stop_everything
say "amberd wrapped /dev/vda as /dev/mapper/pgdata and /dev/vdc as /dev/mapper/pgwal" \
	"(stores on vdb, vdd)"

# ---- PostgreSQL on them ----
for v in data wal; do
	mkfs.ext4 -q -F "/dev/mapper/pg$v"
	mkdir -p "/mnt/pg/$v"
	mount "/dev/mapper/pg$v" "/mnt/pg/$v"
	chown postgres:postgres "/mnt/pg/$v"
done
mkdir -p /run/postgresql /run/pgrestore
chown postgres:postgres /run/postgresql /run/pgrestore
as_pg initdb -D /mnt/pg/data/pgdata --waldir=/mnt/pg/wal/pg_wal --wal-segsize=1 \
	--auth=trust --locale=C --encoding=UTF8 --no-sync >/tmp/initdb.log 2>&1
sync
cat >>/mnt/pg/data/pgdata/postgresql.conf <<EOF
listen_addresses = ''
unix_socket_directories = '/run/postgresql'
shared_buffers = 32MB
max_wal_size = 64MB
checkpoint_timeout = 30s
EOF
as_pg pg_ctl -D /mnt/pg/data/pgdata -l /tmp/pg-live.log -w -t 120 start >/dev/null
psql -h /run/postgresql -U postgres -d postgres -qAtX -c "CREATE DATABASE bench"
pgbench -h /run/postgresql -U postgres -i -s 2 -q bench >/tmp/pgbench-init.log 2>&1
psql "${LIVE[@]}" -c "CREATE TABLE acks (n integer PRIMARY KEY)"
psql -h /run/postgresql -U postgres -d bench -qX -v ON_ERROR_STOP=1 \
	-f /usr/share/amber/hooks/postgresql/amber.sql >/dev/null
say "PostgreSQL 15 is up: data directory on pgdata, pg_wal on pgwal (initdb --waldir);" \
	"pgbench scale 2; the SQL hook amber.backup() installed"

# ---- load, and two backup sets while it runs ----
: >/tmp/acked.txt
pgbench -h /run/postgresql -U postgres -n -c 3 -j 1 -T 600 -P 2 bench >/tmp/pgbench.log 2>&1 &
pgbench_pid=$!
ack_loop &
ack_pid=$!
say "load: pgbench (3 clients) and a client committing 1, 2, 3, ... one transaction each"
wait_until 120 acked_at_least 15
before1=$(last_acked)
start=$SECONDS
psql "${LIVE[@]}" -c "SELECT * FROM amber.backup('pg')" >/tmp/backup1.out
full_s=$((SECONDS - start))
after1=$(last_acked)
say "backup set 1 asked for from SQL: SELECT * FROM amber.backup('pg') took ${full_s} s"
sed 's/^/         | /' /tmp/backup1.out
sleep 5
before2=$(last_acked)
start=$SECONDS
amber daemon backup pg >/tmp/backup2.out
incr_s=$((SECONDS - start))
after2=$(last_acked)
say "backup set 2 from the command line: amber daemon backup pg took ${incr_s} s"
sed 's/^/         | /' /tmp/backup2.out
sleep 3
touch /tmp/stop.flag
wait "$ack_pid"
kill "$pgbench_pid" 2>/dev/null || true	# (SIGINT is ignored in background jobs)
wait "$pgbench_pid" || true
live_rows=$(psql "${LIVE[@]}" -c "SELECT count(*) FROM acks")
say "load stopped: $live_rows numbers committed on the live server;" \
	"the live server stays up"

# ---- restore set 2 (full + incremental) onto two other disks ----
start=$SECONDS
read -ra data_chain <<<"$(chain_of pg pgdata 2)"
read -ra wal_chain <<<"$(chain_of pg pgwal 2)"
amber restore "${data_chain[@]}" --to /dev/vdf --force >/tmp/restore-data.log
amber restore "${wal_chain[@]}" --to /dev/vdg --force >/tmp/restore-wal.log
restore_s=$((SECONDS - start))
say "restored set 2 onto /dev/vdf (data) and /dev/vdg (WAL) in ${restore_s} s," \
	"every record verified"
for v in data wal; do
	mkdir -p "/mnt/restore/$v"
done
mount /dev/vdf /mnt/restore/data
mount /dev/vdg /mnt/restore/wal
ln -sfn /mnt/restore/wal/pg_wal /mnt/restore/data/pgdata/pg_wal
rm -f /mnt/restore/data/pgdata/postmaster.pid
start=$SECONDS
as_pg pg_ctl -D /mnt/restore/data/pgdata -l /tmp/pg-restored.log \
	-o "-p 5433 -k /run/pgrestore" -w -t 180 start >/dev/null
recovery_s=$((SECONDS - start))
redo=$(grep -o "redo done at [0-9A-F/]*" /tmp/pg-restored.log || echo "redo: none needed")
say "PostgreSQL started on the restored disks in ${recovery_s} s: crash recovery, $redo"

# ---- what holds ----
pg_amcheck -h /run/pgrestore -p 5433 -U postgres -d bench --install-missing \
	>/tmp/amcheck.log 2>&1 && amcheck=ok || amcheck="FAILED: $(head -n 3 /tmp/amcheck.log)"
read -r count lo hi < <(psql "${RESTORED[@]}" -c \
	"SELECT count(*), coalesce(min(n), 0), coalesce(max(n), 0) FROM acks" | tr '|' ' ')
restored_md5=$(psql "${RESTORED[@]}" -c "SELECT md5(string_agg(n::text, ',' ORDER BY n)) FROM acks")
live_md5=$(psql "${LIVE[@]}" -c "SELECT md5(string_agg(n::text, ',' ORDER BY n)) FROM acks WHERE n <= $hi")
balances=$(psql "${RESTORED[@]}" -c "SELECT (SELECT sum(abalance) FROM pgbench_accounts),
	(SELECT sum(bbalance) FROM pgbench_branches), (SELECT sum(tbalance) FROM pgbench_tellers),
	(SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
history=$(psql "${RESTORED[@]}" -c "SELECT count(*) FROM pgbench_history")
# pgbench -P 2: "progress: 4.0 s, 97.5 tps, lat ..." every 2 s
tps=$(awk '/^progress:/ { t = $4; s += t; n++; if (!n1 || t < lo) lo = t; if (t > hi) hi = t; n1 = 1 }
	END { if (n) printf "%.0f tps on average (2 s intervals: %.0f..%.0f)", s / n, lo, hi }' \
	/tmp/pgbench.log)
# Each backup read back in full: its records, digests and trailer; the image
# digest it recomputes must be the one amberd's catalog recorded.
verified=0 digests_match=true
for f in "${data_chain[@]}" "${wal_chain[@]}"; do
	digest=$(amber verify "$f" | awk '$1 == "digest" { print $2 }') || continue
	verified=$((verified + 1))
	[ "$digest" = "$(awk -v f="${f#/mnt/backups/}" '$10 == f { print $9 }' /mnt/backups/catalog)" ] ||
		digests_match=false
done
files=$((${#data_chain[@]} + ${#wal_chain[@]}))

chain_verified() {
	[ "$verified" -eq "$files" ] && [ "$digests_match" = true ]
}

prefix() {
	[ "$count" -eq "$hi" ] && { [ "$count" -eq 0 ] || [ "$lo" -eq 1 ]; }
}

ok=true
check() {	# check <description> <command...>
	local desc=$1
	shift
	if "$@"; then
		printf '  [ok]   %s\n' "$desc"
	else
		printf '  [FAIL] %s\n' "$desc"
		ok=false
	fi
}

echo
echo "============================== amber demo: what was proven =============================="
echo "  backup sets (amberd's catalog, /mnt/backups/catalog):"
awk '$1 !~ /^#/ { printf "    set %s %-6s %-11s epoch %-2s %9s bytes  digest %.16s...  %s\n",
	$1, $3, $4, $5, $7, $9, $10 }' /mnt/backups/catalog
echo "  timings: set 1 (full) ${full_s} s, set 2 (incremental) ${incr_s} s, restore ${restore_s} s," \
	"crash recovery ${recovery_s} s"
echo "  pgbench kept going through both backups: ${tps:-no progress lines}"
echo "  set 1: acknowledged before the request $before1, when it returned $after1"
echo "  set 2: acknowledged before the request $before2, when it returned $after2"
echo "  restored set 2: numbers 1..$hi ($count rows), pgbench_history $history rows;" \
	"live server: $live_rows numbers"
echo
check "one barrier over both volumes: data and WAL cut at the same instant (set 2 epochs: $(
	sed -nE 's/^barrier group pg set 2 (.*)/\1/p' /tmp/backup2.out))" \
	grep -q "^barrier group pg set 2 pgdata=[0-9]* pgwal=[0-9]*" /tmp/backup2.out
check "the restore chain ($files files) verifies end to end, each image digest as catalogued" \
	chain_verified
check "PostgreSQL recovered the restored copy by WAL replay (no pg_backup_start, no backup_label)" \
	grep -q "automatic recovery in progress" /tmp/pg-restored.log
check "pg_amcheck (--install-missing) on the restored database: $amcheck" [ "$amcheck" = ok ]
check "no acknowledged commit lost: every number up to $before2 is there (max $hi)" [ "$hi" -ge "$before2" ]
check "nothing from after the barrier: max $hi <= $((after2 + 1)) (acknowledged at return + 1 in flight)" \
	[ "$hi" -le $((after2 + 1)) ]
check "the rows are a prefix: $count rows, $lo..$hi, no gap" prefix
check "the restored rows are the live ones: md5 ${restored_md5:0:12}... = ${live_md5:0:12}..." \
	[ "$restored_md5" = "$live_md5" ]
check "pgbench's transactions are atomic in the copy: balances $balances all equal" \
	[ "$(tr '|' '\n' <<<"$balances" | sort -u | wc -l)" -eq 1 ]
echo "========================================================================================="
$ok
