// SPDX-License-Identifier: GPL-2.0
/* Writing a backup front to back: header, records, index, trailer. */
#include <inttypes.h>
#include <stdlib.h>
#include <xxhash.h>

#include "bkp.h"
#include "digest.h"
#include "error.h"
#include "index.h"
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
	struct index_builder index;
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

struct bkp_writer *bkp_writer_new(int fd, const struct bkp_info *info)
{
	struct bkp_writer *w = calloc(1, sizeof(*w));
	struct disk_header header;

	if (!w || !(w->buf = malloc(WRITE_BUFFER))) {
		fail(AMBER_ESYS, "out of memory");
		goto fail;
	}
	w->fd = fd;
	w->info = *info;
	w->present = bitmap_alloc(info->geo.nr_chunks);
	w->digest = image_digest_new(&info->geo);
	if (!w->present || !w->digest)
		goto fail;
	header_encode(info, &header);
	if (header_decode(&header, &w->info)) {
		error_prefix("refusing to write an invalid backup: ");
		goto fail;
	}
	if (!emit(w, &header, sizeof(header)))
		return w;
fail:
	bkp_writer_free(w);
	return NULL;
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
	return record_check(rec);
}

int bkp_writer_put(struct bkp_writer *w, const struct bkp_record *rec)
{
	struct disk_record header;

	if (check_record(w, rec) ||
	    image_digest_add(w->digest, rec->chunk, rec->leaf, rec->flags & REC_EARLY))
		return error_prefix("refusing to write record %" PRIu64 ": ", w->sum.records);
	if (index_add(&w->index, rec->chunk, w->offset, sizeof(header) + rec->stored_bytes))
		return -1;
	record_encode(rec, w->sum.records, &header);
	if (emit(w, &header, sizeof(header)) || emit(w, rec->payload, rec->stored_bytes))
		return -1;
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

int bkp_writer_finish(struct bkp_writer *w, const uint8_t link[32],
		      struct bkp_summary *out)
{
	struct disk_trailer trailer;

	if (w->info.kind == BKP_FULL && w->sum.records != w->info.geo.nr_chunks)
		return fail(AMBER_EDATA, "a full backup needs all %" PRIu64
			    " chunks, it has %" PRIu64, w->info.geo.nr_chunks, w->sum.records);
	if (emit_index(w) || image_digest_final(w->digest, w->sum.digest))
		return -1;
	memcpy(w->sum.link, link ? link : w->sum.digest, 32);
	w->sum.file_bytes = w->offset + sizeof(trailer);
	trailer_encode(&w->sum, &trailer);
	if (emit(w, &trailer, sizeof(trailer)) || bkp_writer_flush(w))
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
	free(w->present);
	free(w->buf);
	free(w);
}
