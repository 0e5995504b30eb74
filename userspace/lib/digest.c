// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include "digest.h"
#include "error.h"
#include "util.h"

struct leaf_hasher {
	EVP_MD *sha256;
	EVP_MD_CTX *ctx;
};

struct leaf_hasher *leaf_hasher_new(void)
{
	struct leaf_hasher *h = calloc(1, sizeof(*h));

	if (!h)
		goto nomem;
	h->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	h->ctx = EVP_MD_CTX_new();
	if (h->sha256 && h->ctx)
		return h;
	leaf_hasher_free(h);
nomem:
	fail(AMBER_ESYS, "cannot set up SHA-256 (libcrypto)");
	return NULL;
}

int leaf_hash(struct leaf_hasher *h, const void *data, size_t len, uint8_t out[32])
{
	if (!EVP_DigestInit_ex(h->ctx, h->sha256, NULL) ||
	    !EVP_DigestUpdate(h->ctx, data, len) ||
	    !EVP_DigestFinal_ex(h->ctx, out, NULL))
		return fail(AMBER_ESYS, "SHA-256 failed (libcrypto)");
	return 0;
}

void leaf_hasher_free(struct leaf_hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->sha256);
	free(h);
}

int zero_leaves_init(struct zero_leaves *z, const struct geometry *g)
{
	struct leaf_hasher *h = leaf_hasher_new();
	void *zeros = calloc(1, g->chunk_bytes);
	int i, ret = -1;

	if (!h || !zeros) {
		fail(AMBER_ESYS, "out of memory");
		goto out;
	}
	z->len[0] = g->chunk_bytes;
	z->len[1] = chunk_length(g, g->nr_chunks - 1);
	for (i = 0; i < 2; i++)
		if (leaf_hash(h, zeros, z->len[i], z->leaf[i]))
			goto out;
	ret = 0;
out:
	free(zeros);
	leaf_hasher_free(h);
	return ret;
}

const uint8_t *zero_leaf(const struct zero_leaves *z, uint32_t len)
{
	return z->leaf[len == z->len[0] ? 0 : 1];
}

/* ---- image digest ---- */

struct pending_leaf {
	uint64_t chunk;
	uint8_t leaf[32];
};

struct image_digest {
	EVP_MD_CTX *ctx;
	bool any_normal;
	uint64_t last_normal;		/* valid when any_normal */
	struct pending_leaf *heap;	/* early leaves, min-heap on chunk */
	size_t pending, cap;
};

struct image_digest *image_digest_new(const struct geometry *g)
{
	struct image_digest *d = calloc(1, sizeof(*d));
	uint8_t geometry[16];

	if (!d || !(d->ctx = EVP_MD_CTX_new()))
		goto fail;
	put_le64(geometry, g->volume_bytes);
	put_le64(geometry + 8, g->chunk_bytes);
	if (EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(d->ctx, DIGEST_TAG, 16) &&
	    EVP_DigestUpdate(d->ctx, geometry, sizeof(geometry)))
		return d;
fail:
	image_digest_free(d);
	fail(AMBER_ESYS, "cannot set up SHA-256 (libcrypto)");
	return NULL;
}

static int fold(struct image_digest *d, uint64_t chunk, const uint8_t leaf[32])
{
	uint8_t le_chunk[8];

	put_le64(le_chunk, chunk);
	if (!EVP_DigestUpdate(d->ctx, le_chunk, sizeof(le_chunk)) ||
	    !EVP_DigestUpdate(d->ctx, leaf, 32))
		return fail(AMBER_ESYS, "SHA-256 failed (libcrypto)");
	return 0;
}

static void swap_pending(struct pending_leaf *a, struct pending_leaf *b)
{
	struct pending_leaf t = *a;

	*a = *b;
	*b = t;
}

static int heap_push(struct image_digest *d, uint64_t chunk, const uint8_t leaf[32])
{
	size_t i, parent;

	if (d->pending == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 256;
		struct pending_leaf *heap = realloc(d->heap, cap * sizeof(*heap));

		if (!heap)
			return fail(AMBER_ESYS, "out of memory (%zu early chunks)", cap);
		d->heap = heap;
		d->cap = cap;
	}
	i = d->pending++;
	d->heap[i].chunk = chunk;
	memcpy(d->heap[i].leaf, leaf, 32);
	for (; i; i = parent) {
		parent = (i - 1) / 2;
		if (d->heap[parent].chunk <= d->heap[i].chunk)
			break;
		swap_pending(&d->heap[parent], &d->heap[i]);
	}
	return 0;
}

static void heap_pop(struct image_digest *d)
{
	size_t i = 0, child;

	d->heap[0] = d->heap[--d->pending];
	for (; (child = 2 * i + 1) < d->pending; i = child) {
		if (child + 1 < d->pending &&
		    d->heap[child + 1].chunk < d->heap[child].chunk)
			child++;
		if (d->heap[i].chunk <= d->heap[child].chunk)
			break;
		swap_pending(&d->heap[i], &d->heap[child]);
	}
}

/* Fold the early leaves of chunks below @limit, in order. */
static int fold_pending_below(struct image_digest *d, uint64_t limit)
{
	while (d->pending && d->heap[0].chunk < limit) {
		if (fold(d, d->heap[0].chunk, d->heap[0].leaf))
			return -1;
		heap_pop(d);
	}
	return 0;
}

int image_digest_add(struct image_digest *d, uint64_t chunk,
		     const uint8_t leaf[32], bool early)
{
	if (d->any_normal && chunk <= d->last_normal)
		return fail(AMBER_EDATA, "chunk %" PRIu64 " is out of order (after chunk %"
			    PRIu64 ")", chunk, d->last_normal);
	if (early)
		return heap_push(d, chunk, leaf);
	d->any_normal = true;
	d->last_normal = chunk;
	if (fold_pending_below(d, chunk))
		return -1;
	return fold(d, chunk, leaf);
}

int image_digest_final(struct image_digest *d, uint8_t out[32])
{
	if (fold_pending_below(d, UINT64_MAX))
		return -1;
	if (!EVP_DigestFinal_ex(d->ctx, out, NULL))
		return fail(AMBER_ESYS, "SHA-256 failed (libcrypto)");
	return 0;
}

void image_digest_free(struct image_digest *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d->heap);
	free(d);
}
