#!/usr/bin/env bash
# Negative controls: a test is worth the bug it catches. Each patch in
# selftests/negative/ plants one defect in dm-amber; its header says
#   Catches: <test>...     the tests that must catch it
#   Expect: <ERE>          what their failure must say (vmtest's report of
#                          a failed test shows its output)
#   Env: NAME=value...     for the VM (VM_ENV), e.g. more power cuts
# For each patch, build the defective module, run those tests with it in a
# VM, and require that each of them FAILS there, saying what Expect says:
# a failure for another reason (a timeout, a flaky step) is not a catch.
#
#   scripts/negative-control.sh [-k 6.1|6.12] [patch...]
#
# Default: every patch, on 6.12. The last line is "N passed, N failed": a
# control passes when the defect was caught. The runs are in
# build/vm/negative-<patch>/, the defective modules in build/negative/.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${AMBER_BUILD:-$top/build}
. "$top/selftests/vm/results.sh"

# control <kernel> <patch> <results>: one result per test the patch names.
control() {
	local kernel=$1 patch=$2 results=$3 name src kdir ko test tests expect env
	local run out args=()
	name=$(basename "$patch" .patch)
	tests=$(sed -n 's/^Catches: //p' "$patch")
	expect=$(sed -n 's/^Expect: //p' "$patch")
	env=$(sed -n 's/^Env: //p' "$patch")
	if [ -z "$tests" ] || [ -z "$expect" ]; then
		result "$results" FAIL "$name" "no Catches: or Expect: line"
		return
	fi
	src=$build/negative/$name/src
	rm -rf "$src"
	mkdir -p "$src"
	cp -a "$top/module" "$src/"
	if ! patch -s -p1 -d "$src" <"$patch"; then
		result "$results" FAIL "$name" "the patch does not apply"
		return
	fi
	kdir=$("$top/scripts/kernels.sh" "$kernel" kdir)
	ko=$(AMBER_BUILD=$build/negative/$name "$top/scripts/build-kmod.sh" "$kdir" "$src/module")/dm-amber.ko ||
		{ result "$results" FAIL "$name" "the defective module does not build"; return; }
	for test in $tests; do
		args+=(-t "$test")
	done
	run=$build/vm/negative-$name
	out=$build/vm/negative-$name.out
	rm -rf "$run" "$out"
	VM_ENV="${VM_ENV:-} $env" VM_TEST_TIMEOUT=${VM_TEST_TIMEOUT:-3600} \
		VM_TIMEOUT=${VM_TIMEOUT:-4000} "$top/selftests/vm/vmtest.sh" -k "$kernel" \
		-o "negative-$name" -m "$ko" "${args[@]}" >"$out" 2>&1 || true
	for test in $tests; do
		if ! grep -q "^FAIL $kernel/$test\$" "$run/results" 2>/dev/null; then
			result "$results" FAIL "$name/$test" "not failed with the defect (see $out)"
		elif ! grep -Eq -- "$expect" "$out"; then
			result "$results" FAIL "$name/$test" "failed, but not saying /$expect/ (see $out)"
		else
			result "$results" PASS "$name/$test" "caught: $(grep -Em 1 -- "$expect" "$out" | sed 's/^ *//')"
		fi
	done
}

main() {
	local kernel=6.12 opt patches results=$build/negative.results
	while getopts k: opt; do
		case $opt in
		k) kernel=$OPTARG ;;
		*) echo "usage: $0 [-k 6.1|6.12] [patch...]" >&2; exit 2 ;;
		esac
	done
	shift $((OPTIND - 1))
	patches=("$@")
	[ $# -gt 0 ] || patches=("$top"/selftests/negative/*.patch)
	mkdir -p "$build"
	: >"$results"
	for patch in "${patches[@]}"; do
		control "$kernel" "$patch" "$results"
	done
	summary "$results"
}

main "$@"
