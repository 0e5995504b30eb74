// SPDX-License-Identifier: GPL-2.0
/*
 * The locks on a snapshot's chunks, one API for view reads, copies,
 * releases and the snapshot's end:
 *
 *   shared     a view read holds the chunks it covers, from its map to its
 *              end_io (amber_reads_lock() .. amber_reads_unlock());
 *   exclusive  a copy holds its chunk, from its claim to its end
 *              (amber_chunk_lock_copy() .. amber_chunk_unlock_copy()): its
 *              index entry, on which every write to the chunk waits;
 *   all        the snapshot's end holds every chunk at once: it moves the
 *              generation (amber_snapshot_end_active()), which fails the
 *              view reads that saw another one.
 *
 * Shared holds. A view read counts itself in the hash bucket of each of its
 * chunks (s->reads[]), and once in s->view_reads, before it looks where a
 * chunk comes from (view.c). While it does:
 *   - a write to one of its chunks, which would overwrite what the read may
 *     still be reading on the origin, waits on the volume's deferred list
 *     (cow.c), which the read's end kicks; so do a copy's writes when the
 *     copy ends;
 *   - a release of one of its chunks keeps the chunk's slot, which the read
 *     may still be reading on the store, until the read has ended;
 *   - a drop, and the snapshot's last put, wait for every read, lest one
 *     read a slot the next snapshot reuses.
 * The count and the look pair up like the gate (gate.c): a read counts,
 * then looks at the index; a write or a release changes the index, then
 * looks at the count, each with a full barrier in between. Buckets are
 * shared by unrelated chunks, so a chunk may look held when it is not; never
 * the other way round.
 *
 * Exclusive holds. A copy takes its chunk under s->lock with an index entry
 * reserved before it, so taking it allocates nothing; a later write to the
 * chunk finds the copy (amber_chunk_copy()) and waits on its list. The hold
 * can be taken from the copy while it runs (a release, a drop, the
 * snapshot's end erase its entry): its end then changes nothing, and frees
 * only its slot.
 *
 * The generation. A snapshot that ends while a view read is in flight does
 * not wait for it: writes then pass straight to the origin and may overtake
 * the read, which must fail rather than return what they wrote. The
 * generation is odd while the state changes: a read that starts then fails
 * at once, one that started before fails in its end_io, which finds another
 * generation. A release that let go of s->lock checks it too: the snapshot
 * may have been dropped and taken again meanwhile.
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

/* The copy that holds @c, or NULL. Under s->lock, or as a first look. */
struct amber_copy *amber_chunk_copy(struct amber_snapshot *s, chunk_t c)
{
	return amber_entry_copy(xa_load(&s->index, c));
}

/*
 * @copy holds untouched chunk @c from now on: writes to @c wait for it.
 * The index entry was reserved before the lock, so this allocates nothing;
 * -ENOMEM when the reservation had failed.
 */
int amber_chunk_lock_copy(struct amber_snapshot *s, chunk_t c,
			  struct amber_copy *copy)
{
	lockdep_assert_held(&s->lock);
	return xa_err(xa_store(&s->index, c, copy, GFP_NOWAIT));
}

/*
 * The copy of @c ended: @c maps to store slot @slot from now on, or, when
 * @slot is negative (the copy failed), to the origin. False when @copy had
 * lost its hold meanwhile (amber_chunk_copy() no longer finds it): nothing
 * changes then.
 */
bool amber_chunk_unlock_copy(struct amber_snapshot *s, chunk_t c,
			     struct amber_copy *copy, s64 slot)
{
	lockdep_assert_held(&s->lock);
	if (xa_load(&s->index, c) != copy)
		return false;
	if (slot < 0)
		xa_erase(&s->index, c);
	else	/* Replacing an entry allocates nothing. */
		xa_store(&s->index, c, xa_mk_value(slot), GFP_NOWAIT);
	return true;
}

/*
 * The snapshot stops being active, for @state: every chunk's view reads in
 * flight will fail (amber_snapshot_gen_moved()), every new one fails at
 * once until the state has changed.
 */
void amber_snapshot_end_active(struct amber_snapshot *s,
			       enum amber_snap_state state)
{
	lockdep_assert_held(&s->lock);
	WRITE_ONCE(s->view_gen, s->view_gen + 1);
	smp_wmb();	/* pairs with amber_snapshot_gen() */
	WRITE_ONCE(s->state, state);
	smp_wmb();	/* the state, then the even generation */
	WRITE_ONCE(s->view_gen, s->view_gen + 1);
}

/*
 * The generation, for a view read that has taken its shared hold, or a
 * release under s->lock; amber_gen_ending() when the state is changing.
 * The state read after it goes with it.
 */
unsigned int amber_snapshot_gen(struct amber_snapshot *s)
{
	unsigned int gen = READ_ONCE(s->view_gen);

	smp_rmb();	/* the generation, then the state it goes with */
	return gen;
}

/* The snapshot ended (and may have started again) since generation @gen. */
bool amber_snapshot_gen_moved(struct amber_snapshot *s, unsigned int gen)
{
	smp_rmb();	/* what was read under @gen, then the generation */
	return READ_ONCE(s->view_gen) != gen;
}
