/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The trailer index: extents of records for consecutive chunks stored back
 * to back. The writer and the streaming reader build it with the same
 * rules, so a reader can check the stored index entry by entry.
 */
#ifndef AMBER_INDEX_H
#define AMBER_INDEX_H

#include <stddef.h>
#include <stdint.h>

struct index_entry {
	uint64_t first_chunk;
	uint64_t offset;
	uint32_t count;
	uint32_t bytes;
};

struct index_builder {
	struct index_entry *v;
	size_t n, cap;
};

/* Account the record of @chunk: @bytes at @offset, right after the last. */
int index_add(struct index_builder *b, uint64_t chunk, uint64_t offset, uint32_t bytes);
/* Sort the entries by chunk: the stored order. */
void index_sort(struct index_builder *b);
void index_release(struct index_builder *b);

#endif
