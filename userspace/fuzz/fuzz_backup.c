// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: any bytes as a backup, read front to back by the
 * streaming reader (what `amber verify` and `amber restore` do) and through
 * its header, trailer and index (what `amber list`, `amber info` and a
 * restore by chunk do). Built with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION:
 * checksum and digest comparisons never fail (lib/checks.h), so the fuzzer
 * reaches the parsing they guard.
 *
 * Beyond "no crash", when the streaming reader accepts an input to its end
 * these properties must hold; a violation abort()s, which libFuzzer reports
 * as a crash with the input.
 *
 * Which digest is meaningful here. In a real build the reader accepts only
 * if every record's leaf is the SHA-256 of its decoded content and the
 * trailer's digest equals the image digest the reader folds from those
 * leaves; `verify` reports the trailer's. This build skips both
 * comparisons: the trailer's digest is whatever bytes the input holds, and
 * the leaves are unchecked. So the properties are stated against the
 * digest the reader folded (bkp_reader_digest()): in a real build the
 * reported digest equals it by check_trailer()'s one comparison, the link
 * this harness cannot exercise. And it checks the leaves itself, as a
 * real build would, to know when the image property applies:
 *
 *  1. digest of the leaves: the folded digest is the image digest
 *     (docs/FORMAT.md, "Digests") computed here, independently, over the
 *     accepted records' leaves in ascending chunk order. Records arrive in
 *     any order the rules allow, so this checks the reader's early-record
 *     bookkeeping. Always.
 *  2. digest of the restore: if every leaf is its content's SHA-256 (else a
 *     real build refuses the input), the records are written into an image
 *     as amber restore's write_chunk() does (chunk * chunk_bytes,
 *     chunk_length() bytes, a zero record as zeros) over a target holding
 *     OLD_BYTE, and the image digest computed from the image's bytes,
 *     chunk by chunk, must be the folded digest. A full backup holds every
 *     chunk: that is FORMAT.md's check of a restored device over its first
 *     volume_bytes bytes. An incremental's digest covers only the chunks it
 *     holds: restored over its parent, those are its content whatever the
 *     parent held (OLD_BYTE stands for that), and the others are not in its
 *     digest. Only for volumes up to IMAGE_MAX, to keep memory small.
 *     Whether the leaves are genuine or not, each held chunk of the image
 *     must be what the reader returned for it (nothing written over it).
 *  3. counts: the summary verify reports has the records, zero records and
 *     content bytes the records showed; every record has its chunk's
 *     length; a chunk appears once; a full backup holds every chunk.
 *  4. list, info and verify agree: bkp_peek() (list) accepts with the same
 *     header and trailer fields; bkp_index_load() (info) accepts with as
 *     many extents as the trailer says; reading a chunk through the index
 *     gives the bytes the stream gave, or "no record" (0) for a chunk the
 *     backup does not hold (an incremental's unchanged chunks). Every chunk
 *     is read for volumes up to READ_ALL_MAX chunks, else the held ones and
 *     a sample.
 *  5. the leaves an image backup's incremental takes from its base
 *     (bkp_index_leaves(), from the record headers alone) are the leaves
 *     of the records the stream returned, for volumes up to LEAVES_MAX
 *     chunks.
 *
 * An encrypted input is read with the seeds' data key (bytes 0..31, as
 * FORMAT-v2.md's known-answer vectors) when its header names that key,
 * and the properties hold with content; one naming another key is read
 * keyless (stored bytes against their hashes, no content), for 1, 3 and
 * the leaves of 5.
 *
 * The converse is not required: list and info may accept an input verify
 * refuses, since they read the header, trailer and index but not the
 * records (the commands say so). Such inputs are read through the index
 * for crashes only.
 *
 * Random mutations seldom leave a backup the stream accepts (the index
 * and trailer must match the records, a full must hold every chunk), so
 * the properties would see little beyond the seeds. Half of the mutated
 * inputs are therefore repaired (repair()): the records libFuzzer left
 * are written again through the writer, which numbers them, makes the
 * index and trailer and every checksum; their leaves are made genuine.
 * The other half stay as mutated, for the parsers' sake. A repaired input
 * is a backup a real build accepts, so an artifact can be given to
 * `amber verify` as it is.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "bkp.h"
#include "codec.h"
#include "error.h"
#include "keys.h"
#include "layout.h"
#include "util.h"

#define IMAGE_MAX	(4U << 20)	/* restores images up to this size */
#define READ_ALL_MAX	1024		/* reads every chunk up to this many */
#define READ_SAMPLES	16		/* else the held ones and this many */
#define LEAVES_MAX	65536		/* reads the leaves up to this many chunks */
#define OLD_BYTE	0xa5		/* the target before: not zero */
#define REPAIR_CHUNKS_MAX (1U << 20)	/* the writer's bitmap stays small */

#define PROPERTY(cond, ...)							\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "fuzz_backup: property violated: "	\
				__VA_ARGS__);					\
			fputc('\n', stderr);					\
			abort();						\
		}								\
	} while (0)

/* A chunk the stream held. */
struct held {
	uint64_t chunk;
	uint8_t leaf[32];		/* as its record says */
	uint8_t content[32];		/* SHA-256 of what the reader returned */
};

/* What the streaming reader returned for one input. */
struct stream {
	struct bkp_info info;
	struct bkp_summary summary;	/* what verify reports */
	uint8_t folded[32];		/* bkp_reader_digest() */
	struct held *v;			/* by file order, then sorted by chunk */
	size_t n, cap;
	uint64_t zero_records, logical_bytes;
	bool genuine;			/* every leaf is its content's */
	bool imaged;			/* image[] holds the restore */
	bool keyed;			/* encrypted, read with corpus_key */
};

static struct data_key *corpus_key;	/* the seeds' data key */

static uint8_t image[IMAGE_MAX];
static uint8_t chunk_buf[BKP_MAX_CHUNK];
static uint8_t leaves[LEAVES_MAX][32];

static struct {
	uint64_t inputs, accepted, genuine, imaged;
} stats;

static void sha256(const void *data, size_t len, uint8_t out[32])
{
	if (!EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL))
		abort();
}

/* len(c) of FORMAT.md, from the header's sizes alone. */
static uint32_t expected_length(const struct bkp_info *info, uint64_t c)
{
	uint64_t left = info->geo.volume_bytes - c * info->geo.chunk_bytes;

	return left < info->geo.chunk_bytes ? left : info->geo.chunk_bytes;
}

/*
 * FORMAT.md's image digest of the chunks @s held (s->v, sorted), written
 * out here rather than through lib/digest.c: from their records' leaves,
 * or with @from_image from the bytes of the restored image.
 */
static void reference_digest(const struct stream *s, bool from_image, uint8_t out[32])
{
	const struct geometry *g = &s->info.geo;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t le[8], leaf[32];
	size_t i;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		abort();
	EVP_DigestUpdate(ctx, s->info.version == 1 ? "amber-image-v1\0\0" :
			 bkp_encrypted(&s->info) ? "amber-image-v2-k" : "amber-image-v2\0\0", 16);
	put_le64(le, g->volume_bytes);
	EVP_DigestUpdate(ctx, le, 8);
	put_le64(le, g->chunk_bytes);
	EVP_DigestUpdate(ctx, le, 8);
	for (i = 0; i < s->n; i++) {
		const struct held *h = &s->v[i];

		if (from_image)
			sha256(image + h->chunk * g->chunk_bytes,
			       expected_length(&s->info, h->chunk), leaf);
		else
			memcpy(leaf, h->leaf, 32);
		put_le64(le, h->chunk);
		EVP_DigestUpdate(ctx, le, 8);
		EVP_DigestUpdate(ctx, leaf, 32);
	}
	if (!EVP_DigestFinal_ex(ctx, out, NULL))
		abort();
	EVP_MD_CTX_free(ctx);
}

static struct held *hold(struct stream *s)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			abort();
	}
	return &s->v[s->n++];
}

/* One record the reader returned: note it and restore it. */
static void take(struct stream *s, const struct bkp_record *rec)
{
	const struct geometry *g = &s->info.geo;
	struct held *h;

	PROPERTY(rec->chunk < g->nr_chunks && rec->length == expected_length(&s->info, rec->chunk),
		 "record of chunk %" PRIu64 " has length %u", rec->chunk, rec->length);
	h = hold(s);
	h->chunk = rec->chunk;
	memcpy(h->leaf, rec->leaf, 32);
	s->zero_records += !!(rec->flags & REC_ZERO);
	s->logical_bytes += rec->length;
	if (!rec->data)		/* keyless: no content */
		return;
	sha256(rec->data, rec->length, h->content);
	/* keyed leaves are HMACs: never SHA-256 of the content */
	s->genuine &= !bkp_encrypted(&s->info) && !memcmp(h->leaf, h->content, 32);
	if (!s->imaged)
		return;
	/* As restore.c's write_chunk(): zero_range() for a zero record. */
	if (rec->flags & REC_ZERO)
		memset(image + rec->chunk * g->chunk_bytes, 0, rec->length);
	else
		memcpy(image + rec->chunk * g->chunk_bytes, rec->data, rec->length);
}

/* What `amber verify` does; true if it accepts the input. */
static bool read_stream(int fd, struct stream *s)
{
	struct bkp_reader *r = bkp_reader_open(fd);
	struct bkp_record rec;
	int ret;

	if (!r)
		return false;
	s->info = *bkp_reader_info(r);
	s->keyed = bkp_encrypted(&s->info) && !bkp_reader_set_key(r, corpus_key);
	s->imaged = s->info.geo.volume_bytes <= IMAGE_MAX &&
		    (!bkp_encrypted(&s->info) || s->keyed);
	if (s->imaged)
		memset(image, OLD_BYTE, s->info.geo.volume_bytes);
	while ((ret = bkp_reader_next(r, &rec)) > 0)
		take(s, &rec);
	if (!ret) {
		s->summary = *bkp_reader_summary(r);
		memcpy(s->folded, bkp_reader_digest(r), 32);
	}
	bkp_reader_free(r);
	return !ret;
}

static int by_chunk(const void *a, const void *b)
{
	const struct held *x = a, *y = b;

	return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

static void check_counts(struct stream *s)
{
	const struct bkp_summary *t = &s->summary;
	size_t i;

	PROPERTY(t->records == s->n && t->zero_records == s->zero_records &&
		 t->logical_bytes == s->logical_bytes,
		 "verify reports %" PRIu64 " records, %" PRIu64 " zero, %" PRIu64
		 " bytes; the stream gave %zu, %" PRIu64 ", %" PRIu64, t->records,
		 t->zero_records, t->logical_bytes, s->n, s->zero_records, s->logical_bytes);
	if (s->n)		/* s->v is NULL until a record is held */
		qsort(s->v, s->n, sizeof(*s->v), by_chunk);
	for (i = 1; i < s->n; i++)
		PROPERTY(s->v[i - 1].chunk != s->v[i].chunk, "chunk %" PRIu64 " held twice",
			 s->v[i].chunk);
	PROPERTY(s->info.kind != BKP_FULL || s->n == s->info.geo.nr_chunks,
		 "a full backup of %" PRIu64 " chunks holds %zu", s->info.geo.nr_chunks, s->n);
}

static void check_digests(const struct stream *s)
{
	const uint32_t chunk_bytes = s->info.geo.chunk_bytes;
	uint8_t want[32];
	size_t i;

	for (i = 0; s->imaged && i < s->n; i++) {
		const struct held *h = &s->v[i];

		sha256(image + h->chunk * chunk_bytes, expected_length(&s->info, h->chunk), want);
		PROPERTY(!memcmp(want, h->content, 32), "chunk %" PRIu64 ": the restored image"
			 " does not hold what the reader returned", h->chunk);
	}
	reference_digest(s, false, want);
	PROPERTY(!memcmp(want, s->folded, 32),
		 "the reader's digest is not that of the records' leaves");
	if (!s->genuine || !s->imaged)
		return;
	reference_digest(s, true, want);
	PROPERTY(!memcmp(want, s->folded, 32),
		 "the reader's digest is not that of the image the records restore");
}

static bool same_info(const struct bkp_info *a, const struct bkp_info *b)
{
	return a->kind == b->kind && a->flags == b->flags &&
	       !memcmp(a->volume_uuid, b->volume_uuid, 16) &&
	       a->geo.volume_bytes == b->geo.volume_bytes &&
	       a->geo.chunk_bytes == b->geo.chunk_bytes &&
	       a->geo.nr_chunks == b->geo.nr_chunks && a->epoch == b->epoch &&
	       a->created == b->created && !strcmp(a->tool, b->tool) &&
	       !memcmp(a->parent_uuid, b->parent_uuid, 16) &&
	       a->parent_epoch == b->parent_epoch &&
	       !memcmp(a->parent_link, b->parent_link, 32);
}

static bool same_summary(const struct bkp_summary *a, const struct bkp_summary *b)
{
	return a->records == b->records && a->zero_records == b->zero_records &&
	       a->logical_bytes == b->logical_bytes && a->index_offset == b->index_offset &&
	       a->index_entries == b->index_entries && a->index_csum == b->index_csum &&
	       a->table_offset == b->table_offset && a->blocks == b->blocks &&
	       a->file_bytes == b->file_bytes && !memcmp(a->digest, b->digest, 32) &&
	       !memcmp(a->link, b->link, 32);
}

static const struct held *find_held(const struct stream *s, uint64_t chunk)
{
	struct held key = { .chunk = chunk };

	return s->n ? bsearch(&key, s->v, s->n, sizeof(*s->v), by_chunk) : NULL;
}

/* Chunk @c through the index: the stream's bytes, or none if not held. */
static void check_read(struct bkp_index *x, const struct stream *s, uint64_t c)
{
	const struct held *h = find_held(s, c);
	int ret = bkp_index_read(x, c, chunk_buf);
	uint8_t content[32];

	PROPERTY(ret == !!h, "chunk %" PRIu64 ": the index read returns %d (%s), the stream %s it",
		 c, ret, ret < 0 ? error_msg() : "", h ? "held" : "did not hold");
	if (!h)
		return;
	sha256(chunk_buf, expected_length(&s->info, c), content);
	PROPERTY(!memcmp(content, h->content, 32),
		 "chunk %" PRIu64 ": the index read and the stream give different bytes", c);
}

static void check_reads(struct bkp_index *x, const struct stream *s)
{
	uint64_t c, nr = s->info.geo.nr_chunks;
	size_t i;

	if (nr <= READ_ALL_MAX) {
		for (c = 0; c < nr; c++)
			check_read(x, s, c);
		return;
	}
	for (i = 0; i < s->n; i++)
		check_read(x, s, s->v[i].chunk);
	for (c = 0; c < nr; c += nr / READ_SAMPLES)
		check_read(x, s, c);
}

/* The leaves from the record headers are those the stream returned. */
static void check_leaves(struct bkp_index *x, const struct stream *s)
{
	size_t i;

	if (s->info.geo.nr_chunks > LEAVES_MAX)
		return;
	PROPERTY(!bkp_index_leaves(x, &s->summary, leaves),
		 "the leaves of what verify accepts are refused: %s", error_msg());
	for (i = 0; i < s->n; i++)
		PROPERTY(!memcmp(leaves[s->v[i].chunk], s->v[i].leaf, 32),
			 "chunk %" PRIu64 ": its leaf from the headers is not the stream's",
			 s->v[i].chunk);
}

/* list (bkp_peek) and info (bkp_index_load) on what verify accepted. */
static void check_agreement(int fd, const struct stream *s)
{
	struct bkp_summary summary;
	struct bkp_info info;
	struct bkp_index *x;
	uint64_t extents;

	PROPERTY(!bkp_peek(fd, &info, &summary), "list refuses what verify accepts: %s",
		 error_msg());
	PROPERTY(same_info(&info, &s->info), "list and verify read different headers");
	PROPERTY(same_summary(&summary, &s->summary), "list and verify read different trailers");
	x = bkp_index_load(fd, &info, &summary);
	PROPERTY(x, "info refuses what verify accepts: %s", error_msg());
	extents = info.version == BKP_VERSION_1 ? summary.index_entries : summary.blocks;
	PROPERTY(bkp_index_extents(x) == extents, "info shows %zu extents or blocks, the"
		 " trailer says %" PRIu64, bkp_index_extents(x), extents);
	PROPERTY(!s->keyed || !bkp_index_set_key(x, corpus_key),
		 "info refuses the key verify accepts: %s", error_msg());
	if (!bkp_encrypted(&info) || s->keyed)
		check_reads(x, s);
	check_leaves(x, s);
	bkp_index_free(x);
}

/* An input verify refuses: list and info may still read it; no crash. */
static void read_at_random(int fd)
{
	struct bkp_summary summary;
	struct bkp_index *x;
	struct bkp_info info;
	uint64_t c, step;

	if (bkp_peek(fd, &info, &summary))
		return;
	x = bkp_index_load(fd, &info, &summary);
	if (!x)
		return;
	bkp_index_set_key(x, corpus_key);
	step = info.geo.nr_chunks / 16 + 1;
	for (c = 0; c < info.geo.nr_chunks; c += step)
		bkp_index_read(x, c, chunk_buf);
	if (info.geo.nr_chunks <= LEAVES_MAX)
		bkp_index_leaves(x, &summary, leaves);
	bkp_index_free(x);
}

/* Write record @rec (decoded from a mutated input) with a genuine leaf. */
static void rewrite(struct bkp_writer *w, struct chunk_decoder *d, struct bkp_record *rec)
{
	if (chunk_decode(d, rec))
		return;
	/* v1; v2's payload_hash is the writer's own */
	rec->payload_csum = XXH3_64bits(rec->payload, rec->stored_bytes);
	sha256(rec->data, rec->length, rec->leaf);
	bkp_writer_put(w, rec);		/* refused (order, twice): left out */
}

static int decode_record_at(const uint8_t *at, const struct bkp_info *info,
			    struct bkp_record *rec)
{
	uint64_t seq;

	if (info->version == 1)
		return record_decode((const void *)at, &info->geo, rec, &seq);
	return record_v2_decode((const void *)at, &info->geo, record_tag_bytes(info), rec, &seq);
}

/*
 * The records of @data, from its header until the first that is not one,
 * written again as a well-formed backup; records that do not decode or
 * that the writer refuses are left out. Returns the new size, or @size
 * with @data unchanged when there is no such backup within @max.
 */

static size_t repair(uint8_t *data, size_t size, size_t max)
{
	static int fd = -1;
	struct chunk_decoder *d = NULL;
	struct bkp_writer *w = NULL;
	struct bkp_record rec;
	struct bkp_info info;
	size_t at, out = size, head, stored = 0;

	if (fd < 0 && (fd = memfd_create("repair", 0)) < 0)
		abort();
	/* no key to seal with: encrypted inputs are left as they are */
	if (size < sizeof(struct disk_header) || header_decode((const void *)data, &info) ||
	    info.geo.nr_chunks > REPAIR_CHUNKS_MAX || bkp_encrypted(&info) ||
	    ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET))
		return size;
	head = record_header_bytes(info.version);
	d = chunk_decoder_new(&info, NULL);
	/* the input's backup_id: a repair is deterministic */
	w = bkp_writer_new_with_id(fd, &info, NULL, info.backup_id);
	for (at = sizeof(struct disk_header); d && w && size - at >= head;
	     at += head + stored) {
		stored = get_le32(data + at + 24);	/* both versions: stored_bytes */
		if (memcmp(data + at, REC_MAGIC, 4) || stored > size - at - head)
			break;
		if (decode_record_at(data + at, &info, &rec))
			continue;
		rec.payload = data + at + head;
		rewrite(w, d, &rec);
	}
	if (d && w && !bkp_writer_finish(w, NULL, NULL) && bkp_writer_offset(w) <= max &&
	    !pread_full(fd, data, bkp_writer_offset(w), 0))
		out = bkp_writer_offset(w);
	bkp_writer_free(w);
	chunk_decoder_free(d);
	return out;
}

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned int seed)
{
	size = LLVMFuzzerMutate(data, size, max);
	return seed & 1 ? repair(data, size, max) : size;
}

/* FUZZ_BACKUP_STATS=1: how many inputs reached which property. */
static void print_stats(void)
{
	fprintf(stderr, "fuzz_backup: %" PRIu64 " inputs, %" PRIu64 " accepted by the stream"
		" (properties 1, 3, 4), %" PRIu64 " with a restored image, %" PRIu64
		" of those with genuine leaves (property 2)\n", stats.inputs, stats.accepted,
		stats.imaged, stats.genuine);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t k[32];
	int i;

	(void)argc, (void)argv;
	for (i = 0; i < 32; i++)
		k[i] = i;
	corpus_key = data_key_new(k);
	if (!corpus_key)
		abort();
	if (getenv("FUZZ_BACKUP_STATS"))
		atexit(print_stats);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct held *v;
	static size_t cap;
	static int fd = -1;
	struct stream s = { .v = v, .cap = cap, .genuine = true };

	if (fd < 0 && (fd = memfd_create("backup", 0)) < 0)
		abort();
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size ||
	    lseek(fd, 0, SEEK_SET))
		abort();
	stats.inputs++;
	if (read_stream(fd, &s)) {
		stats.accepted++;
		stats.imaged += s.imaged;
		stats.genuine += s.imaged && s.genuine;
		check_counts(&s);
		check_digests(&s);
		check_agreement(fd, &s);
	} else {
		read_at_random(fd);
	}
	v = s.v;			/* kept for the next input */
	cap = s.cap;
	return 0;
}
