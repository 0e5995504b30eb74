// SPDX-License-Identifier: GPL-2.0
/*
 * The device-mapper ioctls through libdevmapper, on dm-linear: the model
 * for amber's C selftests (kselftest harness plus dmtest.h).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/fs.h>

#include "dmtest.h"
#include "kselftest_harness.h"

#define NAME	"ksft-linear"
#define LEN	(64 * 2048)	/* sectors: 64 MiB */
#define OFFSET	4096		/* sectors into the disk */
#define BLOCK	4096

FIXTURE(linear) {
	const char *disk;
	char node[32];
};

FIXTURE_SETUP(linear)
{
	char params[128];

	self->disk = getenv("AMBER_DISK_ORIGIN");
	ASSERT_NE(NULL, self->disk);
	snprintf(params, sizeof(params), "%s %d", self->disk, OFFSET);
	ASSERT_EQ(0, dmt_create(NAME, LEN, "linear", params, 0));
	ASSERT_EQ(0, dmt_devnode(NAME, self->node, sizeof(self->node)));
}

FIXTURE_TEARDOWN(linear)
{
	EXPECT_EQ(0, dmt_simple(DM_DEVICE_REMOVE, NAME));
}

TEST_F(linear, size_is_the_table_length)
{
	uint64_t bytes = 0;
	int fd = open(self->node, O_RDONLY);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, BLKGETSIZE64, &bytes));
	EXPECT_EQ((uint64_t)LEN * 512, bytes);
	close(fd);
}

TEST_F(linear, table_names_the_disk)
{
	char want[64], got[256];
	struct stat st;

	ASSERT_EQ(0, stat(self->disk, &st));
	snprintf(want, sizeof(want), "%u:%u %d", major(st.st_rdev),
		 minor(st.st_rdev), OFFSET);
	ASSERT_EQ(0, dmt_params(DM_DEVICE_TABLE, NAME, got, sizeof(got)));
	EXPECT_STREQ(want, got);
}

/* A block written through the device is on the disk at OFFSET + its offset. */
TEST_F(linear, write_lands_at_offset)
{
	const off_t at = 3 * BLOCK;
	void *out, *in;
	int dm, disk;

	ASSERT_EQ(0, posix_memalign(&out, BLOCK, BLOCK));
	ASSERT_EQ(0, posix_memalign(&in, BLOCK, BLOCK));
	memset(out, 0xa5, BLOCK);
	snprintf(out, BLOCK, "dm_ioctl block at %lld", (long long)at);
	dm = open(self->node, O_RDWR | O_DIRECT);
	disk = open(self->disk, O_RDONLY | O_DIRECT);
	ASSERT_LE(0, dm);
	ASSERT_LE(0, disk);
	ASSERT_EQ(BLOCK, pwrite(dm, out, BLOCK, at));
	ASSERT_EQ(BLOCK, pread(disk, in, BLOCK, (off_t)OFFSET * 512 + at));
	EXPECT_EQ(0, memcmp(out, in, BLOCK));
	close(disk);
	close(dm);
	free(in);
	free(out);
}

TEST_F(linear, suspend_and_resume)
{
	struct dm_info info;

	ASSERT_EQ(0, dmt_simple(DM_DEVICE_SUSPEND, NAME));
	ASSERT_EQ(0, dmt_info(NAME, &info));
	EXPECT_EQ(1, info.suspended);
	ASSERT_EQ(0, dmt_simple(DM_DEVICE_RESUME, NAME));
	ASSERT_EQ(0, dmt_info(NAME, &info));
	EXPECT_EQ(0, info.suspended);
}

/* dm-linear takes no messages: the ioctl fails with EINVAL. */
TEST_F(linear, message_is_refused)
{
	EXPECT_EQ(-EINVAL, dmt_message(NAME, "snap", NULL, 0));
}

/* A table that does not parse fails with EINVAL and leaves no device. */
TEST(malformed_table_is_refused)
{
	const char *disk = getenv("AMBER_DISK_ORIGIN");
	struct dm_info info;

	ASSERT_NE(NULL, disk);
	EXPECT_EQ(-EINVAL, dmt_create("ksft-bad", LEN, "linear", disk, 0));
	ASSERT_EQ(0, dmt_info("ksft-bad", &info));
	EXPECT_EQ(0, info.exists);
}

TEST_HARNESS_MAIN
