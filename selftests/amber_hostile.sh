#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Hostile input. Hundreds of random table lines and messages through
# dmsetup: each is refused or, when well formed, works; no crash, no device
# left half made, and the volume still keeps its data. Then ctlabuse sends
# bad ioctls (sizes, pointers, counts, devices) and checks that non-root
# callers are refused.
. "$(dirname "$0")/amber_lib.sh"

require_module dm-amber
slice h-origin origin 0 16
slice h-store store 0 16
origin=$(dm_dev h-origin)
store=$(dm_dev h-store)
len=$(sectors "$origin")
amber_format "$store" "$origin"
CASES=${AMBER_FUZZ_CASES:-200}

words=(0 1 -1 7 8 64 128 2048 4096 65536 18446744073709551616 x "" snap drop
	release overflow=block overflow=invalidate overflow= overflow=block=1
	block_timeout_ms=0 block_timeout_ms=1 block_timeout_ms=3600001
	drain_timeout_ms=5 drain_timeout_ms=-3 drain_timeout_ms=
	intent_sectors=0 intent_sectors=8 intent_sectors=8192 intent_sectors=3000
	"$origin" "$store" /dev/null 1:1 253:250 0:0)

# random_words <max>: up to <max> random words, one per line.
random_words() {
	local n=$((RANDOM % ($1 + 1))) i
	for ((i = 0; i < n; i++)); do
		echo "${words[RANDOM % ${#words[@]}]}"
	done
}

random_tables() {
	local i accepted=0 args
	for ((i = 0; i < CASES; i++)); do
		mapfile -t args < <(random_words 9)
		if dmsetup create h-fuzz --table "0 $len amber ${args[*]}" 2>/dev/null; then
			accepted=$((accepted + 1))
			# Only the real devices and the store's chunk size may load.
			[ "${args[0]}" = "$origin" ] && [ "${args[1]}" = "$store" ] &&
				[ "${args[2]}" = "$AMBER_CHUNK" ] ||
				{ echo "# accepted: ${args[*]}"; return 1; }
			amber_expect h-fuzz state idle
			dmsetup remove h-fuzz
		fi
		# A refused table leaves no device behind.
		! dmsetup info h-fuzz >/dev/null 2>&1 || dmsetup remove h-fuzz
	done
	ktap_print_msg "$CASES random tables, $accepted accepted"
}

random_messages() {
	local i ok=0 args
	for ((i = 0; i < CASES; i++)); do
		mapfile -t args < <(random_words 4)
		[ "${#args[@]}" -gt 0 ] || continue
		! amber_msg h-vol "${args[@]}" >/dev/null 2>&1 || ok=$((ok + 1))
	done
	ktap_print_msg "$CASES random messages, $ok accepted"
	amber_msg h-vol drop 2>/dev/null || true
	amber_expect h-vol state idle
	chunk_pattern_verify "$(dm_dev h-vol)" 0 16 kept
}

bad_ioctls_fail_cleanly() {
	ctlabuse h-vol
	amber_expect h-vol state idle
	chunk_pattern_verify "$(dm_dev h-vol)" 0 16 kept
}

tools_refuse_non_root() {
	local out
	out=$(setpriv --reuid 65534 --regid 65534 --clear-groups amber status h-vol 2>&1) && return 1
	echo "# $out"
	grep -qiE 'root|permission' <<<"$out"
}

ktap_print_header
ktap_set_plan 4
ktap_step "random table lines are refused or work, never half made" random_tables
dm_create h-vol "$(amber_table "$origin" "$store" "$AMBER_CHUNK")"
chunk_pattern_write "$(dm_dev h-vol)" 0 16 kept
ktap_step "random messages fail cleanly; the volume keeps its data" random_messages
ktap_step "bad ioctls fail with the right errno; nobody is refused" bad_ioctls_fail_cleanly
ktap_step "the amber tool refuses a non-root caller clearly" tools_refuse_non_root
ktap_finished
