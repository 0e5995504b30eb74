# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Helpers of the PostgreSQL tests (amber_postgres, amber_instant_pg): a
# cluster whose data directory and pg_wal are on two volumes mounted at
# <dir>/data and <dir>/wal, its server run as the postgres user.
export PATH=/usr/lib/postgresql/15/bin:$PATH
# shellcheck disable=SC2034 # for the tests
PG=(-h /run/postgresql -U postgres)

mounted() {
	grep -q " $1 " /proc/mounts
}

# Run a command as the postgres user, from a directory it may read.
as_pg() {
	su -s /bin/bash postgres -c "cd /tmp && $(printf '%q ' "$@")"
}

sql() {
	psql "${PG[@]}" -d bench -qAtX -v ON_ERROR_STOP=1 -c "$1"
}

# pg_stop <data directory>: stop its server, if one runs.
pg_stop() {
	[ -f "$1/postmaster.pid" ] || return 0
	as_pg pg_ctl -D "$1" -m fast -w stop >/dev/null
}

# unmount_pair <dir>: unmount <dir>/data and <dir>/wal where mounted.
unmount_pair() {
	local v
	for v in data wal; do
		! mounted "$1/$v" || umount "$1/$v"
	done
}

# pg_cluster <data dev> <wal dev> [postgresql.conf lines...]: fresh ext4 on
# both, mounted at /mnt/pg/data and /mnt/pg/wal, a cluster there (pg_wal on
# the second), its server started, and a database named bench.
pg_cluster() {
	local v dev conf
	for v in data wal; do
		dev=$1
		shift
		# inode tables written now, not by ext4lazyinit after a mount
		mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
		mkdir -p "/mnt/pg/$v"
		mount "$dev" "/mnt/pg/$v"
		chown postgres:postgres "/mnt/pg/$v"
	done
	mkdir -p /run/postgresql
	chown postgres:postgres /run/postgresql
	as_pg initdb -D /mnt/pg/data/pgdata --waldir=/mnt/pg/wal/pg_wal --wal-segsize=1 \
		--auth=trust --locale=C --encoding=UTF8 --no-sync >/tmp/initdb.log 2>&1 ||
		{ sed 's/^/# initdb: /' /tmp/initdb.log; return 1; }
	sync
	conf=/mnt/pg/data/pgdata/postgresql.conf
	printf '%s\n' "listen_addresses = ''" "unix_socket_directories = '/run/postgresql'" \
		"shared_buffers = 32MB" "min_wal_size = 8MB" "$@" >>"$conf"
	as_pg pg_ctl -D /mnt/pg/data/pgdata -l /tmp/pg-live.log -w -t 600 start >/dev/null ||
		{ sed 's/^/# server: /' /tmp/pg-live.log; return 1; }
	psql "${PG[@]}" -d postgres -qAtX -c "CREATE DATABASE bench"
}
