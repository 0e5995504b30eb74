// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>
#include <stdlib.h>
#include <xxhash.h>

#include "bkp.h"
#include "codec.h"
#include "checks.h"
#include "digest.h"
#include "error.h"
#include "index.h"
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

static int check_peeked(const struct bkp_info *info, const struct bkp_summary *s,
			uint64_t size)
{
	uint64_t index_end = size - sizeof(struct disk_trailer);

	if (s->file_bytes != size)
		return fail(AMBER_EDATA, "file is %" PRIu64 " bytes, the trailer says %" PRIu64
			    " (truncated or extended)", size, s->file_bytes);
	/* Each term is bounded before it is added: a lying trailer must not wrap. */
	if (s->index_offset < sizeof(struct disk_header) || s->index_offset > index_end ||
	    s->index_entries > index_end / sizeof(struct disk_index_entry) ||
	    index_end - s->index_offset != sizeof(struct disk_index_head) +
	    s->index_entries * sizeof(struct disk_index_entry))
		return fail(AMBER_EDATA, "index position and size do not fit the file");
	if (s->records > info->geo.nr_chunks || s->logical_bytes > info->geo.volume_bytes ||
	    (info->kind == BKP_FULL && s->records != info->geo.nr_chunks))
		return fail(AMBER_EDATA, "record count %" PRIu64 " does not fit the volume",
			    s->records);
	if (!(info->flags & BKP_SYNTHETIC) && digest_differs(s->digest, s->link))
		return fail(AMBER_EDATA, "link differs from the digest");
	return 0;
}

int bkp_peek(int fd, struct bkp_info *info, struct bkp_summary *summary)
{
	struct disk_header header;
	struct disk_trailer trailer;
	uint64_t size, at;

	if (fd_size(fd, &size))
		return -1;
	if (size < sizeof(header) + sizeof(struct disk_index_head) + sizeof(trailer))
		return fail(AMBER_EDATA, "%" PRIu64 " bytes: too short for a backup", size);
	if (pread_full(fd, &header, sizeof(header), 0) || header_decode(&header, info))
		return -1;
	at = size - sizeof(trailer);
	if (pread_full(fd, &trailer, sizeof(trailer), at))
		return -1;
	if (trailer_decode(&trailer, summary) || check_peeked(info, summary, size))
		return error_prefix("trailer at offset %" PRIu64 ": ", at);
	return 0;
}

struct bkp_index {
	int fd;
	struct bkp_info info;
	struct index_entry *v;
	size_t n;
	struct chunk_decoder *decoder;
	uint8_t *extent;		/* BKP_EXTENT_MAX_BYTES */
};

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
	if (pread_full(x->fd, section, len, s->index_offset))
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
	if (load_entries(x, summary)) {
		error_prefix("index at offset %" PRIu64 ": ", summary->index_offset);
		goto fail;
	}
	x->decoder = chunk_decoder_new(&x->info.geo);
	x->extent = malloc(BKP_EXTENT_MAX_BYTES);
	if (x->decoder && x->extent)
		return x;
	fail(AMBER_ESYS, "out of memory");
fail:
	bkp_index_free(x);
	return NULL;
}

size_t bkp_index_extents(const struct bkp_index *x)
{
	return x->n;
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

int bkp_index_read(struct bkp_index *x, uint64_t chunk, void *buf)
{
	const struct index_entry *e = index_find(x->v, x->n, chunk);
	struct bkp_record rec;

	if (!e)
		return 0;
	if (pread_full(x->fd, x->extent, e->bytes, e->offset) ||
	    find_in_extent(x, e, chunk, &rec))
		return -1;
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
		if (pread_full(x->fd, &header, sizeof(header), at) ||
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
	struct image_digest *d = image_digest_new(&x->info.geo);
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

int bkp_index_leaves(struct bkp_index *x, const struct bkp_summary *summary,
		     uint8_t (*leaves)[32])
{
	uint8_t digest[32];
	size_t i;

	for (i = 0; i < x->n; i++)
		if (extent_leaves(x, &x->v[i], leaves))
			return -1;
	if (leaves_digest(x, leaves, digest))
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
	free(x->extent);
	free(x->v);
	free(x);
}
