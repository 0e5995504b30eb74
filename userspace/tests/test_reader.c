// SPDX-License-Identifier: GPL-2.0
/* The reader's workers: the same records, digest and first error, however many. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <xxhash.h>

#include "chain.h"
#include "harness.h"
#include "helpers.h"
#include "layout.h"
#include "subcommands.h"
#include "util.h"

#define MAX_RECORDS	2048

static const unsigned int worker_counts[] = { 1, 2, 3, 8 };

/* What a reader hands out, and how it ends. */
struct reading {
	size_t n;
	uint64_t chunk[MAX_RECORDS];
	uint16_t flags[MAX_RECORDS], codec[MAX_RECORDS];
	struct image im;		/* the content handed out */
	int ret;
	struct error_state error;
	struct bkp_summary sum;
	uint8_t digest[32];
};

static struct reading *read_fd(int fd, unsigned int workers)
{
	struct reading *out = calloc(1, sizeof(*out));
	struct bkp_reader *r;
	struct bkp_record rec;

	CHECK(out);
	CHECK_PTR(r = bkp_reader_open(fd));
	bkp_reader_set_workers(r, workers);
	out->im.geo = bkp_reader_info(r)->geo;
	CHECK(out->im.data = calloc(1, out->im.geo.volume_bytes));
	while ((out->ret = bkp_reader_next(r, &rec)) > 0) {
		CHECK(out->n < MAX_RECORDS);
		out->chunk[out->n] = rec.chunk;
		out->flags[out->n] = rec.flags;
		out->codec[out->n] = rec.codec;
		memcpy(image_chunk(&out->im, rec.chunk), rec.data, rec.length);
		out->n++;
	}
	error_save(&out->error);
	if (!out->ret) {
		out->sum = *bkp_reader_summary(r);
		memcpy(out->digest, bkp_reader_digest(r), 32);
	}
	bkp_reader_free(r);
	return out;
}

static struct reading *read_path(const char *path, unsigned int workers)
{
	int fd = open(path, O_RDONLY);
	struct reading *out;

	CHECK(fd >= 0);
	out = read_fd(fd, workers);
	close(fd);
	return out;
}

static void reading_free(struct reading *r)
{
	free(r->im.data);
	free(r);
}

static void expect_same(const struct reading *a, const struct reading *b)
{
	CHECK_EQ(a->ret, b->ret);
	CHECK_EQ(a->n, b->n);
	CHECK(!memcmp(a->chunk, b->chunk, a->n * sizeof(a->chunk[0])));
	CHECK(!memcmp(a->flags, b->flags, a->n * sizeof(a->flags[0])));
	CHECK(!memcmp(a->codec, b->codec, a->n * sizeof(a->codec[0])));
	CHECK(!memcmp(a->im.data, b->im.data, a->im.geo.volume_bytes));
	if (a->ret < 0) {
		CHECK_EQ(a->error.status, b->error.status);
		if (strcmp(a->error.msg, b->error.msg))
			test_failed(__FILE__, __LINE__, "'%s' != '%s'", a->error.msg,
				    b->error.msg);
	} else {
		CHECK(!memcmp(&a->sum, &b->sum, sizeof(a->sum)));
		CHECK(!memcmp(a->digest, b->digest, 32));
	}
}

/* Each worker count reads @path as one worker does; that one is returned. */
static struct reading *read_with_every_count(const char *path)
{
	struct reading *one = read_path(path, 1), *many;
	size_t i;

	for (i = 1; i < ARRAY_SIZE(worker_counts); i++) {
		many = read_path(path, worker_counts[i]);
		expect_same(one, many);
		reading_free(many);
	}
	return one;
}

/* The reading failed with @text after handing out @handed records. */
static void expect_error(const struct reading *r, size_t handed, const char *text)
{
	CHECK_EQ(r->ret, (uint64_t)-1);
	CHECK_EQ(r->error.status, AMBER_EDATA);
	CHECK_EQ(r->n, handed);
	if (!strstr(r->error.msg, text))
		test_failed(__FILE__, __LINE__, "'%s' lacks '%s'", r->error.msg, text);
}

/*
 * Zero, zstd and raw chunks (image_make()), a short last chunk, some
 * early records, then the sweep: many batches of records.
 */
static void make_big(const char *path, uint32_t chunk_bytes, struct image *im,
		     struct bkp_summary *sum)
{
	static const uint64_t early_chunks[] = { 50, 51, 70 };
	uint64_t *order, *sent, c, n = 0;
	struct bkp_info info;
	bool *early;

	image_make(im, 6 * MiB + 3 * KiB, chunk_bytes, 17);
	order = calloc(im->geo.nr_chunks, sizeof(*order));
	early = calloc(im->geo.nr_chunks, sizeof(*early));
	sent = bitmap_alloc(im->geo.nr_chunks);
	CHECK(order && early && sent && im->geo.nr_chunks <= MAX_RECORDS);
	for (; n < ARRAY_SIZE(early_chunks); n++) {
		order[n] = early_chunks[n];
		early[n] = true;
		bit_set(sent, order[n]);
	}
	for (c = 0; c < im->geo.nr_chunks; c++)
		if (!bit_test(sent, c))
			order[n++] = c;
	info = test_info(im, BKP_FULL, 4);
	info.version = BKP_VERSION_1;	/* parses v1 bytes */
	write_chunks(path, &info, im, order, early, n, 3, sum);
	free(order);
	free(early);
	free(sent);
}

/* Byte offset of record @k in a backup file. */
static uint64_t record_offset(const uint8_t *file, uint64_t k)
{
	uint64_t at = sizeof(struct disk_header);

	while (k--)
		at += sizeof(struct disk_record) + get_le32(file + at + 24);
	return at;
}

static uint32_t stored_bytes(const uint8_t *file, uint64_t at)
{
	return get_le32(file + at + 24);
}

TEST(reader_workers_hand_out_what_one_worker_does)
{
	static const uint32_t chunk_sizes[] = { 4096, 65536 };
	struct reading *one;
	struct bkp_summary sum;
	size_t i, k, zero = 0, zstd = 0, raw = 0;
	struct image im;

	for (i = 0; i < ARRAY_SIZE(chunk_sizes); i++) {
		make_big("big.amb", chunk_sizes[i], &im, &sum);
		one = read_with_every_count("big.amb");
		CHECK_EQ(one->ret, 0);
		CHECK_EQ(one->n, im.geo.nr_chunks);
		CHECK(!memcmp(one->im.data, im.data, im.geo.volume_bytes));
		CHECK(!memcmp(one->digest, sum.digest, 32));
		CHECK_EQ(one->chunk[0], 50);
		CHECK(one->flags[2] & REC_EARLY);
		for (k = 0; k < one->n; k++) {
			zero += !!(one->flags[k] & REC_ZERO);
			zstd += one->codec[k] == CODEC_ZSTD;
			raw += !(one->flags[k] & REC_ZERO) && one->codec[k] == CODEC_RAW;
		}
		reading_free(one);
		image_free(&im);
	}
	CHECK(zero && zstd && raw);
}

/* Threads of this process. */
static unsigned int threads(void)
{
	DIR *dir = opendir("/proc/self/task");
	unsigned int n = 0;
	struct dirent *e;

	CHECK_PTR(dir);
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

TEST(reader_workers_none_for_a_backup_in_one_batch)
{
	struct bkp_summary sum;
	struct bkp_info info;
	struct bkp_reader *r;
	struct bkp_record rec;
	unsigned int before;
	struct image im;
	int fd, ret;

	/* the records fill the one batch: the end comes in a batch of its own */
	image_make(&im, 64 * KiB, 4096, 3);
	info = test_info(&im, BKP_FULL, 1);
	info.version = BKP_VERSION_1;	/* parses v1 bytes */
	write_all("small.amb", &info, &im, 3, &sum);
	CHECK((fd = open("small.amb", O_RDONLY)) >= 0);
	CHECK_PTR(r = bkp_reader_open(fd));
	bkp_reader_set_workers(r, 3);
	before = threads();
	while ((ret = bkp_reader_next(r, &rec)) > 0)
		CHECK_EQ(threads(), before);
	CHECK_EQ(ret, 0);
	bkp_reader_free(r);
	close(fd);
	image_free(&im);
}

TEST(reader_workers_report_the_first_bad_payload)
{
	struct bkp_summary sum;
	struct reading *one;
	uint64_t at[3];
	struct image im;
	uint8_t *file;
	char text[96];
	size_t len;

	make_big("big.amb", 65536, &im, &sum);
	file = file_get("big.amb", &len);
	at[0] = record_offset(file, 40);	/* in the third batch of 16 */
	at[1] = record_offset(file, 41);
	at[2] = record_offset(file, 91);
	CHECK(stored_bytes(file, at[0]) && stored_bytes(file, at[2]));
	file[at[0] + sizeof(struct disk_record) + stored_bytes(file, at[0]) - 1] ^= 0x01;
	file[at[1] + 8] ^= 0x01;		/* the sequence number: its header */
	file[at[2] + sizeof(struct disk_record)] ^= 0x80;
	file_put("bad.amb", file, len);
	one = read_with_every_count("bad.amb");
	snprintf(text, sizeof(text), "record 40 at offset %" PRIu64 ": payload checksum mismatch",
		 at[0]);
	expect_error(one, 40, text);
	reading_free(one);

	/* the header after it, with the payload whole again */
	file[at[0] + sizeof(struct disk_record) + stored_bytes(file, at[0]) - 1] ^= 0x01;
	file_put("bad.amb", file, len);
	one = read_with_every_count("bad.amb");
	snprintf(text, sizeof(text), "record 41 at offset %" PRIu64 ": record header checksum",
		 at[1]);
	expect_error(one, 41, text);
	reading_free(one);
	free(file);
	image_free(&im);
}

/*
 * Record 31 (chunk 62, raw) of an incremental of the even chunks claims
 * odd chunk 37, below the sweep: its payload decodes, and the order rule, checked after
 * decoding, refuses it. It is never handed out; a bad payload in it is
 * what is reported.
 */
TEST(reader_workers_hold_back_a_record_that_breaks_the_order)
{
	struct bkp_summary full, sum;
	struct disk_record *header;
	struct bkp_info info;
	uint64_t chunks[MAX_RECORDS / 2], n, at;
	struct reading *one;
	struct image im;
	uint8_t *file;
	char text[96];
	size_t len;

	image_make(&im, 128 * 65536, 65536, 5);
	info = test_info(&im, BKP_FULL, 1);
	info.version = BKP_VERSION_1;	/* parses v1 bytes */
	write_all("full.amb", &info, &im, 3, &full);
	for (n = 0; n < im.geo.nr_chunks / 2; n++)
		chunks[n] = 2 * n;
	info = test_info(&im, BKP_INCREMENTAL, 2);
	info.version = BKP_VERSION_1;	/* parses v1 bytes */
	set_parent(&info, 1, &full);
	write_chunks("incr.amb", &info, &im, chunks, NULL, n, 3, &sum);

	file = file_get("incr.amb", &len);
	at = record_offset(file, 31);
	header = (struct disk_record *)(file + at);
	CHECK_EQ(le64toh(header->chunk), 62);
	header->chunk = htole64(37);
	header->csum = htole64(XXH3_64bits(header, offsetof(struct disk_record, csum)));
	file_put("bad.amb", file, len);
	one = read_with_every_count("bad.amb");
	snprintf(text, sizeof(text), "record 31 at offset %" PRIu64 ": chunk 37 is out of order",
		 at);
	expect_error(one, 31, text);
	reading_free(one);

	file[at + sizeof(struct disk_record)] ^= 0x04;
	file_put("bad.amb", file, len);
	one = read_with_every_count("bad.amb");
	snprintf(text, sizeof(text), "record 31 at offset %" PRIu64 ": payload checksum", at);
	expect_error(one, 31, text);
	reading_free(one);
	free(file);
	image_free(&im);
}

static int pipe_end(int fd, pid_t child)
{
	close(fd);
	return child_status(child);
}

TEST(reader_workers_read_a_pipe)
{
	struct reading *from_file, *from_pipe;
	struct bkp_summary sum;
	struct bkp_reader *r;
	struct bkp_record rec;
	struct image im;
	size_t len;
	pid_t child;
	int fd, i;

	make_big("big.amb", 65536, &im, &sum);
	free(file_get("big.amb", &len));
	from_file = read_path("big.amb", 1);
	fd = pipe_from("big.amb", len, 1000, &child);
	from_pipe = read_fd(fd, 3);
	CHECK_EQ(pipe_end(fd, child), 0);
	expect_same(from_file, from_pipe);
	CHECK_EQ(from_pipe->ret, 0);
	reading_free(from_file);
	reading_free(from_pipe);

	/* the writer gives up in the middle of a payload */
	file_truncate("big.amb", len / 2);
	from_file = read_path("big.amb", 1);
	CHECK(strstr(from_file->error.msg, "truncated at offset"));
	fd = pipe_from("big.amb", len / 2, 4096, &child);
	from_pipe = read_fd(fd, 3);
	CHECK_EQ(pipe_end(fd, child), 0);
	expect_same(from_file, from_pipe);
	reading_free(from_file);
	reading_free(from_pipe);

	/* the reader gives up with batches in flight: no hang, the writer sees EPIPE */
	signal(SIGPIPE, SIG_IGN);
	fd = pipe_from("big.amb", len / 2, 4096, &child);
	CHECK_PTR(r = bkp_reader_open(fd));
	bkp_reader_set_workers(r, 3);
	for (i = 0; i < 5; i++)
		CHECK_EQ(bkp_reader_next(r, &rec), 1);
	bkp_reader_free(r);
	pipe_end(fd, child);
	image_free(&im);
}

TEST(reader_workers_verify_and_restore_from_standard_input)
{
	struct bkp_summary sum;
	struct image im;
	uint8_t *file;
	char text[96];
	pid_t child;
	size_t len;

	make_big("big.amb", 65536, &im, &sum);
	with_stdin_pipe("big.amb", &child);
	CHECK_OK(run_cmd(verify_main, "verify", "-", NULL));
	CHECK_EQ(stdin_end(child), 0);

	file_put("target", "", 0);
	file_truncate("target", im.geo.volume_bytes);
	with_stdin_pipe("big.amb", &child);
	CHECK_OK(run_cmd(restore_main, "restore", "-", "--to", "target", NULL));
	CHECK_EQ(stdin_end(child), 0);
	file = file_get("target", &len);
	CHECK_EQ(len, im.geo.volume_bytes);
	CHECK(!memcmp(file, im.data, len));
	free(file);

	file = file_get("big.amb", &len);
	file[record_offset(file, 60) + sizeof(struct disk_record)] ^= 0x20;
	file_put("bad.amb", file, len);
	snprintf(text, sizeof(text), "-: chunk 59, record 60 at offset %" PRIu64 ": payload checksum",
		 record_offset(file, 60));
	with_stdin_pipe("bad.amb", &child);
	CHECK_FAILS(run_cmd(restore_main, "restore", "-", "--to", "target", NULL),
		    AMBER_EDATA, text);
	CHECK(strstr(error_msg(), "target is incomplete (60 chunks written)"));
	stdin_end(child);
	free(file);
	image_free(&im);
}

/* A restore's writes, into memory; the one numbered @fail_at fails. */
struct target {
	struct image im;
	size_t n, fail_at;
};

static int write_chunk(void *ctx, const struct chain_member *from, const struct bkp_record *rec)
{
	struct target *t = ctx;

	(void)from;
	if (t->n == t->fail_at)
		return fail(AMBER_ESYS, "cannot write chunk %" PRIu64, rec->chunk);
	memcpy(image_chunk(&t->im, rec->chunk), rec->data, rec->length);
	t->n++;
	return 0;
}

static int apply_chain(unsigned int workers, struct target *t)
{
	char *paths[] = { "big.amb", "incr.amb" };
	struct chain c;
	size_t i;
	int ret;

	CHECK_OK(chain_open(&c, paths, 2));
	for (i = 0; i < c.n; i++)
		bkp_reader_set_workers(c.m[i].reader, workers);
	CHECK_OK(chain_check(&c));
	memset(t->im.data, 0, t->im.geo.volume_bytes);
	t->n = 0;
	ret = chain_apply(&c, write_chunk, t);
	chain_close(&c);
	return ret;
}

TEST(reader_workers_restore_a_chain_and_stop_at_a_failed_write)
{
	uint64_t changed[MAX_RECORDS], n = 0, c;
	struct bkp_summary sum;
	struct image im, v1;
	struct bkp_info info;
	struct target t;
	size_t i;

	make_big("big.amb", 65536, &im, &sum);
	image_copy(&v1, &im);
	for (c = 0; c < im.geo.nr_chunks; c += 5) {
		image_change(&v1, c, 300 + c);
		changed[n++] = c;
	}
	info = test_info(&v1, BKP_INCREMENTAL, 5);
	info.version = BKP_VERSION_1;	/* parses v1 bytes */
	set_parent(&info, 4, &sum);
	write_chunks("incr.amb", &info, &v1, changed, NULL, n, 3, NULL);
	image_copy(&t.im, &v1);
	for (i = 0; i < ARRAY_SIZE(worker_counts); i++) {
		t.fail_at = SIZE_MAX;
		CHECK_OK(apply_chain(worker_counts[i], &t));
		CHECK_EQ(t.n, im.geo.nr_chunks);
		CHECK(!memcmp(t.im.data, v1.data, v1.geo.volume_bytes));
		t.fail_at = 25;
		CHECK_FAILS(apply_chain(worker_counts[i], &t), AMBER_ESYS, "cannot write chunk");
		CHECK_EQ(t.n, 25);
	}
	image_free(&t.im);
	image_free(&v1);
	image_free(&im);
}
