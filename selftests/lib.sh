# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Shared helpers of the shell selftests. The tests run as root inside the
# test VM (selftests/vm/), one after the other, on scratch disks that are
# fresh for each VM run. A test looks like:
#
#	#!/bin/bash
#	. "$(dirname "$0")/lib.sh"
#	ktap_print_header
#	ktap_set_plan 2
#	dm_create t1 "0 2048 linear $(scratch_disk origin) 0"
#	ktap_step "first check" first_check_function args...
#	ktap_step "second check" ...
#	ktap_finished
#
# Output is KTAP through the kernel's ktap_helpers.sh (sourced here; see
# ktap_print_msg, ktap_skip_all). Exit status as in kselftest: 0 pass,
# 1 fail, 4 skip. A test must leave no dm device, mount or loop device
# behind (the runner fails it otherwise): register cleanups with defer.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/ktap_helpers.sh"

# ---- cleanup --------------------------------------------------------------

_deferred=()

# defer <command...>: run the command at exit, the last registered first.
defer() {
	_deferred+=("$(printf '%q ' "$@")")
}

_run_deferred() {
	local rc=$? i
	for ((i = ${#_deferred[@]} - 1; i >= 0; i--)); do
		eval "${_deferred[i]}" || echo "# cleanup failed: ${_deferred[i]}"
	done
	exit "$rc"
}
trap _run_deferred EXIT

# ---- results --------------------------------------------------------------

# ktap_step <description> <command...>: one KTAP result. The command runs in
# a subshell with errexit in force, so any failing line fails the step (in
# ktap_test_result's "if", errexit is off inside functions). Call it as a
# plain statement, never inside if, && or ||, for the same reason. Its
# time, in whole seconds, is a comment before the result.
# A step is SKIP only when it called skip(), never because a command in it
# happened to exit with KSFT_SKIP (4: e2fsck's "errors left", for one).
_skip_marker=/tmp/ktap-skip.$$
ktap_step() {
	local desc=$1 rc start=$SECONDS
	shift
	rm -f "$_skip_marker"
	set +e
	(
		set -e
		klog_mark
		"$@"
	)
	rc=$?
	set -e
	ktap_print_msg "$((SECONDS - start)) s"
	if [ "$rc" = 0 ]; then
		ktap_test_pass "$desc"
	elif [ "$rc" = "$KSFT_SKIP" ] && [ -e "$_skip_marker" ]; then
		ktap_test_skip "$desc"
	else
		ktap_test_fail "$desc"
	fi
	rm -f "$_skip_marker"
}

# klog_mark: from here on, klog_has looks only at what the kernel logs
# after this point, so a line left by an earlier step or test cannot answer
# for this one. ktap_step marks the start of every step. The mark names the
# shell (BASHPID: a step's subshell has its own) and a counter.
_klog_count=0
_klog_mark=
klog_mark() {
	_klog_count=$((_klog_count + 1))
	_klog_mark="amber-selftest: mark <$BASHPID.$_klog_count>"
	echo "$_klog_mark" >/dev/kmsg
}

# klog_find <text>: "yes" if the kernel logged this text since the last
# klog_mark, "no" if not, "lost" if the mark is gone from the log. The whole
# log is read (grep -q would close the pipe early, and dmesg's SIGPIPE
# fails the pipeline under pipefail).
klog_find() {
	dmesg | awk -v mark="$_klog_mark" -v text="$1" '
		index($0, mark) { since = 1; hit = 0; next }
		since && index($0, text) { hit = 1 }
		END { print since ? (hit ? "yes" : "no") : "lost" }'
}

# klog_has <text>: the kernel logged this text since the last klog_mark.
klog_has() {
	case $(klog_find "$1") in
	yes) return 0 ;;
	lost) echo "# the kernel log no longer holds the mark '$_klog_mark'" ;;
	*) echo "# kernel log lacks: $1" ;;
	esac
	return 1
}

# klog_lacks <text>: the kernel has not logged it since the last klog_mark
# (whose line must still be there). Not "! klog_has": errexit ignores a
# command negated with "!".
klog_lacks() {
	case $(klog_find "$1") in
	no) return 0 ;;
	lost) echo "# the kernel log no longer holds the mark '$_klog_mark'" ;;
	*) echo "# the kernel logged: $1" ;;
	esac
	return 1
}

# skip <reason>: inside a ktap_step command, skip that step.
skip() {
	ktap_print_msg "SKIP: $*"
	: >"$_skip_marker"
	exit "$KSFT_SKIP"
}

# skip_all <reason>: skip the whole test; call before ktap_set_plan.
skip_all() {
	ktap_skip_all "$*"
	exit "$KSFT_SKIP"
}

# require_module <name>: load a module, or skip the whole test.
require_module() {
	modprobe "$1" 2>/dev/null || skip_all "module $1 is not available"
}

# ---- scratch disks ---------------------------------------------------------

# scratch_disk <role>: the VM's disk for a role (the runner sets
# AMBER_DISK_<ROLE>), shared by the run's tests:
#   origin  the protected volume      store   its amber store
#   origin2 a second volume           store2  its amber store
scratch_disk() {
	local var=AMBER_DISK_${1^^}
	[ -n "${!var:-}" ] || { echo "scratch_disk: no disk for role $1" >&2; return 1; }
	echo "${!var}"
}

# scratch_wipe <dev>: zero a whole device (fast: WRITE ZEROES/unmap).
scratch_wipe() {
	blkdiscard -f -z "$1"
}

# sectors <dev>: size in 512-byte sectors.
sectors() {
	blockdev --getsz "$1"
}

# ---- device mapper ----------------------------------------------------------

# dm_dev <name>: the device node of a dm device.
dm_dev() {
	echo "/dev/mapper/$1"
}

# dm_create <name> <table> [dmsetup create options]: create a dm device and
# remove it at exit. Its node is $(dm_dev <name>).
dm_create() {
	local name=$1 table=$2
	shift 2
	dmsetup create "$name" "$@" --table "$table" || return
	defer dm_remove "$name"
}

# dm_remove <name>: remove a dm device if it exists, retrying while busy.
dm_remove() {
	[ -e "$(dm_dev "$1")" ] || return 0
	dmsetup remove --retry "$1"
}

# ---- waiting -----------------------------------------------------------------

# wait_until <seconds> <command...>: poll every 0.1 s until the command
# succeeds; fails after <seconds>.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# ---- data patterns -----------------------------------------------------------

# pattern <seed> <sectors>: deterministic data, 512 bytes per sector, each
# naming the seed and its index, so lost, stale or misplaced sectors show.
pattern() {
	awk -v seed="$1" -v n="$2" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "%-511s\n", "amber pattern " seed " sector " i
	}'
}

# pattern_write <dev> <sector> <count> <seed>: write a pattern, O_DIRECT.
pattern_write() {
	pattern "$4" "$3" | dd of="$1" bs=64k seek="$(($2 * 512))" \
		iflag=fullblock oflag=seek_bytes,direct conv=notrunc status=none
}

# pattern_verify <dev> <sector> <count> <seed>: the device holds that
# pattern there (read with O_DIRECT, past any page cache).
pattern_verify() {
	cmp <(pattern "$4" "$3") <(dd if="$1" bs=64k skip="$(($2 * 512))" \
		count="$(($3 * 512))" iflag=skip_bytes,count_bytes,direct status=none)
}
