// SPDX-License-Identifier: GPL-2.0
/*
 * Writing a backup front to back: header, records, then v1's index or v2's
 * index blocks (among the records) and block table, then the trailer.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <sys/random.h>
#include <xxhash.h>

#include "bkp.h"
#include "blocks.h"
#include "digest.h"
#include "error.h"
#include "index.h"
#include "keys.h"
#include "layout.h"
#include "util.h"

#define WRITE_BUFFER	(1U << 20)

struct bkp_writer {
	int fd;
	uint8_t *buf;
	size_t buffered;
	uint64_t offset;		/* flushed + buffered */
	struct bkp_info info;
	uint64_t *present;		/* chunks written */
	struct image_digest *digest;
	struct index_builder index;	/* v1 */
	struct block_builder blocks;	/* v2 */
	struct leaf_hasher *hasher;	/* v2: payload hashes */
	struct bkp_crypto *crypto;	/* encrypted: this backup's keys */
	struct gcm *gcm;		/* seals records with crypto->record */
	uint8_t *sealed;		/* a record's payload, sealed */
	const struct asym_key *sign;	/* signs the trailer, or NULL */
	/*
	 * A record failed after it was numbered (and, encrypted, sealed with
	 * its seq as nonce): nothing more is written, so that no nonce is
	 * ever used twice and no half-made file is finished.
	 */
	bool broken;
	struct bkp_summary sum;
};

int bkp_writer_flush(struct bkp_writer *w)
{
	if (write_full(w->fd, w->buf, w->buffered))
		return error_prefix("writing the backup: ");
	w->buffered = 0;
	return 0;
}

static int emit(struct bkp_writer *w, const void *data, size_t len)
{
	if (w->buffered + len > WRITE_BUFFER && bkp_writer_flush(w))
		return -1;
	w->offset += len;
	if (len >= WRITE_BUFFER)
		return write_full(w->fd, data, len) ? error_prefix("writing the backup: ") : 0;
	memcpy(w->buf + w->buffered, data, len);
	w->buffered += len;
	return 0;
}

/* v2: blocks go out among the records as soon as they are complete. */
static int emit_block(void *ctx, const uint8_t *block, size_t len, uint64_t *offset)
{
	struct bkp_writer *w = ctx;

	*offset = w->offset;
	return emit(w, block, len);
}

/* An encrypted backup's keys, and room for a sealed payload. */
static int start_crypto(struct bkp_writer *w, const struct data_key *key)
{
	w->crypto = bkp_crypto_new(key, w->info.backup_id, w->sum.header_hash);
	if (!w->crypto || !(w->gcm = gcm_new(w->crypto->record, true)))
		return -1;
	w->sealed = malloc(w->info.geo.chunk_bytes + TAG_BYTES);
	return w->sealed ? 0 : fail(AMBER_ESYS, "out of memory");
}

/* What a v2 writer needs beyond v1's: the index blocks, payload hashes, keys. */
static int start_v2(struct bkp_writer *w, const struct disk_header *header,
		    const struct bkp_keys *keys)
{
	if (blocks_init(&w->blocks, emit_block, w) || !(w->hasher = leaf_hasher_new(NULL)) ||
	    sha256(header, sizeof(*header), w->sum.header_hash))
		return -1;
	w->sign = keys ? keys->sign : NULL;
	return keys && keys->data ? start_crypto(w, keys->data) : 0;
}

/* The header this writer writes: the features @keys make, the backup_id given. */
static int writer_info(struct bkp_info *out, const struct bkp_info *info,
		       const struct bkp_keys *keys, const uint8_t backup_id[16])
{
	*out = *info;
	out->version = info->version ? info->version : BKP_VERSION;
	out->compat = out->ro_compat = out->incompat = 0;
	memset(out->backup_id, 0, sizeof(out->backup_id));
	memset(out->key_fingerprint, 0, sizeof(out->key_fingerprint));
	if (out->version == BKP_VERSION_1)
		return keys && (keys->data || keys->sign) ?
		       fail(AMBER_EUSAGE, "format 1 has no encryption or signatures") : 0;
	memcpy(out->backup_id, backup_id, sizeof(out->backup_id));
	if (keys && keys->data) {
		out->incompat |= FEATURE_INCOMPAT_ENCRYPTED;
		memcpy(out->key_fingerprint, keys->data->fingerprint, 32);
	}
	if (keys && keys->sign)
		out->compat |= FEATURE_COMPAT_SIGNED;
	return 0;
}

struct bkp_writer *bkp_writer_new_with_id(int fd, const struct bkp_info *info,
					  const struct bkp_keys *keys,
					  const uint8_t backup_id[16])
{
	struct bkp_writer *w = calloc(1, sizeof(*w));
	struct disk_header header;
	struct bkp_info wanted;

	if (!w || !(w->buf = malloc(WRITE_BUFFER))) {
		fail(AMBER_ESYS, "out of memory");
		goto fail;
	}
	w->fd = fd;
	if (writer_info(&wanted, info, keys, backup_id))
		goto fail;
	header_encode(&wanted, &header);
	if (header_decode(&header, &w->info)) {
		error_prefix("refusing to write an invalid backup: ");
		goto fail;
	}
	w->present = bitmap_alloc(w->info.geo.nr_chunks);
	w->digest = image_digest_new(&w->info);
	if (!w->present || !w->digest ||
	    (w->info.version == BKP_VERSION_2 && start_v2(w, &header, keys)))
		goto fail;
	if (!emit(w, &header, sizeof(header)))
		return w;
fail:
	bkp_writer_free(w);
	return NULL;
}

struct bkp_writer *bkp_writer_new(int fd, const struct bkp_info *info,
				  const struct bkp_keys *keys)
{
	uint8_t backup_id[16] = { 0 };

	if ((!info->version || info->version == BKP_VERSION_2) &&
	    getrandom(backup_id, sizeof(backup_id), 0) != sizeof(backup_id)) {
		fail_errno(AMBER_ESYS, "drawing a backup id (getrandom)");
		return NULL;
	}
	return bkp_writer_new_with_id(fd, info, keys, backup_id);
}

static int check_record(const struct bkp_writer *w, const struct bkp_record *rec)
{
	if (rec->chunk >= w->info.geo.nr_chunks)
		return fail(AMBER_EDATA, "chunk %" PRIu64 " beyond the volume", rec->chunk);
	if (bit_test(w->present, rec->chunk))
		return fail(AMBER_EDATA, "chunk %" PRIu64 " written twice", rec->chunk);
	if (rec->length != chunk_length(&w->info.geo, rec->chunk))
		return fail(AMBER_EDATA, "chunk %" PRIu64 " has length %u", rec->chunk,
			    rec->length);
	return record_check(rec, 0);
}

static int put_v1(struct bkp_writer *w, const struct bkp_record *rec)
{
	struct disk_record header;

	if (index_add(&w->index, rec->chunk, w->offset, sizeof(header) + rec->stored_bytes))
		return -1;
	record_encode(rec, w->sum.records, &header);
	return emit(w, &header, sizeof(header)) || emit(w, rec->payload, rec->stored_bytes);
}

/*
 * v2's payload_hash. A raw record's is its leaf: the SHA-256 of the same
 * bytes, computed once (a reader checks both against one hash).
 */
static int hash_payload(struct bkp_writer *w, struct bkp_record *rec)
{
	if (rec->codec == CODEC_RAW && !(rec->flags & REC_ZERO) && !w->crypto) {
		memcpy(rec->payload_hash, rec->leaf, 32);
		return 0;
	}
	return leaf_hash(w->hasher, rec->payload, rec->stored_bytes, rec->payload_hash);
}

/*
 * An encrypted record: its payload sealed under the record key, nonce its
 * seq (FORMAT-v2.md, "Encryption"), into w->sealed.
 */
static int seal_payload(struct bkp_writer *w, struct bkp_record *rec)
{
	rec->stored_bytes += TAG_BYTES;
	if (record_seal(w->gcm, w->crypto, rec, rec->payload, w->sealed))
		return -1;
	rec->payload = w->sealed;
	return 0;
}

static int put_v2(struct bkp_writer *w, const struct bkp_record *rec)
{
	struct bkp_record stored = *rec;
	struct disk_record_v2 header;
	struct block_entry e;

	stored.seq = w->sum.records;
	if ((w->crypto && seal_payload(w, &stored)) || hash_payload(w, &stored))
		return -1;
	e = (struct block_entry){
		.chunk = rec->chunk, .offset = w->offset, .stored_bytes = stored.stored_bytes,
		.codec = rec->codec, .flags = rec->flags,
	};
	record_v2_encode(&stored, w->sum.records, &header);
	memcpy(e.leaf, rec->leaf, 32);
	if (sha256(&header, sizeof(header), e.record_hash) ||
	    emit(w, &header, sizeof(header)) || emit(w, stored.payload, stored.stored_bytes))
		return -1;
	return blocks_add(&w->blocks, &e, rec->flags & REC_EARLY);
}

static int check_usable(const struct bkp_writer *w)
{
	return w->broken ? fail(AMBER_ESYS, "the backup writer failed earlier") : 0;
}

int bkp_writer_put(struct bkp_writer *w, const struct bkp_record *rec)
{
	if (check_usable(w))
		return -1;
	if (check_record(w, rec) ||
	    image_digest_add(w->digest, rec->chunk, rec->leaf, rec->flags & REC_EARLY))
		return error_prefix("refusing to write record %" PRIu64 ": ", w->sum.records);
	if (w->info.version == BKP_VERSION_1 ? put_v1(w, rec) : put_v2(w, rec)) {
		w->broken = true;
		return -1;
	}
	bit_set(w->present, rec->chunk);
	w->sum.records++;
	w->sum.zero_records += !!(rec->flags & REC_ZERO);
	w->sum.logical_bytes += rec->length;
	return 0;
}

static int emit_index(struct bkp_writer *w)
{
	XXH3_state_t *state = XXH3_createState();
	struct disk_index_entry entry;
	struct disk_index_head head;
	int ret = -1;
	size_t i;

	if (!state)
		return fail(AMBER_ESYS, "out of memory");
	XXH3_64bits_reset(state);
	index_sort(&w->index);
	w->sum.index_offset = w->offset;
	w->sum.index_entries = w->index.n;
	index_head_encode(w->index.n, &head);
	XXH3_64bits_update(state, &head, sizeof(head));
	if (emit(w, &head, sizeof(head)))
		goto out;
	for (i = 0; i < w->index.n; i++) {
		index_entry_encode(&w->index.v[i], &entry);
		XXH3_64bits_update(state, &entry, sizeof(entry));
		if (emit(w, &entry, sizeof(entry)))
			goto out;
	}
	w->sum.index_csum = XXH3_64bits_digest(state);
	ret = 0;
out:
	XXH3_freeState(state);
	return ret;
}

static int finish_v1(struct bkp_writer *w)
{
	struct disk_trailer trailer;

	if (emit_index(w))
		return -1;
	w->sum.file_bytes = w->offset + sizeof(trailer);
	trailer_encode(&w->sum, &trailer);
	return emit(w, &trailer, sizeof(trailer));
}

/* The last blocks, the block table, no extension, the trailer. */
static int finish_v2(struct bkp_writer *w)
{
	struct disk_trailer_v2 trailer;
	uint8_t *table;
	size_t len;
	int ret;

	if (blocks_finish(&w->blocks) || !(table = blocks_table(&w->blocks, &len)))
		return -1;
	w->sum.table_offset = w->offset;
	w->sum.blocks = w->blocks.nr_rows;
	ret = sha256(table, len, w->sum.table_hash) || emit(w, table, len);
	free(table);
	if (ret)
		return -1;
	w->sum.file_bytes = w->offset + sizeof(trailer);
	if ((w->crypto && trailer_mac(w->crypto, &w->sum, w->sum.mac)) ||
	    (w->sign && trailer_sign(w->sign, &w->sum)))
		return -1;
	trailer_v2_encode(&w->sum, &trailer);
	return emit(w, &trailer, sizeof(trailer));
}

int bkp_writer_finish(struct bkp_writer *w, const uint8_t link[32],
		      struct bkp_summary *out)
{
	if (check_usable(w))
		return -1;
	if (w->info.kind == BKP_FULL && w->sum.records != w->info.geo.nr_chunks)
		return fail(AMBER_EDATA, "a full backup needs all %" PRIu64
			    " chunks, it has %" PRIu64, w->info.geo.nr_chunks, w->sum.records);
	if (image_digest_final(w->digest, w->sum.digest))
		return -1;
	memcpy(w->sum.link, link ? link : w->sum.digest, 32);
	if ((w->info.version == BKP_VERSION_1 ? finish_v1(w) : finish_v2(w)) ||
	    bkp_writer_flush(w))
		return -1;
	if (out)
		*out = w->sum;
	return 0;
}

uint64_t bkp_writer_offset(const struct bkp_writer *w)
{
	return w->offset;
}

void bkp_writer_free(struct bkp_writer *w)
{
	if (!w)
		return;
	image_digest_free(w->digest);
	index_release(&w->index);
	blocks_release(&w->blocks);
	leaf_hasher_free(w->hasher);
	bkp_crypto_free(w->crypto);
	gcm_free(w->gcm);
	free(w->sealed);
	free(w->present);
	free(w->buf);
	free(w);
}
