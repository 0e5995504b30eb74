// SPDX-License-Identifier: GPL-2.0
/*
 * Changed-block tracking with write intent.
 *
 * Epoch E's map lives in ring slot E % cbt_epochs on the store. Writes of
 * the current epoch set bits in ->mem; a write may reach the origin only
 * once its bit is in ->durable, that is once the map block that holds it has
 * been written to the store and flushed. Writes waiting for that are
 * committed in groups by ->commit_work: one pass writes every dirty block,
 * flushes once and releases every write of the batch.
 *
 * On disk a slot may still hold bits of the epoch that used it cbt_epochs
 * barriers ago, in the blocks the current epoch has not written yet: extra
 * bits, never a missing one. When an epoch closes, ->writeout_work writes its
 * whole map from memory, which makes the closed map exact; a suspend does the
 * same for the current map and marks the store clean.
 *
 * Memory: ->mem and ->durable for the current epoch, ->closing (the map of
 * the epoch just closed, until it is written out) and ->retired, which
 * become the two zeroed ->spare maps of the next cut: four bits per chunk.
 */
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include "cbt.h"

#define AMBER_MAP_BLOCK		4096
#define AMBER_MAP_BLOCK_BITS	(AMBER_MAP_BLOCK * 8)
#define AMBER_MAP_BLOCK_SECTORS	(AMBER_MAP_BLOCK >> SECTOR_SHIFT)

struct amber_cbt {
	struct amber_volume *v;
	struct amber_store *store;
	size_t map_bytes;		/* whole map blocks */
	unsigned long nr_blocks;
	bool loaded;

	spinlock_t lock;		/* the fields below, and ->mem bits */
	u64 epoch;			/* current epoch */
	unsigned long *mem;
	unsigned long *durable;
	unsigned long *dirty_blocks;	/* blocks of ->mem not yet on disk */
	struct bio_list waiting;
	bool failed;			/* a map write failed this epoch */

	/* Owned by the barrier and ->writeout_work, which never overlap. */
	unsigned long *closing;		/* ->mem of the epoch just closed */
	unsigned long *retired;		/* ->durable of the epoch just closed */
	u64 closing_epoch;
	unsigned long *spare[2];	/* zeroed, the next ->mem and ->durable */

	void *staging;			/* one block, ->commit_work only */
	struct work_struct commit_work;
	struct work_struct writeout_work;
};

static unsigned long *amber_map_alloc(struct amber_cbt *cbt)
{
	return kvzalloc(cbt->map_bytes, GFP_KERNEL);
}

static sector_t amber_map_sector(struct amber_cbt *cbt, u64 epoch)
{
	struct amber_store *s = cbt->store;

	return s->cbt_offset + (epoch % s->cbt_epochs) * s->cbt_map_sectors;
}

u64 amber_cbt_epoch(struct amber_cbt *cbt)
{
	return READ_ONCE(cbt->epoch);
}

bool amber_cbt_loaded(struct amber_cbt *cbt)
{
	return cbt->loaded;
}

/*
 * A map write failed: the maps up to the current epoch can no longer be
 * trusted. Say so on the store if it still takes writes; the next backup
 * must be a full one. Origin writes go on regardless.
 */
static void amber_cbt_fail(struct amber_cbt *cbt)
{
	struct amber_store *s = cbt->store;
	u64 epoch;

	spin_lock(&cbt->lock);
	if (cbt->failed) {
		spin_unlock(&cbt->lock);
		return;
	}
	cbt->failed = true;
	epoch = cbt->epoch;
	spin_unlock(&cbt->lock);

	DMERR("%s: change map write failed: the next backup must be full",
	      dm_device_name(cbt->v->md));
	mutex_lock(&s->sb_lock);
	s->sb->flags |= cpu_to_le32(AMBER_SB_CBT_FAILED);
	s->sb->cbt_valid_from = cpu_to_le64(epoch + 1);
	amber_store_commit(s);
	mutex_unlock(&s->sb_lock);
}

/* Write one dirty block of ->mem; false when none was left. */
static bool amber_cbt_write_one_block(struct amber_cbt *cbt, int *error)
{
	unsigned long blk;
	sector_t sector;
	int r;

	spin_lock(&cbt->lock);
	blk = find_first_bit(cbt->dirty_blocks, cbt->nr_blocks);
	if (blk >= cbt->nr_blocks) {
		spin_unlock(&cbt->lock);
		return false;
	}
	__clear_bit(blk, cbt->dirty_blocks);
	memcpy(cbt->staging, (char *)cbt->mem + blk * AMBER_MAP_BLOCK,
	       AMBER_MAP_BLOCK);
	sector = amber_map_sector(cbt, cbt->epoch) + blk * AMBER_MAP_BLOCK_SECTORS;
	spin_unlock(&cbt->lock);

	r = amber_store_rw(cbt->store, REQ_OP_WRITE, sector, cbt->staging,
			   AMBER_MAP_BLOCK);
	if (r)
		*error = r;
	return true;
}

/*
 * Group commit: take every waiting write, write every dirty block (this
 * covers the bits of the batch: each was set before its write was queued),
 * flush, then let the batch go.
 */
static void amber_cbt_commit(struct work_struct *work)
{
	struct amber_cbt *cbt = container_of(work, struct amber_cbt, commit_work);
	struct amber_volume *v = cbt->v;
	struct bio_list batch;
	struct bio *bio;
	int error = 0;

	spin_lock(&cbt->lock);
	batch = cbt->waiting;
	bio_list_init(&cbt->waiting);
	spin_unlock(&cbt->lock);

	while (amber_cbt_write_one_block(cbt, &error))
		;
	if (!error)
		error = amber_store_flush(cbt->store);
	if (error)
		amber_cbt_fail(cbt);

	spin_lock(&cbt->lock);
	bio_list_for_each(bio, &batch)
		set_bit(amber_chunk(v, bio->bi_iter.bi_sector), cbt->durable);
	spin_unlock(&cbt->lock);

	amber_writes_continue(v, &batch);
}

bool amber_cbt_durable(struct amber_cbt *cbt, chunk_t first, chunk_t last)
{
	return find_next_zero_bit(cbt->durable, last + 1, first) > last;
}

bool amber_cbt_mark(struct amber_cbt *cbt, chunk_t c, struct bio *bio)
{
	if (test_bit(c, cbt->durable))
		return true;

	spin_lock(&cbt->lock);
	if (test_bit(c, cbt->durable) || cbt->failed) {
		spin_unlock(&cbt->lock);
		return true;
	}
	__set_bit(c, cbt->mem);
	__set_bit(c / AMBER_MAP_BLOCK_BITS, cbt->dirty_blocks);
	bio_list_add(&cbt->waiting, bio);
	spin_unlock(&cbt->lock);

	queue_work(cbt->v->wq, &cbt->commit_work);
	return false;
}

static int amber_cbt_write_map(struct amber_cbt *cbt, unsigned long *map,
			       u64 epoch)
{
	int r = amber_store_rw(cbt->store, REQ_OP_WRITE,
			       amber_map_sector(cbt, epoch), map, cbt->map_bytes);

	return r ? r : amber_store_flush(cbt->store);
}

/*
 * After a cut: write the closed epoch's whole map (making it exact), then
 * zero the two maps the next cut will take.
 */
static void amber_cbt_writeout(struct work_struct *work)
{
	struct amber_cbt *cbt = container_of(work, struct amber_cbt,
					     writeout_work);

	/* A failure here only costs precision: the write-intent bits stay. */
	if (amber_cbt_write_map(cbt, cbt->closing, cbt->closing_epoch))
		DMWARN("%s: could not write the map of epoch %llu in full",
		       dm_device_name(cbt->v->md), cbt->closing_epoch);
	memset(cbt->closing, 0, cbt->map_bytes);
	memset(cbt->retired, 0, cbt->map_bytes);
	cbt->spare[0] = cbt->closing;
	cbt->spare[1] = cbt->retired;
	cbt->closing = NULL;
	cbt->retired = NULL;
}

void amber_cbt_prepare_cut(struct amber_cbt *cbt)
{
	flush_work(&cbt->writeout_work);
}

/*
 * Start epoch @epoch. The superblock names it before any write of it can
 * reach the origin (the gate is still closed). A superblock that cannot be
 * written only makes the maps untrustworthy: the cut itself never fails once
 * the writes have drained, so a group barrier cannot be half cut.
 */
void amber_cbt_cut(struct amber_cbt *cbt, u64 epoch)
{
	struct amber_store *s = cbt->store;
	int r;

	/* A commit pass still running would write the old map after us. */
	flush_work(&cbt->commit_work);

	spin_lock(&cbt->lock);
	WARN_ON_ONCE(!bio_list_empty(&cbt->waiting));
	cbt->closing = cbt->mem;
	cbt->retired = cbt->durable;
	cbt->closing_epoch = cbt->epoch;
	cbt->mem = cbt->spare[0];
	cbt->durable = cbt->spare[1];
	cbt->spare[0] = NULL;
	cbt->spare[1] = NULL;
	bitmap_zero(cbt->dirty_blocks, cbt->nr_blocks);
	WRITE_ONCE(cbt->epoch, epoch);
	cbt->failed = false;
	spin_unlock(&cbt->lock);

	mutex_lock(&s->sb_lock);
	s->sb->epoch = cpu_to_le64(epoch);
	r = amber_store_commit(s);
	mutex_unlock(&s->sb_lock);
	if (r)
		amber_cbt_fail(cbt);

	queue_work(cbt->v->wq, &cbt->writeout_work);
}

static int amber_cbt_or_window(struct amber_cbt *cbt, u64 epoch,
			       chunk_t first, u64 nr, unsigned long *bits,
			       void *buf)
{
	sector_t from = (first / 8) >> SECTOR_SHIFT;
	sector_t to = DIV_ROUND_UP((first + nr + 7) / 8, SECTOR_SIZE);
	unsigned int skip = first - (from << SECTOR_SHIFT) * 8;
	int r;

	r = amber_store_rw(cbt->store, REQ_OP_READ,
			   amber_map_sector(cbt, epoch) + from, buf,
			   (to - from) << SECTOR_SHIFT);
	if (r)
		return r;
	bitmap_or(bits, bits, (unsigned long *)buf + skip / BITS_PER_LONG, nr);
	return 0;
}

int amber_cbt_changed(struct amber_cbt *cbt, u64 since, u64 until,
		      chunk_t first, u64 nr, unsigned long *bits, bool *exact)
{
	struct amber_store *s = cbt->store;
	u64 valid_from, unclean, e;
	void *buf;
	int r = 0;

	mutex_lock(&s->sb_lock);
	valid_from = le64_to_cpu(s->sb->cbt_valid_from);
	unclean = le64_to_cpu(s->sb->unclean_epoch);
	mutex_unlock(&s->sb_lock);

	if (since > until || until > amber_cbt_epoch(cbt))
		return -EINVAL;
	if (since < valid_from || until - since >= s->cbt_epochs)
		return -ERANGE;
	*exact = !unclean || since > unclean;

	/* The closed maps must be on the store in full. */
	flush_work(&cbt->writeout_work);
	buf = kvmalloc(DIV_ROUND_UP(nr, 8) + 2 * SECTOR_SIZE, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	for (e = since; e < until && !r; e++)
		r = amber_cbt_or_window(cbt, e, first, nr, bits, buf);
	kvfree(buf);
	return r;
}

const char *amber_cbt_state(struct amber_cbt *cbt)
{
	struct amber_store *s = cbt->store;
	u64 epoch = amber_cbt_epoch(cbt);
	u64 unclean;
	bool invalid;

	mutex_lock(&s->sb_lock);
	invalid = le64_to_cpu(s->sb->cbt_valid_from) > epoch;
	unclean = le64_to_cpu(s->sb->unclean_epoch);
	mutex_unlock(&s->sb_lock);

	if (invalid || READ_ONCE(cbt->failed))
		return "invalid";
	if (unclean && unclean + s->cbt_epochs > epoch)
		return "superset";
	return "exact";
}

static int amber_cbt_set_clean(struct amber_cbt *cbt, bool clean)
{
	struct amber_store *s = cbt->store;
	int r;

	mutex_lock(&s->sb_lock);
	if (clean)
		s->sb->flags |= cpu_to_le32(AMBER_SB_CLEAN);
	else
		s->sb->flags &= ~cpu_to_le32(AMBER_SB_CLEAN);
	r = amber_store_commit(s);
	mutex_unlock(&s->sb_lock);
	return r;
}

int amber_cbt_load(struct amber_cbt *cbt)
{
	struct amber_store *s = cbt->store;
	u64 epoch;
	int r;

	r = amber_store_reread(s);
	if (r)
		return r;
	mutex_lock(&s->sb_lock);
	epoch = le64_to_cpu(s->sb->epoch);
	if (!(s->sb->flags & cpu_to_le32(AMBER_SB_CLEAN)))
		s->sb->unclean_epoch = cpu_to_le64(epoch);
	mutex_unlock(&s->sb_lock);

	r = amber_store_rw(s, REQ_OP_READ, amber_map_sector(cbt, epoch),
			   cbt->mem, cbt->map_bytes);
	if (r)
		return r;
	/* Whatever the store holds is durable: a superset after a crash. */
	memcpy(cbt->durable, cbt->mem, cbt->map_bytes);
	cbt->epoch = epoch;
	r = amber_cbt_set_clean(cbt, false);
	if (!r)
		cbt->loaded = true;
	return r;
}

int amber_cbt_suspend(struct amber_cbt *cbt)
{
	int r;

	flush_work(&cbt->commit_work);
	flush_work(&cbt->writeout_work);
	if (READ_ONCE(cbt->failed))
		return -EIO;
	r = amber_cbt_write_map(cbt, cbt->mem, cbt->epoch);
	return r ? r : amber_cbt_set_clean(cbt, true);
}

int amber_cbt_resume(struct amber_cbt *cbt)
{
	return amber_cbt_set_clean(cbt, false);
}

int amber_cbt_create(struct amber_volume *v, struct amber_store *store,
		     struct amber_cbt **out)
{
	struct amber_cbt *cbt;

	BUILD_BUG_ON(IS_ENABLED(CONFIG_CPU_BIG_ENDIAN));

	cbt = kzalloc(sizeof(*cbt), GFP_KERNEL);
	if (!cbt)
		return -ENOMEM;
	cbt->v = v;
	cbt->store = store;
	cbt->map_bytes = round_up(DIV_ROUND_UP_ULL(v->nr_chunks, 8),
				  AMBER_MAP_BLOCK);
	cbt->nr_blocks = cbt->map_bytes / AMBER_MAP_BLOCK;
	spin_lock_init(&cbt->lock);
	bio_list_init(&cbt->waiting);
	INIT_WORK(&cbt->commit_work, amber_cbt_commit);
	INIT_WORK(&cbt->writeout_work, amber_cbt_writeout);

	cbt->mem = amber_map_alloc(cbt);
	cbt->durable = amber_map_alloc(cbt);
	cbt->spare[0] = amber_map_alloc(cbt);
	cbt->spare[1] = amber_map_alloc(cbt);
	cbt->dirty_blocks = bitmap_zalloc(cbt->nr_blocks, GFP_KERNEL);
	cbt->staging = kmalloc(AMBER_MAP_BLOCK, GFP_KERNEL);
	if (!cbt->mem || !cbt->durable || !cbt->spare[0] || !cbt->spare[1] ||
	    !cbt->dirty_blocks || !cbt->staging) {
		amber_cbt_destroy(cbt);
		return -ENOMEM;
	}
	*out = cbt;
	return 0;
}

/* The volume has no write in flight and its workqueue is drained. */
void amber_cbt_destroy(struct amber_cbt *cbt)
{
	kvfree(cbt->mem);
	kvfree(cbt->durable);
	kvfree(cbt->spare[0]);
	kvfree(cbt->spare[1]);
	kvfree(cbt->closing);
	kvfree(cbt->retired);
	bitmap_free(cbt->dirty_blocks);
	kfree(cbt->staging);
	kfree(cbt);
}
