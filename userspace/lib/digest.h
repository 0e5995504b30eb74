/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Leaves and image digests (docs/FORMAT.md, "Digests"):
 *
 *   leaf(c)  = SHA-256(content of chunk c), or when encrypted
 *              HMAC(identity key, content of chunk c) (FORMAT-v2.md)
 *   digest   = SHA-256(tag || le64 volume_bytes || le64 chunk_bytes
 *                      || for each chunk c present, ascending:
 *                             le64 c || leaf(c))
 *
 * Records may arrive out of chunk order: "early" ones anywhere ahead of the
 * ascending sweep of the others. An image_digest keeps the early leaves
 * until the sweep passes them, so its memory is bounded by those.
 */
#ifndef AMBER_DIGEST_H
#define AMBER_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bkp.h"

struct leaf_hasher;

/* @key: the identity key of an encrypted backup's leaves; NULL: SHA-256. */
struct leaf_hasher *leaf_hasher_new(const uint8_t *key);
int leaf_hash(struct leaf_hasher *h, const void *data, size_t len, uint8_t out[32]);
void leaf_hasher_free(struct leaf_hasher *h);
/* SHA-256 of @len bytes, one shot. */
int sha256(const void *data, size_t len, uint8_t out[32]);

/* The leaves of all-zero chunks of a geometry: full length and tail. */
struct zero_leaves {
	uint32_t len[2];
	uint8_t leaf[2][32];
};

/* @key as leaf_hasher_new(). */
int zero_leaves_init(struct zero_leaves *z, const struct geometry *g, const uint8_t *key);
/* @len is chunk_length() of some chunk of the geometry. */
const uint8_t *zero_leaf(const struct zero_leaves *z, uint32_t len);

struct image_digest;

/* Of @info's geometry; its version and ENCRYPTED pick the tag (DIGEST_TAG_*). */
struct image_digest *image_digest_new(const struct bkp_info *info);
/*
 * Add chunk @chunk's leaf. Fails with AMBER_EDATA when the order rule is
 * broken: chunks not flagged @early must ascend strictly; an early chunk
 * must lie beyond every non-early chunk added before it. The caller keeps
 * chunks unique.
 */
int image_digest_add(struct image_digest *d, uint64_t chunk,
		     const uint8_t leaf[32], bool early);
int image_digest_final(struct image_digest *d, uint8_t out[32]);
void image_digest_free(struct image_digest *d);

/*
 * The digests an operator expects (--digest): @list is @n image digests,
 * each 64 hex digits, separated by commas, one per backup in the order the
 * backups are named. Fails (AMBER_EUSAGE) naming what is wrong.
 */
int parse_digests(const char *list, size_t n, uint8_t (*out)[32]);
/* Fails (AMBER_EDATA) unless a backup's digest @have is @want. */
int check_expected_digest(const uint8_t have[32], const uint8_t want[32]);

#endif
