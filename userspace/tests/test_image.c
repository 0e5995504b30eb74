// SPDX-License-Identifier: GPL-2.0
/* amber backup --image: files backed up, chained, restored and verified. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "harness.h"
#include "helpers.h"
#include "subcommands.h"
#include "util.h"

static void write_image(const struct image *im)
{
	file_put("img", im->data, im->geo.volume_bytes);
}

static int backup_image(const char *to, const char *base, const char *chunk)
{
	if (base)
		return run_cmd(backup_main, "backup", "--image", "img", "--to", to,
			       "--incremental-from", base, NULL);
	return run_cmd(backup_main, "backup", "--image", "img", "--to", to, "--chunk", chunk,
		       NULL);
}


static void make_target(const struct image *im)
{
	file_put("target", "", 0);
	CHECK(!truncate("target", im->geo.volume_bytes));
}

/* Full backup of @im at "full.amb", 4 KiB chunks. */
static void make_full(struct image *im, uint64_t seed)
{
	image_make(im, 300 * 4096 + 1536, 4096, seed);	/* a short last chunk */
	write_image(im);
	CHECK_OK(backup_image("full.amb", NULL, "4K"));
}

TEST(image_full_backup_restores_byte_identical)
{
	struct bkp_summary sum;
	struct image im;
	uint8_t digest[32];

	make_full(&im, 71);
	CHECK_OK(run_cmd(verify_main, "verify", "full.amb", NULL));
	CHECK_OK(read_backup("full.amb", NULL, &sum));
	CHECK_EQ(sum.records, im.geo.nr_chunks);
	reference_digest(&im, BKP_VERSION_2, digest);
	CHECK(!memcmp(digest, sum.digest, 32));
	make_target(&im);
	CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "--to", "target", NULL));
	check_target_is(&im);
	image_free(&im);
}

TEST(image_incremental_sends_only_changed_chunks_and_chains)
{
	static const uint64_t changed[] = { 0, 3, 150, 300 };	/* 300: the short one */
	struct bkp_summary sum;
	struct image im;
	unsigned int i;

	make_full(&im, 72);
	for (i = 0; i < ARRAY_SIZE(changed); i++)
		image_change(&im, changed[i], 900 + i);
	write_image(&im);
	CHECK_OK(backup_image("incr.amb", "full.amb", NULL));
	CHECK_OK(run_cmd(verify_main, "verify", "full.amb", "incr.amb", NULL));
	CHECK_OK(read_backup("incr.amb", NULL, &sum));
	CHECK_EQ(sum.records, ARRAY_SIZE(changed));
	make_target(&im);
	CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "incr.amb", "--to", "target",
			 NULL));
	check_target_is(&im);

	/* The next one continues the consolidation of both. */
	CHECK_OK(run_cmd(consolidate_main, "consolidate", "full.amb", "incr.amb", "--to",
			 "merged.amb", NULL));
	image_change(&im, 7, 999);
	write_image(&im);
	CHECK_OK(backup_image("incr2.amb", "merged.amb", NULL));
	CHECK_OK(read_backup("incr2.amb", NULL, &sum));
	CHECK_EQ(sum.records, 1);
	make_target(&im);
	CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "incr.amb", "incr2.amb", "--to",
			 "target", NULL));
	check_target_is(&im);
	make_target(&im);
	CHECK_OK(run_cmd(restore_main, "restore", "merged.amb", "incr2.amb", "--to", "target",
			 NULL));
	check_target_is(&im);
	image_free(&im);
}

TEST(image_base_of_another_geometry_or_lineage_is_refused)
{
	struct bkp_info info;
	struct image im, other;

	make_full(&im, 73);
	image_change(&im, 1, 5);
	write_image(&im);
	CHECK_OK(backup_image("incr.amb", "full.amb", NULL));
	CHECK_FAILS(backup_image("x.amb", "incr.amb", NULL), AMBER_EDATA,
		    "incr.amb is an incremental backup");
	CHECK_FAILS(run_cmd(backup_main, "backup", "--image", "img", "--to", "x.amb",
			    "--incremental-from", "full.amb", "--chunk", "8K", NULL),
		    AMBER_EDATA, "chunk size differs: 4096 bytes, not 8192");

	info = test_info(&im, BKP_FULL, 1);		/* a volume's backup */
	write_all("volume.amb", &info, &im, 0, NULL);
	CHECK_FAILS(backup_image("x.amb", "volume.amb", NULL), AMBER_EDATA,
		    "volume.amb is a backup of an amber volume");

	image_make(&other, im.geo.volume_bytes + 4096, 4096, 74);
	write_image(&other);
	CHECK_FAILS(backup_image("x.amb", "full.amb", NULL), AMBER_EDATA,
		    "volume size differs: 1230336 bytes, not 1234432");
	CHECK(access("x.amb", F_OK));			/* nothing left behind */
	image_free(&im);
	image_free(&other);
}

/* Give the first record of @path another leaf, its header checksum right. */
static void forge_first_leaf(const char *path)
{
	size_t at = sizeof(struct disk_header), len;
	uint8_t *file = file_get(path, &len);

	file[at + 40] ^= 0x01;
	put_le64(file + at + 72, XXH3_64bits(file + at, 72));
	file_put(path, file, len);
	free(file);
}

TEST(image_base_whose_leaves_miss_its_digest_is_refused)
{
	struct image im;

	image_make(&im, 300 * 4096 + 1536, 4096, 75);
	write_image(&im);
	/* v1: the base's leaves come from its record headers */
	CHECK_OK(run_cmd(backup_main, "backup", "--image", "img", "--to", "full.amb", "--chunk",
			 "4K", "--format-version", "1", NULL));
	forge_first_leaf("full.amb");
	CHECK_FAILS(backup_image("x.amb", "full.amb", NULL), AMBER_EDATA,
		    "do not give the image digest");
	image_free(&im);
}

TEST(image_backup_truncated_or_corrupt_fails_verify)
{
	struct image im;
	uint8_t *file;
	size_t len;

	make_full(&im, 76);
	file = file_get("full.amb", &len);
	file_put("cut.amb", file, len / 2);
	free(file);
	CHECK_FAILS(run_cmd(verify_main, "verify", "cut.amb", NULL), AMBER_EDATA, "truncated");
	/* chunk 0 is zero: record 0 is a header alone, record 1's payload follows */
	file_flip("full.amb", sizeof(struct disk_header) + 2 * sizeof(struct disk_record_v2) + 100,
		  0x40);
	CHECK_FAILS(run_cmd(verify_main, "verify", "full.amb", NULL), AMBER_EDATA,
		    "stored bytes do not match their hash");
	image_free(&im);
}

TEST(image_paths_that_cannot_be_backed_up_are_refused)
{
	file_put("img", "odd", 3);
	CHECK(!truncate("img", 4096 + 100));
	CHECK_FAILS(backup_image("x.amb", NULL, "4K"), AMBER_ESYS,
		    "img is 4196 bytes, not a positive multiple of 512");
	CHECK(!mkdir("dir", 0700));
	CHECK_FAILS(run_cmd(backup_main, "backup", "--image", "dir", "--to", "x.amb", NULL),
		    AMBER_ESYS, "dir is neither a regular file nor a block device");
	CHECK(!mkfifo("fifo", 0600));		/* no writer: an open would block */
	CHECK_FAILS(run_cmd(backup_main, "backup", "--image", "fifo", "--to", "x.amb", NULL),
		    AMBER_ESYS, "fifo is neither a regular file nor a block device");
	CHECK_FAILS(run_cmd(backup_main, "backup", "--image", "img", "--to", "x.amb", "--chunk",
			    "0", NULL), AMBER_EUSAGE, "--chunk: 0 is no chunk size");
	CHECK_FAILS(run_cmd(backup_main, "backup", "--image", "missing", "--to", "x.amb", NULL),
		    AMBER_ESYS, "missing: No such file or directory");
	CHECK_FAILS(run_cmd(backup_main, "backup", "vol", "--image", "img", "--to", "x.amb",
			    NULL), AMBER_EUSAGE, "not both");
	CHECK(access("x.amb", F_OK));
}

/* A child touching "img" without pause until killed. */
static pid_t keep_touching(void)
{
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (!pid)
		for (;;) {
			utimensat(AT_FDCWD, "img", NULL, 0);
			usleep(200);
		}
	return pid;
}

static void stop_touching(pid_t toucher)
{
	kill(toucher, SIGKILL);
	waitpid(toucher, NULL, 0);
}

TEST(image_changed_during_the_backup_fails_it)
{
	struct image im;
	pid_t toucher;
	int ret;

	image_make(&im, 64 << 20, 65536, 77);
	write_image(&im);
	toucher = keep_touching();
	ret = run_cmd(backup_main, "backup", "--image", "img", "--to", "x.amb", "--level",
		      "3", NULL);
	stop_touching(toucher);
	CHECK_FAILS(ret, AMBER_ESYS, "img changed while it was backed up");
	CHECK(access("x.amb", F_OK));
	image_free(&im);
}

/* Run amber backup --image img --to -, its standard output @path opened @flags. */
static int backup_image_to_stdout(const char *path, int flags)
{
	int fd = open(path, flags, 0600), saved = dup(STDOUT_FILENO);
	int ret;

	CHECK(fd >= 0 && saved >= 0);
	fflush(stdout);
	CHECK(dup2(fd, STDOUT_FILENO) == STDOUT_FILENO);
	ret = run_cmd(backup_main, "backup", "--image", "img", "--to", "-", NULL);
	CHECK(dup2(saved, STDOUT_FILENO) == STDOUT_FILENO);
	close(saved);
	close(fd);
	return ret;
}

/* On a pipe or a device nothing can be removed: the backup must not end. */
TEST(image_changed_during_a_backup_to_a_pipe_leaves_it_without_trailer)
{
	struct bkp_summary sum;
	struct image im;
	pid_t toucher;
	int ret;

	image_make(&im, 64 << 20, 65536, 78);
	write_image(&im);
	toucher = keep_touching();
	ret = backup_image_to_stdout("out.amb", O_WRONLY | O_CREAT | O_EXCL);
	stop_touching(toucher);
	CHECK_FAILS(ret, AMBER_ESYS, "img changed while it was backed up");
	CHECK_FAILS(read_backup("out.amb", NULL, &sum), AMBER_EDATA, "truncated");
	image_free(&im);
}

TEST(image_backup_onto_the_image_itself_is_refused)
{
	struct image im;
	uint8_t *now;
	size_t len;

	image_make(&im, 64 * 4096, 4096, 79);
	write_image(&im);
	CHECK_FAILS(backup_image_to_stdout("img", O_WRONLY), AMBER_EUSAGE,
		    "--to - is img itself");
	now = file_get("img", &len);
	CHECK_EQ(len, im.geo.volume_bytes);
	CHECK(!memcmp(now, im.data, len));
	free(now);
	image_free(&im);
}

/*
 * Whole 4 KiB blocks (direct reads), 16K chunks: chunks that become zero,
 * zero chunks that get data, a chunk that takes another's old content (the
 * leaves compare by position) and the last one are sent, and nothing else.
 */
TEST(image_incremental_of_direct_reads_finds_every_kind_of_change)
{
	struct bkp_summary sum;
	struct image im;

	image_make(&im, 100 * 16384, 16384, 80);
	write_image(&im);
	CHECK_OK(backup_image("full.amb", NULL, "16K"));
	memset(image_chunk(&im, 1), 0, 16384);				/* text -> zero */
	image_change(&im, 3, 81);					/* zero -> data */
	memcpy(image_chunk(&im, 5), image_chunk(&im, 2), 16384);	/* 2's content */
	image_chunk(&im, 99)[16383] ^= 1;				/* the last byte */
	write_image(&im);
	CHECK_OK(backup_image("incr.amb", "full.amb", NULL));
	CHECK_OK(read_backup("incr.amb", NULL, &sum));
	CHECK_EQ(sum.records, 4);
	CHECK_EQ(sum.zero_records, 1);
	make_target(&im);
	CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "incr.amb", "--to", "target",
			 NULL));
	check_target_is(&im);
	image_free(&im);
}
