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

/* @level: 0 stores raw, 1..ZSTD max compresses. */
struct chunk_encoder *chunk_encoder_new(const struct geometry *g, int level);
/*
 * Encode the chunk_length() bytes at @data as chunk @chunk into @rec. A
 * compressed payload goes to @scratch (chunk_length() bytes); otherwise
 * rec->payload points into @data. Zstd is kept only when it is smaller.
 */
int chunk_encode(struct chunk_encoder *e, uint64_t chunk, const void *data,
		 void *scratch, struct bkp_record *rec);
void chunk_encoder_free(struct chunk_encoder *e);

struct chunk_decoder;

struct chunk_decoder *chunk_decoder_new(const struct geometry *g);
/*
 * Verify @rec's payload against its checksum, decode it and verify the
 * content against the leaf; sets rec->data, valid until the next call.
 * Fails with AMBER_EDATA, the message without location.
 */
int chunk_decode(struct chunk_decoder *d, struct bkp_record *rec);
void chunk_decoder_free(struct chunk_decoder *d);

#endif
