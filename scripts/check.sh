#!/usr/bin/env bash
# Every test of amber, the body of `make check`:
#   build             make all (module for each kernel, userspace, selftests)
#   userspace/*       the host unit tests (make -C userspace test)
#   fuzz              every libFuzzer target of userspace, FUZZ_SECONDS each
#   6.1/*, 6.12/*     the selftests in a VM on each tested kernel
#   debug/*           with DEBUG_TIER=1: the kernel-core selftests
#                     (DEBUG_TESTS) on the debug kernel (KASAN, lockdep,
#                     kmemleak) once scripts/debug-kernel.sh has cached it;
#                     else skipped. Off by default: it would take CI past
#                     45 minutes. The whole suite there:
#                     make vmtest KERNEL=debug
#   harness/*         the VM harness catches a kernel WARN, a crash test's
#                     failed first boot, and on the debug kernel a leak that
#                     only kmemleak sees (selftest.sh)
# Each part runs even when an earlier one failed. The last line is
# "N passed, N failed, N skipped"; the exit status is 1 if anything failed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${AMBER_BUILD:-$top/build}
vm=$top/selftests/vm
. "$vm/results.sh"

results=$build/check.results
files=("$results")

# step <name> <command...>: one result for a command that reports nothing.
step() {
	local name=$1
	shift
	if "$@"; then
		result "$results" PASS "$name"
	else
		result "$results" FAIL "$name"
	fi
}

# The tests of every path through the I/O and barrier code, short enough
# for KASAN under TCG within CI's time.
DEBUG_TESTS=${DEBUG_TESTS:-amber_table amber_view amber_overflow amber_faults amber_failslab amber_edges amber_cycle}

# The host unit tests, one result each from their KTAP lines.
userspace_tests() {
	local out=$build/userspace-tests.log rc=0 status name
	make -s -C "$top/userspace" test >"$out" 2>&1 || rc=$?
	while read -r status name; do
		result "$results" "$status" "userspace/$name"
	done < <(awk '/^ok [0-9]+ /     { print "PASS", $3 }
		      /^not ok [0-9]+ / { print "FAIL", $4 }' "$out")
	if [ "$rc" -ne 0 ]; then
		tail -20 "$out"
		result "$results" FAIL userspace "make -C userspace test failed"
	fi
}

# vm_run <name> <its results file> <command...>: a VM run's results, and
# one failure more when it ended before writing any, or failed without
# recording a failure.
vm_run() {
	local name=$1 file=$2
	shift 2
	if ! "$@"; then
		if [ ! -s "$file" ]; then
			result "$results" FAIL "$name" "the run ended before any result"
			return
		fi
		grep -q '^FAIL ' "$file" ||
			result "$results" FAIL "$name" "the run failed with no failing result"
	fi
	files+=("$file")
}

main() {
	local k
	mkdir -p "$build"
	: >"$results"
	step build make -s -k -C "$top" all
	userspace_tests
	step unit "$top/scripts/verify-unit.sh"
	step fuzz make -s -C "$top/userspace" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
	for k in 6.1 6.12; do
		vm_run "$k/vmtest" "$build/vm/$k/results" "$vm/vmtest.sh" -k "$k"
	done
	vm_run harness/warn "$build/vm/selftest-warn/harness.results" "$vm/selftest.sh" warn
	vm_run harness/boot1 "$build/vm/selftest-boot1/harness.results" "$vm/selftest.sh" boot1
	if [ -z "${DEBUG_TIER:-}" ]; then
		result "$results" SKIP debug/vmtest "DEBUG_TIER=1 runs it (about 15 minutes more)"
		result "$results" SKIP harness/leak-caught "DEBUG_TIER=1 runs it"
	elif "$top/scripts/kernels.sh" debug available; then
		vm_run debug/vmtest "$build/vm/debug/results" "$vm/vmtest.sh" -k debug \
			$(printf -- '-t %s ' $DEBUG_TESTS)
		vm_run harness/leak "$build/vm/selftest-leak/harness.results" \
			"$vm/selftest.sh" leak
	else
		result "$results" SKIP debug/vmtest "debug kernel not cached: scripts/debug-kernel.sh"
		result "$results" SKIP harness/leak-caught "needs the debug kernel"
	fi
	summary "${files[@]}"
}

main
