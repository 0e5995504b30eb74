// SPDX-License-Identifier: GPL-2.0
/*
 * The "amber-view" target: the read-only image of the active snapshot.
 *
 * A view read holds the chunks it covers (chunks.c) before it decides where
 * they come from: a chunk copied into the store is read from its slot, an
 * untouched chunk from the origin, a released chunk not at all (EIO). A
 * read that covers only untouched chunks goes to the origin whole; any other
 * is trimmed to its first chunk.
 *
 * The view finds its volume by device number through the registry on every
 * read, under RCU, so that a reload or removal of the amber table never
 * leaves it with a stale pointer, and a view without a volume fails reads.
 * A read counts itself in the volume's snapshot, which a reloaded table
 * shares with the one it replaces (cow.c), and which outlives the reads
 * counted in it: the table itself does not wait for them.
 * Device numbers are reused once a dm device is removed, so the volume must
 * also have the store uuid the view was made for: a view never reads
 * another volume that later took the number. The view does not open the
 * amber device, which the database's file system holds; it opens the
 * origin and the store, which its reads go to, for their queue limits.
 */
#include "amber.h"
#include "store.h"

struct amber_view {
	dev_t amber_dev;
	u8 uuid[16];			/* of the volume's store superblock */
	struct dm_dev *origin;
	struct dm_dev *store;
};

/* The volume @view was made for, if it still exists. */
static struct amber_volume *amber_view_volume(struct amber_view *view)
{
	struct amber_volume *v = amber_lookup(view->amber_dev);

	if (v && memcmp(v->store->sb->uuid, view->uuid, sizeof(view->uuid)))
		return NULL;
	return v;
}

/* Look at chunks [first, first + nr) after counting the read in them. */
static bool amber_view_untouched(struct amber_snapshot *s, chunk_t first,
				 unsigned int nr)
{
	unsigned long idx = first;

	if (amber_range_released(s, first, nr))
		return false;
	smp_rmb();	/* released, then unmapped: amber_cow_release() */
	return !xa_find(&s->index, &idx, first + nr - 1, XA_PRESENT);
}

/*
 * A read that is counted must end through end_io to be uncounted, which
 * DM_MAPIO_KILL would skip: fail it with bio_io_error() instead.
 */
static int amber_view_route(struct amber_volume *v, struct bio *bio,
			    struct amber_view_bio *pb)
{
	struct amber_snapshot *s = v->snap;
	chunk_t c = pb->first;
	void *entry;

	if (READ_ONCE(s->state) != AMBER_SNAP_ACTIVE || amber_chunk_released(s, c)) {
		bio_io_error(bio);
		return DM_MAPIO_SUBMITTED;
	}
	smp_rmb();	/* released, then unmapped: amber_cow_release() */
	entry = xa_load(&s->index, c);
	if (xa_is_value(entry)) {
		sector_t offset = bio->bi_iter.bi_sector & (v->chunk_sectors - 1);

		bio_set_dev(bio, v->store_dev->bdev);
		bio->bi_iter.bi_sector = offset +
			amber_store_slot_sector(v->store, xa_to_value(entry));
	} else {
		bio_set_dev(bio, v->origin->bdev);
	}
	return DM_MAPIO_REMAPPED;
}

/*
 * Count the read in @v's snapshot and send it on. Under the RCU read lock,
 * which keeps @v (amber_unregister()); the read in flight keeps only the
 * snapshot, so a table that is replaced or removed does not wait for it.
 */
static int amber_view_map_volume(struct amber_volume *v, struct bio *bio,
				 struct amber_view_bio *pb)
{
	struct amber_snapshot *s = v->snap;
	chunk_t last;

	pb->snap = s;
	pb->first = amber_chunk(v, bio->bi_iter.bi_sector);
	last = amber_chunk(v, bio_end_sector(bio) - 1);
	pb->nr = last - pb->first + 1;

	amber_reads_lock(s, pb->first, pb->nr);
	pb->gen = amber_snapshot_gen(s);
	if (amber_gen_ending(pb->gen)) {
		/* The snapshot is ending (amber_snapshot_end_active()). */
		bio_io_error(bio);
		return DM_MAPIO_SUBMITTED;
	}
	if (pb->nr > 1) {
		if (READ_ONCE(s->state) == AMBER_SNAP_ACTIVE &&
		    amber_view_untouched(s, pb->first, pb->nr)) {
			bio_set_dev(bio, v->origin->bdev);
			return DM_MAPIO_REMAPPED;
		}
		amber_reads_trim(s, pb->first, pb->nr);
		pb->nr = 1;
		dm_accept_partial_bio(bio, amber_chunk_sector(v, pb->first + 1) -
					   bio->bi_iter.bi_sector);
	}
	return amber_view_route(v, bio, pb);
}

static int amber_view_map(struct dm_target *ti, struct bio *bio)
{
	struct amber_view_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	struct amber_volume *v;
	int r = DM_MAPIO_KILL;

	pb->snap = NULL;
	if (bio_op(bio) != REQ_OP_READ)
		return DM_MAPIO_KILL;
	rcu_read_lock();
	v = amber_view_volume(ti->private);
	if (v)
		r = amber_view_map_volume(v, bio, pb);
	rcu_read_unlock();
	return r;
}

static int amber_view_end_io(struct dm_target *ti, struct bio *bio,
			     blk_status_t *error)
{
	struct amber_view_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	struct amber_snapshot *s = pb->snap;

	if (s) {
		/* The snapshot ended while we read: the data may be newer. */
		if (amber_snapshot_gen_moved(s, pb->gen) && !*error)
			*error = BLK_STS_IOERR;
		amber_reads_unlock(s, pb->first, pb->nr);
	}
	return DM_ENDIO_DONE;
}

/* <amber_dev> is "major:minor" or a device node. */
static int amber_view_parse_dev(const char *arg, dev_t *dev)
{
	unsigned int major, minor;
	char dummy;

	if (sscanf(arg, "%u:%u%c", &major, &minor, &dummy) == 2) {
		*dev = MKDEV(major, minor);
		return MAJOR(*dev) == major && MINOR(*dev) == minor ? 0 : -EINVAL;
	}
	return lookup_bdev(arg, dev);
}

/*
 * Construct a view:
 *
 *   amber-view <amber_dev>
 *
 * amber_dev  the dm device of an "amber" target; the view has its length.
 * The table must be read-only (dmsetup create --readonly).
 */
static int amber_view_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct amber_view *view;
	struct amber_volume *v;
	char origin[16], store[16];
	int r;

	if (argc != 1) {
		ti->error = "expected <amber_dev>";
		return -EINVAL;
	}
	if (dm_table_get_mode(ti->table) & AMBER_OPEN_WRITE) {
		ti->error = "the view is read-only: create it with --readonly";
		return -EINVAL;
	}
	view = kzalloc(sizeof(*view), GFP_KERNEL);
	if (!view) {
		ti->error = "cannot allocate the view";
		return -ENOMEM;
	}
	r = amber_view_parse_dev(argv[0], &view->amber_dev);
	if (r) {
		ti->error = "cannot find the amber device";
		goto bad;
	}

	r = -EINVAL;
	mutex_lock(&amber_registry_lock);
	v = amber_lookup(view->amber_dev);
	if (!v)
		ti->error = "not an amber device";
	else if (ti->begin || ti->len != v->ti->len)
		ti->error = "the view must start at 0 and have the amber device's length";
	else
		r = 0;
	if (!r) {
		strscpy(origin, v->origin->name, sizeof(origin));
		strscpy(store, v->store_dev->name, sizeof(store));
		memcpy(view->uuid, v->store->sb->uuid, sizeof(view->uuid));
	}
	mutex_unlock(&amber_registry_lock);
	if (r)
		goto bad;

	r = dm_get_device(ti, origin, dm_table_get_mode(ti->table),
			  &view->origin);
	if (r) {
		ti->error = "cannot open the origin device";
		goto bad;
	}
	r = dm_get_device(ti, store, dm_table_get_mode(ti->table),
			  &view->store);
	if (r) {
		ti->error = "cannot open the store device";
		goto bad_store;
	}
	ti->private = view;
	ti->per_io_data_size = sizeof(struct amber_view_bio);
	return 0;

bad_store:
	dm_put_device(ti, view->origin);
bad:
	kfree(view);
	return r;
}

static void amber_view_dtr(struct dm_target *ti)
{
	struct amber_view *view = ti->private;

	dm_put_device(ti, view->store);
	dm_put_device(ti, view->origin);
	kfree(view);
}

/* Status: <state> <epoch> of the amber device, or "gone". */
static void amber_view_status(struct dm_target *ti, status_type_t type,
			      unsigned int status_flags, char *result,
			      unsigned int maxlen)
{
	struct amber_view *view = ti->private;
	struct amber_volume *v;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		mutex_lock(&amber_registry_lock);
		v = amber_view_volume(view);
		if (v)
			DMEMIT("%s %llu", v->snap->state == AMBER_SNAP_ACTIVE ?
			       "active" : v->snap->state == AMBER_SNAP_INVALID ?
			       "invalid" : "idle", v->epoch);
		else
			DMEMIT("gone 0");
		mutex_unlock(&amber_registry_lock);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%u:%u", MAJOR(view->amber_dev), MINOR(view->amber_dev));
		break;
	default:
		*result = '\0';
		break;
	}
}

/*
 * Reads go to the origin and to the store's slots, so the view's queue
 * limits stack both. The amber target refuses a store whose logical blocks
 * are larger than the origin's, so the view's block size is the origin's.
 * The store's area is all of it: the view does not know where its slots
 * end.
 */
static int amber_view_iterate_devices(struct dm_target *ti,
				      iterate_devices_callout_fn fn, void *data)
{
	struct amber_view *view = ti->private;
	int r;

	r = fn(ti, view->origin, 0, ti->len, data);
	if (r)
		return r;
	return fn(ti, view->store, 0, bdev_nr_sectors(view->store->bdev), data);
}

static struct target_type amber_view_target = {
	.name = "amber-view",
	.version = {AMBER_VERSION_MAJOR, AMBER_VERSION_MINOR,
		    AMBER_VERSION_PATCH},
	.features = DM_TARGET_SINGLETON,
	.module = THIS_MODULE,
	.ctr = amber_view_ctr,
	.dtr = amber_view_dtr,
	.map = amber_view_map,
	.end_io = amber_view_end_io,
	.status = amber_view_status,
	.iterate_devices = amber_view_iterate_devices,
};

int amber_view_init(void)
{
	return dm_register_target(&amber_view_target);
}

void amber_view_exit(void)
{
	dm_unregister_target(&amber_view_target);
}
