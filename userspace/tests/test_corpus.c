// SPDX-License-Identifier: GPL-2.0
/*
 * The committed v1 seeds of fuzz/corpus/backup, made by an amber that
 * wrote only format 1: each is pinned by its SHA-256, and this amber must
 * still verify, restore and read it chunk by chunk, or refuse it with its
 * error.
 */
#include <fcntl.h>
#include <unistd.h>

#include "digest.h"
#include "harness.h"
#include "helpers.h"
#include "subcommands.h"
#include "util.h"

struct seed {
	const char *name, *sha256;
	const char *stream, *random;	/* the errors of a bad seed, else NULL */
};

#define GOOD(name, sha256)	{ name, sha256, NULL, NULL }

static const struct seed seeds[] = {
	GOOD("full-4k", "e4fadd79bcece0c1bc3bd3bd38ad5e3b3a87dd9c07c370e0c400b906e681b627"),
	GOOD("full-raw-short-tail",
	     "a31d001c3e7b6de40d71524159d21f2bb0f8b6c6d8f563195c9ee2a6ff4feb68"),
	GOOD("full-store-first",
	     "e1496f1ebb0b26062cb0e067664e64a3f3c268701beb964d6e783bba0187bee5"),
	GOOD("incremental", "3ca147f0f884bec589b2e0ed8db19e5666f3fa33c4ff3f13957be9e174660d13"),
	GOOD("full-64k-text", "e86e8e7a5906d5b08089a4c2b7012c6b8ce4c8afbc20b9f3e7adb3fcc789f0e7"),
	{ "bad-skippable-frame", "e7869b0505e5bc0e35f55507500e19d2b3236e47a540d2cabe98d0b0ec761658",
	  "chunk 1, record 1 at offset 336: zstd frame 0: a skippable frame",
	  "record at offset 336: zstd frame 0: a skippable frame" },
	{ "bad-trailer-wraps", "68cf772608f93c555711501eea0b1130b8af3d34f2019391bf8cf3f9b05d0560",
	  "trailer at offset 8901: bad trailer magic",
	  "trailer at offset 8904: trailer counts past 2^63-1" },
};

/* The seed @name from the committed corpus (make test says where it is). */
static void seed_path(const char *name, char *path, size_t len)
{
	const char *dir = getenv("AMBER_CORPUS");
	uint8_t *file, hash[32];
	size_t i, bytes;
	char hex[65];

	if (!dir)
		test_failed(__FILE__, __LINE__, "AMBER_CORPUS is not set (make test sets it)");
	snprintf(path, len, "%s/%s", dir, name);
	file = file_get(path, &bytes);
	CHECK_OK(sha256(file, bytes, hash));
	free(file);
	format_hex(hash, 32, hex);
	for (i = 0; i < ARRAY_SIZE(seeds); i++)
		if (!strcmp(seeds[i].name, name) && strcmp(seeds[i].sha256, hex))
			test_failed(__FILE__, __LINE__, "%s has SHA-256 %s", name, hex);
}

/* A full restored to a file must be the image the stream gave. */
static void expect_restored(const char *path, const struct image *im)
{
	uint8_t *data;
	size_t len;

	file_put("target", "", 0);
	CHECK(!truncate("target", im->geo.volume_bytes));
	CHECK_OK(run_cmd(restore_main, "restore", path, "--to", "target", NULL));
	data = file_get("target", &len);
	CHECK_EQ(len, im->geo.volume_bytes);
	CHECK(!memcmp(data, im->data, len));
	free(data);
}

/* Every chunk read at random is the stream's; as many as it has records. */
static void expect_random_reads(int fd, const struct bkp_info *info,
				const struct bkp_summary *s, const struct image *im)
{
	uint8_t *buf = malloc(info->geo.chunk_bytes);
	uint64_t c, held = 0;
	struct bkp_index *x;
	int ret;

	CHECK(buf);
	CHECK_PTR(x = bkp_index_load(fd, info, s));
	for (c = 0; c < info->geo.nr_chunks; c++) {
		ret = bkp_index_read(x, c, buf);
		CHECK(ret >= 0);
		if (ret)
			CHECK(!memcmp(buf, image_chunk(im, c), chunk_length(&info->geo, c)));
		held += ret;
	}
	CHECK_EQ(held, s->records);
	bkp_index_free(x);
	free(buf);
}

static void check_good_seed(const char *path)
{
	struct bkp_summary s, peeked;
	struct bkp_info info;
	struct image im;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0);
	CHECK_OK(bkp_peek(fd, &info, &peeked));
	CHECK_EQ(info.version, BKP_VERSION_1);
	image_make(&im, info.geo.volume_bytes, info.geo.chunk_bytes, 0);
	memset(im.data, 0, info.geo.volume_bytes);
	CHECK_OK(read_backup(path, &im, &s));
	CHECK(!memcmp(&s, &peeked, sizeof(s)));
	CHECK_OK(run_cmd(verify_main, "verify", path, NULL));
	if (info.kind == BKP_FULL)
		expect_restored(path, &im);
	expect_random_reads(fd, &info, &s, &im);
	close(fd);
	image_free(&im);
}

/* Refused read through, and at random: by peek, index load or a read. */
static void check_bad_seed(const char *path, const char *stream, const char *random)
{
	struct bkp_index *x = NULL;
	struct bkp_summary s;
	struct bkp_info info;
	uint8_t buf[4096];
	uint64_t c;
	int fd, ret;

	CHECK_FAILS(read_backup(path, NULL, NULL), AMBER_EDATA, stream);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	ret = bkp_peek(fd, &info, &s);
	if (!ret && !(x = bkp_index_load(fd, &info, &s)))
		ret = -1;
	for (c = 0; x && !ret && c < info.geo.nr_chunks; c++)
		ret = bkp_index_read(x, c, buf) < 0 ? -1 : 0;
	CHECK_FAILS(ret, AMBER_EDATA, random);
	bkp_index_free(x);
	close(fd);
}

TEST(corpus_v1_seeds_still_verify_restore_and_read_at_random)
{
	char path[4096];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(seeds); i++) {
		printf("%s\n", seeds[i].name);
		seed_path(seeds[i].name, path, sizeof(path));
		if (seeds[i].stream)
			check_bad_seed(path, seeds[i].stream, seeds[i].random);
		else
			check_good_seed(path);
	}
}
