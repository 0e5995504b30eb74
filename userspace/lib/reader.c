// SPDX-License-Identifier: GPL-2.0
/*
 * Reading a backup front to back, verifying everything on the way. The
 * calling thread reads the file and checks what depends on the order of
 * records (sequence, duplicates, order rules, digest, index, trailer);
 * workers check each record's payload (checksum, decoding, leaf) in
 * batches. Records and errors come out in file order.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <xxhash.h>

#include "bkp.h"
#include "blocks.h"
#include "codec.h"
#include "digest.h"
#include "checks.h"
#include "error.h"
#include "index.h"
#include "keys.h"
#include "layout.h"
#include "util.h"

#define READ_BUFFER	(1U << 20)
#define BATCH_BYTES	(1U << 20)	/* content of the records of a batch, at most */
_Static_assert(BATCH_BYTES >= BKP_MAX_CHUNK, "a batch holds any chunk");

/* A buffered front-to-back view of the file, counting the offset. */
struct input {
	int fd;
	uint8_t *buf;
	size_t pos, len;
	uint64_t offset;		/* of the next byte handed out */
};

/* A record as read, and where: a worker's error names it. */
struct batch_record {
	struct bkp_record rec;
	uint64_t seq, offset;
	uint8_t *content;		/* where zstd decodes it */
};

/*
 * Records read back to back, decoded by one worker. A batch goes FREE ->
 * READ (filled by the reading thread) -> DECODING -> DECODED (by a worker)
 * -> FREE (its records handed out by the reading thread, in turn).
 */
enum batch_state { BATCH_FREE, BATCH_READ, BATCH_DECODING, BATCH_DECODED };

struct batch {
	enum batch_state state;
	uint64_t nr;			/* batches filled before it */
	struct batch_record *recs;	/* batch_bytes / chunk_bytes */
	unsigned int nr_recs;		/* read, to decode */
	unsigned int nr_out;		/* to hand out: the last one read may have failed a stream check */
	unsigned int nr_good;		/* the first ones, decoded and verified */
	uint32_t used;			/* bytes of the records' slots */
	uint8_t *payload, *content;	/* buffer_bytes each; a record at the same place in both */
	struct error_state error;	/* why nr_good < nr_recs */
};

struct worker {
	struct bkp_reader *r;
	struct chunk_decoder *decoder;
	pthread_t thread;
};

enum reader_state { READING, DONE, FAILED };
/* How far reading the file got; what is handed out lags behind. */
enum input_state { INPUT_RECORDS, INPUT_END, INPUT_BROKEN };

struct bkp_reader {
	struct input in;
	struct bkp_info info;
	enum reader_state state;
	struct error_state error;	/* repeated once FAILED */
	bool started;
	/* The stream checks, in file order, in the calling thread: */
	enum input_state input;
	struct error_state input_error;	/* why INPUT_BROKEN */
	uint64_t seq;			/* next record number */
	uint64_t *seen;			/* chunks read */
	struct image_digest *digest;
	struct index_builder index;	/* v1 */
	struct block_builder blocks;	/* v2: the blocks due, to compare */
	uint8_t *stored_block;		/* v2: a block as read */
	char pending[SECTION_MAGIC_BYTES];	/* v2: a section's magic, read */
	bool has_pending;
	bool finishing;			/* v2: the records ended at an index block */
	struct bkp_summary sum;		/* as read: counts, then the trailer */
	uint8_t folded[32];		/* image digest of the records' leaves */
	struct bkp_crypto *crypto;	/* encrypted, with the key: this backup's keys */
	const struct asym_key *pubkey;	/* the trailer must be signed by it, or NULL */
	/* The payload checks, in the workers: */
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct batch *batches;
	unsigned int nr_batches;
	uint32_t batch_bytes;		/* no more than the volume: chunks are unique */
	uint32_t slot_bytes;		/* a record's room: a chunk and a tag */
	uint32_t buffer_bytes;		/* slots of a batch */
	uint64_t filled, handed;	/* batches filled, and handed out */
	unsigned int pos;		/* next record of the batch being handed out */
	struct chunk_decoder *decoder;	/* the calling thread's */
	struct worker *workers;
	unsigned int nr_workers;	/* 0 until start(): one per CPU */
	unsigned int nr_running;
	bool stopping;
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

	if (!r) {
		fail(AMBER_ESYS, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->changed, NULL);
	r->in.fd = fd;
	if (!(r->in.buf = malloc(READ_BUFFER)))
		fail(AMBER_ESYS, "out of memory");
	else if (!input_need(&r->in, &header, sizeof(header), "header at offset 0") &&
		 !header_decode(&header, &r->info) &&
		 (r->info.version == BKP_VERSION_1 ||
		  !sha256(&header, sizeof(header), r->sum.header_hash)))
		return r;
	bkp_reader_free(r);
	return NULL;
}

void bkp_reader_set_workers(struct bkp_reader *r, unsigned int n)
{
	r->nr_workers = n;
}

int bkp_reader_set_key(struct bkp_reader *r, const struct data_key *key)
{
	if (r->started)
		return fail(AMBER_ESYS, "a key is given before the first record is read");
	if (check_backup_key(&r->info, key, true))
		return -1;
	if (!key || !bkp_encrypted(&r->info))
		return 0;
	bkp_crypto_free(r->crypto);
	r->crypto = bkp_crypto_new(key, r->info.backup_id, r->sum.header_hash);
	return r->crypto ? 0 : -1;
}

int bkp_reader_set_pubkey(struct bkp_reader *r, const struct asym_key *pub)
{
	if (r->started)
		return fail(AMBER_ESYS, "a public key is given before the first record is read");
	r->pubkey = pub;
	return 0;
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

/* ---- the workers: payload checksum, decoding, leaf ---- */

static void set_state(struct bkp_reader *r, struct batch *b, enum batch_state state)
{
	pthread_mutex_lock(&r->lock);
	b->state = state;
	pthread_cond_broadcast(&r->changed);
	pthread_mutex_unlock(&r->lock);
}

/* The oldest batch read and not taken; NULL once stopping. */
static struct batch *next_to_decode(struct bkp_reader *r)
{
	struct batch *b, *oldest;
	unsigned int i;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		oldest = NULL;
		for (i = 0; i < r->nr_batches; i++) {
			b = &r->batches[i];
			if (b->state == BATCH_READ && (!oldest || b->nr < oldest->nr))
				oldest = b;
		}
		if (r->stopping || oldest)
			break;
		pthread_cond_wait(&r->changed, &r->lock);
	}
	if (r->stopping)
		oldest = NULL;
	if (oldest)
		oldest->state = BATCH_DECODING;
	pthread_mutex_unlock(&r->lock);
	return oldest;
}

/* Decode the records in order up to the first bad one. */
static void decode_batch(struct chunk_decoder *d, struct batch *b)
{
	struct batch_record *br;

	for (b->nr_good = 0; b->nr_good < b->nr_recs; b->nr_good++) {
		br = &b->recs[b->nr_good];
		if (chunk_decode_into(d, &br->rec, br->content)) {
			error_prefix("chunk %" PRIu64 ", record %" PRIu64 " at offset %" PRIu64
				     ": ", br->rec.chunk, br->seq, br->offset);
			error_save(&b->error);
			return;
		}
	}
}

static void *worker(void *arg)
{
	struct worker *w = arg;
	struct batch *b;

	while ((b = next_to_decode(w->r))) {
		decode_batch(w->decoder, b);
		set_state(w->r, b, BATCH_DECODED);
	}
	return NULL;
}

static void stop_workers(struct bkp_reader *r)
{
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_broadcast(&r->changed);
	pthread_mutex_unlock(&r->lock);
	for (; r->nr_running; r->nr_running--)
		pthread_join(r->workers[r->nr_running - 1].thread, NULL);
}

/* With the key, the tag stands for payload_hash where it pins the bytes. */
static struct chunk_decoder *new_decoder(const struct bkp_reader *r)
{
	struct chunk_decoder *d = chunk_decoder_new(&r->info, r->crypto);

	if (d)
		chunk_decoder_trust_tag(d, r->pubkey);
	return d;
}

/* One more worker, with its decoder. */
static int add_worker(struct bkp_reader *r)
{
	struct worker *w = &r->workers[r->nr_running];

	w->r = r;
	w->decoder = new_decoder(r);
	if (!w->decoder || start_thread(&w->thread, worker, w))
		return -1;
	r->nr_running++;
	return 0;
}

static int check_block(void *ctx, const uint8_t *block, size_t len, uint64_t *offset);

/* v2: the index blocks the records make, compared as they become due. */
static int start_blocks(struct bkp_reader *r)
{
	if (blocks_init(&r->blocks, check_block, r))
		return -1;
	r->stored_block = malloc(block_section_bytes(BKP_BLOCK_ENTRIES));
	return r->stored_block ? 0 : fail(AMBER_ESYS, "out of memory");
}

/* What verifying records needs, made on the first record: files only peeked
 * at cost nothing. Batches and workers come as the file needs them. */
static int start(struct bkp_reader *r)
{
	r->seen = bitmap_alloc(r->info.geo.nr_chunks);
	r->digest = image_digest_new(&r->info);
	r->decoder = new_decoder(r);
	if (!r->seen || !r->digest || !r->decoder ||
	    (r->info.version == BKP_VERSION_2 && start_blocks(r)))
		return -1;
	r->nr_workers = r->nr_workers ? r->nr_workers : default_workers();
	r->nr_batches = 2 * r->nr_workers + 2;
	r->batch_bytes = MIN(BATCH_BYTES, r->info.geo.nr_chunks * r->info.geo.chunk_bytes);
	r->slot_bytes = r->info.geo.chunk_bytes + record_tag_bytes(&r->info);
	r->buffer_bytes = r->batch_bytes / r->info.geo.chunk_bytes * r->slot_bytes;
	r->batches = calloc(r->nr_batches, sizeof(*r->batches));
	r->workers = calloc(r->nr_workers, sizeof(*r->workers));
	if (!r->batches || !r->workers)
		return fail(AMBER_ESYS, "out of memory");
	r->started = true;
	return 0;
}

/* ---- reading, in file order ---- */

/*
 * v2: the chunk the index of a seekable file puts at @at, for a record too
 * damaged or misplaced to say (FORMAT-v2.md, "One flipped bit"): 1 with
 * @chunk, 0 unknown (a pipe, v1, or a damaged index too). The error stays.
 */
static int chunk_in_index(const struct bkp_reader *r, uint64_t at, uint64_t *chunk)
{
	struct error_state error;
	struct bkp_index *x = NULL;
	struct bkp_summary sum;
	struct bkp_info info;
	int ret = 0;

	if (r->info.version != BKP_VERSION_2)
		return 0;
	error_save(&error);
	if (!bkp_peek(r->in.fd, &info, &sum) && (x = bkp_index_load(r->in.fd, &info, &sum)))
		ret = bkp_index_chunk_at(x, at, chunk) > 0;
	bkp_index_free(x);
	error_restore(&error);
	return ret;
}

/* Everything a record at @at must satisfy beyond its own header. */
static int check_in_stream(struct bkp_reader *r, const struct bkp_record *rec,
			   uint64_t seq, uint64_t at)
{
	uint64_t due;

	if (seq != r->seq && chunk_in_index(r, at, &due) && due != rec->chunk)
		return fail(AMBER_EDATA, "sequence number %" PRIu64 ", expected %" PRIu64
			    ": chunk %" PRIu64 " where the index puts chunk %" PRIu64, seq,
			    r->seq, rec->chunk, due);
	if (seq != r->seq)
		return fail(AMBER_EDATA, "sequence number %" PRIu64 ", expected %" PRIu64
			    " (records missing, reordered or duplicated)", seq, r->seq);
	if (bit_test(r->seen, rec->chunk))
		return fail(AMBER_EDATA, "chunk %" PRIu64 " appears twice", rec->chunk);
	return 0;
}

union record_header {
	struct disk_record v1;
	struct disk_record_v2 v2;
};

static int decode_record_header(const struct bkp_reader *r, const union record_header *h,
				struct bkp_record *rec, uint64_t *seq)
{
	if (r->info.version == BKP_VERSION_1)
		return record_decode(&h->v1, &r->info.geo, rec, seq);
	return record_v2_decode(&h->v2, &r->info.geo, record_tag_bytes(&r->info), rec, seq);
}

/* v2: the record's entry into the index blocks; blocks due are compared. */
static int add_entry(struct bkp_reader *r, const struct bkp_record *rec,
		     const struct disk_record_v2 *header, uint64_t at)
{
	struct block_entry e = {
		.chunk = rec->chunk, .offset = at, .stored_bytes = rec->stored_bytes,
		.codec = rec->codec, .flags = rec->flags,
	};

	memcpy(e.leaf, rec->leaf, 32);
	if (sha256(header, sizeof(*header), e.record_hash))
		return -1;
	return blocks_add(&r->blocks, &e, rec->flags & REC_EARLY);
}

/*
 * A record into @b, to decode. The checks that follow decoding in the
 * record's order of checks (the digest's order rule, the index) fail after
 * it has been added: its decoding error, if any, comes first. A v2 index
 * block due after it is checked once the record is counted: its errors
 * name the block.
 */
static int read_record(struct bkp_reader *r, const char *magic, struct batch *b)
{
	struct batch_record *br = &b->recs[b->nr_recs];
	struct bkp_record *rec = &br->rec;
	uint64_t at = r->in.offset - SECTION_MAGIC_BYTES, seq;
	size_t header_bytes = record_header_bytes(r->info.version);
	union record_header header;
	bool decoded = false;

	memcpy(&header, magic, SECTION_MAGIC_BYTES);
	if (input_need(&r->in, (uint8_t *)&header + SECTION_MAGIC_BYTES,
		       header_bytes - SECTION_MAGIC_BYTES, "record header") ||
	    decode_record_header(r, &header, rec, &seq))
		goto where;
	decoded = true;
	if (check_in_stream(r, rec, seq, at) ||
	    input_need(&r->in, b->payload + b->used, rec->stored_bytes, "payload"))
		goto where;
	rec->payload = b->payload + b->used;
	br->content = b->content + b->used;
	br->seq = r->seq;
	br->offset = at;
	b->used += rec->length + record_tag_bytes(&r->info);
	b->nr_recs++;
	if (image_digest_add(r->digest, rec->chunk, rec->leaf, rec->flags & REC_EARLY) ||
	    (r->info.version == BKP_VERSION_1 &&
	     index_add(&r->index, rec->chunk, at, header_bytes + rec->stored_bytes)))
		goto where;
	bit_set(r->seen, rec->chunk);
	r->seq++;
	r->sum.zero_records += !!(rec->flags & REC_ZERO);
	r->sum.logical_bytes += rec->length;
	b->nr_out++;
	return r->info.version == BKP_VERSION_2 ? add_entry(r, rec, &header.v2, at) : 0;
where:
	/* a header too damaged to say: its index entry does */
	if (decoded || chunk_in_index(r, at, &rec->chunk))
		return error_prefix("chunk %" PRIu64 ", record %" PRIu64 " at offset %" PRIu64
				    ": ", rec->chunk, r->seq, at);
	return error_prefix("record %" PRIu64 " at offset %" PRIu64 ": ", r->seq, at);
}

/* The next section's magic: one read ahead by read_section(), or from the file. */
static int next_magic(struct bkp_reader *r, char *magic, uint64_t *at, const char *what)
{
	*at = r->in.offset - (r->has_pending ? SECTION_MAGIC_BYTES : 0);
	if (r->has_pending) {
		memcpy(magic, r->pending, SECTION_MAGIC_BYTES);
		r->has_pending = false;
		return 0;
	}
	return input_need(&r->in, magic, SECTION_MAGIC_BYTES, what);
}

/*
 * v2: read the section due here into @stored and compare it with @built,
 * the one the records make (@len bytes, its magic first). 0 the same, 1 it
 * differs, 2 another section stands here (its magic in @stored), -1 the
 * file broke. @what names the section in a truncation error.
 */
static int read_due(struct bkp_reader *r, uint8_t *stored, const uint8_t *built, size_t len,
		    uint64_t *at, const char *what)
{
	if (next_magic(r, (char *)stored, at, what))
		return -1;
	if (memcmp(stored, built, SECTION_MAGIC_BYTES))
		return 2;
	if (input_need(&r->in, stored + SECTION_MAGIC_BYTES, len - SECTION_MAGIC_BYTES, what))
		return -1;
	return memcmp(stored, built, len) ? 1 : 0;
}

/*
 * v2: the records ended at an index block (@stored, @len bytes of it read)
 * that is not the one due. Is a record next after it, by its own count?
 * Then it was never due: an index block dropped among the records.
 */
static bool records_follow(struct bkp_reader *r, uint8_t *stored, size_t len)
{
	uint32_t count = get_le32(stored + offsetof(struct disk_block_head, count));
	char magic[SECTION_MAGIC_BYTES];
	size_t bytes, have;

	if (!r->finishing || count > BKP_BLOCK_ENTRIES)
		return false;
	bytes = block_section_bytes(count);
	have = len > bytes ? MIN(len - bytes, sizeof(magic)) : 0;
	if (bytes > len && input_need(&r->in, stored + len, bytes - len, "index block"))
		return false;
	memcpy(magic, stored + bytes, have);
	if (input_need(&r->in, magic + have, sizeof(magic) - have, "index block"))
		return false;
	return section_of(magic) == SECTION_RECORD;
}

/* v2: stored block @stored differs from @built (@len bytes): where, by chunk. */
static int block_differs(const uint8_t *stored, const uint8_t *built, size_t len)
{
	const struct disk_block_entry *s = (const void *)(stored + sizeof(struct disk_block_head));
	const struct disk_block_entry *b = (const void *)(built + sizeof(struct disk_block_head));
	size_t i, n = (len - sizeof(struct disk_block_head)) / sizeof(*b);

	for (i = 0; i < n; i++)
		if (memcmp(&s[i], &b[i], sizeof(*b)))
			return fail(AMBER_EDATA, "entry %zu (chunk %" PRIu64 ") does not match its"
				    " record", i, le64toh(b[i].chunk));
	return fail(AMBER_EDATA, "its count or number does not match the records");
}

/* v2: a block is due: the stored one must be the one the records make. */
static int check_block(void *ctx, const uint8_t *block, size_t len, uint64_t *offset)
{
	struct bkp_reader *r = ctx;
	uint8_t *stored = r->stored_block;
	int ret = read_due(r, stored, block, len, offset, "index block");

	if (ret == 1 && records_follow(r, stored, len))
		return fail(AMBER_EDATA, "index block at offset %" PRIu64 ": an index block where"
			    " none is due (records follow it)", *offset);
	if (ret == 1)
		block_differs(stored, block, len);
	else if (ret == 2)
		fail(AMBER_EDATA, "missing: the records make it due here");
	if (!ret)
		return 0;
	return error_prefix("index block %zu at offset %" PRIu64 ": ", r->blocks.nr_rows,
			    *offset);
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
	if (t->table_offset != s->table_offset || t->blocks != s->blocks)
		return fail(AMBER_EDATA, "block table position or size differs");
	if (digest_differs(t->header_hash, s->header_hash))
		return fail(AMBER_EDATA, "header_hash differs from the header read");
	if (digest_differs(t->table_hash, s->table_hash))
		return fail(AMBER_EDATA, "table_hash differs from the block table read");
	if (t->ext_bytes != s->ext_bytes || digest_differs(t->ext_hash, s->ext_hash))
		return fail(AMBER_EDATA, "ext_bytes or ext_hash differs from the extension"
			    " sections read");
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

/* The MAC with the key, the signature with a public key (FORMAT-v2.md). */
static int check_authenticity(const struct bkp_reader *r, const struct bkp_summary *t)
{
	if (r->crypto && trailer_check_mac(r->crypto, t))
		return -1;
	return r->pubkey ? trailer_check_signature(r->pubkey, t) : 0;
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

/* The trailer of either version, read after its magic, and its checks. */
static int read_trailer(struct bkp_reader *r, uint64_t at)
{
	union {
		struct disk_trailer v1;
		struct disk_trailer_v2 v2;
	} raw;
	size_t len = r->info.version == BKP_VERSION_1 ? sizeof(raw.v1) : sizeof(raw.v2);
	struct bkp_summary trailer;

	memcpy(&raw, TRL_MAGIC, SECTION_MAGIC_BYTES);
	if (input_need(&r->in, (uint8_t *)&raw + SECTION_MAGIC_BYTES,
		       len - SECTION_MAGIC_BYTES, "trailer") ||
	    (r->info.version == BKP_VERSION_1 ? trailer_decode(&raw.v1, &trailer) :
	     trailer_v2_decode(&raw.v2, &r->info, &trailer)) ||
	    image_digest_final(r->digest, r->folded) ||
	    check_trailer(r, &trailer, r->folded) || check_authenticity(r, &trailer))
		return error_prefix("trailer at offset %" PRIu64 ": ", at);
	r->sum = trailer;
	return check_end(r);
}

static int read_end(struct bkp_reader *r)
{
	char magic[SECTION_MAGIC_BYTES];
	uint64_t at;

	r->sum.index_offset = r->in.offset - SECTION_MAGIC_BYTES;
	r->sum.index_entries = r->index.n;
	if (read_index(r, &r->sum.index_csum))
		return error_prefix("index at offset %" PRIu64 ": ", r->sum.index_offset);
	at = r->in.offset;
	if (input_need(&r->in, magic, sizeof(magic), "trailer"))
		return error_prefix("trailer at offset %" PRIu64 ": ", at);
	if (section_of(magic) != SECTION_TRAILER)
		return fail(AMBER_EDATA, "trailer at offset %" PRIu64 ": bad trailer magic", at);
	return read_trailer(r, at);
}

/* v2: what stands where the block table is due, @stored's magic at @at. */
static int table_missing(const struct bkp_reader *r, const uint8_t *stored, uint64_t at)
{
	switch (section_of(stored)) {
	case SECTION_INDEX:
		return fail(AMBER_EDATA, "index block at offset %" PRIu64 ": an index block where"
			    " none is due (the records make %zu, all read)", at, r->blocks.nr_rows);
	case SECTION_RECORD:
		return fail(AMBER_EDATA, "record at offset %" PRIu64 ": after the last index"
			    " block", at);
	default:
		return fail(AMBER_EDATA, "block table at offset %" PRIu64 ": not a block table"
			    " (bad magic)", at);
	}
}

/* v2: the stored block table must be the one the blocks make. */
static int read_table(struct bkp_reader *r)
{
	size_t len;
	uint8_t *built = blocks_table(&r->blocks, &len), *stored = malloc(len);
	uint64_t at = 0;
	int ret = -1;

	if (!built || !stored) {
		fail(AMBER_ESYS, "out of memory (block table)");
		goto out;
	}
	ret = read_due(r, stored, built, len, &at, "block table");
	if (ret == 2) {
		ret = table_missing(r, stored, at);
		goto out;
	}
	if (ret == 1)
		fail(AMBER_EDATA, "does not match the index blocks read (%zu)",
		     r->blocks.nr_rows);
	if (ret) {
		ret = error_prefix("block table at offset %" PRIu64 ": ", at);
		goto out;
	}
	r->sum.table_offset = at;
	r->sum.blocks = r->blocks.nr_rows;
	ret = sha256(built, len, r->sum.table_hash);
out:
	free(built);
	free(stored);
	return ret;
}

/*
 * v2: the records ended at a section that is not a record (@magic): the
 * blocks still due, the table, then the trailer. No extension section is
 * known yet (FORMAT-v2.md, "Extension sections").
 */
static int read_end_v2(struct bkp_reader *r, const char *magic)
{
	char next[SECTION_MAGIC_BYTES];
	uint64_t at;

	memcpy(r->pending, magic, SECTION_MAGIC_BYTES);
	r->has_pending = true;
	r->finishing = true;
	if (blocks_finish(&r->blocks) || read_table(r))
		return -1;
	at = r->in.offset;
	if (input_need(&r->in, next, sizeof(next), "trailer"))
		return error_prefix("trailer at offset %" PRIu64 ": ", at);
	if (section_of(next) == SECTION_EXTENSION)
		return fail(AMBER_EDATA, "extension section at offset %" PRIu64 ": not"
			    " supported by this build of amber", at);
	if (section_of(next) != SECTION_TRAILER)
		return fail(AMBER_EDATA, "trailer at offset %" PRIu64 ": bad trailer magic", at);
	return read_trailer(r, at);
}

/* The next section: 1 a record into @b, 0 the end verified, -1 an error. */
static int read_section(struct bkp_reader *r, struct batch *b)
{
	char magic[SECTION_MAGIC_BYTES];
	uint64_t at = r->in.offset;
	ssize_t got;

	got = input_read(&r->in, magic, sizeof(magic));
	if (got < 0)
		return -1;
	if ((size_t)got < sizeof(magic))
		return fail(AMBER_EDATA, "truncated at offset %" PRIu64 " after %" PRIu64
			    " records: no index, trailer or end marker", at + got, r->seq);
	switch (section_of(magic)) {
	case SECTION_RECORD:
		return read_record(r, magic, b) ? -1 : 1;
	case SECTION_INDEX:
		if (r->info.version == BKP_VERSION_1)
			return read_end(r) ? -1 : 0;
		return read_end_v2(r, magic) ? -1 : 0;
	case SECTION_TABLE:
		if (r->info.version == BKP_VERSION_2)
			return read_end_v2(r, magic) ? -1 : 0;
		/* fall through */
	default:
		return fail(AMBER_EDATA, "record %" PRIu64 " at offset %" PRIu64
			    ": not a record or an index (bad magic)", r->seq, at);
	}
}

static int alloc_batch(const struct bkp_reader *r, struct batch *b)
{
	b->recs = calloc(r->batch_bytes / r->info.geo.chunk_bytes, sizeof(*b->recs));
	b->payload = malloc(r->buffer_bytes);
	b->content = malloc(r->buffer_bytes);
	if (!b->recs || !b->payload || !b->content)
		return fail(AMBER_ESYS, "out of memory");
	return 0;
}

/* Records into @b until it is full, or the file ends or breaks in it. */
static void fill_batch(struct bkp_reader *r, struct batch *b)
{
	int ret = 1;

	b->nr_recs = b->nr_out = b->used = 0;
	while (ret > 0 && b->used + r->slot_bytes <= r->buffer_bytes)
		ret = read_section(r, b);
	if (ret < 0) {
		r->input = INPUT_BROKEN;
		error_save(&r->input_error);
	} else if (!ret) {
		r->input = INPUT_END;
	}
	b->nr = r->filled++;
}

/*
 * Fill every free batch, in turn, for the workers; a worker more while
 * more batches wait behind the one handed out next than there are workers.
 * A batch with no record (the file ended, or broke, at its start) has
 * nothing to decode: no worker for it, or every full backup of a volume of
 * up to a batch would start one for its end.
 */
static int fill_batches(struct bkp_reader *r)
{
	struct batch *b;

	while (r->input == INPUT_RECORDS && r->filled - r->handed < r->nr_batches) {
		b = &r->batches[r->filled % r->nr_batches];
		if (!b->recs && alloc_batch(r, b))
			return -1;
		fill_batch(r, b);
		set_state(r, b, BATCH_READ);
		if (b->nr_recs &&
		    r->nr_running < MIN(r->nr_workers, r->filled - r->handed - 1) &&
		    add_worker(r))
			return -1;
	}
	return 0;
}

/*
 * The batch whose records are handed out next, once decoded: here, when no
 * worker has taken it yet, rather than wait for one.
 */
static struct batch *wait_decoded(struct bkp_reader *r)
{
	struct batch *b = &r->batches[r->handed % r->nr_batches];
	bool mine;

	pthread_mutex_lock(&r->lock);
	mine = b->state == BATCH_READ;
	if (mine)
		b->state = BATCH_DECODING;
	while (!mine && b->state != BATCH_DECODED)
		pthread_cond_wait(&r->changed, &r->lock);
	pthread_mutex_unlock(&r->lock);
	if (mine) {
		decode_batch(r->decoder, b);
		set_state(r, b, BATCH_DECODED);
	}
	return b;
}

/* What ends the file, once every record before it is handed out. */
static int input_end(struct bkp_reader *r)
{
	if (r->input == INPUT_END)
		return 0;
	error_restore(&r->input_error);
	return -1;
}

/* The records in file order; the first error in file order stops them. */
static int next(struct bkp_reader *r, struct bkp_record *rec)
{
	struct batch *b;

	if (!r->started && start(r))
		return -1;
	for (;;) {
		if (fill_batches(r))
			return -1;
		b = wait_decoded(r);
		if (r->pos < MIN(b->nr_good, b->nr_out)) {
			*rec = b->recs[r->pos++].rec;
			return 1;
		}
		if (b->nr_good < b->nr_recs) {
			error_restore(&b->error);
			return -1;
		}
		if (r->handed + 1 == r->filled && r->input != INPUT_RECORDS)
			return input_end(r);
		r->pos = 0;
		r->handed++;
		set_state(r, b, BATCH_FREE);
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
	if (ret <= 0)
		stop_workers(r);
	return ret;
}

void bkp_reader_free(struct bkp_reader *r)
{
	unsigned int i;

	if (!r)
		return;
	stop_workers(r);
	for (i = 0; r->workers && i < r->nr_workers; i++)
		chunk_decoder_free(r->workers[i].decoder);
	for (i = 0; r->batches && i < r->nr_batches; i++) {
		free(r->batches[i].recs);
		free(r->batches[i].payload);
		free(r->batches[i].content);
	}
	free(r->workers);
	free(r->batches);
	chunk_decoder_free(r->decoder);
	bkp_crypto_free(r->crypto);
	image_digest_free(r->digest);
	index_release(&r->index);
	blocks_release(&r->blocks);
	free(r->stored_block);
	free(r->seen);
	free(r->in.buf);
	pthread_cond_destroy(&r->changed);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
