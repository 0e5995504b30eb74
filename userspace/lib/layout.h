/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Encoding and checking the fixed-size parts of a backup (format.h). The
 * decoders check the checksum, magic, reserved bytes and every field that
 * can be checked alone; messages carry no location (callers add it).
 */
#ifndef AMBER_LAYOUT_H
#define AMBER_LAYOUT_H

#include "bkp.h"

void header_encode(const struct bkp_info *info, struct disk_header *out);
int header_decode(const struct disk_header *in, struct bkp_info *info);

void record_encode(const struct bkp_record *rec, uint64_t seq, struct disk_record *out);
/* Fills everything but rec->payload and rec->data. */
int record_decode(const struct disk_record *in, const struct geometry *g,
		  struct bkp_record *rec, uint64_t *seq);

void record_v2_encode(const struct bkp_record *rec, uint64_t seq, struct disk_record_v2 *out);
/* Fills everything but rec->payload and rec->data. */
/* @tag: TAG_BYTES when the backup is encrypted, else 0. */
int record_v2_decode(const struct disk_record_v2 *in, const struct geometry *g, uint32_t tag,
		     struct bkp_record *rec, uint64_t *seq);

/*
 * Codec, flags and stored length agree with each other and the length;
 * @tag bytes of the stored length are the tag of an encrypted record.
 */
int record_check(const struct bkp_record *rec, uint32_t tag);
/* TAG_BYTES for the records of an encrypted backup, else 0. */
uint32_t record_tag_bytes(const struct bkp_info *info);

struct index_entry;

void index_head_encode(uint64_t entries, struct disk_index_head *out);
int index_head_decode(const struct disk_index_head *in, uint64_t *entries);
void index_entry_encode(const struct index_entry *e, struct disk_index_entry *out);
void index_entry_decode(const struct disk_index_entry *in, struct index_entry *e);

void trailer_encode(const struct bkp_summary *s, struct disk_trailer *out);
int trailer_decode(const struct disk_trailer *in, struct bkp_summary *s);

/* v2 (FORMAT-v2.md): an index entry and a block table row, decoded. */
struct block_entry {
	uint64_t chunk;
	uint64_t offset;
	uint32_t stored_bytes;
	uint16_t codec;
	uint16_t flags;
	uint8_t record_hash[32];
	uint8_t leaf[32];
};

struct table_row {
	uint64_t first_chunk;
	uint64_t offset;
	uint8_t hash[32];
};

void block_entry_encode(const struct block_entry *e, struct disk_block_entry *out);
void block_entry_decode(const struct disk_block_entry *in, struct block_entry *e);
void block_head_encode(uint32_t count, uint64_t block, struct disk_block_head *out);
void table_row_encode(const struct table_row *row, struct disk_table_row *out);
void table_row_decode(const struct disk_table_row *in, struct table_row *row);
void table_head_encode(uint64_t blocks, struct disk_table_head *out);
int table_head_decode(const struct disk_table_head *in, uint64_t *blocks);
/* ->blocks is the number the records need. */
void trailer_v2_encode(const struct bkp_summary *s, struct disk_trailer_v2 *out);
/* MAC, signer and signature are checked present exactly as @info's features say. */
int trailer_v2_decode(const struct disk_trailer_v2 *in, const struct bkp_info *info,
		      struct bkp_summary *s);

/* Bytes of a record header in format @version. */
static inline size_t record_header_bytes(uint32_t version)
{
	return version == BKP_VERSION_1 ? sizeof(struct disk_record) :
	       sizeof(struct disk_record_v2);
}

/* Which section starts with these SECTION_MAGIC_BYTES bytes. */
enum section { SECTION_UNKNOWN, SECTION_RECORD, SECTION_INDEX, SECTION_TRAILER,
	       SECTION_TABLE, SECTION_EXTENSION };
enum section section_of(const void *magic);

#endif
