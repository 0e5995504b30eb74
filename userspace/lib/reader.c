// SPDX-License-Identifier: GPL-2.0
/* Reading a backup front to back, verifying everything on the way. */
#include <inttypes.h>
#include <stdlib.h>
#include <xxhash.h>

#include "bkp.h"
#include "codec.h"
#include "digest.h"
#include "checks.h"
#include "error.h"
#include "index.h"
#include "layout.h"
#include "util.h"

#define READ_BUFFER	(1U << 20)

/* A buffered front-to-back view of the file, counting the offset. */
struct input {
	int fd;
	uint8_t *buf;
	size_t pos, len;
	uint64_t offset;		/* of the next byte handed out */
};

enum reader_state { READING, DONE, FAILED };

struct bkp_reader {
	struct input in;
	struct bkp_info info;
	enum reader_state state;
	struct error_state error;	/* repeated once FAILED */
	bool started;
	uint64_t seq;			/* next record number */
	uint64_t *seen;			/* chunks read */
	struct image_digest *digest;
	struct index_builder index;
	struct chunk_decoder *decoder;
	uint8_t *payload;		/* chunk_bytes */
	struct bkp_summary sum;		/* as read: counts, then the trailer */
	uint8_t folded[32];		/* image digest of the records' leaves */
};

/* Up to @n bytes; fewer only at the end of the file. */
static ssize_t input_read(struct input *in, void *dst, size_t n)
{
	size_t done = 0, take;
	ssize_t got;

	while (done < n) {
		if (in->pos == in->len) {
			got = read_upto(in->fd, in->buf, READ_BUFFER);
			if (got < 0)
				return error_prefix("reading at offset %" PRIu64 ": ", in->offset);
			if (!got)
				break;
			in->pos = 0;
			in->len = got;
		}
		take = MIN(n - done, in->len - in->pos);
		memcpy((uint8_t *)dst + done, in->buf + in->pos, take);
		in->pos += take;
		in->offset += take;
		done += take;
	}
	return done;
}

/* Exactly @n bytes of the part named by @what, else a truncation error. */
static int input_need(struct input *in, void *dst, size_t n, const char *what)
{
	uint64_t at = in->offset;
	ssize_t got = input_read(in, dst, n);

	if (got < 0)
		return -1;
	if ((size_t)got < n)
		return fail(AMBER_EDATA, "%s: truncated at offset %" PRIu64
			    " (the file ends inside it)", what, at + got);
	return 0;
}

struct bkp_reader *bkp_reader_open(int fd)
{
	struct bkp_reader *r = calloc(1, sizeof(*r));
	struct disk_header header;

	if (!r || !(r->in.buf = malloc(READ_BUFFER))) {
		fail(AMBER_ESYS, "out of memory");
		goto fail;
	}
	r->in.fd = fd;
	if (!input_need(&r->in, &header, sizeof(header), "header at offset 0") &&
	    !header_decode(&header, &r->info))
		return r;
fail:
	bkp_reader_free(r);
	return NULL;
}

const struct bkp_info *bkp_reader_info(const struct bkp_reader *r)
{
	return &r->info;
}

const struct bkp_summary *bkp_reader_summary(const struct bkp_reader *r)
{
	return &r->sum;
}

const uint8_t *bkp_reader_digest(const struct bkp_reader *r)
{
	return r->folded;
}

/* What verifying records needs, made on the first record: files only peeked
 * at cost nothing. */
static int start(struct bkp_reader *r)
{
	r->seen = bitmap_alloc(r->info.geo.nr_chunks);
	r->digest = image_digest_new(&r->info.geo);
	r->decoder = chunk_decoder_new(&r->info.geo);
	r->payload = malloc(r->info.geo.chunk_bytes);
	if (!r->payload)
		return fail(AMBER_ESYS, "out of memory");
	if (!r->seen || !r->digest || !r->decoder)
		return -1;
	r->started = true;
	return 0;
}

/* Everything a record must satisfy beyond its own header. */
static int check_in_stream(struct bkp_reader *r, const struct bkp_record *rec,
			   uint64_t seq)
{
	if (seq != r->seq)
		return fail(AMBER_EDATA, "sequence number %" PRIu64 ", expected %" PRIu64
			    " (records missing, reordered or duplicated)", seq, r->seq);
	if (bit_test(r->seen, rec->chunk))
		return fail(AMBER_EDATA, "chunk %" PRIu64 " appears twice", rec->chunk);
	return 0;
}

static int read_record(struct bkp_reader *r, const char *magic, struct bkp_record *rec)
{
	uint64_t at = r->in.offset - SECTION_MAGIC_BYTES, seq;
	struct disk_record header;

	memcpy(&header, magic, SECTION_MAGIC_BYTES);
	if (input_need(&r->in, (uint8_t *)&header + SECTION_MAGIC_BYTES,
		       sizeof(header) - SECTION_MAGIC_BYTES, "record header") ||
	    record_decode(&header, &r->info.geo, rec, &seq) ||
	    check_in_stream(r, rec, seq) ||
	    input_need(&r->in, r->payload, rec->stored_bytes, "payload"))
		goto where;
	rec->payload = r->payload;
	if (chunk_decode(r->decoder, rec) ||
	    image_digest_add(r->digest, rec->chunk, rec->leaf, rec->flags & REC_EARLY) ||
	    index_add(&r->index, rec->chunk, at, sizeof(header) + rec->stored_bytes))
		goto where;
	bit_set(r->seen, rec->chunk);
	r->seq++;
	r->sum.zero_records += !!(rec->flags & REC_ZERO);
	r->sum.logical_bytes += rec->length;
	return 0;
where:
	return error_prefix("record %" PRIu64 " at offset %" PRIu64 ": ", r->seq, at);
}

/* The stored index must be exactly the one the records make. */
static int read_index(struct bkp_reader *r, uint64_t *csum)
{
	XXH3_state_t *state = XXH3_createState();
	struct disk_index_head head;
	struct disk_index_entry raw;
	struct index_entry entry;
	uint64_t entries, i;
	int ret = -1;

	if (!state)
		return fail(AMBER_ESYS, "out of memory");
	XXH3_64bits_reset(state);
	memcpy(&head, IDX_MAGIC, SECTION_MAGIC_BYTES);
	index_sort(&r->index);
	if (input_need(&r->in, (uint8_t *)&head + SECTION_MAGIC_BYTES,
		       sizeof(head) - SECTION_MAGIC_BYTES, "index") ||
	    index_head_decode(&head, &entries))
		goto out;
	if (entries != r->index.n) {
		fail(AMBER_EDATA, "%" PRIu64 " entries, the records make %zu",
		     entries, r->index.n);
		goto out;
	}
	XXH3_64bits_update(state, &head, sizeof(head));
	for (i = 0; i < entries; i++) {
		if (input_need(&r->in, &raw, sizeof(raw), "index"))
			goto out;
		index_entry_decode(&raw, &entry);
		if (memcmp(&entry, &r->index.v[i], sizeof(entry))) {
			fail(AMBER_EDATA, "entry %" PRIu64 " does not match the records", i);
			goto out;
		}
		XXH3_64bits_update(state, &raw, sizeof(raw));
	}
	*csum = XXH3_64bits_digest(state);
	ret = 0;
out:
	XXH3_freeState(state);
	return ret;
}

/* The trailer must say what the stream showed. */
static int check_trailer(struct bkp_reader *r, const struct bkp_summary *t,
			 const uint8_t digest[32])
{
	const struct bkp_summary *s = &r->sum;

	if (t->records != r->seq || t->zero_records != s->zero_records ||
	    t->logical_bytes != s->logical_bytes)
		return fail(AMBER_EDATA, "counts differ from the records (%" PRIu64
			    " records read, trailer says %" PRIu64 ")", r->seq, t->records);
	if (t->index_offset != s->index_offset || t->index_entries != s->index_entries ||
	    sum_differs(t->index_csum, s->index_csum))
		return fail(AMBER_EDATA, "index position or checksum differs");
	if (t->file_bytes != r->in.offset)
		return fail(AMBER_EDATA, "file size %" PRIu64 " differs from %" PRIu64,
			    t->file_bytes, r->in.offset);
	if (digest_differs(t->digest, digest))
		return fail(AMBER_EDATA, "image digest mismatch");
	if (!(r->info.flags & BKP_SYNTHETIC) && digest_differs(t->link, t->digest))
		return fail(AMBER_EDATA, "link differs from the digest");
	if (r->info.kind == BKP_FULL && r->seq != r->info.geo.nr_chunks)
		return fail(AMBER_EDATA, "full backup holds %" PRIu64 " of %" PRIu64 " chunks",
			    r->seq, r->info.geo.nr_chunks);
	return 0;
}

/* A backup ends at its end marker; a regular file or pipe ends there too. */
static int check_end(struct bkp_reader *r)
{
	uint8_t extra;
	ssize_t got;

	if (fd_is_block(r->in.fd))
		return 0;
	got = input_read(&r->in, &extra, 1);
	if (got < 0)
		return -1;
	if (got)
		return fail(AMBER_EDATA, "data after the end marker at offset %" PRIu64,
			    r->in.offset - 1);
	return 0;
}

static int read_end(struct bkp_reader *r)
{
	struct disk_trailer raw;
	struct bkp_summary trailer;
	uint64_t at;

	r->sum.index_offset = r->in.offset - SECTION_MAGIC_BYTES;
	r->sum.index_entries = r->index.n;
	if (read_index(r, &r->sum.index_csum))
		return error_prefix("index at offset %" PRIu64 ": ", r->sum.index_offset);
	at = r->in.offset;
	if (input_need(&r->in, &raw, sizeof(raw), "trailer") ||
	    trailer_decode(&raw, &trailer) ||
	    image_digest_final(r->digest, r->folded) ||
	    check_trailer(r, &trailer, r->folded))
		return error_prefix("trailer at offset %" PRIu64 ": ", at);
	r->sum = trailer;
	return check_end(r);
}

static int next(struct bkp_reader *r, struct bkp_record *rec)
{
	char magic[SECTION_MAGIC_BYTES];
	uint64_t at = r->in.offset;
	ssize_t got;

	if (!r->started && start(r))
		return -1;
	got = input_read(&r->in, magic, sizeof(magic));
	if (got < 0)
		return -1;
	if ((size_t)got < sizeof(magic))
		return fail(AMBER_EDATA, "truncated at offset %" PRIu64 " after %" PRIu64
			    " records: no index, trailer or end marker", at + got, r->seq);
	switch (section_of(magic)) {
	case SECTION_RECORD:
		return read_record(r, magic, rec) ? -1 : 1;
	case SECTION_INDEX:
		return read_end(r) ? -1 : 0;
	default:
		return fail(AMBER_EDATA, "record %" PRIu64 " at offset %" PRIu64
			    ": not a record or an index (bad magic)", r->seq, at);
	}
}

int bkp_reader_next(struct bkp_reader *r, struct bkp_record *rec)
{
	int ret;

	if (r->state == DONE)
		return 0;
	if (r->state == FAILED) {
		error_restore(&r->error);
		return -1;
	}
	ret = next(r, rec);
	if (ret < 0) {
		r->state = FAILED;
		error_save(&r->error);
	} else if (!ret) {
		r->state = DONE;
	}
	return ret;
}

void bkp_reader_free(struct bkp_reader *r)
{
	if (!r)
		return;
	chunk_decoder_free(r->decoder);
	image_digest_free(r->digest);
	index_release(&r->index);
	free(r->seen);
	free(r->payload);
	free(r->in.buf);
	free(r);
}
