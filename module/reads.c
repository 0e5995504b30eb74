// SPDX-License-Identifier: GPL-2.0
/*
 * The view reads in flight, by chunk: the one lock on a snapshot's chunks
 * that view reads, copies, releases and the snapshot's end share.
 *
 * A view read holds its chunks from its map to its end_io: it counts itself
 * in the hash bucket of each (s->reads[]), and once in s->view_reads, before
 * it looks where a chunk comes from (view.c). While it does:
 *   - a write to one of its chunks, which would overwrite what the read may
 *     still be reading on the origin, waits on the volume's deferred list
 *     (cow.c), which the read's end kicks; so do a copy's writes when the
 *     copy ends;
 *   - a release of one of its chunks keeps the chunk's slot, which the read
 *     may still be reading on the store, until the read has ended;
 *   - a drop, and the snapshot's last put, wait for every read, lest one
 *     read a slot the next snapshot reuses.
 * A snapshot that ends while a read is in flight does not wait for it: the
 * read fails in its end_io instead (the view generation, cow.c).
 *
 * The count and the look pair up like the gate (gate.c): a read counts,
 * then looks at the index; a write or a release changes the index, then
 * looks at the count, each with a full barrier in between. Buckets are
 * shared by unrelated chunks, so a chunk may look held when it is not; never
 * the other way round.
 */
#include "amber.h"

static void amber_reads_count(struct amber_snapshot *s, chunk_t first,
			      unsigned int nr, int delta)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		atomic_add(delta, amber_read_bucket(s, first + i));
}

/* A view read holds chunks [@first, @first + @nr) of @s from now on. */
void amber_reads_lock(struct amber_snapshot *s, chunk_t first, unsigned int nr)
{
	atomic_inc(&s->view_reads);
	amber_reads_count(s, first, nr, 1);
	/* Count, then look: pairs with amber_chunk_read_locked(). */
	smp_mb__after_atomic();
}

/*
 * The read that held chunks [@first, @first + @nr) was trimmed to its first
 * chunk: it holds only @first from now on.
 */
void amber_reads_trim(struct amber_snapshot *s, chunk_t first, unsigned int nr)
{
	amber_reads_count(s, first + 1, nr - 1, -1);
}

/*
 * The view read that held chunks [@first, @first + @nr) of @s ended: the
 * writes and releases that wait for it look again.
 */
void amber_reads_unlock(struct amber_snapshot *s, chunk_t first,
			unsigned int nr)
{
	/*
	 * Once its count is zero the last table of @s may free it
	 * (amber_snapshot_put()): the RCU read section keeps it until the
	 * wake-ups below are done.
	 */
	rcu_read_lock();
	/* The read is done before it stops counting. */
	smp_mb__before_atomic();
	amber_reads_count(s, first, nr, -1);
	atomic_dec(&s->view_reads);
	/* Uncount, then look for waiters: pairs with the deferred writes. */
	smp_mb__after_atomic();
	amber_snapshot_read_ended(s);
	if (wq_has_sleeper(&s->reads_wq))
		wake_up(&s->reads_wq);
	rcu_read_unlock();
}

/*
 * A view read may hold @c: after the caller changed what a read of @c
 * would look at (the index, the released chunks, a write parked).
 */
bool amber_chunk_read_locked(struct amber_snapshot *s, chunk_t c)
{
	smp_mb();	/* pairs with amber_reads_lock() */
	return atomic_read(amber_read_bucket(s, c));
}

/* Wait until no view read holds @c; -ERESTARTSYS when killed. */
int amber_chunk_wait_reads(struct amber_snapshot *s, chunk_t c)
{
	return wait_event_killable(s->reads_wq, !amber_chunk_read_locked(s, c));
}

/* Wait until no view read holds any chunk of @s. */
void amber_reads_wait_all(struct amber_snapshot *s)
{
	wait_event(s->reads_wq, !atomic_read(&s->view_reads));
}
