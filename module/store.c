// SPDX-License-Identifier: GPL-2.0
/*
 * The store superblock: load, validate, rewrite.
 */
#include <linux/crc32c.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include "store.h"

/* CRC-32C of the superblock with its csum field (the last one) read as 0. */
static u32 amber_sb_csum(const struct amber_store_sb *sb)
{
	static const __le32 zero;
	u32 crc = crc32c(~0U, sb, offsetof(struct amber_store_sb, csum));

	return ~crc32c(crc, &zero, sizeof(zero));
}

int amber_store_rw(struct amber_store *s, blk_opf_t opf, sector_t sector,
		   void *buf, size_t len)
{
	struct dm_io_region where = {
		.bdev = s->dev->bdev,
		.sector = sector,
		.count = len >> SECTOR_SHIFT,
	};
	struct dm_io_request req = {
		.bi_opf = opf,
		.client = s->io,
	};
	unsigned long error_bits = 0;

	if (is_vmalloc_addr(buf)) {
		req.mem.type = DM_IO_VMA;
		req.mem.ptr.vma = buf;
	} else {
		req.mem.type = DM_IO_KMEM;
		req.mem.ptr.addr = buf;
	}
	return dm_io(&req, 1, &where, &error_bits, IOPRIO_DEFAULT);
}

int amber_store_flush(struct amber_store *s)
{
	return blkdev_issue_flush(s->dev->bdev);
}

int amber_store_commit(struct amber_store *s)
{
	lockdep_assert_held(&s->sb_lock);
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
	s->sb = kmalloc(AMBER_SB_SIZE, GFP_KERNEL);
	if (!s->sb)
		goto bad_sb;
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
	dm_io_client_destroy(s->io);
bad_io:
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
	dm_io_client_destroy(s->io);
	kfree(s->sb);
	kfree(s);
}
