/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-amber internals: one struct amber_volume per "amber" target, and the
 * contracts between the files that work on it.
 *
 *   target.c   table line, map/end_io, status, messages
 *   gate.c     the commit barrier: in-flight accounting, close/drain/cut/open
 *   cow.c      copy-on-write into store slots, release, drop, invalidation
 *   cbt.c      change maps with write intent on the store
 *   store.c    the store superblock
 *   view.c     the read-only "amber-view" target
 *   chunks.c   the locks on a snapshot's chunks: view reads share one,
 *              a copy holds one alone, the snapshot's end takes all
 *   control.c  /dev/amber-control
 *   main.c     module init/exit and the registry of volumes
 *
 * Locks, outermost first:
 *   amber_registry_lock (mutex)   registry of volumes, group barriers
 *   s->lock (spinlock)            a snapshot's state, slots, index, owner;
 *                                 nothing under it sleeps or allocates but
 *                                 GFP_NOWAIT (what may is done before it)
 *   v->lock (spinlock, irq-safe)  gate, deferred bio lists, counters
 *   cbt->lock (spinlock)          change-map bits and the commit queue
 */
#ifndef DM_AMBER_H
#define DM_AMBER_H

#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/dm-kcopyd.h>
#include <linux/hash.h>
#include <linux/mempool.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/sched/mm.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "compat.h"
#include "uapi/amber.h"

#define DM_MSG_PREFIX "amber"

typedef u64 chunk_t;

enum amber_overflow {
	AMBER_OVERFLOW_BLOCK,
	AMBER_OVERFLOW_INVALIDATE,
};

enum amber_snap_state {
	AMBER_SNAP_NONE,	/* no snapshot: writes pass (after tracking) */
	AMBER_SNAP_STARTING,	/* gates closed by a barrier: copies begin */
	AMBER_SNAP_ACTIVE,	/* first writes copy, the view reads */
	AMBER_SNAP_INVALID,	/* writes pass, the view fails every read */
};

enum amber_invalid_reason {
	AMBER_REASON_NONE,
	AMBER_REASON_STORE_FULL,
	AMBER_REASON_BLOCK_TIMEOUT,
	AMBER_REASON_STORE_IO_ERROR,
	AMBER_REASON_ORIGIN_IO_ERROR,
	AMBER_REASON_NO_MEMORY,
};

/*
 * The life of one table (struct amber_volume). dm takes each step under the
 * dm device's suspend lock, so two steps never race; the next table's first
 * preresume, which hands this one over, runs under the same lock. Every
 * step holds the snapshot's lock (cow.c reads the state under it); a step
 * that changes what the registry sees (amber_in_use(), CONSTRUCTED,
 * HANDED_OVER) also holds amber_registry_lock, so a barrier or a lookup
 * under it sees none mid-way. Read without a lock with amber_state().
 *
 *   CONSTRUCTED -> SUSPENDED     first preresume: maps loaded, snapshot
 *                                taken over from the table it replaces
 *                                (a later preresume takes no step)
 *   SUSPENDED   -> LIVE          resume
 *   LIVE        -> SUSPENDING    presuspend: no write waits for a slot
 *   SUSPENDING  -> LIVE          presuspend_undo
 *   SUSPENDING  -> SUSPENDED     postsuspend: the change map on the store
 *   SUSPENDED   -> HANDED_OVER   the next table's first preresume: this one
 *                                is destroyed next, no lookup finds it
 */
enum amber_volume_state {
	AMBER_VOL_CONSTRUCTED,
	AMBER_VOL_SUSPENDED,
	AMBER_VOL_LIVE,
	AMBER_VOL_SUSPENDING,
	AMBER_VOL_HANDED_OVER,
};

/* What became of a write handed to one of the stages of the write path. */
enum amber_route {
	AMBER_REMAP,		/* send it to the origin now */
	AMBER_HELD,		/* parked: a later event sends it on */
	AMBER_ENDED,		/* completed (or failed) here */
	AMBER_REQUEUE,		/* cow.c only: to end for dm to requeue */
};

/* Hash buckets counting view reads in flight, by chunk. */
#define AMBER_READ_BUCKETS_SHIFT	10
#define AMBER_READ_BUCKETS		BIT(AMBER_READ_BUCKETS_SHIFT)

struct amber_store;
struct amber_cbt;
struct amber_volume;
struct amber_copy;

/* Where a write may wait on its way to the origin (stats.c). */
enum amber_stage {
	AMBER_STAGE_GATE,	/* at a closed gate, for the barrier */
	AMBER_STAGE_INTENT,	/* for its region's write intent (cbt.c) */
	AMBER_STAGE_COPY,	/* for its chunk's copy into the store */
	AMBER_STAGE_READERS,	/* for view reads of its chunk */
	AMBER_STAGE_SLOT,	/* for a free slot */
	AMBER_NR_STAGES,
};

/* The steps of a barrier, timed (gate.c). */
enum amber_barrier_step {
	AMBER_STEP_PREPARE,	/* next maps and intent, origins flushed */
	AMBER_STEP_DRAIN,	/* gates closed, until no write is in flight */
	AMBER_STEP_FLUSH_CLOSED, /* the origins flushed again, gates closed */
	AMBER_STEP_RECORD,	/* the next epoch written to the stores */
	AMBER_STEP_CLOSED,	/* from the first gate closed to the last open */
	AMBER_NR_STEPS,
};

/* The writes that waited at one stage since the last barrier. */
struct amber_wait_stat {
	atomic64_t count;
	atomic64_t total_ns;
	atomic64_t max_ns;
};

/*
 * The copy-on-write state of one store (cow.c): the snapshot, the slots of
 * the store, and the view reads that read them. The tables of one dm device
 * on the same origin, store and chunk size share it: a table loaded to
 * replace the live one takes a reference at construction, so that a reload
 * moves nothing. The view reads of the old table and the writes of the new
 * one meet in ->reads[] by construction, and the old table's end leaves the
 * snapshot to the new one. Freed with its last table.
 */
struct amber_snapshot {
	refcount_t ref;			/* one per table that uses it */
	spinlock_t lock;		/* never taken in interrupt context */
	/*
	 * The table whose writes may wait here (for a copy, a slot or a view
	 * read): the one that made the snapshot object, then each table that
	 * takes it over at its first resume. Kicked when a view read ends.
	 * NULL once that table is going, which ends the snapshot. Set under
	 * ->lock, read under RCU.
	 */
	struct amber_volume __rcu *owner;

	enum amber_snap_state state;
	unsigned int view_gen;		/* odd while state leaves ACTIVE (chunks.c) */
	enum amber_invalid_reason reason;
	/*
	 * Change tracking failed and the store could not record it: the
	 * next table to load the store must not trust its maps (cbt.c).
	 */
	bool maps_unrecorded;
	/*
	 * Store I/Os of the tables that timed out and have not ended: a
	 * table that loads the store waits for them (cbt.c), lest a write of
	 * the old table land after its own.
	 */
	atomic_t store_orphans;
	/*
	 * Chunks released by the backup: allocated by the first release of a
	 * snapshot, set under ->lock, freed by the drop after an RCU grace
	 * period and the view reads. Read with amber_chunk_released().
	 */
	unsigned long __rcu *released;
	/*
	 * Chunk -> slot (a value entry: copied), or -> the copy that holds
	 * it (chunks.c).
	 */
	struct xarray index;
	unsigned long *slots;		/* slot in use */
	u64 nr_slots;
	u64 slots_used;
	u64 slot_rotor;
	unsigned long blocked_since;	/* jiffies: store full, no slot freed */

	/*
	 * View reads in flight (view.c), through any of the tables; they keep
	 * the object, not the table they went through (amber_snapshot_put()).
	 */
	atomic_t reads[AMBER_READ_BUCKETS];
	atomic_t view_reads;
	wait_queue_head_t reads_wq;	/* a read ended: release, drop, put */

	/* Counters for status. */
	atomic64_t copied;
	atomic64_t released_count;
};

struct amber_volume {
	struct dm_target *ti;
	struct mapped_device *md;
	dev_t dev;			/* of the dm device: the registry key */
	struct list_head registry;	/* on amber_volumes, RCU */
	enum amber_volume_state state;	/* see its definition */
	struct dm_dev *origin;
	struct dm_dev *store_dev;
	struct amber_store *store;
	struct amber_cbt *cbt;
	struct amber_snapshot *snap;	/* set at construction, never changed */

	sector_t chunk_sectors;
	unsigned int chunk_shift;
	chunk_t nr_chunks;

	enum amber_overflow overflow;
	unsigned int block_timeout_ms;
	unsigned int drain_timeout_ms;
	unsigned int intent_sectors;	/* write-intent region (cbt.c) */

	struct workqueue_struct *wq;
	struct work_struct worker;	/* retries the parked writes below */
	struct work_struct copy_work;	/* finishes the copies kcopyd ended */
	struct delayed_work block_timeout;
	struct delayed_work copy_watch;	/* a copy the store does not end */
	struct dm_kcopyd_client *kcopyd;
	mempool_t copy_pool;

	/* The gate (gate.c). */
	spinlock_t lock;
	bool gate_closed;
	atomic_t inflight;		/* writes past the gate, not yet ended */
	wait_queue_head_t drain_wq;
	struct bio_list gated;		/* arrived while the gate was closed */

	/* Deferred work, under ->lock, drained by ->worker. */
	struct list_head copies_done;	/* kcopyd finished these copies */
	struct list_head copies_inflight; /* kcopyd has these, oldest first */
	/*
	 * Writes the worker looks at again (amber_cow_worker()), each at the
	 * stage its per-bio data names: AMBER_STAGE_READERS, for the view
	 * reads of its chunk; AMBER_STAGE_SLOT, for a free slot;
	 * AMBER_STAGE_COPY, for a copy given up at the snapshot's end.
	 */
	struct bio_list deferred;
	unsigned int slot_waiters;	/* of ->deferred, at AMBER_STAGE_SLOT */
	unsigned int rewrites;		/* of ->deferred, at ..._SLOT or _COPY */
	atomic_t readers_wanted;	/* one of ->deferred, at ..._READERS */

	/* What keeps the volume from being freed (main.c). */
	atomic_t pins;			/* control calls outside the registry lock */
	wait_queue_head_t pins_wq;	/* a pin ended: dtr */

	/* Last barrier cut: set by preresume, then under ->snap->lock. */
	u64 epoch;

	atomic64_t waited;		/* for status */
	/* For the stats message (stats.c): since the last barrier. */
	struct amber_wait_stat waits[AMBER_NR_STAGES];
	/* Copies started while their write waited (intent, a barrier). */
	atomic64_t copied_ahead;
	u64 barrier_ns[AMBER_NR_STEPS];	/* under amber_registry_lock */
};

/* Per-bio data of the amber target. */
struct amber_bio {
	bool counted;			/* holds a reference on ->inflight */
	u8 stage;			/* where it waits, or AMBER_NR_STAGES */
	u64 waiting_since;		/* ktime_get_ns() */
};

/* Per-bio data of the amber-view target. */
struct amber_view_bio {
	struct amber_snapshot *snap;	/* NULL: the read was failed in map */
	chunk_t first;			/* chunks counted in snap->reads[] */
	unsigned int nr;
	unsigned int gen;		/* snap->view_gen when mapped */
};

/*
 * A zeroed bitmap of @nbits (at most AMBER_MAX_CHUNKS) that may be larger
 * than kmalloc() gives; freed with kvfree().
 */
static inline unsigned long *amber_bitmap_zalloc(u64 nbits)
{
	return kvcalloc(BITS_TO_LONGS(nbits), sizeof(unsigned long), GFP_KERNEL);
}

/*
 * The same, without I/O in reclaim: where the caller, or a suspend that
 * waits for it, holds back writes to the volume.
 */
static inline unsigned long *amber_bitmap_zalloc_noio(u64 nbits)
{
	unsigned int noio = memalloc_noio_save();
	unsigned long *map = amber_bitmap_zalloc(nbits);

	memalloc_noio_restore(noio);
	return map;
}

/* The backup released one of chunks [@first, @first + @nr). */
static inline bool amber_range_released(struct amber_snapshot *s,
					chunk_t first, chunk_t nr)
{
	unsigned long *released;
	bool r;

	rcu_read_lock();
	released = rcu_dereference(s->released);
	r = released && find_next_bit(released, first + nr, first) < first + nr;
	rcu_read_unlock();
	return r;
}

static inline bool amber_chunk_released(struct amber_snapshot *s, chunk_t c)
{
	unsigned long *released;
	bool r;

	rcu_read_lock();
	released = rcu_dereference(s->released);
	r = released && test_bit(c, released);
	rcu_read_unlock();
	return r;
}

static inline enum amber_volume_state amber_state(struct amber_volume *v)
{
	/* Pairs with amber_set_state(). */
	return smp_load_acquire(&v->state);
}

/* I/O flows through a table in @state: its dm device's table in use. */
static inline bool amber_state_in_use(enum amber_volume_state state)
{
	return state == AMBER_VOL_LIVE || state == AMBER_VOL_SUSPENDING;
}

static inline bool amber_in_use(struct amber_volume *v)
{
	return amber_state_in_use(amber_state(v));
}

static inline chunk_t amber_chunk(struct amber_volume *v, sector_t sector)
{
	return sector >> v->chunk_shift;
}

static inline sector_t amber_chunk_sector(struct amber_volume *v, chunk_t c)
{
	return (sector_t)c << v->chunk_shift;
}

static inline atomic_t *amber_read_bucket(struct amber_snapshot *s, chunk_t c)
{
	return &s->reads[hash_64(c, AMBER_READ_BUCKETS_SHIFT)];
}

static inline bool amber_is_write(struct bio *bio)
{
	return op_is_write(bio_op(bio)) && bio_sectors(bio);
}

/* stats.c */
void amber_wait_begin(struct bio *bio, enum amber_stage stage);
void amber_wait_end(struct amber_volume *v, struct bio *bio);
void amber_stats_reset(struct amber_volume *v);
int amber_stats_emit(struct amber_volume *v, char *result,
		     unsigned int maxlen);

/* main.c: the registry. */
extern struct mutex amber_registry_lock;
int amber_register(struct amber_volume *v);
void amber_unregister(struct amber_volume *v);
void amber_set_state(struct amber_volume *v, enum amber_volume_state to);
struct amber_volume *amber_lookup(dev_t dev);
struct amber_volume *amber_predecessor(struct amber_volume *v);
void amber_pin(struct amber_volume *v);
void amber_unpin(struct amber_volume *v);

/* target.c */
int amber_target_init(void);
void amber_target_exit(void);
void amber_kick(struct amber_volume *v);
void amber_submit_write(struct amber_volume *v, struct bio *bio);
void amber_write_restart(struct amber_volume *v, struct bio *bio);
void amber_writes_continue_one(struct amber_volume *v, struct bio *bio);
void amber_writes_continue(struct amber_volume *v, struct bio_list *bios);

/* gate.c */
bool amber_gate_enter(struct amber_volume *v, struct bio *bio);
bool amber_gate_defer(struct amber_volume *v, struct bio *bio);
void amber_gate_exit(struct amber_volume *v);
int amber_barrier(struct amber_volume **vols, unsigned int count,
		  unsigned int timeout_ms, u64 *epochs);

/* cow.c */
int amber_cow_module_init(void);
void amber_cow_module_exit(void);
int amber_cow_init(struct amber_volume *v);
void amber_cow_stop_copies(struct amber_volume *v);
void amber_cow_exit(struct amber_volume *v);
int amber_cow_write(struct amber_volume *v, struct bio *bio);
void amber_cow_copy_ahead(struct amber_volume *v, chunk_t c);
void amber_cow_worker(struct amber_volume *v);
int amber_cow_can_start(struct amber_volume *v);
void amber_cow_prepare_start(struct amber_volume *v);
void amber_cow_copy_early(struct amber_volume *v, chunk_t c);
void amber_cow_start(struct amber_volume *v, u64 epoch);
void amber_cow_cancel_start(struct amber_volume *v);
int amber_cow_release(struct amber_volume *v, chunk_t first, u64 count);
void amber_cow_take_over(struct amber_volume *v);
void amber_cow_disown(struct amber_volume *v);
void amber_snapshot_kick(struct amber_snapshot *s);
void amber_snapshot_read_ended(struct amber_snapshot *s);
void amber_cow_presuspend(struct amber_volume *v);
void amber_cow_presuspend_undo(struct amber_volume *v);
int amber_cow_drop(struct amber_volume *v);
void amber_cow_invalidate(struct amber_volume *v,
			  enum amber_invalid_reason reason);
int amber_cow_list_copied(struct amber_volume *v, chunk_t start, u64 *out,
			  u64 max, u64 *count);
const char *amber_reason_name(enum amber_invalid_reason reason);

/* chunks.c: the locks on a snapshot's chunks */
void amber_reads_lock(struct amber_snapshot *s, chunk_t first, unsigned int nr);
void amber_reads_trim(struct amber_snapshot *s, chunk_t first, unsigned int nr);
void amber_reads_unlock(struct amber_snapshot *s, chunk_t first,
			unsigned int nr);
bool amber_chunk_read_locked(struct amber_snapshot *s, chunk_t c);
int amber_chunk_wait_reads(struct amber_snapshot *s, chunk_t c);
void amber_reads_wait_all(struct amber_snapshot *s);
struct amber_copy *amber_chunk_copy(struct amber_snapshot *s, chunk_t c);
int amber_chunk_lock_copy(struct amber_snapshot *s, chunk_t c,
			  struct amber_copy *copy);
bool amber_chunk_unlock_copy(struct amber_snapshot *s, chunk_t c,
			     struct amber_copy *copy, s64 slot);
void amber_snapshot_end_active(struct amber_snapshot *s,
			       enum amber_snap_state state);
unsigned int amber_snapshot_gen(struct amber_snapshot *s);
bool amber_snapshot_gen_moved(struct amber_snapshot *s, unsigned int gen);

/* The copy an index entry names, or NULL (a slot, or no entry). */
static inline struct amber_copy *amber_entry_copy(void *entry)
{
	return xa_is_value(entry) ? NULL : entry;
}

/* A generation seen while the snapshot's state changes. */
static inline bool amber_gen_ending(unsigned int gen)
{
	return gen & 1;
}

/* view.c */
int amber_view_init(void);
void amber_view_exit(void);

/* control.c */
int amber_control_init(void);
void amber_control_exit(void);

#endif /* DM_AMBER_H */
