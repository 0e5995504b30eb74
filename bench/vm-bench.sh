#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The measurements of `make bench`, run inside the test VM by scripts/bench.sh
# (as a test file of selftests/vm/vmtest.sh). Configurations are compared
# side by side on the same virtio disks, alternating A B B A ... and the host
# takes medians of the pairwise ratios (bench/report.py). Every number goes
# to the KTAP log as one line:
#
#   bench: sample <key> <value>    one repetition of a measurement
#   bench: value <key> <value>     a single figure
#
# The VM shares the host's CPUs with whatever else runs there, so its speed
# wanders by tens of percent within seconds: timed comparisons run as many
# short slices, A B B A A B ..., back to back in one fio process, and the
# host takes the median of the ratios of neighbouring slices.
#
# Disks (1 GiB each): /dev/vda origin, /dev/vdb amber store, /dev/vdc
# dm-snapshot COW store, /dev/vdd a second amber store (memory, scale); the
# instant phase lays them out its own way (instant_disks).
# Knobs (set by scripts/bench.sh): BENCH_SLICE length of a timed slice
# (fio time: 500ms),
# BENCH_PAIRS slice pairs per comparison, BENCH_REPS repetitions of the
# copy-on-write runs, BENCH_QUICK=1 for a fast smoke run, BENCH_PHASES the
# phases to run (default all, in order).
. "$(dirname "$0")/amber_lib.sh"

require_module dm-amber
require_module dm-snapshot
require_module dm-zero

SLICE=${BENCH_SLICE:-500ms}
PAIRS=${BENCH_PAIRS:-20}
REPS=${BENCH_REPS:-5}
QUICK=${BENCH_QUICK:-0}
PHASES=${BENCH_PHASES:-pretouch passthrough cow64k cow4k release stall backup instant memory scale}
COW_CFGS=${BENCH_COW_CFGS:-lin amb dms}
STALL_CFGS=${BENCH_STALL_CFGS:-amb amb4k dms amb@seq amb4k@seq dms@seq dmsetup lin amb amb4k dms amb@seq amb4k@seq dms@seq}
ORIGIN=$(scratch_disk origin)
STORE=$(scratch_disk store)
COW=$(scratch_disk origin2)
STORE2=$(scratch_disk store2)
W=/tmp/bench
mkdir -p "$W"

MiB=$((1024 * 1024))
PT_REGION=256			# MiB of the volume the pass-through runs use
COW_N=1000			# first writes per copy-on-write run
MEM_N=10000			# chunks copied for the memory figure
BK_MIB=256			# the backed-up volume
SC_REGION=64			# MiB the scale runs write
IN_SIZES="1 16"			# GiB of the instant phase's two volumes
IN_REPS=2			# its repetitions of each timed comparison
if [ "$QUICK" = 1 ]; then
	COW_N=400 MEM_N=4000 BK_MIB=128 SC_REGION=32 IN_REPS=1
fi

say() { echo "bench: $*"; }
sample() { say "sample $1 $2"; }
value() { say "value $1 $2"; }
log() { echo "bench-log: $*"; }
now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }

# ---- fio ---------------------------------------------------------------------

# fio_terse <fio options...>: one libaio job with direct I/O; prints
# "<iops> <KiB/s> <runtime ms> <lat mean us> <clat p99.9 us> <lat max us>"
# of its main direction (terse v3 fields of this very fio binary).
fio_terse() {
	fio --name=b --ioengine=libaio --direct=1 --percentile_list=99:99.9 \
		--output-format=terse --terse-version=3 "$@" |
		awk -F';' '{
			if ($47 > $6) { o = 41 } else { o = 0 }
			p = $(19 + o); sub(/.*=/, "", p)
			print $(8 + o), $(7 + o), $(9 + o), $(40 + o), p, $(39 + o)
		}'
}

# fio_mbps <fio options...>: fio_terse's MB/s (10^6 bytes a second).
fio_mbps() {
	fio_terse "$@" | awk '{ printf "%.1f\n", $2 * 1024 / 1e6 }'
}

# mbps <bytes> <ms>: MB/s.
mbps() {
	awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.1f\n", b / ms / 1000 }'
}

# wl_opts <workload>: the fio options of a workload.
#   rw4k 4 KiB random writes, iodepth 8    rr4k 4 KiB random reads, iodepth 8
#   sw1m 1 MiB sequential writes, iodepth 4 (MB/s instead of IOPS)
wl_opts() {
	case $1 in
	rw4k) echo --rw=randwrite --bs=4k --iodepth=8 ;;
	rr4k) echo --rw=randread --bs=4k --iodepth=8 ;;
	sw1m) echo --rw=write --bs=1M --iodepth=4 ;;
	esac
}

# alternate <key> <workload> <pairs> <cfg A> <cfg B>: 2 x <pairs> timed
# slices of SLICE over the first REGION MiB (PT_REGION), A B B A
# A B ..., stonewalled in one fio process. Prints the samples
# "<key>.<name of A or B>" in slice order (IOPS, or MB/s for sw1m): the
# i-th of A and the i-th of B ran next to each other.
alternate() {
	local key=$1 wl=$2 pairs=$3 a=$4 b=$5 i jobs=() first second
	for ((i = 0; i < pairs; i++)); do
		first=$a second=$b
		[ $((i % 2)) = 1 ] && first=$b second=$a
		jobs+=(--name="$first" --filename="$(dm_dev "$first")" --stonewall
			--name="$second" --filename="$(dm_dev "$second")" --stonewall)
	done
	# shellcheck disable=SC2046
	fio --ioengine=libaio --direct=1 --time_based --runtime="$SLICE" \
		--size="${REGION:-$PT_REGION}M" $(wl_opts "$wl") \
		--output-format=terse --terse-version=3 "${jobs[@]}" |
		awk -F';' -v wl="$wl" '{
			o = ($47 > $6) ? 41 : 0
			v = (wl == "sw1m") ? sprintf("%.1f", $(7 + o) * 1024 / 1e6) : $(8 + o)
			print $3, v
		}' | while read -r cfg v; do
			sample "$key.$(cfgname "$cfg")" "$v"
		done
}

# iolog <file> <count> <chunk bytes> <region bytes> <seed>: a fio replay
# log of <count> 4 KiB writes, each into another chunk, in random order.
iolog() {
	awk -v n="$2" -v cb="$3" -v nc=$(($4 / $3)) -v seed="$5" 'BEGIN {
		srand(seed)
		print "fio version 2 iolog"; print "x add"; print "x open"
		for (i = 0; i < n; i++) {
			j = i + int(rand() * (nc - i))
			vi = (i in p) ? p[i] : i; vj = (j in p) ? p[j] : j
			p[j] = vi; p[i] = vj
			printf "x write %d 4096\n", vj * cb + int(rand() * (cb / 4096)) * 4096
		}
		print "x close"
	}' >"$1"
}

# replay_iops <dev> <log> <count>: replay the log at iodepth 8; IOPS.
replay_iops() {
	fio_terse --read_iolog="$2" --replay_redirect="$1" --replay_no_stall=1 \
		--iodepth=8 | awk -v n="$3" '{ printf "%.0f\n", n * 1000 / ($3 > 0 ? $3 : 1) }'
}

# fill <dev> <MiB> [fio options]: write the first <MiB> sequentially, flush.
fill() {
	local dev=$1 mib=$2
	shift 2
	fio --name=fill --ioengine=libaio --direct=1 --rw=write --bs=1M --iodepth=4 \
		--size="${mib}M" --filename="$dev" --end_fsync=1 "$@" >/dev/null
}

# ---- devices -------------------------------------------------------------------

# amber_dev <name> <origin> <store> <chunk bytes> [features]: format, create.
amber_dev() {
	local name=$1 origin=$2 store=$3 chunk=$4
	shift 4
	amber format --force --store "$store" --origin "$origin" --chunk "$chunk" >/dev/null
	dm_create "$name" "$(amber_table "$origin" "$store" $((chunk / 512)) "$@")"
}

amber_view_dev() {
	dm_create "$1-view" "0 $(sectors "$(dm_dev "$1")") amber-view $(dm_dev "$1")" --readonly
}

linear_dev() {
	dm_create "$1" "0 $(sectors "$2") linear $2 0"
}

# dmsnap_take <origin dm name> <snap name> <origin dev> <cow dev> <chunk sectors>
dmsnap_take() {
	dd if=/dev/zero of="$4" bs=4k count=1 oflag=direct,dsync conv=notrunc status=none
	dmsetup suspend "$1"
	dmsetup create "$2" --table "0 $(sectors "$3") snapshot $3 $4 P $5"
	dmsetup resume "$1"
}

snap() { amber_msg "$1" snap >/dev/null; }

# rotate <n> <word>...: the words, the first <n> moved to the end.
rotate() {
	local n=$(($1 % ($# - 1)))
	shift
	echo "${@:n+1}" "${@:1:n}"
}

# Experiments only (bench/exp): amb+<knob>[+<knob>] is amber with those
# parameters of the variant module dm-amber-x set, the others cleared.
knobs() {
	local d=/sys/module/dm_amber_x/parameters f
	[ -d $d ] || return 0
	for f in "$d"/*; do
		case $(basename "$f") in n_* | *_us) continue ;; esac
		if [[ "+${1#amb}+" == *"+$(basename "$f")+"* ]]; then
			echo 1 >"$f"
		else
			echo 0 >"$f"
		fi
	done
}

# xcounters: "<commits> <writes committed>" of the variant module, if loaded.
xcounters() {
	local d=/sys/module/dm_amber_x/parameters
	[ -r $d/n_commits ] && echo "$(cat $d/n_commits) $(cat $d/n_batched)"
	return 0
}

# The name a configuration has in the results.
cfgname() {
	case $1 in
	*@seq) echo "$(cfgname "${1%@seq}")_seq" ;;
	amb4k) echo amber4k ;;
	amb+*) echo "amber${1#amb}" ;;
	amb | sc) echo amber ;;
	lin | sc-l) echo linear ;;
	dms) echo dmsnap ;;
	dmsetup) echo dmsnap_dmsetup ;;
	esac
}

# Every device a phase may leave behind when it fails half way, in order.
BENCH_DEVS="dsnap so bk-view bk bk-o amb4 amb lin slin mem1 mem16 mem-o16 memt mem-ot sc-l sc sc-o
	it-inst it-inst-meta it-mnt it-src it-src-z it-t16 it-t16-z it-t1 it-scow it-bkfs"
cleanup_devs() {
	local n
	for n in $BENCH_DEVS; do
		unmount_dev "$(dm_dev "$n")"
		dm_remove "$n" || echo "bench-log: could not remove $n"
	done
}

# unmount_dev <dev>: a file system a failed phase left mounted from <dev>,
# detached at once; dm_remove then waits for its last user (an instant
# restore's server exits within a second of its device's removal).
unmount_dev() {
	local mnt
	awk -v d="$1" '$1 == d { print $2 }' /proc/mounts | while read -r mnt; do
		umount -l "$mnt" || echo "bench-log: could not unmount $mnt"
	done
}
drop() { amber_msg "$1" drop; }

# ---- memory --------------------------------------------------------------------

# mem_now: "<slab+vmalloc bytes> <MemFree bytes> <radix_tree_node bytes>"
# after dropping what the kernel can drop.
mem_now() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep 0.5
	echo 3 >/proc/sys/vm/drop_caches
	awk '
		FILENAME ~ /meminfo/ && $1 == "Slab:" { s += $2 * 1024 }
		FILENAME ~ /meminfo/ && $1 == "VmallocUsed:" { s += $2 * 1024 }
		FILENAME ~ /meminfo/ && $1 == "MemFree:" { f = $2 * 1024 }
		FILENAME ~ /slabinfo/ && $1 == "radix_tree_node" { r = $2 * $4 }
		END { print s, f, r }' /proc/meminfo /proc/slabinfo
}

# mem_delta <before> <after>: slab+vmalloc, MemFree and radix deltas.
mem_delta() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		print y[1] - x[1], x[2] - y[2], y[3] - x[3]
	}'
}

# ---- latency logs --------------------------------------------------------------

# lat_report <fio lat log> <windows>: latwin's figures (see
# selftests/tools/latwin.c) as "<key> <value>" lines; the per-window ones
# go to the log.
lat_report() {
	latwin stall "$1" "$2" >"$1.report"
	grep -v '^w ' "$1.report"
	grep '^w ' "$1.report" | sed "s|^|bench-log: $(basename "$1") |" >&2
}

# ---- phases --------------------------------------------------------------------

# The disks written once (the host allocates the blocks of its sparse
# image files) and flushed, so that no configuration pays for that: all the
# origin, the parts of the stores the runs use.
phase_pretouch() {
	fill "$ORIGIN" 1024
	fill "$STORE" 512
	fill "$COW" 512
	fill "$STORE2" 256
}

# Pass-through, no snapshot: amber (64 KiB chunks) and dm-linear over the
# whole origin disk. Steady state after a warm-up pass; then the first pass
# after a barrier (every write the first of its chunk in the epoch, so each
# waits for its change-map block on the store).
phase_passthrough() {
	local r wl cfg order n=$((PT_REGION * MiB / 65536))
	amber_dev amb "$ORIGIN" "$STORE" 65536
	linear_dev lin "$ORIGIN"
	fill "$(dm_dev amb)" $PT_REGION
	for wl in rw4k rr4k sw1m; do
		alternate "passthrough.$wl" $wl "$PAIRS" lin amb
	done
	value passthrough.waited "$(amber_field amb waited)"

	iolog "$W/first.log" $n 65536 $((PT_REGION * MiB)) 11
	for ((r = 1; r <= 3; r++)); do
		order="lin amb"
		[ $((r % 2)) = 0 ] && order="amb lin"
		for cfg in $order; do
			if [ $cfg = amb ]; then
				snap amb
				drop amb
			fi
			sample "firstpass.$(cfgname $cfg)" "$(replay_iops "$(dm_dev $cfg)" "$W/first.log" $n)"
		done
	done
	dm_remove amb
	dm_remove lin
}

# Copy-on-write: random 4 KiB first writes (each into another chunk) under a
# snapshot: amber, dm-snapshot with a persistent store of the same chunk
# size, and dm-linear (no snapshot), with the same replay log.
phase_cow64k() { cow 65536 64k; }
phase_cow4k() { cow 4096 4k; }
cow() {
	local chunk=$1 tag=$2 n=$COW_N r cfg order v k c0 c1 secs sectors=$(($1 / 512))
	amber_dev amb "$ORIGIN" "$STORE" "$chunk"
	linear_dev lin "$ORIGIN"
	dm_create so "0 $(sectors "$ORIGIN") snapshot-origin $ORIGIN"
	iolog "$W/cow$tag.log" "$n" "$chunk" $((1024 * MiB)) $((20 + sectors))
	for ((r = 1; r <= REPS; r++)); do
		for cfg in $(rotate $((r - 1)) $COW_CFGS); do
			case $cfg in
			amb*)
				knobs "$cfg"
				snap amb
				c0=$(xcounters)
				v=$(replay_iops "$(dm_dev amb)" "$W/cow$tag.log" "$n")
				c1=$(xcounters)
				[ -z "$c0" ] || sample "cow.$tag.$(cfgname $cfg).batch" "$(awk -v a="$c0" -v b="$c1" \
					'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f\n", (y[2] - x[2]) / (y[1] - x[1] + (y[1] == x[1])) }')"
				[ "$(amber_field amb copied)" = "$n" ] ||
					log "amber copied $(amber_field amb copied), expected $n"
				drop amb
				knobs amb
				sample "cow.$tag.$(cfgname $cfg)" "$v"
				;;
			dms)
				dmsnap_take so dsnap "$ORIGIN" "$COW" "$sectors"
				v=$(replay_iops "$(dm_dev so)" "$W/cow$tag.log" "$n")
				log "dm-snapshot status: $(dmsetup status dsnap)"
				dm_remove dsnap
				sample "cow.$tag.dmsnap" "$v"
				;;
			lin)
				sample "cow.$tag.linear" "$(replay_iops "$(dm_dev lin)" "$W/cow$tag.log" "$n")"
				;;
			esac
		done
	done
	# What the disks do without any copy-on-write logic: the three I/Os of
	# a first write (a chunk read on the origin, a chunk write on the
	# store, the 4 KiB write itself), each kind alone at iodepth 8.
	linear_dev slin "$STORE"
	# shellcheck disable=SC2046
	fio --ioengine=libaio --direct=1 --time_based --runtime="$SLICE" --iodepth=8 \
		--output-format=terse --terse-version=3 $(for ((r = 1; r <= 3; r++)); do
			echo --name=raw_read --filename="$(dm_dev lin)" --rw=randread \
				--bs="$chunk" --size=1G --stonewall
			echo --name=raw_store_write --filename="$(dm_dev slin)" --rw=randwrite \
				--bs="$chunk" --size=512M --stonewall
			echo --name=raw_write --filename="$(dm_dev lin)" --rw=randwrite \
				--bs=4k --size=1G --stonewall
		done) | awk -F';' '{ print $3, ($47 > $6) ? $49 : $8 }' |
		while read -r k v; do sample "cow.$tag.$k" "$v"; done
	# The three chained per first write, 8 first writes at a time, their
	# chains overlapping (selftests/tools/cowlimit.c): the physical limit
	# of the copy-on-write phase, which report.py holds amber to.
	case $SLICE in
	*ms) secs=${SLICE%ms}e-3 ;;
	*s) secs=${SLICE%s} ;;
	*) secs=$SLICE ;;
	esac
	for ((r = 1; r <= 3; r++)); do
		sample "cow.$tag.raw_chained" "$(cowlimit "$(dm_dev lin)" "$(dm_dev slin)" \
			"$chunk" "$secs" 8 | awk '$1 == "chains_per_s" { print $2 }')"
	done
	dm_remove slin
	dm_remove so
	dm_remove amb
	dm_remove lin
}

# After release: a snapshot whose every chunk the backup has streamed.
# First pass (one write per chunk: the map write of the new epoch), then
# steady state, amber against dm-linear.
phase_release() {
	local nr n=$((PT_REGION * MiB / 65536))
	amber_dev amb "$ORIGIN" "$STORE" 65536
	linear_dev lin "$ORIGIN"
	fill "$(dm_dev amb)" $PT_REGION
	snap amb
	nr=$(($(sectors "$ORIGIN") / 128))
	amber_msg amb release 0 "$nr"
	sample release.firstpass.amber "$(replay_iops "$(dm_dev amb)" "$W/first.log" $n)"
	sample release.firstpass.linear "$(replay_iops "$(dm_dev lin)" "$W/first.log" $n)"
	fill "$(dm_dev amb)" $PT_REGION
	value release.waited_before "$(amber_field amb waited)"
	alternate release.rw4k rw4k "$PAIRS" lin amb
	value release.waited_after "$(amber_field amb waited)"
	value release.copied "$(amber_field amb copied)"
	value release.released "$(amber_field amb released)"
	drop amb
	dm_remove amb
	dm_remove lin
}

# stall_run <tag> <load> <dev> <command...>: a write load on <dev> for the
# length of STALL_N snapshots, one a second, each held 0.5 s, with a
# per-I/O latency log; the command prints the windows. <load>: "rand",
# 4 KiB random writes at iodepth 8, or "seq", a sequential writer of 1 MiB
# writes at iodepth 4 (a checkpoint, a bulk load).
STALL_N=8
stall_run() {
	local tag=$1 load=$2 dev=$3 fpid
	local -a rw=(--rw=randwrite --bs=4k --iodepth=8)
	shift 3
	[ "$load" = rand ] || rw=(--rw=write --bs=1M --iodepth=4)
	rm -f "$W/$tag"_*.log "$W/$tag.win"
	fio --name=b --ioengine=libaio --direct=1 "${rw[@]}" \
		--filename="$dev" --size=1G --time_based --runtime=$((STALL_N + 2)) \
		--write_lat_log="$W/$tag" --log_avg_msec=0 --log_unix_epoch=1 \
		--output=/dev/null &
	fpid=$!
	sleep 1.5	# fio starts slowly under TCG
	"$@" >"$W/$tag.win"
	wait "$fpid"
	lat_report "$W/${tag}_lat.1.log" "$W/$tag.win"
	stage_report "$W/$tag.win"
}

# stage_report <windows>: benchsnap's "stats" lines (amber's timing of each
# barrier: module/stats.c) as "step_<step>_ms <ms>" and, for each stage a
# write may wait at, "wait_<stage>_max_ms <ms>" and "wait_<stage>_n <count>",
# and "copied_ahead <count>".
stage_report() {
	awk '$1 == "stats" {
		for (i = 2; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == "ahead") {
				printf "copied_ahead %d\n", kv[2]
			} else if (split(kv[2], f, "/") == 1) {
				printf "step_%s_ms %.3f\n", kv[1], f[1] / 1000
			} else {
				printf "wait_%s_max_ms %.3f\n", kv[1], f[2] / 1000
				printf "wait_%s_n %d\n", kv[1], f[1]
			}
		}
	}' "$1"
}

# sleep_to <CLOCK_REALTIME ns>
sleep_to() {
	local left=$(($1 - $(now_ns)))
	[ "$left" -le 0 ] || sleep "$(awk -v n="$left" 'BEGIN { printf "%.3f", n / 1e9 }')"
}

# Windows of the same shape where nothing happens: the noise floor.
pseudo_windows() {
	local i start
	start=$(now_ns)
	for ((i = 0; i < STALL_N; i++)); do
		sleep_to $((start + i * 1000000000))
		echo "snap $((start + i * 1000000000)) $((start + i * 1000000000 + 10000000))"
	done
}

# dm-snapshot the way a script takes it: dmsetup suspend, create, resume.
dmsnap_dmsetup() {
	local i start t0
	start=$(now_ns)
	for ((i = 0; i < STALL_N; i++)); do
		sleep_to $((start + i * 1000000000))
		dd if=/dev/zero of="$COW" bs=4k count=1 oflag=direct,dsync conv=notrunc status=none
		t0=$(now_ns)
		dmsetup suspend so
		dmsetup create dsnap --table "0 $(sectors "$ORIGIN") snapshot $ORIGIN $COW P 128"
		dmsetup resume so
		echo "snap $t0 $(now_ns)"
		sleep_to $((start + i * 1000000000 + 500000000))
		t0=$(now_ns)
		dmsetup remove dsnap
		echo "drop $t0 $(now_ns)"
	done
}

# The barrier stall (issue 19): amber with 64 KiB and 4 KiB chunks, and
# dm-snapshot (64 KiB chunks) taken in-process and with dmsetup, under
# random 4 KiB writes and a sequential 1 MiB writer (a cfg ending in @seq);
# dm-linear with windows where nothing happens, the noise floor. Keys:
# stall.<cfgname>.<latwin's key>.
phase_stall() {
	local k v cfg load
	amber_dev amb "$ORIGIN" "$STORE" 65536
	amber_dev amb4 "$ORIGIN" "$STORE2" 4096
	linear_dev lin "$ORIGIN"
	dm_create so "0 $(sectors "$ORIGIN") snapshot-origin $ORIGIN"
	for cfg in $STALL_CFGS; do
		load=rand
		[[ $cfg != *@seq ]] || load=seq
		knobs "${cfg%@seq}"
		case ${cfg%@seq} in
		amb4k) stall_run amb4 $load "$(dm_dev amb4)" benchsnap amber amb4 $STALL_N 1000 500 ;;
		amb*) stall_run amb $load "$(dm_dev amb)" benchsnap amber amb $STALL_N 1000 500 ;;
		dms) stall_run dms $load "$(dm_dev so)" benchsnap dmsnap so dsnap "$COW" \
			"$(sectors "$ORIGIN")" "$ORIGIN $COW P 128" $STALL_N 1000 500 ;;
		dmsetup) stall_run dmsetup $load "$(dm_dev so)" dmsnap_dmsetup ;;
		lin) stall_run lin $load "$(dm_dev lin)" pseudo_windows ;;
		esac | while read -r k v; do
			sample "stall.$(cfgname "$cfg").$k" "$v"
		done
		knobs amb
		dm_remove dsnap
	done
	dm_remove so
	dm_remove amb4
	dm_remove amb
	dm_remove lin
}

# The backup: a volume of BK_MIB MiB of half-compressible data streamed to
# /dev/null, raw and with zstd -1, against a raw sequential read of its
# view; then once under a random-write load, with the store's use polled.
phase_backup() {
	local r t0 ms bytes=$((BK_MIB * MiB)) fpid ppid t_start t_end k v
	slice bk-o origin 0 "$BK_MIB"
	amber_dev bk "$(dm_dev bk-o)" "$STORE" 65536
	amber_view_dev bk
	fill "$(dm_dev bk)" "$BK_MIB" --buffer_compress_percentage=50 --refill_buffers \
		--buffer_compress_chunk=4k
	for ((r = 1; r <= 2; r++)); do
		snap bk
		sample backup.rawread.view "$(fio_mbps --filename="$(dm_dev bk-view)" --rw=read \
			--bs=1M --iodepth=4 --size="${BK_MIB}M")"
		drop bk
		sample backup.rawread.origin "$(fio_mbps --filename="$(dm_dev bk-o)" --rw=read \
			--bs=1M --iodepth=4 --size="${BK_MIB}M")"
		t0=$(now_ns)
		amber backup bk --to /dev/null --no-compress >"$W/bk-nc.out"
		ms=$(ms_since "$t0")
		sample backup.stream.nocompress "$(mbps $bytes "$ms")"
		t0=$(now_ns)
		amber backup bk --to /dev/null --level 1 >"$W/bk-z1.out"
		ms=$(ms_since "$t0")
		sample backup.stream.zstd1 "$(mbps $bytes "$ms")"
	done
	# What the guest's CPU can hash: SHA-256 of every byte is part of a
	# backup (docs/FORMAT.md), one stream on one vCPU here.
	snap bk
	t0=$(now_ns)
	dd if="$(dm_dev bk-view)" bs=1M iflag=direct status=none | sha256sum >/dev/null
	ms=$(ms_since "$t0")
	drop bk
	value backup.read_sha256 "$(mbps $bytes "$ms")"
	sed 's/^/bench-log: /' "$W/bk-nc.out" "$W/bk-z1.out"

	# Under load: the store's peak against what dm-snapshot would hold.
	rm -f "$W"/bkload_*.log
	fio --name=b --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=8 \
		--filename="$(dm_dev bk)" --size="${BK_MIB}M" --time_based --runtime=300 \
		--write_lat_log="$W/bkload" --log_avg_msec=0 --log_unix_epoch=1 --log_offset=1 \
		--output="$W/bkload.out" &
	fpid=$!
	sleep 1
	(
		while :; do
			dmsetup status bk | awk '{ split($7, u, "/"); print u[1], $8 }'
			sleep 0.05
		done
	) >"$W/bkload.poll" &
	ppid=$!
	t_start=$(now_ns)
	amber backup bk --to /dev/null --no-compress >"$W/bk-load.out"
	t_end=$(now_ns)
	kill "$ppid"
	kill -INT "$fpid"
	wait "$fpid" || true
	wait "$ppid" 2>/dev/null || true
	sed 's/^/bench-log: /' "$W/bk-load.out"
	value backup.load.seconds "$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.2f\n", (b - a) / 1e9 }')"
	value backup.load.peak_used_chunks "$(awk '$1 > m { m = $1 } END { print m + 0 }' "$W/bkload.poll")"
	value backup.load.max_copied "$(awk '$2 > m { m = $2 } END { print m + 0 }' "$W/bkload.poll")"
	# Writes issued and completed while the backup ran, and the distinct
	# 64 KiB chunks they touched: every one would be an exception in a
	# dm-snapshot held for the backup.
	latwin chunks "$W/bkload_lat.1.log" "$t_start" "$t_end" 65536 |
		while read -r k v; do value "backup.load.$k" "$v"; done
	value backup.volume_chunks $((BK_MIB * MiB / 65536))
	dm_remove bk-view
	dm_remove bk
	dm_remove bk-o
}

# ---- instant restore -----------------------------------------------------------

IN_FILES=16			# files written to each volume, of
IN_FILE_MIB=4			# MiB each, half-compressible
IN_QUERY=f.0.$((IN_FILES - 1))	# the file the first query reads (fio's name)
IN_READS=64			# on-demand 4 KiB reads
IN_META=8			# MiB past a target's image: the restore's metadata
IN_BK=$W/instant-bk		# the backup files' ext4
IN_MNT=$W/instant-mnt		# the volumes' ext4, one at a time

# The instant phase's disks: store's first half holds the backup files'
# ext4, its second half the copy-on-write space of the backed-up volumes;
# the 1 GiB target is all of origin and IN_META MiB of store2 after it
# (amber puts the restore's metadata past the image); the 16 GiB target's
# copy-on-write space is origin2.
instant_disks() {
	slice it-bkfs store 0 512
	slice it-scow store 512 512
	dm_create it-t1 "0 2097152 linear $ORIGIN 0
2097152 $((IN_META * 2048)) linear $STORE2 0"
	mkfs.ext4 -q -F "$(dm_dev it-bkfs)"
	mkdir -p "$IN_BK" "$IN_MNT"
	mount "$(dm_dev it-bkfs)" "$IN_BK"
}

# sparse_dev <name> <sectors> <cow dev>: a writable device that reads zeros
# where nothing was written and needs disk only for what was: a
# non-persistent dm-snapshot (4 KiB chunks) of dm-zero (<name>-z) whose
# writes go to <cow dev>.
sparse_dev() {
	dm_create "$1-z" "0 $2 zero"
	dm_create "$1" "0 $2 snapshot $(dm_dev "$1-z") $3 N 8"
}

sparse_remove() {
	dm_remove "$1"
	dm_remove "$1-z"
}

# instant_source <GiB>: a sparse volume of <GiB> with an ext4 (lazy init:
# only its metadata written) holding IN_FILES files, backed up with
# `amber backup --image` to $IN_BK/<GiB>g.amb; the sha256 of the query's
# file in $W/<GiB>g.sha256.
instant_source() {
	local gib=$1 t0 src
	sparse_dev it-src $((gib * 2097152)) "$(dm_dev it-scow)"
	src=$(dm_dev it-src)
	mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$src"
	mount -o noinit_itable "$src" "$IN_MNT"
	fio --name=f --directory="$IN_MNT" --nrfiles=$IN_FILES --filesize=${IN_FILE_MIB}M \
		--rw=write --bs=1M --buffer_compress_percentage=50 --refill_buffers \
		--buffer_compress_chunk=4k --end_fsync=1 --output=/dev/null
	(cd "$IN_MNT" && sha256sum "$IN_QUERY") >"$W/${gib}g.sha256"
	umount "$IN_MNT"
	t0=$(now_ns)
	amber backup --image "$src" --to "$IN_BK/${gib}g.amb" >"$W/it-backup.out"
	value "instant.backup_${gib}g_s" "$(secs_since "$t0")"
	value "instant.backup_${gib}g_bytes" "$(stat -c %s "$IN_BK/${gib}g.amb")"
	sed 's/^/bench-log: /' "$W/it-backup.out"
	sparse_remove it-src
}

# target_fresh <GiB>: the target of the <GiB> chain, $(dm_dev it-t<GiB>),
# zeroed: the 1 GiB one wiped, the 16 GiB one a new sparse device whose
# copy-on-write space (origin2) takes what is restored before its removal.
target_fresh() {
	if [ "$1" = 1 ]; then
		scratch_wipe "$(dm_dev it-t1)"
	else
		sparse_remove "it-t$1"
		sparse_dev "it-t$1" $(($1 * 2097152 + IN_META * 2048)) "$COW"
	fi
}

# secs_since <ns>: seconds since a now_ns.
secs_since() {
	awk -v ms="$(ms_since "$1")" 'BEGIN { printf "%.3f\n", ms / 1000 }'
}

# dm_target <name>: the target type of its table (of its first line).
dm_target() {
	dmsetup table "$1" | awk 'NR == 1 { print $3 }'
}

# clone_hydrated <name>: dm-clone's "<hydrated>/<total>" regions.
clone_hydrated() {
	dmsetup status "$1" | awk '{ print $7 }'
}

# server_field <name> <key>: a number of the status of <name>'s server
# (amber status --json; the server rewrites it every second).
server_field() {
	amber status --json "$1" | grep -o "\"$2\": *[0-9]*" | grep -o '[0-9]*$'
}

# instant_up <name> <GiB> <target>: `amber restore --instant` of the <GiB>
# chain to <target> as /dev/mapper/<name>.
instant_up() {
	amber restore --instant "$IN_BK/$2g.amb" --to "$3" --name "$1" >"$W/$1.out"
}

# instant_down <name>: the device removed, and the metadata device amber
# put past the image (gone already when the restore ended). The server of
# a restore still under way must end within about a second of the
# removal (it looks at the device every second): instant.server_exit_ms.
instant_down() {
	local pid t0 serving
	pid=$(server_field "$1" pid)
	serving=$(dm_target "$1")
	dm_remove "$1"
	t0=$(now_ns)
	dm_remove "$1-meta"
	[ "$serving" = clone ] || return 0
	wait_until 5 test ! -e "/proc/$pid"
	sample instant.server_exit_ms "$(ms_since "$t0")"
}

# wait_linear <name>: until the restore has turned <name> into a linear
# device, polled every 0.2 s; at most 10 minutes.
wait_linear() {
	local deadline=$((SECONDS + 600))
	until [ "$(dm_target "$1")" = linear ]; do
		[ "$SECONDS" -lt "$deadline" ] || { log "$1 still $(clone_hydrated "$1")"; return 1; }
		sleep 0.2
	done
}

# mount_restored <name>: the restored ext4 on IN_MNT, read-only, with no
# journal replay (nothing written).
mount_restored() {
	mount -o ro,noload "$(dm_dev "$1")" "$IN_MNT"
}

# first_query <name> <GiB>: what a database needs before its first answer:
# the restored ext4 mounted and a file of it read; the file must be the one
# written. Left mounted.
first_query() {
	mount_restored "$1"
	(cd "$IN_MNT" && sha256sum -c --quiet "$W/$2g.sha256")
}

# ttfq <GiB>: time to first query, from the start of the instant restore
# of the <GiB> chain to the end of first_query: instant.ttfq.<GiB>g, s;
# instant.ready.<GiB>g: until the restore command returned.
ttfq() {
	local gib=$1 t0
	target_fresh "$gib"
	t0=$(now_ns)
	instant_up it-inst "$gib" "$(dm_dev "it-t$gib")"
	sample "instant.ready.${gib}g" "$(secs_since "$t0")"
	first_query it-inst "$gib"
	sample "instant.ttfq.${gib}g" "$(secs_since "$t0")"
	log "instant ${gib}g: first query answered with $(clone_hydrated it-inst) regions hydrated"
	amber status it-inst | sed 's/^/bench-log: /'
	umount "$IN_MNT"
	instant_down it-inst
	log "instant ${gib}g: target $(dmsetup status "it-t$gib" | xargs)"
}

# restore_copy plain|instant: the 1 GiB chain restored to the wiped 1 GiB
# target, plainly or instantly until the device is linear, as MB/s of the
# image: instant.copy.<how>. The instant one then reads as read_lat
# "linear" (the restored device) and is removed.
restore_copy() {
	local how=$1 t0 ms target
	target=$(dm_dev it-t1)
	scratch_wipe "$target"
	t0=$(now_ns)
	if [ "$how" = plain ]; then
		amber restore "$IN_BK/1g.amb" --to "$target" >/dev/null
	else
		instant_up it-inst 1 "$target"
		wait_linear it-inst
	fi
	ms=$(ms_since "$t0")
	sample "instant.copy.$how" "$(mbps $((1024 * MiB)) "$ms")"
	[ "$how" = plain ] && return 0
	amber status it-inst | sed 's/^/bench-log: /'
	mount_restored it-inst
	read_lat linear
	umount "$IN_MNT"
	instant_down it-inst
}

# copy_bounds: what bounds the background copy, which moves every byte of
# the image (dm-clone cannot tell a zero chunk), in 64 KiB requests 32 at
# a time as dm-clone's hydration issues them: reading the chain through
# its server (amber mount) over the image's second half (past the files:
# zero chunks, as 94 % of the image is), and writing the target (256 MiB):
# MB/s, instant.bound.source_read and .target_write.
copy_bounds() {
	amber mount "$IN_BK/1g.amb" --name it-mnt >/dev/null
	value instant.bound.source_read "$(fio_mbps --filename="$(dm_dev it-mnt)" --rw=read \
		--bs=64k --iodepth=32 --offset=50%)"
	amber umount it-mnt
	scratch_wipe "$(dm_dev it-t1)"
	value instant.bound.target_write "$(fio_mbps --filename="$(dm_dev it-t1)" --rw=write \
		--bs=64k --iodepth=32 --size=256M --end_fsync=1)"
}

# read_lat <tag>: IN_READS random 4 KiB O_DIRECT reads, one at a time, of
# the files on IN_MNT (data chunks; the same offsets every time: fio's
# fixed seed); each latency in ms a sample instant.read_ms.<tag>.
read_lat() {
	rm -f "$W"/it-read_*.log
	fio --name=r --opendir="$IN_MNT" --ioengine=psync --direct=1 --rw=randread --bs=4k \
		--file_service_type=random --io_size=$((IN_READS * 4))k \
		--write_lat_log="$W/it-read" --log_avg_msec=0 --output=/dev/null
	awk -F', *' '{ printf "%.3f\n", $2 / 1e6 }' "$W/it-read_lat.1.log" |
		while read -r v; do sample "instant.read_ms.$1" "$v"; done
}

# chunks_verified <name>: the chunks its server has read and verified
# (after 1.2 s, so that its status holds what came before).
chunks_verified() {
	sleep 1.2
	server_field "$1" chunks_verified
}

# on_demand_reads: an instant restore of the 1 GiB chain whose background
# copy is paused as soon as it returns (it copies in disk order and has not
# reached the files, past ext4's inode tables), read as read_lat "source".
# Each read must have gone to the server, which fetched and verified its
# chunk: the server's count of chunks grows by about one a read.
on_demand_reads() {
	local n0 n
	scratch_wipe "$(dm_dev it-t1)"
	instant_up it-inst 1 "$(dm_dev it-t1)"
	dmsetup message it-inst 0 disable_hydration
	mount_restored it-inst
	n0=$(chunks_verified it-inst)
	read_lat source
	n=$(($(chunks_verified it-inst) - n0))
	log "instant: $IN_READS on-demand reads fetched $n chunks; $(clone_hydrated it-inst) regions hydrated"
	[ "$n" -ge $((IN_READS * 9 / 10)) ]
	umount "$IN_MNT"
	instant_down it-inst
}

# Instant restore (issue 16): sparse ext4 volumes of 1 and 16 GiB holding
# the same files, each backed up; the time from `amber restore --instant`
# to a first query (mount, read a file) on each, alternated; the
# background copy against a plain restore of the 1 GiB chain, alternated;
# the latency of reads served by the server against the restored device.
phase_instant() {
	local r gib how
	if ! modprobe dm-clone || ! modprobe nbd; then
		skip "dm-clone or nbd is not available"
	fi
	instant_disks
	for gib in $IN_SIZES; do
		instant_source "$gib"
	done
	for ((r = 0; r < IN_REPS; r++)); do
		for gib in $(rotate "$r" $IN_SIZES); do
			ttfq "$gib"
		done
	done
	sparse_remove it-t16
	for ((r = 0; r < IN_REPS; r++)); do
		for how in $(rotate "$r" plain instant); do
			restore_copy "$how"
		done
	done
	copy_bounds
	on_demand_reads
	umount "$IN_BK"
	dm_remove it-t1
	dm_remove it-scow
	dm_remove it-bkfs
}

# big_origin <name> <GiB>: the first GiB of the origin disk, then dm-zero.
big_origin() {
	local t="0 2097152 linear $ORIGIN 0"
	[ "$2" -gt 1 ] && t="$t
2097152 $((($2 - 1) * 2097152)) zero"
	dm_create "$1" "$t"
}

# Kernel memory per TiB of origin at the default chunk size (64 KiB), on a
# 4 TiB volume (1 GiB of disk, the rest dm-zero): with the table live and
# no snapshot (at rest), with a snapshot whose backup has released chunks
# (during a backup), and an inactive table of the same volume loaded beside
# the live one (what a reload holds twice), then resumed in its place.
memory_per_tib() {
	local tib=4 m0 m1 t
	big_origin mem-ot $((tib * 1024))
	m0=$(mem_now)
	amber_dev memt "$(dm_dev mem-ot)" "$STORE2" 65536
	m1=$(mem_now)
	value memory.per_tib.rest_bytes "$(mem_delta "$m0" "$m1" | awk -v t=$tib '{ print $1 / t }')"
	snap memt
	amber_msg memt release 0 65536
	amber_msg memt release $((tib * 16 * 1048576 - 65536)) 65536
	m1=$(mem_now)
	value memory.per_tib.backup_bytes "$(mem_delta "$m0" "$m1" | awk -v t=$tib '{ print $1 / t }')"
	drop memt
	t=$(dmsetup table memt)
	m0=$(mem_now)
	dmsetup load memt --table "$t"
	m1=$(mem_now)
	value memory.per_tib.reload_inactive_bytes "$(mem_delta "$m0" "$m1" | awk -v t=$tib '{ print $1 / t }')"
	dmsetup resume memt
	m1=$(mem_now)
	value memory.per_tib.after_reload_bytes "$(mem_delta "$m0" "$m1" | awk -v t=$tib '{ print $1 / t }')"
	dm_remove memt
	dm_remove mem-ot
}

# Kernel memory: per tracked chunk (a 1 GiB and a 16 GiB volume of 4 KiB
# chunks), per copied chunk (MEM_N random first writes), and per dm-snapshot
# exception for comparison.
phase_memory() {
	local m0 m1 d1 d16 c0 c1 n
	big_origin mem-o16 16
	m0=$(mem_now)
	amber_dev mem16 "$(dm_dev mem-o16)" "$STORE2" 4096
	m1=$(mem_now)
	d16=$(mem_delta "$m0" "$m1")
	dm_remove mem16
	dm_remove mem-o16

	m0=$(mem_now)
	amber_dev mem1 "$ORIGIN" "$STORE2" 4096
	m1=$(mem_now)
	d1=$(mem_delta "$m0" "$m1")
	value memory.volume_1g.slab_vmalloc_bytes "${d1%% *}"
	value memory.volume_16g.slab_vmalloc_bytes "${d16%% *}"
	value memory.volume_1g.memfree_bytes "$(cut -d' ' -f2 <<<"$d1")"
	value memory.volume_16g.memfree_bytes "$(cut -d' ' -f2 <<<"$d16")"
	value memory.per_tracked_chunk_bytes "$(awk -v a="${d1%% *}" -v b="${d16%% *}" \
		'BEGIN { printf "%.3f\n", (b - a) / (4194304 - 262144) }')"

	iolog "$W/mem.log" "$MEM_N" 4096 $((1024 * MiB)) 5
	snap mem1
	c0=$(mem_now)
	replay_iops "$(dm_dev mem1)" "$W/mem.log" "$MEM_N" >/dev/null
	c1=$(mem_now)
	n=$(amber_field mem1 copied)
	value memory.copied_chunks "$n"
	value memory.per_copied_chunk_bytes "$(mem_delta "$c0" "$c1" | awk -v n="$n" '{ printf "%.1f\n", $1 / n }')"
	value memory.per_copied_chunk_radix_bytes "$(mem_delta "$c0" "$c1" | awk -v n="$n" '{ printf "%.1f\n", $3 / n }')"
	drop mem1
	c1=$(mem_now)
	value memory.after_drop_slab_vmalloc_bytes "$(mem_delta "$c0" "$c1" | cut -d' ' -f1)"
	dm_remove mem1

	memory_per_tib

	dm_create so "0 $(sectors "$ORIGIN") snapshot-origin $ORIGIN"
	dmsnap_take so dsnap "$ORIGIN" "$COW" 8
	c0=$(mem_now)
	replay_iops "$(dm_dev so)" "$W/mem.log" "$MEM_N" >/dev/null
	c1=$(mem_now)
	value memory.dmsnap_per_exception_bytes "$(mem_delta "$c0" "$c1" | awk -v n="$MEM_N" '{ printf "%.1f\n", $1 / n }')"
	dm_remove dsnap
	dm_remove so
}

# Scale: the same 256 MiB of writes on 1, 4 and 16 GiB volumes of 4 KiB
# chunks (the rest dm-zero): pass-through against dm-linear over the same
# origin, and the barrier's time, idle and under a random-write load.
phase_scale() {
	local gib k v fpid
	for gib in 1 4 16; do
		big_origin sc-o "$gib"
		amber_dev sc "$(dm_dev sc-o)" "$STORE2" 4096
		linear_dev sc-l "$(dm_dev sc-o)"
		fill "$(dm_dev sc)" $SC_REGION
		REGION=$SC_REGION alternate "scale.${gib}g.rw4k" rw4k $((PAIRS / 2)) sc-l sc
		benchsnap amber sc 3 400 200 | awk '{ printf "%s %.3f\n", $1, ($3 - $2) / 1e6 }' |
			while read -r k v; do sample "scale.${gib}g.idle_$k" "$v"; done
		# Under load: the snap message's time and the longest write
		# latency in its window (see phase_stall).
		rm -f "$W"/scale_*.log
		fio --name=b --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=8 \
			--filename="$(dm_dev sc)" --size=${SC_REGION}M --time_based --runtime=8 \
			--write_lat_log="$W/scale" --log_avg_msec=0 --log_unix_epoch=1 \
			--output=/dev/null &
		fpid=$!
		sleep 1.5
		benchsnap amber sc 5 1000 400 >"$W/scale.win"
		wait "$fpid"
		awk '{ printf "%s %.3f\n", $1, ($3 - $2) / 1e6 }' "$W/scale.win" |
			while read -r k v; do sample "scale.${gib}g.load_$k" "$v"; done
		lat_report "$W/scale_lat.1.log" "$W/scale.win" |
			grep -E '^(snap_stall_med|snap_stall_max|drop_stall_med|p50) ' |
			while read -r k v; do sample "scale.${gib}g.load_$k" "$v"; done
		dm_remove sc-l
		dm_remove sc
		dm_remove sc-o
	done
}

# Experiments only (bench/exp): run on the variant module dm-amber-x
# (installed with vmtest.sh -m) instead of dm-amber, and back.
phase_xload() {
	rmmod dm_amber
	insmod "/lib/modules/$(uname -r)/extra/dm-amber-x.ko"
	value xmodule.params "$(grep -H . /sys/module/dm_amber_x/parameters/* | xargs)"
}

phase_xunload() {
	rmmod dm_amber_x
	modprobe dm-amber
}

# phase <name> [args]: one KTAP result; whatever it leaves is removed.
run_phase() {
	local t0
	t0=$(now_ns)
	cleanup_devs
	"phase_$1" "${@:2}"
	cleanup_devs
	log "phase $* took $(($(ms_since "$t0") / 1000)) s"
}

phase() {
	ktap_step "$*" run_phase "$@"
	cleanup_devs
}

ktap_print_header
read -r -a phases <<<"$PHASES"
ktap_set_plan ${#phases[@]}
value kernel "$(uname -r)"
value config.slice "$SLICE"
value config.pairs "$PAIRS"
value config.reps "$REPS"
value config.quick "$QUICK"
t_all=$(now_ns)
for p in "${phases[@]}"; do
	phase "$p"
done
value total_seconds $(($(ms_since "$t_all") / 1000))
ktap_finished
