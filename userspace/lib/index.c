// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>
#include <stdlib.h>
#include <xxhash.h>

#include "bkp.h"
#include "blocks.h"
#include "codec.h"
#include "checks.h"
#include "digest.h"
#include "error.h"
#include "index.h"
#include "keys.h"
#include "layout.h"
#include "util.h"

static bool extends(const struct index_entry *e, uint64_t chunk, uint64_t offset,
		    uint32_t bytes)
{
	return chunk == e->first_chunk + e->count && offset == e->offset + e->bytes &&
	       e->bytes + bytes <= BKP_EXTENT_MAX_BYTES;
}

int index_add(struct index_builder *b, uint64_t chunk, uint64_t offset, uint32_t bytes)
{
	struct index_entry *e = b->n ? &b->v[b->n - 1] : NULL;

	if (e && extends(e, chunk, offset, bytes)) {
		e->count++;
		e->bytes += bytes;
		return 0;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 1024;

		e = realloc(b->v, cap * sizeof(*e));
		if (!e)
			return fail(AMBER_ESYS, "out of memory (index of %zu entries)", cap);
		b->v = e;
		b->cap = cap;
	}
	b->v[b->n++] = (struct index_entry){ chunk, offset, 1, bytes };
	return 0;
}

static int by_first_chunk(const void *a, const void *b)
{
	const struct index_entry *x = a, *y = b;

	return x->first_chunk < y->first_chunk ? -1 : x->first_chunk > y->first_chunk;
}

void index_sort(struct index_builder *b)
{
	if (b->n)
		qsort(b->v, b->n, sizeof(*b->v), by_first_chunk);
}

void index_release(struct index_builder *b)
{
	free(b->v);
	*b = (struct index_builder){ 0 };
}

/* The entry holding @chunk in sorted, disjoint @v, or NULL. */
static const struct index_entry *index_find(const struct index_entry *v, size_t n,
					    uint64_t chunk)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (chunk < v[mid].first_chunk)
			hi = mid;
		else if (chunk >= v[mid].first_chunk + v[mid].count)
			lo = mid + 1;
		else
			return &v[mid];
	}
	return NULL;
}

/* ---- seekable backups ---- */

/* What both versions' trailers must say of the records. */
static int check_peeked_records(const struct bkp_info *info, const struct bkp_summary *s)
{
	if (s->records > info->geo.nr_chunks || s->logical_bytes > info->geo.volume_bytes ||
	    (info->kind == BKP_FULL && s->records != info->geo.nr_chunks))
		return fail(AMBER_EDATA, "record count %" PRIu64 " does not fit the volume",
			    s->records);
	if (!(info->flags & BKP_SYNTHETIC) && digest_differs(s->digest, s->link))
		return fail(AMBER_EDATA, "link differs from the digest");
	return 0;
}

static int check_file_bytes(const struct bkp_summary *s, uint64_t size)
{
	if (s->file_bytes != size)
		return fail(AMBER_EDATA, "file is %" PRIu64 " bytes, the trailer says %" PRIu64
			    " (truncated or extended)", size, s->file_bytes);
	return 0;
}

static int check_peeked(const struct bkp_info *info, const struct bkp_summary *s,
			uint64_t size)
{
	uint64_t index_end = size - sizeof(struct disk_trailer);

	if (check_file_bytes(s, size))
		return -1;
	/* Each term is bounded before it is added: a lying trailer must not wrap. */
	if (s->index_offset < sizeof(struct disk_header) || s->index_offset > index_end ||
	    s->index_entries > index_end / sizeof(struct disk_index_entry) ||
	    index_end - s->index_offset != sizeof(struct disk_index_head) +
	    s->index_entries * sizeof(struct disk_index_entry))
		return fail(AMBER_EDATA, "index position and size do not fit the file");
	return check_peeked_records(info, s);
}

/* v2: table_offset + table + ext_bytes + trailer = file_bytes, nothing wrapping. */
static int check_peeked_v2(const struct bkp_info *info, const struct bkp_summary *s,
			   uint64_t size, const uint8_t header_hash[32])
{
	uint64_t table_end = size - sizeof(struct disk_trailer_v2);

	if (check_file_bytes(s, size))
		return -1;
	if (digest_differs(header_hash, s->header_hash))
		return fail(AMBER_EDATA, "the header is not the one the trailer commits to"
			    " (header_hash differs)");
	if (s->ext_bytes)
		return fail(AMBER_EDATA, "extension sections: not supported by this build of"
			    " amber");
	/* As in v1: the row count is bounded before it is multiplied. */
	if (s->table_offset < sizeof(struct disk_header) || s->table_offset > table_end ||
	    s->blocks > table_end / sizeof(struct disk_table_row) ||
	    table_end - s->table_offset != table_section_bytes(s->blocks))
		return fail(AMBER_EDATA, "block table position and size do not fit the file");
	return check_peeked_records(info, s);
}

static int peek_v1(int fd, const struct bkp_info *info, struct bkp_summary *summary,
		   uint64_t size)
{
	struct disk_trailer trailer;
	uint64_t at = size - sizeof(trailer);

	if (pread_full(fd, &trailer, sizeof(trailer), at))
		return -1;
	if (trailer_decode(&trailer, summary) || check_peeked(info, summary, size))
		return error_prefix("trailer at offset %" PRIu64 ": ", at);
	return 0;
}

static int peek_v2(int fd, const struct disk_header *header, const struct bkp_info *info,
		   struct bkp_summary *summary, uint64_t size)
{
	struct disk_trailer_v2 trailer;
	uint64_t at = size - sizeof(trailer);
	uint8_t header_hash[32];

	if (size < sizeof(*header) + sizeof(struct disk_table_head) + sizeof(trailer))
		return fail(AMBER_EDATA, "%" PRIu64 " bytes: too short for a backup", size);
	if (sha256(header, sizeof(*header), header_hash) ||
	    pread_full(fd, &trailer, sizeof(trailer), at))
		return -1;
	if (trailer_v2_decode(&trailer, info, summary) ||
	    check_peeked_v2(info, summary, size, header_hash))
		return error_prefix("trailer at offset %" PRIu64 ": ", at);
	return 0;
}

int bkp_peek(int fd, struct bkp_info *info, struct bkp_summary *summary)
{
	struct disk_header header;
	uint64_t size;

	if (fd_size(fd, &size))
		return -1;
	if (size < sizeof(header) + sizeof(struct disk_index_head) + sizeof(struct disk_trailer))
		return fail(AMBER_EDATA, "%" PRIu64 " bytes: too short for a backup", size);
	if (pread_full(fd, &header, sizeof(header), 0) || header_decode(&header, info))
		return -1;
	if (info->version == BKP_VERSION_1)
		return peek_v1(fd, info, summary, size);
	return peek_v2(fd, &header, info, summary, size);
}

struct bkp_index {
	int fd;
	struct bkp_info info;
	uint64_t bytes_read;
	struct chunk_decoder *decoder;
	struct bkp_crypto *crypto;	/* encrypted, with the key */
	/* v1: */
	struct index_entry *v;
	size_t n;
	uint8_t *extent;		/* BKP_EXTENT_MAX_BYTES; v2: a record */
	/* v2: */
	struct bkp_summary sum;
	struct table_row *rows;
	size_t nr_rows;
	uint8_t *block;			/* one index block, as read */
	size_t cached;			/* the row of the block in it, or SIZE_MAX */
};

/* pread_full(), counted. */
static int index_pread(struct bkp_index *x, void *buf, size_t len, uint64_t offset)
{
	x->bytes_read += len;
	return pread_full(x->fd, buf, len, offset);
}

uint64_t bkp_index_bytes_read(const struct bkp_index *x)
{
	return x->bytes_read;
}

static int check_entry(const struct bkp_index *x, size_t i, uint64_t index_offset)
{
	const struct index_entry *e = &x->v[i];
	uint64_t most = (uint64_t)e->count * (sizeof(struct disk_record) +
					      x->info.geo.chunk_bytes);

	if (!e->count || e->bytes < (uint64_t)e->count * sizeof(struct disk_record) ||
	    e->bytes > most || e->bytes > BKP_EXTENT_MAX_BYTES)
		return fail(AMBER_EDATA, "entry %zu: bad count or size", i);
	if (e->offset < sizeof(struct disk_header) || e->offset > index_offset ||
	    e->bytes > index_offset - e->offset)
		return fail(AMBER_EDATA, "entry %zu: outside the records", i);
	if (e->first_chunk >= x->info.geo.nr_chunks ||
	    e->count > x->info.geo.nr_chunks - e->first_chunk)
		return fail(AMBER_EDATA, "entry %zu: chunks beyond the volume", i);
	if (i && e->first_chunk < x->v[i - 1].first_chunk + x->v[i - 1].count)
		return fail(AMBER_EDATA, "entry %zu: not sorted or overlapping", i);
	return 0;
}

static int load_entries(struct bkp_index *x, const struct bkp_summary *s)
{
	size_t len = sizeof(struct disk_index_head) + s->index_entries *
		     sizeof(struct disk_index_entry);
	const struct disk_index_entry *raw;
	uint64_t entries, records = 0;
	uint8_t *section = malloc(len);
	int ret = -1;

	if (!section || !(x->v = calloc(s->index_entries + 1, sizeof(*x->v)))) {
		fail(AMBER_ESYS, "out of memory (index)");
		goto out;
	}
	if (index_pread(x, section, len, s->index_offset))
		goto out;
	if (sum_differs(XXH3_64bits(section, len), s->index_csum)) {
		fail(AMBER_EDATA, "checksum mismatch");
		goto out;
	}
	if (index_head_decode((const void *)section, &entries))
		goto out;
	if (entries != s->index_entries) {
		fail(AMBER_EDATA, "%" PRIu64 " entries, the trailer says %" PRIu64,
		     entries, s->index_entries);
		goto out;
	}
	raw = (const void *)(section + sizeof(struct disk_index_head));
	for (x->n = 0; x->n < entries; x->n++) {
		index_entry_decode(&raw[x->n], &x->v[x->n]);
		if (check_entry(x, x->n, s->index_offset))
			goto out;
		records += x->v[x->n].count;
	}
	if (records != s->records) {
		fail(AMBER_EDATA, "entries hold %" PRIu64 " records, the trailer says %"
		     PRIu64, records, s->records);
		goto out;
	}
	ret = 0;
out:
	free(section);
	return ret;
}

/* ---- v2: the block table, then one block and one record at a time ---- */

static uint32_t block_entries(const struct bkp_index *x, size_t row)
{
	if (row + 1 < x->sum.blocks)
		return BKP_BLOCK_ENTRIES;
	return x->sum.records - (uint64_t)BKP_BLOCK_ENTRIES * (x->sum.blocks - 1);
}

/* Rows ascend in chunk and offset; each block lies between the header and the table. */
static int check_row(const struct bkp_index *x, size_t i)
{
	const struct table_row *row = &x->rows[i];
	uint64_t bytes = block_section_bytes(block_entries(x, i));

	if (row->first_chunk >= x->info.geo.nr_chunks ||
	    (i && row->first_chunk <= x->rows[i - 1].first_chunk))
		return fail(AMBER_EDATA, "row %zu: first chunk %" PRIu64 " beyond the volume or"
			    " not ascending", i, row->first_chunk);
	if (row->offset < sizeof(struct disk_header) || row->offset > x->sum.table_offset ||
	    bytes > x->sum.table_offset - row->offset ||
	    (i && row->offset <= x->rows[i - 1].offset))
		return fail(AMBER_EDATA, "row %zu: block offset %" PRIu64 " outside the records"
			    " or not ascending", i, row->offset);
	return 0;
}

static int load_table(struct bkp_index *x)
{
	size_t len = table_section_bytes(x->sum.blocks);
	const struct disk_table_row *raw;
	uint8_t *table = malloc(len), hash[32];
	uint64_t blocks;
	int ret = -1;

	x->rows = calloc(x->sum.blocks + 1, sizeof(*x->rows));
	if (!table || !x->rows) {
		fail(AMBER_ESYS, "out of memory (block table)");
		goto out;
	}
	if (index_pread(x, table, len, x->sum.table_offset) || sha256(table, len, hash))
		goto out;
	if (digest_differs(hash, x->sum.table_hash)) {
		fail(AMBER_EDATA, "its hash differs from the trailer's table_hash");
		goto out;
	}
	if (table_head_decode((const void *)table, &blocks))
		goto out;
	if (blocks != x->sum.blocks) {
		fail(AMBER_EDATA, "%" PRIu64 " blocks, %" PRIu64 " records need %" PRIu64,
		     blocks, x->sum.records, x->sum.blocks);
		goto out;
	}
	raw = (const void *)(table + sizeof(struct disk_table_head));
	for (x->nr_rows = 0; x->nr_rows < blocks; x->nr_rows++) {
		table_row_decode(&raw[x->nr_rows], &x->rows[x->nr_rows]);
		if (check_row(x, x->nr_rows))
			goto out;
	}
	ret = 0;
out:
	free(table);
	return ret;
}

static int load_v2(struct bkp_index *x, const struct bkp_summary *summary)
{
	x->sum = *summary;
	x->cached = SIZE_MAX;
	x->block = malloc(block_section_bytes(BKP_BLOCK_ENTRIES));
	x->extent = malloc(sizeof(struct disk_record_v2) + x->info.geo.chunk_bytes +
			   record_tag_bytes(&x->info));
	if (!x->block || !x->extent)
		return fail(AMBER_ESYS, "out of memory");
	if (load_table(x))
		return error_prefix("block table at offset %" PRIu64 ": ", summary->table_offset);
	return 0;
}

static int load_v1(struct bkp_index *x, const struct bkp_summary *summary)
{
	if (load_entries(x, summary))
		return error_prefix("index at offset %" PRIu64 ": ", summary->index_offset);
	x->extent = malloc(BKP_EXTENT_MAX_BYTES);
	return x->extent ? 0 : fail(AMBER_ESYS, "out of memory");
}

struct bkp_index *bkp_index_load(int fd, const struct bkp_info *info,
				 const struct bkp_summary *summary)
{
	struct bkp_index *x = calloc(1, sizeof(*x));

	if (!x) {
		fail(AMBER_ESYS, "out of memory");
		return NULL;
	}
	x->fd = fd;
	x->info = *info;
	if (info->version == BKP_VERSION_1 ? load_v1(x, summary) : load_v2(x, summary))
		goto fail;
	x->decoder = chunk_decoder_new(&x->info, NULL);
	if (x->decoder)
		return x;
fail:
	bkp_index_free(x);
	return NULL;
}

/* Nothing changes in @x unless the key is the backup's, its MAC checked. */
int bkp_index_set_key(struct bkp_index *x, const struct data_key *key)
{
	struct chunk_decoder *d = NULL;
	struct bkp_crypto *c;

	if (check_backup_key(&x->info, key, false))
		return -1;
	if (!bkp_encrypted(&x->info) || x->crypto)
		return 0;
	c = bkp_crypto_new(key, x->info.backup_id, x->sum.header_hash);
	if (!c)
		return -1;
	if (trailer_check_mac(c, &x->sum)) {
		error_prefix("trailer: ");
	} else if ((d = chunk_decoder_new(&x->info, c))) {
		chunk_decoder_free(x->decoder);
		x->decoder = d;
		x->crypto = c;
		return 0;
	}
	bkp_crypto_free(c);
	return -1;
}

/* Block @row into x->block, checked against its row: hash, head, first chunk. */
static int read_block(struct bkp_index *x, size_t row)
{
	const struct disk_block_head *head = (const void *)x->block;
	const struct disk_block_entry *first = (const void *)(head + 1);
	uint32_t count = block_entries(x, row);
	size_t len = block_section_bytes(count);
	uint8_t hash[32];

	if (x->cached == row)
		return 0;
	x->cached = SIZE_MAX;
	if (index_pread(x, x->block, len, x->rows[row].offset) || sha256(x->block, len, hash))
		goto where;
	if (digest_differs(hash, x->rows[row].hash)) {
		fail(AMBER_EDATA, "its hash differs from the block table's");
		goto where;
	}
	if (memcmp(head->magic, IDX_MAGIC, SECTION_MAGIC_BYTES) ||
	    le32toh(head->count) != count || le64toh(head->block) != row ||
	    le64toh(first->chunk) != x->rows[row].first_chunk) {
		fail(AMBER_EDATA, "bad magic, count, number or first chunk");
		goto where;
	}
	x->cached = row;
	return 0;
where:
	return error_prefix("index block %zu at offset %" PRIu64 ": ", row, x->rows[row].offset);
}

/* The row whose block would hold @chunk, or SIZE_MAX. */
static size_t find_row(const struct bkp_index *x, uint64_t chunk)
{
	size_t lo = 0, hi = x->nr_rows, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (x->rows[mid].first_chunk <= chunk)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? lo - 1 : SIZE_MAX;
}

/* The entry of @chunk in the block read, decoded into @e: 1, or 0 if none. */
static int find_block_entry(const struct bkp_index *x, size_t row, uint64_t chunk,
			    struct block_entry *e)
{
	const struct disk_block_entry *v = (const void *)(x->block +
							  sizeof(struct disk_block_head));
	size_t lo = 0, hi = block_entries(x, row), mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		block_entry_decode(&v[mid], e);
		if (e->chunk == chunk)
			return 1;
		if (e->chunk < chunk)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* The record @e points at, read and checked against @e, its payload decoded. */
static int read_entry_record(struct bkp_index *x, const struct block_entry *e,
			     struct bkp_record *rec)
{
	const struct disk_record_v2 *header = (const void *)x->extent;
	uint64_t seq, bytes = sizeof(*header) + (uint64_t)e->stored_bytes;
	uint8_t hash[32];

	if (e->offset < sizeof(struct disk_header) || e->offset > x->sum.table_offset ||
	    e->stored_bytes > x->info.geo.chunk_bytes + record_tag_bytes(&x->info) ||
	    bytes > x->sum.table_offset - e->offset)
		return fail(AMBER_EDATA, "its index entry points outside the records");
	if (index_pread(x, x->extent, bytes, e->offset) || sha256(header, sizeof(*header), hash))
		return -1;
	if (digest_differs(hash, e->record_hash))
		return fail(AMBER_EDATA, "the record header is not the one the index commits to"
			    " (record_hash differs)");
	if (record_v2_decode(header, &x->info.geo, record_tag_bytes(&x->info), rec, &seq))
		return -1;
	if (rec->chunk != e->chunk || rec->stored_bytes != e->stored_bytes ||
	    rec->codec != e->codec || rec->flags != e->flags ||
	    digest_differs(rec->leaf, e->leaf))
		return fail(AMBER_EDATA, "the record header differs from its index entry");
	rec->payload = x->extent + sizeof(*header);
	return chunk_decode(x->decoder, rec);
}

static int read_v2(struct bkp_index *x, uint64_t chunk, struct bkp_record *rec)
{
	size_t row = find_row(x, chunk);
	struct block_entry e;

	if (row == SIZE_MAX)
		return 0;
	if (read_block(x, row))
		return error_prefix("chunk %" PRIu64 ": ", chunk);
	if (!find_block_entry(x, row, chunk, &e))
		return 0;
	if (read_entry_record(x, &e, rec))
		return error_prefix("chunk %" PRIu64 " (record at offset %" PRIu64 "): ", chunk,
				    e.offset);
	return 1;
}

int bkp_index_chunk_at(struct bkp_index *x, uint64_t offset, uint64_t *chunk)
{
	const struct disk_block_entry *v = (const void *)(x->block +
							  sizeof(struct disk_block_head));
	struct block_entry e;
	size_t row;
	uint32_t i;

	for (row = 0; x->info.version == BKP_VERSION_2 && row < x->nr_rows; row++) {
		if (read_block(x, row))
			return -1;
		for (i = 0; i < block_entries(x, row); i++) {
			block_entry_decode(&v[i], &e);
			if (e.offset == offset) {
				*chunk = e.chunk;
				return 1;
			}
		}
	}
	return 0;
}

size_t bkp_index_extents(const struct bkp_index *x)
{
	return x->info.version == BKP_VERSION_1 ? x->n : x->nr_rows;
}

/* Walk extent @e (read into x->extent) up to @chunk and decode it. */
static int find_in_extent(struct bkp_index *x, const struct index_entry *e,
			  uint64_t chunk, struct bkp_record *rec)
{
	uint32_t pos = 0, at = 0;
	uint64_t expect, seq;

	for (expect = e->first_chunk; expect <= chunk; expect++) {
		at = pos;
		if (e->bytes - at < sizeof(struct disk_record)) {
			fail(AMBER_EDATA, "extent ends inside a record header");
			goto where;
		}
		if (record_decode((const void *)(x->extent + at), &x->info.geo, rec, &seq))
			goto where;
		if (rec->chunk != expect) {
			fail(AMBER_EDATA, "chunk %" PRIu64 " where the index puts %" PRIu64,
			     rec->chunk, expect);
			goto where;
		}
		pos = at + sizeof(struct disk_record);
		if (rec->stored_bytes > e->bytes - pos) {
			fail(AMBER_EDATA, "extent ends inside a payload");
			goto where;
		}
		rec->payload = x->extent + pos;
		pos += rec->stored_bytes;
	}
	if (!chunk_decode(x->decoder, rec))
		return 0;
where:
	return error_prefix("record at offset %" PRIu64 ": ", e->offset + at);
}

static int read_v1(struct bkp_index *x, uint64_t chunk, struct bkp_record *rec)
{
	const struct index_entry *e = index_find(x->v, x->n, chunk);

	if (!e)
		return 0;
	if (index_pread(x, x->extent, e->bytes, e->offset) || find_in_extent(x, e, chunk, rec))
		return -1;
	return 1;
}

int bkp_index_read(struct bkp_index *x, uint64_t chunk, void *buf)
{
	struct bkp_record rec;
	int ret;

	if (!x->crypto && check_backup_key(&x->info, NULL, false))
		return -1;
	ret = x->info.version == BKP_VERSION_1 ? read_v1(x, chunk, &rec) : read_v2(x, chunk, &rec);
	if (ret <= 0)
		return ret;
	memcpy(buf, rec.data, rec.length);
	return 1;
}

/* The leaves of extent @e's records, walking their headers only. */
static int extent_leaves(struct bkp_index *x, const struct index_entry *e,
			 uint8_t (*leaves)[32])
{
	uint64_t at = e->offset, end = e->offset + e->bytes, seq;
	struct disk_record header;
	struct bkp_record rec;
	uint32_t i;

	for (i = 0; i < e->count; i++) {
		if (end - at < sizeof(header))
			return fail(AMBER_EDATA, "extent at offset %" PRIu64
				    " ends inside a record header", e->offset);
		if (index_pread(x, &header, sizeof(header), at) ||
		    record_decode(&header, &x->info.geo, &rec, &seq))
			return error_prefix("record at offset %" PRIu64 ": ", at);
		if (rec.chunk != e->first_chunk + i)
			return fail(AMBER_EDATA, "record at offset %" PRIu64 ": chunk %" PRIu64
				    " where the index puts %" PRIu64, at, rec.chunk,
				    e->first_chunk + i);
		at += sizeof(header);
		if (rec.stored_bytes > end - at)
			return fail(AMBER_EDATA, "record at offset %" PRIu64
				    ": extent ends inside its payload", at - sizeof(header));
		at += rec.stored_bytes;
		memcpy(leaves[rec.chunk], rec.leaf, 32);
	}
	if (at != end)
		return fail(AMBER_EDATA, "extent at offset %" PRIu64 ": %" PRIu64
			    " bytes past its records", e->offset, end - at);
	return 0;
}

/* The image digest of the leaves of the chunks the index holds. */
static int leaves_digest(const struct bkp_index *x, uint8_t (*leaves)[32], uint8_t out[32])
{
	struct image_digest *d = image_digest_new(&x->info);
	uint64_t c;
	size_t i;
	int ret = -1;

	if (!d)
		return -1;
	for (i = 0; i < x->n; i++)
		for (c = x->v[i].first_chunk; c < x->v[i].first_chunk + x->v[i].count; c++)
			if (image_digest_add(d, c, leaves[c], false))
				goto out;
	ret = image_digest_final(d, out);
out:
	image_digest_free(d);
	return ret;
}

/* v2: the leaves from every block's entries, and the digest they fold to. */
static int blocks_leaves(struct bkp_index *x, uint8_t (*leaves)[32], uint8_t out[32])
{
	struct image_digest *d = image_digest_new(&x->info);
	const struct disk_block_entry *v = (const void *)(x->block +
							  sizeof(struct disk_block_head));
	struct block_entry e;
	size_t row;
	uint32_t i;
	int ret = -1;

	if (!d)
		return -1;
	for (row = 0; row < x->nr_rows; row++) {
		if (read_block(x, row))
			goto out;
		for (i = 0; i < block_entries(x, row); i++) {
			block_entry_decode(&v[i], &e);
			if (e.chunk >= x->info.geo.nr_chunks) {
				fail(AMBER_EDATA, "index block %zu: chunk %" PRIu64 " beyond the"
				     " volume", row, e.chunk);
				goto out;
			}
			/* image_digest_add() refuses chunks that do not ascend. */
			if (image_digest_add(d, e.chunk, e.leaf, false)) {
				error_prefix("index block %zu: ", row);
				goto out;
			}
			memcpy(leaves[e.chunk], e.leaf, 32);
		}
	}
	ret = image_digest_final(d, out);
out:
	image_digest_free(d);
	return ret;
}

static int extents_leaves(struct bkp_index *x, uint8_t (*leaves)[32], uint8_t out[32])
{
	size_t i;

	for (i = 0; i < x->n; i++)
		if (extent_leaves(x, &x->v[i], leaves))
			return -1;
	return leaves_digest(x, leaves, out);
}

int bkp_index_leaves(struct bkp_index *x, const struct bkp_summary *summary,
		     uint8_t (*leaves)[32])
{
	uint8_t digest[32];

	if (x->info.version == BKP_VERSION_1 ? extents_leaves(x, leaves, digest) :
	    blocks_leaves(x, leaves, digest))
		return -1;
	if (digest_differs(digest, summary->digest))
		return fail(AMBER_EDATA, "the leaves of its records do not give the image"
			    " digest of its trailer");
	return 0;
}

void bkp_index_free(struct bkp_index *x)
{
	if (!x)
		return;
	chunk_decoder_free(x->decoder);
	bkp_crypto_free(x->crypto);
	free(x->extent);
	free(x->v);
	free(x->rows);
	free(x->block);
	free(x);
}
