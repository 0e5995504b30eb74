// SPDX-License-Identifier: GPL-2.0
/*
 * Changed-block tracking with write intent.
 *
 * Epoch E's map lives in ring slot E % cbt_epochs on the store. Every write
 * of the current epoch sets its chunks' bits in ->mem, the exact map. A write
 * may reach the origin only once the map on the store covers its chunk:
 * write intent is taken for a whole intent region (intent_sectors, a power
 * of two of chunks) at a time, as md's bitmap does with its bitmap chunks.
 * The first write to a region in an epoch sets the region in ->intent and
 * waits until the map blocks holding the region, all its bits set, have been
 * written to the store and flushed; then the region is in ->durable and
 * later writes to it pass at the cost of a bit test.
 * Writes waiting for a commit are taken in groups by ->commit_work: one pass
 * writes every dirty block, flushes once and releases the whole batch.
 *
 * So while an epoch is current, the store holds its map at region
 * granularity (a superset of ->mem), plus, in the blocks the epoch has not
 * written yet, bits of the epoch that used the ring slot cbt_epochs barriers
 * ago: extra bits, never a missing one. When an epoch closes,
 * ->writeout_work writes its exact map from memory; a suspend does the same
 * for the current map and marks the store clean.
 *
 * Memory: one bit per chunk, the current epoch's exact map, and only while
 * the table is live: a suspend writes the map and frees it, a resume
 * allocates it and reads it back, so that a reloaded table never holds it
 * beside the table it replaces. A barrier adds the next epoch's map before
 * it closes the gates; the closed one is freed once written out. Three bits
 * per intent region (->intent, ->durable and the next epoch's ->intent).
 */
#include <linux/delay.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include "cbt.h"

#define AMBER_MAP_BLOCK		4096
#define AMBER_MAP_BLOCK_BITS	(AMBER_MAP_BLOCK * 8)
#define AMBER_MAP_BLOCK_SECTORS	(AMBER_MAP_BLOCK >> SECTOR_SHIFT)

/*
 * The in-memory maps of one epoch. The current generation is read without
 * ->lock by writes that hold the gate, and is replaced only with the gate
 * closed and drained (a cut) or with the table suspended.
 */
struct amber_map_gen {
	unsigned long *mem;	/* chunks written: set_bit() only, also locklessly */
	unsigned long *intent;	/* regions marked this epoch */
	unsigned long *durable;	/* regions all of whose bits are on the store */
};

struct amber_cbt {
	struct amber_volume *v;
	struct amber_store *store;
	size_t map_bytes;		/* whole map blocks */
	unsigned long nr_blocks;
	unsigned int region_shift;	/* chunks per intent region, log2 */
	unsigned long nr_regions;
	bool loaded;

	spinlock_t lock;		/* the fields below, and ->cur's bits */
	u64 epoch;			/* current epoch */
	/* NULL maps: suspended, or they could not be allocated (failed). */
	struct amber_map_gen cur;
	unsigned long *dirty_blocks;	/* blocks whose regions are not on disk */
	struct bio_list waiting;
	bool failed;			/* a map write failed this epoch */

	/* Owned by the barrier and ->writeout_work, which never overlap. */
	struct amber_map_gen closing;	/* the epoch just closed, until written */
	u64 closing_epoch;
	struct amber_map_gen next;	/* zeroed, for the next cut */

	void *staging;			/* one block, ->commit_work only */
	struct work_struct commit_work;
	struct work_struct writeout_work;
};

static void amber_gen_free(struct amber_map_gen *gen)
{
	kvfree(gen->mem);
	kvfree(gen->intent);
	kvfree(gen->durable);
	memset(gen, 0, sizeof(*gen));
}

/*
 * Zeroed maps for one epoch in @gen, unless it has them already. Without
 * I/O: the callers are a resume, with the volume suspended, and a barrier,
 * which holds the registry lock that a suspend waits for; reclaim that
 * waited for a write to the volume would wait for ever.
 */
static int amber_gen_alloc(struct amber_cbt *cbt, struct amber_map_gen *gen)
{
	unsigned int noio;

	if (gen->mem)
		return 0;
	noio = memalloc_noio_save();
	gen->mem = kvzalloc(cbt->map_bytes, GFP_KERNEL);
	gen->intent = amber_bitmap_zalloc(cbt->nr_regions);
	gen->durable = amber_bitmap_zalloc(cbt->nr_regions);
	memalloc_noio_restore(noio);
	if (gen->mem && gen->intent && gen->durable)
		return 0;
	amber_gen_free(gen);
	return -ENOMEM;
}

/* Give up the current maps (the table is suspended, or is going away). */
static void amber_cbt_free_maps(struct amber_cbt *cbt)
{
	struct amber_map_gen cur, next;

	spin_lock(&cbt->lock);
	cur = cbt->cur;
	next = cbt->next;
	memset(&cbt->cur, 0, sizeof(cbt->cur));
	memset(&cbt->next, 0, sizeof(cbt->next));
	bitmap_zero(cbt->dirty_blocks, cbt->nr_blocks);
	spin_unlock(&cbt->lock);
	amber_gen_free(&cur);
	amber_gen_free(&next);
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

/* In the cached superblock: no map up to @epoch is valid. True if news. */
static bool amber_sb_give_up_maps(struct amber_store *s, u64 epoch)
{
	lockdep_assert_held(&s->sb_lock);
	if (le64_to_cpu(s->sb->cbt_valid_from) > epoch)
		return false;
	s->sb->cbt_valid_from = cpu_to_le64(epoch + 1);
	return true;
}

/*
 * A table that replaces this one reads the store again: if the store does
 * not say that tracking failed, the snapshot, which the tables share, does.
 */
static void amber_cbt_failure_recorded(struct amber_cbt *cbt, bool recorded)
{
	WRITE_ONCE(cbt->v->snap->maps_unrecorded, !recorded);
}

/*
 * Record on the store that no map up to the current epoch can be trusted
 * (cbt_valid_from past it). Maps that were never loaded do not know the
 * current epoch: the superblock is read again for it first (it has no
 * change of ours to lose). The cached superblock keeps the mark even when
 * the write fails, so the next superblock write (a barrier's, which must
 * succeed) carries it. @clean: a suspend, after which no write can come
 * (the untrusted maps need no exact copy). Returns the write's result.
 */
static int amber_cbt_record_failure(struct amber_cbt *cbt, bool clean)
{
	struct amber_store *s = cbt->store;
	u64 epoch;
	int r;

	if (!cbt->loaded) {
		r = amber_store_reread(s);
		if (r)
			return r;
	}
	mutex_lock(&s->sb_lock);
	epoch = cbt->loaded ? amber_cbt_epoch(cbt) : le64_to_cpu(s->sb->epoch);
	s->sb->flags |= cpu_to_le32(AMBER_SB_CBT_FAILED);
	if (clean)
		s->sb->flags |= cpu_to_le32(AMBER_SB_CLEAN);
	amber_sb_give_up_maps(s, epoch);
	r = amber_store_commit(s);
	mutex_unlock(&s->sb_lock);
	amber_cbt_failure_recorded(cbt, !r);
	return r;
}

/*
 * A map write failed, or writes passed while the maps could not be kept:
 * the maps up to the current epoch can no longer be trusted. Say so on the
 * store if it still takes writes; the next backup must be a full one.
 * Origin writes go on regardless.
 */
void amber_cbt_fail(struct amber_cbt *cbt)
{
	spin_lock(&cbt->lock);
	if (cbt->failed) {
		spin_unlock(&cbt->lock);
		return;
	}
	cbt->failed = true;
	spin_unlock(&cbt->lock);

	DMERR("%s: change map write failed: the next backup must be full",
	      dm_device_name(cbt->v->md));
	amber_cbt_record_failure(cbt, false);
}

static unsigned long amber_region_first(struct amber_cbt *cbt,
					unsigned long region)
{
	return region << cbt->region_shift;
}

/* One past the last chunk of @region (the last region may be short). */
static unsigned long amber_region_end(struct amber_cbt *cbt,
				      unsigned long region)
{
	return min_t(unsigned long, amber_region_first(cbt, region + 1),
		     cbt->v->nr_chunks);
}

/*
 * Map block @blk as the store must hold it now: the exact bits, and every
 * chunk of each region marked in ->intent.
 */
static void amber_cbt_stage_block(struct amber_cbt *cbt, unsigned long blk)
{
	unsigned long first = blk * AMBER_MAP_BLOCK_BITS;
	unsigned long end = first + AMBER_MAP_BLOCK_BITS;
	unsigned long r = first >> cbt->region_shift;
	unsigned long from, to;

	lockdep_assert_held(&cbt->lock);
	memcpy(cbt->staging, (char *)cbt->cur.mem + blk * AMBER_MAP_BLOCK,
	       AMBER_MAP_BLOCK);
	for_each_set_bit_from(r, cbt->cur.intent, cbt->nr_regions) {
		from = max(amber_region_first(cbt, r), first);
		if (from >= end)
			break;
		to = min(amber_region_first(cbt, r + 1), end);
		bitmap_set(cbt->staging, from - first, to - from);
	}
}

/* Write one dirty map block; false when none was left. */
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
	amber_cbt_stage_block(cbt, blk);
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
 * covers the regions of the batch: each was marked before its write was
 * queued, or by an earlier pass that is complete), flush, then let the
 * batch go.
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
	bio_list_for_each(bio, &batch) {
		chunk_t c = amber_chunk(v, bio->bi_iter.bi_sector);

		__set_bit(c >> cbt->region_shift, cbt->cur.durable);
	}
	spin_unlock(&cbt->lock);

	amber_writes_continue(v, &batch);
}

/* Record @c in the exact map; cheap when it is there already. */
static void amber_cbt_note(struct amber_cbt *cbt, chunk_t c)
{
	if (!test_bit(c, cbt->cur.mem))
		set_bit(c, cbt->cur.mem);
}

bool amber_cbt_covered(struct amber_cbt *cbt, chunk_t first, chunk_t last)
{
	unsigned long r = last >> cbt->region_shift;
	chunk_t c;

	/* No maps (the allocation at resume failed): tracking is invalid. */
	if (unlikely(!cbt->cur.mem))
		return true;
	if (find_next_zero_bit(cbt->cur.durable, r + 1,
			       first >> cbt->region_shift) <= r)
		return false;
	for (c = first; c <= last; c++)
		amber_cbt_note(cbt, c);
	return true;
}

/* Set region @r in ->intent and mark the map blocks it spans dirty. */
static void amber_cbt_intend(struct amber_cbt *cbt, unsigned long r)
{
	unsigned long blk = amber_region_first(cbt, r) / AMBER_MAP_BLOCK_BITS;
	unsigned long last = amber_region_end(cbt, r) - 1;

	lockdep_assert_held(&cbt->lock);
	__set_bit(r, cbt->cur.intent);
	bitmap_set(cbt->dirty_blocks, blk, last / AMBER_MAP_BLOCK_BITS - blk + 1);
}

bool amber_cbt_mark(struct amber_cbt *cbt, chunk_t c, struct bio *bio)
{
	unsigned long r = c >> cbt->region_shift;

	amber_cbt_note(cbt, c);
	if (test_bit(r, cbt->cur.durable))
		return true;

	spin_lock(&cbt->lock);
	if (test_bit(r, cbt->cur.durable) || cbt->failed) {
		spin_unlock(&cbt->lock);
		return true;
	}
	/* Marked already: the pass that writes it, or the next, frees us. */
	if (!test_bit(r, cbt->cur.intent))
		amber_cbt_intend(cbt, r);
	amber_wait_begin(bio, AMBER_STAGE_INTENT);
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
 * Epoch @epoch's exact map could not be written: the store holds the
 * write-intent superset (which a resume reads back). Mark the epoch unclean,
 * as a crash would, so that no incremental calls its map exact.
 */
static void amber_cbt_mark_superset(struct amber_cbt *cbt, u64 epoch)
{
	struct amber_store *s = cbt->store;

	mutex_lock(&s->sb_lock);
	amber_store_mark_unclean(s, epoch);
	amber_store_commit(s);	/* best effort: the store is failing */
	mutex_unlock(&s->sb_lock);
}

/*
 * After a cut: write the closed epoch's whole map (making it exact), then
 * free it. A closed epoch without maps had tracking fail: its map on the
 * store is not trusted, and is left as it is.
 */
static void amber_cbt_writeout(struct work_struct *work)
{
	struct amber_cbt *cbt = container_of(work, struct amber_cbt,
					     writeout_work);

	/* A failure here only costs precision: the write-intent bits stay. */
	if (cbt->closing.mem &&
	    amber_cbt_write_map(cbt, cbt->closing.mem, cbt->closing_epoch)) {
		DMWARN("%s: could not write the map of epoch %llu in full",
		       dm_device_name(cbt->v->md), cbt->closing_epoch);
		amber_cbt_mark_superset(cbt, cbt->closing_epoch);
	}
	amber_gen_free(&cbt->closing);
}

int amber_cbt_prepare_cut(struct amber_cbt *cbt)
{
	flush_work(&cbt->writeout_work);
	if (amber_gen_alloc(cbt, &cbt->next)) {
		DMERR("%s: snap: cannot allocate the next change map (%zu bytes)",
		      dm_device_name(cbt->v->md), cbt->map_bytes);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Write the blocks of @map that hold the regions set in @regions to epoch
 * @epoch's slot, one I/O per run of blocks, and flush.
 */
static int amber_cbt_write_regions(struct amber_cbt *cbt, unsigned long *map,
				   unsigned long *regions, u64 epoch)
{
	sector_t slot = amber_map_sector(cbt, epoch);
	unsigned long r, end, b0, b1;
	int err;

	r = find_first_bit(regions, cbt->nr_regions);
	while (r < cbt->nr_regions) {
		b0 = amber_region_first(cbt, r) / AMBER_MAP_BLOCK_BITS;
		do {
			end = find_next_zero_bit(regions, cbt->nr_regions, r);
			b1 = (amber_region_end(cbt, end - 1) - 1) / AMBER_MAP_BLOCK_BITS;
			r = find_next_bit(regions, cbt->nr_regions, end);
		} while (r < cbt->nr_regions &&
			 amber_region_first(cbt, r) / AMBER_MAP_BLOCK_BITS <= b1 + 1);
		err = amber_store_rw(cbt->store, REQ_OP_WRITE,
				     slot + b0 * AMBER_MAP_BLOCK_SECTORS,
				     (char *)map + b0 * AMBER_MAP_BLOCK,
				     (b1 - b0 + 1) * AMBER_MAP_BLOCK);
		if (err)
			return err;
	}
	return amber_store_flush(cbt->store);
}

/* Set or clear in @map every chunk of the regions set in @regions. */
static void amber_cbt_fill_regions(struct amber_cbt *cbt, unsigned long *map,
				   unsigned long *regions, bool set)
{
	unsigned long r, first;

	for_each_set_bit(r, regions, cbt->nr_regions) {
		first = amber_region_first(cbt, r);
		if (set)
			bitmap_set(map, first, amber_region_end(cbt, r) - first);
		else
			bitmap_clear(map, first, amber_region_end(cbt, r) - first);
	}
}

/*
 * Set in @regions the regions written in the current epoch, as far as seen
 * (a write setting its bit now may be missed): the durable ones with a
 * chunk in ->mem. A region written this epoch is durable unless tracking
 * failed, and then none is taken. False when there is none.
 */
static bool amber_cbt_written_regions(struct amber_cbt *cbt,
				      unsigned long *regions)
{
	struct amber_map_gen cur;
	unsigned long r, first, end;
	bool failed;

	bitmap_zero(regions, cbt->nr_regions);
	spin_lock(&cbt->lock);
	cur = cbt->cur;
	failed = cbt->failed;
	spin_unlock(&cbt->lock);
	/* ->cur is replaced only by a cut or a suspend: not during a barrier. */
	if (failed || !cur.mem)
		return false;
	for_each_set_bit(r, cur.durable, cbt->nr_regions) {
		first = amber_region_first(cbt, r);
		end = amber_region_end(cbt, r);
		if (find_next_bit(cur.mem, end, first) < end)
			__set_bit(r, regions);
	}
	return !bitmap_empty(regions, cbt->nr_regions);
}

/*
 * Before the gates close: the regions written in this epoch are the likely
 * ones of the next. Take the next epoch's write intent for them now, while
 * writes flow, so that the writes a barrier held go on without waiting for
 * a map commit each. The next epoch's ring slot holds the oldest closed
 * map, which no change query can use once the cut is made: the store first
 * records that it is no longer valid, then the slot takes the regions.
 * Best effort: a region left out takes its intent at its first write.
 * Owned by the barrier, as ->next is.
 */
void amber_cbt_intend_next(struct amber_cbt *cbt)
{
	struct amber_store *s = cbt->store;
	struct amber_map_gen *next = &cbt->next;
	u64 epoch = amber_cbt_epoch(cbt) + 1;
	__le64 valid_from;
	int r;

	/* An earlier try's regions are not all in the slot any more. */
	bitmap_zero(next->durable, cbt->nr_regions);
	if (!amber_cbt_written_regions(cbt, next->intent))
		return;

	mutex_lock(&s->sb_lock);
	valid_from = s->sb->cbt_valid_from;
	r = 0;
	if (epoch >= s->cbt_epochs &&
	    amber_sb_give_up_maps(s, epoch - s->cbt_epochs)) {
		r = amber_store_commit(s);
		if (r)	/* the slot keeps its map: so does the store */
			s->sb->cbt_valid_from = valid_from;
	}
	mutex_unlock(&s->sb_lock);

	/* ->next.mem stays the exact (empty) map: the bits are only staged. */
	if (!r) {
		amber_cbt_fill_regions(cbt, next->mem, next->intent, true);
		r = amber_cbt_write_regions(cbt, next->mem, next->intent, epoch);
		amber_cbt_fill_regions(cbt, next->mem, next->intent, false);
	}
	if (r)
		bitmap_zero(next->intent, cbt->nr_regions);
	else
		bitmap_copy(next->durable, next->intent, cbt->nr_regions);
}

int amber_cbt_record_epoch(struct amber_cbt *cbt, u64 epoch)
{
	struct amber_store *s = cbt->store;
	int r;

	mutex_lock(&s->sb_lock);
	s->sb->epoch = cpu_to_le64(epoch);
	r = amber_store_commit(s);
	if (r)
		s->sb->epoch = cpu_to_le64(amber_cbt_epoch(cbt));
	mutex_unlock(&s->sb_lock);
	return r;
}

void amber_cbt_unrecord_epoch(struct amber_cbt *cbt)
{
	struct amber_store *s = cbt->store;

	mutex_lock(&s->sb_lock);
	s->sb->epoch = cpu_to_le64(amber_cbt_epoch(cbt));
	/*
	 * Best effort: a store still naming the epoch that was not cut only
	 * makes the next load after a crash skip that number.
	 */
	amber_store_commit(s);
	mutex_unlock(&s->sb_lock);
}

/*
 * Start epoch @epoch, which amber_cbt_record_epoch() wrote to the
 * superblock: the gate is still closed, no write of the new epoch has
 * reached the origin.
 */
void amber_cbt_cut(struct amber_cbt *cbt, u64 epoch)
{
	/* A commit pass still running would write the old map after us. */
	flush_work(&cbt->commit_work);

	spin_lock(&cbt->lock);
	WARN_ON_ONCE(!bio_list_empty(&cbt->waiting) || !cbt->next.mem);
	cbt->closing = cbt->cur;
	cbt->closing_epoch = cbt->epoch;
	cbt->cur = cbt->next;
	memset(&cbt->next, 0, sizeof(cbt->next));
	bitmap_zero(cbt->dirty_blocks, cbt->nr_blocks);
	WRITE_ONCE(cbt->epoch, epoch);
	/* The superblock write above carried any failure mark of the old one. */
	if (cbt->failed)
		amber_cbt_failure_recorded(cbt, true);
	cbt->failed = false;
	spin_unlock(&cbt->lock);

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

/*
 * Whether the store was ever loaded after an unclean shutdown, and in which
 * epoch (*epoch): that epoch's map may name chunks never written. Stores
 * written before AMBER_SB_UNCLEAN said so with a nonzero epoch only, which
 * could not tell a crash in epoch 0.
 */
static bool amber_store_unclean(struct amber_store *s, u64 *epoch)
{
	lockdep_assert_held(&s->sb_lock);
	*epoch = le64_to_cpu(s->sb->unclean_epoch);
	return (s->sb->flags & cpu_to_le32(AMBER_SB_UNCLEAN)) || *epoch;
}

int amber_cbt_changed(struct amber_cbt *cbt, u64 since, u64 until,
		      chunk_t first, u64 nr, unsigned long *bits, bool *exact)
{
	struct amber_store *s = cbt->store;
	u64 valid_from, unclean, e;
	bool crashed;
	void *buf;
	int r = 0;

	mutex_lock(&s->sb_lock);
	valid_from = le64_to_cpu(s->sb->cbt_valid_from);
	crashed = amber_store_unclean(s, &unclean);
	mutex_unlock(&s->sb_lock);

	if (since > until || until > amber_cbt_epoch(cbt))
		return -EINVAL;
	if (since < valid_from || until - since >= s->cbt_epochs)
		return -ERANGE;
	*exact = !crashed || since > unclean;

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
	bool invalid, crashed;
	u64 unclean;

	mutex_lock(&s->sb_lock);
	invalid = le64_to_cpu(s->sb->cbt_valid_from) > epoch;
	crashed = amber_store_unclean(s, &unclean);
	mutex_unlock(&s->sb_lock);

	if (invalid || READ_ONCE(cbt->failed))
		return "invalid";
	if (crashed && unclean + s->cbt_epochs > epoch)
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

/*
 * Allocate the current maps and read epoch @epoch's map from the store into
 * them: after a suspend (which wrote it exact) or a crash (a superset).
 * Whatever the store holds is covered, but ->durable starts empty: the
 * first write to each region commits it again.
 */
static int amber_cbt_read_map(struct amber_cbt *cbt, u64 epoch)
{
	struct amber_map_gen gen = {}, old;
	int r;

	r = amber_gen_alloc(cbt, &gen);
	if (r)
		return r;
	r = amber_store_rw(cbt->store, REQ_OP_READ, amber_map_sector(cbt, epoch),
			   gen.mem, cbt->map_bytes);
	/* Even a map that could not be read takes the bits of later writes. */
	spin_lock(&cbt->lock);
	old = cbt->cur;
	cbt->cur = gen;
	spin_unlock(&cbt->lock);
	amber_gen_free(&old);
	return r;
}

/*
 * The I/Os of an earlier table that timed out on this store have ended,
 * within the store's bound: until they do, one may still overwrite what
 * this table writes. False if they have not.
 */
static bool amber_cbt_orphans_ended(struct amber_cbt *cbt)
{
	atomic_t *orphans = &cbt->v->snap->store_orphans;
	unsigned long bound = amber_store_timeout_jiffies();
	unsigned long end = jiffies + bound;

	while (atomic_read(orphans)) {
		if (bound != MAX_SCHEDULE_TIMEOUT && time_after(jiffies, end)) {
			DMERR("%s: the store has not ended the last table's I/O",
			      dm_device_name(cbt->v->md));
			return false;
		}
		msleep(20);
	}
	return true;
}

int amber_cbt_load(struct amber_cbt *cbt)
{
	struct amber_store *s = cbt->store;
	u64 epoch;
	int r;

	/* The table before this one failed and could not tell the store. */
	if (READ_ONCE(cbt->v->snap->maps_unrecorded))
		WRITE_ONCE(cbt->failed, true);
	if (!amber_cbt_orphans_ended(cbt))
		return -EIO;
	r = amber_store_reread(s);
	if (r)
		return r;
	mutex_lock(&s->sb_lock);
	epoch = le64_to_cpu(s->sb->epoch);
	if (!(s->sb->flags & cpu_to_le32(AMBER_SB_CLEAN)))
		amber_store_mark_unclean(s, epoch);
	mutex_unlock(&s->sb_lock);
	/* Known even if the map cannot be read: a reload compares it. */
	WRITE_ONCE(cbt->epoch, epoch);
	/* In use from here on, even if the map cannot be read. */
	r = amber_cbt_set_clean(cbt, false);
	if (r)
		return r;
	r = amber_cbt_read_map(cbt, epoch);
	if (r)
		return r;
	cbt->loaded = true;
	/* Writes passed untracked while the store could not be read. */
	return READ_ONCE(cbt->failed) ? amber_cbt_record_failure(cbt, false) : 0;
}

int amber_cbt_suspend(struct amber_cbt *cbt, bool free_maps)
{
	int r = 0;

	flush_work(&cbt->commit_work);
	flush_work(&cbt->writeout_work);
	/* A reload reads the store: it must know what these maps missed. */
	if (READ_ONCE(cbt->failed)) {
		r = amber_cbt_record_failure(cbt, true);
	} else if (cbt->loaded && cbt->cur.mem) {
		r = amber_cbt_write_map(cbt, cbt->cur.mem, cbt->epoch);
		if (r)
			amber_cbt_mark_superset(cbt, cbt->epoch);
		else
			r = amber_cbt_set_clean(cbt, true);
	}
	if (free_maps)
		amber_cbt_free_maps(cbt);
	return r;
}

int amber_cbt_resume(struct amber_cbt *cbt)
{
	int r = amber_cbt_read_map(cbt, cbt->epoch);

	/* In use again whatever became of the map: never clean while live. */
	return amber_cbt_set_clean(cbt, false) ?: r;
}

int amber_cbt_create(struct amber_volume *v, struct amber_store *store,
		     unsigned int region_shift, struct amber_cbt **out)
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
	cbt->region_shift = region_shift;
	cbt->nr_regions = DIV_ROUND_UP_ULL(v->nr_chunks, 1ULL << region_shift);
	spin_lock_init(&cbt->lock);
	bio_list_init(&cbt->waiting);
	INIT_WORK(&cbt->commit_work, amber_cbt_commit);
	INIT_WORK(&cbt->writeout_work, amber_cbt_writeout);

	cbt->dirty_blocks = amber_bitmap_zalloc(cbt->nr_blocks);
	cbt->staging = kmalloc(AMBER_MAP_BLOCK, GFP_KERNEL);
	if (!cbt->dirty_blocks || !cbt->staging) {
		amber_cbt_destroy(cbt);
		return -ENOMEM;
	}
	*out = cbt;
	return 0;
}

/* The volume has no write in flight and its workqueue is drained. */
void amber_cbt_destroy(struct amber_cbt *cbt)
{
	if (cbt->dirty_blocks)
		amber_cbt_free_maps(cbt);
	amber_gen_free(&cbt->closing);
	kvfree(cbt->dirty_blocks);
	kfree(cbt->staging);
	kfree(cbt);
}
