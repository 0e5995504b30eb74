// SPDX-License-Identifier: GPL-2.0
#include <stdlib.h>

#include "blocks.h"
#include "digest.h"
#include "error.h"

int blocks_init(struct block_builder *b, block_done_fn done, void *ctx)
{
	*b = (struct block_builder){ .done = done, .ctx = ctx };
	chunk_heap_init(&b->early, sizeof(struct block_entry));
	b->block = malloc(block_section_bytes(BKP_BLOCK_ENTRIES));
	if (!b->block)
		return fail(AMBER_ESYS, "out of memory (index block)");
	return 0;
}

static int add_row(struct block_builder *b, const struct table_row *row)
{
	if (b->nr_rows == b->cap_rows) {
		size_t cap = b->cap_rows ? 2 * b->cap_rows : 64;
		struct table_row *rows = reallocarray(b->rows, cap, sizeof(*rows));

		if (!rows)
			return fail(AMBER_ESYS, "out of memory (block table of %zu rows)", cap);
		b->rows = rows;
		b->cap_rows = cap;
	}
	b->rows[b->nr_rows++] = *row;
	return 0;
}

static int complete_block(struct block_builder *b)
{
	struct table_row row = { .first_chunk = b->first_chunk };
	size_t len = block_section_bytes(b->count);

	block_head_encode(b->count, b->nr_rows, (struct disk_block_head *)b->block);
	if (sha256(b->block, len, row.hash) || b->done(b->ctx, b->block, len, &row.offset) ||
	    add_row(b, &row))
		return -1;
	b->count = 0;
	return 0;
}

/* A final entry, in chunk order, into the block being built. */
static int append(struct block_builder *b, const struct block_entry *e)
{
	struct disk_block_entry *v = (void *)(b->block + sizeof(struct disk_block_head));

	if (!b->count)
		b->first_chunk = e->chunk;
	block_entry_encode(e, &v[b->count++]);
	return b->count == BKP_BLOCK_ENTRIES ? complete_block(b) : 0;
}

/* Append the waiting early entries of chunks below @limit, in order. */
static int append_early_below(struct block_builder *b, uint64_t limit)
{
	struct block_entry e;

	while (chunk_heap_pop_below(&b->early, limit, &e))
		if (append(b, &e))
			return -1;
	return 0;
}

int blocks_add(struct block_builder *b, const struct block_entry *e, bool early)
{
	if (early)
		return chunk_heap_push(&b->early, e);
	if (append_early_below(b, e->chunk))
		return -1;
	return append(b, e);
}

int blocks_finish(struct block_builder *b)
{
	if (append_early_below(b, UINT64_MAX))
		return -1;
	return b->count ? complete_block(b) : 0;
}

uint8_t *blocks_table(const struct block_builder *b, size_t *len)
{
	struct disk_table_row *rows;
	uint8_t *table;
	size_t i;

	*len = table_section_bytes(b->nr_rows);
	table = malloc(*len);
	if (!table) {
		fail(AMBER_ESYS, "out of memory (block table)");
		return NULL;
	}
	table_head_encode(b->nr_rows, (struct disk_table_head *)table);
	rows = (void *)(table + sizeof(struct disk_table_head));
	for (i = 0; i < b->nr_rows; i++)
		table_row_encode(&b->rows[i], &rows[i]);
	return table;
}

void blocks_release(struct block_builder *b)
{
	chunk_heap_release(&b->early);
	free(b->block);
	free(b->rows);
	b->block = NULL;
	b->rows = NULL;
}
