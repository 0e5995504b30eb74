// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <xxhash.h>

#include "checks.h"
#include "crypto.h"
#include "error.h"
#include "index.h"
#include "layout.h"
#include "util.h"

/* XXH3-64 of a structure up to (not including) its csum field. */
#define CSUM_BEFORE(ptr, field) XXH3_64bits(ptr, offsetof(typeof(*(ptr)), field))

int geometry_init(struct geometry *g, uint64_t volume_bytes, uint64_t chunk_bytes)
{
	if (!is_power_of_2(chunk_bytes) || chunk_bytes < BKP_MIN_CHUNK ||
	    chunk_bytes > BKP_MAX_CHUNK)
		return fail(AMBER_EDATA, "chunk size %" PRIu64
			    " is not a power of two from 4 KiB to 1 MiB", chunk_bytes);
	if (!volume_bytes || volume_bytes % 512)
		return fail(AMBER_EDATA, "volume size %" PRIu64
			    " is not a positive multiple of 512", volume_bytes);
	if (DIV_ROUND_UP(volume_bytes, chunk_bytes) > BKP_MAX_CHUNKS)
		return fail(AMBER_EDATA, "volume of %" PRIu64 " bytes has more than 2^32 chunks",
			    volume_bytes);
	g->volume_bytes = volume_bytes;
	g->chunk_bytes = chunk_bytes;
	g->nr_chunks = DIV_ROUND_UP(volume_bytes, chunk_bytes);
	return 0;
}

uint32_t chunk_length(const struct geometry *g, uint64_t chunk)
{
	return MIN(g->chunk_bytes, g->volume_bytes - chunk * g->chunk_bytes);
}

static const uint8_t nothing[128];

static bool zero_bytes(const void *p, size_t len)
{
	return !memcmp(p, nothing, len);
}

/* ---- header ---- */

void header_encode(const struct bkp_info *info, struct disk_header *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->magic, BKP_MAGIC, sizeof(out->magic));
	out->version = htole32(info->version);
	out->header_bytes = htole32(sizeof(*out));
	out->kind = htole32(info->kind);
	out->flags = htole32(info->flags);
	memcpy(out->volume_uuid, info->volume_uuid, 16);
	out->volume_bytes = htole64(info->geo.volume_bytes);
	out->chunk_bytes = htole32(info->geo.chunk_bytes);
	out->epoch = htole64(info->epoch);
	out->created = htole64(info->created);
	memcpy(out->tool, info->tool, strnlen(info->tool, sizeof(out->tool)));
	if (info->kind == BKP_INCREMENTAL) {
		memcpy(out->parent_uuid, info->parent_uuid, 16);
		out->parent_epoch = htole64(info->parent_epoch);
		memcpy(out->parent_link, info->parent_link, 32);
	}
	if (info->version == BKP_VERSION_2) {
		out->v2.compat = htole32(info->compat);
		out->v2.ro_compat = htole32(info->ro_compat);
		out->v2.incompat = htole32(info->incompat);
		memcpy(out->v2.backup_id, info->backup_id, 16);
		memcpy(out->v2.key_fingerprint, info->key_fingerprint, 32);
	}
	out->csum = htole64(CSUM_BEFORE(out, csum));
}

static void decode_tool(const char *in, char *out)
{
	size_t i;

	for (i = 0; i < BKP_TOOL_BYTES && in[i]; i++)
		out[i] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
	out[i] = 0;
}

static int check_parent(const struct disk_header *in, const struct bkp_info *info)
{
	if (info->kind == BKP_FULL) {
		if (!zero_bytes(in->parent_uuid, 16) || in->parent_epoch ||
		    !zero_bytes(in->parent_link, 32))
			return fail(AMBER_EDATA, "header: a full backup with a parent");
		return 0;
	}
	if (info->flags & BKP_SYNTHETIC)
		return fail(AMBER_EDATA, "header: a synthetic incremental backup");
	if (memcmp(in->parent_uuid, in->volume_uuid, 16))
		return fail(AMBER_EDATA, "header: parent is of another volume");
	if (!info->parent_epoch || info->parent_epoch >= info->epoch)
		return fail(AMBER_EDATA, "header: parent epoch %" PRIu64
			    " is not before epoch %" PRIu64, info->parent_epoch, info->epoch);
	return 0;
}

#define FEATURE_BITS_TEXT	128	/* "bits 0, 1, ..., 31" */

/* "bit 3" or "bits 3, 9, 30": every bit set in @bits (not 0), into @buf. */
static const char *format_bits(uint32_t bits, char buf[FEATURE_BITS_TEXT])
{
	size_t len = snprintf(buf, FEATURE_BITS_TEXT, "bit%s", bits & (bits - 1) ? "s" : "");
	const char *sep = " ";
	unsigned int bit;

	for (bit = 0; bit < 32; bit++)
		if (bits & (1U << bit)) {
			len += snprintf(buf + len, FEATURE_BITS_TEXT - len, "%s%u", sep, bit);
			sep = ", ";
		}
	return buf;
}

/* The v2 feature bits (FORMAT-v2.md, "Feature bits"). */
static int check_features(const struct disk_header *in, struct bkp_info *info)
{
	uint32_t unknown_incompat = info->incompat & ~FEATURE_INCOMPAT_ENCRYPTED;
	bool fingerprint = !zero_bytes(in->v2.key_fingerprint, sizeof(in->v2.key_fingerprint));
	char bits[FEATURE_BITS_TEXT];

	if (unknown_incompat)
		return fail(AMBER_EDATA, "header: incompatible feature %s, unknown to this"
			    " amber (it knows ENCRYPTED)", format_bits(unknown_incompat, bits));
	if (fingerprint != bkp_encrypted(info))
		return fail(AMBER_EDATA, "header: %s", fingerprint ?
			    "a key fingerprint without ENCRYPTED" :
			    "ENCRYPTED without a key fingerprint");
	memcpy(info->key_fingerprint, in->v2.key_fingerprint, 32);
	/* Only an unknown compat or ro_compat feature may claim the area. */
	if (!(info->compat & ~FEATURE_COMPAT_SIGNED) && !info->ro_compat &&
	    !zero_bytes(in->v2.feature_area, sizeof(in->v2.feature_area)))
		return fail(AMBER_EDATA, "header: feature area set, but no feature claims it");
	return 0;
}

static int decode_v2_fields(const struct disk_header *in, struct bkp_info *info)
{
	if (in->v2.reserved)
		return fail(AMBER_EDATA, "header: reserved bytes at offset 172 set");
	info->compat = le32toh(in->v2.compat);
	info->ro_compat = le32toh(in->v2.ro_compat);
	info->incompat = le32toh(in->v2.incompat);
	memcpy(info->backup_id, in->v2.backup_id, 16);
	if (zero_bytes(info->backup_id, 16))
		return fail(AMBER_EDATA, "header: backup id is zero");
	return check_features(in, info);
}

int bkp_check_extendable(const char *path, const struct bkp_info *info)
{
	char bits[FEATURE_BITS_TEXT];

	if (!info->ro_compat)
		return 0;
	return fail(AMBER_EDATA, "%s: read-only compatible feature %s, unknown to this"
		    " amber: the backup can be verified and restored, but not continued or"
		    " consolidated", path, format_bits(info->ro_compat, bits));
}

/* What a header says before its version's fields: magic, version, checksum. */
static int check_envelope(const struct disk_header *in, uint32_t version)
{
	if (memcmp(in->magic, BKP_MAGIC, sizeof(in->magic)))
		return fail(AMBER_EDATA, "header: not an amber backup (bad magic)");
	if (version != BKP_VERSION_1 && version != BKP_VERSION_2)
		return fail(AMBER_EDATA, "header: format version %u, this amber reads versions"
			    " 1 and 2", version);
	if (sum_differs(le64toh(in->csum), CSUM_BEFORE(in, csum)))
		return fail(AMBER_EDATA, "header: checksum mismatch");
	if (le32toh(in->header_bytes) != sizeof(*in) || in->reserved0 ||
	    (version == BKP_VERSION_1 && !zero_bytes(in->reserved, sizeof(in->reserved))))
		return fail(AMBER_EDATA, "header: bad size or reserved bytes");
	return 0;
}

int header_decode(const struct disk_header *in, struct bkp_info *info)
{
	uint32_t version = le32toh(in->version);

	if (check_envelope(in, version))
		return -1;
	memset(info, 0, sizeof(*info));
	info->version = version;
	if (version == BKP_VERSION_2 && decode_v2_fields(in, info))
		return -1;
	info->kind = le32toh(in->kind);
	info->flags = le32toh(in->flags);
	if (info->kind != BKP_FULL && info->kind != BKP_INCREMENTAL)
		return fail(AMBER_EDATA, "header: unknown kind %u", info->kind);
	if (info->flags & ~BKP_SYNTHETIC)
		return fail(AMBER_EDATA, "header: unknown flags %#x", info->flags);
	if (geometry_init(&info->geo, le64toh(in->volume_bytes), le32toh(in->chunk_bytes)))
		return error_prefix("header: ");
	info->epoch = le64toh(in->epoch);
	if (!info->epoch || info->epoch > INT64_MAX)
		return fail(AMBER_EDATA, "header: epoch %" PRIu64 " is not in 1..2^63-1",
			    info->epoch);
	memcpy(info->volume_uuid, in->volume_uuid, 16);
	info->created = (int64_t)le64toh(in->created);
	decode_tool(in->tool, info->tool);
	memcpy(info->parent_uuid, in->parent_uuid, 16);
	info->parent_epoch = le64toh(in->parent_epoch);
	memcpy(info->parent_link, in->parent_link, 32);
	return check_parent(in, info);
}

/* ---- records ---- */

void record_encode(const struct bkp_record *rec, uint64_t seq, struct disk_record *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->magic, REC_MAGIC, sizeof(out->magic));
	out->codec = htole16(rec->codec);
	out->flags = htole16(rec->flags);
	out->seq = htole64(seq);
	out->chunk = htole64(rec->chunk);
	out->stored_bytes = htole32(rec->stored_bytes);
	out->payload_csum = htole64(rec->payload_csum);
	memcpy(out->leaf, rec->leaf, 32);
	out->csum = htole64(CSUM_BEFORE(out, csum));
}

int record_check(const struct bkp_record *rec, uint32_t tag)
{
	uint32_t stored = rec->stored_bytes - tag;
	bool ok;

	if (rec->codec > CODEC_ZSTD || rec->flags & ~REC_FLAGS)
		return fail(AMBER_EDATA, "unknown codec %u or flags %#x", rec->codec,
			    rec->flags);
	if (rec->stored_bytes < tag)
		ok = false;
	else if (rec->flags & REC_ZERO)
		ok = rec->codec == CODEC_RAW && !stored;
	else if (rec->codec == CODEC_RAW)
		ok = stored == rec->length;
	else
		ok = stored && stored < rec->length;
	if (!ok)
		return fail(AMBER_EDATA, "stored length %u is impossible for codec %u, flags %#x,"
			    " chunk length %u", rec->stored_bytes, rec->codec, rec->flags,
			    rec->length);
	return 0;
}

/* The fields both versions share, once rec is filled from the header. */
static int check_record_fields(uint32_t reserved, const struct geometry *g,
			       uint32_t tag, struct bkp_record *rec)
{
	if (reserved)
		return fail(AMBER_EDATA, "record reserved bytes set");
	if (rec->chunk >= g->nr_chunks)
		return fail(AMBER_EDATA, "chunk %" PRIu64 " beyond the volume's %" PRIu64,
			    rec->chunk, g->nr_chunks);
	rec->length = chunk_length(g, rec->chunk);
	return record_check(rec, tag);
}

int record_decode(const struct disk_record *in, const struct geometry *g,
		  struct bkp_record *rec, uint64_t *seq)
{
	if (memcmp(in->magic, REC_MAGIC, sizeof(in->magic)))
		return fail(AMBER_EDATA, "bad record magic");
	if (sum_differs(le64toh(in->csum), CSUM_BEFORE(in, csum)))
		return fail(AMBER_EDATA, "record header checksum mismatch");
	memset(rec, 0, sizeof(*rec));
	rec->codec = le16toh(in->codec);
	rec->flags = le16toh(in->flags);
	rec->chunk = le64toh(in->chunk);
	rec->stored_bytes = le32toh(in->stored_bytes);
	rec->payload_csum = le64toh(in->payload_csum);
	memcpy(rec->leaf, in->leaf, 32);
	*seq = rec->seq = le64toh(in->seq);
	return check_record_fields(in->reserved, g, 0, rec);
}

void record_v2_encode(const struct bkp_record *rec, uint64_t seq, struct disk_record_v2 *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->magic, REC_MAGIC, sizeof(out->magic));
	out->codec = htole16(rec->codec);
	out->flags = htole16(rec->flags);
	out->seq = htole64(seq);
	out->chunk = htole64(rec->chunk);
	out->stored_bytes = htole32(rec->stored_bytes);
	memcpy(out->leaf, rec->leaf, 32);
	memcpy(out->payload_hash, rec->payload_hash, 32);
	out->csum = htole64(CSUM_BEFORE(out, csum));
}

int record_v2_decode(const struct disk_record_v2 *in, const struct geometry *g, uint32_t tag,
		     struct bkp_record *rec, uint64_t *seq)
{
	if (memcmp(in->magic, REC_MAGIC, sizeof(in->magic)))
		return fail(AMBER_EDATA, "bad record magic");
	if (sum_differs(le64toh(in->csum), CSUM_BEFORE(in, csum)))
		return fail(AMBER_EDATA, "record header checksum mismatch");
	memset(rec, 0, sizeof(*rec));
	rec->codec = le16toh(in->codec);
	rec->flags = le16toh(in->flags);
	rec->chunk = le64toh(in->chunk);
	rec->stored_bytes = le32toh(in->stored_bytes);
	memcpy(rec->leaf, in->leaf, 32);
	memcpy(rec->payload_hash, in->payload_hash, 32);
	*seq = rec->seq = le64toh(in->seq);
	return check_record_fields(in->reserved, g, tag, rec);
}

/* ---- index ---- */

void index_head_encode(uint64_t entries, struct disk_index_head *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->magic, IDX_MAGIC, sizeof(out->magic));
	out->entries = htole64(entries);
}

int index_head_decode(const struct disk_index_head *in, uint64_t *entries)
{
	if (memcmp(in->magic, IDX_MAGIC, sizeof(in->magic)) || in->reserved)
		return fail(AMBER_EDATA, "bad index magic or reserved bytes");
	*entries = le64toh(in->entries);
	return 0;
}

void index_entry_encode(const struct index_entry *e, struct disk_index_entry *out)
{
	out->first_chunk = htole64(e->first_chunk);
	out->offset = htole64(e->offset);
	out->count = htole32(e->count);
	out->bytes = htole32(e->bytes);
}

void index_entry_decode(const struct disk_index_entry *in, struct index_entry *e)
{
	e->first_chunk = le64toh(in->first_chunk);
	e->offset = le64toh(in->offset);
	e->count = le32toh(in->count);
	e->bytes = le32toh(in->bytes);
}

/* ---- trailer ---- */

void trailer_encode(const struct bkp_summary *s, struct disk_trailer *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->magic, TRL_MAGIC, sizeof(out->magic));
	out->records = htole64(s->records);
	out->zero_records = htole64(s->zero_records);
	out->logical_bytes = htole64(s->logical_bytes);
	out->index_offset = htole64(s->index_offset);
	out->index_entries = htole64(s->index_entries);
	out->index_csum = htole64(s->index_csum);
	out->file_bytes = htole64(s->file_bytes);
	memcpy(out->digest, s->digest, 32);
	memcpy(out->link, s->link, 32);
	out->csum = htole64(CSUM_BEFORE(out, csum));
	memcpy(out->end, END_MAGIC, sizeof(out->end));
}

int trailer_decode(const struct disk_trailer *in, struct bkp_summary *s)
{
	if (memcmp(in->magic, TRL_MAGIC, sizeof(in->magic)))
		return fail(AMBER_EDATA, "bad trailer magic");
	if (sum_differs(le64toh(in->csum), CSUM_BEFORE(in, csum)))
		return fail(AMBER_EDATA, "trailer checksum mismatch");
	if (memcmp(in->end, END_MAGIC, sizeof(in->end)))
		return fail(AMBER_EDATA, "no end marker after the trailer");
	if (in->reserved)
		return fail(AMBER_EDATA, "trailer reserved bytes set");
	memset(s, 0, sizeof(*s));
	s->records = le64toh(in->records);
	s->zero_records = le64toh(in->zero_records);
	s->logical_bytes = le64toh(in->logical_bytes);
	s->index_offset = le64toh(in->index_offset);
	s->index_entries = le64toh(in->index_entries);
	s->index_csum = le64toh(in->index_csum);
	s->file_bytes = le64toh(in->file_bytes);
	memcpy(s->digest, in->digest, 32);
	memcpy(s->link, in->link, 32);
	if (s->zero_records > s->records || s->index_entries > s->records)
		return fail(AMBER_EDATA, "trailer counts are inconsistent");
	/* No file holds 2^63 bytes (off_t); JSON prints these as signed. */
	if (s->records > INT64_MAX || s->logical_bytes > INT64_MAX ||
	    s->index_offset > INT64_MAX || s->file_bytes > INT64_MAX)
		return fail(AMBER_EDATA, "trailer counts past 2^63-1");
	return 0;
}

/* ---- v2 index blocks, block table, trailer ---- */

void block_entry_encode(const struct block_entry *e, struct disk_block_entry *out)
{
	out->chunk = htole64(e->chunk);
	out->offset = htole64(e->offset);
	out->stored_bytes = htole32(e->stored_bytes);
	out->codec = htole16(e->codec);
	out->flags = htole16(e->flags);
	memcpy(out->record_hash, e->record_hash, 32);
	memcpy(out->leaf, e->leaf, 32);
}

void block_entry_decode(const struct disk_block_entry *in, struct block_entry *e)
{
	e->chunk = le64toh(in->chunk);
	e->offset = le64toh(in->offset);
	e->stored_bytes = le32toh(in->stored_bytes);
	e->codec = le16toh(in->codec);
	e->flags = le16toh(in->flags);
	memcpy(e->record_hash, in->record_hash, 32);
	memcpy(e->leaf, in->leaf, 32);
}

void block_head_encode(uint32_t count, uint64_t block, struct disk_block_head *out)
{
	memcpy(out->magic, IDX_MAGIC, sizeof(out->magic));
	out->count = htole32(count);
	out->block = htole64(block);
}

void table_row_encode(const struct table_row *row, struct disk_table_row *out)
{
	out->first_chunk = htole64(row->first_chunk);
	out->offset = htole64(row->offset);
	memcpy(out->hash, row->hash, 32);
}

void table_row_decode(const struct disk_table_row *in, struct table_row *row)
{
	row->first_chunk = le64toh(in->first_chunk);
	row->offset = le64toh(in->offset);
	memcpy(row->hash, in->hash, 32);
}

void table_head_encode(uint64_t blocks, struct disk_table_head *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->magic, TABLE_MAGIC, sizeof(out->magic));
	out->blocks = htole64(blocks);
}

int table_head_decode(const struct disk_table_head *in, uint64_t *blocks)
{
	if (memcmp(in->magic, TABLE_MAGIC, sizeof(in->magic)) || in->reserved)
		return fail(AMBER_EDATA, "bad block table magic or reserved bytes");
	*blocks = le64toh(in->blocks);
	return 0;
}

void trailer_v2_encode(const struct bkp_summary *s, struct disk_trailer_v2 *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->magic, TRL_MAGIC, sizeof(out->magic));
	out->trailer_bytes = htole32(offsetof(struct disk_trailer_v2, end));
	out->records = htole64(s->records);
	out->zero_records = htole64(s->zero_records);
	out->logical_bytes = htole64(s->logical_bytes);
	out->table_offset = htole64(s->table_offset);
	out->ext_bytes = htole64(s->ext_bytes);
	out->file_bytes = htole64(s->file_bytes);
	memcpy(out->header_hash, s->header_hash, 32);
	memcpy(out->table_hash, s->table_hash, 32);
	memcpy(out->ext_hash, s->ext_hash, 32);
	memcpy(out->digest, s->digest, 32);
	memcpy(out->link, s->link, 32);
	memcpy(out->mac, s->mac, 32);
	memcpy(out->signer, s->signer, 32);
	memcpy(out->signature, s->signature, 64);
	out->csum = htole64(CSUM_BEFORE(out, csum));
	memcpy(out->end, END_MAGIC, sizeof(out->end));
}

/* The MAC is set exactly when ENCRYPTED, signer and signature when SIGNED. */
static int check_trailer_v2_areas(const struct disk_trailer_v2 *in,
				  const struct bkp_info *info)
{
	bool mac = !zero_bytes(in->mac, sizeof(in->mac));
	bool signer = !zero_bytes(in->signer, sizeof(in->signer));
	bool signature = !zero_bytes(in->signature, 64);
	bool is_signed = info->compat & FEATURE_COMPAT_SIGNED;

	if (in->reserved)
		return fail(AMBER_EDATA, "trailer reserved bytes set");
	if (mac != bkp_encrypted(info))
		return fail(AMBER_EDATA, "trailer MAC %s, but the header says the backup is%s"
			    " encrypted", mac ? "set" : "zero", mac ? " not" : "");
	if (signer != is_signed || signature != is_signed)
		return fail(AMBER_EDATA, "trailer signer or signature %s, but the header says"
			    " the backup is%s signed", is_signed ? "zero" : "set",
			    is_signed ? "" : " not");
	return 0;
}

int trailer_v2_decode(const struct disk_trailer_v2 *in, const struct bkp_info *info,
		      struct bkp_summary *s)
{
	if (memcmp(in->magic, TRL_MAGIC, sizeof(in->magic)))
		return fail(AMBER_EDATA, "bad trailer magic");
	if (sum_differs(le64toh(in->csum), CSUM_BEFORE(in, csum)))
		return fail(AMBER_EDATA, "trailer checksum mismatch");
	if (memcmp(in->end, END_MAGIC, sizeof(in->end)))
		return fail(AMBER_EDATA, "no end marker after the trailer");
	if (le32toh(in->trailer_bytes) != offsetof(struct disk_trailer_v2, end))
		return fail(AMBER_EDATA, "trailer size %u, not %zu", le32toh(in->trailer_bytes),
			    offsetof(struct disk_trailer_v2, end));
	if (check_trailer_v2_areas(in, info))
		return -1;
	memset(s, 0, sizeof(*s));
	s->records = le64toh(in->records);
	s->zero_records = le64toh(in->zero_records);
	s->logical_bytes = le64toh(in->logical_bytes);
	s->table_offset = le64toh(in->table_offset);
	s->ext_bytes = le64toh(in->ext_bytes);
	s->file_bytes = le64toh(in->file_bytes);
	memcpy(s->header_hash, in->header_hash, 32);
	memcpy(s->table_hash, in->table_hash, 32);
	memcpy(s->ext_hash, in->ext_hash, 32);
	memcpy(s->digest, in->digest, 32);
	memcpy(s->link, in->link, 32);
	memcpy(s->mac, in->mac, 32);
	memcpy(s->signer, in->signer, 32);
	memcpy(s->signature, in->signature, 64);
	if (s->zero_records > s->records)
		return fail(AMBER_EDATA, "trailer counts are inconsistent");
	if (s->records > INT64_MAX || s->logical_bytes > INT64_MAX ||
	    s->table_offset > INT64_MAX || s->ext_bytes > INT64_MAX ||
	    s->file_bytes > INT64_MAX)
		return fail(AMBER_EDATA, "trailer counts past 2^63-1");
	if (!s->ext_bytes && !zero_bytes(s->ext_hash, sizeof(s->ext_hash)))
		return fail(AMBER_EDATA, "trailer ext_hash set, but ext_bytes is 0 (no extension"
			    " section to hash)");
	s->blocks = DIV_ROUND_UP(s->records, BKP_BLOCK_ENTRIES);
	return 0;
}

enum section section_of(const void *magic)
{
	if (!memcmp(magic, REC_MAGIC, SECTION_MAGIC_BYTES))
		return SECTION_RECORD;
	if (!memcmp(magic, IDX_MAGIC, SECTION_MAGIC_BYTES))
		return SECTION_INDEX;
	if (!memcmp(magic, TRL_MAGIC, SECTION_MAGIC_BYTES))
		return SECTION_TRAILER;
	if (!memcmp(magic, TABLE_MAGIC, SECTION_MAGIC_BYTES))
		return SECTION_TABLE;
	if (!memcmp(magic, EXT_MAGIC, SECTION_MAGIC_BYTES))
		return SECTION_EXTENSION;
	return SECTION_UNKNOWN;
}

uint32_t record_tag_bytes(const struct bkp_info *info)
{
	return bkp_encrypted(info) ? TAG_BYTES : 0;
}
