// SPDX-License-Identifier: GPL-2.0
/*
 * Copy-on-write into the bounded store.
 *
 * While a snapshot is active, s->index maps each chunk that is being copied
 * to its struct amber_copy, which holds the chunk's lock (chunks.c), and
 * each copied chunk to its slot (an xarray value entry). A chunk in
 * s->released has been streamed by the backup: no copy, no slot. Everything
 * else is untouched: its first write allocates a slot and copies the chunk
 * with kcopyd, and only then goes to the origin.
 *
 * The view reads chunks without s->lock: a view read takes its chunks'
 * shared lock first (chunks.c), then looks at s->released and s->index.
 * Whoever changes what a chunk's view reads come from looks at the lock
 * after the change (again with a full barrier in between), and waits while
 * a read holds it: a copy holds its writes back, a release holds back the
 * reuse of the slot. So a view read never sees data written after the
 * barrier, nor a slot that has been given to another chunk.
 *
 * struct amber_snapshot (amber.h) holds all of that, apart from the tables:
 * a reload shares it, so the rules above hold across tables as they do
 * within one. A table's own part is its kcopyd client, its copy pool and
 * the lists where its writes wait.
 */
#include <linux/mempool.h>
#include <linux/slab.h>
#include "amber.h"
#include "store.h"

#define AMBER_MIN_COPIES	64

struct amber_copy {
	struct amber_volume *v;
	chunk_t chunk;
	u64 slot;
	int error;
	struct bio_list bios;		/* writes waiting for this copy */
	struct list_head done;		/* on v->copies_done */
	struct list_head inflight;	/* on v->copies_inflight, by start */
	unsigned long started;		/* jiffies */
};

static struct kmem_cache *amber_copy_cache;

const char *amber_reason_name(enum amber_invalid_reason reason)
{
	switch (reason) {
	case AMBER_REASON_STORE_FULL:
		return "store_full";
	case AMBER_REASON_BLOCK_TIMEOUT:
		return "block_timeout";
	case AMBER_REASON_STORE_IO_ERROR:
		return "store_io_error";
	case AMBER_REASON_ORIGIN_IO_ERROR:
		return "origin_io_error";
	case AMBER_REASON_NO_MEMORY:
		return "no_memory";
	default:
		return "-";
	}
}

/*
 * A write to @c that waited (for a copy or a view read) must wait for the
 * view reads of @c. Not once the snapshot has ended: a read still in flight
 * fails in its end_io (view.c), however long it takes, say on a store that
 * no longer answers.
 */
static bool amber_write_waits_for_readers(struct amber_snapshot *s, chunk_t c)
{
	return READ_ONCE(s->state) == AMBER_SNAP_ACTIVE &&
	       amber_chunk_read_locked(s, c);
}

/* Kick the table whose writes wait in @s, if there is one. */
void amber_snapshot_kick(struct amber_snapshot *s)
{
	struct amber_volume *owner;

	rcu_read_lock();
	owner = rcu_dereference(s->owner);
	if (owner)
		amber_kick(owner);
	rcu_read_unlock();
}

/*
 * A view read counted in @s ended, through whichever table: the owner's
 * writes parked for view reads look again. After the read stopped counting
 * (a full barrier in between: amber_reads_unlock()).
 */
void amber_snapshot_read_ended(struct amber_snapshot *s)
{
	struct amber_volume *owner;

	rcu_read_lock();
	owner = rcu_dereference(s->owner);
	if (owner && atomic_read(&owner->readers_wanted))
		amber_kick(owner);
	rcu_read_unlock();
}

static s64 amber_slot_alloc(struct amber_snapshot *s)
{
	u64 slot;

	lockdep_assert_held(&s->lock);
	slot = find_next_zero_bit(s->slots, s->nr_slots, s->slot_rotor);
	if (slot >= s->nr_slots)
		slot = find_first_zero_bit(s->slots, s->nr_slots);
	if (slot >= s->nr_slots)
		return -ENOSPC;
	__set_bit(slot, s->slots);
	s->slot_rotor = slot + 1;
	s->slots_used++;
	return slot;
}

static void amber_slot_free(struct amber_snapshot *s, u64 slot)
{
	lockdep_assert_held(&s->lock);
	__clear_bit(slot, s->slots);
	s->slots_used--;
	s->blocked_since = jiffies;
}

/*
 * Park @bio, stamped with the stage it waits at (amber_wait_begin()), on
 * ->deferred for the worker to look at again (amber_cow_worker()).
 */
static void amber_defer_locked(struct amber_volume *v, struct bio *bio)
{
	struct amber_bio *pb = dm_per_bio_data(bio, sizeof(*pb));

	lockdep_assert_held(&v->lock);
	bio_list_add(&v->deferred, bio);
	if (pb->stage == AMBER_STAGE_SLOT)
		v->slot_waiters++;
	if (pb->stage != AMBER_STAGE_READERS)
		v->rewrites++;
}

/*
 * A copy in flight is no longer needed (the snapshot ended): the writes
 * that wait for it need not wait for kcopyd, which may be waiting for a
 * store that no longer answers. They go back to their table's worker,
 * which finds no snapshot and sends them on; the copy keeps its slot
 * until kcopyd is done with it and writes only there.
 */
static void amber_copy_abandon(struct amber_copy *copy)
{
	struct amber_volume *v = copy->v;
	struct bio *bio;

	spin_lock_irq(&v->lock);
	while ((bio = bio_list_pop(&copy->bios)))
		amber_defer_locked(v, bio);
	spin_unlock_irq(&v->lock);
	amber_kick(v);
}

/*
 * Forget every copied chunk and free its slot. A copy still in flight
 * loses its chunk's lock too, and keeps its slot until kcopyd is done with
 * it.
 */
static void amber_cow_clear(struct amber_snapshot *s)
{
	unsigned long c;
	void *entry;

	lockdep_assert_held(&s->lock);
	xa_for_each(&s->index, c, entry) {
		xa_erase(&s->index, c);
		if (xa_is_value(entry))
			amber_slot_free(s, xa_to_value(entry));
		else
			amber_copy_abandon(entry);
	}
}

/*
 * An active snapshot is given up for @reason: its view fails every read,
 * its chunks leave the store. False when it was not active.
 */
static bool amber_cow_give_up(struct amber_snapshot *s,
			      enum amber_invalid_reason reason)
{
	lockdep_assert_held(&s->lock);
	if (s->state != AMBER_SNAP_ACTIVE)
		return false;
	amber_snapshot_end_active(s, AMBER_SNAP_INVALID);
	s->reason = reason;
	amber_cow_clear(s);
	return true;
}

static void amber_cow_invalidate_locked(struct amber_volume *v,
					enum amber_invalid_reason reason)
{
	struct amber_snapshot *s = v->snap;

	if (!amber_cow_give_up(s, reason))
		return;
	DMERR("%s: snapshot of epoch %llu invalidated: %s",
	      dm_device_name(v->md), v->epoch, amber_reason_name(reason));
	/* The writes parked here, and the owner's if @v is not it, go on. */
	amber_kick(v);
	amber_snapshot_kick(s);
}

void amber_cow_invalidate(struct amber_volume *v,
			  enum amber_invalid_reason reason)
{
	spin_lock(&v->snap->lock);
	amber_cow_invalidate_locked(v, reason);
	spin_unlock(&v->snap->lock);
}

static void amber_copy_done(int read_err, unsigned long write_err,
			    void *context)
{
	struct amber_copy *copy = context;
	struct amber_volume *v = copy->v;
	unsigned long flags;

	if (read_err)
		copy->error = AMBER_REASON_ORIGIN_IO_ERROR;
	else if (write_err)
		copy->error = AMBER_REASON_STORE_IO_ERROR;
	spin_lock_irqsave(&v->lock, flags);
	list_del(&copy->inflight);
	list_add_tail(&copy->done, &v->copies_done);
	spin_unlock_irqrestore(&v->lock, flags);
	queue_work(v->wq, &v->copy_work);
}

static void amber_copy_start(struct amber_volume *v, struct amber_copy *copy)
{
	sector_t from = amber_chunk_sector(v, copy->chunk);
	struct dm_io_region src = {
		.bdev = v->origin->bdev,
		.sector = from,
		.count = min_t(sector_t, v->chunk_sectors, v->ti->len - from),
	};
	struct dm_io_region dst = {
		.bdev = v->store_dev->bdev,
		.sector = amber_store_slot_sector(v->store, copy->slot),
		.count = src.count,
	};

	unsigned long bound = amber_store_timeout_jiffies();
	bool first;

	/* A store that no longer answers ends the copy at once, failed. */
	if (test_bit(AMBER_STORE_HUNG, &v->store->flags)) {
		INIT_LIST_HEAD(&copy->inflight);	/* on no list */
		amber_copy_done(0, 1, copy);
		return;
	}
	copy->started = jiffies;
	spin_lock_irq(&v->lock);
	first = list_empty(&v->copies_inflight);
	list_add_tail(&copy->inflight, &v->copies_inflight);
	spin_unlock_irq(&v->lock);
	/* The oldest copy has until the bound to end. */
	if (first && bound != MAX_SCHEDULE_TIMEOUT)
		queue_delayed_work(v->wq, &v->copy_watch, bound);
	dm_kcopyd_copy(v->kcopyd, &src, 1, &dst, 0, amber_copy_done, copy);
}

/*
 * The oldest copy in flight has not ended within store_timeout_ms: the
 * store no longer answers, or not to it. It counts as failed (store.c),
 * and the snapshot is given up, which lets the writes that wait for a copy
 * go on: a store that hangs never holds the origin for longer than the
 * bound, even if other copies still end.
 */
static void amber_copy_watch(struct work_struct *work)
{
	struct amber_volume *v = container_of(to_delayed_work(work),
					      struct amber_volume, copy_watch);
	unsigned long bound = amber_store_timeout_jiffies();
	struct amber_copy *oldest;
	unsigned long expires;

	if (bound == MAX_SCHEDULE_TIMEOUT)
		return;
	spin_lock_irq(&v->lock);
	oldest = list_first_entry_or_null(&v->copies_inflight,
					  struct amber_copy, inflight);
	expires = oldest ? oldest->started + bound : 0;
	spin_unlock_irq(&v->lock);
	if (!oldest)
		return;
	if (time_before(jiffies, expires)) {
		queue_delayed_work(v->wq, &v->copy_watch, expires - jiffies);
		return;
	}
	DMERR("%s: no copy to the store ended in %u ms",
	      dm_device_name(v->md), jiffies_to_msecs(bound));
	amber_store_fail(v->store);
	amber_cow_invalidate(v, AMBER_REASON_STORE_IO_ERROR);
}

/* Park @bio until a slot frees up; the block timeout starts with the wait. */
static void amber_wait_for_slot(struct amber_volume *v, struct bio *bio)
{
	bool first;

	lockdep_assert_held(&v->snap->lock);
	amber_wait_begin(bio, AMBER_STAGE_SLOT);
	spin_lock_irq(&v->lock);
	first = !v->slot_waiters;
	amber_defer_locked(v, bio);
	spin_unlock_irq(&v->lock);
	if (first) {
		v->snap->blocked_since = jiffies;
		mod_delayed_work(v->wq, &v->block_timeout,
				 msecs_to_jiffies(v->block_timeout_ms));
	}
}

/* Park @bio, already stamped, until no view read of its chunk is in flight. */
static void amber_wait_more_for_readers(struct amber_volume *v,
					struct bio *bio)
{
	struct amber_snapshot *s = v->snap;

	spin_lock_irq(&v->lock);
	amber_defer_locked(v, bio);
	spin_unlock_irq(&v->lock);
	atomic_set(&v->readers_wanted, 1);
	/*
	 * A read may have ended, or the snapshot, before it could see
	 * ->readers_wanted.
	 */
	if (!amber_write_waits_for_readers(s, amber_chunk(v, bio->bi_iter.bi_sector)))
		amber_kick(v);
}

static void amber_wait_for_readers(struct amber_volume *v, struct bio *bio)
{
	amber_wait_begin(bio, AMBER_STAGE_READERS);
	amber_wait_more_for_readers(v, bio);
}

/*
 * A first write found no free slot. Outside a suspend it waits for one (or,
 * with overflow=invalidate, gives up the snapshot). A suspend must not wait
 * for a release that may never come: a noflush suspend has dm requeue the
 * write for after the resume, any other gives up the snapshot.
 */
static int amber_store_full(struct amber_volume *v, struct bio *bio)
{
	enum amber_volume_state state;
	bool suspending;

	lockdep_assert_held(&v->snap->lock);
	/* From presuspend to resume; a table handed over never resumes. */
	state = v->state;
	suspending = state != AMBER_VOL_LIVE && state != AMBER_VOL_CONSTRUCTED;
	/* dm, not us, knows whether it still requeues (an interrupted suspend). */
	if (suspending && dm_noflush_suspending(v->ti))
		return AMBER_REQUEUE;
	if (v->overflow == AMBER_OVERFLOW_INVALIDATE || suspending) {
		amber_cow_invalidate_locked(v, AMBER_REASON_STORE_FULL);
		return AMBER_REMAP;
	}
	amber_wait_for_slot(v, bio);
	return AMBER_HELD;
}

/* A copy for @c's first write, and room for it in the index, before the lock. */
static struct amber_copy *amber_copy_alloc(struct amber_volume *v, chunk_t c)
{
	struct amber_copy *copy = mempool_alloc(&v->copy_pool, GFP_NOIO);

	copy->v = v;
	/* Without the room, the store under the lock may fail: no_memory. */
	if (xa_reserve(&v->snap->index, c, GFP_NOIO))
		DMWARN_LIMIT("%s: no memory to index chunk %llu",
			     dm_device_name(v->md), c);
	return copy;
}

/* @copy, from amber_copy_alloc() or amber_cow_copy_ahead(), was not used. */
static void amber_copy_unused(struct amber_volume *v, chunk_t c,
			      struct amber_copy *copy)
{
	xa_release(&v->snap->index, c);
	mempool_free(copy, &v->copy_pool);
}

/*
 * Give untouched chunk @c to @copy, allocated before the lock (with a
 * reserved index entry): a slot, and the index entry that makes later
 * writes to @c wait for it. -ENOSPC when no slot is free, -ENOMEM when the
 * entry could not be stored; @copy is not used then.
 */
static int amber_copy_claim(struct amber_snapshot *s, chunk_t c,
			    struct amber_copy *copy)
{
	s64 slot;

	lockdep_assert_held(&s->lock);
	slot = amber_slot_alloc(s);
	if (slot < 0)
		return -ENOSPC;
	copy->chunk = c;
	copy->slot = slot;
	copy->error = 0;
	bio_list_init(&copy->bios);
	if (amber_chunk_lock_copy(s, c, copy)) {
		amber_slot_free(s, slot);
		return -ENOMEM;
	}
	return 0;
}

/*
 * The first write to untouched chunk @c: @copy takes it over, and is left
 * in *@copy for the caller to start once the lock is dropped. *@copy is
 * NULL when it was not used.
 */
static int amber_cow_begin(struct amber_volume *v, chunk_t c, struct bio *bio,
			   struct amber_copy **copy)
{
	struct amber_snapshot *s = v->snap;
	struct amber_copy *new = *copy;
	int r;

	lockdep_assert_held(&s->lock);
	*copy = NULL;
	r = amber_copy_claim(s, c, new);
	if (r == -ENOSPC)
		return amber_store_full(v, bio);
	if (r) {
		amber_cow_invalidate_locked(v, AMBER_REASON_NO_MEMORY);
		return AMBER_REMAP;
	}
	/* Nothing sees the copy's writes before it starts, after the lock. */
	bio_list_add(&new->bios, bio);
	amber_wait_begin(bio, AMBER_STAGE_COPY);
	*copy = new;
	return AMBER_HELD;
}

/*
 * Nothing to copy for @c: copied or being copied, released, or no snapshot
 * (one that is starting copies: amber_cow_copy_early()).
 */
static bool amber_copy_needless(struct amber_snapshot *s, chunk_t c)
{
	enum amber_snap_state state = READ_ONCE(s->state);

	return (state != AMBER_SNAP_ACTIVE && state != AMBER_SNAP_STARTING) ||
	       xa_load(&s->index, c) || amber_chunk_released(s, c);
}

/*
 * A first write to @c is about to wait, for its region's write intent
 * (cbt.c) while it holds the gate, or at a barrier's closed gate
 * (amber_cow_copy_early()): copy the chunk meanwhile, so that the write
 * then waits for the longer of the two instead of one after the other. The
 * origin's chunk cannot change before the copy ends: every write to it now
 * finds the copy in the index and waits. Nothing here waits: without the
 * memory or a free slot, the write makes the copy itself when its turn
 * comes. The copy pool's reserve is left to the writes that must copy.
 */
void amber_cow_copy_ahead(struct amber_volume *v, chunk_t c)
{
	struct amber_snapshot *s = v->snap;
	struct amber_copy *copy;
	int r = -EAGAIN;

	if (amber_copy_needless(s, c))
		return;
	copy = kmem_cache_alloc(amber_copy_cache, GFP_NOWAIT | __GFP_NOWARN);
	if (!copy)
		return;
	if (xa_reserve(&s->index, c, GFP_NOWAIT)) {
		mempool_free(copy, &v->copy_pool);
		return;
	}
	copy->v = v;
	spin_lock(&s->lock);
	if (!amber_copy_needless(s, c))
		r = amber_copy_claim(s, c, copy);
	spin_unlock(&s->lock);
	if (!r) {
		atomic64_inc(&v->copied_ahead);
		amber_copy_start(v, copy);
		return;
	}
	amber_copy_unused(v, c, copy);
}

/*
 * Route a single-chunk write while the gate is held: AMBER_REMAP when it
 * may go to the origin now, AMBER_HELD when it waits for a copy, a free slot
 * or a view read, AMBER_ENDED when it was completed here.
 *
 * Nothing sleeps under the snapshot's lock: the copy a first write may need is
 * allocated before it (its pool refills only through amber_copy_finish(),
 * which takes the lock), and the copy starts, or a discard ends, after it.
 */
int amber_cow_write(struct amber_volume *v, struct bio *bio)
{
	struct amber_snapshot *s = v->snap;
	chunk_t c = amber_chunk(v, bio->bi_iter.bi_sector);
	bool discard = bio_op(bio) == REQ_OP_DISCARD;
	struct amber_copy *copy = NULL, *start = NULL, *holder;
	void *entry;
	int r;

	/* Only a barrier makes a snapshot active, and we hold the gate. */
	if (READ_ONCE(s->state) != AMBER_SNAP_ACTIVE)
		return AMBER_REMAP;
	/*
	 * A copied or released chunk needs no copy, but a view read that went
	 * to the origin before the copy finished (or the release) may still be
	 * in flight: the write must not overtake it.
	 */
	entry = xa_load(&s->index, c);
	if ((xa_is_value(entry) || (!entry && amber_chunk_released(s, c))) &&
	    !amber_chunk_read_locked(s, c))
		return AMBER_REMAP;
	if (bio->bi_opf & REQ_NOWAIT) {
		bio_wouldblock_error(bio);
		return AMBER_ENDED;
	}
again:
	if (!entry && !discard && !copy)
		copy = amber_copy_alloc(v, c);

	spin_lock(&s->lock);
	entry = xa_load(&s->index, c);
	holder = amber_entry_copy(entry);
	if (s->state != AMBER_SNAP_ACTIVE) {
		r = AMBER_REMAP;
	} else if (holder) {
		amber_wait_begin(bio, AMBER_STAGE_COPY);
		bio_list_add(&holder->bios, bio);
		r = AMBER_HELD;
	} else if (xa_is_value(entry) || amber_chunk_released(s, c)) {
		r = AMBER_REMAP;
		if (amber_chunk_read_locked(s, c)) {
			amber_wait_for_readers(v, bio);
			r = AMBER_HELD;
		}
	} else if (discard) {
		/* Discard promises nothing about content: keep the old data. */
		r = AMBER_ENDED;
	} else if (!copy) {
		/* The copy seen at the first look is gone: allocate one. */
		spin_unlock(&s->lock);
		goto again;
	} else {
		start = copy;
		r = amber_cow_begin(v, c, bio, &start);
		if (start)
			copy = NULL;
	}
	spin_unlock(&s->lock);

	if (start)
		amber_copy_start(v, start);
	if (copy)
		amber_copy_unused(v, c, copy);
	if (r == AMBER_REQUEUE) {
		bio->bi_status = BLK_STS_DM_REQUEUE;
		r = AMBER_ENDED;
	}
	if (r == AMBER_ENDED)
		bio_endio(bio);
	if (r == AMBER_HELD)
		atomic64_inc(&v->waited);
	return r;
}

static void amber_send_or_wait(struct amber_volume *v, struct bio_list *bios,
			       chunk_t c)
{
	struct bio *bio;

	while ((bio = bio_list_pop(bios))) {
		amber_wait_end(v, bio);
		if (amber_write_waits_for_readers(v->snap, c))
			amber_wait_for_readers(v, bio);
		else
			amber_submit_write(v, bio);
	}
}

static void amber_copy_finish(struct amber_volume *v, struct amber_copy *copy)
{
	struct amber_snapshot *s = v->snap;

	spin_lock(&s->lock);
	if (!amber_chunk_unlock_copy(s, copy->chunk, copy,
				     copy->error ? -1 : copy->slot)) {
		/* Dropped, invalidated or released while it was copied. */
		amber_slot_free(s, copy->slot);
		amber_kick(v);	/* for the writes waiting for a slot */
	} else if (copy->error) {
		amber_slot_free(s, copy->slot);
		amber_cow_invalidate_locked(v, copy->error);
	} else {
		atomic64_inc(&s->copied);
	}
	spin_unlock(&s->lock);

	amber_send_or_wait(v, &copy->bios, copy->chunk);
	mempool_free(copy, &v->copy_pool);
}

static void amber_finish_copies(struct amber_volume *v)
{
	struct amber_copy *copy, *next;
	LIST_HEAD(done);

	spin_lock_irq(&v->lock);
	list_splice_init(&v->copies_done, &done);
	spin_unlock_irq(&v->lock);

	list_for_each_entry_safe(copy, next, &done, done)
		amber_copy_finish(v, copy);
}

/* Whether @count, a counter of ->deferred's writes, is not zero. */
static bool amber_deferred_any(struct amber_volume *v,
			       const unsigned int *count)
{
	bool r;

	spin_lock_irq(&v->lock);
	r = *count;
	spin_unlock_irq(&v->lock);
	return r;
}

/*
 * Take the writes of ->deferred at @stages (a mask of BIT(stage)) off it,
 * in order, leaving the others there.
 */
static struct bio_list amber_take_deferred(struct amber_volume *v,
					   unsigned int stages)
{
	struct bio_list taken = BIO_EMPTY_LIST, left = BIO_EMPTY_LIST;
	struct amber_bio *pb;
	struct bio *bio;

	spin_lock_irq(&v->lock);
	while ((bio = bio_list_pop(&v->deferred))) {
		pb = dm_per_bio_data(bio, sizeof(*pb));
		if (!(stages & BIT(pb->stage))) {
			bio_list_add(&left, bio);
			continue;
		}
		if (pb->stage == AMBER_STAGE_SLOT)
			v->slot_waiters--;
		if (pb->stage != AMBER_STAGE_READERS)
			v->rewrites--;
		bio_list_add(&taken, bio);
	}
	v->deferred = left;
	spin_unlock_irq(&v->lock);
	return taken;
}

static bool amber_slot_free_or_gone(struct amber_snapshot *s)
{
	bool r;

	spin_lock(&s->lock);
	r = s->state != AMBER_SNAP_ACTIVE || s->slots_used < s->nr_slots;
	spin_unlock(&s->lock);
	return r;
}

/*
 * Finished copies have a work item of their own: the writes ->worker
 * retries may wait in mempool_alloc() for the copies they free.
 */
static void amber_copy_worker(struct work_struct *work)
{
	amber_finish_copies(container_of(work, struct amber_volume, copy_work));
}

/* A write that waited for view reads, which have ended (or the snapshot). */
static void amber_readers_gone(struct amber_volume *v, struct bio *bio)
{
	amber_wait_end(v, bio);
	amber_submit_write(v, bio);
}

/*
 * Look at each write of ->deferred again, at the stage it waits at: one
 * waiting for view reads goes to the origin once they ended; one waiting
 * for a slot, or for a copy abandoned at the snapshot's end, goes through
 * amber_cow_write() again once a slot is free or the snapshot ended, and
 * may be parked again there.
 */
void amber_cow_worker(struct amber_volume *v)
{
	struct bio_list readers, rest;
	struct bio *bio;

	/* Before the reads are looked at: amber_snapshot_read_ended(). */
	atomic_set(&v->readers_wanted, 0);
	readers = amber_take_deferred(v, BIT(AMBER_STAGE_READERS));
	while ((bio = bio_list_pop(&readers))) {
		if (amber_write_waits_for_readers(v->snap,
						  amber_chunk(v, bio->bi_iter.bi_sector)))
			amber_wait_more_for_readers(v, bio);
		else
			amber_readers_gone(v, bio);
	}
	if (!amber_deferred_any(v, &v->rewrites) ||
	    !amber_slot_free_or_gone(v->snap))
		return;
	rest = amber_take_deferred(v, BIT(AMBER_STAGE_SLOT) | BIT(AMBER_STAGE_COPY));
	while ((bio = bio_list_pop(&rest)))
		amber_writes_continue_one(v, bio);
}

/*
 * A suspend is starting: the writes waiting for a free slot are requeued
 * (noflush) or, with the snapshot given up, sent on, and no write waits for
 * one until the resume or amber_cow_presuspend_undo().
 */
void amber_cow_presuspend(struct amber_volume *v)
{
	struct bio_list parked;
	struct bio *bio;

	spin_lock(&v->snap->lock);
	amber_set_state(v, AMBER_VOL_SUSPENDING);
	parked = amber_take_deferred(v, BIT(AMBER_STAGE_SLOT));
	spin_unlock(&v->snap->lock);

	/* Each goes through the store-full rule above again. */
	while ((bio = bio_list_pop(&parked)))
		amber_writes_continue_one(v, bio);
}

void amber_cow_presuspend_undo(struct amber_volume *v)
{
	spin_lock(&v->snap->lock);
	amber_set_state(v, AMBER_VOL_LIVE);
	spin_unlock(&v->snap->lock);
}

/* Store full for block_timeout_ms with no slot freed: give up the view. */
static void amber_block_timeout(struct work_struct *work)
{
	struct amber_volume *v = container_of(to_delayed_work(work),
					      struct amber_volume,
					      block_timeout);
	struct amber_snapshot *s = v->snap;
	unsigned long expires;

	spin_lock(&s->lock);
	expires = s->blocked_since + msecs_to_jiffies(v->block_timeout_ms);
	/* Nobody may wait any more, or a slot was freed since: rearm. */
	if (amber_deferred_any(v, &v->slot_waiters) &&
	    time_before(jiffies, expires))
		mod_delayed_work(v->wq, &v->block_timeout, expires - jiffies);
	else if (amber_deferred_any(v, &v->slot_waiters))
		amber_cow_invalidate_locked(v, AMBER_REASON_BLOCK_TIMEOUT);
	spin_unlock(&s->lock);
}

int amber_cow_can_start(struct amber_volume *v)
{
	int r = 0;

	spin_lock(&v->snap->lock);
	if (v->snap->state != AMBER_SNAP_NONE) {
		DMERR("%s: a snapshot is active: drop it first",
		      dm_device_name(v->md));
		r = -EBUSY;
	}
	spin_unlock(&v->snap->lock);
	return r;
}

/*
 * A barrier closed and drained @v's gate: the origin holds the image the
 * snapshot will have, and nothing changes it until the gate opens. The
 * snapshot is starting: copies of that image may begin (the writes held at
 * the gate need them), while the barrier flushes the origin and records
 * the epoch; the view reads nothing yet, a release and a drop find no
 * snapshot. amber_cow_start() or amber_cow_cancel_start() follows, with
 * the gate still closed.
 */
void amber_cow_prepare_start(struct amber_volume *v)
{
	struct amber_snapshot *s = v->snap;

	spin_lock(&s->lock);
	WARN_ON_ONCE(s->state != AMBER_SNAP_NONE || !xa_empty(&s->index));
	s->reason = AMBER_REASON_NONE;
	atomic64_set(&s->copied, 0);
	atomic64_set(&s->released_count, 0);
	WRITE_ONCE(s->state, AMBER_SNAP_STARTING);
	spin_unlock(&s->lock);
}

/*
 * A write to @c waits at the closed gate of a barrier whose snapshot is
 * starting: copy @c now, so that the write, once the gate opens, waits for
 * what is left of the copy, not for all of it after the barrier's flush
 * and record. Nothing here waits for memory or a slot: without them the
 * write makes the copy itself, as any first write does.
 */
void amber_cow_copy_early(struct amber_volume *v, chunk_t c)
{
	if (READ_ONCE(v->snap->state) == AMBER_SNAP_STARTING)
		amber_cow_copy_ahead(v, c);
}

/* The barrier cut epoch @epoch: the snapshot starts, the gate still closed. */
void amber_cow_start(struct amber_volume *v, u64 epoch)
{
	struct amber_snapshot *s = v->snap;

	spin_lock(&s->lock);
	WARN_ON_ONCE(s->state != AMBER_SNAP_STARTING);
	v->epoch = epoch;
	WRITE_ONCE(s->state, AMBER_SNAP_ACTIVE);
	spin_unlock(&s->lock);
}

/*
 * The barrier cut nothing: the starting snapshot ends before it began, and
 * its early copies with it (their slots come back as kcopyd ends them).
 */
void amber_cow_cancel_start(struct amber_volume *v)
{
	struct amber_snapshot *s = v->snap;

	spin_lock(&s->lock);
	if (s->state == AMBER_SNAP_STARTING) {
		amber_snapshot_end_active(s, AMBER_SNAP_NONE);
		amber_cow_clear(s);
	}
	spin_unlock(&s->lock);
}

#define AMBER_RELEASE_BATCH	16

/* A released chunk's slot that a view read still reads. */
struct amber_busy_slot {
	chunk_t chunk;
	u64 slot;
};

/*
 * Take chunks [*next, end) out of the index and free their slots, but for
 * those a view read still reads: return those in @busy, still mapped, at
 * most AMBER_RELEASE_BATCH of them, with *next set to where to go on.
 */
static unsigned int amber_release_unmap(struct amber_snapshot *s,
					chunk_t *next, chunk_t end,
					struct amber_busy_slot *busy)
{
	unsigned int n = 0;
	unsigned long idx;
	void *entry;

	lockdep_assert_held(&s->lock);
	xa_for_each_range(&s->index, idx, entry, *next, end - 1) {
		if (n == AMBER_RELEASE_BATCH) {
			*next = idx;
			return n;
		}
		if (xa_is_value(entry) && amber_chunk_read_locked(s, idx)) {
			busy[n].chunk = idx;
			busy[n].slot = xa_to_value(entry);
			n++;
			continue;
		}
		xa_erase(&s->index, idx);
		/* A copy in flight loses its hold, and frees its slot when done. */
		if (xa_is_value(entry))
			amber_slot_free(s, xa_to_value(entry));
	}
	*next = end;
	return n;
}

/*
 * Unmap the busy chunks of a release once their view reads have ended, if
 * nothing else unmapped them meanwhile (a drop, an invalidation or another
 * release).
 */
static void amber_release_busy(struct amber_snapshot *s,
			       struct amber_busy_slot *busy, unsigned int n)
{
	unsigned int i;

	lockdep_assert_held(&s->lock);
	for (i = 0; i < n; i++)
		if (xa_cmpxchg(&s->index, busy[i].chunk,
			       xa_mk_value(busy[i].slot), NULL, 0) ==
		    xa_mk_value(busy[i].slot))
			amber_slot_free(s, busy[i].slot);
}

/*
 * The unmapping loop of amber_cow_release(), from @first to @end, for the
 * snapshot of view generation @gen.
 */
static int amber_release_range(struct amber_volume *v, chunk_t first,
			       chunk_t end, unsigned int gen)
	__must_hold(&v->snap->lock)
{
	struct amber_busy_slot busy[AMBER_RELEASE_BATCH];
	struct amber_snapshot *s = v->snap;
	unsigned int n, i;
	chunk_t next = first;
	int r;

	lockdep_assert_held(&s->lock);
	while (next < end) {
		n = amber_release_unmap(s, &next, end, busy);
		if (!n)
			continue;
		spin_unlock(&s->lock);
		for (i = 0, r = 0; i < n && !r; i++)
			r = amber_chunk_wait_reads(s, busy[i].chunk);
		spin_lock(&s->lock);
		/*
		 * Killed: the chunks are released but the slots of those not
		 * unmapped yet stay in use until a later release or the drop.
		 */
		if (r)
			return -EINTR;
		/*
		 * Dropped or ended meanwhile: the index may be the next
		 * snapshot's. (A reload that kept it changed nothing: the
		 * next table shares it.)
		 */
		if (amber_snapshot_gen_moved(s, gen))
			return -ESTALE;
		amber_release_busy(s, busy, n);
	}
	return 0;
}

/* Chunks released by one hold of the snapshot's lock, at most. */
#define AMBER_RELEASE_STRIDE	BIT(20)

/*
 * Mark chunks [@first, @end) released, before they are unmapped: a view
 * read that misses one sees the other.
 */
static void amber_release_mark(struct amber_snapshot *s,
			       unsigned long *released, chunk_t first,
			       chunk_t end)
{
	u64 newly = 0;
	chunk_t c;

	lockdep_assert_held(&s->lock);
	for (c = find_next_zero_bit(released, end, first); c < end;
	     c = find_next_zero_bit(released, end, c + 1)) {
		set_bit(c, released);
		newly++;
	}
	atomic64_add(newly, &s->released_count);
	/* Released before unmapped: pairs with smp_rmb() in the view. */
	smp_wmb();
}

/*
 * The slot of a released chunk is reused only once the view reads that may
 * still read it have ended; they are waited for without the snapshot's
 * lock, so that a slow read holds back no write, barrier or status, and
 * killably (-EINTR), so that a backup stuck behind a hung read can still be
 * killed.
 */
int amber_cow_release(struct amber_volume *v, chunk_t first, u64 count)
{
	struct amber_snapshot *s = v->snap;
	chunk_t end = first + count, stride, stride_end;
	unsigned long *released, *fresh = NULL;
	unsigned int gen;
	int r = 0;

	if (!count || first >= v->nr_chunks || count > v->nr_chunks - first)
		return -EINVAL;

	spin_lock(&s->lock);
	gen = amber_snapshot_gen(s);
again:
	/*
	 * A table that handed its snapshot over to the next one shares it
	 * with that one, or has given it up: either way the release is
	 * right here.
	 */
	if (s->state != AMBER_SNAP_ACTIVE) {
		r = s->state == AMBER_SNAP_INVALID ? -ESTALE : -ENOENT;
		goto out;
	}
	/* Dropped (and taken again) while we allocated: not our snapshot. */
	if (amber_snapshot_gen_moved(s, gen)) {
		r = -ESTALE;
		goto out;
	}
	released = rcu_dereference_protected(s->released,
					     lockdep_is_held(&s->lock));
	if (!released && !fresh) {
		spin_unlock(&s->lock);
		fresh = amber_bitmap_zalloc_noio(v->nr_chunks);
		if (!fresh)
			return -ENOMEM;
		spin_lock(&s->lock);
		goto again;
	}
	if (!released) {
		released = fresh;
		fresh = NULL;
		rcu_assign_pointer(s->released, released);
	}
	for (stride = first; stride < end; stride = stride_end) {
		stride_end = min_t(chunk_t, end, stride + AMBER_RELEASE_STRIDE);
		amber_release_mark(s, released, stride, stride_end);
		r = amber_release_range(v, stride, stride_end, gen);
		if (r)
			break;
		/* A long release lets first writes take the lock in between. */
		if (cond_resched_lock(&s->lock) &&
		    amber_snapshot_gen_moved(s, gen)) {
			r = -ESTALE;
			break;
		}
	}
	amber_snapshot_kick(s);
out:
	spin_unlock(&s->lock);
	kvfree(fresh);
	return r;
}

/*
 * @v's first resume, @v replacing @p, the table of the same dm device that
 * was resumed last. When @v was made with @p's origin, store and chunk size
 * it shares @p's snapshot (amber_cow_init()): @v's writes now wait there,
 * and the view reads of @p still in flight hold them back as @p's own did.
 * The snapshot goes on if the store still names its epoch; it is given up
 * if the store does not (the store failed at @p's suspend or @v's resume).
 */
static void amber_cow_go_on(struct amber_volume *v, struct amber_volume *p)
{
	struct amber_snapshot *s = v->snap;

	lockdep_assert_held(&s->lock);
	if (s->state != AMBER_SNAP_ACTIVE)
		return;
	if (p->epoch != v->epoch) {
		DMERR("%s: reload: the store says epoch %llu, not %llu: store_io_error",
		      dm_device_name(v->md), v->epoch, p->epoch);
		amber_cow_give_up(s, AMBER_REASON_STORE_IO_ERROR);
		return;
	}
	DMINFO("%s: reload: the snapshot of epoch %llu goes on (%llu chunks in the store)",
	       dm_device_name(v->md), v->epoch, s->slots_used);
}

/* @p's own snapshot ends: @v has another origin, store or chunk size. */
static void amber_cow_end_elsewhere(struct amber_volume *v,
				    struct amber_volume *p)
{
	spin_lock(&p->snap->lock);
	if (amber_cow_give_up(p->snap, AMBER_REASON_NONE))
		DMWARN("%s: reload: another origin, store or chunk size: snapshot %llu ends",
		       dm_device_name(v->md), p->epoch);
	amber_set_state(p, AMBER_VOL_HANDED_OVER);
	spin_unlock(&p->snap->lock);
}

/*
 * @v's first resume. If @v replaces a table @p of the same dm device, @p is
 * suspended for good (no write, no copy) and dm destroys it once @v is
 * resumed; no lookup finds it any more. @p's snapshot goes on in @v when
 * they share it (and so do @p's control calls still running), and ends
 * otherwise: @p's view reads and releases then fail.
 *
 * @v may also have taken a snapshot at construction from a table that is
 * no longer the one it replaces (another table was resumed in between, and
 * that one's writes were never copied): that snapshot ends too. A snapshot
 * object made for @v has never been active, and is left as it is.
 */
void amber_cow_take_over(struct amber_volume *v)
{
	struct amber_snapshot *s = v->snap;
	struct amber_volume *p;

	mutex_lock(&amber_registry_lock);
	p = amber_predecessor(v);
	if (p && p->snap != s)
		amber_cow_end_elsewhere(v, p);
	spin_lock(&s->lock);
	if (p && p->snap == s) {
		amber_cow_go_on(v, p);
		amber_set_state(p, AMBER_VOL_HANDED_OVER);
	} else {
		amber_cow_give_up(s, AMBER_REASON_NONE);
	}
	rcu_assign_pointer(s->owner, v);
	amber_set_state(v, AMBER_VOL_SUSPENDED);
	spin_unlock(&s->lock);
	mutex_unlock(&amber_registry_lock);
}

int amber_cow_drop(struct amber_volume *v)
{
	struct amber_snapshot *s = v->snap;
	unsigned long *released;

	spin_lock(&s->lock);
	/* A starting snapshot is the barrier's, which has not cut it yet. */
	if (s->state == AMBER_SNAP_NONE || s->state == AMBER_SNAP_STARTING) {
		spin_unlock(&s->lock);
		return -ENOENT;
	}
	amber_snapshot_end_active(s, AMBER_SNAP_NONE);
	s->reason = AMBER_REASON_NONE;
	amber_cow_clear(s);
	released = rcu_replace_pointer(s->released, NULL,
				       lockdep_is_held(&s->lock));
	spin_unlock(&s->lock);

	/* No view read may still be on its way to a slot the next one reuses. */
	amber_reads_wait_all(s);
	amber_snapshot_kick(s);
	/* Nor a look at the released chunks (amber_chunk_released()). */
	if (released) {
		synchronize_rcu();
		kvfree(released);
	}
	return 0;
}

int amber_cow_list_copied(struct amber_volume *v, chunk_t start, u64 *out,
			  u64 max, u64 *count)
{
	struct amber_snapshot *s = v->snap;
	unsigned long idx;
	void *entry;
	u64 n = 0;

	spin_lock(&s->lock);
	xa_for_each_start(&s->index, idx, entry, start) {
		if (n == max)
			break;
		if (xa_is_value(entry))
			out[n++] = idx;
	}
	spin_unlock(&s->lock);
	*count = n;
	return 0;
}

static struct amber_snapshot *amber_snapshot_create(struct amber_volume *v)
{
	struct amber_snapshot *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return NULL;
	s->nr_slots = v->store->nr_slots;
	s->slots = amber_bitmap_zalloc(s->nr_slots);
	if (!s->slots) {
		kfree(s);
		return NULL;
	}
	refcount_set(&s->ref, 1);
	spin_lock_init(&s->lock);
	xa_init(&s->index);
	init_waitqueue_head(&s->reads_wq);
	/* No kick reaches @v before it is registered, with its workqueue. */
	RCU_INIT_POINTER(s->owner, v);
	return s;
}

/*
 * A table of @s is gone. The last one frees it once no write or copy is
 * left, and no view read (which holds the object and not a table; the
 * grace period covers a read's last touch, in amber_reads_unlock()).
 */
static void amber_snapshot_put(struct amber_snapshot *s)
{
	if (!refcount_dec_and_test(&s->ref))
		return;
	amber_reads_wait_all(s);
	synchronize_rcu();
	spin_lock(&s->lock);
	amber_cow_clear(s);
	spin_unlock(&s->lock);
	xa_destroy(&s->index);
	kvfree(rcu_dereference_protected(s->released, 1));
	kvfree(s->slots);
	kfree(s);
}

/*
 * The snapshot of @v's predecessor, when @v has its origin, store and chunk
 * size: a reload shares it (see amber_cow_take_over()).
 */
static struct amber_snapshot *amber_snapshot_of_predecessor(struct amber_volume *v)
{
	struct amber_snapshot *s = NULL;
	struct amber_volume *p;

	mutex_lock(&amber_registry_lock);
	p = amber_predecessor(v);
	if (p && p->origin->bdev == v->origin->bdev &&
	    p->store_dev->bdev == v->store_dev->bdev &&
	    p->chunk_sectors == v->chunk_sectors &&
	    p->nr_chunks == v->nr_chunks &&
	    p->snap->nr_slots == v->store->nr_slots &&
	    !memcmp(p->store->sb->uuid, v->store->sb->uuid,
		    sizeof(p->store->sb->uuid))) {
		s = p->snap;
		refcount_inc(&s->ref);
	}
	mutex_unlock(&amber_registry_lock);
	return s;
}

int amber_cow_init(struct amber_volume *v)
{
	int r;

	INIT_WORK(&v->copy_work, amber_copy_worker);
	INIT_DELAYED_WORK(&v->block_timeout, amber_block_timeout);
	INIT_DELAYED_WORK(&v->copy_watch, amber_copy_watch);
	v->snap = amber_snapshot_of_predecessor(v) ?: amber_snapshot_create(v);
	if (!v->snap)
		return -ENOMEM;
	r = mempool_init_slab_pool(&v->copy_pool, AMBER_MIN_COPIES,
				   amber_copy_cache);
	if (r)
		goto bad_pool;
	v->kcopyd = dm_kcopyd_client_create(NULL);
	if (IS_ERR(v->kcopyd)) {
		r = PTR_ERR(v->kcopyd);
		goto bad_kcopyd;
	}
	return 0;

bad_kcopyd:
	mempool_exit(&v->copy_pool);
bad_pool:
	amber_snapshot_put(v->snap);
	return r;
}

/*
 * Wait for every copy's kcopyd callback, which queues work on v->wq: this
 * goes before the workqueue is destroyed, and before amber_cow_exit().
 */
void amber_cow_stop_copies(struct amber_volume *v)
{
	dm_kcopyd_client_destroy(v->kcopyd);
	v->kcopyd = NULL;
}

/*
 * @v is going: a view read that ends no longer kicks it, and if it still
 * owns its snapshot (it handed it to no next table), the snapshot ends.
 * Before amber_unregister(), whose grace period covers the reads that still
 * found it as the owner.
 */
void amber_cow_disown(struct amber_volume *v)
{
	struct amber_snapshot *s = v->snap;

	spin_lock(&s->lock);
	if (rcu_access_pointer(s->owner) == v) {
		RCU_INIT_POINTER(s->owner, NULL);
		/*
		 * Not handed over: a table loaded beside @v that shares the
		 * snapshot must not go on with it, nor its view read it.
		 */
		amber_cow_give_up(s, AMBER_REASON_NONE);
	}
	spin_unlock(&s->lock);
}

/* No write is in flight, no copy is left and the workqueue is gone. */
void amber_cow_exit(struct amber_volume *v)
{
	mempool_exit(&v->copy_pool);
	amber_snapshot_put(v->snap);
}

int amber_cow_module_init(void)
{
	amber_copy_cache = KMEM_CACHE(amber_copy, 0);
	return amber_copy_cache ? 0 : -ENOMEM;
}

void amber_cow_module_exit(void)
{
	kmem_cache_destroy(amber_copy_cache);
}
