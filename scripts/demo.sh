#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make demo: amber's main job end to end. Boots Debian's kernel (6.1, or
# DEMO_KERNEL=6.12) under QEMU with seven scratch disks and runs
# scripts/demo-vm.sh there: amberd wraps two disks into amber volumes,
# PostgreSQL 15 runs on them (data directory and pg_wal) under pgbench and a
# numbering client, a backup set is asked for from SQL and another from the
# command line while the load runs, the chain is restored onto two other
# disks, PostgreSQL recovers there, and what holds is printed. The demo's
# lines are shown as they come; the VM's logs are in build/vm/demo-<kernel>/.
#
# 'make demo' builds everything first (the module for each kernel, the
# tools); run alone, this script needs them built.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kernel=${DEMO_KERNEL:-6.1}
run=demo-$kernel
dir=$top/build/vm/$run

die() {
	echo "demo: $*" >&2
	exit 1
}

release=$("$top/scripts/kernels.sh" "$kernel" release)
[ -f "$top/build/$release/module/dm-amber.ko" ] ||
	die "dm-amber.ko is not built for $release: run 'make demo' (or make modules)"
for tool in amber amberd; do
	[ -x "$top/userspace/$tool" ] ||
		die "userspace/$tool is not built: run 'make demo' (or make userspace)"
done
[ -x /usr/lib/postgresql/15/bin/postgres ] ||
	die "PostgreSQL 15 is not installed on this machine: run scripts/deps.sh"

export VM_DISKS=7 VM_DISK_SIZE=384M
export VM_TEST_TIMEOUT=${VM_TEST_TIMEOUT:-600}
mkdir -p "$dir"
rm -f "$dir/ktap.log"
start=$SECONDS
echo "demo: booting $kernel ($release) under QEMU; the demo runs inside, its lines follow"
"$top/selftests/vm/vmtest.sh" -k "$kernel" -f "$top/scripts/demo-vm.sh" -o "$run" \
	>"$dir.out" 2>&1 &
vm=$!

# The demo's own output, from the VM's KTAP port, as it comes: the lines
# between "# selftest: demo-vm" and its result, without the "# ".
until [ -e "$dir/ktap.log" ] || ! kill -0 "$vm" 2>/dev/null; do
	sleep 0.5
done
tail -n +1 -F --pid="$vm" "$dir/ktap.log" 2>/dev/null | tr -d '\r' | awk '
	$0 == "# selftest: demo-vm" { on = 1; next }
	on && /^(not )?ok [0-9]+ demo-vm/ { exit }
	on { sub(/^# ?/, ""); print; fflush() }' &
follower=$!
rc=0
wait "$vm" || rc=$?
sleep 1
kill "$follower" 2>/dev/null || true
wait "$follower" 2>/dev/null || true

echo
echo "demo: the VM's verdict (kernel log scanned for warnings, oopses, hung tasks):"
grep -E '^(PASS|FAIL|SKIP) |passed,' "$dir.out" | sed 's/^/  /'
echo "demo: $((SECONDS - start)) s from boot to power-off; logs in build/vm/$run/"
[ "$rc" -eq 0 ] || die "the demo FAILED: see $dir.out and build/vm/$run/console.log"
echo "demo: done"
