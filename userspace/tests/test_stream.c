// SPDX-License-Identifier: GPL-2.0
/* The backup pipeline against a regular file and a make-believe store. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"
#include "stream.h"
#include "subcommands.h"
#include "util.h"

#define MAX_CHUNKS	16384

/* The kernel's side: chunks held in the store, releases seen. */
struct fake_store {
	const uint64_t *first, *later;	/* copied before the first poll, and after */
	size_t nr_first, nr_later;
	unsigned int polls;
	int out_fd;
	uint8_t released[MAX_CHUNKS];
	uint64_t size_at_release[MAX_CHUNKS];
	uint64_t releases_before_wanted;	/* calls before the first wanted chunk */
	const uint64_t *wanted;
	bool wanted_seen;
};

static bool in_store(const struct fake_store *f, uint64_t c)
{
	size_t i;

	if (f->released[c])
		return false;
	for (i = 0; i < f->nr_first; i++)
		if (f->first[i] == c)
			return true;
	for (i = 0; f->polls > 1 && i < f->nr_later; i++)
		if (f->later[i] == c)
			return true;
	return false;
}

static int fake_copied(void *ctx, uint64_t start, uint64_t *out, size_t max, size_t *count)
{
	struct fake_store *f = ctx;
	uint64_t c;

	f->polls += start == 0;
	for (*count = 0, c = start; c < MAX_CHUNKS && *count < max; c++)
		if (in_store(f, c))
			out[(*count)++] = c;
	return 0;
}

static int fake_release(void *ctx, uint64_t first, uint64_t count)
{
	struct fake_store *f = ctx;
	struct stat st;
	uint64_t c;

	CHECK(!fstat(f->out_fd, &st));
	for (c = first; c < first + count; c++) {
		CHECK(c < MAX_CHUNKS);
		f->released[c]++;
		f->size_at_release[c] = st.st_size;
		if (!f->wanted || bit_test(f->wanted, c))
			f->wanted_seen = true;
	}
	f->releases_before_wanted += !f->wanted_seen;
	return 0;
}

struct run {
	struct fake_store store;
	struct stream_source src;
	struct stream_config cfg;
	struct stream_progress counts;
	struct bkp_summary summary;
};

static void write_image(const struct image *im)
{
	file_put("view", im->data, im->geo.volume_bytes);
}

/* Stream "view" into @path as the backup @info describes. */
static int run_stream(struct run *r, const char *path, const struct bkp_info *info,
		      const struct image *im)
{
	struct bkp_writer *w;
	int ret;

	r->cfg.view_fd = open("view", O_RDONLY);
	r->cfg.out_fd = r->store.out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(r->cfg.view_fd >= 0 && r->cfg.out_fd >= 0);
	r->src = (struct stream_source){ fake_copied, fake_release, &r->store };
	r->cfg.src = &r->src;
	r->cfg.geo = &im->geo;
	r->store.wanted = r->cfg.wanted;
	CHECK_PTR(w = bkp_writer_new(r->cfg.out_fd, info, NULL));
	ret = stream_backup(&r->cfg, w, &r->counts);
	if (!ret)
		CHECK_OK(bkp_writer_finish(w, NULL, &r->summary));
	bkp_writer_free(w);
	close(r->cfg.view_fd);
	close(r->cfg.out_fd);
	return ret;
}

/* Where each chunk's record ends in @path (0: absent), and its flags. */
struct layout_seen {
	uint64_t end[MAX_CHUNKS];
	uint16_t flags[MAX_CHUNKS];
};

static void read_layout(const char *path, struct layout_seen *l)
{
	uint64_t pos = sizeof(struct disk_header), chunk;
	uint8_t *file;
	size_t len;

	memset(l, 0, sizeof(*l));
	file = file_get(path, &len);
	while (pos + 4 <= len && !memcmp(file + pos, "AREC", 4)) {
		chunk = get_le64(file + pos + 16);
		CHECK(chunk < MAX_CHUNKS);
		l->flags[chunk] = get_le16(file + pos + 6);
		pos += sizeof(struct disk_record) + get_le32(file + pos + 24);
		l->end[chunk] = pos;
	}
	free(file);
}

static void check_released_after_written(const struct run *r, const struct layout_seen *l)
{
	uint64_t c;

	for (c = 0; c < MAX_CHUNKS; c++) {
		if (!l->end[c])
			continue;
		CHECK_EQ(r->store.released[c], 1);
		if (r->store.size_at_release[c] < l->end[c])
			test_failed(__FILE__, __LINE__, "chunk %" PRIu64 " released at file size %"
				    PRIu64 " before its record ended at %" PRIu64, c,
				    r->store.size_at_release[c], l->end[c]);
	}
}

static void check_restores(const char *path, const struct image *im)
{
	struct image back;

	image_copy(&back, im);
	memset(back.data, 0x11, back.geo.volume_bytes);
	CHECK_OK(read_backup(path, &back, NULL));
	CHECK(!memcmp(back.data, im->data, im->geo.volume_bytes));
	image_free(&back);
}

TEST(stream_full_backup_drains_the_store_first)
{
	static const uint64_t first[] = { 3, 640, 1279 };
	static const uint64_t later[] = { 1100, 1101, 1200 };
	struct run r = { .store = { .first = first, .nr_first = 3, .later = later,
				    .nr_later = 3 },
			 .cfg = { .level = 0, .poll_interval = 0.0001, .encoders = 3 } };
	static struct layout_seen seen;
	struct bkp_info info;
	struct image im;
	uint8_t digest[32];
	unsigned int i;

	image_make(&im, 80ULL << 20, 65536, 31);	/* 1280 chunks, two syncs */
	write_image(&im);
	info = test_info(&im, BKP_FULL, 4);
	info.version = BKP_VERSION_1;	/* read_layout() parses v1 bytes */
	CHECK_OK(run_stream(&r, "full.amb", &info, &im));
	CHECK_EQ(r.summary.records, 1280);
	CHECK(r.counts.early_records >= 3);
	CHECK(r.store.polls >= 2);
	CHECK_EQ(r.counts.done_bytes, im.geo.volume_bytes);
	read_layout("full.amb", &seen);
	check_released_after_written(&r, &seen);
	for (i = 0; i < 3; i++)
		CHECK(seen.flags[first[i]] & REC_EARLY);
	CHECK(!(seen.flags[0] & REC_EARLY));
	check_restores("full.amb", &im);
	reference_digest(&im, BKP_VERSION_1, digest);
	CHECK(!memcmp(digest, r.summary.digest, 32));
}

/* More chunks in the store than one poll returns: listed page by page. */
TEST(stream_many_store_chunks_compressed)
{
	static uint64_t first[5000];
	struct run r = { .store = { .first = first, .nr_first = 5000 },
			 .cfg = { .level = 3, .io_bytes = 256 << 10 } };
	static struct layout_seen seen;
	struct bkp_info info;
	struct image im;
	unsigned int i;

	for (i = 0; i < 5000; i++)
		first[i] = 3000 + i;
	image_make(&im, 8192 * 4096, 4096, 32);
	write_image(&im);
	info = test_info(&im, BKP_FULL, 2);
	info.version = BKP_VERSION_1;	/* read_layout() parses v1 bytes */
	CHECK_OK(run_stream(&r, "full.amb", &info, &im));
	CHECK_EQ(r.counts.early_records, 5000);
	CHECK(r.summary.file_bytes < im.geo.volume_bytes);
	read_layout("full.amb", &seen);
	check_released_after_written(&r, &seen);
	check_restores("full.amb", &im);
}

TEST(stream_incremental_sends_only_changed_chunks)
{
	static const uint64_t first[] = { 10, 11, 300 };	/* 11 and 300 unchanged */
	struct run r = { .store = { .first = first, .nr_first = 3 }, .cfg = { .level = 3 } };
	uint64_t *wanted = bitmap_alloc(512), c, sent = 0;
	struct bkp_summary full;
	uint8_t *target;
	size_t len;
	struct bkp_info info;
	struct image im;

	image_make(&im, 512 * 4096, 4096, 33);
	info = test_info(&im, BKP_FULL, 1);
	write_all("full.amb", &info, &im, 3, &full);
	for (c = 0; c < 512; c += 7) {
		image_change(&im, c, 500 + c);
		bit_set(wanted, c);
		sent++;
	}
	bit_set(wanted, 10);
	image_change(&im, 10, 42);
	sent++;
	write_image(&im);
	info = test_info(&im, BKP_INCREMENTAL, 5);
	set_parent(&info, 1, &full);
	r.cfg.wanted = wanted;
	CHECK_OK(run_stream(&r, "incr.amb", &info, &im));
	CHECK_EQ(r.summary.records, sent);
	CHECK_EQ(r.counts.early_records, 1);		/* chunk 10 */
	for (c = 0; c < 512; c++)
		CHECK_EQ(r.store.released[c], 1);	/* changed or not, once */
	CHECK(r.store.releases_before_wanted > 0);	/* unchanged ones went first */
	file_put("target", "", 0);
	CHECK(!truncate("target", 512 * 4096));
	CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "incr.amb", "--to", "target",
			 NULL));
	target = file_get("target", &len);
	CHECK(!memcmp(target, im.data, im.geo.volume_bytes));
	free(target);
	free(wanted);
}

static void interrupt_now(void *ctx, const struct stream_progress *p)
{
	(void)ctx, (void)p;
	interrupted = 1;
}

TEST(stream_stops_cleanly_when_interrupted)
{
	struct run r = { .cfg = { .level = 0, .io_bytes = 64 << 10,
				  .progress = interrupt_now } };
	struct bkp_info info;
	struct image im;

	image_make(&im, 16 << 20, 4096, 34);
	write_image(&im);
	info = test_info(&im, BKP_FULL, 2);
	CHECK_FAILS(run_stream(&r, "full.amb", &info, &im), AMBER_ESYS, "interrupted");
	CHECK(r.counts.records < im.geo.nr_chunks);
	interrupted = 0;
}

TEST(stream_read_errors_stop_the_backup)
{
	struct run r = { .cfg = { .level = 1 } };
	struct bkp_info info;
	struct image im;

	image_make(&im, 4 << 20, 4096, 35);
	file_put("view", im.data, im.geo.volume_bytes - 8192);	/* the image ends early */
	info = test_info(&im, BKP_FULL, 2);
	CHECK_FAILS(run_stream(&r, "full.amb", &info, &im), AMBER_ESYS, "of the image");
}
