// SPDX-License-Identifier: GPL-2.0
/*
 * acklog: writes whose acknowledgement is recorded durably, to prove after
 * a crash that every acknowledged write is still there.
 *
 *   acklog write DEV LOG FIRST COUNT [dsync]
 *                                      write until killed (or done)
 *   acklog check DEV LOG               check what the log names
 *
 * write: for i = 0, 1, ...: write 4 KiB block i to DEV with O_DIRECT, at
 * block FIRST + (i * 7919) % COUNT (distinct blocks while i < COUNT, for a
 * power of two COUNT), holding data that only (i, block) makes; once the
 * write is acknowledged, write log entry i (one 512-byte sector, naming i
 * and the block) to sector i of LOG with O_DIRECT | O_DSYNC. Stops when
 * COUNT blocks or the log are used up. The log must start zeroed.
 * With dsync the data writes are O_DSYNC too, so a logged write was made
 * durable before its entry: what a power cut (not only a crash of the VM
 * over the host's cache) must keep.
 *
 * check: read the entries from 0 up to the first one that is not valid,
 * check that each one's block holds its data, print the number of entries.
 * Exit status 0 when every logged write is there, 1 when one is missing
 * (each is printed), 2 on an error or bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <unistd.h>

#define BLOCK		4096
#define SECTOR		512
#define STRIDE		7919
#define ENTRY_MAGIC	0x474f4c4b4341ULL	/* "ACKLOG" */

struct entry {
	uint64_t magic;
	uint64_t index;
	uint64_t block;
	uint64_t check;
};

static void die(const char *what)
{
	fprintf(stderr, "acklog: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int open_dev(const char *path, int flags)
{
	int fd = open(path, flags | O_DIRECT);

	if (fd < 0)
		die(path);
	return fd;
}

static uint64_t dev_bytes(int fd, const char *path)
{
	uint64_t bytes;

	if (ioctl(fd, BLKGETSIZE64, &bytes))
		die(path);
	return bytes;
}

static void *alloc_block(void)
{
	void *buf;

	if (posix_memalign(&buf, BLOCK, BLOCK))
		die("posix_memalign");
	return buf;
}

static uint64_t entry_check(const struct entry *e)
{
	return e->magic ^ e->index * 0x9e3779b97f4a7c15ULL ^ ~e->block;
}

/* The content of block @block written as write @index: a xorshift stream. */
static void fill_block(uint64_t *buf, uint64_t index, uint64_t block)
{
	uint64_t x = index * 0x9e3779b97f4a7c15ULL ^ block ^ 0x2545f4914f6cdd1dULL;
	size_t i;

	for (i = 0; i < BLOCK / sizeof(*buf); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = x;
	}
}

static int do_write(const char *dev, const char *log, uint64_t first, uint64_t count,
		    int data_flags)
{
	int fd = open_dev(dev, O_WRONLY | data_flags), log_fd = open_dev(log, O_WRONLY | O_DSYNC);
	uint64_t entries = dev_bytes(log_fd, log) / SECTOR, i;
	void *data = alloc_block(), *sector = alloc_block();
	struct entry *e = sector;

	if ((first + count) * BLOCK > dev_bytes(fd, dev)) {
		fprintf(stderr, "acklog: blocks %" PRIu64 "..%" PRIu64 " are beyond %s\n",
			first, first + count - 1, dev);
		return 2;
	}
	memset(sector, 0, SECTOR);
	for (i = 0; i < count && i < entries; i++) {
		uint64_t block = first + i * STRIDE % count;

		fill_block(data, i, block);
		if (pwrite(fd, data, BLOCK, block * BLOCK) != BLOCK)
			die("write");
		*e = (struct entry){ ENTRY_MAGIC, i, block, 0 };
		e->check = entry_check(e);
		if (pwrite(log_fd, sector, SECTOR, i * SECTOR) != SECTOR)
			die("log write");
	}
	return 0;
}

static int do_check(const char *dev, const char *log)
{
	int fd = open_dev(dev, O_RDONLY), log_fd = open_dev(log, O_RDONLY);
	uint64_t entries = dev_bytes(log_fd, log) / SECTOR, i, lost = 0;
	void *data = alloc_block(), *want = alloc_block(), *sector = alloc_block();
	const struct entry *e = sector;

	for (i = 0; i < entries; i++) {
		if (pread(log_fd, sector, SECTOR, i * SECTOR) != SECTOR)
			die("log read");
		if (e->magic != ENTRY_MAGIC || e->index != i || e->check != entry_check(e))
			break;
		fill_block(want, i, e->block);
		if (pread(fd, data, BLOCK, e->block * BLOCK) != BLOCK)
			die("read");
		if (memcmp(data, want, BLOCK)) {
			printf("write %" PRIu64 " to block %" PRIu64 " was acknowledged but is lost\n",
			       i, e->block);
			lost++;
		}
	}
	printf("%" PRIu64 "\n", i);
	return lost ? 1 : 0;
}

static uint64_t number(const char *s)
{
	char *end;
	uint64_t n;

	errno = 0;
	n = strtoull(s, &end, 0);
	if (errno || end == s || *end) {
		fprintf(stderr, "acklog: bad number '%s'\n", s);
		exit(2);
	}
	return n;
}

int main(int argc, char **argv)
{
	if ((argc == 6 || (argc == 7 && !strcmp(argv[6], "dsync"))) &&
	    !strcmp(argv[1], "write")) {
		uint64_t count = number(argv[5]);

		if (!count || count & (count - 1)) {
			fprintf(stderr, "acklog: COUNT must be a power of two\n");
			return 2;
		}
		return do_write(argv[2], argv[3], number(argv[4]), count,
				argc == 7 ? O_DSYNC : 0);
	}
	if (argc == 4 && !strcmp(argv[1], "check"))
		return do_check(argv[2], argv[3]);
	fprintf(stderr, "usage: acklog write DEV LOG FIRST COUNT [dsync] | acklog check DEV LOG\n");
	return 2;
}
