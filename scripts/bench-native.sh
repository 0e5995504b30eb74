#!/usr/bin/env bash
# make bench-native: the backup stream engine on the host, no VM, against
# what the disk and the codecs allow, in one run. See docs/PERFORMANCE.md.
#
#   scripts/bench-native.sh
#
# On a file of BENCH_NATIVE_MIB MiB (1024) of half-compressible data, made
# once by fio with a fixed seed in build/bench-native/ and reused:
#   - `amber backup --image` at --level 0 and 1, to /dev/null and to a file;
#   - a raw O_DIRECT sequential read of the file (fio, 1 MiB, iodepth 4, by
#     fio's own clock: its start-up is not the disk's);
#   - from the page cache: zstd -1 -T0, SHA-256 (OpenSSL, as amber) on one
#     core and on every core, and the codecs' all-core rate from them;
#   - `amber verify` of the level-0 backup against the raw read, `amber
#     restore` of it against a raw O_DIRECT sequential write of a new file;
#   - the same backups, verify and restore encrypted and signed (`--encrypt`,
#     `--sign`; a key file with scrypt log2 N 14 made for the run), against
#     the unencrypted ones: issue 15's goal is 0.9 of them; at level 0
#     and 1, and at amber's default level (3) to a file.
# The page cache is dropped before every timed run but the codecs' (when the
# machine does not allow it, the output says so). BENCH_NATIVE_REPS rounds
# (3) of every run in turn; each goal's ratio is the median of its per-round
# ratios, printed "met" or "NOT MET" against the goals of issue 17 (the
# backups to /dev/null; those to a file share the disk with the image: no
# goal, shown for the record).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mib=${BENCH_NATIVE_MIB:-1024}
reps=${BENCH_NATIVE_REPS:-3}
for n in "$mib" "$reps"; do	# both go through $((...)), which evaluates
	if ! [[ $n =~ ^[1-9][0-9]{0,6}$ ]]; then
		echo "bench-native: BENCH_NATIVE_MIB and BENCH_NATIVE_REPS are positive integers, not '$n'" >&2
		exit 2
	fi
done
work=$top/build/bench-native
amber=$top/userspace/amber
image=$work/image-${mib}M
bytes=$((mib * 1024 * 1024))

mkdir -p "$work"
# The backups and the restore target (1 GiB each) go however the run ends;
# the image stays, to be reused. Only regular files of ours are removed.
clean_up() {
	local f
	for f in "$work/l0.amb" "$work/l1.amb" "$work/e0.amb" "$work/target" "$work/fio.json" \
		 "$work/bench.key" "$work/bench.pass" "$work/sign.pem" "$work/sign.pub"; do
		if [ -f "$f" ] && [ ! -L "$f" ]; then rm -f "$f"; fi
	done
}
trap clean_up EXIT
trap 'exit 130' INT TERM
make -s -C userspace >/dev/null

if [ ! -f "$image" ] || [ "$(stat -c %s "$image")" != "$bytes" ]; then
	echo "bench-native: writing $image (half-compressible, fixed seed)"
	rm -f "$image"
	fio --name=image --filename="$image" --rw=write --bs=1M --size="${mib}M" \
		--buffer_compress_percentage=50 --refill_buffers --buffer_compress_chunk=4k \
		--randseed=17 --ioengine=psync --end_fsync=1 --output=/dev/null
fi

# The keys of the encrypted runs: new for every run of the script.
make_keys() {
	clean_up
	(umask 077 && echo "bench passphrase" >"$work/bench.pass")
	"$amber" key new "$work/bench.key" --passphrase-file "$work/bench.pass" \
		--scrypt-log2n 14 >/dev/null
	"$amber" key new-signing "$work/sign.pem" "$work/sign.pub"
}
make_keys
key=(--key "$work/bench.key" --passphrase-file "$work/bench.pass")

drop_cache() {
	sync
	{ echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null
}
# Once here: the runs drop it in subshells, whose variables do not come back.
cache_dropped=yes
drop_cache || cache_dropped=no

now_ns() { date +%s%N; }

# MB/s of @bytes moved by the command, the page cache dropped first.
rate() {
	local bytes=$1 t0 t1
	shift
	drop_cache || :
	t0=$(now_ns)
	"$@" >/dev/null
	t1=$(now_ns)
	awk -v b="$bytes" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f\n", b / ns * 1000 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# MB/s of fio's sequential @rw of @file by its own clock: its start-up
# (half a second here) is not the disk's.
fio_rate() {
	drop_cache || :
	fio --name=seq --filename="$1" --rw="$2" --bs=1M --iodepth=4 --ioengine=libaio \
		--direct=1 --size="${mib}M" --fallocate=none --end_fsync=1 \
		--output-format=json --output="$work/fio.json"
	python3 -c 'import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
print("%.1f" % (job[sys.argv[2]]["bw_bytes"] / 1e6))' "$work/fio.json" "$2"
}

backup_to() {
	if [ -f "$2" ]; then rm -f "$2"; fi	# never /dev/null
	"$amber" backup --image "$image" --to "$2" --level "$1"
}

new_target() {
	rm -f "$work/target"
	truncate -s "$bytes" "$work/target"
}

backup_encrypted_to() {
	if [ -f "$2" ]; then rm -f "$2"; fi	# never /dev/null
	"$amber" backup --image "$image" --to "$2" --level "$1" --encrypt "$work/bench.key" \
		--passphrase-file "$work/bench.pass" --sign "$work/sign.pem"
}

restore() {
	new_target
	"$amber" restore "$work/l0.amb" --to "$work/target"
}

restore_encrypted() {
	new_target
	"$amber" restore "$work/e0.amb" --to "$work/target" "${key[@]}"
}

# The same at amber's default level (3), where compression, not hashing,
# sets the pace: FILE is the backup to restore.
restore_from() {
	new_target
	"$amber" restore "$@" --to "$work/target"
}

raw_write() {
	rm -f "$work/target"
	fio_rate "$work/target" write
}

# The codecs from the page cache: CPU, not disk. SHA-256 as amber computes
# it (OpenSSL, SHA-NI where the CPU has it).
ns_of() {
	local t0
	t0=$(now_ns)
	"$@" <"$image" >/dev/null
	echo $(($(now_ns) - t0))
}

mbps() { awk -v b="$bytes" -v ns="$1" 'BEGIN { printf "%.1f\n", b / ns * 1000 }'; }

# SHA-256 of the file on every core at once: one openssl per core.
sha_all_ns() {
	local t0 i
	t0=$(now_ns)
	for ((i = 0; i < cpus; i++)); do
		openssl dgst -sha256 <"$image" >/dev/null &
	done
	wait
	echo $(( ($(now_ns) - t0) / cpus ))
}

cpus=$(nproc)
declare -A runs
# Every run of a round once, in this order: each ratio compares runs close
# in time, on a host whose load changes from second to second.
round() {
	local z s a
	runs[read]+="$(fio_rate "$image" read) "
	runs[b0null]+="$(rate "$bytes" backup_to 0 /dev/null) "
	cat "$image" >/dev/null
	z=$(ns_of zstd -1 -T0 -c)
	s=$(ns_of openssl dgst -sha256)
	a=$(sha_all_ns)
	runs[zstd]+="$(mbps "$z") "
	runs[sha]+="$(mbps "$s") "
	runs[sha_all]+="$(mbps "$a") "
	runs[codecs]+="$(mbps $((z + a))) "
	runs[b1null]+="$(rate "$bytes" backup_to 1 /dev/null) "
	runs[b0file]+="$(rate "$bytes" backup_to 0 "$work/l0.amb") "
	runs[b1file]+="$(rate "$bytes" backup_to 1 "$work/l1.amb") "
	runs[verify]+="$(rate "$(stat -c %s "$work/l0.amb")" "$amber" verify "$work/l0.amb") "
	runs[write]+="$(raw_write) "
	runs[restore]+="$(rate "$bytes" restore) "
	runs[e0null]+="$(rate "$bytes" backup_encrypted_to 0 /dev/null) "
	runs[e1null]+="$(rate "$bytes" backup_encrypted_to 1 /dev/null) "
	runs[e0file]+="$(rate "$bytes" backup_encrypted_to 0 "$work/e0.amb") "
	runs[everify]+="$(rate "$(stat -c %s "$work/e0.amb")" "$amber" verify "$work/e0.amb" \
		"${key[@]}" --pubkey "$work/sign.pub") "
	runs[erestore]+="$(rate "$bytes" restore_encrypted) "
	# The default level (3), plain against encrypted and signed, in content
	# MB/s throughout.
	runs[b3file]+="$(rate "$bytes" backup_to 3 "$work/l3.amb") "
	runs[e3file]+="$(rate "$bytes" backup_encrypted_to 3 "$work/e3.amb") "
	runs[verify3]+="$(rate "$bytes" "$amber" verify "$work/l3.amb") "
	runs[everify3]+="$(rate "$bytes" "$amber" verify "$work/e3.amb" "${key[@]}" \
		--pubkey "$work/sign.pub") "
	runs[restore3]+="$(rate "$bytes" restore_from "$work/l3.amb") "
	runs[erestore3]+="$(rate "$bytes" restore_from "$work/e3.amb" "${key[@]}") "
}

show() {
	printf '%-46s %8s MB/s   (%s)\n' "$2" "$(printf '%s\n' ${runs[$1]} | median)" "${runs[$1]% }"
}

# The per-round ratios of run @num to the slowest of the runs @den...
ratios() {
	local num=$1 r x d
	shift
	local -a n=(${runs[$num]})
	for ((r = 0; r < reps; r++)); do
		x=$(for d in "$@"; do local -a v=(${runs[$d]}); echo "${v[r]}"; done | sort -n | head -1)
		awk -v a="${n[r]}" -v b="$x" 'BEGIN { printf "%.2f\n", a / b }'
	done
}

# goal WHAT NUM REFNAME DEN...: the median ratio against the 0.9 goal.
goal() {
	local what=$1 num=$2 refname=$3 all
	shift 3
	all=$(ratios "$num" "$@" | tr '\n' ' ')
	awk -v w="$what" -v n="$refname" -v x="$(printf '%s\n' $all | median)" -v all="${all% }" \
		'BEGIN { printf "%-8s %-36s %.2f x %s (goal >= 0.90; rounds: %s)\n",
			 (x >= 0.9 ? "met" : "NOT MET"), w, x, n, all }'
}

# info WHAT NUM REFNAME DEN...: the same without a goal.
info() {
	local what=$1 num=$2 refname=$3 all
	shift 3
	all=$(ratios "$num" "$@" | tr '\n' ' ')
	awk -v w="$what" -v n="$refname" -v x="$(printf '%s\n' $all | median)" -v all="${all% }" \
		'BEGIN { printf "%-8s %-36s %.2f x %s (rounds: %s)\n", "info", w, x, n, all }'
}

echo "bench-native: $mib MiB image, $cpus CPUs, $reps rounds; MB/s: median (each round)"
for ((round_nr = 0; round_nr < reps; round_nr++)); do
	round
done
show read "raw O_DIRECT read (fio)"
show b0null "backup --level 0 > /dev/null"
show b1null "backup --level 1 > /dev/null"
show b0file "backup --level 0 > file"
show b1file "backup --level 1 > file"
show verify "verify (level 0 backup)"
show write "raw O_DIRECT write (fio)"
show restore "restore (level 0 backup) to a file"
show e0null "encrypted+signed backup --level 0 > /dev/null"
show e1null "encrypted+signed backup --level 1 > /dev/null"
show e0file "encrypted+signed backup --level 0 > file"
show everify "encrypted+signed verify --key --pubkey"
show erestore "encrypted+signed restore to a file"
show b3file "backup (default level 3) > file"
show e3file "encrypted+signed backup (level 3) > file"
show verify3 "verify (level 3 backup, content MB/s)"
show everify3 "encrypted+signed verify (level 3, content)"
show restore3 "restore (level 3 backup) to a file"
show erestore3 "encrypted+signed restore (level 3) to a file"
show zstd "zstd -1 -T0 (page cache)"
show sha "SHA-256, OpenSSL, one core"
show sha_all "SHA-256, OpenSSL, all $cpus cores"
show codecs "codecs, all $cpus cores"
echo "  (codecs: 1 / (1/zstd + 1/SHA-256 all cores); sha256sum, without SHA-NI:" \
	"$(mbps "$(ns_of sha256sum)") MB/s, not used)"
printf 'level 1 backup: %s of the image\n' \
	"$(awk -v a="$(stat -c %s "$work/l1.amb")" -v b="$bytes" 'BEGIN { printf "%.2f", a / b }')"
clean_up

echo
echo "goals and other ratios (median of the per-round ratios)"
goal "backup --level 0 to /dev/null" b0null "raw read" read
goal "backup --level 1 to /dev/null" b1null "min(raw read, codecs)" read codecs
goal "verify" verify "raw read" read
goal "restore" restore "raw write" write
goal "encrypted+signed backup --level 0" e0null "backup --level 0" b0null
goal "encrypted+signed backup --level 1" e1null "backup --level 1" b1null
goal "encrypted+signed verify" everify "verify" verify
goal "encrypted+signed restore" erestore "restore" restore
goal "encrypted+signed backup, default level" e3file "backup --level 3" b3file
goal "encrypted+signed verify, default level" everify3 "verify (level 3)" verify3
goal "encrypted+signed restore, default level" erestore3 "restore (level 3)" restore3
# What the hashing alone allows: SHA-256 of every byte is the format's.
info "backup --level 0 to /dev/null" b0null "min(raw read, SHA-256 all cores)" read sha_all
# To a file on the image's own disk the backup reads and writes the same
# bytes there: no goal, shown against the raw read for the record.
info "backup --level 0 to a file" b0file "raw read (the file on the same disk)" read
info "backup --level 1 to a file" b1file "raw read (the file on the same disk)" read
if [ "$cache_dropped" = no ]; then
	echo "bench-native: the page cache could NOT be dropped (not permitted): reads after the first may come from memory"
else
	echo "bench-native: page cache dropped before every timed run (the codecs' excepted)"
fi
