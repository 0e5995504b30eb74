// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "crypto.h"
#include "digest.h"
#include "error.h"
#include "heap.h"
#include "util.h"

struct leaf_hasher {
	EVP_MD *sha256;
	EVP_MD_CTX *ctx;
	struct hmac *hmac;		/* keyed leaves */
};

struct leaf_hasher *leaf_hasher_new(const uint8_t *key)
{
	struct leaf_hasher *h = calloc(1, sizeof(*h));

	if (!h)
		goto nomem;
	if (key) {
		if ((h->hmac = hmac_new(key)))
			return h;
		free(h);
		return NULL;
	}
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
	if (h->hmac)
		return hmac_run(h->hmac, data, len, out);
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
	hmac_free(h->hmac);
	free(h);
}

int zero_leaves_init(struct zero_leaves *z, const struct geometry *g, const uint8_t *key)
{
	struct leaf_hasher *h = leaf_hasher_new(key);
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

int sha256(const void *data, size_t len, uint8_t out[32])
{
	if (!EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL))
		return fail(AMBER_ESYS, "SHA-256 failed (libcrypto)");
	return 0;
}

/* ---- image digest ---- */

struct pending_leaf {
	uint64_t chunk;			/* the heap's key: first */
	uint8_t leaf[32];
};

struct image_digest {
	EVP_MD_CTX *ctx;
	bool any_normal;
	uint64_t last_normal;		/* valid when any_normal */
	struct chunk_heap early;	/* early leaves until the sweep passes them */
};

static const char *digest_tag(const struct bkp_info *info)
{
	if (info->version == BKP_VERSION_1)
		return DIGEST_TAG_V1;
	return bkp_encrypted(info) ? DIGEST_TAG_V2_KEYED : DIGEST_TAG_V2;
}

struct image_digest *image_digest_new(const struct bkp_info *info)
{
	const struct geometry *g = &info->geo;
	struct image_digest *d = calloc(1, sizeof(*d));
	uint8_t geometry[16];

	if (!d || !(d->ctx = EVP_MD_CTX_new()))
		goto fail;
	chunk_heap_init(&d->early, sizeof(struct pending_leaf));
	put_le64(geometry, g->volume_bytes);
	put_le64(geometry + 8, g->chunk_bytes);
	if (EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(d->ctx, digest_tag(info), 16) &&
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

/* Fold the early leaves of chunks below @limit, in order. */
static int fold_pending_below(struct image_digest *d, uint64_t limit)
{
	struct pending_leaf p;

	while (chunk_heap_pop_below(&d->early, limit, &p))
		if (fold(d, p.chunk, p.leaf))
			return -1;
	return 0;
}

int image_digest_add(struct image_digest *d, uint64_t chunk,
		     const uint8_t leaf[32], bool early)
{
	struct pending_leaf p = { .chunk = chunk };

	if (d->any_normal && chunk <= d->last_normal)
		return fail(AMBER_EDATA, "chunk %" PRIu64 " is out of order (after chunk %"
			    PRIu64 ")", chunk, d->last_normal);
	if (early) {
		memcpy(p.leaf, leaf, 32);
		return chunk_heap_push(&d->early, &p);
	}
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
	chunk_heap_release(&d->early);
	free(d);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_one_digest(const char *s, size_t len, uint8_t out[32])
{
	int i, hi, lo;

	if (len != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		hi = hex_digit(s[2 * i]);
		lo = hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = hi << 4 | lo;
	}
	return 0;
}

int parse_digests(const char *list, size_t n, uint8_t (*out)[32])
{
	const char *s = list, *end;
	size_t i;

	for (i = 0; ; i++) {
		end = strchrnul(s, ',');
		if (i < n && parse_one_digest(s, end - s, out[i]))
			return fail(AMBER_EUSAGE, "--digest: '%.*s' is not a SHA-256 digest"
				    " (64 hex digits)", (int)(end - s), s);
		if (!*end)
			break;
		s = end + 1;
	}
	if (i + 1 != n)
		return fail(AMBER_EUSAGE, "--digest: %zu digest%s for %zu backup%s: give one"
			    " per backup, comma-separated, in the same order", i + 1,
			    i ? "s" : "", n, n == 1 ? "" : "s");
	return 0;
}

int check_expected_digest(const uint8_t have[32], const uint8_t want[32])
{
	char a[65], b[65];

	if (!digest_differs(have, want))
		return 0;
	return fail(AMBER_EDATA, "digest %s, expected %s: not the backup that was made",
		    format_hex(have, 32, a), format_hex(want, 32, b));
}
