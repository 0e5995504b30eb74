/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The store device: superblock, change-map area, copy-on-write slots.
 * Layout and checksum: uapi/amber.h. The superblock is the only metadata
 * that the kernel rewrites in place; every rewrite is a FUA write.
 */
#ifndef DM_AMBER_STORE_H
#define DM_AMBER_STORE_H

#include <linux/dm-io.h>
#include <linux/mempool.h>
#include "amber.h"

/* An I/O timed out: every later one fails at once (store.c). */
#define AMBER_STORE_HUNG	0

struct amber_store {
	struct dm_dev *dev;
	struct dm_io_client *io;
	struct mutex sb_lock;		/* serialises superblock rewrites */
	struct amber_store_sb *sb;	/* cached copy, little endian */

	/* Bounded I/O (store.c): what an I/O that timed out still holds. */
	unsigned long flags;		/* AMBER_STORE_HUNG: fail every I/O */
	mempool_t *io_pool;
	mempool_t *page_pool;		/* bounce pages when kmalloc fails */
	spinlock_t ios_lock;
	unsigned int ios;		/* in flight, timed out ones included */
	wait_queue_head_t ios_wq;	/* ->ios fell to 0 */
	/* Timed-out I/Os, counted where the next table sees them (cbt.c). */
	atomic_t *orphans;

	/* Geometry, read from the superblock once. */
	unsigned int chunk_sectors;
	unsigned int cbt_epochs;
	sector_t cbt_offset;
	sector_t cbt_map_sectors;
	sector_t data_offset;
	u64 nr_slots;
};

/*
 * Read and check the superblock of @dev against the table line. On error
 * @ti->error names the problem and the store is not opened.
 */
int amber_store_open(struct dm_target *ti, struct dm_dev *dev,
		     sector_t origin_sectors, unsigned int chunk_sectors,
		     struct amber_store **out);
void amber_store_close(struct amber_store *s);

/*
 * Read the superblock again (a previous table may have rewritten it since
 * this one was loaded); fails if it is damaged or its layout changed.
 */
int amber_store_reread(struct amber_store *s);

/*
 * Rewrite the superblock from s->sb with a new checksum, FUA. The caller
 * changes the fields it owns under s->sb_lock before calling.
 */
int amber_store_commit(struct amber_store *s);

/*
 * Synchronous I/O to the store, from any kernel buffer, each piece waiting
 * at most the module's store_timeout_ms. -EIO when the store did not answer
 * in time, and from then on without trying: the store is hung.
 */
int amber_store_rw(struct amber_store *s, blk_opf_t opf, sector_t sector,
		   void *buf, size_t len);
int amber_store_flush(struct amber_store *s);

/* The bound on one store I/O or copy (MAX_SCHEDULE_TIMEOUT: none). */
unsigned long amber_store_timeout_jiffies(void);

/* @s does not answer: every later store I/O fails at once with EIO. */
void amber_store_fail(struct amber_store *s);

/*
 * Epoch @epoch's change map may name chunks never written: the store was in
 * use at a crash, or the exact map could not be written. The latest such
 * epoch is kept (incrementals since it or earlier are not exact). Committed
 * by the caller's next superblock write.
 */
static inline void amber_store_mark_unclean(struct amber_store *s, u64 epoch)
{
	lockdep_assert_held(&s->sb_lock);
	if ((s->sb->flags & cpu_to_le32(AMBER_SB_UNCLEAN)) &&
	    le64_to_cpu(s->sb->unclean_epoch) > epoch)
		return;
	s->sb->unclean_epoch = cpu_to_le64(epoch);
	s->sb->flags |= cpu_to_le32(AMBER_SB_UNCLEAN);
}

static inline sector_t amber_store_slot_sector(struct amber_store *s,
					       u64 slot)
{
	return s->data_offset + slot * s->chunk_sectors;
}

#endif /* DM_AMBER_STORE_H */
