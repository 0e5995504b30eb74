#!/usr/bin/env bash
# An experiment on the module's I/O path, for docs/PERFORMANCE.md: the
# copy-on-write and barrier phases of make bench on dm-amber-x, a copy of
# module/ with module-x.patch applied, whose parameters switch candidate
# changes on and off at run time (all off: the module as it is):
#
#   prefetch  start a chunk's copy while its write waits for the change
#             map, instead of after (the two overlap)
#   late_sb   write the superblock of a new epoch after the gates open
#             (before the first write of the epoch passes, and before
#             the snap message returns), not while they are closed
#   sb_fua    write the superblock with FUA only, no preflush
#   commit_delay  wait commit_delay_us (1000) before taking a group commit's
#             batch, so that more writes share its map write and flush
#   nocbt     no write intent at all (attribution only: breaks tracking)
#
# Read-only counters n_commits and n_batched give the writes per group
# commit (cow.<chunk>.<config>.batch in the results).
#
#   bench/exp/run.sh [6.1|6.12]        default 6.1
#
# Configurations alternate within one VM run (amb = knobs off,
# amb+prefetch, ...); results in build/bench/results/<kernel>.json and the
# table of medians on stdout.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
k=${1:-6.1}
src=$top/build/bench-exp/module-x

rm -rf "$src"
mkdir -p "$(dirname "$src")"
cp -r module "$src"
(cd "$src" && rm -f ./*.o ./*.ko ./*.mod ./*.mod.c .*.cmd modules.order Module.symvers &&
	patch -s -p1 <"$top/bench/exp/module-x.patch")
scripts/build-kmod.sh "$(scripts/kernels.sh "$k" kdir)" "$src" >/dev/null

BENCH_RUN=${BENCH_RUN:-bench-exp} \
BENCH_PHASES=${BENCH_PHASES:-pretouch xload cow64k cow4k stall xunload} \
BENCH_COW_CFGS=${BENCH_COW_CFGS:-lin amb dms amb+prefetch amb+commit_delay amb+prefetch+commit_delay amb+nocbt} \
BENCH_STALL_CFGS=${BENCH_STALL_CFGS:-amb amb+late_sb amb+late_sb+prefetch dms amb amb+late_sb amb+late_sb+prefetch dms} \
BENCH_MODULES="$top/build/@release@/module-x/dm-amber-x.ko" \
	scripts/bench.sh "$k" >/dev/null || true

python3 - "$top/build/bench/results/$k.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
m = r['medians']
print(f"experiment on {r['kernel']}: medians (IOPS; stall figures in ms)")
for key in sorted(m):
    if key.startswith(('cow.', 'stall.')) and not key.endswith(('_p50', '.ios')):
        n = len(r['samples'][key])
        print(f"  {key:44} {m[key]:10.2f}   ({n} samples)")
EOF
