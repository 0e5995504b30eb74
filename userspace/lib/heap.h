/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A min-heap of fixed-size elements that start with their key, a uint64_t
 * chunk number: what early records wait in until the sweep passes them
 * (the image digest's leaves, v2's index entries).
 */
#ifndef AMBER_HEAP_H
#define AMBER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chunk_heap {
	uint8_t *v;
	size_t elem;			/* bytes of an element, key first */
	size_t n, cap;
};

void chunk_heap_init(struct chunk_heap *h, size_t elem);
int chunk_heap_push(struct chunk_heap *h, const void *elem);
/* The smallest key's element into @out, when its key is below @limit. */
bool chunk_heap_pop_below(struct chunk_heap *h, uint64_t limit, void *out);
void chunk_heap_release(struct chunk_heap *h);

#endif
