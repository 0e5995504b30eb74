// SPDX-License-Identifier: GPL-2.0
/* Every kind of damage is refused, with the record and offset named. */
#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>
#define ZSTD_STATIC_LINKING_ONLY	/* ZSTD_c_contentSizeFlag */
#include <zstd.h>

#include "codec.h"
#include "digest.h"
#include "harness.h"
#include "helpers.h"
#include "layout.h"
#include "util.h"

#define NR_RECORDS	9

/* A small backup: zero, text and random chunks, some early. */
static void make_sample(const char *path, struct bkp_summary *s)
{
	static const uint64_t order[NR_RECORDS] = { 7, 5, 0, 1, 2, 3, 4, 6, 8 };
	static const bool early[NR_RECORDS] = { true, true };
	struct bkp_info info;
	struct image im;

	image_make(&im, NR_RECORDS * 4096, 4096, 11);
	info = test_info(&im, BKP_FULL, 5);
	info.version = BKP_VERSION_1;	/* parses v1 bytes */
	write_chunks(path, &info, &im, order, early, NR_RECORDS, 3, s);
	image_free(&im);
}

/* Byte offsets of the records in a backup. */
static void record_offsets(const uint8_t *file, uint64_t *at)
{
	uint64_t pos = sizeof(struct disk_header);
	int i;

	for (i = 0; i < NR_RECORDS; i++) {
		at[i] = pos;
		pos += sizeof(struct disk_record) + get_le32(file + pos + 24);
	}
	at[NR_RECORDS] = pos;	/* the index */
}

static void expect_rejected(const char *path, const char *text)
{
	CHECK_FAILS(read_backup(path, NULL, NULL), AMBER_EDATA, text);
}

/* The record header at @at, to edit and then reseal(). */
static struct disk_record *record_at(uint8_t *file, uint64_t at)
{
	return (struct disk_record *)(file + at);
}

static void reseal(struct disk_record *r)
{
	r->csum = htole64(XXH3_64bits(r, offsetof(struct disk_record, csum)));
}

TEST(corrupt_every_flipped_byte_is_detected)
{
	struct bkp_summary s;

	make_sample("a.amb", &s);
	check_every_flip_detected("a.amb");
}

TEST(corrupt_truncation_at_every_offset_is_detected)
{
	struct bkp_summary s, peeked;
	struct bkp_info info;
	size_t len, cut;
	uint8_t *file;
	int fd;

	make_sample("a.amb", &s);
	file = file_get("a.amb", &len);
	for (cut = 0; cut < len; cut++) {
		file_put("b.amb", file, cut);
		if (read_backup("b.amb", NULL, NULL) == 0 || error_status() != AMBER_EDATA)
			test_failed(__FILE__, __LINE__, "truncation to %zu bytes not detected (%s)",
				    cut, error_msg());
		fd = open("b.amb", O_RDONLY);
		if (!bkp_peek(fd, &info, &peeked))
			test_failed(__FILE__, __LINE__, "peek took %zu bytes", cut);
		close(fd);
	}
	CHECK(strstr(error_msg(), "trailer") || strstr(error_msg(), "truncated"));
	free(file);
}

TEST(corrupt_errors_name_the_record_and_offset)
{
	uint64_t at[NR_RECORDS + 1];
	struct bkp_summary s;
	char text[80];
	uint8_t *file;
	size_t len;

	make_sample("a.amb", &s);
	file = file_get("a.amb", &len);
	record_offsets(file, at);

	file_flip("a.amb", at[4] + sizeof(struct disk_record) + 100, 0x40);
	snprintf(text, sizeof(text), "record 4 at offset %" PRIu64 ": payload checksum", at[4]);
	expect_rejected("a.amb", text);

	file_put("a.amb", file, len);
	file_flip("a.amb", at[6] + 20, 0x01);	/* the chunk number */
	snprintf(text, sizeof(text), "record 6 at offset %" PRIu64 ": record header checksum",
		 at[6]);
	expect_rejected("a.amb", text);

	file_put("a.amb", file, len);
	file_truncate("a.amb", at[3] + 50);
	snprintf(text, sizeof(text), "record 3 at offset %" PRIu64 ": record header: truncated",
		 at[3]);
	expect_rejected("a.amb", text);

	file_put("a.amb", file, len);
	file_truncate("a.amb", at[5]);
	snprintf(text, sizeof(text), "truncated at offset %" PRIu64 " after 5 records", at[5]);
	expect_rejected("a.amb", text);
	free(file);
}

TEST(corrupt_reordered_and_duplicated_records_are_refused)
{
	uint64_t at[NR_RECORDS + 1];
	struct bkp_summary s;
	uint8_t *file, *moved;
	size_t len, a, b;

	make_sample("a.amb", &s);
	file = file_get("a.amb", &len);
	record_offsets(file, at);
	/* swap records 2 and 3 */
	a = at[3] - at[2];
	b = at[4] - at[3];
	moved = malloc(2 * len);
	memcpy(moved, file, at[2]);
	memcpy(moved + at[2], file + at[3], b);
	memcpy(moved + at[2] + b, file + at[2], a);
	memcpy(moved + at[4], file + at[4], len - at[4]);
	file_put("swapped.amb", moved, len);
	expect_rejected("swapped.amb", "record 2 at offset");
	expect_rejected("swapped.amb", "sequence number 3, expected 2");
	/* record 1 twice */
	memcpy(moved, file, at[2]);
	memcpy(moved + at[2], file + at[1], at[2] - at[1]);
	memcpy(moved + at[2] + (at[2] - at[1]), file + at[2], len - at[2]);
	file_put("dup.amb", moved, len + at[2] - at[1]);
	expect_rejected("dup.amb", "sequence number 1, expected 2");
	free(moved);
	free(file);
}

/* Records whose own checksums are right but break the stream's rules. */
TEST(corrupt_consistent_records_that_break_the_rules)
{
	uint64_t at[NR_RECORDS + 1], extra;
	struct disk_record *r;
	struct bkp_summary s;
	uint8_t *file, *copy;
	size_t len;

	make_sample("a.amb", &s);
	file = file_get("a.amb", &len);
	record_offsets(file, at);
	extra = at[3] - at[2];
	copy = malloc(len + extra);

	/* record 2 (chunk 0) again as record 3, its sequence number fixed */
	memcpy(copy, file, at[3]);
	memcpy(copy + at[3], file + at[2], extra);
	memcpy(copy + at[3] + extra, file + at[3], len - at[3]);
	r = record_at(copy, at[3]);
	r->seq = htole64(3);
	reseal(r);
	file_put("dup.amb", copy, len + extra);
	expect_rejected("dup.amb", "record 3 at offset");
	expect_rejected("dup.amb", "chunk 0 appears twice");

	/* chunk 7 made normal: early chunk 5 after it is behind the sweep */
	memcpy(copy, file, len);
	r = record_at(copy, at[0]);
	r->flags &= ~htole16(REC_EARLY);
	reseal(r);
	file_put("order.amb", copy, len);
	expect_rejected("order.amb", "record 1 at offset");
	expect_rejected("order.amb", "out of order");

	/* a record renamed to another chunk */
	memcpy(copy, file, len);
	r = record_at(copy, at[3]);
	r->chunk = htole64(0);
	reseal(r);
	file_put("renamed.amb", copy, len);
	expect_rejected("renamed.amb", "chunk 0 appears twice");

	/* a normal record flagged early where the rule allows: the same image */
	memcpy(copy, file, len);
	r = record_at(copy, at[4]);
	r->flags |= htole16(REC_EARLY);
	reseal(r);
	file_put("early.amb", copy, len);
	CHECK_OK(read_backup("early.amb", NULL, NULL));
	free(copy);
	free(file);
}

TEST(corrupt_payload_with_a_matching_checksum_but_wrong_content)
{
	uint64_t at[NR_RECORDS + 1], payload;
	struct disk_record *r;
	struct bkp_summary s;
	uint8_t *file;
	size_t len;

	make_sample("a.amb", &s);
	file = file_get("a.amb", &len);
	record_offsets(file, at);
	r = (void *)(file + at[6]);		/* chunk 3: text, compressed */
	payload = at[6] + sizeof(*r);
	CHECK_EQ(le16toh(r->codec), CODEC_ZSTD);
	file[at[7] - 1] ^= 0x55;		/* last payload byte */
	r->payload_csum = htole64(XXH3_64bits(file + payload, le32toh(r->stored_bytes)));
	r->csum = htole64(XXH3_64bits(r, offsetof(struct disk_record, csum)));
	file_put("b.amb", file, len);
	expect_rejected("b.amb", "record 6 at offset");
	free(file);
}

TEST(corrupt_foreign_files_and_versions)
{
	struct disk_header *h;
	struct bkp_summary s;
	uint8_t junk[8192];
	uint8_t *file;
	size_t len;

	random_fill(junk, sizeof(junk), 4);
	file_put("junk", junk, sizeof(junk));
	expect_rejected("junk", "not an amber backup");
	memset(junk, 0, sizeof(junk));
	junk[1080] = 0x53, junk[1081] = 0xef;	/* an ext4 superblock */
	file_put("ext4", junk, sizeof(junk));
	expect_rejected("ext4", "not an amber backup");
	file_put("empty", junk, 0);
	expect_rejected("empty", "header at offset 0: truncated");

	make_sample("a.amb", &s);
	file = file_get("a.amb", &len);
	h = (void *)file;
	h->version = htole32(3);
	h->csum = htole64(XXH3_64bits(h, offsetof(struct disk_header, csum)));
	file_put("v3.amb", file, len);
	expect_rejected("v3.amb", "format version 3, this amber reads versions 1 and 2");
	/* an epoch no kernel reaches, which JSON could not print as a number */
	h->version = htole32(1);
	h->epoch = htole64(1ULL << 63);
	h->csum = htole64(XXH3_64bits(h, offsetof(struct disk_header, csum)));
	file_put("epoch.amb", file, len);
	expect_rejected("epoch.amb", "epoch 9223372036854775808 is not in 1..2^63-1");
	free(file);
}

/*
 * A trailer whose index offset plus index size wraps past 2^64 to land on
 * the trailer. An incremental of three chunks on a volume of 4096 lets the
 * trailer claim as many entries as the file could hold; the file is padded
 * before its trailer until that many overshoot it, and the offset wraps.
 */
TEST(corrupt_index_position_that_wraps_is_refused)
{
	static const uint64_t changed[] = { 3, 1000, 4000 };
	const uint64_t head = sizeof(struct disk_index_head);
	const uint64_t entry = sizeof(struct disk_index_entry);
	struct bkp_summary full = { 0 }, s, peeked;
	struct disk_trailer trailer;
	struct bkp_info info;
	uint64_t index_end, entries;
	size_t len, pad = 0;
	struct image im;
	uint8_t *file;
	int fd;

	image_make(&im, 4096 * 4096, 4096, 13);
	info = test_info(&im, BKP_INCREMENTAL, 2);
	info.version = BKP_VERSION_1;	/* parses v1 bytes */
	set_parent(&info, 1, &full);
	write_chunks("a.amb", &info, &im, changed, NULL, 3, 3, &s);
	image_free(&im);
	file = file_get("a.amb", &len);
	memcpy(&trailer, file + len - sizeof(trailer), sizeof(trailer));
	while ((len - sizeof(trailer) + pad) % entry >= head)
		pad++;
	file = realloc(file, len + pad);
	memset(file + len - sizeof(trailer), 0, pad);
	len += pad;
	index_end = len - sizeof(trailer);
	entries = index_end / entry;
	trailer.records = htole64(entries);
	trailer.index_entries = htole64(entries);
	trailer.index_offset = htole64(index_end - head - entries * entry);
	trailer.file_bytes = htole64(len);
	trailer.csum = htole64(XXH3_64bits(&trailer, offsetof(struct disk_trailer, csum)));
	memcpy(file + index_end, &trailer, sizeof(trailer));
	file_put("wrap.amb", file, len);
	CHECK(le64toh(trailer.index_offset) > index_end);
	CHECK(entries < 4096);

	fd = open("wrap.amb", O_RDONLY);
	/* the offset is past 2^63: refused as such, before its sum can wrap */
	CHECK_FAILS(bkp_peek(fd, &info, &peeked), AMBER_EDATA, "trailer counts past 2^63-1");
	close(fd);
	free(file);
}

/* zstd of @src with a 16 MiB window written in its frame header. */
static size_t compress_wide(void *dst, size_t cap, const void *src, size_t len)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	ZSTD_outBuffer out = { dst, cap, 0 };
	ZSTD_inBuffer in = { src, len, 0 };

	CHECK(c);
	ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 24);
	ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
	/* Streamed, the size is not known up front and the window stays. */
	CHECK(!ZSTD_isError(ZSTD_compressStream2(c, &out, &in, ZSTD_e_continue)));
	CHECK(ZSTD_compressStream2(c, &out, &in, ZSTD_e_end) == 0);
	ZSTD_freeCCtx(c);
	return out.pos;
}

/* chunk_decode() of a 4 KiB zstd record whose payload is @payload. */
static int decode_payload(const uint8_t *content, const void *payload, size_t len)
{
	struct bkp_record rec = {
		.codec = CODEC_ZSTD, .length = 4096, .stored_bytes = len,
		.payload = payload, .payload_csum = XXH3_64bits(payload, len),
	};
	struct leaf_hasher *h = leaf_hasher_new(NULL);
	struct bkp_info info = { .version = BKP_VERSION_1 };
	struct chunk_decoder *d;
	int ret;

	CHECK_OK(geometry_init(&info.geo, 4 * 4096, 4096));
	CHECK(h && (d = chunk_decoder_new(&info, NULL)));
	CHECK_OK(leaf_hash(h, content, 4096, rec.leaf));
	ret = chunk_decode(d, &rec);
	if (!ret)
		CHECK(!memcmp(rec.data, content, 4096));
	chunk_decoder_free(d);
	leaf_hasher_free(h);
	return ret;
}

/*
 * Payloads that decode to the right content but break the format's zstd
 * rules: a skippable frame in front, a window above 1 MiB.
 */
TEST(corrupt_zstd_payloads_outside_the_rules_are_refused)
{
	static const uint8_t skippable[12] = { 0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0 };
	uint8_t content[4096], payload[8192];
	size_t i, n;

	for (i = 0; i < sizeof(content); i++)
		content[i] = "amber zstd frames "[i % 18];
	n = ZSTD_compress(payload, sizeof(payload), content, sizeof(content), 3);
	CHECK(!ZSTD_isError(n));
	CHECK_OK(decode_payload(content, payload, n));

	memcpy(payload, skippable, sizeof(skippable));
	n = ZSTD_compress(payload + sizeof(skippable), sizeof(payload) - sizeof(skippable),
			  content, sizeof(content), 3);
	CHECK_FAILS(decode_payload(content, payload, sizeof(skippable) + n), AMBER_EDATA,
		    "zstd frame 0: a skippable frame");

	n = compress_wide(payload, sizeof(payload), content, sizeof(content));
	CHECK_FAILS(decode_payload(content, payload, n), AMBER_EDATA,
		    "zstd frame 0: window of 16777216 bytes, above 1048576");
}

TEST(corrupt_trailing_data_and_lying_trailers)
{
	struct disk_trailer *t;
	struct bkp_summary s;
	uint8_t *file;
	size_t len;

	make_sample("a.amb", &s);
	file = file_get("a.amb", &len);
	file = realloc(file, len + 1);
	file[len] = 0;
	file_put("long.amb", file, len + 1);
	expect_rejected("long.amb", "data after the end marker");

	t = (void *)(file + len - sizeof(*t));
	t->records = htole64(NR_RECORDS + 1);
	t->csum = htole64(XXH3_64bits(t, offsetof(struct disk_trailer, csum)));
	file_put("count.amb", file, len);
	expect_rejected("count.amb", "trailer at offset");

	t->records = htole64(NR_RECORDS);
	t->digest[0] ^= 1;
	memcpy(t->link, t->digest, 32);
	t->csum = htole64(XXH3_64bits(t, offsetof(struct disk_trailer, csum)));
	file_put("digest.amb", file, len);
	expect_rejected("digest.amb", "image digest mismatch");
	free(file);
}
