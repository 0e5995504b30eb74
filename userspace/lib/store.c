// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "module/uapi/amber.h"
#include "crc32c.h"
#include "error.h"
#include "store.h"
#include "util.h"

#define SECTOR		((uint64_t)512)
#define SB_SECTORS	(AMBER_SB_SIZE / SECTOR)

_Static_assert(sizeof(struct amber_store_sb) == AMBER_SB_SIZE, "uapi superblock size");

int store_check_geometry(uint64_t chunk_bytes, uint64_t epochs)
{
	if (!is_power_of_2(chunk_bytes) || chunk_bytes < AMBER_MIN_CHUNK_SECTORS * SECTOR ||
	    chunk_bytes > AMBER_MAX_CHUNK_SECTORS * SECTOR)
		return fail(AMBER_EUSAGE, "chunk size %" PRIu64 " is not a power of two"
			    " from 4 KiB to 1 MiB", chunk_bytes);
	if (epochs < 2 || epochs > AMBER_MAX_EPOCHS)
		return fail(AMBER_EUSAGE, "%" PRIu64 " change maps: must be 2..%d", epochs,
			    AMBER_MAX_EPOCHS);
	return 0;
}

static uint64_t map_sectors(uint64_t origin_sectors, uint64_t chunk_sectors)
{
	uint64_t chunks = DIV_ROUND_UP(origin_sectors, chunk_sectors);

	return ROUND_UP(DIV_ROUND_UP(DIV_ROUND_UP(chunks, 8), SECTOR), 8);
}

int store_plan(uint64_t store_bytes, uint64_t origin_bytes, uint64_t chunk_bytes,
	       uint64_t epochs, struct store_layout *l)
{
	uint64_t store_sectors = store_bytes / SECTOR;

	if (store_check_geometry(chunk_bytes, epochs))
		return -1;
	if (!origin_bytes || origin_bytes % SECTOR)
		return fail(AMBER_EUSAGE, "origin size %" PRIu64 " is not a multiple of 512",
			    origin_bytes);
	if (DIV_ROUND_UP(origin_bytes, chunk_bytes) > AMBER_MAX_CHUNKS)
		return fail(AMBER_EUSAGE, "origin of %" PRIu64 " bytes has more than 2^31 chunks"
			    " of %" PRIu64 " bytes, the most dm-amber takes (8 TiB at 4 KiB"
			    " chunks): use larger chunks", origin_bytes, chunk_bytes);
	memset(l, 0, sizeof(*l));
	if (random_bytes(l->uuid, sizeof(l->uuid)))
		return -1;
	l->uuid[6] = (l->uuid[6] & 0x0f) | 0x40;	/* RFC 4122 version 4 */
	l->uuid[8] = (l->uuid[8] & 0x3f) | 0x80;
	l->flags = AMBER_SB_CLEAN;
	l->origin_sectors = origin_bytes / SECTOR;
	l->chunk_sectors = chunk_bytes / SECTOR;
	l->cbt_epochs = epochs;
	l->cbt_offset = SB_SECTORS;
	l->cbt_map_sectors = map_sectors(l->origin_sectors, l->chunk_sectors);
	l->data_offset = ROUND_UP(l->cbt_offset + epochs * l->cbt_map_sectors,
				  l->chunk_sectors);
	if (store_sectors < l->data_offset + l->chunk_sectors)
		return fail(AMBER_EUSAGE, "store of %" PRIu64 " bytes is too small: its change"
			    " maps and one slot need %" PRIu64, store_bytes,
			    (l->data_offset + l->chunk_sectors) * SECTOR);
	l->nr_slots = (store_sectors - l->data_offset) / l->chunk_sectors;
	if (l->nr_slots > AMBER_MAX_CHUNKS)
		l->nr_slots = AMBER_MAX_CHUNKS;
	l->format_time = time(NULL);
	return 0;
}

void store_sb_encode(const struct store_layout *l, void *block)
{
	struct amber_store_sb *sb = block;

	memset(sb, 0, sizeof(*sb));
	sb->magic = htole64(AMBER_SB_MAGIC);
	sb->version = htole32(AMBER_SB_VERSION);
	sb->flags = htole32(l->flags);
	memcpy(sb->uuid, l->uuid, sizeof(sb->uuid));
	sb->origin_sectors = htole64(l->origin_sectors);
	sb->chunk_sectors = htole32(l->chunk_sectors);
	sb->cbt_epochs = htole32(l->cbt_epochs);
	sb->cbt_offset = htole64(l->cbt_offset);
	sb->cbt_map_sectors = htole64(l->cbt_map_sectors);
	sb->data_offset = htole64(l->data_offset);
	sb->nr_slots = htole64(l->nr_slots);
	sb->epoch = htole64(l->epoch);
	sb->cbt_valid_from = htole64(l->cbt_valid_from);
	sb->format_time = htole64(l->format_time);
	sb->csum = htole32(crc32c_std(sb, sizeof(*sb)));
}

static void decode_fields(const struct amber_store_sb *sb, struct store_layout *l)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->uuid, sb->uuid, sizeof(l->uuid));
	l->flags = le32toh(sb->flags);
	l->origin_sectors = le64toh(sb->origin_sectors);
	l->chunk_sectors = le32toh(sb->chunk_sectors);
	l->cbt_epochs = le32toh(sb->cbt_epochs);
	l->cbt_offset = le64toh(sb->cbt_offset);
	l->cbt_map_sectors = le64toh(sb->cbt_map_sectors);
	l->data_offset = le64toh(sb->data_offset);
	l->nr_slots = le64toh(sb->nr_slots);
	l->epoch = le64toh(sb->epoch);
	l->cbt_valid_from = le64toh(sb->cbt_valid_from);
	l->format_time = le64toh(sb->format_time);
}

/* The areas are in order, aligned and inside the device. */
static int check_layout(const struct store_layout *l, uint64_t store_bytes)
{
	uint64_t maps_end, slots;

	if (store_check_geometry(l->chunk_sectors * SECTOR, l->cbt_epochs))
		return -1;
	if (!l->origin_sectors || l->cbt_offset < SB_SECTORS || l->cbt_offset % 8 ||
	    l->cbt_map_sectors % 8 || l->data_offset % 8 ||
	    l->cbt_map_sectors < map_sectors(l->origin_sectors, l->chunk_sectors))
		return fail(AMBER_EDATA, "superblock layout is inconsistent");
	if (__builtin_mul_overflow((uint64_t)l->cbt_epochs, l->cbt_map_sectors, &maps_end) ||
	    __builtin_add_overflow(maps_end, l->cbt_offset, &maps_end))
		return fail(AMBER_EDATA, "superblock layout is inconsistent");
	slots = store_bytes / SECTOR;
	if (l->data_offset < maps_end || l->data_offset > slots || l->nr_slots > AMBER_MAX_CHUNKS ||
	    l->nr_slots > (slots - l->data_offset) / l->chunk_sectors)
		return fail(AMBER_EDATA, "superblock layout exceeds the device");
	return 0;
}

int store_sb_decode(const void *block, uint64_t store_bytes, struct store_layout *l)
{
	struct amber_store_sb sb;
	uint32_t csum;

	memcpy(&sb, block, sizeof(sb));
	if (le64toh(sb.magic) != AMBER_SB_MAGIC)
		return fail(AMBER_EDATA, "not an amber store (bad magic)");
	if (le32toh(sb.version) != AMBER_SB_VERSION)
		return fail(AMBER_EDATA, "store version %u, this amber knows %d",
			    le32toh(sb.version), AMBER_SB_VERSION);
	csum = le32toh(sb.csum);
	sb.csum = 0;
	if (crc32c_std(&sb, sizeof(sb)) != csum)
		return fail(AMBER_EDATA, "store superblock checksum mismatch");
	decode_fields(&sb, l);
	return check_layout(l, store_bytes);
}

static int zero_maps(int fd, const struct store_layout *l)
{
	uint64_t bytes = l->cbt_epochs * l->cbt_map_sectors * SECTOR;

	if (zero_range(fd, l->cbt_offset * SECTOR, bytes))
		return error_prefix("zeroing the change maps: ");
	return 0;
}

static int sync_store(int fd)
{
	return fsync(fd) ? fail_errno(AMBER_ESYS, "fsync") : 0;
}

int store_format(int fd, const struct store_layout *l)
{
	void *block = alloc_aligned(AMBER_SB_SIZE);
	int ret = -1;

	if (!block)
		return -1;
	store_sb_encode(l, block);
	if (zero_maps(fd, l) || sync_store(fd))
		goto out;
	if (pwrite_full(fd, block, AMBER_SB_SIZE, 0)) {
		error_prefix("writing the superblock: ");
		goto out;
	}
	ret = sync_store(fd);
out:
	free(block);
	return ret;
}

int store_read(int fd, struct store_layout *l)
{
	uint8_t block[AMBER_SB_SIZE];
	uint64_t size;

	if (fd_size(fd, &size))
		return -1;
	if (size < AMBER_SB_SIZE)
		return fail(AMBER_EDATA, "not an amber store (%" PRIu64 " bytes)", size);
	if (pread_full(fd, block, sizeof(block), 0))
		return -1;
	return store_sb_decode(block, size, l);
}
