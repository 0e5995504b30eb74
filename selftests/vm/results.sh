# shellcheck shell=bash
# Result files shared by vmtest.sh, selftest.sh and scripts/check.sh.
# Sourced. A result file holds one line per test: PASS|FAIL|SKIP <name>.

# Record and print one result: result <file> <PASS|FAIL|SKIP> <name> [note]
result() {
	local file=$1 status=$2 name=$3 note=${4:-}
	echo "$status $name" >>"$file"
	printf '%-4s %s%s\n' "$status" "$name" "${note:+  ($note)}"
}

# The closing line of a test run; fails if any test failed.
summary() {
	cat "$@" | awk '
		{ n[$1]++ }
		END {
			printf "%d passed, %d failed, %d skipped\n", n["PASS"], n["FAIL"], n["SKIP"]
			exit n["FAIL"] > 0
		}'
}
