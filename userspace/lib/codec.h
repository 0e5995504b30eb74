/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Turning a chunk's content into a record and back: zero detection, zstd,
 * the payload checksum and the leaf. One encoder or decoder per thread.
 */
#ifndef AMBER_CODEC_H
#define AMBER_CODEC_H

#include "bkp.h"

#define ZSTD_LEVEL_DEFAULT	3
#define ZSTD_LEVEL_MAX		19	/* above it zstd needs "ultra" memory */

struct chunk_encoder;

/*
 * @level: 0 stores raw, 1..ZSTD max compresses. @key: the identity key of
 * an encrypted backup, whose leaves are keyed; NULL: SHA-256 leaves.
 */
struct chunk_encoder *chunk_encoder_new(const struct geometry *g, int level,
					const uint8_t *key);
/*
 * Encode the chunk_length() bytes at @data as chunk @chunk into @rec. A
 * compressed payload goes to @scratch (chunk_length() bytes); otherwise
 * rec->payload points into @data. Zstd is kept only when it is smaller.
 */
int chunk_encode(struct chunk_encoder *e, uint64_t chunk, const void *data,
		 void *scratch, struct bkp_record *rec);
/*
 * chunk_encode() in two steps, so that a chunk can be dropped once its leaf
 * is known: chunk_leaf() fills @rec but for the payload (zero test and
 * SHA-256); chunk_pack() compresses it and sets the payload checksum. @data
 * must stay valid in between.
 */
int chunk_leaf(struct chunk_encoder *e, uint64_t chunk, const void *data,
	       struct bkp_record *rec);
void chunk_pack(struct chunk_encoder *e, void *scratch, struct bkp_record *rec);
void chunk_encoder_free(struct chunk_encoder *e);

struct chunk_decoder;
struct bkp_crypto;

/*
 * For the records of a backup with header @info, which says how payloads
 * are checked. An encrypted backup's records are opened with @crypto; with
 * @crypto NULL they are only checked against payload_hash (keyless).
 */
struct chunk_decoder *chunk_decoder_new(const struct bkp_info *info,
					const struct bkp_crypto *crypto);
/*
 * Encrypted, with the key: leave payload_hash unchecked where the tag and
 * the leaf pin the stored bytes: every record, or with @signature (a
 * signature is checked, which commits to payload_hash) raw and ZERO
 * records only. Nothing changes for a keyless or unencrypted decoder.
 */
void chunk_decoder_trust_tag(struct chunk_decoder *d, bool signature);
/*
 * Verify @rec's payload against its checksum (v1) or hash (v2), open it
 * (encrypted: in place, rec->payload and ->stored_bytes then the plaintext),
 * decode it and verify the content against the leaf; sets rec->data, valid
 * until the next call (NULL when keyless). Fails with AMBER_EDATA, the
 * message without location.
 */
int chunk_decode(struct chunk_decoder *d, struct bkp_record *rec);
/* chunk_decode() decompressing into @content (chunk_length() bytes), not the
 * decoder's own buffer: records decoded by one decoder stay valid together. */
int chunk_decode_into(struct chunk_decoder *d, struct bkp_record *rec, void *content);
void chunk_decoder_free(struct chunk_decoder *d);

#endif
