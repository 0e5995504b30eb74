#!/usr/bin/env bash
# make bench: amber against dm-linear and dm-snapshot, in one VM run per
# kernel (QEMU under TCG: compare configurations within a run, never
# absolute numbers across runs). See docs/PERFORMANCE.md.
#
#   scripts/bench.sh [6.1|6.12]...     default: $KERNEL if set, else both
#
# For each kernel: builds dm-amber.ko, boots the VM with bench/vm-bench.sh
# as its only test, prints the table, and writes bench/results/<kernel>.json
# (every sample, medians, ratios, goals) and <kernel>.txt (the table). Then
# bench/results/ratios.png (gnuplot) and the figures in docs/PERFORMANCE.md.
#
# Environment: BENCH_SLICE (length of a timed slice, fio syntax, 500ms),
# BENCH_PAIRS (slice pairs per comparison, 20), BENCH_REPS (copy-on-write repetitions,
# 5), BENCH_QUICK=1 (a smoke run: fewer pairs and smaller counts),
# BENCH_RUN (prefix of the VM run name, "bench"). For experiments
# (bench/exp/): BENCH_PHASES, BENCH_COW_CFGS, BENCH_STALL_CFGS (see
# bench/vm-bench.sh) and BENCH_MODULES (more .ko files for the VM;
# @release@ stands for the kernel release). Smoke runs and experiments
# write their results to build/bench/results/, not bench/results/.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

kernels=("$@")
if [ ${#kernels[@]} -eq 0 ]; then
	if [ -n "${KERNEL:-}" ]; then
		kernels=("$KERNEL")
	else
		kernels=(6.1 6.12)
	fi
fi
quick=${BENCH_QUICK:-0}
slice=${BENCH_SLICE:-500ms} pairs=${BENCH_PAIRS:-20} reps=${BENCH_REPS:-5}
results=$top/bench/results
if [ "$quick" = 1 ]; then
	pairs=${BENCH_PAIRS:-4} reps=${BENCH_REPS:-1}
fi
# Smoke runs and experiments leave the published results alone.
if [ "$quick" = 1 ] || [ -n "${BENCH_PHASES:-}" ]; then
	results=$top/build/bench/results
fi
run=${BENCH_RUN:-bench}
work=$top/build/bench
mkdir -p "$work" "$results"

# The tools the VM needs: the amber CLI and benchsnap (selftests/tools).
make -s userspace selftests >/dev/null

# The test file: the knobs, then bench/vm-bench.sh.
test=$work/amber_bench.sh
{
	echo '#!/bin/bash'
	echo "export BENCH_SLICE=$slice BENCH_PAIRS=$pairs BENCH_REPS=$reps BENCH_QUICK=$quick"
	for v in BENCH_PHASES BENCH_COW_CFGS BENCH_STALL_CFGS; do
		[ -z "${!v:-}" ] || echo "export $v=\"${!v}\""
	done
	tail -n +2 bench/vm-bench.sh
} >"$test"
chmod 755 "$test"

# The host's own SHA-256 rate (one core, native): what the backup's
# hashing costs outside the emulated guest CPU, for docs/PERFORMANCE.md.
host_sha=$(openssl speed -evp sha256 -seconds 1 -bytes 65536 2>/dev/null |
	awk '$1 == "sha256" { sub(/k$/, "", $2); printf "%.0f", $2 * 1000 / 1e6 }' || true)

status=0
jsons=()
for k in "${kernels[@]}"; do
	# dm-amber.ko, and dm-clone.ko where the kernel lacks it (the instant
	# phase's restores).
	kdir=$(scripts/kernels.sh "$k" kdir)
	scripts/build-kmod.sh "$kdir" module >/dev/null
	scripts/build-clone.sh "$kdir" >/dev/null
	name=$run-$k
	echo "bench: kernel $k, VM run build/vm/$name (about 12 minutes)"
	# bash reads a script as it runs it: run the harness from a copy in
	# memory, so that an edit of vmtest.sh meanwhile cannot derail the run.
	extra=()
	for m in ${BENCH_MODULES:-}; do
		extra+=(-m "${m//@release@/$(scripts/kernels.sh "$k" release)}")
	done
	if ! VM_TEST_TIMEOUT=${VM_TEST_TIMEOUT:-1500} VM_TIMEOUT=${VM_TIMEOUT:-1800} \
		bash -c "$(cat selftests/vm/vmtest.sh)" selftests/vm/vmtest.sh \
		-k "$k" -f "$test" -o "$name" "${extra[@]}" \
		>"$work/$name.vmtest.log" 2>&1; then
		echo "bench: the VM run on $k failed; see $work/$name.vmtest.log and build/vm/$name/" >&2
		sed 's/^/  /' "$work/$name.vmtest.log" | tail -n 30 >&2
		status=1
	fi
	grep -E '^# (bench-log|bench:)' "build/vm/$name/ktap.log" | tr -d '\r' >"$work/$name.figures" || true
	if ! HOST_SHA256_MBPS=$host_sha python3 bench/report.py run "$k" "build/vm/$name/ktap.log" "$results/$k.json" \
		>"$results/$k.txt"; then
		echo "bench: no figures from $k" >&2
		status=1
		continue
	fi
	cat "$results/$k.txt"
	echo
	jsons+=("$results/$k.json")
done

if [ ${#jsons[@]} -gt 0 ]; then
	# The chart and the document show every kernel with results.
	all=()
	for k in 6.1 6.12; do
		[ -f "$results/$k.json" ] && all+=("$results/$k.json")
	done
	python3 bench/report.py chart "$results/ratios.png" "${all[@]}" &&
		echo "bench: chart in ${results#"$top"/}/ratios.png"
	if [ "$results" = "$top/bench/results" ]; then
		python3 bench/report.py doc docs/PERFORMANCE.md "${all[@]}" &&
			echo "bench: figures updated in docs/PERFORMANCE.md"
	fi
fi
exit "$status"
