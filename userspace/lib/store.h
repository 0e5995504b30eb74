/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The store device's superblock and layout (module/uapi/amber.h). The
 * checksum is the standard CRC-32C of the 4 KiB block with csum = 0, i.e.
 * the kernel's ~crc32c(~0, sb, 4096), stored little endian.
 */
#ifndef AMBER_STORE_H
#define AMBER_STORE_H

#include <stdint.h>

#define STORE_DEFAULT_CHUNK	(64 * 1024)
#define STORE_DEFAULT_EPOCHS	16

struct store_layout {
	uint8_t uuid[16];
	uint32_t flags;
	uint64_t origin_sectors;
	uint32_t chunk_sectors;
	uint32_t cbt_epochs;
	uint64_t cbt_offset;
	uint64_t cbt_map_sectors;
	uint64_t data_offset;
	uint64_t nr_slots;
	uint64_t epoch;
	uint64_t cbt_valid_from;
	uint64_t format_time;
};

/* Chunk size and change map count are valid for a store. */
int store_check_geometry(uint64_t chunk_bytes, uint64_t epochs);
/*
 * Lay out a new store of @store_bytes for an origin of @origin_bytes:
 * superblock, @epochs change maps, then slots of @chunk_bytes from a
 * chunk-aligned offset to the end. Fresh uuid, epoch 0, clean.
 */
int store_plan(uint64_t store_bytes, uint64_t origin_bytes, uint64_t chunk_bytes,
	       uint64_t epochs, struct store_layout *l);
/* The 4 KiB superblock block of @l, checksummed. */
void store_sb_encode(const struct store_layout *l, void *block);
/* Check a superblock block (magic, version, checksum, layout within @store_bytes). */
int store_sb_decode(const void *block, uint64_t store_bytes, struct store_layout *l);
/* Zero the change maps, then write the superblock; durable on return. */
int store_format(int fd, const struct store_layout *l);
/* Read and check the superblock of the store on @fd. */
int store_read(int fd, struct store_layout *l);

#endif
