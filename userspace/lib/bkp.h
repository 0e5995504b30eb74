/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The amber backup format (docs/FORMAT.md): a streaming writer, a streaming
 * reader that verifies everything it returns, and random access to a
 * seekable backup through its trailer index.
 *
 * Every function that can fail returns -1 (or NULL) with the error recorded
 * (error.h): AMBER_EDATA for anything wrong in the backup's bytes, with a
 * one-line message naming the record number and byte offset, AMBER_ESYS for
 * I/O and memory. Nothing read from a backup is trusted before it has been
 * checked; no length or offset read from it is used unbounded.
 */
#ifndef AMBER_BKP_H
#define AMBER_BKP_H

#include <stdbool.h>
#include <stdint.h>

#include "format.h"

/* How a volume is cut into chunks. */
struct geometry {
	uint64_t volume_bytes;
	uint32_t chunk_bytes;
	uint64_t nr_chunks;		/* the last one may be shorter */
};

/* Fill @g; fails (AMBER_EDATA) unless the sizes are valid for a backup. */
int geometry_init(struct geometry *g, uint64_t volume_bytes, uint64_t chunk_bytes);
/* Content bytes of @chunk (< nr_chunks). */
uint32_t chunk_length(const struct geometry *g, uint64_t chunk);

enum bkp_kind { BKP_FULL = 1, BKP_INCREMENTAL = 2 };
#define BKP_SYNTHETIC	(1U << 0)	/* header flag: made by consolidate */

enum bkp_codec { CODEC_RAW = 0, CODEC_ZSTD = 1 };
#define REC_ZERO	(1U << 0)	/* all-zero chunk, no payload */
#define REC_EARLY	(1U << 1)	/* sent ahead of the ascending sweep */
#define REC_FLAGS	(REC_ZERO | REC_EARLY)

/* What the header says. */
struct bkp_info {
	uint32_t version;		/* BKP_VERSION_1 or _2; a writer: 0 is BKP_VERSION */
	enum bkp_kind kind;
	uint32_t flags;
	uint8_t volume_uuid[16];
	struct geometry geo;
	uint64_t epoch;
	int64_t created;
	char tool[BKP_TOOL_BYTES + 1];
	uint8_t parent_uuid[16];	/* incremental only, else zero */
	uint64_t parent_epoch;
	uint8_t parent_link[32];
	/* v2 only (zero in v1); a writer ignores these and draws backup_id. */
	uint32_t compat, ro_compat, incompat;
	uint8_t backup_id[16];
	uint8_t key_fingerprint[32];	/* ENCRYPTED: the data key's */
};

static inline bool bkp_encrypted(const struct bkp_info *info)
{
	return info->incompat & FEATURE_INCOMPAT_ENCRYPTED;
}

/*
 * Fails (AMBER_EDATA) when a backup may be read but not continued or
 * consolidated: it has a read-only compatible feature this amber does not
 * know. @path names it in the message.
 */
int bkp_check_extendable(const char *path, const struct bkp_info *info);

/* What the trailer says. */
struct bkp_summary {
	uint64_t records;
	uint64_t zero_records;
	uint64_t logical_bytes;
	uint64_t index_offset;		/* v1 only: of the index */
	uint64_t index_entries;		/* v1 only: extents */
	uint64_t index_csum;		/* v1 only */
	uint64_t file_bytes;
	uint8_t digest[32];
	uint8_t link[32];
	/* v2 only: */
	uint64_t table_offset;		/* of the block table */
	uint64_t blocks;		/* index blocks: rows of the table */
	uint64_t ext_bytes;
	uint8_t header_hash[32];
	uint8_t table_hash[32];
	uint8_t ext_hash[32];
	uint8_t mac[32];		/* ENCRYPTED */
	uint8_t signer[32];		/* SIGNED: SHA-256 of the public key */
	uint8_t signature[64];		/* SIGNED */
};

/* One chunk, as stored and (from the reader) as content. */
struct bkp_record {
	uint64_t chunk;
	uint16_t codec;
	uint16_t flags;			/* REC_* */
	uint32_t length;		/* content bytes: chunk_length() */
	/*
	 * Payload bytes. From a reader with the key, and into a writer, the
	 * bytes before encryption: the writer of an encrypted backup seals them
	 * (adding TAG_BYTES); a keyless reader returns them as stored.
	 */
	uint32_t stored_bytes;
	const void *payload;
	uint64_t seq;			/* reader: the record's number in its file */
	uint64_t payload_csum;		/* v1: XXH3-64 of the payload */
	uint8_t payload_hash[32];	/* v2: SHA-256 of the payload (the writer's own) */
	uint8_t leaf[32];		/* SHA-256 of the content */
	const void *data;		/* reader: the verified content; NULL keyless */
};

/* ---- keys (keys.h) ---- */

struct data_key;
struct asym_key;

/* What a writer encrypts with (FORMAT-v2.md, "Encryption") and signs with. */
struct bkp_keys {
	const struct data_key *data;	/* NULL: not encrypted */
	const struct asym_key *sign;	/* Ed25519 private key; NULL: not signed */
};

/* ---- writing ---- */

struct bkp_writer;

/*
 * Start a backup on @fd (written front to back, never sought) and write its
 * header. @info->created and ->tool are taken as given. The writer refuses
 * records that would make an invalid file (bad chunk, duplicate, order).
 * @keys (NULL: neither) encrypts and signs a format 2 backup; records put
 * must then carry keyed leaves (chunk_encoder_new() with the identity key).
 */
struct bkp_writer *bkp_writer_new(int fd, const struct bkp_info *info,
				  const struct bkp_keys *keys);
/*
 * bkp_writer_new() with the v2 backup_id given, not drawn: for known-answer
 * tests and seed files only. A backup_id must never repeat (FORMAT-v2.md).
 */
struct bkp_writer *bkp_writer_new_with_id(int fd, const struct bkp_info *info,
					  const struct bkp_keys *keys,
					  const uint8_t backup_id[16]);
/* Append @rec (from chunk_encode() or a reader); @rec->data is not used. */
int bkp_writer_put(struct bkp_writer *w, const struct bkp_record *rec);
/* Hand everything buffered to the kernel (write(2)). */
int bkp_writer_flush(struct bkp_writer *w);
/*
 * Write the index and trailer and flush. @link is the trailer's link for a
 * synthetic full (the newest source's link); NULL makes it the digest. A
 * full backup must hold every chunk. Fills @out when not NULL. The caller
 * makes the medium durable.
 */
int bkp_writer_finish(struct bkp_writer *w, const uint8_t link[32],
		      struct bkp_summary *out);
/* Bytes handed to bkp_writer_flush() or buffered so far. */
uint64_t bkp_writer_offset(const struct bkp_writer *w);
void bkp_writer_free(struct bkp_writer *w);

/* ---- streaming read ---- */

struct bkp_reader;

/* Read and check the header from @fd (any readable fd, read front to back). */
struct bkp_reader *bkp_reader_open(int fd);
const struct bkp_info *bkp_reader_info(const struct bkp_reader *r);
/*
 * Check payloads (checksum, decoding, leaf) on up to @n threads besides the
 * calling one, which checks a batch itself rather than wait for it (0, the
 * default: one per CPU); set before the first bkp_reader_next(). The
 * records, and the first error, are the same whatever @n. Up to 2 * @n + 2
 * batches of 1 MiB of records are read ahead.
 */
void bkp_reader_set_workers(struct bkp_reader *r, unsigned int n);
/*
 * Before the first bkp_reader_next(): the data key of an encrypted backup
 * (fails naming both fingerprints when it is not the backup's; ignored for
 * a backup not encrypted). Without it an encrypted backup is read keyless:
 * every stored byte is checked against its hash, nothing is decrypted and
 * records come without content (rec->data NULL), the MAC unchecked.
 */
int bkp_reader_set_key(struct bkp_reader *r, const struct data_key *key);
/*
 * Before the first bkp_reader_next(): the trailer must be signed by @pub.
 * With the key and without @pub, the tag of an encrypted record stands for
 * its payload_hash; with @pub, only for a raw or ZERO record's.
 */
int bkp_reader_set_pubkey(struct bkp_reader *r, const struct asym_key *pub);
/*
 * The next record, fully verified: header checksum and fields, sequence,
 * order rules, no duplicate, payload checksum, decoded content against its
 * leaf. Returns 1 with @rec filled (its pointers valid until the next call),
 * 0 at the end once the index, trailer, digest and end marker are verified,
 * -1 on error: the first error in file order, naming its record and offset.
 * After an error or the end, it keeps returning the same.
 */
int bkp_reader_next(struct bkp_reader *r, struct bkp_record *rec);
/* The verified trailer, after bkp_reader_next() returned 0. */
const struct bkp_summary *bkp_reader_summary(const struct bkp_reader *r);
/*
 * The image digest the reader folded from the records' leaves, after
 * bkp_reader_next() returned 0: the trailer's digest was checked equal to
 * it, except in a fuzzing build (checks.h), where only this one is the
 * digest of what was read.
 */
const uint8_t *bkp_reader_digest(const struct bkp_reader *r);
void bkp_reader_free(struct bkp_reader *r);

/* ---- seekable files ---- */

/*
 * Read the header and trailer of a seekable backup without reading the
 * records: checks both checksums, the end marker, the file size and that
 * the trailer is consistent with the header. Nothing about the records
 * is verified.
 */
int bkp_peek(int fd, struct bkp_info *info, struct bkp_summary *summary);

struct bkp_index;

/* Load and check the index of a seekable backup (after bkp_peek()). */
struct bkp_index *bkp_index_load(int fd, const struct bkp_info *info,
				 const struct bkp_summary *summary);
/*
 * The data key of an encrypted backup, for bkp_index_read(): compared by
 * fingerprint, and the trailer's MAC checked with it.
 */
int bkp_index_set_key(struct bkp_index *x, const struct data_key *key);
/* v1: extents; v2: index blocks. */
size_t bkp_index_extents(const struct bkp_index *x);
/*
 * Read one chunk at random: 1 with the verified content in @buf
 * (chunk_length() bytes), 0 if the backup has no record of @chunk, -1.
 * v2 proves it: the block table against the trailer's table_hash (once, at
 * load), the one index block against its row, the record header against
 * its entry's record_hash, the payload against payload_hash, the content
 * against the leaf. Errors name the chunk and the offset.
 */
int bkp_index_read(struct bkp_index *x, uint64_t chunk, void *buf);
/*
 * The leaf of each chunk the backup holds into @leaves[chunk], from its
 * record headers (checksums checked; payloads are not read). Fails
 * (AMBER_EDATA) unless these leaves give the trailer's image digest.
 */
int bkp_index_leaves(struct bkp_index *x, const struct bkp_summary *summary,
		     uint8_t (*leaves)[32]);
/*
 * v2: the chunk whose index entry puts its record at @offset: 1 with
 * @chunk, 0 if no entry does (or a v1 backup), -1. Reads every index
 * block: for naming the chunk of a record too damaged to say.
 */
int bkp_index_chunk_at(struct bkp_index *x, uint64_t offset, uint64_t *chunk);
/* Bytes read from the file by bkp_index_load() and the calls since. */
uint64_t bkp_index_bytes_read(const struct bkp_index *x);
void bkp_index_free(struct bkp_index *x);

#endif
