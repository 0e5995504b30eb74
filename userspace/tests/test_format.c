// SPDX-License-Identifier: GPL-2.0
/* Round trips through the backup format. */
#include <fcntl.h>
#include <unistd.h>

#include "codec.h"
#include "harness.h"
#include "helpers.h"
#include "util.h"

/* Count records by codec and flag, reading the file back. */
struct census {
	uint64_t records, zero, zstd, raw, early;
	uint64_t first_normal_seq;	/* record number of the first non-early one */
};

static void take_census(const char *path, struct census *c)
{
	int fd = open(path, O_RDONLY);
	struct bkp_reader *r;
	struct bkp_record rec;
	int ret;

	memset(c, 0, sizeof(*c));
	c->first_normal_seq = UINT64_MAX;
	CHECK(fd >= 0);
	CHECK_PTR(r = bkp_reader_open(fd));
	while ((ret = bkp_reader_next(r, &rec)) > 0) {
		if (!(rec.flags & REC_EARLY) && c->first_normal_seq == UINT64_MAX)
			c->first_normal_seq = c->records;
		c->records++;
		c->zero += !!(rec.flags & REC_ZERO);
		c->early += !!(rec.flags & REC_EARLY);
		c->zstd += !(rec.flags & REC_ZERO) && rec.codec == CODEC_ZSTD;
		c->raw += !(rec.flags & REC_ZERO) && rec.codec == CODEC_RAW;
	}
	CHECK_OK(ret);
	bkp_reader_free(r);
	close(fd);
}

static void round_trip(const struct image *im, int level, struct bkp_summary *s)
{
	struct bkp_info info = test_info(im, BKP_FULL, 7);
	struct image back = { .geo = im->geo };
	struct bkp_summary read;
	uint8_t digest[32];

	write_all("full.amb", &info, im, level, s);
	back.data = calloc(1, im->geo.volume_bytes);
	CHECK_OK(read_backup("full.amb", &back, &read));
	CHECK(!memcmp(back.data, im->data, im->geo.volume_bytes));
	CHECK(!memcmp(&read, s, sizeof(read)));
	reference_digest(im, BKP_VERSION_2, digest);
	CHECK(!memcmp(digest, s->digest, 32));
	CHECK(!memcmp(s->link, s->digest, 32));
	image_free(&back);
}

TEST(format_zero_chunks_have_no_payload)
{
	struct image im = { 0 };
	struct bkp_summary s;
	struct census c;

	CHECK_OK(geometry_init(&im.geo, 64 * 65536, 65536));
	im.data = calloc(1, im.geo.volume_bytes);
	round_trip(&im, 3, &s);
	take_census("full.amb", &c);
	CHECK_EQ(c.records, 64);
	CHECK_EQ(c.zero, 64);
	CHECK_EQ(s.zero_records, 64);
	CHECK_EQ(s.file_bytes, sizeof(struct disk_header) + 64 * sizeof(struct disk_record_v2) +
		 sizeof(struct disk_block_head) + 64 * sizeof(struct disk_block_entry) +
		 sizeof(struct disk_table_head) + sizeof(struct disk_table_row) +
		 sizeof(struct disk_trailer_v2));
}

TEST(format_compressible_chunks_shrink)
{
	struct image im;
	struct bkp_summary s;
	struct census c;
	uint64_t i;

	image_make(&im, 40 * 65536, 65536, 1);
	for (i = 0; i < im.geo.nr_chunks; i++)		/* all text */
		if (i % 3 != 1)
			memcpy(image_chunk(&im, i), image_chunk(&im, 1), 65536);
	round_trip(&im, 3, &s);
	take_census("full.amb", &c);
	CHECK_EQ(c.zstd, 40);
	CHECK(s.file_bytes < im.geo.volume_bytes / 4);
}

TEST(format_incompressible_chunks_stay_raw)
{
	struct image im;
	struct bkp_summary s;
	struct census c;

	CHECK_OK(geometry_init(&im.geo, 16 * 65536, 65536));
	im.data = malloc(im.geo.volume_bytes);
	random_fill(im.data, im.geo.volume_bytes, 99);
	round_trip(&im, 19, &s);
	take_census("full.amb", &c);
	CHECK_EQ(c.raw, 16);
	CHECK_EQ(c.zstd, 0);
}

TEST(format_level_0_stores_raw_with_the_same_digest)
{
	struct image im;
	struct bkp_summary raw, packed;
	struct census c;

	image_make(&im, 30 * 4096, 4096, 5);
	round_trip(&im, 0, &raw);
	take_census("full.amb", &c);
	CHECK_EQ(c.zstd, 0);
	CHECK_EQ(c.zero, 10);
	round_trip(&im, 3, &packed);
	CHECK(!memcmp(raw.digest, packed.digest, 32));
	CHECK(packed.file_bytes < raw.file_bytes);
}

TEST(format_small_and_large_chunks_with_a_short_last_chunk)
{
	static const uint32_t sizes[] = { 4096, 65536, 1 << 20 };
	struct bkp_summary s;
	struct image im;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		image_make(&im, 5 * sizes[i] + 3 * 512, sizes[i], i);
		CHECK_EQ(im.geo.nr_chunks, 6);
		CHECK_EQ(chunk_length(&im.geo, 5), 3 * 512);
		round_trip(&im, 1, &s);
		CHECK_EQ(s.logical_bytes, im.geo.volume_bytes);
		image_free(&im);
	}
}

/* Early records anywhere ahead of the sweep: same image, same digest. */
TEST(format_random_order_gives_the_same_image_and_digest)
{
	uint64_t order[60], i, j, t;
	bool early[60] = { 0 };
	struct bkp_info info;
	struct bkp_summary sorted, shuffled;
	struct image im, back;
	struct census c;

	image_make(&im, 60 * 4096, 4096, 3);
	info = test_info(&im, BKP_FULL, 2);
	write_all("sorted.amb", &info, &im, 3, &sorted);
	for (i = 0; i < 60; i++)
		order[i] = i;
	for (i = 59; i > 0; i--) {		/* a fixed shuffle */
		j = (i * 7919 + 13) % (i + 1);
		t = order[i], order[i] = order[j], order[j] = t;
	}
	for (i = 0; i < 60; i++)
		early[i] = true;
	write_chunks("shuffled.amb", &info, &im, order, early, 60, 3, &shuffled);
	CHECK(!memcmp(sorted.digest, shuffled.digest, 32));
	image_copy(&back, &im);
	memset(back.data, 0xee, back.geo.volume_bytes);
	CHECK_OK(read_backup("shuffled.amb", &back, NULL));
	CHECK(!memcmp(back.data, im.data, im.geo.volume_bytes));
	take_census("shuffled.amb", &c);
	CHECK_EQ(c.early, 60);
}

/* The order a backup takes: store chunks first, then the sweep. */
TEST(format_early_then_sweep)
{
	uint64_t order[20], n = 0, i;
	bool early[20] = { 0 };
	static const uint64_t store[] = { 17, 4, 9 };
	struct bkp_summary s, ref;
	struct bkp_info info;
	struct image im;
	struct census c;

	image_make(&im, 20 * 4096, 4096, 8);
	info = test_info(&im, BKP_FULL, 2);
	for (i = 0; i < ARRAY_SIZE(store); i++) {
		early[n] = true;
		order[n++] = store[i];
	}
	for (i = 0; i < 20; i++)
		if (i != 17 && i != 4 && i != 9)
			order[n++] = i;
	write_chunks("mixed.amb", &info, &im, order, early, n, 3, &s);
	write_all("ref.amb", &info, &im, 3, &ref);
	CHECK(!memcmp(s.digest, ref.digest, 32));
	take_census("mixed.amb", &c);
	CHECK_EQ(c.early, 3);
	CHECK_EQ(c.first_normal_seq, 3);
}

TEST(format_writer_refuses_invalid_files)
{
	uint8_t scratch[4096];
	struct chunk_encoder *enc;
	struct bkp_record r0, r1, r2;
	struct bkp_writer *w;
	struct bkp_info info;
	struct image im;
	int fd = open("w.amb", O_WRONLY | O_CREAT | O_TRUNC, 0644);

	image_make(&im, 8 * 4096, 4096, 1);
	info = test_info(&im, BKP_FULL, 1);
	CHECK_PTR(enc = chunk_encoder_new(&im.geo, 3, NULL));
	CHECK_OK(chunk_encode(enc, 0, image_chunk(&im, 0), scratch, &r0));
	CHECK_OK(chunk_encode(enc, 1, image_chunk(&im, 1), scratch, &r1));
	CHECK_OK(chunk_encode(enc, 2, image_chunk(&im, 2), scratch, &r2));
	CHECK_PTR(w = bkp_writer_new(fd, &info, NULL));
	CHECK_OK(bkp_writer_put(w, &r2));
	CHECK_FAILS(bkp_writer_put(w, &r2), AMBER_EDATA, "twice");
	CHECK_FAILS(bkp_writer_put(w, &r1), AMBER_EDATA, "out of order");
	r1.flags |= REC_EARLY;
	CHECK_FAILS(bkp_writer_put(w, &r1), AMBER_EDATA, "out of order");
	r0.chunk = 8;
	CHECK_FAILS(bkp_writer_put(w, &r0), AMBER_EDATA, "beyond");
	CHECK_FAILS(bkp_writer_finish(w, NULL, NULL), AMBER_EDATA, "needs all 8 chunks");
	bkp_writer_free(w);
	info.epoch = 0;
	CHECK(!bkp_writer_new(fd, &info, NULL));
	CHECK(strstr(error_msg(), "epoch 0"));
	chunk_encoder_free(enc);
	close(fd);
}

TEST(format_incremental_holds_only_its_chunks)
{
	static const uint64_t changed[] = { 3, 4, 11 };
	struct bkp_summary full, incr, back;
	struct bkp_info info;
	struct image im;
	struct census c;

	image_make(&im, 12 * 4096, 4096, 2);
	info = test_info(&im, BKP_FULL, 1);
	write_all("full.amb", &info, &im, 3, &full);
	info = test_info(&im, BKP_INCREMENTAL, 4);
	set_parent(&info, 1, &full);
	write_chunks("incr.amb", &info, &im, changed, NULL, 3, 3, &incr);
	CHECK_OK(read_backup("incr.amb", NULL, &back));
	take_census("incr.amb", &c);
	CHECK_EQ(c.records, 3);
	CHECK(memcmp(incr.digest, full.digest, 32));
	CHECK_EQ(back.logical_bytes, 3 * 4096);
}

/*
 * A full of 8 MiB and an incremental in format @version: v1 cuts the full
 * into extents of at most 4 MiB (two at least) and the incremental into
 * one per run of chunks (2-4, 20, 30); v2 has one index block for each.
 */
static void random_access(uint32_t version)
{
	static const uint64_t changed[] = { 30, 2, 3, 4, 20 };
	static const bool early[] = { true, false, false, false, false };
	uint8_t buf[4096];
	struct bkp_summary full, incr, peeked;
	struct bkp_index *x;
	struct bkp_info info;
	struct image im;
	uint64_t c;
	int fd;

	image_make(&im, 2000 * 4096, 4096, 4);
	info = test_info(&im, BKP_FULL, 1);
	info.version = version;
	write_all("full.amb", &info, &im, 0, &full);
	fd = open("full.amb", O_RDONLY);
	CHECK_OK(bkp_peek(fd, &info, &peeked));
	CHECK(!memcmp(&peeked, &full, sizeof(full)));
	CHECK_PTR(x = bkp_index_load(fd, &info, &peeked));
	if (version == BKP_VERSION_1)
		CHECK(bkp_index_extents(x) >= 2);
	else
		CHECK_EQ(bkp_index_extents(x), 1);
	for (c = 0; c < im.geo.nr_chunks; c += 37) {
		CHECK_EQ(bkp_index_read(x, c, buf), 1);
		CHECK(!memcmp(buf, image_chunk(&im, c), 4096));
	}
	bkp_index_free(x);
	close(fd);

	info = test_info(&im, BKP_INCREMENTAL, 3);
	info.version = version;
	set_parent(&info, 1, &full);
	write_chunks("incr.amb", &info, &im, changed, early, 5, 3, &incr);
	fd = open("incr.amb", O_RDONLY);
	CHECK_OK(bkp_peek(fd, &info, &peeked));
	CHECK_PTR(x = bkp_index_load(fd, &info, &peeked));
	CHECK_EQ(bkp_index_extents(x), version == BKP_VERSION_1 ? 3 : 1);
	CHECK_EQ(bkp_index_read(x, 5, buf), 0);
	CHECK_EQ(bkp_index_read(x, 4, buf), 1);		/* the last of extent 2-4 */
	CHECK(!memcmp(buf, image_chunk(&im, 4), 4096));
	CHECK_EQ(bkp_index_read(x, 30, buf), 1);
	CHECK(!memcmp(buf, image_chunk(&im, 30), 4096));
	bkp_index_free(x);
	close(fd);
	image_free(&im);
}

TEST(format_random_access_through_the_index)
{
	random_access(BKP_VERSION_2);
}

TEST(format_v1_random_access_through_the_extents)
{
	random_access(BKP_VERSION_1);
}

TEST(format_v1_layout_matches_the_specification)
{
	struct bkp_summary s;
	struct bkp_info info;
	struct image im;
	uint8_t *file;
	size_t len;

	image_make(&im, 3 * 4096, 4096, 6);
	info = test_info(&im, BKP_FULL, 9);
	info.version = BKP_VERSION_1;
	write_all("full.amb", &info, &im, 3, &s);
	file = file_get("full.amb", &len);
	CHECK(!memcmp(file, "AMBERBKP", 8));
	CHECK_EQ(get_le32(file + 8), 1);			/* version */
	CHECK_EQ(get_le32(file + 12), 256);			/* header bytes */
	CHECK_EQ(get_le64(file + 56), 9);			/* epoch */
	CHECK(!memcmp(file + 256, "AREC", 4));			/* record 0 */
	CHECK_EQ(get_le64(file + 256 + 8), 0);			/* seq */
	CHECK_EQ(get_le64(file + 256 + 16), 0);			/* chunk */
	CHECK_EQ(get_le16(file + 256 + 6), REC_ZERO);		/* chunk 0 is zero */
	CHECK(!memcmp(file + len - 8, "AMBEREND", 8));
	CHECK(!memcmp(file + len - 144, "ATRL", 4));
	CHECK_EQ(get_le64(file + len - 144 + 8), 3);		/* records */
	CHECK_EQ(get_le64(file + len - 144 + 56), len);		/* file bytes */
	CHECK(!memcmp(file + get_le64(file + len - 144 + 32), "AIDX", 4));
	free(file);
}
