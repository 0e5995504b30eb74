// SPDX-License-Identifier: GPL-2.0
/* The store superblock: checksum convention, layout, amber format. */
#include <fcntl.h>
#include <unistd.h>

#include "module/uapi/amber.h"
#include "crc32c.h"
#include "harness.h"
#include "helpers.h"
#include "store.h"
#include "subcommands.h"
#include "util.h"

TEST(store_crc32c_is_the_standard_castagnoli_crc)
{
	uint8_t zeros[4096] = { 0 };

	CHECK_EQ(crc32c_std("123456789", 9), 0xe3069283);	/* the CRC-32C check value */
	CHECK_EQ(crc32c(~0U, "123456789", 9), ~0xe3069283U & 0xffffffff);
	CHECK_EQ(crc32c_std(zeros, sizeof(zeros)), 0x98f94189);
	CHECK_EQ(crc32c(crc32c(~0U, "1234", 4), "56789", 5), crc32c(~0U, "123456789", 9));
}

TEST(store_layout_is_aligned_and_fills_the_device)
{
	struct store_layout l;
	uint64_t chunks = DIV_ROUND_UP((10ULL << 30) / 512, 128);

	CHECK_OK(store_plan(1ULL << 30, 10ULL << 30, 65536, 16, &l));
	CHECK_EQ(l.cbt_offset, 8);
	CHECK_EQ(l.cbt_map_sectors, ROUND_UP(DIV_ROUND_UP(chunks / 8, 512), 8));
	CHECK_EQ(l.cbt_map_sectors % 8, 0);
	CHECK_EQ(l.data_offset % 128, 0);
	CHECK(l.data_offset >= l.cbt_offset + 16 * l.cbt_map_sectors);
	CHECK_EQ(l.nr_slots, ((1ULL << 30) / 512 - l.data_offset) / 128);
	CHECK_EQ(l.origin_sectors, (10ULL << 30) / 512);
	CHECK_EQ(l.uuid[6] >> 4, 4);
	CHECK_EQ(l.flags, AMBER_SB_CLEAN);
	CHECK_FAILS(store_plan(64 * 1024, 10ULL << 30, 65536, 16, &l), AMBER_EUSAGE,
		    "too small");
	CHECK_FAILS(store_plan(1ULL << 30, 1 << 20, 3000, 16, &l), AMBER_EUSAGE,
		    "chunk size 3000");
	CHECK_FAILS(store_plan(1ULL << 30, 1 << 20, 2 << 20, 16, &l), AMBER_EUSAGE,
		    "not a power of two");
	CHECK_FAILS(store_plan(1ULL << 30, 1 << 20, 65536, 65, &l), AMBER_EUSAGE,
		    "change maps");
}

TEST(store_superblock_round_trip_and_damage)
{
	uint8_t block[AMBER_SB_SIZE];
	struct amber_store_sb *sb = (void *)block;
	struct store_layout l, back;
	uint32_t stored;

	CHECK_OK(store_plan(256 << 20, 1 << 30, 4096, 8, &l));
	store_sb_encode(&l, block);
	CHECK_EQ(le64toh(sb->magic), AMBER_SB_MAGIC);
	CHECK_OK(store_sb_decode(block, 256 << 20, &back));
	CHECK(!memcmp(&l, &back, sizeof(l)));
	/* the checksum is ~crc32c(~0) of the block with csum zeroed */
	stored = le32toh(sb->csum);
	sb->csum = 0;
	CHECK_EQ(stored, crc32c_std(block, sizeof(block)));
	CHECK_EQ(stored, ~crc32c(~0U, block, sizeof(block)) & 0xffffffff);
	sb->csum = htole32(stored);
	block[100] ^= 1;
	CHECK_FAILS(store_sb_decode(block, 256 << 20, &back), AMBER_EDATA, "checksum");
	block[100] ^= 1;
	CHECK_FAILS(store_sb_decode(block, 1 << 20, &back), AMBER_EDATA, "exceeds the device");
	block[0] ^= 1;
	CHECK_FAILS(store_sb_decode(block, 256 << 20, &back), AMBER_EDATA, "not an amber store");
}

static void make_file(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0 && !ftruncate(fd, size));
	close(fd);
}

TEST(store_format_command_on_files)
{
	struct store_layout first, second;
	uint8_t ext4[4096] = { 0 };
	int fd;

	make_file("origin", 64 << 20);
	make_file("store", 16 << 20);
	CHECK_OK(run_cmd(format_main, "format", "--store", "store", "--origin", "origin",
			 "--chunk", "32K", "--epochs", "4", NULL));
	fd = open("store", O_RDONLY);
	CHECK_OK(store_read(fd, &first));
	close(fd);
	CHECK_EQ(first.chunk_sectors, 64);
	CHECK_EQ(first.cbt_epochs, 4);
	CHECK_EQ(first.origin_sectors, (64 << 20) / 512);
	CHECK_FAILS(run_cmd(format_main, "format", "--store", "store", "--origin", "origin",
			    NULL), AMBER_ESYS, "holds an amber store");
	CHECK_OK(run_cmd(format_main, "format", "--store", "store", "--origin", "origin",
			 "--force", NULL));
	fd = open("store", O_RDONLY);
	CHECK_OK(store_read(fd, &second));
	close(fd);
	CHECK(memcmp(first.uuid, second.uuid, 16));
	CHECK_EQ(second.chunk_sectors, 128);		/* the default, 64K */

	make_file("fs", 16 << 20);
	ext4[1080] = 0x53, ext4[1081] = 0xef;
	fd = open("fs", O_WRONLY);
	CHECK_OK(pwrite_full(fd, ext4, sizeof(ext4), 0));
	close(fd);
	CHECK_FAILS(run_cmd(format_main, "format", "--store", "fs", "--origin", "origin", NULL),
		    AMBER_ESYS, "ext2/3/4");
	CHECK_FAILS(run_cmd(format_main, "format", "--store", "store", "--origin", "origin",
			    "--chunk", "5K", NULL), AMBER_EUSAGE, "chunk size");
	CHECK_FAILS(run_cmd(format_main, "format", "--store", "store", "--origin", "origin",
			    "--chunk", "64Q", NULL), AMBER_EUSAGE, "--chunk: '64Q' is not a size");
	CHECK_FAILS(run_cmd(format_main, "format", "--store", "store", NULL), AMBER_EUSAGE,
		    "--origin is required");
	CHECK_FAILS(run_cmd(format_main, "format", "--store", "store", "--origin", "origin",
			    "--epochs", "1", NULL), AMBER_EUSAGE, "--epochs: 1 is out of range");
}
