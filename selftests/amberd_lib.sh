# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Helpers of the tests that run amberd (amber_daemon, amber_postgres,
# amber_sqlite), on top of amber_lib.sh. Call amberd_start at the top level:
# its cleanup is registered with defer.
. "$(dirname "${BASH_SOURCE[0]}")/amber_lib.sh"

# shellcheck disable=SC2034 # for the tests
AMBERD_SOCK=/run/amber/amberd.sock
AMBERD_LOG=${AMBERD_LOG:-$PWD/amberd.log}
AMBERD_PIDFILE=$PWD/amberd.pid

# amberd_start <config>: start amberd in the background as amberd.service
# does (UMask=0077); return once it answers on its socket. It is stopped at
# exit.
amberd_start() {
	amberd_restart "$1"
	defer amberd_stop
}

# amberd_restart <config>: the same, for a daemon stopped by amberd_stop in a
# step (no second cleanup is registered).
amberd_restart() {
	_amberd_log_start=$(_amberd_log_size)
	(umask 0077 && exec amberd --config "$1" 2>>"$AMBERD_LOG") &
	echo $! >"$AMBERD_PIDFILE"
	amberd_wait_ready
}

amberd_wait_ready() {
	if ! wait_until 60 amber daemon status >/dev/null 2>&1; then
		echo "# amberd did not come up; its log:"
		sed 's/^/#   /' "$AMBERD_LOG"
		return 1
	fi
}

# amberd_stop: SIGTERM, and wait until it is gone (works from any subshell).
amberd_stop() {
	local pid
	[ -f "$AMBERD_PIDFILE" ] || return 0
	pid=$(cat "$AMBERD_PIDFILE")
	rm -f "$AMBERD_PIDFILE"
	kill -TERM "$pid" 2>/dev/null || return 0
	wait_until 60 process_gone "$pid"
}

# children_of <pid>: the pids of its child processes, fails if none
# (busybox has no pgrep). The command name in stat may hold spaces: the
# fields counted are the ones after its closing parenthesis.
children_of() {
	awk -v parent="$1" '{
		sub(/^.*\) /, "")
		if ($2 == parent) { split(FILENAME, f, "/"); print f[3]; found = 1 }
	} END { exit !found }' /proc/[0-9]*/stat 2>/dev/null
}

# process_gone <pid>: exited (a zombie not reaped yet counts as gone).
process_gone() {
	[ ! -e "/proc/$1" ] || grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null
}

# says <ERE> <command...>: the command succeeds and prints a line matching
# the ERE (its whole output is read: no SIGPIPE under pipefail).
says() {
	local msg=$1
	shift
	"$@" >says.out || { echo "# $*: failed"; return 1; }
	grep -Eq -- "$msg" says.out && return 0
	echo "# $*: expected '$msg', it printed:"
	sed 's/^/#   /' says.out
	return 1
}

# prints <ERE> <command...>: quietly, the command succeeds and prints a
# matching line (for wait_until).
prints() {
	local msg=$1
	shift
	"$@" >prints.out 2>/dev/null && grep -Eq -- "$msg" prints.out
}

# refused <status> <ERE> <command...>: the command fails with that exit
# status and says so on standard error.
refused() {
	local want=$1 msg=$2 rc=0
	shift 2
	"$@" >/dev/null 2>refused.err || rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "# $*: exit status $rc, expected $want"
		sed 's/^/#   /' refused.err
		return 1
	fi
	grep -Eq -- "$msg" refused.err && return 0
	echo "# $*: expected '$msg', it said:"
	sed 's/^/#   /' refused.err
	return 1
}

# ---- amberd's log, from a mark on ----
# amberd_log_has and the others look only at what amberd logged since the
# mark, so that a step cannot pass on a line an earlier step caused. Every
# ktap_step sets the mark at its start (klog_mark, which ktap_step calls
# first thing in the step's subshell, is wrapped here); amberd_log_mark sets
# it again within a step. The mark is a byte offset: amberd writes each line
# with one write() to a file opened for appending.
_amberd_log_from=0
_amberd_log_start=0

_amberd_log_size() {
	stat -c %s "$AMBERD_LOG" 2>/dev/null || echo 0
}

# amberd_log_mark: from here on.
amberd_log_mark() {
	_amberd_log_from=$(_amberd_log_size)
}

# amberd_log_mark_start: from the start of the amberd running now on (for
# what it logs as it comes up).
amberd_log_mark_start() {
	_amberd_log_from=$_amberd_log_start
}

declare -F _amberd_klog_mark >/dev/null ||
	eval "_amberd_klog_mark() $(declare -f klog_mark | tail -n +2)"
klog_mark() {
	_amberd_klog_mark
	amberd_log_mark
}

# amberd_log_since_mark: what amberd logged since the mark.
amberd_log_since_mark() {
	tail -c +"$((_amberd_log_from + 1))" "$AMBERD_LOG"
}

# amberd_log_count <pattern>: how many lines since the mark match the ERE
# (the whole log is read: no SIGPIPE under pipefail).
amberd_log_count() {
	local n
	n=$(amberd_log_since_mark | grep -Ec -- "$1") || true
	echo "${n:-0}"
}

# amberd_logged <pattern>: quietly, a line since the mark matches the ERE
# (for wait_until).
amberd_logged() {
	[ "$(amberd_log_count "$1")" -gt 0 ]
}

# amberd_log_has <pattern>: amberd logged a line matching the ERE since the
# mark.
amberd_log_has() {
	amberd_logged "$1" || { echo "# amberd's log lacks, since the mark: $1"; return 1; }
}

# amberd_log_lacks <pattern>: it did not (not "! amberd_log_has": errexit
# ignores a command negated with "!").
amberd_log_lacks() {
	local n
	n=$(amberd_log_count "$1")
	[ "$n" -eq 0 ] || { echo "# amberd logged $n lines since the mark matching: $1"; return 1; }
}

# remove_volumes <name...>: remove the amber volumes amberd created.
remove_volumes() {
	local v
	for v in "$@"; do
		[ -e "$(dm_dev "$v")" ] && amber remove "$v" >/dev/null
	done
	return 0
}

# chain_of <group> <volume> [<set>]: the files that restore the volume's
# backup in the set (the newest by default), oldest first, as amberd says.
chain_of() {
	amber daemon chain "$1" ${3:+"$3"} | awk -v v="$2" '$1 == "chain" && $2 == v {
		for (i = 3; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : "\n") }'
}

# digests_of <group> <volume> [<set>]: what amber restore --digest takes for
# chain_of's files: the digests the catalog recorded, comma-separated.
digests_of() {
	amber daemon chain "$1" ${3:+"$3"} | awk -v v="$2" '$1 == "digests" && $2 == v { print $3 }'
}

# files_in <dir>: the names in a directory, sorted, on one line.
files_in() {
	(cd "$1" && echo *)
}

# catalog_sets <backup dir> <group>: "SET KIND" per volume backup, in order.
catalog_sets() {
	awk -v g="$2" '$1 !~ /^#/ && $2 == g { print $1, $4 }' "$1/catalog"
}
