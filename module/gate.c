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
#include <linux/ktime.h>
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
	chunk_t c = amber_chunk(v, bio->bi_iter.bi_sector);
	bool data = bio_op(bio) != REQ_OP_DISCARD;
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
	amber_wait_begin(bio, AMBER_STAGE_GATE);
	bio_list_add(&v->gated, bio);
	spin_unlock_irqrestore(&v->lock, flags);
	atomic64_inc(&v->waited);
	/* @bio may have gone on already: its chunk was read before. */
	if (data)
		amber_cow_copy_early(v, c);
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

/* Writes parked at the gate whose chunks a starting snapshot copies early. */
#define AMBER_EARLY_COPIES	32

/*
 * @v's snapshot is starting: copy the chunks of the writes parked at its
 * gate so far (the first AMBER_EARLY_COPIES), which wait for those copies
 * once the gate opens. Later ones start theirs as they park
 * (amber_gate_defer()).
 */
static void amber_gate_copy_parked(struct amber_volume *v)
{
	chunk_t chunks[AMBER_EARLY_COPIES];
	unsigned int n = 0, i;
	struct bio *bio;

	spin_lock_irq(&v->lock);
	bio_list_for_each(bio, &v->gated) {
		if (n == ARRAY_SIZE(chunks))
			break;
		if (bio_op(bio) != REQ_OP_DISCARD)
			chunks[n++] = amber_chunk(v, bio->bi_iter.bi_sector);
	}
	spin_unlock_irq(&v->lock);
	for (i = 0; i < n; i++)
		amber_cow_copy_early(v, chunks[i]);
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
 * A barrier cuts only a volume whose table is in use (resumed, not yet
 * suspended: a suspend's postsuspend records the cut epoch's map) and whose
 * maps were loaded from the store: the epoch it cuts must follow the one the
 * store names.
 */
static int amber_barrier_check(struct amber_volume *v)
{
	lockdep_assert_held(&amber_registry_lock);
	if (!amber_in_use(v)) {
		DMERR("%s: snap: the volume is suspended or its table is not resumed",
		      dm_device_name(v->md));
		return -EAGAIN;
	}
	if (!amber_cbt_loaded(v->cbt)) {
		DMERR("%s: snap: the store could not be read at resume: reload the table",
		      dm_device_name(v->md));
		return -EIO;
	}
	return amber_cow_can_start(v);
}

/*
 * Every write acknowledged before the barrier must be on stable media
 * before the image that holds it is backed up: the origin's volatile cache
 * may lose it in a power cut after the backup read it. The barrier flushes
 * while writes still flow, then once more with the gates closed and
 * drained, which writes stall behind: that one must find little left to
 * write back. Each flush with the gates open writes back what was
 * acknowledged during the one before, so they are repeated while they get
 * shorter (amber_flush_origins_open()). The origins of a group are flushed
 * together.
 */
struct amber_flushes {
	struct completion done;
	atomic_t pending;
	struct block_device *failed;	/* the first origin that failed */
	blk_status_t status;
};

static void amber_flush_end(struct bio *bio)
{
	struct amber_flushes *f = bio->bi_private;

	if (bio->bi_status && !cmpxchg(&f->failed, NULL, bio->bi_bdev))
		f->status = bio->bi_status;
	bio_put(bio);
	if (atomic_dec_and_test(&f->pending))
		complete(&f->done);
}

static void amber_flush_origins_start(struct amber_volume **vols,
				      unsigned int count,
				      struct amber_flushes *f)
{
	unsigned int i;
	struct bio *bio;

	init_completion(&f->done);
	atomic_set(&f->pending, count);
	f->failed = NULL;
	f->status = BLK_STS_OK;
	for (i = 0; i < count; i++) {
		/* From a mempool: never fails, as in blkdev_issue_flush(). */
		bio = bio_alloc(vols[i]->origin->bdev, 0,
				REQ_OP_WRITE | REQ_PREFLUSH, GFP_NOIO);
		bio->bi_end_io = amber_flush_end;
		bio->bi_private = f;
		submit_bio(bio);
	}
}

static int amber_flush_origins_wait(struct amber_flushes *f)
{
	int r;

	wait_for_completion_io(&f->done);
	r = blk_status_to_errno(f->status);
	if (r)
		DMERR("snap: flushing origin %pg failed: %d", f->failed, r);
	return r;
}

static int amber_flush_origins(struct amber_volume **vols, unsigned int count)
{
	struct amber_flushes f;

	amber_flush_origins_start(vols, count, &f);
	return amber_flush_origins_wait(&f);
}

/* Flushes with the gates open after the first, at most. */
#define AMBER_OPEN_FLUSHES	4
/* A flush this short leaves the closed one nothing worth another. */
#define AMBER_SHORT_FLUSH_NS	(2 * NSEC_PER_MSEC)

/*
 * The first flush with the gates open took @took_ns: flush again while the
 * last one took long and the one before took clearly longer still (a
 * writer faster than the origin's write-back never lets them shrink).
 */
static int amber_flush_origins_open(struct amber_volume **vols,
				    unsigned int count, u64 took_ns)
{
	unsigned int i;
	u64 last, start;
	int r;

	for (i = 0; i < AMBER_OPEN_FLUSHES && took_ns >= AMBER_SHORT_FLUSH_NS; i++) {
		last = took_ns;
		start = ktime_get_ns();
		r = amber_flush_origins(vols, count);
		if (r)
			return r;
		took_ns = ktime_get_ns() - start;
		if (took_ns * 4 > last * 3)
			break;
	}
	return 0;
}

/*
 * Write each volume's next epoch to its store. If one cannot be written,
 * the others take theirs back and nothing is cut.
 */
static int amber_record_epochs(struct amber_volume **vols, unsigned int count,
			       u64 *epochs)
{
	unsigned int i;
	int r = 0;

	for (i = 0; i < count; i++) {
		epochs[i] = amber_cbt_epoch(vols[i]->cbt) + 1;
		r = amber_cbt_record_epoch(vols[i]->cbt, epochs[i]);
		if (r)
			break;
	}
	if (i == count)
		return 0;
	DMERR("%s: snap: the store did not take epoch %llu: %d",
	      dm_device_name(vols[i]->md), epochs[i], r);
	while (i--)
		amber_cbt_unrecord_epoch(vols[i]->cbt);
	return r;
}

/* @step of the barrier over @vols took from @start to now; returns now. */
static u64 amber_barrier_step(struct amber_volume **vols, unsigned int count,
			      enum amber_barrier_step step, u64 start)
{
	u64 now = ktime_get_ns();
	unsigned int i;

	for (i = 0; i < count; i++)
		vols[i]->barrier_ns[step] = now - start;
	return now;
}

/*
 * Raise one barrier over @count volumes: flush every origin while its store
 * takes the next epoch's write intent for the regions just written, close
 * every gate, drain every volume, start every snapshot (the writes held at
 * the gates have their chunks copied from now on), flush every origin
 * again, record and cut every epoch, open every gate. The origins of a
 * group flush together, but the record waits for them all: a store that
 * names an epoch after a power cut has the origin's image of that epoch on
 * stable media.
 * If a volume cannot start a snapshot, does not drain in time (or the
 * caller is killed), or its origin or store fails, no epoch is cut and
 * every gate opens again. The gates are never left closed.
 */
int amber_barrier(struct amber_volume **vols, unsigned int count,
		  unsigned int timeout_ms, u64 *epochs)
{
	struct amber_flushes flushes;
	bool starting = false;
	unsigned long deadline;
	unsigned int i;
	u64 t, closed, flushed;
	int r = 0;

	lockdep_assert_held(&amber_registry_lock);

	for (i = 0; i < count && !r; i++)
		r = amber_barrier_check(vols[i]);
	if (r)
		return r;
	for (i = 0; i < count; i++)
		amber_stats_reset(vols[i]);
	t = ktime_get_ns();
	for (i = 0; i < count && !r; i++)
		r = amber_cbt_prepare_cut(vols[i]->cbt);
	if (r)
		return r;
	/* The stores take the next intent while the origins flush. */
	flushed = ktime_get_ns();
	amber_flush_origins_start(vols, count, &flushes);
	for (i = 0; i < count; i++)
		amber_cbt_intend_next(vols[i]->cbt);
	r = amber_flush_origins_wait(&flushes);
	if (!r)
		r = amber_flush_origins_open(vols, count,
					     ktime_get_ns() - flushed);
	if (r)
		return r;

	t = amber_barrier_step(vols, count, AMBER_STEP_PREPARE, t);
	closed = t;
	deadline = jiffies + msecs_to_jiffies(amber_drain_bound(vols, count,
								timeout_ms));
	for (i = 0; i < count; i++)
		amber_gate_close(vols[i]);
	for (i = 0; i < count && !r; i++)
		r = amber_gate_drain(vols[i], deadline);
	if (!r) {
		t = amber_barrier_step(vols, count, AMBER_STEP_DRAIN, t);
		for (i = 0; i < count; i++) {
			amber_cow_prepare_start(vols[i]);
			amber_gate_copy_parked(vols[i]);
		}
		starting = true;
		r = amber_flush_origins(vols, count);
	}
	/* No store names the next epoch before its image is durable. */
	if (!r) {
		t = amber_barrier_step(vols, count, AMBER_STEP_FLUSH_CLOSED, t);
		r = amber_record_epochs(vols, count, epochs);
	}
	if (!r) {
		amber_barrier_step(vols, count, AMBER_STEP_RECORD, t);
		for (i = 0; i < count; i++) {
			amber_cbt_cut(vols[i]->cbt, epochs[i]);
			amber_cow_start(vols[i], epochs[i]);
		}
	} else if (starting) {
		for (i = 0; i < count; i++)
			amber_cow_cancel_start(vols[i]);
	}
	for (i = 0; i < count; i++)
		amber_gate_open(vols[i]);
	amber_barrier_step(vols, count, AMBER_STEP_CLOSED, closed);

	if (r == -ETIMEDOUT)
		DMWARN("barrier: writes did not drain in time, nothing cut");
	return r;
}
