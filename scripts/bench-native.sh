#!/usr/bin/env bash
# make bench-native: the backup stream engine on the host, no VM, against
# what the disk and the codecs allow, in one run. See docs/PERFORMANCE.md.
#
#   scripts/bench-native.sh
#
# On a file of BENCH_NATIVE_MIB MiB (1024) of half-compressible data, made
# once by fio with a fixed seed in build/bench-native/ and reused: `amber
# backup --image` at --level 0 and 1, to /dev/null and to a file; a raw
# O_DIRECT sequential read of the file (fio, 1 MiB, iodepth 4); zstd -1 -T0
# and SHA-256 (OpenSSL, as amber; sha256sum shown too) of it from the page
# cache (what the codecs allow on all cores); `amber verify` of the level-0 backup against the raw read and
# `amber restore` of it against a raw O_DIRECT sequential write of a new
# file. The page cache is dropped before every timed run but the codecs'
# (when the machine does not allow it, the output says so). Each run is
# repeated BENCH_NATIVE_REPS times (3); the median counts. Ratios are
# printed "met" or "not met" against the goals of issue 17.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mib=${BENCH_NATIVE_MIB:-1024}
reps=${BENCH_NATIVE_REPS:-3}
work=$top/build/bench-native
amber=$top/userspace/amber
image=$work/image-${mib}M
bytes=$((mib * 1024 * 1024))

mkdir -p "$work"
make -s -C userspace >/dev/null

if [ ! -f "$image" ] || [ "$(stat -c %s "$image")" != "$bytes" ]; then
	echo "bench-native: writing $image (half-compressible, fixed seed)"
	rm -f "$image"
	fio --name=image --filename="$image" --rw=write --bs=1M --size="${mib}M" \
		--buffer_compress_percentage=50 --refill_buffers --buffer_compress_chunk=4k \
		--randseed=17 --ioengine=psync --end_fsync=1 --output=/dev/null
fi

cache_dropped=yes
drop_cache() {
	sync
	if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		cache_dropped=no
	fi
}

now_ns() { date +%s%N; }

# MB/s of @bytes moved by the command, the page cache dropped first.
rate() {
	local bytes=$1 t0 t1
	shift
	drop_cache
	t0=$(now_ns)
	"$@" >/dev/null
	t1=$(now_ns)
	awk -v b="$bytes" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f\n", b / ns * 1000 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

fio_seq() {
	fio --name=seq --filename="$1" --rw="$2" --bs=1M --iodepth=4 --ioengine=libaio \
		--direct=1 --size="${mib}M" --fallocate=none --end_fsync=1 --output=/dev/null
}

backup_to() {
	if [ -f "$2" ]; then rm -f "$2"; fi	# never /dev/null
	"$amber" backup --image "$image" --to "$2" --level "$1"
}

new_target() {
	rm -f "$work/target"
	truncate -s "$bytes" "$work/target"
}

restore() {
	new_target
	"$amber" restore "$work/l0.amb" --to "$work/target"
}

raw_write() {
	rm -f "$work/target"
	fio_seq "$work/target" write
}

declare -A med
measure() {
	local name=$1 bytes=$2 r samples=()
	shift 2
	for ((r = 0; r < reps; r++)); do
		samples+=("$(rate "$bytes" "$@")")
	done
	med[$name]=$(printf '%s\n' "${samples[@]}" | median)
	printf '%-34s %10s MB/s   (%s)\n' "$name" "${med[$name]}" "${samples[*]}"
}

echo "bench-native: $mib MiB image, $reps runs each, median MB/s (the runs)"
measure "raw O_DIRECT read (fio)" "$bytes" fio_seq "$image" read
measure "backup --level 0 > /dev/null" "$bytes" backup_to 0 /dev/null
measure "backup --level 1 > /dev/null" "$bytes" backup_to 1 /dev/null
measure "backup --level 0 > file" "$bytes" backup_to 0 "$work/l0.amb"
measure "backup --level 1 > file" "$bytes" backup_to 1 "$work/l1.amb"
measure "verify (level 0 backup)" "$(stat -c %s "$work/l0.amb")" \
	"$amber" verify "$work/l0.amb"
measure "raw O_DIRECT write (fio)" "$bytes" raw_write
measure "restore (level 0 backup) to a file" "$bytes" restore
rm -f "$work/target"

# The codecs from the page cache: CPU, not disk. SHA-256 as amber computes
# it (OpenSSL, SHA-NI where the CPU has it) and as sha256sum does.
ns_of() {
	local t0
	t0=$(now_ns)
	"$@" <"$image" >/dev/null
	echo $(($(now_ns) - t0))
}
show_rate() {
	printf '%-34s %10s MB/s\n' "$1" "$(awk -v b="$bytes" -v ns="$2" 'BEGIN { printf "%.1f", b / ns * 1000 }')"
}
cat "$image" >/dev/null
cpus=$(nproc)
zstd_ns=$(ns_of zstd -1 -T0 -c)
sha_ns=$(ns_of openssl dgst -sha256)
sha256sum_ns=$(ns_of sha256sum)
show_rate "zstd -1 -T0 (page cache)" "$zstd_ns"
show_rate "SHA-256, OpenSSL, one core" "$sha_ns"
show_rate "sha256sum, one core" "$sha256sum_ns"
codec=$(awk -v b="$bytes" -v z="$zstd_ns" -v s="$sha_ns" -v n="$cpus" \
	'BEGIN { printf "%.1f\n", b / (z + s / n) * 1000 }')
printf '%-34s %10s MB/s   (1 / (1/zstd + 1/(%d x OpenSSL SHA-256)))\n' \
	"codecs on all $cpus cores" "$codec" "$cpus"
printf 'level 1 backup: %s of the image\n' \
	"$(awk -v a="$(stat -c %s "$work/l1.amb")" -v b="$bytes" 'BEGIN { printf "%.2f", a / b }')"
rm -f "$work/l0.amb" "$work/l1.amb"

goal() {
	local what=$1 have=$2 ref=$3 refname=$4
	awk -v w="$what" -v h="$have" -v r="$ref" -v n="$refname" 'BEGIN {
		x = h / r
		printf "%-8s %-32s %.2f x %s (goal >= 0.90)\n", (x >= 0.9 ? "met" : "NOT MET"), w, x, n
	}'
}

read=${med["raw O_DIRECT read (fio)"]}
write=${med["raw O_DIRECT write (fio)"]}
bound=$(awk -v a="$read" -v b="$codec" 'BEGIN { print a < b ? a : b }')
echo
echo "goals"
goal "backup --level 0 to /dev/null" "${med["backup --level 0 > /dev/null"]}" "$read" "raw read"
goal "backup --level 0 to a file" "${med["backup --level 0 > file"]}" "$read" "raw read"
goal "backup --level 1 to /dev/null" "${med["backup --level 1 > /dev/null"]}" "$bound" \
	"min(raw read, codecs)"
goal "backup --level 1 to a file" "${med["backup --level 1 > file"]}" "$bound" \
	"min(raw read, codecs)"
goal "verify" "${med["verify (level 0 backup)"]}" "$read" "raw read"
goal "restore" "${med["restore (level 0 backup) to a file"]}" "$write" "raw write"
if [ "$cache_dropped" = no ]; then
	echo "bench-native: the page cache could NOT be dropped (not permitted): reads after the first may come from memory"
else
	echo "bench-native: page cache dropped before every timed run (the codecs' excepted)"
fi
