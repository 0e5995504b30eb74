#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# amberd: it creates the volumes of its configuration, answers on a root-only
# socket (and a group's trigger socket for its user only), takes backup sets
# from one barrier over a group (full every N, incrementals between, each
# verified and restorable from the chain it names), keeps a catalog, applies
# retention, runs scheduled backups by itself, refuses what it cannot do
# with a clear error and leaves nothing behind, and carries on after a
# restart.
. "$(dirname "$0")/amberd_lib.sh"

require_module dm-amber

dir=$PWD/backups
conf=$PWD/amberd.conf

write_conf() {
	cat >"$conf" <<-EOF
		# amberd selftest
		[daemon]
		backup_dir = $dir
		level = 1

		[volume da]
		origin = $(dm_dev d-o1)
		store = $(dm_dev d-s1)
		chunk = 64K

		[volume db]
		origin = $(dm_dev d-o2)
		store = $(dm_dev d-s2)

		[volume dc]
		origin = $(dm_dev d-o3)
		store = $(dm_dev d-s3)

		[group g]
		volumes = da, db
		retention = 1
		full_every = 3
		trigger_user = nobody

		[group solo]
		volumes = da

		[group sched]
		volumes = dc

		[volume ds]
		origin = $(dm_dev d-slow)
		store = $(dm_dev d-s4)

		[group slow]
		volumes = ds

		[group tg]
		volumes = dc
		trigger_user = nobody
		min_interval = 1h

		[schedule sched]
		interval = 4s
		full_every = 2
	EOF
}

# amberd --check: a good file is summed up, a bad one refused with its line.
check_refuses_bad_configuration() {
	says "4 volumes, 5 groups \(1 scheduled, 2 with a trigger socket\)" \
		amberd --check --config "$conf"
	printf '[daemon]\nbackup_dir = /b\n[volume v]\norigin = /o\nstore = /s\n[group g]\nvolumes = v, w\n' >bad.conf
	refused 2 "bad.conf:7: \[group g\]: no \[volume w\]" amberd --check --config bad.conf
	printf '[daemon]\nbackup_dir = /b\nintervall = 5\n' >bad.conf
	refused 2 "bad.conf:3: unknown key 'intervall' in \[daemon\]" amberd --check --config bad.conf
	refused 2 "/nonexistent.conf: No such file" amberd --config /nonexistent.conf
	sed "s|^backup_dir = .*|backup_dir = /nonexistent-dir|" "$conf" >bad.conf
	refused 1 "backup_dir /nonexistent-dir is not a directory: create it" amberd --config bad.conf
	[ ! -e /nonexistent-dir ]
	mkdir -m 0777 "$PWD/open-dir"
	sed "s|^backup_dir = .*|backup_dir = $PWD/open-dir|" "$conf" >bad.conf
	refused 1 "backup_dir $PWD/open-dir is not safe .*writable by its group or by everyone" \
		amberd --config bad.conf
	rmdir "$PWD/open-dir"
	refused 2 "unknown option --bogus" amberd --bogus
}

volumes_are_created() {
	local v
	# logged as amberd came up, before this step: not seen from its start
	amberd_log_lacks "volume da: created"
	amberd_log_mark_start
	for v in da db dc ds; do
		says " amber " dmsetup table "$v"
		says " amber-view " dmsetup table "$v-view"
		amberd_log_has "volume $v: created /dev/mapper/$v"
	done
}

# 0600 root's; a non-root peer cannot connect, and if the mode lets it, the
# daemon itself refuses it (SO_PEERCRED) with a clear error.
control_socket_is_root_only() {
	[ "$(stat -c '%a %U' "$AMBERD_SOCK")" = "600 root" ]
	refused 1 "permission denied \(its control socket is root's" \
		su -s /bin/sh nobody -c "amber daemon status"
	chmod 666 "$AMBERD_SOCK"
	refused 1 "takes requests from root only, not from uid 65534" \
		su -s /bin/sh nobody -c "amber daemon status"
	chmod 600 "$AMBERD_SOCK"
	amberd_log_has "refused a client of uid 65534 .* not root"
}

# Sets 1 (full), 2 and 3 (incremental), each from one barrier over da and db.
backup_sets_full_then_incremental() {
	local out
	chunk_pattern_write "$(dm_dev da)" 0 8 a1
	chunk_pattern_write "$(dm_dev db)" 0 8 b1
	out=$(amber daemon backup g)
	printf '%s\n' "$out" | sed 's/^/# /'
	grep -q "^barrier group g set 1 da=1 db=1$" <<<"$out"
	grep -q "^ok group g set 1 full$" <<<"$out"
	chunk_pattern_write "$(dm_dev da)" 2 2 a2
	says "^ok group g set 2 incremental$" amber daemon backup g
	chunk_pattern_write "$(dm_dev db)" 5 1 b3
	# --detach: back once the barrier is cut; amberd finishes the set.
	amber daemon backup g --detach >out.txt
	[ "$(tail -n 1 out.txt)" = "barrier group g set 3 da=3 db=3" ]
	wait_until 60 prints "^backup 3 g db incremental 3 " amber daemon list g
	[ "$(catalog_sets "$dir" g | xargs)" = "1 full 1 full 2 incremental 2 incremental 3 incremental 3 incremental" ]
	[ "$(files_in "$dir/g")" = "000001-da.full.amb 000001-db.full.amb 000002-da.incr.amb 000002-db.incr.amb 000003-da.incr.amb 000003-db.incr.amb" ]
	amber verify "$dir"/g/*.amb >/dev/null
	# --json: the same state as documents (keys in amber(8), in that order)
	amber daemon status --json >status.json
	grep -q '"name":"g","volumes":\["da","db"\],"last_set":3,"last_set_kind":"incremental"' status.json
	grep -q '"name":"da","state":"idle","epoch":3,' status.json
	amber list --json "$dir"/g/000003-da.incr.amb >list.json
	grep -q '"kind":"incremental",.*"epoch":3,.*"parent":{"epoch":2,' list.json
	amberd_log_has "group g: set 3: one barrier over 2 volumes, epochs da=3 db=3"
	amberd_log_has "group g: set 3 done: incremental, 2 volumes"
}

# The chain amberd names restores each volume's image of set 3, with the
# digests its catalog recorded; with digests that are not the files' (here
# in the wrong order), nothing is restored.
chains_restore() {
	local digests
	# shellcheck disable=SC2046
	amber restore $(chain_of g da) --to "$(dm_dev d-r1)" --force \
		--digest "$(digests_of g da)" >/dev/null
	# shellcheck disable=SC2046
	amber restore $(chain_of g db) --to "$(dm_dev d-r2)" --force \
		--digest "$(digests_of g db)" >/dev/null
	[ "$(chain_of g da | wc -w)" -eq 3 ]
	digests=$(digests_of g da)
	[ "$(echo "$digests" | tr , ' ' | wc -w)" -eq 3 ]
	digests=$(echo "$digests" | awk -F, '{ print $3 "," $2 "," $1 }')
	# shellcheck disable=SC2046
	refused 3 "000001-da.full.amb: digest [0-9a-f]{64}, expected [0-9a-f]{64}: not the backup" \
		amber restore $(chain_of g da) --to "$(dm_dev d-r1)" --force --digest "$digests"
	chunk_pattern_verify "$(dm_dev d-r1)" 0 2 a1
	chunk_pattern_verify "$(dm_dev d-r1)" 2 2 a2
	chunk_pattern_verify "$(dm_dev d-r1)" 4 4 a1
	chunk_pattern_verify "$(dm_dev d-r2)" 0 5 b1
	chunk_pattern_verify "$(dm_dev d-r2)" 5 1 b3
	chunk_pattern_verify "$(dm_dev d-r2)" 6 2 b1
	# set 1 alone: its own chain, the first image
	# shellcheck disable=SC2046
	amber restore $(chain_of g da 1) --to "$(dm_dev d-r1)" --force >/dev/null
	chunk_pattern_verify "$(dm_dev d-r1)" 0 8 a1
}

# full_every 3: set 4 is full; retention 1 then drops sets 1..3, files too.
retention_drops_old_sets() {
	says "^ok group g set 4 full$" amber daemon backup g
	[ "$(catalog_sets "$dir" g | xargs)" = "4 full 4 full" ]
	[ "$(files_in "$dir/g")" = "000004-da.full.amb 000004-db.full.amb" ]
	amberd_log_has "group g: retention: removed g/000001-da.full.amb"
	says "^ok group g set 5 incremental$" amber daemon backup g
	[ "$(catalog_sets "$dir" g | xargs)" = "4 full 4 full 5 incremental 5 incremental" ]
}

# What cannot be done is refused with a clear error, and leaves nothing.
refusals_are_clear() {
	local before
	refused 2 "amber daemon: unknown request 'frob'" amber daemon frob
	refused 1 "no group 'nogroup' in $conf" amber daemon backup nogroup
	refused 1 "group solo has no backup to be incremental from: take a full one" \
		amber daemon backup solo incremental
	refused 2 "unexpected argument" amber daemon list a b c d
	# A snapshot someone else holds: the set fails, no file is left, and
	# once that snapshot is backed up, sets work again.
	says "^snap da epoch 6$" amber daemon snap g
	before=$(files_in "$dir/g")
	refused 1 "group g set 6 failed: snap: a snapshot is already active" amber daemon backup g
	[ "$(files_in "$dir/g")" = "$before" ]
	amber backup da --use-snapshot --to "$PWD/da-own.amb" >/dev/null
	amber backup db --use-snapshot --to "$PWD/db-own.amb" >/dev/null
	says "^ok group g set 7 " amber daemon backup g
	amber_expect da state idle
	amber_expect db state idle
}

# The trigger socket: its user's, for backups of its group only.
trigger_socket_is_for_its_user() {
	local sock=/run/amber/g.trigger
	[ "$(stat -c '%a %U' "$sock")" = "600 nobody" ]
	[ "$(stat -c '%a %U' /run/amber)" = "755 root" ]
	su -s /bin/sh nobody -c "amber daemon --socket $sock backup g" >out.txt
	grep -q "^ok group g set 8 full$" out.txt
	# once a minute (min_interval's default) on the trigger socket; root's
	# control socket is not limited
	refused 1 "group g: a set was asked for on its trigger socket [0-9]+ s ago, and min_interval is 60 s: try again in [0-9]+ s" \
		su -s /bin/sh nobody -c "amber daemon --socket $sock backup g"
	amberd_log_has "group g: refused a set for uid 65534 on the trigger socket \(min_interval\)"
	refused 1 "the trigger socket of group g takes only 'backup g" \
		su -s /bin/sh nobody -c "amber daemon --socket $sock status"
	refused 1 "takes only" su -s /bin/sh nobody -c "amber daemon --socket $sock backup solo"
	amberd_log_has "request from uid 65534 .*: backup g"
}

# Hostile clients cannot lock root out or stall amberd: 10 connections of
# the trigger user that send requests and never read, then 200 idle ones,
# and 8 idle ones of root on the same socket. Each user gets 8 connections
# there (a slot range stays root's on the control socket); root's status
# still answers at once; amberd hangs up on the idle ones and the ones
# that do not read.
clients_cannot_lock_root_out() {
	local sock=/run/amber/g.trigger ms
	su -s /bin/sh nobody -c "clientflood flood $sock 10 200 'list g' 60" >flood1.txt &
	local flood1=$!
	clientflood flood "$sock" 0 8 - 60 >flood2.txt &
	local flood2=$!
	# (an amberd that stalls on the clients that never read accepts no one)
	wait_until 30 grep -q '^held' flood1.txt || echo "# flood 1 not through after 30 s"
	wait_until 30 grep -q '^held' flood2.txt || echo "# flood 2 not through after 30 s"
	clientflood time /run/amber/amberd.sock status >time.txt ||
		{ sed 's/^/# /' time.txt; return 1; }
	ms=$(awk '/^ms/ { print int($2) }' time.txt)
	echo "# root's status took $ms ms with the trigger socket flooded"
	# A stall lasts until a send timeout (10 s); a stock kernel answers in
	# about 6 ms, the debug one under TCG in about 200.
	[ "$ms" -lt 1000 ]
	wait "$flood1" "$flood2"
	sed 's/^/# /' flood1.txt flood2.txt
	grep -q '^held 8 refused 202$' flood1.txt
	grep -q '^refusal this user has too many connections: try later$' flood1.txt
	grep -q '^held 8 refused 0$' flood2.txt
	grep -q '^closed 8 of 8 after' flood1.txt
	grep -q '^closed 8 of 8 after' flood2.txt
	amberd_log_has "hung up on a client of uid 65534 pid [0-9]+: it reads no answer"
	amberd_log_has "hung up on a client of uid 0 pid [0-9]+: idle"
}

# flood_accounted <asks>: each ask's two lines (the request, its refusal)
# is in amberd's log since the mark or counted by a "suppressed" line;
# FLOOD says how many of each.
flood_accounted() {
	local lines suppressed
	lines=$(($(amberd_log_count "request from uid 65534 ") +
		 $(amberd_log_count "refused a set for uid 65534 ")))
	suppressed=$(amberd_log_since_mark | awk '
		/suppressed [0-9]+ messages from uid 65534 / {
			for (i = 1; i < NF; i++) if ($i == "suppressed") n += $(i + 1)
		}
		END { print n + 0 }')
	FLOOD="$lines lines logged, $suppressed suppressed"
	[ $((lines + suppressed)) -eq $((2 * $1)) ]
}

# The trigger user asks for sets back to back on 6 connections for 3 s,
# each refused (min_interval 1h, after one set): amberd logs 10 lines per
# 5 s for its uid, then one line that counts the rest, flood or not.
trigger_flood_is_logged_in_a_few_lines() {
	local sock=/run/amber/tg.trigger asked bytes
	su -s /bin/sh nobody -c "amber daemon --socket $sock backup tg" >out.txt
	grep -q "^ok group tg set 1 full$" out.txt
	amberd_log_mark
	su -s /bin/sh nobody -c "clientflood spam $sock 6 'backup tg' 3" >spam.txt ||
		{ sed 's/^/# /' spam.txt; return 1; }
	sed 's/^/# /' spam.txt
	grep -q "^final error group tg: a set was asked for on its trigger socket" spam.txt
	asked=$(awk '/^asked/ { print $2 }' spam.txt)
	# a flood: 2 log lines an ask against 10 lines logged per 5 s (a stock
	# kernel asks about 3,000 times, the debug one under load 400)
	[ "$asked" -ge 100 ]
	wait_until 15 flood_accounted "$asked" || { echo "# $FLOOD, for $asked asks"; return 1; }
	bytes=$(amberd_log_since_mark | wc -c)
	echo "# $asked asks in 3 s: $FLOOD; $bytes bytes of log since the flood began"
	[ "${FLOOD%% lines*}" -le 20 ]
	[ "$bytes" -lt 16384 ]
	amberd_log_has "suppressed [0-9]+ messages from uid 65534 \(at most 10 logged per 5 s\)"
}

# [schedule sched] every 4 s, full_every 2: full, incremental, full, ...;
# and one more starts while this step looks.
schedule_runs_by_itself() {
	wait_until 120 eval "[ \$(catalog_sets '$dir' sched | wc -l) -ge 3 ]"
	[ "$(catalog_sets "$dir" sched | head -n 3 | xargs)" = "1 full 2 incremental 3 full" ]
	wait_until 60 amberd_logged "group sched: set [0-9]+ started \(job [0-9]+, auto, scheduled\)" ||
		amberd_log_has "group sched: set [0-9]+ started \(job [0-9]+, auto, scheduled\)"
}

# SIGTERM: sockets gone, volumes stay; a new amberd takes them over and the
# set numbers go on.
restart_carries_on() {
	local client rc=0
	# SIGTERM in the middle of a set (its origin reads take 800 ms each):
	# the set fails, its client is told, no file or snapshot is left.
	amber daemon backup slow >slow.out 2>&1 &
	client=$!
	wait_until 60 amberd_logged "group slow: set 1: one barrier"
	amberd_stop
	wait "$client" || rc=$?
	sed 's/^/# /' slow.out
	[ "$rc" -eq 1 ]
	grep -q "amber daemon: group slow set 1 failed: ds: " slow.out
	[ -z "$(ls -A "$dir/slow")" ]
	amber_expect ds state idle
	amberd_log_has "stopping on Terminated: interrupting the running backup"
	amberd_log_has "group slow: set 1 failed"
	amberd_stop
	[ ! -e "$AMBERD_SOCK" ]
	[ ! -e /run/amber/g.trigger ]
	amberd_log_has "stopped"
	dmsetup table da >out.txt
	grep -q " amber " out.txt
	sed -i '/^\[schedule sched\]/,$d' "$conf"	# no more scheduled sets
	amberd_restart "$conf"
	amberd_log_has "volume da: there"
	says "^ok group g set 9 incremental$" amber daemon backup g
	says "^group g volumes da,db last_set 9 incremental" amber daemon status
}

# slow_set_start: start a set of group slow in the background and wait
# until its backup process streams; CLIENT, JOB and BACKUP get the pids of
# the client, the set's job and its backup. The set takes seconds: ds's
# reads take 800 ms each. amberd's log is marked where it starts.
slow_set_start() {
	amberd_log_mark
	amber daemon backup slow >slow.out 2>&1 &
	CLIENT=$!
	wait_until 60 amberd_logged "group slow: set [0-9]+: one barrier"
	wait_until 60 backup_found || {
		echo "# no backup process of group slow; files open under $dir:"
		{ ls -l /proc/[0-9]*/fd 2>/dev/null || true; } | grep -F -- "$dir/" | sed 's/^/# /' || true
		echo "# processes:"
		ps | sed "s/^/#   /" || true
		sed 's/^/# client: /' slow.out
		tail -n 20 "$AMBERD_LOG" | sed 's/^/# amberd: /'
		return 1
	}
	JOB=$(awk '{ sub(/^.*\) /, ""); print $2 }' "/proc/$BACKUP/stat" 2>/dev/null) || {
		echo "# backup process $BACKUP over as soon as found"
		return 1
	}
}

# backup_found: BACKUP gets the pid of the backup process of group slow.
backup_found() {
	BACKUP=$(backup_of_ds)
}

# backup_of_ds: the pid of the backup process of a set of group slow,
# known by the .part file it writes in the group's directory (amberd may
# run a scheduled set of another group meanwhile). One ls for all of /proc:
# a readlink per descriptor forks hundreds of times, seconds under TCG, and
# the backup may be over before such a scan is.
backup_of_ds() {
	{ ls -l /proc/[0-9]*/fd 2>/dev/null || true; } | awk '
		/^\/proc\/[0-9]+\/fd:$/ { split($0, p, "/"); pid = p[3] }
		/\/slow\/[^ ]*\.part$/ { print pid; found = 1; exit }
		END { exit !found }'
}

# SIGKILL, first of a set's backup process and then of amberd itself: each
# time the set fails, its snapshot is dropped and no file is left (the job
# and its backups stop with amberd); after a restart, a set completes. A
# snapshot amberd finds at start-up is named in its log, not dropped.
sigkill_leaves_nothing() {
	local rc=0
	slow_set_start
	kill -KILL "$BACKUP" || { echo "# backup process $BACKUP gone before the kill"; return 1; }
	wait "$CLIENT" || rc=$?
	sed 's/^/# /' slow.out
	[ "$rc" -eq 1 ]
	grep -q "the backup process was killed by signal 9" slow.out
	wait_until 20 amber_is ds state idle
	[ -z "$(ls -A "$dir/slow")" ]
	slow_set_start
	kill -KILL "$(cat "$AMBERD_PIDFILE")"
	wait "$CLIENT" || true
	wait_until 60 process_gone "$BACKUP"
	wait_until 20 process_gone "$JOB"
	amber_expect ds state idle
	amber_expect ds used 0
	[ -z "$(ls -A "$dir/slow")" ]
	amber snap ds >/dev/null
	amberd_restart "$conf"
	amberd_log_has "volume ds: a snapshot of epoch [0-9]+ is active, not taken by this amberd"
	amber drop ds >/dev/null
	says "^ok group slow set [0-9]+ full$" amber daemon backup slow
}

slice d-o1 origin 0 32
slice d-o2 origin 32 32
slice d-o3 origin 64 16
slice d-s1 store 0 32
slice d-s2 store 32 32
slice d-s3 store 64 16
slice d-r1 origin2 0 32
slice d-r2 origin2 32 32
slice d-o4 origin 96 16
slice d-s4 store 96 16
require_module dm-delay
dm_create d-slow "0 $(sectors "$(dm_dev d-o4)") delay $(dm_dev d-o4) 0 800 $(dm_dev d-o4) 0 0"
for d in d-o1 d-o2 d-o3 d-s1 d-s2 d-s3 d-s4; do
	scratch_wipe "$(dm_dev $d)"
done
defer remove_volumes da db dc ds
write_conf
mkdir "$dir"
# amberd makes its socket directory under the unit's umask: none is left
# from an earlier test.
rmdir /run/amber 2>/dev/null || true
amberd_start "$conf"

ktap_print_header
ktap_set_plan 13
ktap_step "amberd --check sums up a configuration and refuses a bad one by line" check_refuses_bad_configuration
ktap_step "amberd creates the volumes of its configuration" volumes_are_created
ktap_step "the control socket is root's and refuses other peers" control_socket_is_root_only
ktap_step "backup sets: one barrier over the group, full then incrementals" backup_sets_full_then_incremental
ktap_step "the chain amberd names restores each volume's image" chains_restore
ktap_step "full every N, and retention drops what no backup needs" retention_drops_old_sets
ktap_step "requests that cannot be served fail clearly and leave nothing" refusals_are_clear
ktap_step "a trigger socket takes backups of its group from its user only" trigger_socket_is_for_its_user
ktap_step "hostile clients cannot lock root out or stall amberd" clients_cannot_lock_root_out
ktap_step "a trigger user's flood of refused requests is logged in a few lines" trigger_flood_is_logged_in_a_few_lines
ktap_step "scheduled sets run by themselves, full every N" schedule_runs_by_itself
ktap_step "SIGTERM stops a set cleanly; after a restart amberd goes on" restart_carries_on
ktap_step "SIGKILL of a backup, then of amberd, leaves no snapshot or file" sigkill_leaves_nothing
ktap_finished
