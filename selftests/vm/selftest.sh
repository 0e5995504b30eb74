#!/usr/bin/env bash
# The VM harness's self-test: a VM run that loads selftests/fault_mod, which
# commits a kernel fault on load, must fail, and fail through its kernel
# fault scan, with the test itself passing; a crash test whose first boot
# fails a step must fail although its second boot passes. One result,
# harness/<fault>-caught, in build/vm/selftest-<fault>/harness.results,
# next to the run's own files.
#
#   selftests/vm/selftest.sh [warn|leak|boot1] [kernel]
#
#   warn  a WARN (any kernel; default 6.1)
#   leak  a leaked allocation, which only kmemleak sees (default debug)
#   boot1 a failed step in a crash test's first boot (default 6.1)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${AMBER_BUILD:-$top/build}
. "$here/results.sh"

fault=${1:-warn}
case $fault in
warn) kernel=${2:-6.1} report='WARNING:.*fault_mod' ;;
leak) kernel=${2:-debug} report='unreferenced object' ;;
boot1) kernel=${2:-6.1} ;;
*) echo "selftest: unknown fault $fault" >&2; exit 2 ;;
esac
dir=$build/vm/selftest-$fault
out=$dir/harness.results

caught() {
	if [ "$fault" = boot1 ]; then
		[ "$1" -eq 1 ] &&
			grep -qsx "FAIL $kernel/boot1_fails.crash" "$dir/results" &&
			grep -qs "boot 1: .*a step of the first boot fails" "$dir.out" &&
			grep -qsx "PASS $kernel/boot1_fails.crash/kernel-fault-scan" "$dir/results"
		return
	fi
	[ "$1" -eq 1 ] &&
		grep -qsx "PASS $kernel/fault_test" "$dir/results" &&
		grep -qsx "FAIL $kernel/kernel-fault-scan" "$dir/results" &&
		grep -qs "$report" "$dir/faults"
}

main() {
	local kdir ko rc=0
	rm -f "$out"
	mkdir -p "$dir"
	if [ "$fault" = boot1 ]; then
		"$here/vmtest.sh" -k "$kernel" -o "selftest-$fault" \
			-f "$here/boot1_fails.crash.sh" >"$dir.out" 2>&1 || rc=$?
		report "$rc"
		return
	fi
	kdir=$("$top/scripts/kernels.sh" "$kernel" kdir)
	ko=$("$top/scripts/build-kmod.sh" "$kdir" "$top/selftests/fault_mod")/fault_mod.ko
	VM_APPEND="fault_mod.fault=$fault" "$here/vmtest.sh" -k "$kernel" \
		-o "selftest-$fault" -f "$here/fault_test.sh" -m "$ko" \
		>"$dir.out" 2>&1 || rc=$?
	report "$rc"
}

report() {
	if caught "$1"; then
		result "$out" PASS "harness/$fault-caught"
	else
		result "$out" FAIL "harness/$fault-caught" "the fault went unreported; the run said:"
		sed 's/^/    /' "$dir.out"
	fi
	summary "$out"
}

main
