// SPDX-License-Identifier: GPL-2.0
/*
 * The store superblock: load, validate, rewrite.
 */
#include <linux/crc32c.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include "store.h"

/* CRC-32C of the superblock with its csum field (the last one) read as 0. */
static u32 amber_sb_csum(const struct amber_store_sb *sb)
{
	static const __le32 zero;
	u32 crc = crc32c(~0U, sb, offsetof(struct amber_store_sb, csum));

	return ~crc32c(crc, &zero, sizeof(zero));
}

/*
 * Store I/O with a bound. The store sits beside the database, not under it:
 * a store that stops answering (a lost path, a device suspended under us)
 * must hold no suspend, resume, barrier or write of the origin. So every
 * synchronous store I/O waits at most store_timeout_ms; one that takes
 * longer marks the store hung, and from then on every store I/O of this
 * table fails at once with EIO, as from a failing store: tracking and the
 * snapshot are given up, and only a new table (a reload) tries the store
 * again. An I/O that timed out keeps its memory until it ends: it reads or
 * writes a bounce buffer of its own, never the caller's.
 */
static unsigned int amber_store_timeout_ms = 30000;
module_param_named(store_timeout_ms, amber_store_timeout_ms, uint, 0644);
MODULE_PARM_DESC(store_timeout_ms,
		 "longest wait for one store I/O before the store counts as failed (ms; 0: no bound)");

/*
 * The largest bounce buffer: from kmalloc(), which, unlike vfree(), may be
 * freed in an I/O's completion whatever its context.
 */
#define AMBER_STORE_IO_MAX	SZ_64K
#define AMBER_STORE_IO_RESERVE	4	/* commit, write-out, barrier, control */

struct amber_store_io {
	refcount_t ref;			/* the waiter's and the I/O's */
	struct completion done;
	struct amber_store *s;
	blk_status_t status;
	void *buf;			/* bounce buffer, or NULL (a flush) */
	bool from_pool;			/* ->buf is a page of s->page_pool */
	bool orphan;			/* it timed out: counted in *s->orphans */
};

static void amber_store_io_put(struct amber_store_io *io)
{
	struct amber_store *s = io->s;
	unsigned long flags;

	if (!refcount_dec_and_test(&io->ref))
		return;
	if (io->from_pool)
		mempool_free(virt_to_page(io->buf), s->page_pool);
	else
		kfree(io->buf);
	if (io->orphan)
		atomic_dec(s->orphans);
	mempool_free(io, s->io_pool);
	/* Woken under the lock: amber_store_wait_ios() frees @s once it sees 0. */
	spin_lock_irqsave(&s->ios_lock, flags);
	if (!--s->ios)
		wake_up(&s->ios_wq);
	spin_unlock_irqrestore(&s->ios_lock, flags);
}

static void amber_store_io_end(struct amber_store_io *io, blk_status_t status)
{
	io->status = status;
	complete(&io->done);
	amber_store_io_put(io);
}

static void amber_store_dm_io_end(unsigned long error_bits, void *context)
{
	amber_store_io_end(context, error_bits ? BLK_STS_IOERR : BLK_STS_OK);
}

static void amber_store_flush_end(struct bio *bio)
{
	struct amber_store_io *io = bio->bi_private;
	blk_status_t status = bio->bi_status;

	bio_put(bio);
	amber_store_io_end(io, status);
}

/*
 * A new I/O with a bounce buffer of up to @len bytes (*@len is set to what
 * it got: at least a page, or @len if smaller), or none for @len 0. NULL
 * once the store is hung. Never fails otherwise: the last resort is a page
 * from the store's mempool, which only a hung store could keep.
 */
static struct amber_store_io *amber_store_io_get(struct amber_store *s,
						 size_t *len)
{
	struct amber_store_io *io;

	if (test_bit(AMBER_STORE_HUNG, &s->flags))
		return NULL;
	io = mempool_alloc(s->io_pool, GFP_NOIO);
	refcount_set(&io->ref, 2);
	init_completion(&io->done);
	io->s = s;
	io->buf = NULL;
	io->from_pool = false;
	io->orphan = false;
	spin_lock_irq(&s->ios_lock);
	s->ios++;
	spin_unlock_irq(&s->ios_lock);
	if (!*len)
		return io;
	*len = min_t(size_t, *len, AMBER_STORE_IO_MAX);
	io->buf = kmalloc(*len, GFP_NOIO | __GFP_NORETRY | __GFP_NOWARN);
	if (!io->buf) {
		io->buf = page_address(mempool_alloc(s->page_pool, GFP_NOIO));
		io->from_pool = true;
		*len = min_t(size_t, *len, PAGE_SIZE);
	}
	return io;
}

unsigned long amber_store_timeout_jiffies(void)
{
	unsigned int ms = READ_ONCE(amber_store_timeout_ms);

	return ms ? msecs_to_jiffies(ms) : MAX_SCHEDULE_TIMEOUT;
}

void amber_store_fail(struct amber_store *s)
{
	if (!test_and_set_bit(AMBER_STORE_HUNG, &s->flags))
		DMERR("store %pg does not answer: it counts as failed until the table is reloaded",
		      s->dev->bdev);
}

/*
 * Wait for @io within the bound. A store that does not answer is hung: the
 * caller sees an I/O error, as from a store that fails, and @io is left to
 * end on its own, counted in *s->orphans until it does.
 */
static int amber_store_io_wait(struct amber_store_io *io)
{
	struct amber_store *s = io->s;

	if (wait_for_completion_io_timeout(&io->done,
					   amber_store_timeout_jiffies()))
		return blk_status_to_errno(io->status);
	if (s->orphans) {
		atomic_inc(s->orphans);
		io->orphan = true;
	}
	DMERR("store %pg did not complete an I/O in %u ms",
	      s->dev->bdev, jiffies_to_msecs(amber_store_timeout_jiffies()));
	amber_store_fail(s);
	return -EIO;
}

/* One bounded I/O of @io's buffer, @len bytes at @sector. */
static int amber_store_io_rw(struct amber_store_io *io, blk_opf_t opf,
			     sector_t sector, size_t len)
{
	struct amber_store *s = io->s;
	struct dm_io_region where = {
		.bdev = s->dev->bdev,
		.sector = sector,
		.count = len >> SECTOR_SHIFT,
	};
	struct dm_io_request req = {
		.bi_opf = opf,
		.client = s->io,
		.notify.fn = amber_store_dm_io_end,
		.notify.context = io,
	};
	int r;

	if (is_vmalloc_addr(io->buf)) {
		req.mem.type = DM_IO_VMA;
		req.mem.ptr.vma = io->buf;
	} else {
		req.mem.type = DM_IO_KMEM;
		req.mem.ptr.addr = io->buf;
	}
	r = dm_io(&req, 1, &where, NULL, IOPRIO_DEFAULT);
	if (r) {
		/* Refused before it started: the notify function never runs. */
		amber_store_io_put(io);
		return r;
	}
	return amber_store_io_wait(io);
}

/*
 * The I/Os that timed out still use the client, the pools and the device:
 * a table whose store hung waits for them at its end, as kcopyd waits for
 * its copies. The origin has been someone else's since the suspend.
 */
static bool amber_store_idle(struct amber_store *s)
{
	bool idle;

	spin_lock_irq(&s->ios_lock);
	idle = !s->ios;
	spin_unlock_irq(&s->ios_lock);
	return idle;
}

static void amber_store_wait_ios(struct amber_store *s)
{
	wait_event(s->ios_wq, amber_store_idle(s));
}

int amber_store_rw(struct amber_store *s, blk_opf_t opf, sector_t sector,
		   void *buf, size_t len)
{
	bool write = op_is_write(opf);
	struct amber_store_io *io;
	size_t done, n;
	int r = 0;

	for (done = 0; done < len && !r; done += n) {
		n = len - done;
		io = amber_store_io_get(s, &n);
		if (!io)
			return -EIO;
		if (write)
			memcpy(io->buf, buf + done, n);
		r = amber_store_io_rw(io, opf, sector + (done >> SECTOR_SHIFT), n);
		if (!r && !write)
			memcpy(buf + done, io->buf, n);
		amber_store_io_put(io);
	}
	return r;
}

int amber_store_flush(struct amber_store *s)
{
	struct amber_store_io *io;
	struct bio *bio;
	size_t none = 0;
	int r;

	io = amber_store_io_get(s, &none);
	if (!io)
		return -EIO;
	/* From a mempool: never fails, as in blkdev_issue_flush(). */
	bio = bio_alloc(s->dev->bdev, 0, REQ_OP_WRITE | REQ_PREFLUSH, GFP_NOIO);
	bio->bi_end_io = amber_store_flush_end;
	bio->bi_private = io;
	submit_bio(bio);
	r = amber_store_io_wait(io);
	amber_store_io_put(io);
	return r;
}

int amber_store_commit(struct amber_store *s)
{
	lockdep_assert_held(&s->sb_lock);
	/* One bounce page at worst: the superblock is never split. */
	BUILD_BUG_ON(AMBER_SB_SIZE > PAGE_SIZE);
	s->sb->csum = cpu_to_le32(amber_sb_csum(s->sb));
	return amber_store_rw(s, REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA, 0,
			      s->sb, AMBER_SB_SIZE);
}

/* One check of the superblock against the table line and the device. */
static char *amber_sb_problem(struct amber_store *s, sector_t origin_sectors,
			      unsigned int chunk_sectors)
{
	const struct amber_store_sb *sb = s->sb;
	sector_t store_sectors = bdev_nr_sectors(s->dev->bdev);
	u64 chunks = DIV_ROUND_UP_ULL(origin_sectors, chunk_sectors);
	u64 map_sectors, maps_end, data_end;

	if (le64_to_cpu(sb->magic) != AMBER_SB_MAGIC)
		return "store device has no amber superblock (run amber format)";
	if (le32_to_cpu(sb->csum) != amber_sb_csum(sb))
		return "store superblock checksum mismatch";
	if (le32_to_cpu(sb->version) != AMBER_SB_VERSION)
		return "store superblock version unsupported";
	if (le32_to_cpu(sb->chunk_sectors) != chunk_sectors)
		return "chunk size differs from the store's";
	if (le64_to_cpu(sb->origin_sectors) != origin_sectors)
		return "origin size differs from the store's (wrong store?)";
	if (s->cbt_epochs < 2 || s->cbt_epochs > AMBER_MAX_EPOCHS)
		return "store superblock has a bad epoch count";
	map_sectors = round_up(DIV_ROUND_UP_ULL(chunks, 8), 4096) >> SECTOR_SHIFT;
	if (s->cbt_map_sectors < map_sectors)
		return "store change maps are too small for the origin";
	if (check_mul_overflow((u64)s->cbt_epochs, (u64)s->cbt_map_sectors, &maps_end) ||
	    check_add_overflow(maps_end, (u64)s->cbt_offset, &maps_end) ||
	    s->cbt_offset < AMBER_SB_SIZE >> SECTOR_SHIFT || s->data_offset < maps_end)
		return "store superblock layout overlaps";
	if (!s->nr_slots)
		return "store has no room for copy-on-write slots";
	if (s->nr_slots > AMBER_MAX_CHUNKS)
		return "store has more than 2^31 slots";
	if (check_mul_overflow(s->nr_slots, (u64)chunk_sectors, &data_end) ||
	    check_add_overflow(data_end, (u64)s->data_offset, &data_end) ||
	    data_end > store_sectors)
		return "store device is smaller than its superblock says";
	return NULL;
}

int amber_store_reread(struct amber_store *s)
{
	struct amber_store_sb *fresh;
	int r;

	fresh = kmalloc(AMBER_SB_SIZE, GFP_KERNEL);
	if (!fresh)
		return -ENOMEM;
	r = amber_store_rw(s, REQ_OP_READ, 0, fresh, AMBER_SB_SIZE);
	if (!r && (fresh->magic != s->sb->magic ||
		   le32_to_cpu(fresh->csum) != amber_sb_csum(fresh) ||
		   memcmp(fresh->uuid, s->sb->uuid, sizeof(fresh->uuid)) ||
		   fresh->data_offset != s->sb->data_offset ||
		   fresh->nr_slots != s->sb->nr_slots)) {
		DMERR("store superblock changed under the table");
		r = -EINVAL;
	}
	if (!r) {
		mutex_lock(&s->sb_lock);
		memcpy(s->sb, fresh, AMBER_SB_SIZE);
		mutex_unlock(&s->sb_lock);
	}
	kfree(fresh);
	return r;
}

static void amber_store_read_geometry(struct amber_store *s)
{
	const struct amber_store_sb *sb = s->sb;

	s->chunk_sectors = le32_to_cpu(sb->chunk_sectors);
	s->cbt_epochs = le32_to_cpu(sb->cbt_epochs);
	s->cbt_offset = le64_to_cpu(sb->cbt_offset);
	s->cbt_map_sectors = le64_to_cpu(sb->cbt_map_sectors);
	s->data_offset = le64_to_cpu(sb->data_offset);
	s->nr_slots = le64_to_cpu(sb->nr_slots);
}

int amber_store_open(struct dm_target *ti, struct dm_dev *dev,
		     sector_t origin_sectors, unsigned int chunk_sectors,
		     struct amber_store **out)
{
	struct amber_store *s;
	char *problem;
	int r = -ENOMEM;

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		goto bad;
	s->dev = dev;
	mutex_init(&s->sb_lock);
	spin_lock_init(&s->ios_lock);
	init_waitqueue_head(&s->ios_wq);
	s->sb = kmalloc(AMBER_SB_SIZE, GFP_KERNEL);
	if (!s->sb)
		goto bad_sb;
	s->io_pool = mempool_create_kmalloc_pool(AMBER_STORE_IO_RESERVE,
						 sizeof(struct amber_store_io));
	if (!s->io_pool)
		goto bad_io_pool;
	s->page_pool = mempool_create_page_pool(AMBER_STORE_IO_RESERVE, 0);
	if (!s->page_pool)
		goto bad_page_pool;
	s->io = dm_io_client_create();
	if (IS_ERR(s->io)) {
		r = PTR_ERR(s->io);
		goto bad_io;
	}
	r = amber_store_rw(s, REQ_OP_READ, 0, s->sb, AMBER_SB_SIZE);
	if (r) {
		ti->error = "cannot read the store superblock";
		goto bad_read;
	}
	amber_store_read_geometry(s);
	problem = amber_sb_problem(s, origin_sectors, chunk_sectors);
	if (problem) {
		ti->error = problem;
		r = -EINVAL;
		goto bad_read;
	}
	*out = s;
	return 0;

bad_read:
	amber_store_wait_ios(s);
	dm_io_client_destroy(s->io);
bad_io:
	mempool_destroy(s->page_pool);
bad_page_pool:
	mempool_destroy(s->io_pool);
bad_io_pool:
	kfree(s->sb);
bad_sb:
	kfree(s);
bad:
	if (r == -ENOMEM)
		ti->error = "cannot allocate the store";
	return r;
}

void amber_store_close(struct amber_store *s)
{
	amber_store_wait_ios(s);
	dm_io_client_destroy(s->io);
	mempool_destroy(s->page_pool);
	mempool_destroy(s->io_pool);
	kfree(s->sb);
	kfree(s);
}
