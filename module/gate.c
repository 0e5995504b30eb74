// SPDX-License-Identifier: GPL-2.0
/*
 * The commit barrier.
 *
 * Every write that passes the gate holds a count in ->inflight until its
 * end_io. The gate and the count pair up like Dekker's flags: a writer
 * increments ->inflight and then reads ->gate_closed; the barrier sets
 * ->gate_closed and then reads ->inflight, each with a full barrier in
 * between. Either the writer sees the gate closed and backs out onto
 * ->gated, or the barrier sees the write and waits for it: no write can be
 * half in the old epoch and half in the new one. Reads never touch the gate.
 */
#include <linux/sched/signal.h>
#include "amber.h"
#include "cbt.h"

void amber_gate_exit(struct amber_volume *v)
{
	/* atomic_dec_and_test() is a full barrier, pairing with the close. */
	if (atomic_dec_and_test(&v->inflight) && READ_ONCE(v->gate_closed))
		wake_up(&v->drain_wq);
}

/*
 * Take an in-flight count for @bio. False when the gate is closed: the
 * caller may trim @bio and must then call amber_gate_defer().
 */
bool amber_gate_enter(struct amber_volume *v, struct bio *bio)
{
	struct amber_bio *pb = dm_per_bio_data(bio, sizeof(*pb));

	atomic_inc(&v->inflight);
	/* Count, then look at the gate: pairs with amber_gate_close(). */
	smp_mb__after_atomic();
	if (likely(!READ_ONCE(v->gate_closed))) {
		pb->counted = true;
		return true;
	}
	amber_gate_exit(v);
	return false;
}

/*
 * Park @bio until the gate opens. False when the gate opened meanwhile: the
 * caller tries amber_gate_enter() again. A REQ_NOWAIT write is failed with
 * EAGAIN instead of waiting.
 */
bool amber_gate_defer(struct amber_volume *v, struct bio *bio)
{
	unsigned long flags;

	spin_lock_irqsave(&v->lock, flags);
	if (!v->gate_closed) {
		spin_unlock_irqrestore(&v->lock, flags);
		return false;
	}
	if (bio->bi_opf & REQ_NOWAIT) {
		spin_unlock_irqrestore(&v->lock, flags);
		bio_wouldblock_error(bio);
		return true;
	}
	bio_list_add(&v->gated, bio);
	spin_unlock_irqrestore(&v->lock, flags);
	atomic64_inc(&v->waited);
	return true;
}

static void amber_gate_close(struct amber_volume *v)
{
	spin_lock_irq(&v->lock);
	WRITE_ONCE(v->gate_closed, true);
	spin_unlock_irq(&v->lock);
	/* Pairs with smp_mb__after_atomic() in amber_gate_enter(). */
	smp_mb();
}

/* Open the gate and send the parked writes on, in the new epoch. */
static void amber_gate_open(struct amber_volume *v)
{
	struct bio_list parked;
	struct bio *bio;

	spin_lock_irq(&v->lock);
	WRITE_ONCE(v->gate_closed, false);
	parked = v->gated;
	bio_list_init(&v->gated);
	spin_unlock_irq(&v->lock);

	while ((bio = bio_list_pop(&parked)))
		amber_write_restart(v, bio);
}

static int amber_gate_drain(struct amber_volume *v, unsigned long deadline)
{
	long left = (long)(deadline - jiffies);
	long r;

	if (left <= 0)
		left = 1;
	r = wait_event_killable_timeout(v->drain_wq,
					!atomic_read(&v->inflight), left);
	if (r < 0)
		return r;
	return r ? 0 : -ETIMEDOUT;
}

static unsigned int amber_drain_bound(struct amber_volume **vols,
				      unsigned int count,
				      unsigned int timeout_ms)
{
	unsigned int i;

	if (timeout_ms)
		return timeout_ms;
	for (i = 0; i < count; i++)
		timeout_ms = max(timeout_ms, vols[i]->drain_timeout_ms);
	return timeout_ms;
}

/*
 * Raise one barrier over @count volumes: close every gate, drain every
 * volume, cut every epoch, open every gate. If a volume cannot start a
 * snapshot or does not drain in time (or the caller is killed), no epoch is
 * cut and every gate opens again. The gates are never left closed.
 */
int amber_barrier(struct amber_volume **vols, unsigned int count,
		  unsigned int timeout_ms, u64 *epochs)
{
	unsigned long deadline;
	unsigned int i;
	int r = 0;

	lockdep_assert_held(&amber_registry_lock);

	for (i = 0; i < count && !r; i++)
		r = amber_cow_can_start(vols[i]);
	if (r)
		return r;
	for (i = 0; i < count; i++)
		amber_cbt_prepare_cut(vols[i]->cbt);

	deadline = jiffies + msecs_to_jiffies(amber_drain_bound(vols, count,
								timeout_ms));
	for (i = 0; i < count; i++)
		amber_gate_close(vols[i]);
	for (i = 0; i < count && !r; i++)
		r = amber_gate_drain(vols[i], deadline);
	if (!r) {
		for (i = 0; i < count; i++) {
			epochs[i] = amber_cbt_epoch(vols[i]->cbt) + 1;
			amber_cbt_cut(vols[i]->cbt, epochs[i]);
			amber_cow_start(vols[i], epochs[i]);
		}
	}
	for (i = 0; i < count; i++)
		amber_gate_open(vols[i]);

	if (r == -ETIMEDOUT)
		DMWARN("barrier: writes did not drain in time, nothing cut");
	return r;
}
