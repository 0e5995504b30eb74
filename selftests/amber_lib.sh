# SPDX-License-Identifier: GPL-2.0
# Helpers of the amber selftests, on top of lib.sh. Volumes are built on
# dm-linear slices of the scratch disks, small enough for TCG.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AMBER_CHUNK=${AMBER_CHUNK:-128}		# sectors: 64 KiB

# slice <name> <disk role> <offset MiB> <size MiB>: a dm-linear piece of a
# scratch disk, $(dm_dev <name>). Not in $(...): its cleanup would be lost.
slice() {
	dm_create "$1" "0 $(($4 * 2048)) linear $(scratch_disk "$2") $(($3 * 2048))"
}

# ext4_mounted <dev> <mount point>: a fresh ext4 on <dev>, mounted there and
# unmounted at exit unless a step did it already. Call at top level.
ext4_mounted() {
	mkfs.ext4 -q -F "$1"
	mkdir -p "$2"
	mount "$1" "$2"
	defer unmount_if_mounted "$2"
}

unmount_if_mounted() {
	! grep -q " $1 " /proc/mounts || umount "$1"
}

# amber_format <store> <origin> [<chunk sectors>]: a fresh amber store.
amber_format() {
	amber format --force --store "$1" --origin "$2" \
		--chunk "$(((${3:-$AMBER_CHUNK}) * 512))" >/dev/null
}

# amber_table <origin> <store> <chunk> [<feature>...]: the table line.
amber_table() {
	local origin=$1 store=$2 chunk=$3
	shift 3
	echo "0 $(sectors "$origin") amber $origin $store $chunk $# $*"
}

# amber_volume <name> <origin> <store> [<feature>...]: format the store,
# create the amber device <name> and its view <name>-view.
amber_volume() {
	local name=$1 origin=$2 store=$3
	shift 3
	amber_format "$store" "$origin"
	dm_create "$name" "$(amber_table "$origin" "$store" "$AMBER_CHUNK" "$@")"
	dm_create "$name-view" "0 $(sectors "$origin") amber-view $(dm_dev "$name")" --readonly
}

# amber_field <name> <field>: one field of the status line, by its name in
# docs/DESIGN.md: state epoch chunk used total copied released waited
# overflow cbt reason.
amber_field() {
	dmsetup status "$1" | awk -v f="$2" '{
		v["state"] = $4; v["epoch"] = $5; v["chunk"] = $6
		split($7, s, "/"); v["used"] = s[1]; v["total"] = s[2]
		v["copied"] = $8; v["released"] = $9; v["waited"] = $10
		v["overflow"] = $11; v["cbt"] = $12; v["reason"] = $13
		print v[f]
	}'
}

# writing <dm name>: a write to the device is in flight (dm accounts its
# bios in /sys/block/*/inflight).
writing() {
	local dev
	dev=$(dmsetup info -c --noheadings -o blkdevname "$1")
	[ "$(awk '{ print $2 }' "/sys/block/$dev/inflight")" -gt 0 ]
}

# amber_expect <name> <field> <value>: fail, saying what it was, unless.
amber_expect() {
	local got
	got=$(amber_field "$1" "$2")
	[ "$got" = "$3" ] || { echo "# $1 $2 is '$got', expected '$3'"; return 1; }
}

# amber_is <name> <field> <value>: a quiet predicate, for wait_until.
amber_is() {
	[ "$(amber_field "$1" "$2")" = "$3" ]
}

amber_msg() {
	local name=$1
	shift
	dmsetup message "$name" 0 "$@"
}

# fails <command...>: the command must fail.
fails() {
	if "$@" >/dev/null 2>&1; then
		echo "# unexpectedly succeeded: $*"
		return 1
	fi
}

# chunk_pattern <seed> <first chunk> <count>: like pattern, but each sector
# names its absolute number, so any sub-range of a write can be verified.
chunk_pattern() {
	awk -v seed="$1" -v first=$(($2 * AMBER_CHUNK)) -v n=$(($3 * AMBER_CHUNK)) 'BEGIN {
		for (i = first; i < first + n; i++)
			printf "%-511s\n", "amber chunk pattern " seed " sector " i
	}'
}

# chunk_pattern_write / _verify <dev> <first chunk> <count> <seed>
chunk_pattern_write() {
	chunk_pattern "$4" "$2" "$3" | dd of="$1" bs=$((AMBER_CHUNK * 512)) \
		seek="$2" iflag=fullblock oflag=direct conv=notrunc status=none
}

chunk_pattern_verify() {
	cmp <(chunk_pattern "$4" "$2" "$3") <(dd if="$1" bs=$((AMBER_CHUNK * 512)) \
		skip="$2" count="$3" iflag=direct status=none)
}

# chunk_unreadable <dev> <chunk>: reading the chunk fails (EIO).
chunk_unreadable() {
	fails dd if="$1" of=/dev/null bs=512 skip=$(($2 * AMBER_CHUNK)) \
		count="$AMBER_CHUNK" iflag=direct status=none
}
