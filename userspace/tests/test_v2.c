// SPDX-License-Identifier: GPL-2.0
/*
 * Backup format 2 (docs/FORMAT-v2.md): the known-answer vector, one chunk
 * proven alone, every new field's damage refused, feature bits, mixed
 * chains.
 */
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <xxhash.h>

#include "blocks.h"
#include "chain.h"
#include "codec.h"
#include "digest.h"
#include "harness.h"
#include "helpers.h"
#include "layout.h"
#include "subcommands.h"
#include "util.h"

/* ---- the known-answer vector V2 of FORMAT-v2.md ---- */

/* SHA-256 of the whole file, and its length: any changed byte shows. */
#define KAT_V2_SHA256	"87d5adc0645a4c7ca9b090e40a1c8b227e3922a8c2c403fa3bfe3b32e0638e59"
#define KAT_V2_BYTES	5184

static void write_kat_v2(const char *path)
{
	struct bkp_info info = kat_info();
	static uint8_t content[4096], zeros[4096];
	struct chunk_encoder *enc;
	struct bkp_writer *w;
	struct bkp_record rec;
	uint8_t backup_id[16];
	int fd, i;

	for (i = 0; i < 16; i++)
		backup_id[i] = 0xa0 + i;
	for (i = 0; i < 4096; i++)
		content[i] = i % 251;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_PTR(enc = chunk_encoder_new(&info.geo, 0, NULL));
	CHECK_PTR(w = bkp_writer_new_with_id(fd, &info, NULL, backup_id));
	CHECK_OK(chunk_encode(enc, 0, content, NULL, &rec));
	CHECK_OK(bkp_writer_put(w, &rec));
	CHECK_OK(chunk_encode(enc, 1, zeros, NULL, &rec));
	CHECK_EQ(rec.flags, REC_ZERO);
	CHECK_OK(bkp_writer_put(w, &rec));
	CHECK_OK(bkp_writer_finish(w, NULL, NULL));
	bkp_writer_free(w);
	chunk_encoder_free(enc);
	close(fd);
}

TEST(v2_known_answer_vector_is_pinned)
{
	uint8_t *file, hash[32];
	const char *out = getenv("AMBER_KAT_OUT");
	char hex[65];
	size_t len;

	write_kat_v2("kat.amb");
	file = file_get("kat.amb", &len);
	if (out)		/* for docs/FORMAT-v2.md: AMBER_KAT_OUT=path */
		file_put(out, file, len);
	CHECK_EQ(len, KAT_V2_BYTES);
	CHECK_OK(sha256(file, len, hash));
	format_hex(hash, 32, hex);
	if (strcmp(hex, KAT_V2_SHA256))
		test_failed(__FILE__, __LINE__, "vector V2 has SHA-256 %s", hex);
	CHECK_OK(read_backup("kat.amb", NULL, NULL));
	free(file);
}

/* ---- files to damage ---- */

#define BIG_CHUNKS	9000	/* three index blocks */
#define SMALL_CHUNKS	9

/* Chunks 8000..8099 early, then the sweep: blocks lie among the records. */
static void write_big(const char *path, struct image *im, int level)
{
	uint64_t *order = calloc(BIG_CHUNKS, sizeof(*order));
	bool *early = calloc(BIG_CHUNKS, sizeof(*early));
	struct bkp_info info;
	size_t n = 0;
	uint64_t c;

	CHECK(order && early);
	image_make(im, BIG_CHUNKS * 4096ULL, 4096, 21);
	for (c = 8000; c < 8100; c++) {
		early[n] = true;
		order[n++] = c;
	}
	for (c = 0; c < BIG_CHUNKS; c++)
		if (c < 8000 || c >= 8100)
			order[n++] = c;
	info = test_info(im, BKP_FULL, 3);
	write_chunks(path, &info, im, order, early, n, level, NULL);
	free(order);
	free(early);
}

static void write_small(const char *path)
{
	static const uint64_t order[SMALL_CHUNKS] = { 7, 5, 0, 1, 2, 3, 4, 6, 8 };
	static const bool early[SMALL_CHUNKS] = { true, true };
	struct bkp_info info;
	struct image im;

	image_make(&im, SMALL_CHUNKS * 4096, 4096, 11);
	info = test_info(&im, BKP_FULL, 5);
	write_chunks(path, &info, &im, order, early, SMALL_CHUNKS, 3, NULL);
	image_free(&im);
}

/* Where the sections of a v2 file start, walking it from the front. */
struct sections {
	uint64_t record[BIG_CHUNKS];	/* by chunk */
	uint64_t block[8];
	size_t nr_blocks;
	uint64_t table, trailer, end;
};

static void find_sections(const char *path, struct sections *s)
{
	uint64_t at = sizeof(struct disk_header);
	uint8_t *file;
	size_t len;

	memset(s, 0, sizeof(*s));
	file = file_get(path, &len);
	while (!memcmp(file + at, "AREC", 4) || !memcmp(file + at, "AIDX", 4)) {
		if (!memcmp(file + at, "AIDX", 4)) {
			s->block[s->nr_blocks++] = at;
			at += block_section_bytes(get_le32(file + at + 4));
			continue;
		}
		s->record[get_le64(file + at + 16)] = at;
		at += sizeof(struct disk_record_v2) + get_le32(file + at + 24);
	}
	CHECK(!memcmp(file + at, "ABHT", 4));
	s->table = at;
	s->trailer = len - sizeof(struct disk_trailer_v2);
	s->end = len - 8;
	free(file);
}

static int prove(const char *path, uint64_t chunk)
{
	char arg[32];

	snprintf(arg, sizeof(arg), "%" PRIu64, chunk);
	return run_cmd(verify_main, "verify", "--chunk", arg, path, NULL);
}

/* ---- one chunk, proven alone ---- */

TEST(v2_one_chunk_is_read_and_proven_from_a_small_part_of_the_file)
{
	struct bkp_summary summary;
	struct bkp_index *x;
	struct bkp_info info;
	struct image im;
	uint8_t buf[4096];
	size_t len;
	uint64_t c;
	int fd;

	write_big("big.amb", &im, 0);
	free(file_get("big.amb", &len));
	fd = open("big.amb", O_RDONLY);
	CHECK_OK(bkp_peek(fd, &info, &summary));
	CHECK_EQ(info.version, BKP_VERSION_2);
	CHECK_PTR(x = bkp_index_load(fd, &info, &summary));
	CHECK_EQ(bkp_index_extents(x), 3);
	CHECK_EQ(bkp_index_read(x, 8050, buf), 1);
	CHECK(!memcmp(buf, image_chunk(&im, 8050), 4096));
	/* table, one block of 4096 entries, one record: under 2 % of the file */
	CHECK(bkp_index_bytes_read(x) + 256 + 368 < len / 50);
	printf("chunk 8050: %" PRIu64 " of %zu bytes read\n",
	       bkp_index_bytes_read(x) + 256 + 368, len);
	for (c = 0; c < BIG_CHUNKS; c += 97) {
		CHECK_EQ(bkp_index_read(x, c, buf), 1);
		CHECK(!memcmp(buf, image_chunk(&im, c), 4096));
	}
	bkp_index_free(x);
	close(fd);
	CHECK_OK(prove("big.amb", 8050));
	CHECK_OK(read_backup("big.amb", NULL, NULL));
	image_free(&im);
}

TEST(v2_one_chunk_proof_names_the_chunk_for_a_flipped_bit)
{
	struct sections s;
	struct image im;
	char text[96];

	write_big("big.amb", &im, 0);
	find_sections("big.amb", &s);
	file_flip("big.amb", s.record[4001] + sizeof(struct disk_record_v2) + 9, 0x04);
	snprintf(text, sizeof(text), "chunk 4001 (record at offset %" PRIu64
		 "): stored bytes do not match their hash", s.record[4001]);
	CHECK_FAILS(prove("big.amb", 4001), AMBER_EDATA, text);
	CHECK_OK(prove("big.amb", 4002));		/* the others still prove */
	CHECK_FAILS(read_backup("big.amb", NULL, NULL), AMBER_EDATA,
		    "chunk 4001, record 4101 at offset");
	image_free(&im);
}

TEST(v2_one_chunk_proof_names_the_chunk_for_two_swapped_records)
{
	uint8_t *file, *a, *b, t[4096 + 104];
	struct sections s;
	struct image im;
	char text[128];
	size_t len;

	write_big("big.amb", &im, 0);
	find_sections("big.amb", &s);
	file = file_get("big.amb", &len);
	a = file + s.record[4000];		/* chunks 4000, 4001: raw, 4096 bytes */
	b = file + s.record[4001];
	CHECK_EQ(get_le32(a + 24), 4096);
	CHECK_EQ(get_le32(b + 24), 4096);
	memcpy(t, a, sizeof(t));
	memcpy(a, b, sizeof(t));
	memcpy(b, t, sizeof(t));
	file_put("big.amb", file, len);
	snprintf(text, sizeof(text), "chunk 4000 (record at offset %" PRIu64 "): the record"
		 " header is not the one the index commits to", s.record[4000]);
	CHECK_FAILS(prove("big.amb", 4000), AMBER_EDATA, text);
	snprintf(text, sizeof(text), "chunk 4001, record 4100 at offset %" PRIu64 ": sequence"
		 " number 4101, expected 4100: chunk 4001 where the index puts chunk 4000",
		 s.record[4000]);
	CHECK_FAILS(read_backup("big.amb", NULL, NULL), AMBER_EDATA, text);
	free(file);
	image_free(&im);
}

/* Read front to back, a damaged record header is named by its index entry. */
TEST(v2_flipped_record_header_is_named_by_the_chunk_of_its_entry)
{
	struct sections s;
	struct image im;
	char text[128];

	write_big("big.amb", &im, 0);
	find_sections("big.amb", &s);
	file_flip("big.amb", s.record[4500] + 20, 0x20);	/* the chunk number */
	snprintf(text, sizeof(text), "chunk 4500, record 4600 at offset %" PRIu64 ": record"
		 " header checksum mismatch", s.record[4500]);
	CHECK_FAILS(read_backup("big.amb", NULL, NULL), AMBER_EDATA, text);
	image_free(&im);
}

/* An index block that differs from its records names the first entry that does. */
TEST(v2_index_block_names_the_chunk_of_the_entry_that_differs)
{
	struct sections s;
	struct image im;
	char text[128];

	write_big("big.amb", &im, 0);
	find_sections("big.amb", &s);
	file_flip("big.amb", s.block[1] + 16 + 88 * 407 + 30, 0x20);	/* a record_hash */
	snprintf(text, sizeof(text), "index block 1 at offset %" PRIu64 ": entry 407 (chunk"
		 " 4503) does not match its record", s.block[1]);
	CHECK_FAILS(read_backup("big.amb", NULL, NULL), AMBER_EDATA, text);
	image_free(&im);
}

/* Without a usable trailer nothing is proven: verify --chunk stops at once. */
TEST(v2_one_chunk_proof_stops_at_an_unusable_trailer)
{
	struct sections s;
	struct image im;

	write_big("big.amb", &im, 0);
	find_sections("big.amb", &s);
	file_flip("big.amb", s.trailer + 8, 0x01);
	CHECK_FAILS(prove("big.amb", 10), AMBER_EDATA, "big.amb: no chunk can be proven"
		    " without a usable header and trailer: trailer at offset");
	CHECK(strstr(error_msg(), "trailer checksum mismatch (amber verify big.amb locates"
		     " the damage)"));
	file_truncate("big.amb", s.record[5000] + 300);
	CHECK_FAILS(prove("big.amb", 10), AMBER_EDATA, "no chunk can be proven");
	CHECK(!strstr(error_msg(), "record"));		/* not read from the front */
	image_free(&im);
}

/* ---- every byte, every boundary, every section ---- */

TEST(v2_every_flipped_byte_is_detected)
{
	write_small("a.amb");
	check_every_flip_detected("a.amb");
}

TEST(v2_truncation_at_every_offset_is_detected)
{
	size_t len, cut;
	uint8_t *file;

	write_small("a.amb");
	file = file_get("a.amb", &len);
	for (cut = 0; cut < len; cut++) {
		file_put("b.amb", file, cut);
		if (read_backup("b.amb", NULL, NULL) == 0 || error_status() != AMBER_EDATA)
			test_failed(__FILE__, __LINE__, "cut at %zu not detected (%s)", cut,
				    error_msg());
	}
	free(file);
}

/* A flipped bit in each section, read front to back, then at random. */
TEST(v2_damage_in_each_section_is_named)
{
	static const struct {
		const char *section, *stream, *random;
	} want[] = {
		{ "header", "header: checksum mismatch", "header: checksum mismatch" },
		{ "record header", "record header checksum mismatch", NULL },
		{ "index block", "index block 1 at offset", "index block 1 at offset" },
		{ "block table", "block table at offset", "block table at offset" },
		{ "trailer", "trailer at offset", "trailer checksum mismatch" },
		{ "end marker", "no end marker", "no end marker" },
	};
	struct bkp_summary summary;
	struct bkp_index *x;
	struct bkp_info info;
	uint64_t at[ARRAY_SIZE(want)];
	struct sections s;
	struct image im;
	uint8_t buf[4096];
	size_t i;
	int fd, ret;

	write_big("big.amb", &im, 0);
	find_sections("big.amb", &s);
	at[0] = 100;
	at[1] = s.record[4500] + 20;
	at[2] = s.block[1] + 16 + 88 * 407 + 30;	/* chunk 4503's record_hash */
	at[3] = s.table + 16 + 48 + 20;
	at[4] = s.trailer + 100;
	at[5] = s.end + 3;
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		printf("%s at offset %" PRIu64 "\n", want[i].section, at[i]);
		CHECK_OK(read_backup("big.amb", NULL, NULL));
		file_flip("big.amb", at[i], 0x20);
		CHECK_FAILS(read_backup("big.amb", NULL, NULL), AMBER_EDATA, want[i].stream);
		fd = open("big.amb", O_RDONLY);
		ret = bkp_peek(fd, &info, &summary);
		x = ret ? NULL : bkp_index_load(fd, &info, &summary);
		if (x) {
			ret = bkp_index_read(x, 4503, buf);
			bkp_index_free(x);
		} else {
			ret = -1;
		}
		if (want[i].random)
			CHECK_FAILS(ret ? -1 : 0, AMBER_EDATA, want[i].random);
		close(fd);
		file_flip("big.amb", at[i], 0x20);
	}
	image_free(&im);
}

/* @path: @file with @len bytes of @what inserted at offset @at. */
static void insert_at(const char *path, const uint8_t *file, size_t len, size_t at,
		      const uint8_t *what, size_t what_len)
{
	uint8_t *out = malloc(len + what_len);

	CHECK(out);
	memcpy(out, file, at);
	memcpy(out + at, what, what_len);
	memcpy(out + at + what_len, file + at, len - at);
	file_put(path, out, len + what_len);
	free(out);
}

TEST(v2_missing_or_extra_index_block_is_refused)
{
	uint8_t *file;
	struct sections s;
	struct image im;
	size_t len, block;
	char text[128];

	write_big("big.amb", &im, 0);
	find_sections("big.amb", &s);
	file = file_get("big.amb", &len);
	block = block_section_bytes(BKP_BLOCK_ENTRIES);
	/* block 0 cut out: the record after it stands where it is due */
	file_put("missing.amb", file, s.block[0]);
	CHECK(!truncate("missing.amb", s.block[0]));
	{
		int fd = open("missing.amb", O_WRONLY | O_APPEND);

		CHECK(fd >= 0);
		CHECK_OK(write_full(fd, file + s.block[0] + block, len - s.block[0] - block));
		close(fd);
	}
	CHECK_FAILS(read_backup("missing.amb", NULL, NULL), AMBER_EDATA,
		    "index block 0 at offset");
	/* a copy of block 0 among the records before it, then before the table */
	insert_at("early.amb", file, len, s.record[100], file + s.block[0], block);
	snprintf(text, sizeof(text), "index block at offset %" PRIu64 ": an index block where"
		 " none is due (records follow it)", s.record[100]);
	CHECK_FAILS(read_backup("early.amb", NULL, NULL), AMBER_EDATA, text);
	insert_at("late.amb", file, len, s.table, file + s.block[0], block);
	snprintf(text, sizeof(text), "index block at offset %" PRIu64 ": an index block where"
		 " none is due (the records make 3, all read)", s.table);
	CHECK_FAILS(read_backup("late.amb", NULL, NULL), AMBER_EDATA, text);
	free(file);
	image_free(&im);
}

/* Flip @mask into byte @field of the trailer of @path and reseal its checksum. */
static void flip_trailer(const char *path, size_t field, uint8_t mask)
{
	struct disk_trailer_v2 *t;
	uint8_t *file;
	size_t len;

	file = file_get(path, &len);
	t = (void *)(file + len - sizeof(*t));
	((uint8_t *)t)[field] ^= mask;
	t->csum = htole64(XXH3_64bits(t, offsetof(struct disk_trailer_v2, csum)));
	file_put(path, file, len);
	free(file);
}

TEST(v2_trailer_ext_hash_without_extension_bytes_is_refused)
{
	struct bkp_summary s;
	struct bkp_info info;
	int fd;

	write_small("a.amb");
	flip_trailer("a.amb", offsetof(struct disk_trailer_v2, ext_hash) + 5, 0x10);
	CHECK_FAILS(read_backup("a.amb", NULL, NULL), AMBER_EDATA,
		    "trailer ext_hash set, but ext_bytes is 0");
	fd = open("a.amb", O_RDONLY);
	CHECK_FAILS(bkp_peek(fd, &info, &s), AMBER_EDATA, "trailer ext_hash set");
	close(fd);
	CHECK_FAILS(prove("a.amb", 3), AMBER_EDATA, "trailer ext_hash set");
	CHECK_FAILS(run_cmd(info_main, "info", "a.amb", NULL), AMBER_EDATA,
		    "trailer ext_hash set");
}

/* Each hash of the trailer that differs is named, read front to back. */
TEST(v2_trailer_hash_that_differs_is_named)
{
	static const struct {
		size_t field;
		const char *text;
	} want[] = {
		{ offsetof(struct disk_trailer_v2, header_hash), "header_hash differs" },
		{ offsetof(struct disk_trailer_v2, table_hash), "table_hash differs" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(want); i++) {
		write_small("a.amb");
		flip_trailer("a.amb", want[i].field + 31, 0x01);
		CHECK_FAILS(read_backup("a.amb", NULL, NULL), AMBER_EDATA, want[i].text);
	}
}

/* ---- feature bits ---- */

/* Set header feature masks of @path, with every checksum and hash made right. */
static void set_features(const char *path, uint32_t compat, uint32_t ro_compat,
			 uint32_t incompat)
{
	struct disk_trailer_v2 *t;
	struct disk_header *h;
	uint8_t *file;
	size_t len;

	file = file_get(path, &len);
	h = (void *)file;
	t = (void *)(file + len - sizeof(*t));
	h->v2.compat = htole32(compat);
	h->v2.ro_compat = htole32(ro_compat);
	h->v2.incompat = htole32(incompat);
	h->csum = htole64(XXH3_64bits(h, offsetof(struct disk_header, csum)));
	CHECK_OK(sha256(h, sizeof(*h), t->header_hash));
	t->csum = htole64(XXH3_64bits(t, offsetof(struct disk_trailer_v2, csum)));
	file_put(path, file, len);
	free(file);
}

TEST(v2_unknown_incompatible_feature_is_refused_by_number)
{
	struct bkp_summary s;
	struct bkp_info info;
	int fd;

	write_small("a.amb");
	set_features("a.amb", 0, 0, 1U << 3);
	CHECK_FAILS(read_backup("a.amb", NULL, NULL), AMBER_EDATA,
		    "header: incompatible feature bit 3, unknown to this amber (it knows"
		    " ENCRYPTED)");
	fd = open("a.amb", O_RDONLY);
	CHECK_FAILS(bkp_peek(fd, &info, &s), AMBER_EDATA, "incompatible feature bit 3");
	close(fd);
	set_features("a.amb", 0, 0, 1U << 3 | 1U << 9 | 1U << 31);
	CHECK_FAILS(read_backup("a.amb", NULL, NULL), AMBER_EDATA,
		    "header: incompatible feature bits 3, 9, 31, unknown to this amber");
	set_features("a.amb", 0, 0, FEATURE_INCOMPAT_ENCRYPTED);
	CHECK_FAILS(read_backup("a.amb", NULL, NULL), AMBER_EDATA,
		    "header: ENCRYPTED without a key fingerprint");
	set_features("a.amb", FEATURE_COMPAT_SIGNED, 0, 0);
	CHECK_FAILS(read_backup("a.amb", NULL, NULL), AMBER_EDATA,
		    "trailer signer or signature zero, but the header says the backup is signed");
	set_features("a.amb", 1U << 7, 0, 0);		/* unknown compat: ignored */
	CHECK_OK(read_backup("a.amb", NULL, NULL));
}

TEST(v2_unknown_read_only_feature_is_read_but_never_a_parent)
{
	struct parent_want want = { .volume = "vol", .volume_bytes = SMALL_CHUNKS * 4096 };
	struct bkp_summary s;
	struct bkp_info info;

	write_small("a.amb");
	set_features("a.amb", 0, 1U << 5, 0);
	CHECK_OK(read_backup("a.amb", NULL, NULL));
	CHECK_OK(run_cmd(verify_main, "verify", "a.amb", NULL));
	CHECK_OK(prove("a.amb", 3));
	CHECK_FAILS(chain_read_parent("a.amb", &want, &info, &s), AMBER_EDATA,
		    "read-only compatible feature bit 5, unknown to this amber");
	CHECK_FAILS(run_cmd(consolidate_main, "consolidate", "a.amb", "--to", "c.amb", NULL),
		    AMBER_EDATA, "read-only compatible feature bit 5");
	CHECK(access("c.amb", F_OK));
	set_features("a.amb", 0, 1U << 5 | 1U << 6, 0);
	CHECK_FAILS(chain_read_parent("a.amb", &want, &info, &s), AMBER_EDATA,
		    "read-only compatible feature bits 5, 6, unknown to this amber");
}

/* ---- versions together ---- */

static void expect_image(const char *path, const struct image *im)
{
	uint8_t *data;
	size_t len;

	data = file_get(path, &len);
	CHECK_EQ(len, im->geo.volume_bytes);
	CHECK(!memcmp(data, im->data, len));
	free(data);
}

/* A v2 incremental continues a v1 full and a v1 one a v2 full: links are copied. */
TEST(v2_and_v1_members_chain_both_ways)
{
	static const char *versions[][2] = { { "1", "2" }, { "2", "1" } };
	struct image im;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(versions); i++) {
		image_make(&im, 200 * 4096, 4096, 31 + i);
		file_put("img", im.data, im.geo.volume_bytes);
		CHECK_OK(run_cmd(backup_main, "backup", "--image", "img", "--to", "full.amb",
				 "--chunk", "4K", "--format-version", versions[i][0], NULL));
		image_change(&im, 17, 5);
		image_change(&im, 150, 6);
		file_put("img", im.data, im.geo.volume_bytes);
		CHECK_OK(run_cmd(backup_main, "backup", "--image", "img", "--to", "incr.amb",
				 "--incremental-from", "full.amb", "--format-version",
				 versions[i][1], NULL));
		file_put("target", "", 0);
		CHECK(!truncate("target", im.geo.volume_bytes));
		CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "incr.amb", "--to",
				 "target", NULL));
		expect_image("target", &im);
		CHECK_OK(run_cmd(consolidate_main, "consolidate", "full.amb", "incr.amb", "--to",
				 "merged.amb", NULL));
		CHECK_OK(run_cmd(verify_main, "verify", "merged.amb", NULL));
		CHECK(!unlink("full.amb") && !unlink("incr.amb") && !unlink("merged.amb"));
		image_free(&im);
	}
}

TEST(v2_backup_ids_are_new_for_every_file)
{
	struct bkp_info a, b;
	struct bkp_summary s;
	int fd;

	write_small("a.amb");
	write_small("b.amb");
	fd = open("a.amb", O_RDONLY);
	CHECK_OK(bkp_peek(fd, &a, &s));
	close(fd);
	fd = open("b.amb", O_RDONLY);
	CHECK_OK(bkp_peek(fd, &b, &s));
	close(fd);
	CHECK(memcmp(a.backup_id, b.backup_id, 16));
}

TEST(v2_info_counts_one_block_and_three_blocks)
{
	struct image im;

	write_small("a.amb");
	CHECK_EQ(system("\"$AMBER_BIN\" info a.amb | grep -q '^  index     1 block, '"), 0);
	write_big("big.amb", &im, 0);
	CHECK_EQ(system("\"$AMBER_BIN\" info big.amb | grep -q '^  index     3 blocks, '"), 0);
	image_free(&im);
}
