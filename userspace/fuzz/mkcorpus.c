// SPDX-License-Identifier: GPL-2.0
/* Write the small seed backups of fuzz/corpus/backup: make corpus. */
#include <endian.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "codec.h"
#include "error.h"
#include "format.h"
#include "keys.h"
#include "util.h"

/* Seeds that break one rule the reader must catch (docs/FORMAT.md). */
enum hostile {
	VALID,
	SKIPPABLE_FRAME,	/* each zstd payload starts with a skippable frame */
	TRAILER_WRAPS,		/* index offset + size wraps past 2^64 */
	TABLE_WRAPS,		/* v2: the block table's size wraps past 2^64 */
};

struct seed {
	const char *name;
	uint32_t version;
	enum bkp_kind kind;
	uint32_t chunk_bytes;
	uint64_t volume_bytes;
	const uint64_t *order;		/* NULL: every chunk, ascending */
	size_t count;
	uint32_t early;			/* bit i: order[i] is early */
	int level;
	enum hostile hostile;
	unsigned int keys;		/* SEED_ENCRYPTED, SEED_SIGNED */
};

#define SEED_ENCRYPTED	(1U << 0)	/* data key bytes 0..31 (fuzz_backup has it) */
#define SEED_SIGNED	(1U << 1)	/* Ed25519 seed bytes 0x40..0x5f */

static const uint64_t incremental[] = { 6, 1, 2, 5 };
static const uint64_t store_first[] = { 7, 3, 0, 1, 2, 4, 5, 6 };

static const struct seed seeds[] = {
	{ "full-4k", 1, BKP_FULL, 4096, 8 * 4096, NULL, 8, 0, 3, VALID, 0 },
	{ "full-raw-short-tail", 1, BKP_FULL, 4096, 5 * 4096 + 1024, NULL, 6, 0, 0, VALID, 0 },
	{ "full-store-first", 1, BKP_FULL, 4096, 8 * 4096, store_first, 8, 0x3, 3, VALID, 0 },
	{ "incremental", 1, BKP_INCREMENTAL, 4096, 8 * 4096, incremental, 4, 0x1, 3, VALID, 0 },
	{ "full-64k-text", 1, BKP_FULL, 65536, 2 * 65536, NULL, 2, 0, 3, VALID, 0 },
	{ "bad-skippable-frame", 1, BKP_FULL, 4096, 8 * 4096, NULL, 8, 0, 3, SKIPPABLE_FRAME, 0 },
	{ "bad-trailer-wraps", 1, BKP_INCREMENTAL, 4096, 4096 * 4096, incremental, 4, 0x1, 3,
	  TRAILER_WRAPS, 0 },
	{ "v2-full-4k", 2, BKP_FULL, 4096, 8 * 4096, NULL, 8, 0, 3, VALID, 0 },
	{ "v2-full-raw-short-tail", 2, BKP_FULL, 4096, 5 * 4096 + 1024, NULL, 6, 0, 0, VALID, 0 },
	{ "v2-full-store-first", 2, BKP_FULL, 4096, 8 * 4096, store_first, 8, 0x3, 3, VALID, 0 },
	{ "v2-incremental", 2, BKP_INCREMENTAL, 4096, 8 * 4096, incremental, 4, 0x1, 3, VALID, 0 },
	{ "v2-full-64k-text", 2, BKP_FULL, 65536, 2 * 65536, NULL, 2, 0, 3, VALID, 0 },
	{ "v2-bad-skippable-frame", 2, BKP_FULL, 4096, 8 * 4096, NULL, 8, 0, 3,
	  SKIPPABLE_FRAME, 0 },
	{ "v2-bad-trailer-wraps", 2, BKP_INCREMENTAL, 4096, 4096 * 4096, incremental, 4, 0x1,
	  3, TABLE_WRAPS, 0 },
	{ "v2-enc-full-4k", 2, BKP_FULL, 4096, 8 * 4096, NULL, 8, 0, 3, VALID,
	  SEED_ENCRYPTED | SEED_SIGNED },
	{ "v2-enc-full-raw-short-tail", 2, BKP_FULL, 4096, 5 * 4096 + 1024, NULL, 6, 0, 0,
	  VALID, SEED_ENCRYPTED },
	{ "v2-enc-store-first", 2, BKP_FULL, 4096, 8 * 4096, store_first, 8, 0x3, 3, VALID,
	  SEED_ENCRYPTED },
	{ "v2-enc-incremental", 2, BKP_INCREMENTAL, 4096, 8 * 4096, incremental, 4, 0x1, 3,
	  VALID, SEED_ENCRYPTED },
	{ "v2-signed-full-4k", 2, BKP_FULL, 4096, 8 * 4096, NULL, 8, 0, 3, VALID, SEED_SIGNED },
};

/* Zero, text or pseudo-random content by chunk number, always the same. */
static void fill(uint8_t *buf, uint32_t len, uint64_t chunk)
{
	static const char text[] = "row 1042 balance 17.50 ok;\n";
	uint32_t i, x = chunk * 2654435761U + 1;

	for (i = 0; i < len; i++) {
		x = x * 1103515245 + 12345;
		buf[i] = chunk % 3 == 0 ? 0 : chunk % 3 == 1 ? (uint8_t)text[i % (sizeof(text) - 1)] :
			 (uint8_t)(x >> 24);
	}
}

/* A skippable frame (magic 0x184D2A50, 4 bytes of content) in front. */
static void prepend_skippable_frame(struct bkp_record *rec, uint8_t *out)
{
	static const uint8_t frame[12] = { 0x50, 0x2a, 0x4d, 0x18, 4 };

	memcpy(out, frame, sizeof(frame));
	memcpy(out + sizeof(frame), rec->payload, rec->stored_bytes);
	rec->payload = out;
	rec->stored_bytes += sizeof(frame);
	rec->payload_csum = XXH3_64bits(out, rec->stored_bytes);	/* v2: the writer hashes */
}

static int put(struct bkp_writer *w, struct chunk_encoder *enc, uint64_t chunk, bool early,
	       const struct seed *s, const struct geometry *g)
{
	static uint8_t data[65536], scratch[65536], framed[65536 + 16];
	struct bkp_record rec;

	fill(data, chunk_length(g, chunk), chunk);
	if (chunk_encode(enc, chunk, data, scratch, &rec))
		return -1;
	rec.flags |= early ? REC_EARLY : 0;
	if (s->hostile == SKIPPABLE_FRAME && rec.codec == CODEC_ZSTD)
		prepend_skippable_frame(&rec, framed);
	return bkp_writer_put(w, &rec);
}

/*
 * Pad the file before its trailer until the most index entries it could
 * hold overshoot the trailer, then claim that many, at an offset that
 * wraps past 2^64 to land exactly on the trailer.
 */
static int wrap_trailer(int fd)
{
	const uint64_t head = sizeof(struct disk_index_head);
	const uint64_t entry = sizeof(struct disk_index_entry);
	struct disk_trailer t;
	uint64_t end, entries;
	struct stat st;

	if (fstat(fd, &st) || pread(fd, &t, sizeof(t), st.st_size - sizeof(t)) != sizeof(t))
		return fail_errno(AMBER_ESYS, "reading the trailer");
	for (end = st.st_size - sizeof(t); end % entry >= head; end++)
		;
	entries = end / entry;
	t.records = htole64(entries);
	t.index_entries = htole64(entries);
	t.index_offset = htole64(end - head - entries * entry);
	t.file_bytes = htole64(end + sizeof(t));
	t.csum = htole64(XXH3_64bits(&t, offsetof(struct disk_trailer, csum)));
	if (ftruncate(fd, end) || pwrite(fd, &t, sizeof(t), end) != sizeof(t))
		return fail_errno(AMBER_ESYS, "writing the trailer");
	return 0;
}

/*
 * Claim 2^60 index blocks more than there are: at 48 bytes a row, the
 * block table's size wraps past 2^64 to its true size. Only a fuzzing
 * build's blocks of 4 entries keep so many records under 2^63.
 */
static int wrap_table(int fd)
{
	struct disk_trailer_v2 t;
	uint64_t blocks;
	struct stat st;

	if (fstat(fd, &st) || pread(fd, &t, sizeof(t), st.st_size - sizeof(t)) != sizeof(t))
		return fail_errno(AMBER_ESYS, "reading the trailer");
	blocks = DIV_ROUND_UP(le64toh(t.records), BKP_BLOCK_ENTRIES) + (1ULL << 60);
	t.records = htole64(blocks * BKP_BLOCK_ENTRIES);
	t.csum = htole64(XXH3_64bits(&t, offsetof(struct disk_trailer_v2, csum)));
	if (pwrite(fd, &t, sizeof(t), st.st_size - sizeof(t)) != sizeof(t))
		return fail_errno(AMBER_ESYS, "writing the trailer");
	return 0;
}

/* The seeds' keys: FORMAT-v2.md's known-answer inputs. */
static int seed_keys(const struct seed *s, struct data_key **key, struct asym_key **signer)
{
	uint8_t raw[32];
	int i;

	for (i = 0; i < 32; i++)
		raw[i] = i;
	if (s->keys & SEED_ENCRYPTED && !(*key = data_key_new(raw)))
		return -1;
	for (i = 0; i < 32; i++)
		raw[i] = 0x40 + i;
	if (s->keys & SEED_SIGNED && !(*signer = asym_from_raw_private(raw, true)))
		return -1;
	return 0;
}

static int write_seed(const char *dir, const struct seed *s, uint8_t nr)
{
	/* Seeds stay the same; an encrypted seed's is its own (a record key each). */
	const uint8_t backup_id[16] = { 0x5e, 0xed, s->keys & SEED_ENCRYPTED ? nr : 0 };
	struct bkp_info info = { .version = s->version, .kind = s->kind, .epoch = 4,
				 .created = 1700000000, .tool = "amber corpus" };
	struct chunk_encoder *enc = NULL;
	struct bkp_writer *w = NULL;
	struct data_key *key = NULL;
	struct asym_key *signer = NULL;
	char path[512];
	size_t i;
	int fd, ret = -1;

	if (geometry_init(&info.geo, s->volume_bytes, s->chunk_bytes) ||
	    seed_keys(s, &key, &signer))
		goto keys;
	memset(info.volume_uuid, 0xab, 16);
	if (s->kind == BKP_INCREMENTAL) {
		memcpy(info.parent_uuid, info.volume_uuid, 16);
		info.parent_epoch = 2;
		memset(info.parent_link, 0xcd, 32);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, s->name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fail_errno(AMBER_ESYS, "%s", path);
		goto keys;
	}
	enc = chunk_encoder_new(&info.geo, s->level, key ? key->identity : NULL);
	w = bkp_writer_new_with_id(fd, &info, &(struct bkp_keys){ key, signer }, backup_id);
	for (i = 0; enc && w && i < s->count; i++)
		if (put(w, enc, s->order ? s->order[i] : i, s->early >> i & 1, s, &info.geo))
			goto out;
	if (enc && w)
		ret = bkp_writer_finish(w, NULL, NULL);
	if (!ret && s->hostile == TRAILER_WRAPS)
		ret = wrap_trailer(fd);
	if (!ret && s->hostile == TABLE_WRAPS)
		ret = wrap_table(fd);
out:
	close(fd);
keys:
	bkp_writer_free(w);
	chunk_encoder_free(enc);
	data_key_free(key);
	asym_free(signer);
	return ret;
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	for (i = 0; i < ARRAY_SIZE(seeds); i++)
		if (write_seed(argv[1], &seeds[i], i)) {
			fprintf(stderr, "%s: %s\n", seeds[i].name, error_msg());
			return 1;
		}
	return 0;
}
