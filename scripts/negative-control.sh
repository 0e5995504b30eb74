#!/usr/bin/env bash
# Negative controls: a test is worth the bug it catches. Each patch in
# selftests/negative/ plants one defect in dm-amber; its header names the
# tests that must catch it ("Catches: test..."). For each patch, build the
# defective module, run those tests with it in a VM, and require that each
# of them FAILS there.
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
	local kernel=$1 patch=$2 results=$3 name src kdir ko test tests args=()
	name=$(basename "$patch" .patch)
	tests=$(sed -n 's/^Catches: //p' "$patch")
	[ -n "$tests" ] || { result "$results" FAIL "$name" "no Catches: line"; return; }
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
	"$top/selftests/vm/vmtest.sh" -k "$kernel" -o "negative-$name" -m "$ko" "${args[@]}" || true
	for test in $tests; do
		if grep -q "^FAIL $kernel/$test\b" "$build/vm/negative-$name/results"; then
			result "$results" PASS "$name/$test" "caught"
		else
			result "$results" FAIL "$name/$test" "passed with the defect"
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
