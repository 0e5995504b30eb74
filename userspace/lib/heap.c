// SPDX-License-Identifier: GPL-2.0
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "heap.h"

void chunk_heap_init(struct chunk_heap *h, size_t elem)
{
	*h = (struct chunk_heap){ .elem = elem };
}

static uint64_t key(const struct chunk_heap *h, size_t i)
{
	uint64_t k;

	memcpy(&k, h->v + i * h->elem, sizeof(k));
	return k;
}

static void swap(struct chunk_heap *h, size_t a, size_t b)
{
	uint8_t *x = h->v + a * h->elem, *y = h->v + b * h->elem, t;
	size_t i;

	for (i = 0; i < h->elem; i++) {
		t = x[i];
		x[i] = y[i];
		y[i] = t;
	}
}

int chunk_heap_push(struct chunk_heap *h, const void *elem)
{
	size_t i, parent;

	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 256;
		uint8_t *v = reallocarray(h->v, cap, h->elem);

		if (!v)
			return fail(AMBER_ESYS, "out of memory (%zu early chunks)", cap);
		h->v = v;
		h->cap = cap;
	}
	i = h->n++;
	memcpy(h->v + i * h->elem, elem, h->elem);
	for (; i; i = parent) {
		parent = (i - 1) / 2;
		if (key(h, parent) <= key(h, i))
			break;
		swap(h, parent, i);
	}
	return 0;
}

bool chunk_heap_pop_below(struct chunk_heap *h, uint64_t limit, void *out)
{
	size_t i = 0, child;

	if (!h->n || key(h, 0) >= limit)
		return false;
	memcpy(out, h->v, h->elem);
	if (--h->n)
		memcpy(h->v, h->v + h->n * h->elem, h->elem);
	for (; (child = 2 * i + 1) < h->n; i = child) {
		if (child + 1 < h->n && key(h, child + 1) < key(h, child))
			child++;
		if (key(h, i) <= key(h, child))
			break;
		swap(h, i, child);
	}
	return true;
}

void chunk_heap_release(struct chunk_heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
