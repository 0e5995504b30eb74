// SPDX-License-Identifier: GPL-2.0
/*
 * The "amber" target: a pass-through over a database volume that tracks
 * changed chunks and, while a snapshot is active, copies the old content of
 * a chunk into the store before its first write.
 *
 * A write goes through three stages, each of which may park it:
 *   the gate  (gate.c)  held while a barrier is being raised
 *   the map   (cbt.c)   held until its chunk's bit is durable on the store
 *   the copy  (cow.c)   held until the chunk's old content is in a slot
 * A write that spans chunks is trimmed to its first chunk (the dm core
 * sends the rest as a new bio) unless it can pass all three at once.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include "amber.h"
#include "cbt.h"
#include "store.h"

#define AMBER_DEFAULT_BLOCK_TIMEOUT_MS	30000
#define AMBER_DEFAULT_DRAIN_TIMEOUT_MS	5000
#define AMBER_DEFAULT_INTENT_SECTORS	8192	/* 4 MiB */
#define AMBER_MAX_INTENT_SECTORS	2097152	/* 1 GiB */

void amber_kick(struct amber_volume *v)
{
	queue_work(v->wq, &v->worker);
}

static void amber_worker(struct work_struct *work)
{
	amber_cow_worker(container_of(work, struct amber_volume, worker));
}

void amber_submit_write(struct amber_volume *v, struct bio *bio)
{
	dm_submit_bio_remap(bio, NULL);
}

/* Leave only the part of @bio that lies in its first chunk. */
static void amber_trim_to_chunk(struct amber_volume *v, struct bio *bio)
{
	sector_t end = amber_chunk_sector(v, amber_chunk(v, bio->bi_iter.bi_sector) + 1);

	if (bio_end_sector(bio) > end)
		dm_accept_partial_bio(bio, end - bio->bi_iter.bi_sector);
}

/* The map and copy stages of a single-chunk write that holds the gate. */
static enum amber_route amber_write_stages(struct amber_volume *v,
					   struct bio *bio)
{
	chunk_t c = amber_chunk(v, bio->bi_iter.bi_sector);

	if (!amber_cbt_covered(v->cbt, c, c)) {
		if (bio->bi_opf & REQ_NOWAIT) {
			bio_wouldblock_error(bio);
			return AMBER_ENDED;
		}
		/* Before @bio is queued, while it holds the gate. */
		if (bio_op(bio) != REQ_OP_DISCARD)
			amber_cow_copy_ahead(v, c);
		if (!amber_cbt_mark(v->cbt, c, bio)) {
			atomic64_inc(&v->waited);
			return AMBER_HELD;
		}
	}
	return amber_cow_write(v, bio);
}

/* A write whose map bit is now durable (cbt.c) or that got a slot. */
void amber_writes_continue_one(struct amber_volume *v, struct bio *bio)
{
	amber_wait_end(v, bio);
	if (amber_cow_write(v, bio) == AMBER_REMAP)
		amber_submit_write(v, bio);
}

void amber_writes_continue(struct amber_volume *v, struct bio_list *bios)
{
	struct bio *bio;

	while ((bio = bio_list_pop(bios)))
		amber_writes_continue_one(v, bio);
}

/* A write parked at the gate, sent on when it opened (already trimmed). */
void amber_write_restart(struct amber_volume *v, struct bio *bio)
{
	amber_wait_end(v, bio);
	while (!amber_gate_enter(v, bio))
		if (amber_gate_defer(v, bio))
			return;
	if (amber_write_stages(v, bio) == AMBER_REMAP)
		amber_submit_write(v, bio);
}

static bool amber_passes_whole(struct amber_volume *v, chunk_t first,
			       chunk_t last)
{
	return READ_ONCE(v->snap->state) != AMBER_SNAP_ACTIVE &&
	       amber_cbt_covered(v->cbt, first, last);
}

static int amber_map_write(struct amber_volume *v, struct bio *bio)
{
	chunk_t first = amber_chunk(v, bio->bi_iter.bi_sector);
	chunk_t last = amber_chunk(v, bio_end_sector(bio) - 1);

	while (!amber_gate_enter(v, bio)) {
		amber_trim_to_chunk(v, bio);
		if (amber_gate_defer(v, bio))
			return DM_MAPIO_SUBMITTED;
	}
	if (first != last) {
		if (amber_passes_whole(v, first, last))
			return DM_MAPIO_REMAPPED;
		amber_trim_to_chunk(v, bio);
	}
	return amber_write_stages(v, bio) == AMBER_REMAP ?
		DM_MAPIO_REMAPPED : DM_MAPIO_SUBMITTED;
}

static int amber_map(struct dm_target *ti, struct bio *bio)
{
	struct amber_volume *v = ti->private;
	struct amber_bio *pb = dm_per_bio_data(bio, sizeof(*pb));

	pb->counted = false;
	pb->stage = AMBER_NR_STAGES;
	bio_set_dev(bio, v->origin->bdev);
	/* Reads and empty flushes change nothing: straight through. */
	if (!amber_is_write(bio))
		return DM_MAPIO_REMAPPED;
	return amber_map_write(v, bio);
}

static int amber_end_io(struct dm_target *ti, struct bio *bio,
			blk_status_t *error)
{
	struct amber_bio *pb = dm_per_bio_data(bio, sizeof(*pb));

	if (pb->counted)
		amber_gate_exit(ti->private);
	return DM_ENDIO_DONE;
}

/*
 * Table line parsing. One function per argument group; each sets ti->error.
 */
static int amber_parse_chunk(struct amber_volume *v, struct dm_arg_set *as,
			     char **error)
{
	unsigned int sectors;

	if (kstrtouint(dm_shift_arg(as), 10, &sectors) ||
	    sectors < AMBER_MIN_CHUNK_SECTORS ||
	    sectors > AMBER_MAX_CHUNK_SECTORS || !is_power_of_2(sectors)) {
		*error = "chunk_sectors must be a power of two from 8 to 2048";
		return -EINVAL;
	}
	v->chunk_sectors = sectors;
	v->chunk_shift = __ffs(sectors);
	return 0;
}

static const char *amber_feature_value(const char *arg, const char *key)
{
	size_t n = str_has_prefix(arg, key);

	return n ? arg + n : NULL;
}

static int amber_parse_ms(const char *val, unsigned int max,
			  unsigned int *ms, char **error, char *problem)
{
	if (kstrtouint(val, 10, ms) || !*ms || *ms > max) {
		*error = problem;
		return -EINVAL;
	}
	return 0;
}

static int amber_parse_intent(struct amber_volume *v, const char *val,
			      char **error)
{
	unsigned int sectors;

	if (kstrtouint(val, 10, &sectors) || !is_power_of_2(sectors) ||
	    sectors < v->chunk_sectors || sectors > AMBER_MAX_INTENT_SECTORS) {
		*error = "intent_sectors must be a power of two from chunk_sectors to 2097152";
		return -EINVAL;
	}
	v->intent_sectors = sectors;
	return 0;
}

enum amber_feature {
	AMBER_FEATURE_OVERFLOW,
	AMBER_FEATURE_BLOCK_TIMEOUT,
	AMBER_FEATURE_DRAIN_TIMEOUT,
	AMBER_FEATURE_INTENT,
	AMBER_NR_FEATURES,
};

#define AMBER_FEATURE_KEYS \
	"overflow=, block_timeout_ms=, drain_timeout_ms=, intent_sectors="

static const char * const amber_feature_keys[AMBER_NR_FEATURES] = {
	[AMBER_FEATURE_OVERFLOW] = "overflow=",
	[AMBER_FEATURE_BLOCK_TIMEOUT] = "block_timeout_ms=",
	[AMBER_FEATURE_DRAIN_TIMEOUT] = "drain_timeout_ms=",
	[AMBER_FEATURE_INTENT] = "intent_sectors=",
};

static int amber_parse_overflow(struct amber_volume *v, const char *val,
				char **error)
{
	if (!strcmp(val, "block")) {
		v->overflow = AMBER_OVERFLOW_BLOCK;
		return 0;
	}
	if (!strcmp(val, "invalidate")) {
		v->overflow = AMBER_OVERFLOW_INVALIDATE;
		return 0;
	}
	*error = "overflow must be block or invalidate";
	return -EINVAL;
}

/* One feature; @seen has a bit per feature already given. */
static int amber_parse_feature(struct amber_volume *v, const char *arg,
			       unsigned long *seen, char **error)
{
	const char *val = NULL;
	unsigned int f;

	for (f = 0; f < AMBER_NR_FEATURES; f++) {
		val = amber_feature_value(arg, amber_feature_keys[f]);
		if (val)
			break;
	}
	if (!val) {
		*error = "unknown feature: expected " AMBER_FEATURE_KEYS;
		return -EINVAL;
	}
	if (__test_and_set_bit(f, seen)) {
		*error = "a feature is given twice";
		return -EINVAL;
	}
	switch (f) {
	case AMBER_FEATURE_OVERFLOW:
		return amber_parse_overflow(v, val, error);
	case AMBER_FEATURE_BLOCK_TIMEOUT:
		return amber_parse_ms(val, 3600000, &v->block_timeout_ms, error,
				      "block_timeout_ms must be 1..3600000");
	case AMBER_FEATURE_DRAIN_TIMEOUT:
		return amber_parse_ms(val, 600000, &v->drain_timeout_ms, error,
				      "drain_timeout_ms must be 1..600000");
	default:
		return amber_parse_intent(v, val, error);
	}
}

static int amber_parse_features(struct amber_volume *v, struct dm_arg_set *as,
				char **error)
{
	static const struct dm_arg args = {0, AMBER_NR_FEATURES,
					   "invalid number of features"};
	unsigned long seen = 0;
	unsigned int argc;
	int r = 0;

	v->overflow = AMBER_OVERFLOW_BLOCK;
	v->block_timeout_ms = AMBER_DEFAULT_BLOCK_TIMEOUT_MS;
	v->drain_timeout_ms = AMBER_DEFAULT_DRAIN_TIMEOUT_MS;
	BUILD_BUG_ON(AMBER_DEFAULT_INTENT_SECTORS < AMBER_MAX_CHUNK_SECTORS);
	v->intent_sectors = AMBER_DEFAULT_INTENT_SECTORS;
	if (!as->argc)
		return 0;
	r = dm_read_arg_group(&args, as, &argc, error);
	while (!r && argc--)
		r = amber_parse_feature(v, dm_shift_arg(as), &seen, error);
	if (!r && as->argc) {
		*error = "unexpected words after the features";
		r = -EINVAL;
	}
	return r;
}

static int amber_get_devices(struct dm_target *ti, struct amber_volume *v,
			     struct dm_arg_set *as)
{
	int r;

	r = dm_get_device(ti, dm_shift_arg(as), dm_table_get_mode(ti->table),
			  &v->origin);
	if (r) {
		ti->error = "cannot open the origin device";
		return r;
	}
	r = dm_get_device(ti, dm_shift_arg(as), dm_table_get_mode(ti->table),
			  &v->store_dev);
	if (r) {
		ti->error = "cannot open the store device";
		goto bad_store;
	}
	r = -EINVAL;
	if (v->store_dev->bdev == v->origin->bdev) {
		ti->error = "the store must be another device than the origin";
		goto bad;
	}
	if (ti->begin || ti->len != bdev_nr_sectors(v->origin->bdev)) {
		ti->error = "the target must start at 0 and cover the whole origin";
		goto bad;
	}
	/* The view reads copied blocks from the store at the origin's size. */
	if (bdev_logical_block_size(v->store_dev->bdev) >
	    bdev_logical_block_size(v->origin->bdev)) {
		ti->error = "the store's logical blocks are larger than the origin's";
		goto bad;
	}
	return 0;
bad:
	dm_put_device(ti, v->store_dev);
bad_store:
	dm_put_device(ti, v->origin);
	return r;
}

static void amber_put_devices(struct dm_target *ti, struct amber_volume *v)
{
	dm_put_device(ti, v->store_dev);
	dm_put_device(ti, v->origin);
}

static void amber_init_volume(struct dm_target *ti, struct amber_volume *v)
{
	v->ti = ti;
	v->md = dm_table_get_md(ti->table);
	v->dev = disk_devt(dm_disk(v->md));
	spin_lock_init(&v->lock);
	atomic_set(&v->inflight, 0);
	atomic_set(&v->pins, 0);
	init_waitqueue_head(&v->drain_wq);
	init_waitqueue_head(&v->pins_wq);
	bio_list_init(&v->gated);
	bio_list_init(&v->deferred);
	INIT_LIST_HEAD(&v->copies_done);
	INIT_LIST_HEAD(&v->copies_inflight);
	INIT_WORK(&v->worker, amber_worker);
}

/*
 * Construct an amber device:
 *
 *   amber <origin_dev> <store_dev> <chunk_sectors> [<#features> <feature>*]
 *
 * origin_dev     the database volume; the target covers all of it
 * store_dev      formatted by "amber format" for this origin and chunk size
 * chunk_sectors  copy and tracking granule, a power of two, 8..2048
 *
 * Optional features:
 *   overflow=block|invalidate   store full: wait for a release, or give up
 *                               the snapshot at once (default block)
 *   block_timeout_ms=<n>        longest wait for a free slot (30000)
 *   drain_timeout_ms=<n>        longest wait for writes at a barrier (5000)
 *   intent_sectors=<n>          write-intent region: a power of two from
 *                               chunk_sectors to 2097152 (8192, 4 MiB)
 */
static int amber_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct amber_volume *v;
	int r;

	if (argc < 3) {
		ti->error = "expected <origin> <store> <chunk_sectors> [<#features> <feature>*]";
		return -EINVAL;
	}
	v = kzalloc(sizeof(*v), GFP_KERNEL);
	if (!v) {
		ti->error = "cannot allocate the volume";
		return -ENOMEM;
	}
	amber_init_volume(ti, v);

	r = amber_get_devices(ti, v, &as);
	if (r)
		goto bad_devices;
	r = amber_parse_chunk(v, &as, &ti->error);
	if (!r)
		r = amber_parse_features(v, &as, &ti->error);
	if (r)
		goto bad_args;
	v->nr_chunks = DIV_ROUND_UP_ULL(ti->len, v->chunk_sectors);
	if (v->nr_chunks > AMBER_MAX_CHUNKS) {
		ti->error = "the origin has more than 2^31 chunks: use larger chunks";
		r = -EINVAL;
		goto bad_args;
	}

	r = amber_store_open(ti, v->store_dev, ti->len, v->chunk_sectors,
			     &v->store);
	if (r)
		goto bad_args;
	r = amber_cbt_create(v, v->store,
			     __ffs(v->intent_sectors) - v->chunk_shift, &v->cbt);
	if (r) {
		ti->error = "cannot allocate the change maps";
		goto bad_cbt;
	}
	r = amber_cow_init(v);
	if (r) {
		ti->error = "cannot set up copy-on-write";
		goto bad_cow;
	}
	v->store->orphans = &v->snap->store_orphans;
	v->wq = alloc_workqueue("kamberd", WQ_MEM_RECLAIM, 0);
	if (!v->wq) {
		r = -ENOMEM;
		ti->error = "cannot allocate the workqueue";
		goto bad_wq;
	}

	ti->private = v;
	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->num_write_zeroes_bios = 1;
	ti->per_io_data_size = sizeof(struct amber_bio);
	ti->accounts_remapped_io = true;
	r = amber_register(v);
	if (r) {
		ti->error = "the store is in use by another amber device";
		goto bad_register;
	}
	return 0;

bad_register:
	destroy_workqueue(v->wq);
bad_wq:
	amber_cow_stop_copies(v);
	amber_cow_exit(v);
bad_cow:
	amber_cbt_destroy(v->cbt);
bad_cbt:
	amber_store_close(v->store);
bad_args:
	amber_put_devices(ti, v);
bad_devices:
	kfree(v);
	return r;
}

static void amber_dtr(struct dm_target *ti)
{
	struct amber_volume *v = ti->private;

	amber_cow_disown(v);
	amber_unregister(v);
	/* Copies end with a kick: no work may be queued after the drain. */
	amber_cow_stop_copies(v);
	cancel_delayed_work_sync(&v->block_timeout);
	cancel_delayed_work_sync(&v->copy_watch);
	destroy_workqueue(v->wq);
	amber_cbt_destroy(v->cbt);
	/* Its timed-out I/Os count in the snapshot: they end first. */
	amber_store_close(v->store);
	amber_cow_exit(v);
	amber_put_devices(ti, v);
	kfree(v);
}

static const char *amber_state_name(struct amber_volume *v)
{
	if (READ_ONCE(v->gate_closed))
		return "frozen";
	switch (v->snap->state) {
	case AMBER_SNAP_ACTIVE:
		return "active";
	case AMBER_SNAP_INVALID:
		return "invalid";
	default:
		return "idle";
	}
}

/*
 * Status (INFO), documented in docs/DESIGN.md:
 *   <state> <epoch> <chunk_sectors> <used>/<total> <copied> <released>
 *   <waited> <overflow> <cbt> <reason>
 * Table: the line it was loaded with, every feature spelled out.
 */
static void amber_status(struct dm_target *ti, status_type_t type,
			 unsigned int status_flags, char *result,
			 unsigned int maxlen)
{
	struct amber_volume *v = ti->private;
	struct amber_snapshot *s = v->snap;
	const char *overflow = v->overflow == AMBER_OVERFLOW_BLOCK ?
			       "block" : "invalidate";
	const char *cbt;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		/* Not under the snapshot's lock: it may wait for the store. */
		cbt = amber_cbt_state(v->cbt);
		spin_lock(&s->lock);
		DMEMIT("%s %llu %llu %llu/%llu %lld %lld %lld %s %s %s",
		       amber_state_name(v), v->epoch,
		       (unsigned long long)v->chunk_sectors,
		       s->slots_used, s->nr_slots,
		       atomic64_read(&s->copied),
		       atomic64_read(&s->released_count),
		       atomic64_read(&v->waited), overflow, cbt,
		       amber_reason_name(s->reason));
		spin_unlock(&s->lock);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %s %llu 4 overflow=%s block_timeout_ms=%u",
		       v->origin->name, v->store_dev->name,
		       (unsigned long long)v->chunk_sectors, overflow,
		       v->block_timeout_ms);
		DMEMIT(" drain_timeout_ms=%u intent_sectors=%u",
		       v->drain_timeout_ms, v->intent_sectors);
		break;
	default:
		*result = '\0';
		break;
	}
}

static int amber_message_snap(struct amber_volume *v, char *result,
			      unsigned int maxlen)
{
	unsigned int sz = 0;
	u64 epoch;
	int r;

	mutex_lock(&amber_registry_lock);
	r = amber_barrier(&v, 1, 0, &epoch);
	mutex_unlock(&amber_registry_lock);
	if (r)
		return r;
	DMEMIT("%llu", epoch);
	return 1;	/* the result is in @result */
}

static int amber_message_release(struct amber_volume *v, char **argv)
{
	u64 first, count;
	int r;

	if (kstrtoull(argv[1], 10, &first) || kstrtoull(argv[2], 10, &count)) {
		DMERR("%s: release: <first_chunk> <count> must be numbers",
		      dm_device_name(v->md));
		return -EINVAL;
	}
	r = amber_cow_release(v, first, count);
	if (r == -EINVAL)
		DMERR("%s: release: chunks %llu+%llu are not within 0..%llu",
		      dm_device_name(v->md), first, count, v->nr_chunks - 1);
	else if (r == -ENOENT)
		DMERR("%s: release: no snapshot is active",
		      dm_device_name(v->md));
	return r;
}

/*
 * Messages, documented in docs/DESIGN.md:
 *   snap                          raise the barrier; prints the epoch
 *   release <first_chunk> <count> the backup holds these chunks durably
 *   drop                          end the snapshot
 *   stats                         the last barrier's steps and the waits
 *                                 since, timed (stats.c)
 */
static int amber_message(struct dm_target *ti, unsigned int argc, char **argv,
			 char *result, unsigned int maxlen)
{
	struct amber_volume *v = ti->private;
	int r;

	if (argc == 1 && !strcasecmp(argv[0], "snap"))
		return amber_message_snap(v, result, maxlen);
	if (argc == 3 && !strcasecmp(argv[0], "release"))
		return amber_message_release(v, argv);
	if (argc == 1 && !strcasecmp(argv[0], "stats")) {
		mutex_lock(&amber_registry_lock);
		r = amber_stats_emit(v, result, maxlen);
		mutex_unlock(&amber_registry_lock);
		return r;
	}
	if (argc == 1 && !strcasecmp(argv[0], "drop")) {
		r = amber_cow_drop(v);
		if (r)
			DMERR("%s: drop: no snapshot is active",
			      dm_device_name(v->md));
		return r;
	}
	DMERR("%s: unknown message '%s' (%u args): expected snap, release, drop or stats",
	      dm_device_name(v->md), argc ? argv[0] : "", argc ? argc - 1 : 0);
	return -EINVAL;
}

/*
 * A step of @v's life that the registry sees: under its lock, so that a
 * barrier never runs across it (enum amber_volume_state).
 */
static void amber_step(struct amber_volume *v, enum amber_volume_state to)
{
	mutex_lock(&amber_registry_lock);
	spin_lock(&v->snap->lock);
	amber_set_state(v, to);
	spin_unlock(&v->snap->lock);
	mutex_unlock(&amber_registry_lock);
}

/* No write may hold the suspend for a free slot (cow.c). */
static void amber_presuspend(struct dm_target *ti)
{
	amber_cow_presuspend(ti->private);
}

static void amber_presuspend_undo(struct dm_target *ti)
{
	amber_cow_presuspend_undo(ti->private);
}

static void amber_postsuspend(struct dm_target *ti)
{
	struct amber_volume *v = ti->private;

	amber_step(v, AMBER_VOL_SUSPENDED);
	/*
	 * A suspend has drained every write, but the postsuspend of a device
	 * being removed may come with writes still in flight (__dm_destroy()):
	 * then the maps they set bits in stay until the destructor.
	 */
	if (amber_cbt_suspend(v->cbt, !atomic_read(&v->inflight)))
		DMWARN("%s: could not write the change map at suspend",
		       dm_device_name(v->md));
}

/*
 * A store that fails here must not keep the database suspended: the resume
 * goes on, tracking is given up and so is a snapshot (store_io_error).
 */
static int amber_preresume(struct dm_target *ti)
{
	struct amber_volume *v = ti->private;
	int r;

	if (amber_cbt_loaded(v->cbt)) {
		r = amber_cbt_resume(v->cbt);
	} else {
		r = amber_cbt_load(v->cbt);
		/* The store's epoch, even if its map could not be read. */
		v->epoch = amber_cbt_epoch(v->cbt);
	}
	if (amber_state(v) == AMBER_VOL_CONSTRUCTED)
		amber_cow_take_over(v);
	if (r == -ENOMEM) {
		DMERR("%s: no memory for the change maps at resume: tracking invalid",
		      dm_device_name(v->md));
		amber_cbt_fail(v->cbt);
	} else if (r) {
		DMERR("%s: the store failed at resume (%d): tracking invalid",
		      dm_device_name(v->md), r);
		amber_cbt_fail(v->cbt);
		amber_cow_invalidate(v, AMBER_REASON_STORE_IO_ERROR);
	}
	return 0;
}

static void amber_resume(struct dm_target *ti)
{
	amber_step(ti->private, AMBER_VOL_LIVE);
}

static int amber_iterate_devices(struct dm_target *ti,
				 iterate_devices_callout_fn fn, void *data)
{
	struct amber_volume *v = ti->private;

	return fn(ti, v->origin, 0, ti->len, data);
}

static struct target_type amber_target = {
	.name = "amber",
	.version = {AMBER_VERSION_MAJOR, AMBER_VERSION_MINOR,
		    AMBER_VERSION_PATCH},
	.features = DM_TARGET_SINGLETON | DM_TARGET_NOWAIT,
	.module = THIS_MODULE,
	.ctr = amber_ctr,
	.dtr = amber_dtr,
	.map = amber_map,
	.end_io = amber_end_io,
	.presuspend = amber_presuspend,
	.presuspend_undo = amber_presuspend_undo,
	.postsuspend = amber_postsuspend,
	.preresume = amber_preresume,
	.resume = amber_resume,
	.status = amber_status,
	.message = amber_message,
	.iterate_devices = amber_iterate_devices,
};

int amber_target_init(void)
{
	return dm_register_target(&amber_target);
}

void amber_target_exit(void)
{
	dm_unregister_target(&amber_target);
}
