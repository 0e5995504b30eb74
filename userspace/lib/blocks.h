/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The v2 index (FORMAT-v2.md, "Index"): an entry per record, in chunk
 * order, cut into blocks of BKP_BLOCK_ENTRIES placed among the records as
 * soon as their entries are final, and the block table. The writer and the
 * streaming reader build it with the same rules: the writer writes each
 * block when it is complete, the reader compares it with the stored one.
 */
#ifndef AMBER_BLOCKS_H
#define AMBER_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap.h"
#include "layout.h"

/*
 * A block is complete: @block is its whole section (@len bytes). The
 * callback writes or checks it and says at which @offset it lies.
 */
typedef int (*block_done_fn)(void *ctx, const uint8_t *block, size_t len,
			     uint64_t *offset);

struct block_builder {
	block_done_fn done;
	void *ctx;
	struct chunk_heap early;	/* entries of early records, not yet final */
	uint8_t *block;			/* the block being built, encoded */
	uint32_t count;			/* entries in it */
	uint64_t first_chunk;		/* of its first entry */
	struct table_row *rows;		/* of the blocks done */
	size_t nr_rows, cap_rows;
};

int blocks_init(struct block_builder *b, block_done_fn done, void *ctx);
/*
 * The entry of the next record in file order, @early when it runs ahead of
 * the sweep. Rule 3 of the format (checked by the caller, image_digest_add())
 * makes an entry final once a sweep record of a chunk as large is added.
 */
int blocks_add(struct block_builder *b, const struct block_entry *e, bool early);
/* After the last record: every entry is final; the remaining blocks. */
int blocks_finish(struct block_builder *b);
/* The block table section of the blocks done, malloc()ed, @len bytes. */
uint8_t *blocks_table(const struct block_builder *b, size_t *len);
void blocks_release(struct block_builder *b);

/* Bytes of a block of @count entries and of a table of @blocks rows. */
static inline uint64_t block_section_bytes(uint64_t count)
{
	return sizeof(struct disk_block_head) + count * sizeof(struct disk_block_entry);
}

static inline uint64_t table_section_bytes(uint64_t blocks)
{
	return sizeof(struct disk_table_head) + blocks * sizeof(struct disk_table_row);
}

#endif
