// SPDX-License-Identifier: GPL-2.0
/*
 * Where the writes held by a barrier spend their time: the barrier's own
 * steps (gate.c) and, for each stage a write may wait at, how many waited
 * since the last barrier, for how long in total and at most. Read with the
 * "stats" message; make bench reads it around each barrier it times.
 *
 * A write that waits is stamped as it is parked, before any other context
 * can see it on a list, and accounted when it is taken off to go on: the
 * stamp lives in the per-bio data, so the fast path costs nothing.
 */
#include <linux/ktime.h>
#include "amber.h"

static const char * const amber_stage_names[AMBER_NR_STAGES] = {
	[AMBER_STAGE_GATE] = "gate",
	[AMBER_STAGE_INTENT] = "intent",
	[AMBER_STAGE_COPY] = "copy",
	[AMBER_STAGE_READERS] = "readers",
	[AMBER_STAGE_SLOT] = "slot",
};

static const char * const amber_step_names[AMBER_NR_STEPS] = {
	[AMBER_STEP_PREPARE] = "prepare",
	[AMBER_STEP_DRAIN] = "drain",
	[AMBER_STEP_FLUSH_CLOSED] = "flush_closed",
	[AMBER_STEP_RECORD] = "record",
	[AMBER_STEP_CLOSED] = "closed",
};

/* @bio, a write of the amber target, is parked at @stage. */
void amber_wait_begin(struct bio *bio, enum amber_stage stage)
{
	struct amber_bio *pb = dm_per_bio_data(bio, sizeof(*pb));

	pb->stage = stage;
	pb->waiting_since = ktime_get_ns();
}

static void amber_stat_max(atomic64_t *max, s64 ns)
{
	s64 old = atomic64_read(max);

	while (old < ns && !atomic64_try_cmpxchg(max, &old, ns))
		;
}

/* @bio is taken off the list it waited on; a no-op if it did not wait. */
void amber_wait_end(struct amber_volume *v, struct bio *bio)
{
	struct amber_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	struct amber_wait_stat *st;
	s64 ns;

	if (pb->stage == AMBER_NR_STAGES)
		return;
	st = &v->waits[pb->stage];
	ns = ktime_get_ns() - pb->waiting_since;
	pb->stage = AMBER_NR_STAGES;
	atomic64_inc(&st->count);
	atomic64_add(ns, &st->total_ns);
	amber_stat_max(&st->max_ns, ns);
}

/* A barrier starts: what follows is its. */
void amber_stats_reset(struct amber_volume *v)
{
	unsigned int i;

	lockdep_assert_held(&amber_registry_lock);
	for (i = 0; i < AMBER_NR_STAGES; i++) {
		atomic64_set(&v->waits[i].count, 0);
		atomic64_set(&v->waits[i].total_ns, 0);
		atomic64_set(&v->waits[i].max_ns, 0);
	}
	atomic64_set(&v->copied_ahead, 0);
	memset(v->barrier_ns, 0, sizeof(v->barrier_ns));
}

/*
 * The "stats" message's answer, one line, times in microseconds:
 *   prepare=<us> drain=<us> flush_closed=<us> record=<us> closed=<us>
 *   gate=<n>/<max>/<total> intent=... copy=... readers=... slot=...
 *   ahead=<n>
 * the last barrier's steps (0: not reached), then for each stage the
 * writes that waited there since that barrier: how many, the longest
 * wait, all the waits together; then the copies started ahead of their
 * write, while it waited for its intent or at a barrier's closed gate.
 */
int amber_stats_emit(struct amber_volume *v, char *result,
		     unsigned int maxlen)
{
	unsigned int sz = 0, i;

	lockdep_assert_held(&amber_registry_lock);
	for (i = 0; i < AMBER_NR_STEPS; i++)
		DMEMIT("%s%s=%llu", i ? " " : "", amber_step_names[i],
		       div_u64(v->barrier_ns[i], NSEC_PER_USEC));
	for (i = 0; i < AMBER_NR_STAGES; i++)
		DMEMIT(" %s=%lld/%llu/%llu", amber_stage_names[i],
		       atomic64_read(&v->waits[i].count),
		       div_u64(atomic64_read(&v->waits[i].max_ns), NSEC_PER_USEC),
		       div_u64(atomic64_read(&v->waits[i].total_ns), NSEC_PER_USEC));
	DMEMIT(" ahead=%lld", atomic64_read(&v->copied_ahead));
	return 1;	/* the result is in @result */
}
