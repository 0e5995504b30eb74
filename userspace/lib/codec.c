// SPDX-License-Identifier: GPL-2.0
#include <stdlib.h>
#include <xxhash.h>
#define ZSTD_STATIC_LINKING_ONLY	/* ZSTD_getFrameHeader() */
#include <zstd.h>

#include "codec.h"
#include "digest.h"
#include "keys.h"
#include "checks.h"
#include "error.h"
#include "util.h"

/* A window as large as the largest chunk: anything larger is not ours. */
#define ZSTD_WINDOW_LOG_MAX	20

/* The content of every zero record: reader output points here. */
static const uint8_t zero_chunk[BKP_MAX_CHUNK];

struct chunk_encoder {
	const struct geometry *geo;
	int level;
	ZSTD_CCtx *zstd;
	struct leaf_hasher *hasher;
	struct zero_leaves zeros;
};

struct chunk_encoder *chunk_encoder_new(const struct geometry *g, int level,
					const uint8_t *key)
{
	struct chunk_encoder *e = calloc(1, sizeof(*e));

	if (!e) {
		fail(AMBER_ESYS, "out of memory");
		return NULL;
	}
	e->geo = g;
	e->level = level;
	if (level && !(e->zstd = ZSTD_createCCtx())) {
		fail(AMBER_ESYS, "cannot set up zstd");
		goto fail;
	}
	if (!(e->hasher = leaf_hasher_new(key)) || zero_leaves_init(&e->zeros, g, key))
		goto fail;
	return e;
fail:
	chunk_encoder_free(e);
	return NULL;
}

/* Compressed size, or 0 when zstd does not make the chunk smaller. */
static size_t compress(struct chunk_encoder *e, const void *data, uint32_t len,
		       void *scratch)
{
	size_t n;

	if (!e->level)
		return 0;
	n = ZSTD_compressCCtx(e->zstd, scratch, len - 1, data, len, e->level);
	return ZSTD_isError(n) ? 0 : n;
}

int chunk_leaf(struct chunk_encoder *e, uint64_t chunk, const void *data,
	       struct bkp_record *rec)
{
	uint32_t len = chunk_length(e->geo, chunk);

	*rec = (struct bkp_record){ .chunk = chunk, .length = len,
				    .codec = CODEC_RAW, .payload = data };
	if (all_zero(data, len)) {
		rec->flags = REC_ZERO;
		memcpy(rec->leaf, zero_leaf(&e->zeros, len), 32);
		return 0;
	}
	return leaf_hash(e->hasher, data, len, rec->leaf);
}

void chunk_pack(struct chunk_encoder *e, void *scratch, struct bkp_record *rec)
{
	size_t packed;

	if (!(rec->flags & REC_ZERO)) {
		rec->stored_bytes = rec->length;
		packed = compress(e, rec->payload, rec->length, scratch);
		if (packed) {
			rec->codec = CODEC_ZSTD;
			rec->payload = scratch;
			rec->stored_bytes = packed;
		}
	}
	rec->payload_csum = XXH3_64bits(rec->payload, rec->stored_bytes);
}

int chunk_encode(struct chunk_encoder *e, uint64_t chunk, const void *data,
		 void *scratch, struct bkp_record *rec)
{
	if (chunk_leaf(e, chunk, data, rec))
		return -1;
	chunk_pack(e, scratch, rec);
	return 0;
}

void chunk_encoder_free(struct chunk_encoder *e)
{
	if (!e)
		return;
	ZSTD_freeCCtx(e->zstd);
	leaf_hasher_free(e->hasher);
	free(e);
}

/* ---- decoding ---- */

struct chunk_decoder {
	uint32_t version;		/* of the backup: how payloads are checked */
	bool encrypted, keyless;
	bool trust_tag, signature;	/* chunk_decoder_trust_tag()'s */
	const struct bkp_crypto *crypto;
	struct gcm *gcm;		/* opens records with crypto->record */
	ZSTD_DCtx *zstd;
	struct leaf_hasher *hasher;	/* SHA-256: payloads, unencrypted leaves */
	struct leaf_hasher *leaves;	/* encrypted: keyed leaves */
	struct zero_leaves zeros;
	uint8_t *content;		/* chunk_bytes */
};

/* An encrypted backup's record keys and keyed leaves. */
static int decoder_keys(struct chunk_decoder *d, const struct geometry *g,
			const struct bkp_crypto *crypto)
{
	d->crypto = crypto;
	if (!(d->gcm = gcm_new(crypto->record, false)) ||
	    !(d->leaves = leaf_hasher_new(crypto->identity)))
		return -1;
	return zero_leaves_init(&d->zeros, g, crypto->identity);
}

struct chunk_decoder *chunk_decoder_new(const struct bkp_info *info,
					const struct bkp_crypto *crypto)
{
	const struct geometry *g = &info->geo;
	struct chunk_decoder *d = calloc(1, sizeof(*d));

	if (!d || !(d->content = malloc(g->chunk_bytes))) {
		fail(AMBER_ESYS, "out of memory");
		goto fail;
	}
	d->version = info->version;
	d->encrypted = bkp_encrypted(info);
	d->keyless = d->encrypted && !crypto;
	d->zstd = ZSTD_createDCtx();
	if (!d->zstd) {
		fail(AMBER_ESYS, "cannot set up zstd");
		goto fail;
	}
	if (!(d->hasher = leaf_hasher_new(NULL)))
		goto fail;
	if (crypto && d->encrypted ? decoder_keys(d, g, crypto) :
	    zero_leaves_init(&d->zeros, g, NULL))
		goto fail;
	return d;
fail:
	chunk_decoder_free(d);
	return NULL;
}

/*
 * The payload is zstd frames and nothing else: no skippable frame, none
 * whose window is above ZSTD_WINDOW_LOG_MAX. ZSTD_decompressDCtx() would
 * skip the first and ignores the window limit (only streaming applies it),
 * so each frame header is read here first.
 */
static int check_frames(const struct bkp_record *rec)
{
	const uint8_t *p = rec->payload;
	size_t left = rec->stored_bytes, frame;
	ZSTD_frameHeader h;
	int i;

	for (i = 0; left; i++, p += frame, left -= frame) {
		if (ZSTD_getFrameHeader(&h, p, left))
			return fail(AMBER_EDATA, "zstd frame %d: no valid frame header", i);
		if (h.frameType != ZSTD_frame)
			return fail(AMBER_EDATA, "zstd frame %d: a skippable frame", i);
		if (h.windowSize > 1ULL << ZSTD_WINDOW_LOG_MAX)
			return fail(AMBER_EDATA, "zstd frame %d: window of %llu bytes, above %u",
				    i, (unsigned long long)h.windowSize,
				    1U << ZSTD_WINDOW_LOG_MAX);
		frame = ZSTD_findFrameCompressedSize(p, left);
		if (ZSTD_isError(frame))
			return fail(AMBER_EDATA, "zstd frame %d does not decode: %s", i,
				    ZSTD_getErrorName(frame));
	}
	return 0;
}

static int decompress(struct chunk_decoder *d, struct bkp_record *rec, void *content)
{
	size_t n;

	if (check_frames(rec))
		return -1;
	n = ZSTD_decompressDCtx(d->zstd, content, rec->length,
				rec->payload, rec->stored_bytes);
	if (ZSTD_isError(n))
		return fail(AMBER_EDATA, "zstd payload does not decode: %s",
			    ZSTD_getErrorName(n));
	if (n != rec->length)
		return fail(AMBER_EDATA, "zstd payload decodes to %zu bytes, not %u",
			    n, rec->length);
	rec->data = content;
	return 0;
}

/* @known: the content's SHA-256 when already computed, else NULL. */
static int check_leaf(struct chunk_decoder *d, const struct bkp_record *rec,
		      const uint8_t *known)
{
	uint8_t leaf[32];

	if (rec->flags & REC_ZERO) {
		if (digest_differs(rec->leaf, zero_leaf(&d->zeros, rec->length)))
			return fail(AMBER_EDATA, "zero chunk with a non-zero leaf");
		return 0;
	}
	if (!known) {
		if (leaf_hash(d->leaves ? d->leaves : d->hasher, rec->data, rec->length, leaf))
			return -1;
		known = leaf;
	}
	if (digest_differs(known, rec->leaf))
		return fail(AMBER_EDATA, "content does not match its %s leaf",
			    d->encrypted ? "keyed" : "SHA-256");
	return 0;
}

/*
 * The stored bytes against the header: v1 their XXH3-64, v2 their SHA-256
 * (into @hash), which for a raw record is the content's too.
 */
static int check_payload(struct chunk_decoder *d, const struct bkp_record *rec,
			 uint8_t hash[32])
{
	if (d->version == BKP_VERSION_1) {
		if (sum_differs(XXH3_64bits(rec->payload, rec->stored_bytes), rec->payload_csum))
			return fail(AMBER_EDATA, "payload checksum mismatch");
		return 0;
	}
	if (leaf_hash(d->hasher, rec->payload, rec->stored_bytes, hash))
		return -1;
	if (digest_differs(hash, rec->payload_hash))
		return fail(AMBER_EDATA, "stored bytes do not match their hash");
	return 0;
}

void chunk_decoder_trust_tag(struct chunk_decoder *d, bool signature)
{
	d->trust_tag = d->encrypted && d->crypto;
	d->signature = signature;
}

/*
 * With the key, a record that opens and matches its leaf has its stored
 * bytes pinned without payload_hash (FORMAT-v2.md, "What a reader checks"):
 * against anyone without the data key by the tag; against a holder of the
 * data key only a signature commits to them, through payload_hash, and then
 * only a raw or ZERO record's bytes follow from its header and leaf (zstd
 * bytes of one content are many).
 */
static bool tag_suffices(const struct chunk_decoder *d, const struct bkp_record *rec)
{
	return d->trust_tag && (!d->signature || rec->codec == CODEC_RAW);
}

int chunk_decode(struct chunk_decoder *d, struct bkp_record *rec)
{
	return chunk_decode_into(d, rec, d->content);
}

int chunk_decode_into(struct chunk_decoder *d, struct bkp_record *rec, void *content)
{
	uint8_t hash[32];
	bool hashed_content = d->version == BKP_VERSION_2 && !d->encrypted &&
			      rec->codec == CODEC_RAW;

	if (!tag_suffices(d, rec) && check_payload(d, rec, hash))
		return -1;
	if (d->keyless) {
		rec->data = NULL;
		return 0;
	}
	if (d->encrypted && record_open(d->gcm, d->crypto, rec))
		return -1;
	if (rec->flags & REC_ZERO)
		rec->data = zero_chunk;
	else if (rec->codec == CODEC_RAW)
		rec->data = rec->payload;
	else if (decompress(d, rec, content))
		return -1;
	return check_leaf(d, rec, hashed_content ? hash : NULL);
}

void chunk_decoder_free(struct chunk_decoder *d)
{
	if (!d)
		return;
	ZSTD_freeDCtx(d->zstd);
	leaf_hasher_free(d->hasher);
	leaf_hasher_free(d->leaves);
	gcm_free(d->gcm);
	free(d->content);
	free(d);
}
