#!/usr/bin/env bash
# Boot a tested kernel under QEMU and run selftests inside it.
#
#   selftests/vm/vmtest.sh [-k 6.1|6.12|debug|debug-6.12] [-t name]... [-f file]...
#                          [-m module.ko]... [-o name] [-c]
#
#   -k  the kernel (default 6.1)
#   -t  run only this test of the default set (repeatable)
#   -f  run this test file instead of the default set (repeatable)
#   -m  also install this module in the VM's /lib/modules/<release>/extra
#       (a dm-amber.ko given so replaces the one built)
#   -o  name of the run's directory, build/vm/<name> (default: the kernel)
#   -c  show the VM console while it runs
#
# The default set is every executable selftests/*.sh and every binary built
# from selftests/*.c into build/selftests/; a test is named after its file
# without the extension. dm-amber.ko is installed when built for the kernel,
# and so is dm-clone.ko, built by scripts/build-clone.sh for a kernel that
# lacks it.
#
# Each test is one top-level result. Then the kernel log is scanned for the
# patterns of fault-patterns, and a VM that timed out or died counts too:
# either fails the result <kernel>/kernel-fault-scan. Results go to
# build/vm/<name>/results (see results.sh), the logs next to it:
# console.log, ktap.log (KTAP from the VM), kernel.log, faults; the scratch
# disk images stay there when something failed.
#
# A crash test, selftests/<name>.crash.sh, gets two boots of its own on the
# same scratch disks, after the other tests. In the first (AMBER_CRASH_PHASE=1
# in the VM) it prepares and prints the line "amber-vm: crash", on which QEMU
# is killed (SIGKILL: no shutdown, nothing flushed); the second
# (AMBER_CRASH_PHASE=2) boots the disks as the kill left them and gives the
# test's result. Its logs are in build/vm/<name>/<test>/ (the first boot's in
# boot1/); both boots' kernel logs make <kernel>/<test>/kernel-fault-scan.
#
# A task blocked for 120 s panics the kernel (a hung kernel can only end
# the run early, and its tests are reported as left without a result).
#
# Environment: VM_TIMEOUT (seconds for the whole run, default 2700; 10800
# on the debug kernel), VM_TEST_TIMEOUT (seconds per test, 600; 1800 on the
# debug kernel, about 7 times slower under TCG), VM_MEM (MiB, 2048), VM_CPUS (2),
# VM_DISKS (scratch disks, /dev/vda.., 4), VM_DISK_SIZE (1G), VM_APPEND
# (more kernel parameters), VM_ENV (NAME=value words exported to the tests
# in the VM), AMBER_CACHE (/var/cache/amber).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${AMBER_BUILD:-$top/build}
ktap_helpers=$build/ksrc/6.12/tools/testing/selftests/kselftest/ktap_helpers.sh
. "$here/results.sh"

VM_MEM=${VM_MEM:-2048}
VM_CPUS=${VM_CPUS:-2}
VM_DISKS=${VM_DISKS:-4}
VM_DISK_SIZE=${VM_DISK_SIZE:-1G}
VM_APPEND=${VM_APPEND:-}

die() {
	echo "vmtest: $*" >&2
	exit 2
}

# A test's name: its file's, without .sh or .c.
test_name() {
	local n
	n=$(basename "$1")
	n=${n%.sh}
	echo "${n%.c}"
}

# The default test set: "<name> <path>" lines.
default_tests() {
	local f
	for f in "$top"/selftests/*.sh "$build"/selftests/*; do
		[ -f "$f" ] && [ -x "$f" ] && echo "$(test_name "$f") $f"
	done
	return 0
}

# A selftests/*.sh without its run bit is taken for a helper and never run:
# only lib.sh and *_lib.sh may be helpers, any other is a failure.
unrunnable_tests() {
	local f
	for f in "$top"/selftests/*.sh; do
		[ -x "$f" ] || [[ $f == */lib.sh || $f == *_lib.sh ]] ||
			result "$1" FAIL "$kernel/$(test_name "$f")" "not executable: never run"
	done
	return 0
}

# Keep the tests named on the command line, in the default set's order.
select_tests() {
	local want=" $* " name path found=
	while read -r name path; do
		if [ "$want" = "  " ] || [[ $want == *" $name "* ]]; then
			echo "$name $path"
			found="$found $name"
		fi
	done
	for name in "$@"; do
		[[ " $found " == *" $name "* ]] || die "no test named $name"
	done
}

# The files of this run that the initramfs adds to the cached layers:
# /init, /tests (the tests, named without .sh, next to the shell helpers:
# lib.sh, ktap_helpers.sh and any selftests/*.sh that is not executable),
# the project's binaries and helper programs, out-of-tree modules.
make_overlay() {
	local dir=$1 release=$2 tests=$3 ko kos name path
	rm -rf "$dir"
	mkdir -p "$dir/tests" "$dir/etc" "$dir/usr/bin" "$dir/usr/lib/modules/$release/extra"
	install -m 755 "$here/init" "$dir/init"
	install -m 644 "$ktap_helpers" "$dir/tests/"
	for path in "$top"/selftests/*.sh; do
		[ -x "$path" ] || install -m 644 "$path" "$dir/tests/"
	done
	while read -r name path; do
		[ -e "$dir/tests/$name" ] && die "two tests named $name"
		install -m 755 "$path" "$dir/tests/$name"
	done <"$tests"
	for path in "$top"/userspace/amber "$top"/userspace/amberd "$build"/selftests/tools/*; do
		[ -f "$path" ] && [ -x "$path" ] && install -m 755 "$path" "$dir/usr/bin/"
	done
	if [ -d "$top/scripts/hooks" ]; then	# database hooks, for their tests
		mkdir -p "$dir/usr/share/amber"
		cp -a "$top/scripts/hooks" "$dir/usr/share/amber/hooks"
	fi
	kos=()
	for ko in "$build/$release/module/dm-amber.ko" "$build/$release/clone/dm-clone.ko"; do
		[ -f "$ko" ] && kos+=("$ko")
	done
	kos+=("${modules[@]}")	# after them: a -m dm-amber.ko replaces the built one
	for path in "${kos[@]}"; do
		install -m 644 "$path" "$dir/usr/lib/modules/$release/extra/"
	done
	cat >"$dir/etc/amber-vm.conf" <<-EOF
		export AMBER_KERNEL=$kernel
		export AMBER_TESTS="$(cut -d' ' -f1 "$tests" | xargs)"
		export AMBER_TEST_TIMEOUT=$VM_TEST_TIMEOUT
		export AMBER_DISKS="$(disk_names | xargs)"
		export AMBER_CRASH_PHASE=${crash_phase:-}
		$(disk_roles)
		$(for kv in ${VM_ENV:-}; do printf 'export %q\n' "$kv"; done)
	EOF
}

disk_names() {
	local letters=abcdefghijklmnop i
	for ((i = 0; i < VM_DISKS; i++)); do
		echo "vd${letters:i:1}"
	done
}

# Tests name disks by role (selftests/lib.sh, scratch_disk): AMBER_DISK_<ROLE>.
disk_roles() {
	local roles=(ORIGIN STORE ORIGIN2 STORE2) i=0 d
	for d in $(disk_names); do
		echo "export AMBER_DISK_${roles[i]:-DISK$i}=/dev/$d"
		i=$((i + 1))
	done
}

# Does KVM boot an ordinary kernel here? Asked once per machine: a kernel
# without a root file system panics within seconds where KVM works.
kvm_usable() {
	local cache=${AMBER_CACHE:-/var/cache/amber}/kvm-usable out=
	if [ ! -f "$cache" ]; then
		mkdir -p "$(dirname "$cache")"
		[ -w /dev/kvm ] && out=$(timeout -k 5 20 qemu-system-x86_64 \
			-accel kvm -cpu host -m 256 -nodefaults -display none \
			-no-reboot -serial stdio -kernel "$image" \
			-append "console=ttyS0 panic=-1" </dev/null 2>&1)
		if grep -q 'Kernel panic' <<<"$out"; then
			echo yes >"$cache"
		else
			echo no >"$cache"
		fi
	fi
	[ "$(cat "$cache")" = yes ]
}

# panic=-1 with -no-reboot: a panic ends QEMU at once. Warnings and soft
# lockups are reported, not fatal; watchdogs are lenient for TCG. Debug
# kernels report every KASAN finding, and give every slab cache its own
# (slab_nomerge), so that failslab's cache filter can aim at one.
cmdline() {
	echo "console=ttyS0,115200 printk.time=1 log_buf_len=16M panic=-1" \
		"panic_on_warn=0 softlockup_panic=0 watchdog_thresh=20" \
		"sysctl.kernel.hung_task_timeout_secs=120" \
		"sysctl.kernel.hung_task_panic=1" \
		"rcupdate.rcu_cpu_stall_timeout=60 mitigations=off" \
		"$(case $kernel in debug*) echo kasan_multi_shot slab_nomerge ;; esac) $VM_APPEND"
}

# Kill QEMU (SIGKILL) once the KTAP port has the crash line; give up when
# QEMU (its runner, pid <runner>) ends first.
kill_at_crash_point() {
	local dir=$1 runner=$2
	while kill -0 "$runner" 2>/dev/null; do
		if tr -d '\r' 2>/dev/null <"$dir/ktap.log" | grep -qxF "# $crash_line"; then
			kill -KILL "$(cat "$dir/qemu.pid")"
			return 0
		fi
		sleep 0.2
	done
}

# Run QEMU to its end, or until VM_TIMEOUT. Prints QEMU's exit status.
#   boot <dir> <initrd> <show> [crash|after-crash]
# crash: QEMU is killed at the crash line; after-crash: the disks are those
# the last boot left, not fresh ones.
boot() {
	local dir=$1 initrd=$2 show=$3 mode=${4:-} accel=(-accel tcg) disks=() d qemu rc=0
	kvm_usable && accel=(-accel kvm -cpu host)
	for d in $(disk_names); do
		if [ "$mode" != after-crash ]; then
			rm -f "$dir/$d.img"
			truncate -s "$VM_DISK_SIZE" "$dir/$d.img"
		fi
		disks+=(-drive "file=$dir/$d.img,format=raw,if=virtio,discard=unmap")
	done
	: >"$dir/console.log"
	timeout -k 10 "$VM_TIMEOUT" qemu-system-x86_64 "${accel[@]}" \
		-machine q35 -smp "$VM_CPUS" -m "$VM_MEM" -nodefaults -no-user-config \
		-display none -no-reboot \
		-chardev "file,id=console,path=$dir/console.log" -serial chardev:console \
		-chardev "file,id=ktap,path=$dir/ktap.log" -serial chardev:ktap \
		-chardev "file,id=kernel,path=$dir/kernel.log" -serial chardev:kernel \
		"${disks[@]}" -kernel "$image" -initrd "$initrd" \
		-append "$(cmdline)" -pidfile "$dir/qemu.pid" </dev/null >"$dir/qemu.log" 2>&1 &
	qemu=$!
	[ "$show" = yes ] && tail -n +1 -f --pid="$qemu" "$dir/console.log" >&2 &
	[ "$mode" = crash ] && kill_at_crash_point "$dir" "$qemu" &
	wait "$qemu" || rc=$?
	wait
	echo "$rc"
}

# Top-level KTAP results as "<ok|not ok> <name> <directive>" lines.
ktap_results() {
	tr -d '\r' <"$1" | sed -nE 's/^(ok|not ok) [0-9]+ ([^#]*[^# ]) *(# *(.*))?$/\1\t\2\t\4/p'
}

# What a test printed, for a failed one.
test_output() {
	tr -d '\r' <"$1" | awk -v name="$2" '
		$0 == "# selftest: " name { on = 1; next }
		on && /^(not )?ok [0-9]+ / { exit }
		on { print "    " substr($0, 3) }' | tail -n 60
}

# Why a test skipped itself: the first SKIP it printed.
skip_reason() {
	test_output "$1" "$2" | grep -o -m 1 'SKIP.*' || echo SKIP
}

record_tests() {
	local dir=$1 tests=$2 status name directive seen=" "
	while IFS=$'\t' read -r status name directive; do
		seen="$seen$name "
		if [ "$status" = "not ok" ]; then
			result "$dir/results" FAIL "$kernel/$name" "$directive"
			test_output "$dir/ktap.log" "$name"
		elif [[ $directive == SKIP* ]]; then
			result "$dir/results" SKIP "$kernel/$name" \
				"$(skip_reason "$dir/ktap.log" "$name")"
		else
			result "$dir/results" PASS "$kernel/$name"
		fi
	done < <(ktap_results "$dir/ktap.log")
	while read -r name _; do
		[[ $seen == *" $name "* ]] ||
			result "$dir/results" FAIL "$kernel/$name" "no result: the VM stopped first"
	done <"$tests"
}

fault_patterns() {
	grep -vE '^(#|$)' "$here/fault-patterns"
}

# Kernel log lines matching fault-patterns: all of the dump, the kernel's
# (timestamped) lines of the console.
fault_lines() {
	local dir=$1 patterns
	patterns=$(fault_patterns)
	{
		tr -d '\r' <"$dir/kernel.log" | grep -E -e "$patterns" || true
		tr -d '\r' <"$dir/console.log" | grep -E '^\[ *[0-9]+\.[0-9]+\]' |
			grep -E -e "$patterns" || true
	} | awk '!seen[$0]++'
}

# The first fault with the lines after it (its backtrace), from the dump,
# or from the console when the VM died before writing the dump.
first_fault() {
	local dir=$1 log=$1/kernel.log
	[ -s "$log" ] || log=$dir/console.log
	tr -d '\r' <"$log" | grep -E -m 1 -A 24 -e "$(fault_patterns)" || true
}

record_faults() {
	local dir=$1 qemu_rc=$2 why=
	fault_lines "$dir" >"$dir/faults"
	if [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ]; then
		echo "the VM timed out after ${VM_TIMEOUT}s" >>"$dir/faults"
	elif ! grep -q '^# amber-vm: done' "$dir/ktap.log"; then
		echo "the VM stopped before the end of the run (qemu status $qemu_rc)" >>"$dir/faults"
	fi
	if [ -s "$dir/faults" ]; then
		why="$(wc -l <"$dir/faults") lines, see $dir/faults"
		result "$dir/results" FAIL "$kernel/kernel-fault-scan" "$why"
		sed 's/^/    /' "$dir/faults" | head -n 20
		echo "    the first one:"
		first_fault "$dir" | sed 's/^/      /'
	else
		result "$dir/results" PASS "$kernel/kernel-fault-scan"
	fi
}

crash_line="amber-vm: crash"

# crash_initramfs <dir> <phase>: the initramfs of one boot of a crash test.
crash_initramfs() {
	crash_phase=$2
	make_overlay "$1/overlay" "$release" "$1/tests"
	crash_phase=
	"$here/initramfs.sh" "$kernel" "$1/overlay" "$1/initramfs.cpio"
}

# killed_at_crash_line <dir> <qemu status>: that boot was killed after the
# test printed the crash line.
killed_at_crash_line() {
	[ "$2" -eq 137 ] && tr -d '\r' <"$1/ktap.log" | grep -qxF "# $crash_line"
}

# boot1_problem <dir> <name>: what went wrong in the first boot's steps
# (its subtests, "# ok N" and "# not ok N" before the crash line): a step
# that failed or skipped, or fewer steps than its plan. Empty when none.
boot1_problem() {
	tr -d '\r' <"$1/ktap.log" | awk -v name="$2" '
		$0 == "# selftest: " name { on = 1; next }
		!on { next }
		/^# 1\.\.[0-9]+$/ { plan = substr($2, 4) + 0 }
		/^# (not )?ok [0-9]+ / {
			ran++
			if ($2 == "not" || / # SKIP/)
				bad = bad (bad == "" ? "" : "; ") substr($0, 3)
		}
		END {
			if (!on) print "boot 1 never started the test"
			else if (bad != "") print "boot 1: " bad
			else if (ran < plan) print "boot 1 ran " ran " of its " plan " steps"
		}'
}

# crash_result <results> <dir> <name>: the test's result from the second
# boot, failed by boot 1's problem; a failure of dm_amber-load or -unload
# there fails it too.
crash_result() {
	local results=$1 dir=$2 name=$3 status test directive note='' boot1
	local verdict=FAIL why="no result: the VM stopped first"
	while IFS=$'\t' read -r status test directive; do
		if [ "$test" != "$name" ]; then
			[ "$status" = ok ] || note="; $test failed"
		elif [ "$status" != ok ]; then
			why=$directive
		elif [[ $directive == SKIP* ]]; then
			verdict=SKIP why=$(skip_reason "$dir/ktap.log" "$name")
		else
			verdict=PASS why=
		fi
	done < <(ktap_results "$dir/ktap.log")
	[ -z "$note" ] || verdict=FAIL why=${why:-ok}$note
	boot1=$(boot1_problem "$dir/boot1" "$name")
	[ -z "$boot1" ] || verdict=FAIL why="$boot1${why:+; boot 2: $why}"
	result "$results" "$verdict" "$kernel/$name" "$why"
	[ -z "$boot1" ] || test_output "$dir/boot1/ktap.log" "$name"
	[ "$verdict" != FAIL ] || test_output "$dir/ktap.log" "$name"
}

# crash_faults <results> <dir> <name> <second boot's qemu status, or "">
crash_faults() {
	local results=$1 dir=$2 name=$3 rc2=$4
	{
		fault_lines "$dir/boot1"
		if [ -n "$rc2" ]; then
			fault_lines "$dir"
			grep -q '^# amber-vm: done' "$dir/ktap.log" ||
				echo "the second boot stopped before its end (qemu status $rc2)"
		fi
	} >"$dir/faults"
	if [ -s "$dir/faults" ]; then
		result "$results" FAIL "$kernel/$name/kernel-fault-scan" "see $dir/faults"
		sed 's/^/    /' "$dir/faults" | head -n 20
	else
		result "$results" PASS "$kernel/$name/kernel-fault-scan"
	fi
}

# crash_test <run dir> <name> <path> <show>: a crash test's two boots and
# its two results. The disk images stay when either fails.
crash_test() {
	local results=$1/results dir=$1/$2 name=$2 path=$3 show=$4 rc rc2=''
	rm -rf "$dir"
	mkdir -p "$dir/boot1"
	echo "$name $path" >"$dir/tests"
	crash_initramfs "$dir" 1
	echo "vmtest: $kernel: $name, boot 1, killed at the crash line"
	rc=$(boot "$dir" "$dir/initramfs.cpio" "$show" crash)
	mv "$dir"/{console,ktap,kernel,qemu}.log "$dir/boot1/"
	if killed_at_crash_line "$dir/boot1" "$rc"; then
		crash_initramfs "$dir" 2
		echo "vmtest: $kernel: $name, boot 2, after the crash"
		rc2=$(boot "$dir" "$dir/initramfs.cpio" "$show" after-crash)
		crash_result "$results" "$dir" "$name"
	else
		result "$results" FAIL "$kernel/$name" \
			"the first boot ended before the crash line (qemu status $rc)"
		test_output "$dir/boot1/ktap.log" "$name"
	fi
	crash_faults "$results" "$dir" "$name" "$rc2"
	rm -f "$dir/initramfs.cpio"
	if ! grep -q "^FAIL $kernel/$name" "$results"; then
		rm -f "$dir"/vd?.img
	fi
}

main() {
	local opt names=() files=() show=no name='' release dir tests start rc boot_at f path
	kernel=6.1 modules=()
	while getopts k:t:f:m:o:c opt; do
		case $opt in
		k) kernel=$OPTARG ;;
		t) names+=("$(test_name "$OPTARG")") ;;
		f) files+=("$OPTARG") ;;
		m) modules+=("$OPTARG") ;;
		o) name=$OPTARG ;;
		c) show=yes ;;
		*) die "usage: see the head of $0" ;;
		esac
	done
	if [[ $kernel == debug* ]]; then
		VM_TEST_TIMEOUT=${VM_TEST_TIMEOUT:-1800}
		VM_TIMEOUT=${VM_TIMEOUT:-10800}
	else
		VM_TEST_TIMEOUT=${VM_TEST_TIMEOUT:-600}
		VM_TIMEOUT=${VM_TIMEOUT:-2700}
	fi
	release=$("$top/scripts/kernels.sh" "$kernel" release)
	image=$("$top/scripts/kernels.sh" "$kernel" image)
	dir=$build/vm/${name:-$kernel}
	mkdir -p "$dir"
	rm -f "$dir"/{results,faults,ktap.log,kernel.log,console.log}
	tests=$dir/tests
	if [ ${#files[@]} -gt 0 ]; then
		for f in "${files[@]}"; do echo "$(test_name "$f") $(realpath "$f")"; done
	else
		default_tests | select_tests "${names[@]}"
	fi >"$tests"
	grep -E '\.crash\.sh$' "$tests" >"$dir/crash-tests" || true
	sed -i -E '/\.crash\.sh$/d' "$tests"

	: >"$dir/results"
	unrunnable_tests "$dir/results"
	if [ -s "$tests" ]; then
		make_overlay "$dir/overlay" "$release" "$tests"
		"$here/initramfs.sh" "$kernel" "$dir/overlay" "$dir/initramfs.cpio"
		echo "vmtest: $kernel ($release): $(cut -d' ' -f1 "$tests" | xargs)"
		start=$SECONDS
		rc=$(boot "$dir" "$dir/initramfs.cpio" "$show")
		boot_at=$(sed -nE 's/^# amber-vm: init at ([0-9.]+)s.*/\1/p' "$dir/ktap.log" | tr -d '\r')
		echo "vmtest: $kernel: /init at ${boot_at:-?}s, VM ran $((SECONDS - start))s"
		record_tests "$dir" "$tests"
		record_faults "$dir" "$rc"
		rm -f "$dir/initramfs.cpio"
	fi
	while read -r f path; do
		crash_test "$dir" "$f" "$path" "$show"
	done <"$dir/crash-tests"
	summary "$dir/results" || return 1
	rm -f "$dir"/vd?.img
}

main "$@"
